#pragma once
// The YARN compute backend: a workload is one YARN service (the YARN Services REST API,
// POST /app/v1/services on the ResourceManager) named by the workload id, with one component per
// role: number_of_containers = replicas, restart_policy NEVER (ALWAYS for a service workload:
// see below), resource {cpus, memory in MB,
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
// Service workloads (kService) are YARN services too, each component with:
//   - restart_policy ALWAYS: the AM gives an instance whose container exited, whatever its exit
//     code, a new container (a new container id, the same instance name and environment); the
//     service never ends by itself. The AM's failure limit per component
//     (yarn.service.container-failure-per-component.threshold, 10 in 6 hours by default, after
//     which it fails the service) is lifted to INT_MAX, so that a crash-looping replica keeps
//     being restarted as on the other backends.
//   - The port: RoleSpec::port, or Options::service_port when 0, in SUBMARINE_PORT — the same
//     on every replica, because YARN's readiness check names one URL per component
//     (http://${THIS_HOST}:<port><path>; ${THIS_HOST} is the container's IP), so a port per
//     replica could not be probed. Replicas therefore get distinct addresses instead: a
//     placement_policy ANTI_AFFINITY on NODE scope with the component's own tag puts each replica
//     of a role on a node of its own, and the prelude sets SUBMARINE_HOST to the node (NM_HOST,
//     which YARN gives every container), where the replica serves. TaskStatus::endpoint is the
//     container's `ip`:port (the address YARN probes; the port as the RM runs the component, so
//     a backend restarted with another service_port reports what runs), TaskStatus::host its
//     bare_host. This assumes containers on the node's network (YARN's default, also for
//     Docker: the docker.default-container-network is host) and a cluster that places by
//     constraints (yarn.resourcemanager.placement-constraints.handler); a role cannot have more
//     replicas than the cluster has nodes (the others wait for a node). Why not a port per
//     replica: the readiness check could not follow it; why not 0.0.0.0: two replicas of a
//     role on one node would collide.
//   - readiness_check: type HTTP {url http://${THIS_HOST}:<port><path>, min.success 200,
//     max.success 399 (2xx and 3xx, as our probes take)} for a probe with an http_path, type
//     PORT {port} for one without; none = YARN's default check (ready once the container has
//     an IP). The AM probes every yarn.service.readiness-check-interval.seconds, one interval per
//     service: the shortest period of its roles, rounded up to whole seconds (at least 1).
//     A container is RUNNING_BUT_UNREADY until its check passes, then READY (and back when a
//     check fails): TaskStatus::ready is state READY. YARN reports why a check failed only in
//     the AM's log (serviceam.log: "Readiness check failed for <instance>: ... Probe
//     http://10.0.0.5:8080/ready error code: 404"), so for an instance not ready the backend
//     finds the AM through the RM's application report (GET /ws/v1/cluster/apps/{app id}:
//     amContainerLogs, amHostHttpAddress), reads the tail of that log from the AM's
//     NodeManager (serviceam.log, or its stderr serviceam-err.txt where log4j writes no file:
//     the first the NodeManager lists for the AM's container) and says, in its own words, "not
//     ready: GET /ready: HTTP 404" (or the connection error) from the instance's latest failure.
//     That read is best effort: when the log cannot be had, the message is "not ready: its
//     readiness check has not passed yet".
//   - Attempts: YARN starts every container of an instance with the same environment, so the
//     prelude counts: it appends $CONTAINER_ID to a file for the instance in the application's
//     local directory on the node (${LOCAL_DIRS%%,*}/submarine-attempts/<role>-<index>, shared by
//     the application's containers on that node, removed with the application), exports its
//     line count as SUBMARINE_TASK_ATTEMPT and copies the list into the container's log
//     directory as `submarine-attempts`. The backend reads that file through the NodeManager
//     (GET /ws/v1/node/containerlogs/{container}/submarine-attempts) once per new container:
//     TaskStatus::attempt is the container's line, and every container listed before it is an
//     earlier attempt of the instance, even one that came and went between two Gets. Should YARN
//     re-launch an instance on another node, its count starts again at 1 there; should an index
//     scaled away and back land on a node where its earlier instance ran, the count (and
//     ReadLog) go on from that instance's containers (the fake gives a new instance a new node).
//   - Logs: each ended container's stdout is archived from its NodeManager to
//     <logs_dir>/<id>/attempts/<role>-<i>/<attempt>.log; ReadLog gives the archived attempts in
//     order followed by the running container's log, read live.
//   - Scale(role, n): PUT /app/v1/services/{id}/components/{role} {"number_of_containers": n}
//     (0 allowed), then n is stored in workload.json; an RM error changes nothing (the stored
//     count is written only after the RM accepted). The AM removes the instances with the
//     highest ids (SIGTERM, SIGKILL after the NodeManager's sleep-delay-before-sigkill.ms: YARN's
//     flex takes no grace, so `grace` is not used) and gives new ones the next ids, so indexes
//     are those of the contract; an index scaled away and back is a new instance (its old
//     records go). A replica scaled away stays readable through ReadLog (from the containers
//     recorded for it), its log complete once its container is done.
//   - Phases: RUNNING (also with zero replicas) until stopped; a task is PENDING until its
//     instance has a container, then RUNNING — also between containers, not ready, with the
//     reason. Stop stops the service at once (PUT state STOPPED; a SIGTERM through the RM would
//     only have the AM start the instance again), so YARN's sleep-delay-before-sigkill is the
//     grace; once the RM says STOPPED the workload and every task are KILLED. A service YARN
//     failed or that was destroyed outside Submarine is FAILED.
//   <logs_dir>/<id>/tasks/<role>-<i>.containers.json   a service instance's containers by attempt
//   <logs_dir>/<id>/attempts/<role>-<i>/<n>.log         the log of its attempt n, once it ended
//
// OnChange keeps the Backend default (no notifications): YARN has no watch, so callers poll.
//
// Thread-safe: calls about one workload are serialised (they write its files); calls about
// other workloads mostly run in parallel (32 locks, chosen by the id's hash).

#include <array>
#include <chrono>
#include <map>
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
    // The port service replicas serve when their role asks for none (RoleSpec::port 0).
    int service_port = 8080;
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
  absl::Status Scale(const std::string& id, const std::string& role, int replicas,
                     std::chrono::milliseconds grace) override;

  // The body Submit POSTs for `spec` (validated): the request checked against a golden file.
  static absl::StatusOr<nlohmann::json> ServiceRequest(const WorkloadSpec& spec,
                                                       const Options& options);

 private:
  struct Observation;
  explicit YarnBackend(Options options);
  std::string Dir(const std::string& id) const;
  std::string ServiceUrl(const std::string& id) const;
  absl::StatusOr<Observation> Observe(const std::string& id);
  absl::Status ObserveService(const std::string& id, const WorkloadSpec& spec,
                              const nlohmann::json& service, const std::string& service_state,
                              const std::map<std::string, nlohmann::json>& containers,
                              Observation& out);
  // Records a service instance's container `container` on `host`: its attempt (0 while its
  // prelude has not listed it yet) and every earlier container of the instance it lists.
  absl::StatusOr<int> RecordContainer(const std::string& id, const std::string& name,
                                      const std::string& host, const std::string& container);
  // Archives the logs of the instance's recorded containers that ended (all but `running`).
  absl::Status ArchiveEnded(const std::string& id, const std::string& name,
                            const std::string& running);
  // Why the AM says each of the service's instances is not ready (best effort: empty when its
  // log cannot be read).
  std::map<std::string, std::string> ReadinessFailures(const std::string& app_id);
  absl::StatusOr<LogChunk> ReadServiceLog(const std::string& id, const WorkloadSpec& spec,
                                          const TaskRef& task, int64_t offset, int64_t max_bytes);
  std::string NodeManagerUrl(const std::string& host) const;
  absl::Status StopService(const std::string& id);
  absl::StatusOr<std::string> FetchLog(const std::string& host, const std::string& container);

  // The lock of one workload's files: one of a fixed set, chosen by the id's hash.
  std::mutex& WorkloadMutex(const std::string& id);

  Options options_;
  net::HttpJsonClient http_;
  std::array<std::mutex, 32> workload_mu_;
};

}  // namespace submarine::compute
