#include "common/authz/authorizer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/events/event_options.h"
#include "common/log/log.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::authz {
namespace {

using submarine::common::v1::Principal;
using submarine::permission::v1::AccessService;
using submarine::permission::v1::CheckPermissionRequest;
using submarine::permission::v1::CheckPermissionResponse;
using submarine::permission::v1::ListAccessibleRequest;
using submarine::permission::v1::ListAccessibleResponse;
using submarine::permission::v1::Permission;

constexpr char kTopicPrefix[] = "submarine.permission.v1.";

std::string PermissionName(Permission p) { return submarine::permission::v1::Permission_Name(p); }

// Cache keys: the parts joined by a byte that cannot occur in resource names or subjects.
std::string Key(std::initializer_list<std::string> parts) {
  std::string key;
  for (const auto& p : parts) absl::StrAppend(&key, p, "\x1f");
  return key;
}

class GrpcPermissionBackend final : public PermissionBackend {
 public:
  GrpcPermissionBackend(const std::string& address, std::string service_name,
                        std::chrono::milliseconds timeout)
      : stub_(AccessService::NewStub(rpc::MakeChannel(address))),
        service_name_(std::move(service_name)),
        timeout_(timeout) {}

  absl::StatusOr<CheckPermissionResponse> CheckPermission(
      const rpc::CallInfo& call, const CheckPermissionRequest& request) override {
    grpc::ClientContext ctx;
    Prepare(call, &ctx);
    CheckPermissionResponse resp;
    grpc::Status st = stub_->CheckPermission(&ctx, request, &resp);
    if (!st.ok()) return FromGrpcStatus(st);
    return resp;
  }

  absl::StatusOr<ListAccessibleResponse> ListAccessible(
      const rpc::CallInfo& call, const ListAccessibleRequest& request) override {
    grpc::ClientContext ctx;
    Prepare(call, &ctx);
    ListAccessibleResponse resp;
    grpc::Status st = stub_->ListAccessible(&ctx, request, &resp);
    if (!st.ok()) return FromGrpcStatus(st);
    return resp;
  }

 private:
  // The permission service is asked as this service acting for the caller's user.
  void Prepare(const rpc::CallInfo& call, grpc::ClientContext* ctx) {
    ctx->set_deadline(std::min(call.deadline, std::chrono::system_clock::now() + timeout_));
    rpc::ActAs(ctx, auth::ServicePrincipal(service_name_, call.user()), call.request_id);
  }

  std::unique_ptr<AccessService::Stub> stub_;
  const std::string service_name_;
  const std::chrono::milliseconds timeout_;
};

}  // namespace

bool InvalidatesAnswers(const std::string& topic) {
  return events::OptionsOfTopic(topic).affects_access();
}

std::unique_ptr<PermissionBackend> MakeGrpcPermissionBackend(const std::string& address,
                                                             const std::string& service_name,
                                                             std::chrono::milliseconds timeout) {
  return std::make_unique<GrpcPermissionBackend>(address, service_name, timeout);
}

absl::Status PermissionDenied(const std::string& resource, Permission permission) {
  // Deliberately silent about existence: the same words for a missing resource.
  return MakeError(absl::StatusCode::kPermissionDenied, "PERMISSION_DENIED",
                   absl::StrCat("permission ", PermissionName(permission), " on \"", resource,
                                "\" denied (or it does not exist)"),
                   {{"resource", resource}, {"permission", PermissionName(permission)}});
}

absl::StatusOr<std::unique_ptr<Authorizer>> Authorizer::Create(
    const submarine::config::v1::PermissionClientConfig& config, std::string service_name,
    std::string internal_secret) {
  Options o;
  o.service_name = std::move(service_name);
  o.internal_secret = std::move(internal_secret);
  o.insecure = config.insecure_no_authorization();
  if (config.cache_ttl_ms()) o.cache_ttl = std::chrono::milliseconds(config.cache_ttl_ms());
  if (config.cache_size()) o.cache_size = config.cache_size();
  o.subscribe_endpoint = config.subscribe_endpoint();
  if (o.insecure) {
    log::Get("authz")->warn(
        "{}: permission.insecure_no_authorization is set: EVERY caller may do EVERYTHING. "
        "Use it only to test this service alone.",
        o.service_name);
    return std::make_unique<Authorizer>(std::move(o), nullptr);
  }
  if (config.address().empty()) {
    return InvalidField("permission.address",
                        "is required (the permission service's gRPC address) unless "
                        "permission.insecure_no_authorization is set");
  }
  auto timeout = std::chrono::milliseconds(config.timeout_ms() ? config.timeout_ms() : 2000);
  auto backend = MakeGrpcPermissionBackend(config.address(), o.service_name, timeout);
  if (o.subscribe_endpoint.empty()) {
    log::Get("authz")->warn(
        "{}: permission.subscribe_endpoint is not set: cached permission answers are refreshed "
        "only after cache_ttl_ms ({} ms)",
        o.service_name, o.cache_ttl.count());
  }
  return std::make_unique<Authorizer>(std::move(o), std::move(backend));
}

Authorizer::Authorizer(Options options, std::unique_ptr<PermissionBackend> backend,
                       const Clock& clock)
    : options_(std::move(options)),
      backend_(std::move(backend)),
      clock_(clock),
      cache_(options_.cache_size, options_.cache_ttl, clock) {
  auto& reg = metrics::Registry::Global();
  std::string labels = absl::StrCat("service=\"", options_.service_name, "\"");
  hits_ = reg.GetCounter("submarine_authz_cache_hits_total",
                         "Permission answers served from the authorizer's cache", labels);
  misses_ = reg.GetCounter("submarine_authz_cache_misses_total",
                           "Permission answers fetched from the permission service", labels);
  errors_ = reg.GetCounter("submarine_authz_backend_errors_total",
                           "Permission questions the permission service could not answer "
                           "(refused: fail closed)",
                           labels);
  invalidations_ =
      reg.GetCounter("submarine_authz_invalidations_total",
                     "Times the authorizer dropped its cache (events, resyncs)", labels);
  if (!options_.insecure && !options_.subscribe_endpoint.empty()) {
    events::ChangeWatcher::Options w;
    w.name = absl::StrCat(options_.service_name, ".authz");
    w.publisher = "permission";
    w.subscribe_endpoint = options_.subscribe_endpoint;
    w.topic_prefix = kTopicPrefix;
    w.secret = options_.internal_secret;
    w.silence_timeout = options_.watcher_silence_timeout;
    w.on_change = [this](const std::string& topic, const submarine::common::v1::EventHeader&,
                         const std::string&) {
      if (InvalidatesAnswers(topic)) InvalidateAll();
    };
    w.on_resync = [this] { InvalidateAll(); };
    watcher_ = std::make_unique<events::ChangeWatcher>(std::move(w));
  }
}

Authorizer::~Authorizer() {
  if (watcher_) watcher_->Stop();
}

std::vector<rpc::BackgroundTask*> Authorizer::tasks() {
  if (!watcher_) return {};
  return {watcher_.get()};
}

void Authorizer::InvalidateAll() {
  cache_.InvalidateAll();
  invalidations_->Inc();
}

absl::Status Authorizer::RequireCaller(const rpc::CallInfo& call) {
  if (!call.anonymous()) return absl::OkStatus();
  return MakeError(absl::StatusCode::kUnauthenticated, "UNAUTHENTICATED",
                   "this call needs an authenticated caller");
}

std::string Authorizer::SubjectFor(const Principal& principal) {
  if (principal.kind() == Principal::SERVICE && principal.user().empty()) return "";
  return absl::StrCat("users/", principal.user());
}

absl::Status Authorizer::BackendError(const absl::Status& status) {
  errors_->Inc();
  log::Get("authz")->warn("permission service could not answer: {}", Message(status));
  return MakeError(absl::StatusCode::kUnavailable, "PERMISSION_SERVICE_UNAVAILABLE",
                   "the permission service could not be asked; the call was refused");
}

absl::Status CheckScope(const submarine::common::v1::Principal& principal,
                        const std::string& resource, Permission permission) {
  const std::string& scope = principal.scope();
  if (scope.empty()) return absl::OkStatus();
  if (resource == scope || absl::StartsWith(resource, scope + "/")) return absl::OkStatus();
  // Platform resources (compute clusters) are readable by everyone; a scoped token too.
  if (permission == Permission::READ && !absl::StartsWith(resource, "projects/")) {
    return absl::OkStatus();
  }
  return MakeError(absl::StatusCode::kPermissionDenied, "TOKEN_SCOPE",
                   absl::StrCat("the token is scoped to ", scope, "; ", resource.substr(0, 256),
                                " is outside it"),
                   {{"resource", resource.substr(0, 256)}, {"scope", scope}});
}

absl::Status Authorizer::Check(const rpc::CallInfo& call, const std::string& resource,
                               Permission permission) {
  if (options_.insecure) return absl::OkStatus();
  SUBMARINE_RETURN_IF_ERROR(RequireCaller(call));
  SUBMARINE_RETURN_IF_ERROR(CheckScope(call.principal, resource, permission));
  std::string subject = SubjectFor(call.principal);
  if (subject.empty()) return absl::OkStatus();  // a service acting for itself

  std::string key = Key({"check", subject, resource, PermissionName(permission)});
  std::optional<Answer> answer = cache_.Get(key);
  if (answer) {
    hits_->Inc();
  } else {
    misses_->Inc();
    uint64_t generation = cache_.generation();
    auto fetched_at = clock_.Now();
    CheckPermissionRequest req;
    req.set_subject(subject);
    req.set_resource(resource);
    req.set_permission(permission);
    auto resp = backend_->CheckPermission(call, req);
    if (!resp.ok()) return BackendError(resp.status());
    answer = Answer{resp->allowed(), resp->project_missing(), {}};
    cache_.Put(key, *answer, generation, fetched_at);
  }
  if (answer->allowed) return absl::OkStatus();
  if (answer->project_missing && call.principal.admin()) {
    // Only a platform admin could read the project if it existed, so only they learn it does not.
    std::string project = resource.substr(0, resource.find('/', resource.find('/') + 1));
    return MakeError(absl::StatusCode::kNotFound, "PROJECT_NOT_FOUND",
                     absl::StrCat("project \"", project, "\" not found"), {{"project", project}});
  }
  return PermissionDenied(resource, permission);
}

absl::StatusOr<Authorizer::Visible> Authorizer::ListAccessible(const rpc::CallInfo& call,
                                                               const std::string& parent,
                                                               const std::string& collection,
                                                               Permission permission) {
  if (options_.insecure) return Visible{true, {}};
  SUBMARINE_RETURN_IF_ERROR(RequireCaller(call));
  SUBMARINE_RETURN_IF_ERROR(CheckScope(call.principal, parent, permission));
  std::string subject = SubjectFor(call.principal);
  if (subject.empty()) return Visible{true, {}};

  std::string key = Key({"list", subject, parent, collection, PermissionName(permission)});
  if (auto cached = cache_.Get(key)) {
    hits_->Inc();
    return cached->visible;
  }
  misses_->Inc();
  uint64_t generation = cache_.generation();
  auto fetched_at = clock_.Now();
  ListAccessibleRequest req;
  req.set_subject(subject);
  req.set_parent(parent);
  req.set_collection(collection);
  req.set_permission(permission);
  auto resp = backend_->ListAccessible(call, req);
  if (!resp.ok()) return BackendError(resp.status());
  Answer answer;
  answer.visible.all = resp->all();
  if (!answer.visible.all) {
    // Only names inside the asked collection count, whatever the backend sent.
    std::string prefix = absl::StrCat(parent, "/", collection, "/");
    for (const auto& name : resp->resources()) {
      if (absl::StartsWith(name, prefix)) answer.visible.names.push_back(name);
    }
  }
  cache_.Put(key, answer, generation, fetched_at);
  return std::move(answer.visible);
}

}  // namespace submarine::authz
