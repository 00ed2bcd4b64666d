#pragma once
// A background job that runs `run` every `period` on exactly one replica: the one holding the
// PostgreSQL advisory lock named `name` (housekeeping such as retention). A failing run is
// logged and retried at the next period. Stop() interrupts the wait and joins.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "common/rpc/server_runner.h"

namespace submarine::db {

class PeriodicLeaderTask : public rpc::BackgroundTask {
 public:
  struct Options {
    std::string name;      // lock and task name, e.g. "environment.retention"
    std::string conninfo;  // for the leader lock's own connection
    std::chrono::milliseconds period{60000};
    std::function<absl::Status()> run;
  };
  explicit PeriodicLeaderTask(Options options) : options_(std::move(options)) {}
  ~PeriodicLeaderTask() override { Stop(); }

  std::string TaskName() const override { return options_.name; }
  absl::Status Start() override;
  void Stop() override;
  // Completed runs (for tests and metrics).
  int runs() const;

 private:
  void Loop();
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int runs_ = 0;
  std::thread thread_;
};

}  // namespace submarine::db
