#pragma once
// The files through which the local backend and its per-task supervisors talk. There is no other
// channel: a LocalBackend keeps no state in memory, so a new instance over the same directory
// (after the service was restarted or killed) knows everything the old one knew.
//
// A task's directory, <root>/workloads/<id>/tasks/<role>-<index>/, holds
//   task.json        TaskPlan — what to run; written by the backend before the supervisor starts
//   supervisor.json  SupervisorRecord — who supervises, which attempt runs, its process group;
//                    written by the supervisor when each attempt starts
//   status.json      TaskOutcome — the final phase; written once, by the supervisor or (when the
//                    supervisor vanished) by the backend. Its presence means the task is final.
//   lock             flock()ed by the supervisor for as long as it lives; whoever writes
//                    status.json holds it, so the backend never records a verdict over a live
//                    supervisor's.
// and the workload directory holds stop.json (StopRequest) once Stop or Delete was called.
//
// Every file is JSON and replaced atomically (temp file, fsync, rename): a reader sees the old or
// the new content, never a torn one. This library links absl and nlohmann_json only, so the
// supervisor stays a small program without gRPC.

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/compute/compute.h"

namespace submarine::compute::local {

inline constexpr char kPlanFile[] = "task.json";
inline constexpr char kSupervisorFile[] = "supervisor.json";
inline constexpr char kStatusFile[] = "status.json";
inline constexpr char kLockFile[] = "lock";
inline constexpr char kStopFile[] = "stop.json";

// Everything a supervisor needs to run one replica, resolved by the backend at Submit.
struct TaskPlan {
  std::string workload_id;
  TaskRef task;
  std::vector<std::string> argv;  // argv[0] without '/' is looked up in env's PATH
  // The complete environment but SUBMARINE_TASK_ATTEMPT, which the supervisor sets per attempt.
  std::map<std::string, std::string> env;
  std::string working_dir;
  std::string log_file;   // stdout and stderr of every attempt are appended here
  std::string stop_file;  // the workload's stop.json
  int max_restarts = 0;
  int64_t cpu_millis = 0;    // 0: no cpu.max
  int64_t memory_bytes = 0;  // 0: no memory.max
  std::string cgroup_root;   // a cgroup v2 directory to create the task's cgroup under; "": none
  std::string host;
  // Service replicas (WorkloadKind::kService): started again after every exit until stopped;
  // `task_stop_file` stops this replica alone (scaled down), like the workload's stop_file.
  bool restart_always = false;
  std::string task_stop_file;
  int port = 0;                         // where it serves (SUBMARINE_PORT); 0: not a service
  std::optional<ReadinessProbe> probe;  // probed on 127.0.0.1:port by the supervisor
  // nvidia-smi to ask for the GPU figures of a task given GPUs (CUDA_VISIBLE_DEVICES); "": none.
  std::string nvidia_smi;
};

// A process as it was when recorded: a live process with the same pid, boot and start time is
// the same process, even after the pid was reused.
struct ProcessIdentity {
  pid_t pid = 0;
  uint64_t start_ticks = 0;  // field 22 of /proc/<pid>/stat
  std::string boot_id;       // /proc/sys/kernel/random/boot_id
};

struct SupervisorRecord {
  ProcessIdentity supervisor;
  int attempt = 1;
  pid_t child_pid = 0;             // also its process group id
  int64_t started_us = 0;          // first attempt, microseconds since the epoch
  int64_t attempt_started_us = 0;  // this attempt
  std::string cgroup;              // the task's cgroup directory; "" when none
  std::string note;                // what the task's status message should say (e.g. limits)
  int port = 0;                    // a service replica's port
  // A service replica between attempts: why and when it starts again ("" while one runs).
  std::string restarting;
};

// A service replica whose supervisor vanished is started again by the backend under a new
// supervisor, which counts its attempts on from the number in this file.
inline constexpr char kAttemptsFile[] = "attempts";

// A service replica's readiness (ready.json), written by its supervisor when it changes.
inline constexpr char kReadyFile[] = "ready.json";
struct Readiness {
  int attempt = 1;  // the attempt it was probed in: an older attempt's verdict does not count
  bool ready = false;
  std::string message;  // why it is not ready ("connection refused", "GET /healthz: 503")
};
std::string ToJson(const Readiness& readiness);
absl::StatusOr<Readiness> ReadinessFromJson(const std::string& text);

// The task's processes' usage, sampled by the supervisor (usage.json) while they run.
inline constexpr char kUsageFile[] = "usage.json";
struct GpuUsage {
  int64_t memory_bytes = 0;      // held by the task's processes on any GPU now (0 once ended)
  int64_t max_memory_bytes = 0;  // the most seen
  double utilization = 0;        // percent, the average of the task's GPUs at the last sample
};
struct TaskUsage {
  int64_t cpu_micros = 0;
  int64_t rss_bytes = 0;
  int64_t max_rss_bytes = 0;
  std::optional<GpuUsage> gpu;  // when nvidia-smi answered for a task with GPUs
};
std::string ToJson(const TaskUsage& usage);
absl::StatusOr<TaskUsage> UsageFromJson(const std::string& text);
// What the processes of `session` in process group `pgrp` use now (from /proc); their pids into
// `pids` when given.
TaskUsage SampleGroupUsage(pid_t session, pid_t pgrp, std::vector<pid_t>* pids = nullptr);

// The GPU figures of a task from nvidia-smi's answers (--format=csv,noheader,nounits):
// `apps` to --query-compute-apps=pid,used_memory (MiB), `gpus` to
// --query-gpu=index,uuid,utilization.gpu. Memory adds up the apps whose pid is one of `pids`;
// utilization averages the GPUs in `devices` (CUDA_VISIBLE_DEVICES: indexes or UUIDs). Lines
// that do not parse ("[N/A]", "[Not Supported]") are skipped.
GpuUsage ParseGpuUsage(const std::string& apps, const std::string& gpus,
                       const std::vector<pid_t>& pids, const std::vector<std::string>& devices);
// Asks the nvidia-smi at `path` (each call bounded by 5 s); nullopt when it cannot answer.
std::optional<GpuUsage> SampleGpuUsage(const std::string& path, const std::vector<pid_t>& pids,
                                       const std::vector<std::string>& devices);

struct TaskOutcome {
  Phase phase = Phase::kFailed;  // final: kSucceeded, kFailed or kKilled
  std::optional<int> exit_code;
  std::optional<int> signal;
  int attempt = 1;
  int64_t started_us = 0;  // 0 when it never started
  int64_t finished_us = 0;
  std::string host;
  std::string message;
  std::optional<TaskUsage> usage;  // every attempt's processes, from getrusage(RUSAGE_CHILDREN)
};

struct StopRequest {
  int64_t grace_ms = 0;
  int64_t requested_us = 0;
};

std::string ToJson(const TaskPlan& plan);
std::string ToJson(const SupervisorRecord& record);
std::string ToJson(const TaskOutcome& outcome);
std::string ToJson(const StopRequest& stop);
// INVALID_ARGUMENT (DATA_LOSS would be as fair) for text that is not the expected JSON.
absl::StatusOr<TaskPlan> PlanFromJson(const std::string& text);
absl::StatusOr<SupervisorRecord> SupervisorRecordFromJson(const std::string& text);
absl::StatusOr<TaskOutcome> OutcomeFromJson(const std::string& text);
absl::StatusOr<StopRequest> StopRequestFromJson(const std::string& text);

// Writes `content` to `path` through `path`.tmp.<pid>.<n>, fsynced, then renamed over `path`.
// UNAVAILABLE with the errno text on failure.
absl::Status WriteFileAtomically(const std::string& path, const std::string& content,
                                 int mode = 0644);
// NOT_FOUND if the file does not exist, UNAVAILABLE if it cannot be read.
absl::StatusOr<std::string> ReadSmallFile(const std::string& path);
bool FileExists(const std::string& path);

// What /proc/<pid>/stat says; nullopt when the process does not exist.
struct ProcStat {
  char state = '?';  // 'Z' zombie, 'X' dead
  pid_t ppid = 0;
  pid_t pgrp = 0;
  pid_t session = 0;
  uint64_t start_ticks = 0;
};
std::optional<ProcStat> ReadProcStat(pid_t pid);
std::string BootId();
absl::StatusOr<ProcessIdentity> IdentityOf(pid_t pid);
// Whether the identified process still runs: same boot, same pid, same start time, not a zombie.
bool IsAlive(const ProcessIdentity& identity);

// SIGKILLs every process of `session` whose process group is `pgrp` (the processes a task left
// behind); returns how many it signalled. Both ids are checked so that a reused pid alone never
// gets anything killed.
int KillGroupInSession(pid_t session, pid_t pgrp);

int64_t NowMicros();

// "exit code 3", "killed by signal 9 (SIGKILL)" for a waitpid() status.
std::string DescribeWaitStatus(int wait_status);

}  // namespace submarine::compute::local
