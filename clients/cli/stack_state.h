#pragma once
// The state file of a local stack (<data-dir>/state.json), written atomically by the supervisor
// whenever something changes and read by `local up|down|status`, the environment commands and the
// Python SDK (which only needs "gatewayUrl"). JSON, lowerCamel keys:
//
//   {"phase": "running", "error": "", "supervisorPid": 123, "dataDir": "/var/lib/submarine",
//    "gatewayUrl": "http://127.0.0.1:8080", "postgres": {"port": 5433, "pid": 124, "restarts": 0},
//    "processes": [{"name": "eventbus", "pid": 130, "state": "ready", "restarts": 0,
//                   "ready": {<the process' ready file>}, "log": ".../logs/eventbus.log"}, ...]}

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::cli {

// Phases of the whole stack, as the supervisor sees it.
inline constexpr char kPhaseStarting[] = "starting";  // bringing processes up the first time
inline constexpr char kPhaseRunning[] = "running";    // all processes were ready once
inline constexpr char kPhaseStopping[] = "stopping";  // SIGTERM received, stopping in reverse
inline constexpr char kPhaseStopped[] = "stopped";    // nothing left running
inline constexpr char kPhaseFailed[] = "failed";      // start-up failed; `error` says why

struct ProcessState {
  std::string name;
  pid_t pid = 0;         // 0 while not running
  std::string state;     // pending, starting, ready, backoff, stopped
  int restarts = 0;      // times the supervisor restarted it after a crash
  nlohmann::json ready;  // the last ready file it wrote (addresses, pid); null if none
  std::string log;       // its log file
};

struct StackState {
  std::string phase;
  std::string error;
  pid_t supervisor_pid = 0;
  std::string data_dir;
  std::string gateway_url;
  int postgres_port = 0;
  pid_t postgres_pid = 0;     // 0 while not running
  int postgres_restarts = 0;  // times the supervisor restarted PostgreSQL after finding it gone
  std::vector<ProcessState> processes;
};

nlohmann::json StackStateToJson(const StackState& state);
// INVALID_ARGUMENT if `json` is not a state object.
absl::StatusOr<StackState> StackStateFromJson(const nlohmann::json& json);

// NOT_FOUND if the file does not exist; INVALID_ARGUMENT if it is not a state file.
absl::StatusOr<StackState> ReadStackState(const std::string& path);
absl::Status WriteStackState(const std::string& path, const StackState& state);

}  // namespace submarine::cli
