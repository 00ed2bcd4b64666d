#pragma once
// Readiness probes as the kubelet's prober runs them: httpGet (scheme HTTP; path, port as a
// number or a named containerPort, httpHeaders; 200-399 is success) and tcpSocket (a connection
// that opens), each bounded by timeoutSeconds, with the kubelet's failure texts:
//   HTTP probe failed with statuscode: 404
//   Get "http://127.0.0.2:8080/ready": dial tcp 127.0.0.2:8080: connect: connection refused
//   dial tcp 127.0.0.2:8080: connect: connection refused
// A ProbeWorker is the kubelet's per-container probe worker: its own thread probes first once
// initialDelaySeconds have passed since it started, then every periodSeconds, and reports each
// result; it never blocks the kubelet's thread.

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace submarine::testing::fake_kube {

struct ProbeSpec {
  enum class Kind { kHttpGet, kTcpSocket, kUnsupported };
  Kind kind = Kind::kUnsupported;
  std::string host;  // the pod IP unless the probe names a host
  int port = 0;
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> headers;
  // Why the probe cannot run (a port name no containerPort has, HTTPS, exec): reported as its
  // failure output.
  std::string problem;
  absl::Duration initial_delay = absl::ZeroDuration();
  absl::Duration period = absl::Seconds(10);
  absl::Duration timeout = absl::Seconds(1);
  int success_threshold = 1;
  int failure_threshold = 3;
};

// The readinessProbe of `container` aimed at `pod_ip`, with the API's defaults (period 10 s,
// timeout 1 s, thresholds 1 and 3); nullopt when the container has none.
std::optional<ProbeSpec> ReadinessProbeOf(const nlohmann::json& container,
                                          const std::string& pod_ip);

struct ProbeResult {
  bool success = false;
  std::string output;  // the failure text (empty on success)
};
// Runs the probe once, blocking at most about spec.timeout.
ProbeResult RunProbe(const ProbeSpec& spec);

class ProbeWorker {
 public:
  using Report = std::function<void(const ProbeResult&)>;
  // Starts probing on its own thread; `report` is called on that thread after every probe.
  ProbeWorker(ProbeSpec spec, Report report);
  ~ProbeWorker();  // RequestStop + join
  ProbeWorker(const ProbeWorker&) = delete;
  ProbeWorker& operator=(const ProbeWorker&) = delete;

  // Asks the worker to stop without waiting for a probe in flight; no report is made once this
  // has returned (reports are made under the worker's lock, so `report` must only queue).
  void RequestStop();
  // Whether the thread has ended (joining it then does not block).
  bool finished() const;

 private:
  void Run();

  const ProbeSpec spec_;
  const Report report_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace submarine::testing::fake_kube
