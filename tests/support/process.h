#pragma once
// Real child processes for integration tests: start a Submarine binary with a config written to a
// temp dir, wait (with a deadline, never a fixed sleep) for its ready file, signal it, wait for
// its exit code. The destructor kills a child that is still running, and a child is killed
// if the thread that started it dies (PR_SET_PDEATHSIG): start children from the test thread.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::testing {

// <build>/bin, where every executable lands.
std::string BinDir();
// A fresh private temp directory, removed by the caller (or left for post-mortem on failure).
std::string MakeTempDir(const std::string& prefix);

// Polls `ready` every few milliseconds until it returns true or `timeout` elapses.
bool WaitFor(const std::function<bool()>& ready,
             std::chrono::milliseconds timeout = std::chrono::seconds(30));

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ~ChildProcess();

  // Starts `binary` (a path, or a name under BinDir()) with `args`; stdout+stderr go to
  // `log_file` (appended).
  static absl::StatusOr<ChildProcess> Start(const std::string& binary,
                                            const std::vector<std::string>& args,
                                            const std::string& log_file,
                                            const std::map<std::string, std::string>& env = {});

  pid_t pid() const { return pid_; }
  bool running();
  void Signal(int sig);
  // Waits for exit; returns the exit code (128+signal if killed), or -1 on timeout after
  // printing the child's thread stacks (DumpStacks), so a hang in CI can be diagnosed.
  int Wait(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Prints every thread's stack of the running child to stderr (needs gdb).
  void DumpStacks();
  // SIGKILL and reap.
  void Kill();

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// A Submarine service process started from a YAML config with a ready file.
struct ReadyInfo {
  std::string grpc;
  std::string metrics;
  std::string http;  // gateway only
};
// A service config written flat, as tests compose it (server:, database:, events:, ... at the
// top): the keys of config.v1.CommonServiceConfig moved under `common:`, the service's own
// keys left at the top.
std::string NestCommonConfig(const std::string& yaml);

// Writes `config_yaml` (nested with NestCommonConfig for every binary but the gateway and the
// event bus) to dir/<name>.yaml, appends `ready_file: dir/<name>.ready` under the
// given YAML path (e.g. "server" → `server.ready_file`), starts the binary and waits for the
// ready file. Fails with the log's tail if the process exits first.
absl::StatusOr<ChildProcess> StartService(const std::string& binary, const std::string& dir,
                                          const std::string& name, std::string config_yaml,
                                          ReadyInfo* ready);

// A submarine-eventbus on random 127.0.0.1 ports (config and log in `dir`, named "eventbus"):
// publishers connect to `frontend`, subscribers to `backend`.
struct EventBus {
  ChildProcess process;
  std::string frontend;
  std::string backend;
};
absl::StatusOr<EventBus> StartEventBus(const std::string& dir);

// The last `max_bytes` of a file (for failure messages).
std::string Tail(const std::string& path, size_t max_bytes = 4000);

}  // namespace submarine::testing
