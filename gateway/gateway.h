#pragma once
// The gateway: the only public door of Submarine. REST/JSON over HTTP/1.1 with routes derived
// from the google.api.http options of the configured services, built-in /healthz, /readyz,
// /metrics and /api/openapi.json, and (when grpc_listen is set) a native gRPC proxy. It holds no
// business logic and no per-endpoint code.
//
// Authentication (config `auth`): every route and proxied method needs "Authorization: Bearer
// <jwt>" except methods marked (submarine.common.v1.auth_exempt) and the built-in endpoints; the
// verified principal goes to the backend signed with the internal secret
// (server.gateway_secret_file). With auth.insecure_no_authorization nothing is checked. See
// auth_filter.h and auth_state.h.
//
// What clients see of failures: errors quote their input only through QuoteInput(); a backend
// failure raised by gRPC itself (backend_errors.h) and an unexpected exception are logged with
// the request id and answered with a generic message. /readyz says which backend is not serving
// and why only to platform admins (everyone else gets {"status":"ok"} or a bare 503), and
// /metrics carries gateway_backend_ready{service} for every configured service.
//
// Lifecycle: Init() (config check, routes, channels, bind) -> Register(runner) -> runner.Run(),
// which starts the token-state refresher and the HTTP server as background tasks and, on
// SIGTERM, stops them gracefully (no new connections, in-flight requests finish). Handle() runs
// on HTTP I/O threads and never blocks on a backend or on the permission service.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "common/metrics/metrics.h"
#include "common/rpc/server_runner.h"
#include "gateway/auth_filter.h"
#include "gateway/auth_state.h"
#include "gateway/backend_pool.h"
#include "gateway/grpc_proxy.h"
#include "gateway/http_server.h"
#include "gateway/route_table.h"
#include "gateway/transcoder.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::gateway {

class Gateway {
 public:
  explicit Gateway(submarine::config::v1::GatewayConfig config);
  // Stops HTTP serving and waits for outstanding backend calls (bounded by their deadlines).
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Checks the auth config, builds the routes of every configured service, the backend channels
  // and the OpenAPI document, and binds the HTTP listener. An error names the bad config key,
  // service, rule, address, trusted_proxies entry or http_tls file: INVALID_ARGUMENT unless
  // auth.address and server.gateway_secret_file are both set or auth.insecure_no_authorization
  // is true.
  absl::Status Init();

  // The runner's gRPC server config: config.server with grpc_listen taken from the gateway's
  // grpc_listen (127.0.0.1:0 when that is empty: health and reflection only).
  submarine::config::v1::ServerConfig RunnerConfig() const;

  // After Init(), before runner->Start(): registers the gRPC proxy (if grpc_listen is set), the
  // "http" ready-file field, the token-state refresher and the HTTP server as background tasks.
  void Register(rpc::ServerRunner* runner);

  // Starts / gracefully stops HTTP serving (the registered task does this; tests may too).
  void StartHttp();
  void StopHttp();

  // The bound HTTP address, "127.0.0.1:port" (after Init()).
  const std::string& http_address() const { return http_address_; }
  const RouteTable& routes() const { return routes_; }

 private:
  struct Pending;  // one REST request waiting for its backend
  class HttpTask;
  class RestStream;  // one REST call of a server-streaming method
  class RestUpload;  // one REST call of a client-streaming method

  using HealthCallback = std::function<void(const std::vector<BackendHealth>&)>;

  absl::Status InitAuth();
  absl::StatusOr<HttpServerOptions> HttpOptions() const;
  void Handle(std::shared_ptr<HttpExchange> exchange);
  // Routes one request; may throw only on a bug (Handle answers 500 then).
  void Dispatch(const std::shared_ptr<Pending>& pending);
  bool HandleBuiltin(const std::shared_ptr<Pending>& pending);
  void HandleReadiness(const std::shared_ptr<Pending>& pending);
  void HandleMetrics(const std::shared_ptr<Pending>& pending);
  // Asks every backend's grpc.health.v1 and updates gateway_backend_ready; `done` runs on a gRPC
  // thread. Callers arriving while a round is in flight share its result, so a flood of /readyz
  // or /metrics requests costs the backends one round at a time.
  void CheckBackends(HealthCallback done);
  void CallBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                   const Backend& backend, grpc::ByteBuffer request);
  void CompleteBackendCall(const std::shared_ptr<Pending>& pending, const grpc::Status& status);
  // Sets the backend call's deadline (MethodTimeout: none for streams unless the method says),
  // principal, request id and trace headers; returns the timeout set (0: none).
  std::chrono::milliseconds PrepareBackendCall(const std::shared_ptr<Pending>& pending,
                                               const Route& route);
  // A server-streaming route: the answer is streamed as NDJSON or server-sent events.
  void StreamFromBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                         const Backend& backend, grpc::ByteBuffer request);
  // A client-streaming route (an upload): the body is streamed to the backend as it is read,
  // `first` (bindings and content type filled) carrying its first piece.
  void StreamToBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                       const Backend& backend, std::unique_ptr<google::protobuf::Message> first);
  // A streaming call's backend call begins: it counts as in flight and Stop cancels it.
  void BeginStreamCall(Pending& pending);
  // Its backend call is over (from the reactor's OnDone): `complete` (which keeps the reactor
  // alive) runs on the connection's strand.
  void EndStreamCall(std::shared_ptr<Pending> pending, std::function<void()> complete);
  // Counts and logs a finished request (Reply() does this for whole answers).
  void RecordRequest(const std::shared_ptr<Pending>& pending, int status, size_t bytes);
  // 500 with a generic message (the caller has logged what went wrong).
  void ReplyInternalError(const std::shared_ptr<Pending>& pending);
  void Reply(const std::shared_ptr<Pending>& pending, int status, std::string body,
             std::string content_type = "application/json",
             std::vector<std::pair<std::string, std::string>> headers = {});
  void BeginAsync();
  void EndAsync();

  submarine::config::v1::GatewayConfig config_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<AuthStateCache> auth_state_;  // null when authentication is off
  AuthFilter auth_;
  RouteTable routes_;
  std::unordered_map<const Route*, const Backend*> route_backends_;
  std::unique_ptr<BackendPool> backends_;
  std::unique_ptr<GrpcProxy> proxy_;
  std::unique_ptr<HttpServer> http_;
  std::unique_ptr<HttpTask> http_task_;
  std::string http_address_;
  std::string openapi_;

  // gateway_backend_ready{service} of each backend's services, parallel to backends_->backends().
  std::vector<std::vector<metrics::Gauge*>> ready_gauges_;

  // Backend and health calls in flight; the destructor waits for zero.
  std::mutex async_mu_;
  std::condition_variable async_cv_;
  int async_calls_ = 0;

  // The backend calls of REST streams and uploads in flight: StopHttp cancels them (a followed log
  // would otherwise hold the shutdown until the task ends); streams started after that are
  // cancelled at once.
  std::atomic<int64_t> uploads_{0};  // REST uploads in flight (GatewayConfig.max_uploads)
  std::mutex streams_mu_;
  std::set<grpc::ClientContext*> streams_;  // guarded by streams_mu_
  bool streams_stopped_ = false;            // guarded by streams_mu_

  // Callers waiting for the health round in flight (none in flight when empty).
  std::mutex health_mu_;
  std::vector<HealthCallback> health_waiters_;
};

}  // namespace submarine::gateway
