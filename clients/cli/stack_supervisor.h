#pragma once
// The daemon behind `submarine local up`: owns the PostgreSQL cluster and every process of the
// local stack, restarts crashed processes with exponential backoff (PostgreSQL within a second
// of finding it gone, clearing what a killed postmaster leaves behind) and records what runs and
// how often each was restarted in the state file. Started detached (`submarine local supervise`),
// stopped by SIGTERM.

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "clients/cli/stack_paths.h"
#include "clients/cli/stack_plan.h"
#include "clients/cli/stack_state.h"
#include "common/db/postgres_cluster.h"

namespace submarine::cli {

struct SupervisorOptions {
  std::string data_dir;
  int gateway_port = 8080;  // 0: any free port
  std::string bin_dir;      // where the process binaries are
  // How long the first start of the whole stack may take before it counts as failed; also how
  // long any (re)started process may take to become ready before it is killed and restarted.
  std::chrono::milliseconds startup_timeout = std::chrono::minutes(3);
  // Restart backoff: doubles after each crash up to `max_backoff`; back to `initial_backoff` when
  // the crashed process had been ready for at least `stable_after`.
  std::chrono::milliseconds initial_backoff = std::chrono::milliseconds(250);
  std::chrono::milliseconds max_backoff = std::chrono::seconds(30);
  std::chrono::milliseconds stable_after = std::chrono::seconds(10);
  // How long a process gets between SIGTERM and SIGKILL when the stack stops.
  std::chrono::milliseconds stop_grace = std::chrono::seconds(20);
};

class StackSupervisor {
 public:
  explicit StackSupervisor(SupervisorOptions options);

  // Runs in the calling thread, which must be the process' only thread: blocks SIGTERM, SIGINT,
  // SIGHUP and SIGCHLD and waits for them synchronously (no handlers). Initialises and starts
  // PostgreSQL, provisions roles and schemas, writes the configs, starts the processes in plan
  // order (each once the previous one is ready), then keeps them running until SIGTERM or SIGINT
  // and stops them in reverse order, PostgreSQL last. Returns OK after a clean stop; a start-up
  // failure is returned and recorded in the state file (phase "failed") after stopping whatever
  // had started.
  absl::Status Run();

 private:
  enum class ChildState { kPending, kStarting, kReady, kBackoff, kStopped };
  using SteadyTime = std::chrono::steady_clock::time_point;

  struct Child {
    ProcessPlan plan;
    ChildState state = ChildState::kPending;
    pid_t pid = 0;
    int restarts = 0;
    int crashes_before_ready = 0;  // consecutive exits before it ever became ready
    bool kill_sent = false;        // SIGKILLed for not becoming ready in time
    SteadyTime started;            // last start
    SteadyTime ready_since;        // last time it became ready
    SteadyTime next_start;         // when a child in kBackoff restarts
    std::chrono::milliseconds backoff{0};
    nlohmann::json ready;  // its ready file, once ready
  };

  absl::Status StartDatabase();
  absl::Status Supervise();
  absl::Status StartChild(Child& child);
  void CheckReady(Child& child);
  void CheckDatabase();
  // Waits up to `timeout` for a blocked signal; handles SIGCHLD (reaps) and SIGTERM/SIGINT.
  void WaitForSignal(std::chrono::milliseconds timeout);
  void ReapChildren();
  void StopChildren();
  void WriteState(const std::string& phase, const std::string& error = "");

  SupervisorOptions options_;
  StackPaths paths_;
  db::PostgresCluster cluster_;
  std::vector<Child> children_;
  int postgres_restarts_ = 0;  // restarts of PostgreSQL after it was found not running
  std::string gateway_url_;
  bool stop_requested_ = false;
  bool stopping_ = false;
  std::string phase_;
  std::string last_state_;
};

}  // namespace submarine::cli
