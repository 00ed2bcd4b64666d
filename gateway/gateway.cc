#include "gateway/gateway.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <typeinfo>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "gateway/backend_errors.h"
#include "gateway/openapi.h"

namespace submarine::gateway {
namespace {

using google::protobuf::Message;
using submarine::common::v1::REST_FACE_UNSPECIFIED;
using submarine::common::v1::RestFace;

constexpr uint32_t kDefaultMaxBody = 4u << 20;
constexpr uint32_t kDefaultMaxHeader = 16u << 10;
constexpr uint32_t kDefaultTimeoutMs = 30000;
constexpr uint32_t kDefaultGraceMs = 10000;
constexpr uint32_t kDefaultAuthRefreshMs = 30000;
constexpr uint32_t kDefaultAuthTimeoutMs = 2000;
constexpr uint32_t kDefaultMaxConnectionsPerClient = 64;
constexpr uint32_t kDefaultMaxUploads = 64;
constexpr uint32_t kDefaultHeaderTimeoutMs = 5000;
constexpr auto kMaxHealthTimeout = std::chrono::milliseconds(2000);
constexpr char kJson[] = "application/json";

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string EscapeLabel(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    out.push_back(c == '\n' ? ' ' : c);
  }
  return out;
}

bool IsPrintableAscii(std::string_view value) {
  return std::all_of(value.begin(), value.end(), [](char c) { return c >= 0x20 && c <= 0x7e; });
}

bool IsLowerHex(std::string_view value) {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Whether a W3C Trace Context header may be forwarded to a backend as gRPC metadata: gRPC aborts
// the process on a metadata value that is not printable ASCII, and a malformed one is of no use
// to tracing either. traceparent is version-traceid-parentid-flags in lower-case hex (a later
// version may append "-..." fields); tracestate is at most 512 printable characters.
bool IsForwardableTraceHeader(std::string_view name, std::string_view value) {
  constexpr size_t kMaxTraceHeader = 512;
  if (value.size() > kMaxTraceHeader || !IsPrintableAscii(value)) return false;
  if (name != "traceparent") return !value.empty();
  return value.size() >= 55 && IsLowerHex(value.substr(0, 2)) && value[2] == '-' &&
         IsLowerHex(value.substr(3, 32)) && value[35] == '-' && IsLowerHex(value.substr(36, 16)) &&
         value[52] == '-' && IsLowerHex(value.substr(53, 2)) &&
         (value.size() == 55 || value[55] == '-') && value.substr(0, 2) != "ff";
}

// 413 REQUEST_BODY_TOO_LARGE naming the limit.
absl::Status BodyTooLarge(size_t limit) {
  return MakeError(absl::StatusCode::kInvalidArgument, "REQUEST_BODY_TOO_LARGE",
                   absl::StrCat("The request body is larger than ", limit, " bytes"),
                   {{"limitBytes", absl::StrCat(limit)}});
}

metrics::Gauge* UploadsGauge() {
  static metrics::Gauge* gauge = metrics::Registry::Global().GetGauge(
      "gateway_uploads_in_flight", "REST uploads being streamed to a service");
  return gauge;
}

metrics::Gauge* InFlightGauge() {
  static metrics::Gauge* gauge = metrics::Registry::Global().GetGauge(
      "gateway_http_requests_in_flight", "REST requests being handled");
  return gauge;
}

}  // namespace

struct Gateway::Pending {
  std::shared_ptr<HttpExchange> exchange;
  std::string request_id;
  std::chrono::steady_clock::time_point start;
  std::string label = "unmatched";  // metrics label: the route template or the built-in path
  const Route* route = nullptr;
  const Backend* backend = nullptr;
  // The verified caller sent to the backend; nullopt for exempt routes or with auth off.
  std::optional<submarine::common::v1::Principal> principal;
  grpc::ClientContext client;
  grpc::ByteBuffer request;
  grpc::ByteBuffer response;
  std::chrono::milliseconds timeout{0};  // of the backend call; 0: none
};

class Gateway::HttpTask : public rpc::BackgroundTask {
 public:
  explicit HttpTask(Gateway* gateway) : gateway_(gateway) {}
  std::string TaskName() const override { return "http"; }
  absl::Status Start() override {
    gateway_->StartHttp();
    return absl::OkStatus();
  }
  // The HTTP side drains in parallel with the gRPC proxy's drain.
  void BeginStop() override {
    draining_ = std::thread([this] { gateway_->StopHttp(); });
  }
  void Stop() override {
    if (draining_.joinable()) {
      draining_.join();
    } else {
      gateway_->StopHttp();
    }
  }

 private:
  Gateway* gateway_;
  std::thread draining_;
};

Gateway::Gateway(submarine::config::v1::GatewayConfig config)
    : config_(std::move(config)),
      timeout_(config_.request_timeout_ms() ? config_.request_timeout_ms() : kDefaultTimeoutMs) {}

Gateway::~Gateway() {
  StopHttp();
  std::unique_lock lock(async_mu_);
  async_cv_.wait(lock, [this] { return async_calls_ == 0; });
}

absl::Status Gateway::InitAuth() {
  const auto& a = config_.auth();
  auto log = log::Get("gateway");
  if (a.insecure_no_authorization()) {
    log->warn(
        "AUTHENTICATION IS OFF (auth.insecure_no_authorization): no token is checked, every "
        "caller is anonymous; never expose this gateway");
    return absl::OkStatus();
  }
  if (a.address().empty()) {
    return InvalidField("auth.address",
                        "the permission service's address is required (or set "
                        "auth.insecure_no_authorization: true to serve without authentication)");
  }
  const std::string& secret_file = config_.server().gateway_secret_file();
  if (secret_file.empty()) {
    return InvalidField("server.gateway_secret_file",
                        "the internal secret is required to sign principals for services (or set "
                        "auth.insecure_no_authorization: true to serve without authentication)");
  }
  SUBMARINE_ASSIGN_OR_RETURN(std::string secret, auth::LoadInternalSecret(secret_file));
  AuthStateCache::Options options;
  options.internal_secret = secret;
  auto codec = std::make_shared<const auth::PrincipalCodec>(std::move(secret));
  rpc::SetPrincipalCodec(codec);  // signs the gateway's own calls (GetAuthState)
  options.address = a.address();
  options.subscribe_endpoint = a.subscribe_endpoint();
  options.refresh_interval =
      std::chrono::milliseconds(a.cache_ttl_ms() ? a.cache_ttl_ms() : kDefaultAuthRefreshMs);
  options.timeout =
      std::chrono::milliseconds(a.timeout_ms() ? a.timeout_ms() : kDefaultAuthTimeoutMs);
  if (options.subscribe_endpoint.empty()) {
    log->warn("auth.subscribe_endpoint is not set: revocations reach the gateway only every {} ms",
              options.refresh_interval.count());
  }
  auth_state_ = std::make_unique<AuthStateCache>(std::move(options));
  AuthStateCache* cache = auth_state_.get();
  auth_ = AuthFilter([cache] { return cache->Current(); }, std::move(codec), &Clock::Real());
  return absl::OkStatus();
}

absl::Status Gateway::Init() {
  // Before any channel exists: backends and the permission service are dialled with it.
  SUBMARINE_RETURN_IF_ERROR(rpc::SetPeerTls(config_.server().peer_tls()));
  SUBMARINE_RETURN_IF_ERROR(InitAuth());
  SUBMARINE_ASSIGN_OR_RETURN(backends_, BackendPool::Create(config_));
  SUBMARINE_ASSIGN_OR_RETURN(routes_, RouteTable::Build(backends_->Services()));
  auto log = log::Get("gateway");
  for (const auto& route : routes_.routes()) {
    route_backends_[route.get()] = backends_->ForMethod(route->grpc_method);
    log->debug("route {} -> {}", route->label, route->grpc_method);
  }
  openapi_ = GenerateOpenApi(routes_, "Submarine API", "v1");
  if (!config_.grpc_listen().empty()) {
    proxy_ = std::make_unique<GrpcProxy>(backends_.get(), &auth_, timeout_);
  }
  auto& registry = metrics::Registry::Global();
  for (const auto& backend : backends_->backends()) {
    auto& gauges = ready_gauges_.emplace_back();
    for (const auto& service : backend->services) {
      gauges.push_back(registry.GetGauge(
          "gateway_backend_ready",
          "1 when the backend of a service answered grpc.health.v1 SERVING at the last check "
          "(made by /readyz and by each /metrics scrape)",
          absl::StrCat("service=\"", EscapeLabel(service), "\"")));
    }
  }
  SUBMARINE_ASSIGN_OR_RETURN(HttpServerOptions options, HttpOptions());
  http_ = std::make_unique<HttpServer>(
      options, [this](std::shared_ptr<HttpExchange> exchange) { Handle(std::move(exchange)); });
  SUBMARINE_ASSIGN_OR_RETURN(http_address_, http_->Bind());
  log->info("{} REST routes over {} backend(s); {} on {}", routes_.routes().size(),
            backends_->backends().size(),
            !options.tls                   ? "HTTP"
            : options.tls->ca_file.empty() ? "HTTPS"
                                           : "HTTPS (mutual TLS)",
            http_address_);
  return absl::OkStatus();
}

absl::StatusOr<HttpServerOptions> Gateway::HttpOptions() const {
  HttpServerOptions options;
  options.listen = config_.http_listen().empty() ? "127.0.0.1:8080" : config_.http_listen();
  options.io_threads = config_.io_threads() ? static_cast<int>(config_.io_threads()) : 2;
  options.max_body_bytes = config_.max_body_bytes() ? config_.max_body_bytes() : kDefaultMaxBody;
  // A method's own limit (max_body_bytes option) wins for its routes; the rest get the default.
  // Uploads (client-streaming routes) are streamed to the service as they are read.
  options.body_policy_for = [this, fallback = options.max_body_bytes](std::string_view method,
                                                                      std::string_view target) {
    RouteTable::Match match;
    std::vector<std::string> allowed;
    const std::string_view path = target.substr(0, target.find('?'));
    HttpServerOptions::BodyPolicy policy{fallback, false};
    if (routes_.Find(method, path, &match, &allowed) == RouteTable::Outcome::kMatched) {
      policy.streamed = match.route->streamed_request;
      if (match.route->max_body_bytes != 0) {
        policy.limit = static_cast<size_t>(match.route->max_body_bytes);
      } else if (policy.streamed) {
        // An upload holds one piece at a time, whatever its size: the service sets its bound.
        policy.limit = std::numeric_limits<size_t>::max();
      }
    }
    return policy;
  };
  options.max_header_bytes =
      config_.max_header_bytes() ? config_.max_header_bytes() : kDefaultMaxHeader;
  if (config_.max_connections()) options.max_connections = config_.max_connections();
  options.max_connections_per_client = config_.max_connections_per_client()
                                           ? config_.max_connections_per_client()
                                           : kDefaultMaxConnectionsPerClient;
  for (int i = 0; i < config_.trusted_proxies_size(); ++i) {
    auto block = net::CidrBlock::Parse(config_.trusted_proxies(i));
    if (!block.ok()) {
      return InvalidField(absl::StrCat("trusted_proxies[", i, "]"),
                          submarine::Message(block.status()));
    }
    options.trusted_proxies.push_back(*block);
  }
  options.header_timeout = std::chrono::milliseconds(
      config_.header_timeout_ms() ? config_.header_timeout_ms() : kDefaultHeaderTimeoutMs);
  if (config_.has_http_tls()) {
    options.tls = HttpTlsOptions{config_.http_tls().cert_file(), config_.http_tls().key_file(),
                                 config_.http_tls().ca_file()};
  }
  return options;
}

submarine::config::v1::ServerConfig Gateway::RunnerConfig() const {
  auto server = config_.server();
  server.set_grpc_listen(config_.grpc_listen().empty() ? "127.0.0.1:0" : config_.grpc_listen());
  return server;
}

void Gateway::Register(rpc::ServerRunner* runner) {
  runner->ObserveCallsOnly();  // callers authenticate with tokens, checked by AuthFilter
  if (proxy_) runner->SetGenericService(proxy_.get());
  runner->AddReadyField("http", http_address_);
  if (auth_state_) runner->AddTask(auth_state_.get());
  http_task_ = std::make_unique<HttpTask>(this);
  runner->AddTask(http_task_.get());
}

void Gateway::StartHttp() {
  if (http_) http_->Start();
}

void Gateway::StopHttp() {
  {
    std::lock_guard lock(streams_mu_);
    streams_stopped_ = true;
    for (grpc::ClientContext* stream : streams_) stream->TryCancel();
  }
  if (!http_) return;
  uint32_t grace =
      config_.server().shutdown_grace_ms() ? config_.server().shutdown_grace_ms() : kDefaultGraceMs;
  http_->Stop(std::chrono::milliseconds(grace));
}

void Gateway::BeginAsync() {
  std::lock_guard lock(async_mu_);
  ++async_calls_;
}

void Gateway::EndAsync() {
  std::lock_guard lock(async_mu_);
  if (--async_calls_ == 0) async_cv_.notify_all();
}

void Gateway::Handle(std::shared_ptr<HttpExchange> exchange) {
  InFlightGauge()->Add(1);
  auto pending = std::make_shared<Pending>();
  pending->exchange = std::move(exchange);
  pending->start = std::chrono::steady_clock::now();
  const HttpRequest& req = pending->exchange->request();
  std::string_view client_id = req.Header(rpc::kRequestIdHeader);
  pending->request_id =
      rpc::AcceptableRequestId(client_id) ? std::string(client_id) : IdGenerator::Secure().Uuid();
  log::ScopedRequestId bind(pending->request_id);
  // Nothing may escape into the io thread: a bug answers 500 instead of ending the process, and
  // what went wrong is logged, never answered (exception text can name anything).
  try {
    Dispatch(pending);
  } catch (const std::exception& e) {
    log::Get("gateway")->error("unexpected {} handling {} {}: {}", typeid(e).name(),
                               QuoteInput(req.method), QuoteInput(req.path, 256), e.what());
    ReplyInternalError(pending);
  } catch (...) {
    log::Get("gateway")->error("unexpected non-standard exception handling {} {}",
                               QuoteInput(req.method), QuoteInput(req.path, 256));
    ReplyInternalError(pending);
  }
}

void Gateway::ReplyInternalError(const std::shared_ptr<Pending>& pending) {
  pending->label = "internal-error";
  HttpReply reply =
      RenderError(REST_FACE_UNSPECIFIED, ConcealedInternal(pending->request_id, "gateway"));
  Reply(pending, reply.status, std::move(reply.body));
}

void Gateway::Dispatch(const std::shared_ptr<Pending>& pending) {
  const HttpRequest& req = pending->exchange->request();
  if (req.rejected_status != 0) {
    pending->label = "rejected";
    absl::Status error;
    if (req.rejected_status == 413) {
      error = BodyTooLarge(req.body_limit);
    } else if (req.rejected_status == 429) {
      uint32_t limit = config_.max_connections_per_client() ? config_.max_connections_per_client()
                                                            : kDefaultMaxConnectionsPerClient;
      error = MakeError(absl::StatusCode::kResourceExhausted, "CLIENT_REQUEST_LIMIT",
                        absl::StrCat("This client already has ", limit,
                                     " requests in flight; retry when one has finished"),
                        {{"limitRequests", absl::StrCat(limit)}});
      HttpReply reply = RenderError(REST_FACE_UNSPECIFIED, error, 429);
      return Reply(pending, reply.status, std::move(reply.body), kJson, {{"Retry-After", "1"}});
    } else if (req.rejected_status == 431) {
      uint32_t limit = config_.max_header_bytes() ? config_.max_header_bytes() : kDefaultMaxHeader;
      error = MakeError(absl::StatusCode::kInvalidArgument, "REQUEST_HEADERS_TOO_LARGE",
                        absl::StrCat("The request headers are larger than ", limit, " bytes"),
                        {{"limitBytes", absl::StrCat(limit)}});
    } else {
      error = MakeError(absl::StatusCode::kInvalidArgument, "MALFORMED_HTTP_REQUEST",
                        "The request is not valid HTTP/1.1");
    }
    HttpReply reply = RenderError(REST_FACE_UNSPECIFIED, error, req.rejected_status);
    return Reply(pending, reply.status, std::move(reply.body));
  }
  if (HandleBuiltin(pending)) return;

  RouteTable::Match match;
  std::vector<std::string> allowed;
  switch (routes_.Find(req.method, req.path, &match, &allowed)) {
    case RouteTable::Outcome::kNotFound: {
      const std::string method = QuoteInput(req.method);
      const std::string path = QuoteInput(req.path);
      HttpReply reply = RenderError(REST_FACE_UNSPECIFIED,
                                    MakeError(absl::StatusCode::kNotFound, "ROUTE_NOT_FOUND",
                                              absl::StrCat("No route for ", method, " ", path),
                                              {{"method", method}, {"path", path}}));
      return Reply(pending, reply.status, std::move(reply.body));
    }
    case RouteTable::Outcome::kMethodNotAllowed: {
      std::string allow = absl::StrJoin(allowed, ", ");
      const std::string method = QuoteInput(req.method);
      const std::string path = QuoteInput(req.path);
      HttpReply reply =
          RenderError(REST_FACE_UNSPECIFIED,
                      MakeError(absl::StatusCode::kUnimplemented, "METHOD_NOT_ALLOWED",
                                absl::StrCat("Method ", method, " is not allowed on ", path,
                                             " (allowed: ", allow, ")"),
                                {{"method", method}, {"path", path}, {"allowed", allow}}),
                      405);
      return Reply(pending, reply.status, std::move(reply.body), kJson, {{"Allow", allow}});
    }
    case RouteTable::Outcome::kMatched:
      break;
  }
  const Route& route = *match.route;
  pending->route = &route;
  pending->label = route.label;
  // Before the request is even parsed: a caller without a valid token learns nothing about it.
  auto principal = auth_.Authenticate(route.method, req.Header("authorization"));
  if (!principal.ok()) {
    HttpReply reply = RenderError(route.face, principal.status());
    std::vector<std::pair<std::string, std::string>> headers;
    if (principal.status().code() == absl::StatusCode::kUnauthenticated) {
      // RFC 6750 §3: no credentials get the bare challenge, bad ones error="invalid_token".
      headers.emplace_back("WWW-Authenticate",
                           req.Header("authorization").empty()
                               ? R"(Bearer realm="submarine")"
                               : R"(Bearer realm="submarine", error="invalid_token")");
    } else {
      headers.emplace_back("Retry-After", "1");
    }
    return Reply(pending, reply.status, std::move(reply.body), kJson, std::move(headers));
  }
  pending->principal = std::move(principal).value();
  const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(
      route.method->input_type());
  std::unique_ptr<Message> message(prototype->New());
  // A streamed body is not read yet: the first message gets the bindings and content type now,
  // the body's pieces as they arrive.
  absl::Status built = BuildRequest(route, match.bindings, req.query, req.body,
                                    req.Header("content-type"), message.get());
  if (!built.ok()) {
    HttpReply reply = RenderError(route.face, built);
    return Reply(pending, reply.status, std::move(reply.body));
  }
  if (route.streamed_request) {
    const uint32_t limit = config_.max_uploads() ? config_.max_uploads() : kDefaultMaxUploads;
    if (uploads_.fetch_add(1) >= static_cast<int64_t>(limit)) {
      uploads_.fetch_sub(1);
      HttpReply reply = RenderError(
          route.face, MakeError(absl::StatusCode::kUnavailable, "TOO_MANY_UPLOADS",
                                absl::StrCat("The gateway is taking ", limit,
                                             " uploads already; retry when one has finished"),
                                {{"limitUploads", absl::StrCat(limit)}}));
      return Reply(pending, reply.status, std::move(reply.body), kJson, {{"Retry-After", "1"}});
    }
    UploadsGauge()->Add(1);
    return StreamToBackend(pending, route, *route_backends_.at(&route), std::move(message));
  }
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::Status serialized =
      grpc::SerializationTraits<Message>::Serialize(*message, &buffer, &own_buffer);
  if (!serialized.ok()) {
    log::Get("gateway")->error("cannot serialize the request to {}: {}", route.grpc_method,
                               serialized.error_message());
    return ReplyInternalError(pending);
  }
  if (route.method->server_streaming()) {
    return StreamFromBackend(pending, route, *route_backends_.at(&route), std::move(buffer));
  }
  CallBackend(pending, route, *route_backends_.at(&route), std::move(buffer));
}

bool Gateway::HandleBuiltin(const std::shared_ptr<Pending>& pending) {
  const HttpRequest& req = pending->exchange->request();
  const std::string& path = req.path;
  if (path != "/healthz" && path != "/readyz" && path != "/metrics" &&
      path != "/api/openapi.json") {
    return false;
  }
  pending->label = path;
  if (req.method != "GET") {
    const std::string method = QuoteInput(req.method);
    HttpReply reply = RenderError(
        REST_FACE_UNSPECIFIED,
        MakeError(absl::StatusCode::kUnimplemented, "METHOD_NOT_ALLOWED",
                  absl::StrCat("Method ", method, " is not allowed on ", path, " (allowed: GET)"),
                  {{"method", method}, {"path", path}, {"allowed", "GET"}}),
        405);
    Reply(pending, reply.status, std::move(reply.body), kJson, {{"Allow", "GET"}});
  } else if (path == "/healthz") {
    Reply(pending, 200, R"({"status":"ok"})");
  } else if (path == "/metrics") {
    HandleMetrics(pending);
  } else if (path == "/api/openapi.json") {
    Reply(pending, 200, openapi_);
  } else {
    HandleReadiness(pending);
  }
  return true;
}

void Gateway::CheckBackends(HealthCallback done) {
  {
    std::lock_guard lock(health_mu_);
    health_waiters_.push_back(std::move(done));
    if (health_waiters_.size() > 1) return;  // joins the round in flight
  }
  BeginAsync();
  backends_->CheckHealth(std::min<std::chrono::milliseconds>(timeout_, kMaxHealthTimeout),
                         [this](std::vector<BackendHealth> results) {
                           for (size_t i = 0; i < results.size(); ++i) {
                             for (metrics::Gauge* gauge : ready_gauges_[i]) {
                               gauge->Set(results[i].serving ? 1 : 0);
                             }
                           }
                           std::vector<HealthCallback> waiters;
                           {
                             std::lock_guard lock(health_mu_);
                             waiters.swap(health_waiters_);
                           }
                           for (auto& waiter : waiters) waiter(results);
                           waiters.clear();  // nothing of a request may outlive EndAsync()
                           EndAsync();
                         });
}

void Gateway::HandleMetrics(const std::shared_ptr<Pending>& pending) {
  CheckBackends([this, pending](const std::vector<BackendHealth>&) {
    pending->exchange->Post([this, pending] {
      log::ScopedRequestId bind(pending->request_id);
      Reply(pending, 200, metrics::Registry::Global().Render(),
            "text/plain; version=0.0.4; charset=utf-8");
    });
  });
}

void Gateway::HandleReadiness(const std::shared_ptr<Pending>& pending) {
  // Which backend is not serving, its address and gRPC's words for why are for platform admins
  // (and for everyone when authentication is off, where nothing is withheld from anyone).
  std::optional<submarine::common::v1::Principal> caller =
      auth_.Identify(pending->exchange->request().Header("authorization"));
  const bool detail = !auth_.enabled() || (caller.has_value() && caller->admin());
  if (auth_state_ != nullptr && auth_state_->Current() == nullptr) {
    // Not ready before the first token state: every authenticated route would answer 503. (No
    // one can be identified as an admin yet, so no detail either; the refresher logs why.)
    HttpReply reply = RenderError(
        REST_FACE_UNSPECIFIED,
        MakeError(absl::StatusCode::kUnavailable, "AUTH_STATE_UNAVAILABLE",
                  "The gateway is not ready: it has not loaded the token state from the "
                  "permission service yet"));
    return Reply(pending, reply.status, std::move(reply.body));
  }
  CheckBackends([this, pending, detail](const std::vector<BackendHealth>& results) {
    pending->exchange->Post([this, pending, detail, results] {
      log::ScopedRequestId bind(pending->request_id);
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      std::vector<std::string> failures;
      std::string first_failing;
      for (size_t i = 0; i < results.size(); ++i) {
        const auto& services = backends_->backends()[i]->services;
        nlohmann::ordered_json item = {{"address", results[i].address},
                                       {"services", services},
                                       {"serving", results[i].serving}};
        if (!results[i].serving) {
          item["problem"] = results[i].problem;
          failures.push_back(absl::StrCat("backend ", results[i].address, " (",
                                          absl::StrJoin(services, ", "),
                                          ") is not serving: ", results[i].problem));
          if (first_failing.empty()) first_failing = results[i].address;
        }
        list.push_back(std::move(item));
      }
      if (failures.empty()) {
        if (!detail) return Reply(pending, 200, R"({"status":"ok"})");
        return Reply(pending, 200,
                     Dump({{"status", "ok"},
                           {"authentication", auth_.enabled() ? "on" : "off"},
                           {"backends", list}}));
      }
      std::string all_failures = absl::StrJoin(failures, "; ");
      log::Get("gateway")->info("not ready: {}", all_failures);
      absl::Status error = detail ? MakeError(absl::StatusCode::kUnavailable, "BACKEND_NOT_SERVING",
                                              all_failures, {{"backend", first_failing}})
                                  : MakeError(absl::StatusCode::kUnavailable, "BACKEND_NOT_SERVING",
                                              "The gateway is not ready: a backend is not serving");
      HttpReply reply = RenderError(REST_FACE_UNSPECIFIED, error);
      Reply(pending, reply.status, std::move(reply.body));
    });
  });
}

std::chrono::milliseconds Gateway::PrepareBackendCall(const std::shared_ptr<Pending>& pending,
                                                      const Route& route) {
  std::optional<std::chrono::milliseconds> timeout = MethodTimeout(route.method, timeout_);
  if (timeout) pending->client.set_deadline(std::chrono::system_clock::now() + *timeout);
  auth_.Attach(&pending->client, pending->principal, pending->request_id, route.grpc_method);
  const HttpRequest& req = pending->exchange->request();
  for (const char* header : {"traceparent", "tracestate"}) {
    std::string_view value = req.Header(header);
    if (IsForwardableTraceHeader(header, value)) {
      pending->client.AddMetadata(header, std::string(value));
    }
  }
  return timeout.value_or(std::chrono::milliseconds(0));
}

void Gateway::CallBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                          const Backend& backend, grpc::ByteBuffer request) {
  pending->backend = &backend;
  pending->request = std::move(request);
  pending->timeout = PrepareBackendCall(pending, route);
  BeginAsync();
  backend.stub->UnaryCall(&pending->client, route.grpc_method, grpc::StubOptions(),
                          &pending->request, &pending->response,
                          [this, pending](grpc::Status status) mutable {
                            {
                              // Back to the connection's strand; nothing of the request may
                              // outlive EndAsync() in this callback.
                              std::shared_ptr<Pending> p = std::move(pending);
                              std::shared_ptr<HttpExchange> exchange = p->exchange;
                              exchange->Post([this, p, status] { CompleteBackendCall(p, status); });
                            }
                            EndAsync();
                          });
}

void Gateway::CompleteBackendCall(const std::shared_ptr<Pending>& pending,
                                  const grpc::Status& status) {
  log::ScopedRequestId bind(pending->request_id);
  const Route& route = *pending->route;
  auto log = log::Get("gateway");
  if (status.ok()) {
    auto reply = RenderResponse(route, &pending->response);
    if (reply.ok()) {
      return Reply(pending, reply->status, std::move(reply->body), std::move(reply->content_type));
    }
    log->error("{}: {}", route.grpc_method, submarine::Message(reply.status()));
    return ReplyInternalError(pending);
  }
  if (HidesBackendText(status)) {
    log->warn("{} to {} failed: {}: {}", route.grpc_method, pending->backend->address,
              CodeName(status.error_code()), status.error_message());
  }
  HttpReply error =
      RenderError(route.face, ClientFacingBackendError(route.method->service()->full_name(), status,
                                                       pending->timeout, pending->request_id));
  Reply(pending, error.status, std::move(error.body));
}

// One REST call of a server-streaming method. The backend call is a client bidi reactor that
// writes the one request and reads the answers one at a time: the next message is read only
// once the previous one's chunk was written to the client (backpressure), so a slow client
// slows the backend instead of filling the gateway's memory. The answer starts with the first
// message (HTTP 200); an error before it is an ordinary error answer with its HTTP status, an
// error after it the stream's last line: {"error":{...}} in NDJSON, an "error" event in SSE.
// A client that goes away cancels the backend call. Reads after the first are started from the
// connection's strand, outside the reactor's reactions, so the call carries a hold while reads
// may follow. Keeps itself alive until the backend call is done.
class Gateway::RestStream : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RestStream(Gateway* gateway, std::shared_ptr<Pending> pending, bool sse)
      : gateway_(gateway),
        pending_(std::move(pending)),
        raw_(pending_->route->raw_response),
        sse_(sse && !raw_) {}

  void Start(std::shared_ptr<RestStream> self, const Backend& backend) {
    self_ = std::move(self);
    backend.stub->PrepareBidiStreamingCall(&pending_->client, pending_->route->grpc_method,
                                           grpc::StubOptions(), this);
    AddHold();  // released when no further read will be started
    StartWriteLast(&pending_->request, grpc::WriteOptions());
    StartRead(&pending_->response);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      RemoveHold();  // the backend's status follows in OnDone
      return;
    }
    pending_->exchange->Post([self = self_] { self->Deliver(); });
  }

  void OnDone(const grpc::Status& status) override {
    gateway_->EndStreamCall(pending_,
                            [self = std::move(self_), status] { self->Complete(status); });
  }

 private:
  // On the strand: the message just read goes to the client as one line or event.
  void Deliver() {
    log::ScopedRequestId bind(pending_->request_id);
    const Route& route = *pending_->route;
    auto reply = RenderResponse(route, &pending_->response);
    if (!reply.ok()) {
      log::Get("gateway")->error("{}: {}", route.grpc_method, submarine::Message(reply.status()));
      render_failed_ = true;
      pending_->client.TryCancel();
      RemoveHold();
      return;
    }
    // Raw (google.api.HttpBody): each message's data as it is, the first one's content type.
    std::string frame = raw_ ? std::move(reply->body) : Frame(std::move(reply->body), false);
    bytes_ += frame.size();
    auto on_written = [self = self_](bool ok) {
      if (ok) return self->StartRead(&self->pending_->response);
      self->pending_->client.TryCancel();  // the client is gone
      self->RemoveHold();
    };
    if (started_) return pending_->exchange->WriteChunk(std::move(frame), std::move(on_written));
    started_ = true;
    HttpResponse head;
    head.status = 200;
    head.content_type = raw_   ? reply->content_type
                        : sse_ ? "text/event-stream"
                               : "application/x-ndjson";
    head.headers.emplace_back(rpc::kRequestIdHeader, pending_->request_id);
    head.body = std::move(frame);
    // Nothing else holds the request while the backend is silent: a client that goes away then
    // is noticed by the connection, which cancels the call.
    std::weak_ptr<Pending> weak = pending_;
    pending_->exchange->StartStream(std::move(head), std::move(on_written), [weak] {
      if (auto p = weak.lock()) p->client.TryCancel();
    });
  }

  // On the strand: the backend call is over.
  void Complete(const grpc::Status& status) {
    log::ScopedRequestId bind(pending_->request_id);
    const Route& route = *pending_->route;
    if (!started_) {
      if (status.ok()) {  // an empty stream
        return gateway_->Reply(pending_, 200, "",
                               raw_   ? "application/octet-stream"
                               : sse_ ? "text/event-stream"
                                      : "application/x-ndjson");
      }
      if (render_failed_) return gateway_->ReplyInternalError(pending_);
      return gateway_->CompleteBackendCall(pending_, status);
    }
    int code = 200;
    std::string last;
    if (render_failed_) {
      HttpReply error = RenderError(route.face, ConcealedInternal(pending_->request_id, "gateway"));
      code = error.status;
      last = Frame(std::move(error.body), /*error=*/true);
    } else if (!status.ok()) {
      if (HidesBackendText(status)) {
        log::Get("gateway")->warn("{} to {} failed mid-stream: {}: {}", route.grpc_method,
                                  pending_->backend->address, CodeName(status.error_code()),
                                  status.error_message());
      }
      HttpReply error = RenderError(
          route.face, ClientFacingBackendError(route.method->service()->full_name(), status,
                                               pending_->timeout, pending_->request_id));
      code = error.status;
      last = Frame(std::move(error.body), /*error=*/true);
    }
    if (raw_ && code != 200) {
      // A raw body has no room for an error: the client sees it truncated (no last chunk).
      pending_->exchange->AbortStream();
      return gateway_->RecordRequest(pending_, code, bytes_);
    }
    bytes_ += last.size();
    pending_->exchange->EndStream(std::move(last));
    gateway_->RecordRequest(pending_, code, bytes_);
  }

  std::string Frame(std::string json, bool error) const {
    if (!sse_) return absl::StrCat(json, "\n");
    return absl::StrCat(error ? "event: error\n" : "", "data: ", json, "\n\n");
  }

  Gateway* gateway_;
  std::shared_ptr<Pending> pending_;
  const bool raw_;  // google.api.HttpBody messages: their bytes, not JSON lines
  const bool sse_;
  std::shared_ptr<RestStream> self_;
  // On the strand only:
  bool started_ = false;
  bool render_failed_ = false;
  size_t bytes_ = 0;
};

void Gateway::StreamFromBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                                const Backend& backend, grpc::ByteBuffer request) {
  pending->backend = &backend;
  pending->request = std::move(request);
  pending->timeout = PrepareBackendCall(pending, route);
  bool sse = pending->exchange->request().Header("accept").find("text/event-stream") !=
             std::string_view::npos;
  auto stream = std::make_shared<RestStream>(this, pending, sse);
  BeginStreamCall(*pending);
  stream->Start(stream, backend);
}

// One REST call of a client-streaming method (an upload). The body is read in pieces of at most
// kUploadChunkBytes (HttpExchange::ReadBody), each sent as one request message: the first is the
// message BuildRequest filled (path and query bindings, the HttpBody's content_type) with the
// first piece as its data, the later ones carry only the HttpBody's data. The next piece is read
// only once gRPC has taken the previous message (one in flight), so a slow service holds a fast
// client back by TCP and the gateway holds about two pieces per upload whatever the body's size.
// The body's end half-closes the call (the last piece goes with it); the service's answer is
// rendered as for a unary call. A body over the limit (413) or malformed (400), or a client that
// goes away, cancels the call: the service sees CANCELLED, never a truncated body ending well. A
// service that ends the call first stops the reading (at most one more piece is read) and its
// status is the answer. A client that goes away while the service is slow to take a message is
// noticed at the next read. Writes are started from the connection's strand, outside the
// reactor's reactions, so the call carries a hold until no further write will be started.
// Keeps itself alive until the backend call is done.
class Gateway::RestUpload : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  RestUpload(Gateway* gateway, std::shared_ptr<Pending> pending, std::unique_ptr<Message> first)
      : gateway_(gateway), pending_(std::move(pending)), first_(std::move(first)) {}
  // Counted in Gateway::uploads_ from Dispatch on; destroyed on the connection's strand, as
  // Complete runs, while the gateway serves.
  ~RestUpload() {
    gateway_->uploads_.fetch_sub(1);
    UploadsGauge()->Add(-1);
  }

  void Start(std::shared_ptr<RestUpload> self, const Backend& backend) {
    self_ = std::move(self);
    backend.stub->PrepareBidiStreamingCall(&pending_->client, pending_->route->grpc_method,
                                           grpc::StubOptions(), this);
    AddHold();  // released by StopWriting
    StartRead(&pending_->response);
    StartCall();
    ReadNext();
  }

  void OnWriteDone(bool ok) override {
    // Not ok: the call is over, its status follows in OnDone.
    if (!ok || last_written_) return StopWriting();
    ReadNext();
  }

  void OnWritesDoneDone(bool) override { StopWriting(); }

  // The service answered (or failed): nothing more will be sent to it.
  void OnReadDone(bool) override { backend_ended_.store(true); }

  void OnDone(const grpc::Status& status) override {
    gateway_->EndStreamCall(pending_,
                            [self = std::move(self_), status] { self->Complete(status); });
  }

 private:
  void ReadNext() {
    pending_->exchange->ReadBody(kUploadChunkBytes,
                                 [self = self_](BodyPiece piece) { self->Send(std::move(piece)); });
  }

  // On the strand: one piece of the body goes to the service.
  void Send(BodyPiece piece) {
    log::ScopedRequestId bind(pending_->request_id);
    switch (piece.state) {
      case BodyPiece::State::kMore:
      case BodyPiece::State::kEnd:
        break;
      case BodyPiece::State::kTooLarge:
      case BodyPiece::State::kMalformed:
      case BodyPiece::State::kGone:
        body_failure_ = piece.state;
        pending_->client.TryCancel();
        return StopWriting();
    }
    if (backend_ended_.load()) return StopWriting();
    const bool last = piece.state == BodyPiece::State::kEnd;
    if (last && piece.data.empty() && first_ == nullptr) {
      last_written_ = true;
      return StartWritesDone();
    }
    std::unique_ptr<Message> later;
    Message* message = first_.get();
    if (message == nullptr) {
      later.reset(Prototype()->New());
      message = later.get();
    }
    const Route& route = *pending_->route;
    Message* http_body = route.body_field == nullptr
                             ? message
                             : message->GetReflection()->MutableMessage(message, route.body_field);
    http_body->GetReflection()->SetString(
        http_body, http_body->GetDescriptor()->FindFieldByName("data"), std::move(piece.data));
    bool own_buffer = false;
    write_buffer_.Clear();  // the previous message is written: gRPC serializes into an empty one
    grpc::Status serialized =
        grpc::SerializationTraits<Message>::Serialize(*message, &write_buffer_, &own_buffer);
    first_.reset();
    if (!serialized.ok()) {
      log::Get("gateway")->error("cannot serialize the request to {}: {}", route.grpc_method,
                                 serialized.error_message());
      serialize_failed_ = true;
      pending_->client.TryCancel();
      return StopWriting();
    }
    last_written_ = last;
    if (last) return StartWriteLast(&write_buffer_, grpc::WriteOptions());
    StartWrite(&write_buffer_);
  }

  const Message* Prototype() const {
    return google::protobuf::MessageFactory::generated_factory()->GetPrototype(
        pending_->route->method->input_type());
  }

  void StopWriting() {
    if (!writing_over_.exchange(true)) RemoveHold();
  }

  // On the strand: the backend call is over.
  void Complete(const grpc::Status& status) {
    log::ScopedRequestId bind(pending_->request_id);
    const Route& route = *pending_->route;
    switch (body_failure_) {
      case BodyPiece::State::kTooLarge: {
        HttpReply reply =
            RenderError(route.face, BodyTooLarge(pending_->exchange->request().body_limit), 413);
        return gateway_->Reply(pending_, reply.status, std::move(reply.body));
      }
      case BodyPiece::State::kMalformed: {
        HttpReply reply =
            RenderError(route.face,
                        MakeError(absl::StatusCode::kInvalidArgument, "MALFORMED_HTTP_REQUEST",
                                  "The request body is not valid HTTP/1.1"),
                        400);
        return gateway_->Reply(pending_, reply.status, std::move(reply.body));
      }
      case BodyPiece::State::kGone: {
        // No one to answer: counted and logged as the client closing the request.
        HttpReply reply =
            RenderError(route.face,
                        MakeError(absl::StatusCode::kCancelled, "CLIENT_CLOSED_REQUEST",
                                  "The client closed the connection before the request body ended"),
                        499);
        return gateway_->Reply(pending_, reply.status, std::move(reply.body));
      }
      default:
        break;
    }
    if (serialize_failed_) return gateway_->ReplyInternalError(pending_);
    gateway_->CompleteBackendCall(pending_, status);
  }

  Gateway* gateway_;
  std::shared_ptr<Pending> pending_;
  std::unique_ptr<Message> first_;  // until it is sent
  std::shared_ptr<RestUpload> self_;
  grpc::ByteBuffer write_buffer_;  // the message in flight
  std::atomic<bool> writing_over_{false};
  std::atomic<bool> backend_ended_{false};
  // On the strand, or ordered by the write in flight:
  bool last_written_ = false;
  bool serialize_failed_ = false;
  BodyPiece::State body_failure_ = BodyPiece::State::kMore;  // kMore: none
};

void Gateway::StreamToBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                              const Backend& backend, std::unique_ptr<Message> first) {
  pending->backend = &backend;
  pending->timeout = PrepareBackendCall(pending, route);
  auto upload = std::make_shared<RestUpload>(this, pending, std::move(first));
  BeginStreamCall(*pending);
  upload->Start(upload, backend);
}

void Gateway::BeginStreamCall(Pending& pending) {
  BeginAsync();
  std::lock_guard lock(streams_mu_);
  streams_.insert(&pending.client);
  if (streams_stopped_) pending.client.TryCancel();  // shutting down
}

void Gateway::EndStreamCall(std::shared_ptr<Pending> pending, std::function<void()> complete) {
  {
    std::lock_guard lock(streams_mu_);
    streams_.erase(&pending->client);
  }
  // `pending` keeps the exchange alive through Post although `complete` may already have run.
  pending->exchange->Post(std::move(complete));
  pending.reset();  // nothing of the request may outlive EndAsync()
  EndAsync();
}

void Gateway::Reply(const std::shared_ptr<Pending>& pending, int status, std::string body,
                    std::string content_type,
                    std::vector<std::pair<std::string, std::string>> headers) {
  RecordRequest(pending, status, body.size());
  HttpResponse response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.headers = std::move(headers);
  response.headers.emplace_back(rpc::kRequestIdHeader, pending->request_id);
  response.body = std::move(body);
  pending->exchange->Respond(std::move(response));
}

void Gateway::RecordRequest(const std::shared_ptr<Pending>& pending, int status, size_t bytes) {
  const HttpRequest& req = pending->exchange->request();
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - pending->start).count();
  auto& registry = metrics::Registry::Global();
  std::string route = EscapeLabel(pending->label);
  registry
      .GetCounter("gateway_http_requests_total", "REST requests by route and HTTP status",
                  absl::StrCat("route=\"", route, "\",code=\"", status, "\""))
      ->Inc();
  registry
      .GetHistogram("gateway_http_request_duration_seconds", "REST request latency by route",
                    absl::StrCat("route=\"", route, "\""))
      ->Observe(seconds);
  InFlightGauge()->Add(-1);
  log::Get("access")->info("{} {} {} {}B {:.3f}ms peer={} client={}", QuoteInput(req.method),
                           QuoteInput(req.target, 1024), status, bytes, seconds * 1e3, req.peer,
                           req.client);
}

}  // namespace submarine::gateway
