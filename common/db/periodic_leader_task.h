#pragma once
// A background job that runs `run` every `period` on exactly one replica: the one holding the
// PostgreSQL advisory lock named `name` (housekeeping such as retention). A failing run is
// logged and retried at the next period. Wake() starts the next run now (on the leader) instead
// of at the end of the period, for control loops that react to a request. Stop() interrupts the
// wait and joins.

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
  // Ends the current wait early (a run already in progress is followed by another one at once).
  void Wake();
  // Completed runs (for tests and metrics).
  int runs() const;

 private:
  void Loop();
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  int runs_ = 0;
  std::thread thread_;
};

}  // namespace submarine::db
