#include "gateway/gateway.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <optional>
#include <thread>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log/log.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "common/util/clock.h"
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
  options.address = a.address();
  options.subscribe_endpoint = a.subscribe_endpoint();
  options.refresh_interval =
      std::chrono::milliseconds(a.cache_ttl_ms() ? a.cache_ttl_ms() : kDefaultAuthRefreshMs);
  options.timeout =
      std::chrono::milliseconds(a.timeout_ms() ? a.timeout_ms() : kDefaultAuthTimeoutMs);
  options.codec = codec;
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
  HttpServerOptions options;
  options.listen = config_.http_listen().empty() ? "127.0.0.1:8080" : config_.http_listen();
  options.io_threads = config_.io_threads() ? static_cast<int>(config_.io_threads()) : 2;
  options.max_body_bytes = config_.max_body_bytes() ? config_.max_body_bytes() : kDefaultMaxBody;
  options.max_header_bytes =
      config_.max_header_bytes() ? config_.max_header_bytes() : kDefaultMaxHeader;
  if (config_.max_connections()) options.max_connections = config_.max_connections();
  http_ = std::make_unique<HttpServer>(
      options, [this](std::shared_ptr<HttpExchange> exchange) { Handle(std::move(exchange)); });
  SUBMARINE_ASSIGN_OR_RETURN(http_address_, http_->Bind());
  log->info("{} REST routes over {} backend(s); HTTP on {}", routes_.routes().size(),
            backends_->backends().size(), http_address_);
  return absl::OkStatus();
}

submarine::config::v1::ServerConfig Gateway::RunnerConfig() const {
  auto server = config_.server();
  server.set_grpc_listen(config_.grpc_listen().empty() ? "127.0.0.1:0" : config_.grpc_listen());
  return server;
}

void Gateway::Register(rpc::ServerRunner* runner) {
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
  try {
    Dispatch(pending);
  } catch (const std::exception& e) {
    // Nothing may escape into the io thread: a bug answers 500 instead of ending the process.
    log::Get("gateway")->error("unexpected error handling {} {}: {}", req.method, req.path,
                               e.what());
    pending->label = "internal-error";
    HttpReply reply = RenderError(REST_FACE_UNSPECIFIED,
                                  Internal(absl::StrCat("unexpected gateway error: ", e.what())));
    Reply(pending, reply.status, std::move(reply.body));
  }
}

void Gateway::Dispatch(const std::shared_ptr<Pending>& pending) {
  const HttpRequest& req = pending->exchange->request();
  if (req.rejected_status != 0) {
    pending->label = "rejected";
    absl::Status error;
    if (req.rejected_status == 413) {
      uint32_t limit = config_.max_body_bytes() ? config_.max_body_bytes() : kDefaultMaxBody;
      error = MakeError(absl::StatusCode::kInvalidArgument, "REQUEST_BODY_TOO_LARGE",
                        absl::StrCat("The request body is larger than ", limit, " bytes"),
                        {{"limitBytes", absl::StrCat(limit)}});
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
      HttpReply reply = RenderError(
          REST_FACE_UNSPECIFIED, MakeError(absl::StatusCode::kNotFound, "ROUTE_NOT_FOUND",
                                           absl::StrCat("No route for ", req.method, " ", req.path),
                                           {{"method", req.method}, {"path", req.path}}));
      return Reply(pending, reply.status, std::move(reply.body));
    }
    case RouteTable::Outcome::kMethodNotAllowed: {
      std::string allow = absl::StrJoin(allowed, ", ");
      HttpReply reply =
          RenderError(REST_FACE_UNSPECIFIED,
                      MakeError(absl::StatusCode::kUnimplemented, "METHOD_NOT_ALLOWED",
                                absl::StrCat("Method ", req.method, " is not allowed on ", req.path,
                                             " (allowed: ", allow, ")"),
                                {{"method", req.method}, {"path", req.path}, {"allowed", allow}}),
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
  absl::Status built = BuildRequest(route, match.bindings, req.query, req.body,
                                    req.Header("content-type"), message.get());
  if (!built.ok()) {
    HttpReply reply = RenderError(route.face, built);
    return Reply(pending, reply.status, std::move(reply.body));
  }
  grpc::ByteBuffer buffer;
  bool own_buffer = false;
  grpc::Status serialized =
      grpc::SerializationTraits<Message>::Serialize(*message, &buffer, &own_buffer);
  if (!serialized.ok()) {
    HttpReply reply = RenderError(route.face, Internal("cannot serialize the request"));
    return Reply(pending, reply.status, std::move(reply.body));
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
    HttpReply reply = RenderError(
        REST_FACE_UNSPECIFIED,
        MakeError(
            absl::StatusCode::kUnimplemented, "METHOD_NOT_ALLOWED",
            absl::StrCat("Method ", req.method, " is not allowed on ", path, " (allowed: GET)"),
            {{"method", req.method}, {"path", path}, {"allowed", "GET"}}),
        405);
    Reply(pending, reply.status, std::move(reply.body), kJson, {{"Allow", "GET"}});
  } else if (path == "/healthz") {
    Reply(pending, 200, R"({"status":"ok"})");
  } else if (path == "/metrics") {
    Reply(pending, 200, metrics::Registry::Global().Render(),
          "text/plain; version=0.0.4; charset=utf-8");
  } else if (path == "/api/openapi.json") {
    Reply(pending, 200, openapi_);
  } else {
    HandleReadiness(pending);
  }
  return true;
}

void Gateway::HandleReadiness(const std::shared_ptr<Pending>& pending) {
  if (auth_state_ != nullptr && auth_state_->Current() == nullptr) {
    // Not ready before the first token state: every authenticated route would answer 503.
    HttpReply reply = RenderError(
        REST_FACE_UNSPECIFIED,
        MakeError(absl::StatusCode::kUnavailable, "AUTH_STATE_UNAVAILABLE",
                  absl::StrCat("the token state has not been loaded from the permission service "
                               "at ", config_.auth().address(), ": ",
                               submarine::Message(auth_state_->last_error())),
                  {{"backend", config_.auth().address()}}));
    return Reply(pending, reply.status, std::move(reply.body));
  }
  BeginAsync();
  backends_->CheckHealth(
      std::min<std::chrono::milliseconds>(timeout_, kMaxHealthTimeout),
      [this, pending](std::vector<BackendHealth> results) mutable {
        {
          // Nothing of the request may outlive EndAsync() in this callback.
          std::shared_ptr<Pending> p = std::move(pending);
          std::shared_ptr<HttpExchange> exchange = p->exchange;
          exchange->Post([this, p, results = std::move(results)] {
            log::ScopedRequestId bind(p->request_id);
            nlohmann::ordered_json list = nlohmann::ordered_json::array();
            std::vector<std::string> failures;
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
              }
              list.push_back(std::move(item));
            }
            if (failures.empty()) {
              Reply(p, 200,
                    Dump({{"status", "ok"},
                          {"authentication", auth_.enabled() ? "on" : "off"},
                          {"backends", list}}));
              return;
            }
            std::string first_failing;
            for (const auto& r : results) {
              if (!r.serving && first_failing.empty()) first_failing = r.address;
            }
            HttpReply reply =
                RenderError(REST_FACE_UNSPECIFIED,
                            MakeError(absl::StatusCode::kUnavailable, "BACKEND_NOT_SERVING",
                                      absl::StrJoin(failures, "; "), {{"backend", first_failing}}));
            Reply(p, reply.status, std::move(reply.body));
          });
        }
        EndAsync();
      });
}

void Gateway::CallBackend(const std::shared_ptr<Pending>& pending, const Route& route,
                          const Backend& backend, grpc::ByteBuffer request) {
  pending->backend = &backend;
  pending->request = std::move(request);
  pending->client.set_deadline(std::chrono::system_clock::now() + timeout_);
  auth_.Attach(&pending->client, pending->principal, pending->request_id);
  const HttpRequest& req = pending->exchange->request();
  for (const char* header : {"traceparent", "tracestate"}) {
    std::string_view value = req.Header(header);
    if (!value.empty()) pending->client.AddMetadata(header, std::string(value));
  }
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
  if (status.ok()) {
    auto reply = RenderResponse(route, &pending->response);
    if (reply.ok()) return Reply(pending, reply->status, std::move(reply->body));
    log::Get("gateway")->error("{}: {}", route.grpc_method, submarine::Message(reply.status()));
    HttpReply error = RenderError(route.face, reply.status());
    return Reply(pending, error.status, std::move(error.body));
  }
  HttpReply error =
      RenderError(route.face, DescribeBackendFailure(route, *pending->backend, status));
  Reply(pending, error.status, std::move(error.body));
}

grpc::Status Gateway::DescribeBackendFailure(const Route& route, const Backend& backend,
                                             const grpc::Status& status) const {
  google::rpc::Status details;
  if (DecodeStatusDetails(status, &details) && details.details_size() > 0) return status;
  const std::string& service = route.method->service()->full_name();
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return ToGrpcStatus(
          MakeError(absl::StatusCode::kUnavailable, "BACKEND_UNAVAILABLE",
                    absl::StrCat("The backend of ", service, " at ", backend.address,
                                 " is unavailable: ", status.error_message()),
                    {{"service", service}, {"backend", backend.address}}),
          kGatewayDomain);
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return ToGrpcStatus(
          MakeError(absl::StatusCode::kDeadlineExceeded, "BACKEND_DEADLINE_EXCEEDED",
                    absl::StrCat("The backend of ", service, " at ", backend.address,
                                 " did not answer within ", timeout_.count(), " ms"),
                    {{"service", service},
                     {"backend", backend.address},
                     {"timeoutMs", absl::StrCat(timeout_.count())}}),
          kGatewayDomain);
    default:
      return status;
  }
}

void Gateway::Reply(const std::shared_ptr<Pending>& pending, int status, std::string body,
                    std::string content_type,
                    std::vector<std::pair<std::string, std::string>> headers) {
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
  log::Get("access")->info("{} {} {} {}B {:.3f}ms peer={}", req.method, req.target, status,
                           body.size(), seconds * 1e3, req.peer);
  HttpResponse response;
  response.status = status;
  response.content_type = std::move(content_type);
  response.headers = std::move(headers);
  response.headers.emplace_back(rpc::kRequestIdHeader, pending->request_id);
  response.body = std::move(body);
  pending->exchange->Respond(std::move(response));
}

}  // namespace submarine::gateway
