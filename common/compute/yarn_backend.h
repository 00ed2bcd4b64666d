#pragma once
// The YARN compute backend: a workload is one YARN service (the YARN Services REST API,
// POST /app/v1/services on the ResourceManager) named by the workload id, with one component per
// role: number_of_containers = replicas, restart_policy NEVER, resource {cpus, memory in MB,
// yarn.io/gpu}, artifact DOCKER when the role has an image, the environment in the component's
// configuration.env, the owner labels in the service's configuration.properties
// (submarine.labels). Status comes from GET /app/v1/services/{id}: each component instance
// (<role>-<index>) is a task; its exit code and log come from its NodeManager
// (GET /ws/v1/node/containers/{id}, /ws/v1/node/containerlogs/{id}/stdout).
//
// Why NEVER and not ON_FAILURE: YARN's restart_policy takes no count — ON_FAILURE re-launches a
// failed instance without limit — so RoleSpec::max_restarts is kept inside the container: the
// launch command's prelude re-runs argv up to max_restarts times (SUBMARINE_TASK_ATTEMPT counts),
// stops re-running once SIGTERM arrived, and exits with the last attempt's code. The RM does not
// see those attempts: TaskStatus::attempt stays 1 and the log holds every attempt.
//
// Each container runs `/bin/sh -c <prelude> submarine-task <argv...>` (every word shell-quoted,
// the way YARN hands launch_command to bash): the prelude sends stderr into stdout (one log per
// task, in order), computes the rank, cds into working_dir and execs argv unchanged. The
// instance's index comes from YARN's ${COMPONENT_ID} token, substituted by the service AM in
// environment values. Environment, later entries winning: spec.env, the role's env, then
// SUBMARINE_WORKLOAD_ID/TASK_ROLE/TASK_INDEX/TASK_ATTEMPT and the framework's rendezvous
// settings on the instances' registry DNS names, <role>-<index>.<id>.<user>.<registry_domain>
// (YARN's registry DNS; hadoop.registry.dns.enabled on the cluster): TF_CONFIG on port 2222 of
// every instance, MASTER_ADDR/MASTER_PORT 23456 + WORLD_SIZE/RANK/LOCAL_RANK 0 for PyTorch,
// DMLC_* with the tracker on port 9091 of rank 0 for XGBoost (ranks count a role named
// "master" first). Fixed ports assume each container has its own network (Docker bridge or
// overlay), as on Kubernetes.
//
// State lives in the RM and under Options::logs_dir, never in memory, so a restarted backend
// adopts what runs:
//   <logs_dir>/<id>/workload.json           the spec (the first Submit's)
//   <logs_dir>/<id>/submitted               the RM accepted the service
//   <logs_dir>/<id>/stop.json               the first Stop's grace and time
//   <logs_dir>/<id>/verdict.json            the workload's final phase, once decided
//   <logs_dir>/<id>/tasks/<role>-<i>.json   a task's final status, once its container ended
//   <logs_dir>/<id>/<role>-<i>.log          its log, archived from the NodeManager then
//   <logs_dir>/<id>/final.json              the whole final status, once every task is final
//   <logs_dir>/<id>/deleted                 Delete(keep_logs=true) was called
// Every file is written atomically (task_files.h). Containers vanish from the RM once a service's
// AM has exited, so tasks are recorded as soon as Get sees them end; a task never seen takes the
// service's outcome (SUCCEEDED: exit code 0; otherwise FAILED, "not accounted for").
//
// Phases: a task FAILED → FAILED ("task worker-1 failed: exit code 3 (component instance
// worker-1, container container_...)") and the service is stopped; all SUCCEEDED → SUCCEEDED;
// stopped → KILLED; an instance started → RUNNING; else PENDING. The verdict is written before
// it is returned, so phases only move forward. Any RM or NodeManager error (5xx, refused
// connection, timeout) is UNAVAILABLE and writes nothing.
//
// Stop(grace): YARN has no per-request grace, so the backend sends GRACEFUL_SHUTDOWN (SIGTERM)
// to every running container through the RM's container-signal API and, once the grace has
// passed, the next Get (or Stop) stops the service (PUT state STOPPED: SIGTERM, then SIGKILL
// after the NodeManager's sleep-delay-before-sigkill). Delete destroys the service (DELETE),
// archiving the logs first when they are kept.
//
// secret_env goes into the components' configuration.env (under spec.env and the role's env):
// the Services API has no other channel to a container. It is therefore readable by whoever may
// view the service (its user, YARN admins, the view ACL) and in the service definition the AM
// keeps in the user's HDFS directory until Delete destroys the service; under logs_dir only its
// keys are kept (workload.h's SpecToJson).
//
// OnChange keeps the Backend default (no notifications): YARN has no watch, so callers poll.
//
// Thread-safe: calls about one workload are serialised (they write its files); calls about
// other workloads mostly run in parallel (32 locks, chosen by the id's hash).

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/compute/compute.h"
#include "common/net/http_json.h"

namespace submarine::compute {

class YarnBackend : public Backend {
 public:
  struct Options {
    std::string rm_url;    // "http://rm.example:8088"; required
    std::string user;      // sent as user.name (simple authentication); required
    std::string queue;     // "" = the user's default queue
    std::string logs_dir;  // required; created if missing
    // The registry DNS domain (hadoop.registry.dns.domain-name) rendezvous names end with.
    std::string registry_domain = "ycluster";
    // A NodeManager's web address; "{host}" is replaced by the container's bare_host.
    std::string nodemanager_url = "http://{host}:8042";
    std::string default_image;         // for roles without an image; "" = run on the hosts
    int64_t default_memory_mb = 1024;  // for roles that ask for no memory (YARN needs one)
    std::chrono::milliseconds timeout = std::chrono::seconds(30);  // per request
  };

  static absl::StatusOr<std::unique_ptr<YarnBackend>> Create(Options options);

  std::string Kind() const override { return "yarn"; }
  absl::Status Submit(const WorkloadSpec& spec) override;
  absl::StatusOr<WorkloadStatus> Get(const std::string& id) override;
  absl::StatusOr<std::vector<WorkloadStatus>> List() override;
  absl::Status Stop(const std::string& id, std::chrono::milliseconds grace) override;
  absl::Status Delete(const std::string& id, bool keep_logs) override;
  absl::StatusOr<LogChunk> ReadLog(const std::string& id, const TaskRef& task, int64_t offset,
                                   int64_t max_bytes) override;

  // The body Submit POSTs for `spec` (validated): the request checked against a golden file.
  static absl::StatusOr<nlohmann::json> ServiceRequest(const WorkloadSpec& spec,
                                                       const Options& options);

 private:
  struct Observation;
  explicit YarnBackend(Options options);
  std::string Dir(const std::string& id) const;
  std::string ServiceUrl(const std::string& id) const;
  absl::StatusOr<Observation> Observe(const std::string& id);
  absl::Status StopService(const std::string& id);
  absl::StatusOr<std::string> FetchLog(const std::string& host, const std::string& container);

  // The lock of one workload's files: one of a fixed set, chosen by the id's hash.
  std::mutex& WorkloadMutex(const std::string& id);

  Options options_;
  net::HttpJsonClient http_;
  std::array<std::mutex, 32> workload_mu_;
};

}  // namespace submarine::compute
