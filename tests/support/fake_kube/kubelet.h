#pragma once
// A simulated kubelet (with the scheduler's one job: binding) for one node, "fake-node", whose
// pods all have the IP 127.0.0.1. For every pod without scheduling gates it binds the pod, then
// runs the pod's FIRST container `command` + `args` (argv, no shell; the image is ignored) as a
// local process in its own process group, with the container's environment (env values,
// $(VAR) references, valueFrom fieldRef / configMapKeyRef / secretKeyRef, envFrom) plus
// HOSTNAME and KUBERNETES_SERVICE_*; working directory `workingDir` when it exists, else a
// per-pod directory under work_dir; stdout+stderr into a per-instance log file under work_dir.
//
// Pod status follows what a kubelet reports: Pending (ContainerCreating) → Running (ready,
// podIP) → Succeeded/Failed with state.terminated {exitCode, signal, reason Completed/Error,
// startedAt, finishedAt}; a command that cannot run ends with exitCode 128, reason StartError.
// restartPolicy OnFailure/Always restarts the container in place (restartCount, lastState,
// CrashLoopBackOff with a short doubling back-off). Deleting a running pod sends SIGTERM to its
// group and SIGKILL once the deletion's grace period has passed; the object goes once the process
// is gone.
// Other containers of a pod are reported as the first one but not run.
//
// Runs on its own thread, driven by store events. Stop() kills every process group it started
// and reaps them: no orphans.

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
#include "tests/support/fake_kube/object_store.h"

namespace submarine::testing::fake_kube {

class Kubelet {
 public:
  static constexpr char kNodeName[] = "fake-node";
  static constexpr char kPodIp[] = "127.0.0.1";

  // `api_port`: the fake API server's port, given to pods as KUBERNETES_SERVICE_PORT.
  Kubelet(ObjectStore& store, std::string work_dir, int api_port);
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

  ObjectStore& store_;
  const ResourceType& pods_;
  const std::string work_dir_;
  const int api_port_;
  int wake_fd_ = -1;
  std::thread thread_;

  absl::Mutex queue_mu_;
  std::vector<std::string> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;

  // Written by the kubelet thread only; read by Log() from request threads.
  mutable absl::Mutex mu_;
  std::map<std::string, PodRuntime> pods_by_uid_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> uid_by_key_ ABSL_GUARDED_BY(mu_);
};

// The value of a downward-API field path of `pod` ("metadata.name",
// "metadata.annotations['k']", "status.podIP" ...); nullopt for an unsupported path.
std::optional<std::string> PodFieldValue(const nlohmann::json& pod, const std::string& path);

}  // namespace submarine::testing::fake_kube
