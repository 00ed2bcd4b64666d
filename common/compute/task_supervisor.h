#pragma once
// submarine-task-supervisor: watches one replica of a local workload, so that the replica's fate
// is recorded even when the service that submitted it is restarted or killed.
//
//   submarine-task-supervisor --task-dir DIR [--ready-fd N] [--detach]
//
// With --detach it forks and the parent exits at once (the launcher reaps that parent, so the
// service never holds a zombie and the supervisor is re-parented to init). It becomes a session
// leader, ignores SIGHUP and SIGPIPE, takes DIR/lock (another supervisor holding it → it writes
// "busy" to the ready fd and exits), reads DIR/task.json (task_files.h) and, attempt after
// attempt up to max_restarts + 1:
//   - starts the command in a process group of its own (PR_SET_PDEATHSIG=SIGKILL, so a killed
//     supervisor takes its child along), stdin from /dev/null, stdout+stderr appended to the
//     log, in the plan's working directory and cgroup, with the plan's environment plus
//     SUBMARINE_TASK_ATTEMPT;
//   - records DIR/supervisor.json (itself, the attempt, the group) and, once, writes "ready" to
//     the ready fd;
//   - waits; on SIGTERM/SIGINT (or a stop marker seen after the start) it sends SIGTERM to the
//     group, waits the stop marker's grace_ms (10 s when there is none) and then SIGKILLs it;
//   - kills whatever the attempt left in its group.
// Then it writes DIR/status.json: SUCCEEDED (exit 0), KILLED (stopped through the stop marker),
// FAILED (anything else, with "exit code N" or "killed by signal N (SIGX)").
//
// Resource limits: with cpu_millis/memory_bytes set and a cgroup_root that is a writable cgroup
// v2 hierarchy offering the controllers, the task runs in <cgroup_root>/submarine/<id>.<task>
// with cpu.max and memory.max; otherwise it runs unlimited and every status message of the task
// says why ("limits not enforced: ...").

#include <string>

#include "absl/status/statusor.h"

namespace submarine::compute::local {

struct SupervisorArgs {
  std::string task_dir;
  int ready_fd = -1;  // gets one line: "ready", "busy", "done" or "error: ..."; -1: none
  bool detach = false;
};

// INVALID_ARGUMENT for an unknown flag, a missing --task-dir or a malformed --ready-fd.
absl::StatusOr<SupervisorArgs> ParseSupervisorArgs(int argc, char** argv);

// Runs the supervisor in the calling (only) thread; returns the process exit code: 0 once the
// task's status is recorded (or another supervisor owns it), 1 when even that failed.
int RunTaskSupervisor(const SupervisorArgs& args);

}  // namespace submarine::compute::local
