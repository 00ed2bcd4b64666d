#pragma once
// `submarine local up|down|status|supervise`: the client side of the embedded single-host stack.
// `up` starts a detached supervisor (see stack_supervisor.h) and returns once everything serves;
// `down` stops it and whatever it left behind; `status` reports each process' health.

#include <sys/types.h>

#include <chrono>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cli/output.h"
#include "clients/cli/stack_paths.h"
#include "clients/cli/stack_state.h"

namespace submarine::cli {

struct UpOptions {
  std::string data_dir;     // created if missing
  int gateway_port = 8080;  // 0: any free port
  std::chrono::milliseconds timeout = std::chrono::minutes(3);
};

// Starts the stack in `data_dir` unless it already runs there (then reports its URL). Returns
// once the state file says "running" and the gateway's /readyz answers 200, printing the gateway
// URL to `out`. FAILED_PRECONDITION if a process binary is missing next to this executable, the
// gateway port is taken, or a supervisor for the directory is busy starting or stopping;
// UNAVAILABLE with the supervisor's error (and log lines) if start-up fails; DEADLINE_EXCEEDED
// after `timeout` (the supervisor is then stopped).
absl::Status LocalUp(const UpOptions& options, std::ostream& out);

// Stops the stack in `data_dir`: SIGTERM to the supervisor (which stops its processes in reverse
// order and PostgreSQL last), then SIGTERM/SIGKILL to any recorded or config-referencing process
// still alive, then stops PostgreSQL if it still runs. Returns once nothing of the stack is left
// running; OK as well if nothing was running.
absl::Status LocalDown(const std::string& data_dir, std::ostream& out);

struct ProcessHealth {
  std::string name;
  pid_t pid = 0;
  bool alive = false;
  std::string state;   // the supervisor's view: ready, starting, backoff, ...
  bool ready = false;  // alive and its ready file names this pid
  int restarts = 0;
  std::string address;
};

struct StackHealth {
  std::string data_dir;
  std::string phase;  // from the state file; "not running" without one
  pid_t supervisor_pid = 0;
  bool supervisor_alive = false;
  std::string gateway_url;
  long gateway_readyz = 0;               // HTTP status of GET /readyz, 0 if unreachable
  std::vector<ProcessHealth> processes;  // postgres first, then the supervised processes
  // Supervisor alive, every process ready and /readyz 200.
  bool Healthy() const;
};

// Reads the state file and probes every process. NOT_FOUND if no stack was ever started there.
absl::StatusOr<StackHealth> InspectStack(const std::string& data_dir);

// Renders InspectStack()'s result as a table, JSON or YAML.
std::string FormatStackHealth(const StackHealth& health, OutputFormat format);

// Prints where the admin password is: the password itself the first time (then records that it
// was shown, in paths.AdminPasswordShownFile()), only the file's path afterwards; nothing if the
// file does not exist.
void ReportAdminPassword(const StackPaths& paths, std::ostream& out);

// True if `pid` is a live `submarine local supervise` for `data_dir`.
bool SupervisorAlive(pid_t pid, const std::string& data_dir);

}  // namespace submarine::cli
