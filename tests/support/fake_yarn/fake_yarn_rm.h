#pragma once
// A fake YARN ResourceManager for tests: the YARN Services REST API (the "YARN Service API",
// /app/v1/services), the ResourceManager's container-signal endpoint and the NodeManager's
// container and container-log endpoints, all on one HTTP listener on 127.0.0.1 (a free port).
// Every component instance runs as a local process, so exit codes, signals and logs are real.
//
//   POST   /app/v1/services                       create: 202 {uri, diagnostics}; 400 for an
//                                                 invalid spec or a name already taken
//   GET    /app/v1/services/{name}                the service: state ACCEPTED → STARTED → STABLE
//                                                 → SUCCEEDED | FAILED | STOPPED, components
//                                                 with their containers {id, state INIT/READY/
//                                                 SUCCEEDED/FAILED/STOPPED, launch_time, ip,
//                                                 hostname, bare_host, component_instance_name}
//   PUT    /app/v1/services/{name}  {"state":"STOPPED"}   stops every container
//   PUT    /app/v1/services/{name}/components/{c}  {"number_of_containers": N}   flex
//   DELETE /app/v1/services/{name}                stops and destroys
//   GET    /ws/v1/cluster/apps/{app id}           {app: {amHostHttpAddress, amContainerLogs, ...}}
//   POST   /ws/v1/cluster/containers/{id}/signal/{GRACEFUL_SHUTDOWN|FORCEFUL_SHUTDOWN}
//   GET    /ws/v1/node/containers/{id}            NM ContainerInfo {state, exitCode, diagnostics}
//   GET    /ws/v1/node/containerlogs/{id}/{file}[?size=N]   a log file's content, text/plain
// Errors are YARN's: a JSON body {"diagnostics": "..."} with 400, 404 or 500. The caller is
// the `user.name` query parameter (Hadoop's simple authentication), "dr.who" without one.
//
// A container runs `/bin/bash -c <launch_command>` (as the NodeManager's launch script does)
// with stdout and stderr in the files `stdout` and `stderr` of its log directory, its own
// working directory, in a process group of its own, with `configuration.env` (service level,
// then component level) after YARN's token substitution (${SERVICE_NAME}, ${USER}, ${DOMAIN},
// ${COMPONENT_NAME}, ${COMPONENT_INSTANCE_NAME}, ${COMPONENT_ID}, ${CONTAINER_ID}) plus
// CONTAINER_ID, USER, LOG_DIRS, LOCAL_DIRS, NM_HOST, NM_HTTP_PORT and the fake's own PATH, HOME,
// LANG. Every component instance has a node of its own: a loopback address 127.0.0.N (its
// bare_host, ip and NM_HOST) whose NodeManager listens on the RM's port. restart_policy NEVER:
// an instance that ends stays ended (SUCCEEDED with exit code 0, FAILED otherwise); the service
// ends SUCCEEDED when every instance succeeded, FAILED when all ended and one failed, STOPPED
// when it was stopped. restart_policy ALWAYS: an instance whose container ended gets a new one
// (new id, same node and name) after `relaunch_delay`, and the service runs until stopped.
// readiness_check (HTTP or PORT) is run by one prober thread every
// yarn.service.readiness-check-interval.seconds: RUNNING_BUT_UNREADY until it passes, then
// READY; failures are written, as YARN's AM does, to the AM's serviceam.log only (the AM is
// container 1 of the application, on 127.0.0.1). Killing sends SIGTERM to the container's process
// group and SIGKILL after `sigkill_delay` (yarn.nodemanager.sleep-delay-before-sigkill.ms);
// whatever a container leaves in its group when it exits is SIGKILLed.
//
// Unlike a real cluster, a finished service keeps listing its containers (a real RM answers
// from the stored spec once the service's ApplicationMaster has exited) unless
// `forget_containers_when_finished` is set; the NodeManager endpoints keep every container.
//
// Thread-safe. The destructor kills every process it started and joins its threads.

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/statusor.h"

namespace submarine::testing {

struct FakeYarnOptions {
  std::string work_dir;  // container working and log directories; required
  std::string domain = "yarn.test";
  std::chrono::milliseconds sigkill_delay{250};
  bool forget_containers_when_finished = false;
  // restart_policy ALWAYS: how long an instance whose container ended waits for its next one
  // (the AM's re-request and the RM's next allocation on a real cluster).
  std::chrono::milliseconds relaunch_delay{100};
};

class FakeYarnRm {
 public:
  static absl::StatusOr<std::unique_ptr<FakeYarnRm>> Start(FakeYarnOptions options);
  ~FakeYarnRm();
  FakeYarnRm(const FakeYarnRm&) = delete;
  FakeYarnRm& operator=(const FakeYarnRm&) = delete;

  // "http://127.0.0.1:<port>": the RM and the NodeManager of every container.
  std::string url() const;
  int port() const;

  // The next `count` requests whose path contains `path_substring` are answered `http_status`
  // with a YARN error body, changing nothing (0 ends it).
  void FailRequests(int http_status, int count, const std::string& path_substring = "");
  // The bodies of every POST /app/v1/services received, in order.
  std::vector<nlohmann::json> created() const;
  int64_t requests_served() const;

  struct State;

 private:
  FakeYarnRm() = default;
  std::unique_ptr<State> state_;
};

}  // namespace submarine::testing
