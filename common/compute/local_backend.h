#pragma once
// The local compute backend (the embedded default): every replica is a process group on this
// host under its own submarine-task-supervisor (task_supervisor.h), which outlives the service
// and records how the replica ended. All state is in files under Options::root_dir
// (task_files.h); the backend keeps none in memory, so a new LocalBackend over the same
// directory — after the service restarted or was killed — adopts every workload as it is.
//
//   <root>/workloads/<id>/workload.json            the spec, rendezvous ports, submit time
//   <root>/workloads/<id>/stop.json                once Stop (or a failed task) asked to stop
//   <root>/workloads/<id>/tasks/<role>-<index>/    task.json, supervisor.json, status.json, lock
//   <root>/workloads/<id>/work/<role>-<index>/     the replica's working dir (no spec.working_dir)
//   <root>/logs/<id>/<role>-<index>.log            stdout+stderr of every attempt, appended
//
// What a task is, read from its files: status.json present → that final status; a supervisor
// recorded and alive (same pid, boot and /proc start time, not a zombie) → RUNNING; recorded
// but dead → FAILED "the task supervisor exited without recording a status", after the backend
// SIGKILLed what was left of the task's process group (and records that verdict, so it holds);
// nothing recorded yet → PENDING (and if no supervisor runs for it, as after a crash between
// Submit writing the workload and launching, Get launches one).
//
// The workload's phase: any task FAILED → FAILED (message "task <role>-<index> failed: <why>",
// the first to fail; the backend then stops the other tasks, as Stop with a 10 s grace); all
// SUCCEEDED → SUCCEEDED; all final otherwise → KILLED; some task started → RUNNING; else
// PENDING.
//
// Environment of a replica, later entries winning: PATH, HOME, USER, LOGNAME, LANG, LC_ALL,
// LC_CTYPE, TZ, TMPDIR and SHELL of the service (nothing else: the service's environment may hold
// secrets), spec.secret_env, spec.env, the role's env, then the backend's own:
// SUBMARINE_WORKLOAD_ID, SUBMARINE_TASK_ROLE, SUBMARINE_TASK_INDEX, SUBMARINE_TASK_ATTEMPT,
// SUBMARINE_SECRETS_DIR (the workload's secrets/, one 0600 file per secret_env key, which
// UpdateSecrets rewrites while tasks run; with secret_env only), CUDA_VISIBLE_DEVICES (the
// replica's GPUs from Options::gpus, "" for none) and the framework's rendezvous settings, on
// 127.0.0.1 with ports picked once at Submit. Ranks (PyTorch RANK, XGBoost DMLC_TASK_ID) count
// the replicas of a role named "master" first, then every role in spec order. Each replica sees
// only its own GPUs, as a one-process node would: LOCAL_RANK is 0 and LOCAL_WORLD_SIZE 1.
//
// Service workloads (kService): each replica gets a free port of its own, picked when the replica
// is planned, in SUBMARINE_PORT (with SUBMARINE_HOST=127.0.0.1; role.port is not used, since
// replicas share the host). Its supervisor starts it again after every exit (a back-off from
// 100 ms doubling to 10 s, reset after 10 s of steady running) and probes it every period
// (ready.json); the task shows endpoint "127.0.0.1:<port>", ready, and while between attempts the
// reason and the delay. Scale writes the new count into workload.json, plans and launches the
// new replicas (their secret_env from the workload's 0600 secrets.json), or stops the highest
// indexes each through a stop.json of its own. A service is RUNNING until stopped (also with
// zero replicas), KILLED once stopped. A service replica whose supervisor vanished is not
// failed but started again under a new supervisor (attempts counted on from the `attempts` file
// the backend leaves in its task directory), on the same port.
//
// Not done here: GPU accounting across workloads (each workload gets GPUs from the start of the
// list), images (ignored).
//
// Thread-safe.

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/compute/compute.h"
#include "common/compute/task_files.h"

namespace submarine::compute {

class LocalBackend : public Backend {
 public:
  struct Options {
    // Where every workload's files live; created if missing. Must be on a local file system
    // (rename and flock must work).
    std::string root_dir;
    // The submarine-task-supervisor program; "" = the one beside the running executable.
    std::string supervisor_path;
    // GPU ids handed to replicas through CUDA_VISIBLE_DEVICES, in order.
    std::vector<std::string> gpus;
    // Reported as every task's host; "" = gethostname().
    std::string host_name;
    // A cgroup v2 directory under which tasks with cpu/memory requests get their own cgroup
    // (cpu.max, memory.max). Where it is not writable or lacks the controllers, tasks run without
    // limits and their status message says so. "" = never use cgroups.
    std::string cgroup_root = "/sys/fs/cgroup";
    // Asked every 2 s by the supervisor of a task given GPUs for its GPU memory and utilization
    // (TaskStatus::usage); a name is looked up on PATH at Create. "" or not found: no GPU
    // figures.
    std::string nvidia_smi = "nvidia-smi";
  };

  // INVALID_ARGUMENT naming the option for an empty root_dir, a supervisor that is not an
  // executable file, or an empty or repeated GPU id; UNAVAILABLE if root_dir cannot be created.
  static absl::StatusOr<std::unique_ptr<LocalBackend>> Create(Options options);

  std::string Kind() const override { return "local"; }
  absl::Status Submit(const WorkloadSpec& spec) override;
  absl::StatusOr<WorkloadStatus> Get(const std::string& id) override;
  absl::StatusOr<std::vector<WorkloadStatus>> List() override;
  absl::Status Stop(const std::string& id, std::chrono::milliseconds grace) override;
  absl::Status Delete(const std::string& id, bool keep_logs) override;
  absl::StatusOr<LogChunk> ReadLog(const std::string& id, const TaskRef& task, int64_t offset,
                                   int64_t max_bytes) override;
  absl::Status Scale(const std::string& id, const std::string& role, int replicas,
                     std::chrono::milliseconds grace) override;
  bool CanUpdateSecrets() const override { return true; }
  absl::Status UpdateSecrets(const std::string& id,
                             const std::map<std::string, std::string>& values) override;

  // How long a failed workload's other tasks get between SIGTERM and SIGKILL.
  static constexpr std::chrono::milliseconds kFailureGrace = std::chrono::seconds(10);
  // Largest LogChunk returned, whatever max_bytes asks for.
  static constexpr int64_t kMaxLogChunk = 4 << 20;

 private:
  explicit LocalBackend(Options options);

  struct TaskView;

  std::string WorkloadDir(const std::string& id) const;
  std::string TaskDir(const std::string& id, const TaskRef& task) const;
  std::string LogFile(const std::string& id, const TaskRef& task) const;
  // The workload's stored workload.json: NOT_FOUND when there is none, UNAVAILABLE when it
  // cannot be read.
  absl::StatusOr<std::string> StoredWorkload(const std::string& id) const;

  absl::StatusOr<std::vector<local::TaskPlan>> PlanTasks(const WorkloadSpec& spec,
                                                         std::string* rendezvous_json) const;
  absl::Status WriteWorkload(const WorkloadSpec& spec) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a supervisor for every task of `id` that has none recorded and no status.
  absl::Status LaunchPending(const std::string& id, const WorkloadSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Launch(const std::string& task_dir) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<TaskView> ReadTask(const std::string& id, const TaskRef& task);
  absl::StatusOr<TaskView> SupervisorVanished(const std::string& id, const TaskRef& task,
                                              const local::SupervisorRecord& record);
  absl::StatusOr<std::vector<TaskView>> ReadTasks(const std::string& id, const WorkloadSpec& spec);
  // Records the stop request (the first one wins) and SIGTERMs every live supervisor of `id`.
  absl::Status RequestStop(const std::string& id, const WorkloadSpec& spec,
                           std::chrono::milliseconds grace);

  const Options options_;
  // Serialises launches (and Delete) within this instance; across instances the supervisors'
  // task locks keep a task to one supervisor.
  absl::Mutex mu_;
};

}  // namespace submarine::compute
