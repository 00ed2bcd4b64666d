#pragma once
// The Kubernetes REST API over the store: discovery (/version, /api, /apis, legacy and
// aggregated v2), CRUD on every served kind and its /status, lists with selectors and paging,
// watches (chunked newline-delimited events, bookmarks, timeoutSeconds, 410 Expired in both
// forms), pods/log (tailLines, limitBytes, previous, follow), bearer-token authentication and
// injected faults. Thread-safe: every request runs on its connection's thread.

#include <atomic>
#include <cstdint>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tests/support/fake_kube/http_server.h"
#include "tests/support/fake_kube/kubelet.h"
#include "tests/support/fake_kube/metrics_server.h"
#include "tests/support/fake_kube/object_store.h"

namespace submarine::testing::fake_kube {

struct ApiOptions {
  std::string bearer_token;          // empty: no authentication
  bool aggregated_discovery = true;  // answer apidiscovery.k8s.io/v2 when asked for it
  absl::Duration bookmark_interval = absl::Seconds(1);
};

class ApiHandler {
 public:
  // `kubelet` may be null (pods are not run).
  ApiHandler(ObjectStore& store, const Kubelet* kubelet, ApiOptions options);

  // A request from the network: counted, authenticated, subject to injected faults.
  void HandleHttp(const HttpRequest& request, HttpResponder& responder);
  // The same API for the fake's direct-access methods: no authentication, no faults, not
  // counted.
  void Serve(const HttpRequest& request, HttpResponder& responder);

  void SetServerAddress(const std::string& host_port) { server_address_ = host_port; }
  // Serves metrics.k8s.io/v1beta1 from `metrics` (set before serving; null: not served).
  void SetMetrics(const MetricsServer* metrics) { metrics_ = metrics; }
  void FailRequests(int http_status, int count, std::string path_substring);
  // While held, open watches on `plural` deliver nothing (their events wait, in order).
  void HoldWatchEvents(const std::string& plural, bool hold);
  int64_t requests_served() const { return requests_served_.load(); }
  // Ends followed logs (watches end through the store).
  void Stop() { stopping_.store(true); }

 private:
  void ServeDiscovery(const HttpRequest& request, HttpResponder& responder,
                      const std::vector<std::string>& segments);
  void ServeLog(const HttpRequest& request, HttpResponder& responder, const ResourceType& type,
                const std::string& namespace_, const std::string& name);
  void ServeWatch(const HttpRequest& request, HttpResponder& responder, const ResourceType& type,
                  const std::string& namespace_, const std::string& name);
  // metrics.k8s.io/v1beta1: GET of pods (per namespace or all) and nodes, lists and objects.
  void ServeMetrics(const HttpRequest& request, HttpResponder& responder,
                    const std::string& version, const std::vector<std::string>& rest);
  // The /scale subresource (autoscaling/v1 Scale): GET, PUT and PATCH of spec.replicas.
  void ServeScale(const HttpRequest& request, HttpResponder& responder, const ResourceType& type,
                  const std::string& namespace_, const std::string& name);

  ObjectStore& store_;
  const ResourceCatalog& catalog_;
  const Kubelet* const kubelet_;
  const MetricsServer* metrics_ = nullptr;
  const ApiOptions options_;
  std::string server_address_;
  std::atomic<int64_t> requests_served_{0};
  std::atomic<bool> stopping_{false};

  absl::Mutex fault_mu_;
  int fault_status_ ABSL_GUARDED_BY(fault_mu_) = 0;
  int fault_count_ ABSL_GUARDED_BY(fault_mu_) = 0;
  std::string fault_substring_ ABSL_GUARDED_BY(fault_mu_);
  std::set<std::string> held_watches_ ABSL_GUARDED_BY(fault_mu_);  // plurals
};

}  // namespace submarine::testing::fake_kube
