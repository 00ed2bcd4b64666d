#pragma once
// The Kubernetes compute backend, core API path: every role of a workload is a `batch/v1`
// Indexed Job (completions = parallelism = replicas) in one namespace, its pods reachable by name
// through one headless Service, all owned by an anchor ConfigMap that holds the workload's spec
// and, once it is decided, its final status. The anchor makes Kubernetes the backend's only
// state: a restarted service (a new KubernetesBackend) sees every workload as it is, and deleting
// the anchor deletes everything (ownerReferences).
//
//   ConfigMap <id>             labels app.kubernetes.io/managed-by=submarine, submarine.workload
//                              data workload.json (the spec, as workload.h writes it)
//                              annotations submarine.apache.org/submitted (all objects created),
//                              /stop (the first Stop's grace), /final (phase, message, tasks)
//   Service   <id>             headless, selects the workload's pods: <id>-<role>-<n>.<id>
//   Job       <id>-<role>      Indexed; restartPolicy Never; backoffLimitPerIndex =
//                              max_restarts, maxFailedIndexes 0 (Kubernetes 1.29+)
//
// Each pod runs `/bin/sh -c <prelude> submarine-task <argv...>`: the prelude derives the
// replica's index (JOB_COMPLETION_INDEX), rank and TF_CONFIG task, then execs argv unchanged
// (an argv with spaces stays one argument; a shell string is the caller's {"/bin/sh","-c",..}).
// Environment, later entries winning: spec.env, the role's env, then SUBMARINE_WORKLOAD_ID,
// SUBMARINE_TASK_ROLE, SUBMARINE_TASK_INDEX, SUBMARINE_TASK_ATTEMPT and the framework's
// rendezvous settings on the pods' DNS names (TF_CONFIG on port 2222 of every replica;
// MASTER_ADDR/MASTER_PORT 23456, WORLD_SIZE, RANK, LOCAL_RANK 0 for PyTorch; DMLC_* with the
// tracker on port 9091 of rank 0 for XGBoost; ranks count a role named "master" first).
//
// Observation: three informers (anchors, jobs, pods; list+watch, relist on 410) keep a copy of
// the namespace's Submarine objects, so Get and List read memory, not the API server. A task is
// its index's newest pod: Pending/Running/Succeeded as the pod says; a failed pod is FAILED only
// once its Job has failed (before, the Job controller starts another attempt: PENDING). The
// workload: a task FAILED → FAILED ("task worker-1 failed: exit code 3"; the other tasks are
// stopped); all SUCCEEDED → SUCCEEDED; stopped and every task ended or gone → KILLED; a task
// started → RUNNING; else PENDING. A submitted workload whose Job disappeared (deleted by someone
// else) is FAILED with that reason, never dropped. The final status is written on the anchor, so
// it survives the pods.
//
// Stop deletes the Jobs (orphaning their pods, so no new attempt starts) and then every pod with
// the grace period (the kubelet sends SIGTERM, SIGKILL after the grace). Delete removes the anchor
// and with it everything.
//
// Logs: a pod's log is archived under Options::logs_dir when its container has ended (and, for a
// pod being stopped, followed until it ends), so logs outlive pods and workloads:
//   <logs_dir>/<id>/workload.json                    the spec (which tasks exist)
//   <logs_dir>/<id>/<role>-<index>/<attempt>.log     one ended attempt
// ReadLog concatenates a task's archived attempts and the running attempt's live log.
//
// Kubeflow Trainer: when API discovery finds trainer.kubeflow.org/v1alpha1 at start-up (and
// Options::use_trainer), a workload whose roles form one set of alike nodes runs as one TrainJob
// instead (trainjob.h, the one file that knows its alpha schema); the anchor says which
// (annotation submarine.apache.org/api: trainjob), so a restarted backend reads it the same way.
// Its pods (label jobset.sigs.k8s.io/jobset-name) are the tasks, by completion index in rank
// order; the TrainJob's Failed condition fails the workload. Stop suspends the TrainJob (so the
// Job controller ends its pods and no new one starts, while ended pods keep their verdict and
// logs), deletes the live pods with the grace period, and deletes the TrainJob once the final
// verdict is recorded.
//
// Service workloads (WorkloadKind::kService): each role is an `apps/v1` StatefulSet
// <id>-<role> (podManagementPolicy Parallel, restartPolicy Always) under the same anchor and
// headless Service, its pods <id>-<role>-<ordinal>:
//   - a replica serves SUBMARINE_PORT (role.port, else 8080) on its pod IP (SUBMARINE_HOST, from
//     status.podIP); the container's readinessProbe is role.readiness (httpGet, or tcpSocket
//     when the path is empty; periodSeconds rounded up to whole seconds, failureThreshold 1);
//   - the task of a pod is (role, ordinal); its attempt is the container's restartCount + 1,
//     which the prelude also counts into SUBMARINE_TASK_ATTEMPT (in an emptyDir at
//     /var/run/submarine: the kubelet restarts the container with the same environment);
//   - a running replica that is not ready says why from the kubelet's latest `Unhealthy` Event
//     ("not ready: GET /ready: HTTP 404");
//   - each ended container's log is archived (pods/log?previous=true) as the next Get sees the
//     restart, so a replica's log holds all its attempts while the kubelet keeps only one
//     previous container;
//   - Scale records the role's replicas on the anchor (annotation submarine.apache.org/replicas,
//     the truth a restarted backend keeps to), follows the logs of the replicas it removes,
//     sets the StatefulSet's replicas and deletes those pods with the grace period;
//   - the workload is PENDING until a replica first runs, RUNNING from then on (annotation
//     submarine.apache.org/started), KILLED once stopped: Stop deletes the StatefulSets (Orphan)
//     and then the pods, as for Jobs. A StatefulSet deleted by someone else fails the workload.
// A pod the StatefulSet controller replaces (deleted or evicted) starts its attempts at 1 again.
// StatefulSets are watched only where the API server serves apps/v1 (every real cluster does).
//
// Secrets: spec.secret_env is a Secret <id> (created before the anchor, then owned by it) that
// every task reads as environment variables and, for Jobs and StatefulSets, as files: the Secret
// is mounted read-only at SUBMARINE_SECRETS_DIR (/var/run/secrets/submarine). UpdateSecrets
// patches the Secret and the kubelet refreshes the files of running pods (within its sync
// period); TrainJobs' pods, made by the Trainer from its runtime, do not mount it
// (UpdatesSecretsOf is false for a workload that will run as one).
//
// System metrics (TaskStatus::usage): where discovery finds the resource metrics API
// (metrics.k8s.io/v1beta1 pods, i.e. metrics-server; asked at start-up by a thread of the
// backend, and again each period while discovery does not answer), that thread LISTs the
// namespace's PodMetrics once per Options::metrics_period (the Submarine pods by label; every pod
// of the namespace when TrainJobs are used, whose pods lack that label) and keeps, per pod, in
// memory:
//   - cpu_seconds: integrated from the CPU *rates* metrics-server reports (cores over its window,
//     read to the millicore, rounded up): each new sample adds rate × window, or rate × the time
//     since the previous sample when samples were missed. An estimate: CPU before the first
//     sample's window is not counted, and a rate stands for its whole interval;
//   - memory_bytes: the working set of the task's newest pod at the last sample while it runs
//     (0 once it ended); max_memory_bytes: the largest working set this backend saw;
//   - a task's figures add up its attempts' pods (CPU) and take the largest of them (memory).
// Usage is absent (unknown, never zero) where the cluster does not serve the metrics API and for
// a task none of whose pods was sampled. A failing or slow metrics API is only logged: Get and
// List never wait for it, and usage stays as last seen. The final usage is recorded with the
// final status on the anchor; a restarted backend starts its running tasks' figures again from
// nothing (it keeps no history of them).
//
// Thread-safe.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/compute/compute.h"
#include "common/compute/trainjob.h"
#include "common/kube/client.h"
#include "common/kube/informer.h"

namespace submarine::compute {

class KubernetesBackend : public Backend {
 public:
  struct Options {
    kube::ClusterConfig cluster;
    std::string namespace_;     // "" = the cluster config's namespace
    std::string default_image;  // for roles without an image; "" = an image is required
    std::string logs_dir;       // where logs are archived; created if missing; required
    // How long Get waits for the informers' first list at start.
    std::chrono::milliseconds sync_timeout = std::chrono::seconds(30);
    int watch_timeout_seconds = 300;
    // Run fitting workloads as Kubeflow Trainer TrainJobs where the cluster serves them.
    bool use_trainer = true;
    trainjob::Runtimes runtimes;  // the ClusterTrainingRuntimes TrainJobs reference
    // Kueue: the LocalQueue every Job or TrainJob is labelled for (kueue.x-k8s.io/queue-name);
    // "" = none. Kueue then suspends and admits them itself; Submarine never flips suspend to
    // start one, and shows the Kueue Workload's conditions as the reason a workload is pending.
    std::string kueue_queue;
    // How often the pods' metrics are listed where the cluster serves metrics.k8s.io; 0 = never.
    std::chrono::milliseconds metrics_period = std::chrono::seconds(10);
  };

  static absl::StatusOr<std::unique_ptr<KubernetesBackend>> Create(Options options);
  ~KubernetesBackend() override;

  std::string Kind() const override { return "kubernetes"; }
  absl::Status Submit(const WorkloadSpec& spec) override;
  absl::StatusOr<WorkloadStatus> Get(const std::string& id) override;
  // Observes only the workloads whose objects changed since the last List (the informers say
  // which); the others are answered from that List's observation.
  absl::StatusOr<std::vector<WorkloadStatus>> List() override;
  void OnChange(std::function<void()> notify) override;
  absl::Status Stop(const std::string& id, std::chrono::milliseconds grace) override;
  absl::Status Delete(const std::string& id, bool keep_logs) override;
  absl::Status Scale(const std::string& id, const std::string& role, int replicas,
                     std::chrono::milliseconds grace) override;
  absl::StatusOr<LogChunk> ReadLog(const std::string& id, const TaskRef& task, int64_t offset,
                                   int64_t max_bytes) override;
  // Patches the workload's Secret, which Jobs' and StatefulSets' pods mount at
  // SUBMARINE_SECRETS_DIR (/var/run/secrets/submarine); TrainJobs' pods do not.
  bool CanUpdateSecrets() const override { return true; }
  bool UpdatesSecretsOf(const WorkloadSpec& spec) const override;
  absl::Status UpdateSecrets(const std::string& id,
                             const std::map<std::string, std::string>& values) override;

  // The objects Submit creates for `spec`, in creation order (anchor, service, jobs; or anchor,
  // TrainJob when `trainer` is given and the workload fits one), without server-set fields: the
  // manifests checked against golden files.
  static absl::StatusOr<std::vector<nlohmann::json>> Manifests(
      const WorkloadSpec& spec, const std::string& namespace_, const std::string& default_image,
      const trainjob::Runtimes* trainer = nullptr, const std::string& kueue_queue = "");

  // Whether the cluster served Kubeflow Trainer's TrainJob at start-up (and it is used).
  bool uses_trainer() const { return trainjobs_ != nullptr; }

  kube::Client& client() { return *client_; }

 private:
  struct Objects;  // what the informers hold about one workload
  KubernetesBackend(Options options, std::unique_ptr<kube::Client> client);
  absl::Status Start();
  std::string Path(const std::string& plural, const std::string& name = "") const;
  absl::StatusOr<Objects> Find(const std::string& id);
  absl::StatusOr<WorkloadStatus> Observe(const std::string& id, Objects objects);
  // Observe's part for kService workloads (neither final nor unsubmitted).
  absl::StatusOr<WorkloadStatus> ObserveService(const std::string& id, Objects objects,
                                                bool stopping);
  // Why a running replica's pod is not ready, from the kubelet's latest Unhealthy Event.
  std::string NotReadyReason(const nlohmann::json& pod, const std::string& http_path);
  absl::Status CreateMissing(const WorkloadSpec& spec, const nlohmann::json& anchor);
  absl::Status StopObjects(const std::string& id, const Objects& objects,
                           std::chrono::milliseconds grace);
  // The task a pod runs (nullopt: none of the workload's).
  static std::optional<TaskRef> PodTask(const Objects& objects, const nlohmann::json& pod);
  // Keeps a pod's log in the logs dir: once (a snapshot), or — `follow` — to the container's end,
  // calling `on_started` once the stream is open.
  absl::Status Archive(const std::string& id, const TaskRef& task, const nlohmann::json& pod,
                       int attempt, bool follow, const std::function<void()>& on_started = nullptr,
                       std::chrono::milliseconds follow_for = std::chrono::milliseconds(0));
  // Follows a pod's log on a thread of its own, returning once the stream is open (or failed):
  // the pod may then be deleted without losing what it writes in its `grace`.
  void ArchiveInBackground(const std::string& id, const TaskRef& task, const nlohmann::json& pod,
                           int attempt, std::chrono::milliseconds grace);
  std::string LogDir(const std::string& id) const;

  Options options_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<kube::Informer> anchors_;
  std::unique_ptr<kube::Informer> jobs_;
  std::unique_ptr<kube::Informer> pods_;
  std::unique_ptr<kube::Informer> sets_;          // StatefulSets, where the cluster serves apps/v1
  std::unique_ptr<kube::Informer> trainjobs_;     // when the cluster serves TrainJob
  std::unique_ptr<kube::Informer> trainer_pods_;  // their pods, by TrainJob name
  std::unique_ptr<kube::Informer> kueue_;         // Kueue Workloads, by job name (when queued)
  std::mutex mu_;
  // Pods whose logs a detached thread follows to their end, and their workload (mu_). A
  // workload is final only once none of its pods is followed: its logs are complete.
  std::map<std::string, std::string> following_;
  int followers_running_ = 0;  // threads not yet finished, waited for by the destructor (mu_)
  std::condition_variable followers_done_;
  bool FollowingLogsOf(const std::string& id);
  // Marks the workloads an informer change concerns: the object's name is the workload's id
  // (anchors, TrainJobs), its index label holds it (Jobs, pods), or — Kueue Workloads, indexed
  // by the name of their Job — the id is that name or one of its prefixes at a '-'.
  enum class IdFrom { kName, kIndex, kIndexPrefixes };
  void Changed(const kube::Informer::Change& change, IdFrom from);
  // Why Kueue keeps a pending workload waiting ("" when it does not, or Kueue is not used).
  std::string KueueReason(const Objects& objects) const;

  // ---- System metrics ----
  struct PodUsage {
    double cpu_seconds = 0;  // integrated from the rates seen
    int64_t memory_bytes = 0;
    int64_t max_memory_bytes = 0;
    std::string last_sample;  // its timestamp and window: a sample is counted once
    std::optional<std::chrono::system_clock::time_point> last_time;
  };
  // The sampler's loop: SampleMetrics once per metrics_period until the destructor.
  void SampleLoop();
  // One LIST of the namespace's PodMetrics into usage_; false once discovery says the cluster
  // does not serve them (sampling ends).
  bool SampleMetrics();
  // A task's usage from its attempts' pods (oldest first); `running`: its newest pod runs.
  std::optional<Usage> UsageOf(const std::string& id,
                               const std::vector<const nlohmann::json*>& pods, bool running);
  std::mutex usage_mu_;
  std::map<std::string, std::map<std::string, PodUsage>> usage_;  // by id, pod name (usage_mu_)
  bool metrics_discovered_ = false;                               // discovery answered (usage_mu_)
  bool metrics_failing_ = false;  // the last LIST failed: logged once (usage_mu_)
  bool sampler_stop_ = false;     // (usage_mu_)
  std::condition_variable sampler_wake_;
  std::thread sampler_;

  std::mutex observed_mu_;
  std::function<void()> notify_;                    // guarded by observed_mu_
  std::map<std::string, WorkloadStatus> observed_;  // List's last observations (observed_mu_)
  std::set<std::string> dirty_;                     // changed since (observed_mu_)
  bool everything_dirty_ = true;                    // a relist: observe all (observed_mu_)
  // Workloads this backend deleted, hidden at once although a late watch event may still show
  // them for a moment (guarded by mu_).
  std::set<std::string> deleted_;
};

}  // namespace submarine::compute
