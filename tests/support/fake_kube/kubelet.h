#pragma once
// A simulated kubelet (with the scheduler's one job: binding) for one node, "fake-node" at
// 127.0.0.1. Every pod has the IP 127.0.0.1, or with `distinct_pod_ips` its own loopback address
// 127.0.0.N (N >= 2; Linux routes all of 127/8 to lo), held until the pod object is gone. For
// every pod without scheduling gates it binds the pod, then runs the pod's FIRST container
// `command` + `args` (argv, no shell; the image is ignored) as a local process in its own process
// group, with the container's environment (env values, $(VAR) references, valueFrom fieldRef /
// configMapKeyRef / secretKeyRef, envFrom) plus HOSTNAME and KUBERNETES_SERVICE_*; working
// directory `workingDir` when it exists, else a per-pod directory under work_dir; stdout+stderr
// into a per-instance log file under work_dir.
//
// Pod status follows what a kubelet reports: Pending (ContainerCreating) → Running (podIP) →
// Succeeded/Failed with state.terminated {exitCode, signal, reason Completed/Error, startedAt,
// finishedAt}; a command that cannot run ends with exitCode 128, reason StartError.
// restartPolicy OnFailure/Always restarts the container in place (restartCount, lastState,
// CrashLoopBackOff with a short doubling back-off). Deleting a running pod sends SIGTERM to its
// group and SIGKILL once the deletion's grace period has passed; the object goes once the process
// is gone.
// Readiness: a running container without a readinessProbe is ready at once; with one (httpGet or
// tcpSocket, see prober.h) it starts unready (Ready and ContainersReady False, reason
// ContainersNotReady) until successThreshold probes in a row succeed, and is unready again after
// failureThreshold failures in a row. Every failed probe is a Warning `Unhealthy` Event
// ("Readiness probe failed: <output>"), identical ones aggregated (count, lastTimestamp).
// Other containers of a pod are reported as the first one but not run.
// Volumes: emptyDir and secret volumes are directories under the pod's directory in work_dir
// (`<work_dir>/pods/<ns>_<pod>_<uid>/volumes/<name>`), kept across container restarts. A secret
// volume holds one file per key (mode `defaultMode`, else 0644) and is refreshed whenever the
// Secret changes (each file replaced by a rename), as the kubelet's sync does; a Secret that does
// not exist (and is not optional) keeps the container waiting in ContainerCreating. A process
// cannot see a mount at the container's path, so the fake rewrites every environment value,
// argument and workingDir that is a volumeMount's mountPath, or a path under it, to the volume's
// directory.
//
// Runs on its own thread, driven by store events; probes run on a thread per probed container.
// Stop() kills every process group it started and reaps them, and joins the probers: no orphans.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/support/fake_kube/event_recorder.h"
#include "tests/support/fake_kube/object_store.h"
#include "tests/support/fake_kube/prober.h"

namespace submarine::testing::fake_kube {

class Kubelet {
 public:
  static constexpr char kNodeName[] = "fake-node";
  static constexpr char kPodIp[] = "127.0.0.1";  // the node's IP, and every pod's by default

  struct Options {
    std::string work_dir;
    int api_port = 0;  // the fake API server's port, given to pods as KUBERNETES_SERVICE_PORT
    bool distinct_pod_ips = false;
    EventRecorder* events = nullptr;  // where probe failures are recorded (required)
  };
  explicit Kubelet(ObjectStore& store, Options options);
  ~Kubelet();
  Kubelet(const Kubelet&) = delete;
  Kubelet& operator=(const Kubelet&) = delete;

  absl::Status Start();
  void Stop();

  // The log file of a container instance of `pod` for pods/log: the current (or, while it waits
  // to restart, the last) instance, or the one before when `previous`. 400 BadRequest with the
  // kubelet's words when there is none yet. `running`: the instance may still grow.
  struct LogSource {
    std::string path;
    bool running = false;
  };
  absl::StatusOr<LogSource> Log(const nlohmann::json& pod, const std::string& container,
                                bool previous) const;

  // The containers running now (a process started and not yet reaped), for the metrics API:
  // each one's pod, container name and process group (the container's processes).
  struct RunningContainer {
    std::string namespace_;
    std::string pod;
    std::string uid;
    std::string container;
    pid_t process_group = -1;
  };
  std::vector<RunningContainer> Running() const;

 private:
  struct Instance {
    std::string log_path;
    bool running = false;
  };
  struct PodRuntime {
    std::string namespace_;
    std::string name;
    std::string uid;
    std::string container;
    std::vector<Instance> instances;  // one per start, in order
    pid_t pid = -1;                   // the running process (its process group id too)
    int pidfd = -1;
    std::string started_at;
    bool terminating = false;  // SIGTERM sent
    std::optional<absl::Time> kill_at;
    std::optional<absl::Time> restart_at;
    absl::Duration backoff = absl::Milliseconds(100);
    bool finished = false;  // terminal phase written
    std::string ip;         // the pod's IP, once it has one
    // Readiness of the running instance (probed when the container has a readinessProbe).
    std::optional<ProbeSpec> probe;
    std::unique_ptr<ProbeWorker> prober;
    bool ready = false;
    int successes = 0;  // consecutive
    int failures = 0;   // consecutive
    // Volumes, once the container first starts: the first container's mounts (mountPath → the
    // volume's directory) and the secret volumes to refresh.
    std::map<std::string, std::string> mounts;
    struct SecretVolume {
      std::string secret;
      std::string dir;
      int mode = 0644;
    };
    std::vector<SecretVolume> secret_volumes;
  };
  struct ProbeReport {
    std::string uid;
    size_t instance = 0;
    ProbeResult result;
  };

  void Loop();
  void Sync(const std::string& key);
  void Bind(const nlohmann::json& pod);
  void StartContainer(const std::string& uid);
  // Records the end of the running instance (`wait_status` from waitpid, or -1 when it could not
  // start, with containerd's message), then restarts it or finishes the pod.
  void HandleExit(const std::string& uid, int wait_status,
                  const std::string& start_error_message = "");
  void FinalDelete(const std::string& namespace_, const std::string& name, const std::string& uid);
  void KillGroup(PodRuntime& runtime, int signal);
  // Writes the pod's status through `edit`; NotFound is ignored.
  void WriteStatus(const std::string& namespace_, const std::string& name,
                   const std::function<void(nlohmann::json& status)>& edit);
  void Wake();
  // Makes the pod's volumes and its first container's mounts (once per pod); the reason the
  // container cannot start yet ("" when it can).
  std::string PrepareVolumes(PodRuntime& rt, const nlohmann::json& spec,
                             const nlohmann::json& container) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the Secret's keys into the volume's directory; false when the Secret is not there.
  bool ProjectSecret(const std::string& namespace_, const PodRuntime::SecretVolume& volume);
  // A new address for a pod (distinct_pod_ips), never one a pod still holds.
  std::string AllocateIp() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets a pod: its address is free again, its prober stops.
  void Forget(std::map<std::string, PodRuntime>::iterator it) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops the prober of the running instance (it is joined later, off the hot path).
  void RetireProber(PodRuntime& rt) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void HandleProbe(const ProbeReport& report) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the container's ready flag and the pod's Ready/ContainersReady conditions.
  void WriteReadiness(const PodRuntime& rt, bool ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ObjectStore& store_;
  const ResourceType& pods_;
  const Options options_;
  const std::string work_dir_;
  const int api_port_;
  int wake_fd_ = -1;
  std::thread thread_;

  absl::Mutex queue_mu_;
  std::vector<std::string> queue_ ABSL_GUARDED_BY(queue_mu_);
  std::vector<ProbeReport> probe_reports_ ABSL_GUARDED_BY(queue_mu_);
  std::vector<std::string> changed_secrets_ ABSL_GUARDED_BY(queue_mu_);  // "<ns>/<name>"
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;

  // Written by the kubelet thread only; read by Log() from request threads.
  mutable absl::Mutex mu_;
  std::map<std::string, PodRuntime> pods_by_uid_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> uid_by_key_ ABSL_GUARDED_BY(mu_);
  std::set<uint32_t> ips_in_use_ ABSL_GUARDED_BY(mu_);  // host order
  uint32_t next_ip_ ABSL_GUARDED_BY(mu_) = 0;           // offset in 127/8 of the next address
  std::vector<std::unique_ptr<ProbeWorker>> retired_probers_ ABSL_GUARDED_BY(mu_);
};

// The value of a downward-API field path of `pod` ("metadata.name",
// "metadata.annotations['k']", "status.podIP" ...) for a pod at `pod_ip`; nullopt for an
// unsupported path.
std::optional<std::string> PodFieldValue(const nlohmann::json& pod, const std::string& path,
                                         const std::string& pod_ip = Kubelet::kPodIp);

}  // namespace submarine::testing::fake_kube
