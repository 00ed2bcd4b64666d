#pragma once
// Process helpers for the local stack: spawning children with their output in a log file,
// liveness checks that treat zombies as dead, and scans of /proc.

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/util/wait.h"  // WaitUntil

namespace submarine::cli {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable path
  std::string log_file;           // stdout and stderr are appended here; stdin is /dev/null
  bool new_session = false;       // setsid(): detached from the caller's terminal and group
  int parent_death_signal = 0;    // sent to the child when the spawning thread dies (0: none)
};

// Forks and execs. The child starts with an empty signal mask, default dispositions and no file
// descriptors other than 0-2. Returns the child's pid; an exec failure shows up as exit code 127
// with the reason in the log file.
absl::StatusOr<pid_t> SpawnProcess(const SpawnOptions& options);

// True if `pid` exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// The command line of `pid` with arguments separated by spaces; empty if it is gone.
std::string ProcessCmdline(pid_t pid);

// Live (non-zombie) processes other than this one whose command line contains `needle`.
std::vector<pid_t> ProcessesMentioning(const std::string& needle);

// Sends SIGTERM to `pid`, waits up to `grace` for it to die, then sends SIGKILL and waits up to
// five more seconds. Returns true if the process is gone. Does not reap (for non-children).
bool TerminateProcess(pid_t pid, std::chrono::milliseconds grace);

// The last `max_bytes` of a file, for error messages; empty if unreadable.
std::string FileTail(const std::string& path, size_t max_bytes = 3000);

}  // namespace submarine::cli
