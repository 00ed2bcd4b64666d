#pragma once
// A fake Kubernetes API server for tests: an in-process HTTP/1.1 server on 127.0.0.1 that
// behaves like kube-apiserver v1.32 for the subset Submarine's Kubernetes client, backend and
// tests use (see tests/support/fake_kube/README.md for exactly what is served):
//   - discovery (/version, /api, /apis, /apis/{g}/{v}; aggregated v2 when asked for);
//   - core v1 pods, services, namespaces, events, secrets, configmaps; apps/v1 statefulsets;
//     batch/v1 jobs; and when
//     enabled trainer.kubeflow.org/v1alpha1 (trainjobs, clustertrainingruntimes,
//     trainingruntimes) and kueue.x-k8s.io/v1beta2 (workloads, localqueues, clusterqueues);
//   - when enabled, the resource metrics API metrics.k8s.io/v1beta1 (pods, nodes; read-only);
//   - every verb with kube-apiserver's semantics and Status errors, watches, pods/log;
//   - simulated controllers off the request threads: the Job and StatefulSet controllers, a
//     kubelet that runs each pod's first container command as a local process and probes its
//     readiness, and Trainer (with JobSet's part).
// Namespaces "default", "kube-system", "kube-public" and "kube-node-lease" exist from the start;
// objects in any other namespace need the namespace created first (404 otherwise, as real).
//
// Thread-safe. The destructor stops serving, ends watches and kills every pod process.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::testing {

namespace fake_kube {
class ApiHandler;
class EventRecorder;
class HttpServer;
class JobController;
class Kubelet;
class MetricsServer;
class ObjectStore;
class ResourceCatalog;
class StatefulSetController;
class TrainerController;
}  // namespace fake_kube

struct FakeKubeOptions {
  // Serve trainer.kubeflow.org/v1alpha1 (trainjobs, clustertrainingruntimes, trainingruntimes)
  // and run a simulated Trainer controller (which also plays JobSet).
  bool serve_trainer = false;
  // Serve kueue.x-k8s.io/v1beta2 workloads, localqueues, clusterqueues (store only; tests script
  // their conditions).
  bool serve_kueue = false;
  // A simulated kubelet runs each pod's first container command as a local process; false: pods
  // stay Pending (unscheduled) until a test sets their status.
  bool run_pods = true;
  // Required when run_pods: pod working directories and log files live here.
  std::string work_dir;
  // Watch events kept per kind; a watch (or a continue token, or an Exact list) from an older
  // resourceVersion gets 410 Expired.
  size_t watch_history = 10000;
  // When non-empty, requests without "Authorization: Bearer <token>" get a 401 Status.
  std::string bearer_token;
  // Answer aggregated discovery (apidiscovery.k8s.io/v2) when a client asks for it, as
  // kube-apiserver 1.30+ does; false: always the legacy APIGroupList / APIVersions.
  bool aggregated_discovery = true;
  // How often a watch with allowWatchBookmarks=true gets a BOOKMARK.
  int bookmark_interval_ms = 1000;
  // Give each pod its own loopback address 127.0.0.N (N >= 2, not reused while a pod holds it)
  // as status.podIP/podIPs, for the status.podIP fieldRef and as its probes' target, so replicas
  // serving one port do not collide; false: every pod is 127.0.0.1.
  bool distinct_pod_ips = false;
  // Serve the resource metrics API (metrics.k8s.io/v1beta1 pods and nodes, read-only) as
  // metrics-server would, from the pods' processes (metrics_server.h), scraped every
  // `metrics_resolution_ms`: a pod is listed from its second scrape on.
  bool serve_metrics = false;
  int metrics_resolution_ms = 500;
};

class FakeKubeApiServer {
 public:
  using Options = FakeKubeOptions;

  // Binds 127.0.0.1 on a free port (never a fixed port) and starts the controllers.
  // INVALID_ARGUMENT when run_pods is set without a work_dir.
  static absl::StatusOr<std::unique_ptr<FakeKubeApiServer>> Start(FakeKubeOptions options);
  ~FakeKubeApiServer();  // stops serving, ends watches, kills pod processes (no orphans)
  FakeKubeApiServer(const FakeKubeApiServer&) = delete;
  FakeKubeApiServer& operator=(const FakeKubeApiServer&) = delete;

  std::string url() const;  // "http://127.0.0.1:<port>"

  // A kubeconfig (cluster server=url(), user with the bearer token, context `fake` with
  // `namespace_`, current) written to `path`.
  absl::Status WriteKubeconfig(const std::string& path,
                               const std::string& namespace_ = "default") const;

  // Direct store access with the HTTP API's semantics (resourceVersion bumps, watch events,
  // admission, controllers reacting), without authentication or injected faults. Paths are API
  // paths ("/apis/batch/v1/namespaces/ns/jobs/x"); a List path may carry a query
  // ("?labelSelector=a%3Db"). Errors carry the Kubernetes Status: the absl code follows the
  // HTTP code (404 NOT_FOUND, 409 ALREADY_EXISTS or ABORTED for Conflict, 422/400
  // INVALID_ARGUMENT, 410 OUT_OF_RANGE ...), the message is the Status message, and
  // fake_kube::StatusObject(status) gives the whole Status object back.
  absl::StatusOr<nlohmann::json> Get(const std::string& api_path) const;
  absl::StatusOr<nlohmann::json> List(const std::string& collection_path) const;
  // A merge patch of the object's /status (api_path with or without "/status"), as a
  // controller writes it: {"status": {...}}. For kinds without a status subresource, of the
  // object.
  absl::StatusOr<nlohmann::json> MergePatchStatus(const std::string& api_path,
                                                  const nlohmann::json& patch);
  // POST of `object` to `collection_path`; the created object.
  absl::StatusOr<nlohmann::json> Create(const std::string& collection_path,
                                        const nlohmann::json& object);
  // PATCH of `api_path` with `patch` of `content_type` (merge patch by default).
  absl::StatusOr<nlohmann::json> Patch(
      const std::string& api_path, const nlohmann::json& patch,
      const std::string& content_type = "application/merge-patch+json");
  // DELETE of `api_path` with DeleteOptions `options`; the answer (the object while it is
  // still being deleted, else the deleted object or a Success Status).
  absl::StatusOr<nlohmann::json> Delete(const std::string& api_path,
                                        const nlohmann::json& options = nlohmann::json::object());

  // Faults:
  // Compacts the watch history: open watches end — as an ERROR event {"type":"ERROR","object":
  // Status 410 Expired} inside their 200 stream when !as_http_410; when as_http_410 they just
  // close and any later watch with an older resourceVersion gets an HTTP 410 Status (so do
  // continue tokens and Exact lists from before, in both modes).
  void ExpireWatchHistory(bool as_http_410);
  // The next `count` requests whose target (path and query) contains `path_substring` answer a
  // Status with `http_status` (500 InternalError, 503 ServiceUnavailable, 429 TooManyRequests
  // with Retry-After: 1, ...); the store is unchanged. A later call replaces an earlier one.
  void FailRequests(int http_status, int count, std::string path_substring = "");
  // While held, open watches on resource `plural` ("pods") deliver no events; they arrive, in
  // order, once released. Models a watch that lags behind another.
  void HoldWatchEvents(const std::string& plural, bool hold);
  // HTTP requests received (direct access is not counted).
  int64_t requests_served() const;

 private:
  FakeKubeApiServer() = default;
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& target,
                                      const std::string& body,
                                      const std::string& content_type) const;

  FakeKubeOptions options_;
  int port_ = 0;
  std::unique_ptr<fake_kube::ResourceCatalog> catalog_;
  std::unique_ptr<fake_kube::ObjectStore> store_;
  std::unique_ptr<fake_kube::EventRecorder> events_;
  std::unique_ptr<fake_kube::Kubelet> kubelet_;
  std::unique_ptr<fake_kube::JobController> job_controller_;
  std::unique_ptr<fake_kube::StatefulSetController> statefulset_controller_;
  std::unique_ptr<fake_kube::TrainerController> trainer_controller_;
  std::unique_ptr<fake_kube::MetricsServer> metrics_;
  std::unique_ptr<fake_kube::ApiHandler> handler_;
  std::unique_ptr<fake_kube::HttpServer> http_;
};

}  // namespace submarine::testing
