#pragma once
// A PostgreSQL backend kept busy in a loop, for crash tests: a backend running a statement does
// not watch for its postmaster's death, so after a kill -9 of the postmaster it keeps the dead
// server's shared memory attached until its statement timeout ends the loop — the window in
// which PostgreSQL refuses to start again ("pre-existing shared memory block is still in use").

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace submarine::testing {

class BusyBackend {
 public:
  // Connects with `conninfo`, runs an endless loop under a statement timeout of `busy_for` on a
  // thread of its own, and returns once pg_stat_activity shows the loop running (DEADLINE_EXCEEDED
  // after 30 s).
  static absl::StatusOr<std::unique_ptr<BusyBackend>> Start(const std::string& conninfo,
                                                            std::chrono::seconds busy_for);
  // Waits for the loop to end (its timeout, or its connection lost).
  ~BusyBackend();

  // The backend's pid.
  pid_t pid() const { return pid_; }

 private:
  BusyBackend() = default;
  std::jthread thread_;
  pid_t pid_ = 0;
};

}  // namespace submarine::testing
