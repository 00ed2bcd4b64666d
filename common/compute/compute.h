#pragma once
// common/compute: one interface to run workloads — an experiment's tasks today, notebook and
// model-server replicas later — on a compute cluster (local processes, Kubernetes, YARN).
//
// A workload is roles × replicas. The caller (a control loop in the owning service) chooses the
// workload's id, submits it once, then observes it by polling Get/List; the backend never calls
// back. Every method is idempotent so a reconciler can retry after any crash:
//   - Submit of an id that already exists is OK and changes nothing (the first spec wins);
//   - Stop of a finished workload is OK; Delete of an absent one is OK.
// A transient failure of the backend (API server down, file system error) is an UNAVAILABLE
// status, never a phase: callers must not change stored state on an error.
//
// Phases only move forward: kPending → kRunning → kSucceeded | kFailed | kKilled.
// A workload whose tasks cannot be found any more (a supervisor died without recording the exit)
// is kFailed with a reason, never silently dropped.
//
// Logs are kept per task (role, index) across attempts and outlive the workload's processes:
// ReadLog works after the workload finished and after Delete(id, /*keep_logs=*/true).
//
// Implementations are thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::compute {

// What one replica asks for. Parsed from Kubernetes quantity strings by quantity.h.
struct Resources {
  int64_t cpu_millis = 0;    // 0 = unspecified
  int64_t memory_bytes = 0;  // 0 = unspecified
  int64_t gpus = 0;
  bool operator==(const Resources&) const = default;
  Resources& operator+=(const Resources& o) {
    cpu_millis += o.cpu_millis;
    memory_bytes += o.memory_bytes;
    gpus += o.gpus;
    return *this;
  }
  friend Resources operator+(Resources a, const Resources& b) { return a += b; }
};

enum class WorkloadKind {
  // Every replica runs to completion; the workload succeeds when all of them do.
  kBatch,
  // Replicas that serve a port until stopped (notebook sessions, model servers): one that exits,
  // whatever its exit code, is started again (attempt + 1) after a back-off; roles can be scaled
  // (Backend::Scale, down to 0); the workload is RUNNING until stopped (then KILLED) and never
  // succeeds. Framework must be kPlain and max_restarts is not used.
  kService,
};

// How a service replica tells that it takes requests. The replica listens on the port in its
// SUBMARINE_PORT variable (on every interface of its host or pod, or 127.0.0.1 on the local
// backend, where replicas share the host).
struct ReadinessProbe {
  // GET <path> must answer 2xx or 3xx; "" = a TCP connection is accepted.
  std::string http_path;
  std::chrono::milliseconds period{1000};
  bool operator==(const ReadinessProbe&) const = default;
};

// Which distributed-training settings the backend sets in each task's environment.
enum class Framework {
  kPlain,       // nothing beyond SUBMARINE_* variables
  kTensorflow,  // TF_CONFIG {"cluster": {role: ["host:port", ...]}, "task": {type, index}}
  kPytorch,     // MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK, LOCAL_RANK
  kXgboost,     // DMLC_TRACKER_URI, DMLC_TRACKER_PORT, DMLC_TASK_ID, DMLC_NUM_WORKER, DMLC_ROLE
};

// One role of a workload ("worker", "ps", "master", ...), lower-case.
struct RoleSpec {
  std::string name;
  int replicas = 1;
  // argv; a shell string is given as {"/bin/sh", "-c", text}. Never empty.
  std::vector<std::string> command;
  // Merged over WorkloadSpec::env (role wins); the backend's own variables (SUBMARINE_*,
  // rendezvous settings) are set last and cannot be overridden.
  std::map<std::string, std::string> env;
  Resources resources;
  std::string image;  // container image; ignored by the local backend
  // A failed replica is restarted in place up to this many times (attempt 1, 2, ...).
  int max_restarts = 0;
  // kService: the port each replica serves, given to it as SUBMARINE_PORT; 0 = the backend
  // picks one (the local backend always picks a free port per replica, as replicas share the
  // host). Its readiness probe; none = ready once started.
  int port = 0;
  std::optional<ReadinessProbe> readiness;
};

struct WorkloadSpec {
  // Chosen by the caller, unique per backend: [a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?.
  std::string id;
  WorkloadKind kind = WorkloadKind::kBatch;
  Framework framework = Framework::kPlain;
  std::vector<RoleSpec> roles;
  std::map<std::string, std::string> env;
  // Credentials (tokens, keys) set in every task's environment like `env` (env wins over
  // them), but never kept in plain text where the spec is: the local backend writes them only
  // into its tasks' private (0600) plans; Kubernetes keeps them in a Secret the pods reference.
  // The spec a backend stores (and returns for a restart) names their keys only.
  std::map<std::string, std::string> secret_env;
  // Owner labels (e.g. submarine.experiment=projects/p/experiments/e); kept by the backend and
  // returned by Get/List so a reconciler can tell whose a workload is.
  std::map<std::string, std::string> labels;
  // Each replica's working directory; empty = a fresh per-task directory made by the backend.
  std::string working_dir;
};

enum class Phase { kPending, kRunning, kSucceeded, kFailed, kKilled };

const char* PhaseName(Phase phase);  // "PENDING", "RUNNING", ...
inline bool IsFinal(Phase phase) { return phase >= Phase::kSucceeded; }

// Identifies one replica of a role.
struct TaskRef {
  std::string role;
  int index = 0;
  bool operator==(const TaskRef&) const = default;
};

// What a task's processes used (system metrics), where the backend can tell. The local backend
// counts (the kernel's figures); the Kubernetes backend samples metrics-server, whose CPU figure
// is a rate: its cpu_seconds is integrated from those rates, an estimate (kubernetes_backend.h).
struct Usage {
  double cpu_seconds = 0;        // user + system, all of the task's processes so far
  int64_t memory_bytes = 0;      // resident now (0 once it ended)
  int64_t max_memory_bytes = 0;  // the largest resident size seen
  // GPUs, where the cluster can tell (local: nvidia-smi, for tasks given GPUs): the memory its
  // processes hold on them now (0 once it ended), the most seen, and the average utilization of
  // its GPUs at the last sample, in percent.
  std::optional<int64_t> gpu_memory_bytes;
  int64_t max_gpu_memory_bytes = 0;
  double gpu_utilization = 0;
  bool operator==(const Usage&) const = default;
};

struct TaskStatus {
  TaskRef task;
  int attempt = 1;  // 1 for the first run, +1 per restart
  Phase phase = Phase::kPending;
  std::optional<int> exit_code;  // when it exited
  std::optional<int> signal;     // when a signal ended it
  std::string host;              // where it runs
  std::optional<std::chrono::system_clock::time_point> start_time;
  std::optional<std::chrono::system_clock::time_point> finish_time;
  // Why it is in this phase when that is not obvious ("exit code 3", "supervisor vanished").
  std::string message;
  std::optional<Usage> usage;  // sampled while it runs, final once it ended; absent: unknown
  // kService: "host:port" where the replica serves while it runs, and whether it passes its
  // readiness probe now (false between attempts and before the first probe succeeds).
  std::string endpoint;
  bool ready = false;
};

struct WorkloadStatus {
  std::string id;
  Phase phase = Phase::kPending;
  std::string message;  // for kFailed/kKilled: the first failing task and why
  std::map<std::string, std::string> labels;
  std::vector<TaskStatus> tasks;  // ordered by role (spec order), then index
};

struct LogChunk {
  std::string data;         // at most the max_bytes asked for
  int64_t next_offset = 0;  // offset of the byte after `data`
  int64_t size = 0;         // size of the log so far
  bool complete = false;    // the task has finished: nothing will be appended after `size`
};

class Backend {
 public:
  virtual ~Backend() = default;

  // "local", "kubernetes", "yarn".
  virtual std::string Kind() const = 0;

  // Starts the workload (asynchronously: Get shows its progress). INVALID_ARGUMENT naming the
  // field for a spec the backend cannot run; OK if `spec.id` already exists.
  virtual absl::Status Submit(const WorkloadSpec& spec) = 0;

  // NOT_FOUND if the backend holds no workload with this id.
  virtual absl::StatusOr<WorkloadStatus> Get(const std::string& id) = 0;

  // Every workload the backend holds (running or finished, not deleted), for reconciliation.
  virtual absl::StatusOr<std::vector<WorkloadStatus>> List() = 0;

  // Asks the backend to call `notify` (from any thread, possibly often) whenever a workload may
  // have changed, so that a control loop can observe at once rather than at its next period.
  // A hint only: backends that cannot tell never call it, and callers keep polling. Call once,
  // before the backend is used.
  virtual void OnChange(std::function<void()> notify) { (void)notify; }

  // Asks every task to stop (SIGTERM or a graceful delete), forcing it after `grace`. Returns at
  // once; the workload reaches kKilled (or its own final phase if it finished first).
  virtual absl::Status Stop(const std::string& id, std::chrono::milliseconds grace) = 0;

  // Removes the workload, killing what still runs. Logs are removed too unless `keep_logs`.
  virtual absl::Status Delete(const std::string& id, bool keep_logs) = 0;

  // kService workloads: sets how many replicas `role` runs (0..kMaxReplicas). New replicas get
  // the next indexes; scaling down stops the highest indexes (SIGTERM, SIGKILL after `grace`),
  // whose logs stay readable. INVALID_ARGUMENT for a count out of range, NOT_FOUND for an unknown
  // workload or role, FAILED_PRECONDITION for a batch workload or one being stopped.
  virtual absl::Status Scale(const std::string& id, const std::string& role, int replicas,
                             std::chrono::milliseconds grace) {
    (void)id, (void)role, (void)replicas, (void)grace;
    return absl::UnimplementedError(Kind() + " backend cannot run service workloads yet");
  }

  // Replaces the values of secret_env keys the workload already has (a workload identity token
  // renewed while it runs), for the tasks that run now and those that start later. Running tasks
  // read the new values from files: on backends that can (CanUpdateSecrets), every secret_env
  // key K is also the file $SUBMARINE_SECRETS_DIR/K in every task, replaced atomically here.
  // INVALID_ARGUMENT for a key the workload does not have, NOT_FOUND for an unknown workload,
  // FAILED_PRECONDITION for one submitted before the backend could do it.
  virtual bool CanUpdateSecrets() const { return false; }
  // Whether UpdateSecrets will reach the tasks of `spec` once it is submitted (some shapes of
  // workload may not take renewed secrets on a backend that can update others').
  virtual bool UpdatesSecretsOf(const WorkloadSpec& spec) const {
    (void)spec;
    return CanUpdateSecrets();
  }
  virtual absl::Status UpdateSecrets(const std::string& id,
                                     const std::map<std::string, std::string>& values) {
    (void)id, (void)values;
    return absl::UnimplementedError(Kind() + " backend cannot update a running workload's secrets");
  }

  // Reads a task's combined stdout/stderr from byte `offset`. NOT_FOUND if the workload or task
  // is unknown; OUT_OF_RANGE never (an offset past the end returns empty data).
  virtual absl::StatusOr<LogChunk> ReadLog(const std::string& id, const TaskRef& task,
                                           int64_t offset, int64_t max_bytes) = 0;
};

}  // namespace submarine::compute
