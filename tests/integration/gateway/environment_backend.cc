#include "tests/integration/gateway/environment_backend.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/health_check_service_interface.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::testing {
namespace {

namespace env = submarine::environment::v1;
using submarine::common::v1::SubmarineV1Response;

constexpr char kDomain[] = "environment.submarine.io";
constexpr char kV1Prefix[] = "projects/default/environments/";

grpc::Status Error(const absl::Status& status) { return ToGrpcStatus(status, kDomain); }

nlohmann::json V1Environment(const env::Environment& e) {
  nlohmann::json kernel = {{"name", e.kernel_spec().name()},
                           {"channels", e.kernel_spec().channels()},
                           {"condaDependencies", e.kernel_spec().conda_dependencies()},
                           {"pipDependencies", e.kernel_spec().pip_dependencies()}};
  return {{"environmentId", e.uid()},
          {"environmentSpec",
           {{"name", e.name().substr(strlen(kV1Prefix))},
            {"dockerImage", e.image()},
            {"kernelSpec", kernel},
            {"description", e.description()}}}};
}

void SetOk(const nlohmann::json& result, SubmarineV1Response* response) {
  response->set_status("OK");
  response->set_code(200);
  response->mutable_success()->set_bool_value(true);
  (void)google::protobuf::util::JsonStringToMessage(result.dump(), response->mutable_result());
}

env::Environment FromSpec(const env::SubmarineEnvironmentSpec& spec) {
  env::Environment e;
  e.set_name(absl::StrCat(kV1Prefix, spec.name()));
  e.set_image(spec.docker_image());
  e.set_description(spec.description());
  *e.mutable_kernel_spec() = spec.kernel_spec();
  return e;
}

}  // namespace

class EnvironmentBackend::Aip : public env::EnvironmentService::Service {
 public:
  explicit Aip(EnvironmentBackend* b) : b_(b) {}

  grpc::Status GetEnvironment(grpc::ServerContext* ctx, const env::GetEnvironmentRequest* req,
                              env::Environment* resp) override {
    b_->Record(ctx);
    std::unique_lock lock(b_->mu_);
    if (req->name() == kHeldName) {
      ++b_->held_;
      b_->cv_.notify_all();
      b_->cv_.wait_until(lock, ctx->deadline(), [this] { return b_->released_; });
      --b_->held_;
      resp->set_name(req->name());
      return grpc::Status::OK;
    }
    if (req->name() == kSlowName) {
      b_->cv_.wait_until(lock, ctx->deadline(), [ctx] { return ctx->IsCancelled(); });
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "too slow");
    }
    if (req->name() == kLeakyName) {
      return Error(MakeError(absl::StatusCode::kInternal, "DATABASE_ERROR", kLeakedText,
                             {{"query", "SELECT * FROM environments"}}));
    }
    auto it = b_->environments_.find(req->name());
    if (it == b_->environments_.end()) return Error(NotFound("environment", req->name()));
    *resp = it->second;
    return grpc::Status::OK;
  }

  grpc::Status ListEnvironments(grpc::ServerContext* ctx, const env::ListEnvironmentsRequest* req,
                                env::ListEnvironmentsResponse* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    b_->last_list_ = *req;
    std::string prefix = absl::StrCat(req->parent(), "/environments/");
    for (const auto& [name, e] : b_->environments_) {
      if (name.rfind(prefix, 0) == 0) *resp->add_environments() = e;
    }
    return grpc::Status::OK;
  }

  grpc::Status CreateEnvironment(grpc::ServerContext* ctx, const env::CreateEnvironmentRequest* req,
                                 env::Environment* resp) override {
    b_->Record(ctx);
    if (!req->has_environment() || req->environment().image().empty()) {
      return Error(InvalidField("environment.image", "is required"));
    }
    std::lock_guard lock(b_->mu_);
    std::string name = absl::StrCat(req->parent(), "/environments/", req->environment_id());
    if (b_->environments_.count(name)) return Error(AlreadyExists("environment", name));
    env::Environment e = req->environment();
    e.set_name(name);
    e.set_uid(absl::StrCat("uid-", b_->next_uid_++));
    b_->environments_[name] = e;
    *resp = e;
    return grpc::Status::OK;
  }

  grpc::Status UpdateEnvironment(grpc::ServerContext* ctx, const env::UpdateEnvironmentRequest* req,
                                 env::Environment* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    b_->last_update_ = *req;
    auto it = b_->environments_.find(req->environment().name());
    if (it == b_->environments_.end()) {
      return Error(NotFound("environment", req->environment().name()));
    }
    if (!req->environment().image().empty()) it->second.set_image(req->environment().image());
    if (!req->environment().description().empty()) {
      it->second.set_description(req->environment().description());
    }
    *resp = it->second;
    return grpc::Status::OK;
  }

  grpc::Status DeleteEnvironment(grpc::ServerContext* ctx, const env::DeleteEnvironmentRequest* req,
                                 env::DeleteEnvironmentResponse* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    auto it = b_->environments_.find(req->name());
    if (it == b_->environments_.end()) return Error(NotFound("environment", req->name()));
    *resp->mutable_environment() = it->second;
    b_->environments_.erase(it);
    return grpc::Status::OK;
  }

 private:
  EnvironmentBackend* b_;
};

class EnvironmentBackend::V1 : public env::SubmarineEnvironmentApi::Service {
 public:
  explicit V1(EnvironmentBackend* b) : b_(b) {}

  grpc::Status CreateEnvironment(grpc::ServerContext* ctx,
                                 const env::SubmarineCreateEnvironmentRequest* req,
                                 SubmarineV1Response* resp) override {
    b_->Record(ctx);
    if (!req->has_spec()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Invalid environment spec.");
    }
    std::lock_guard lock(b_->mu_);
    env::Environment e = FromSpec(req->spec());
    if (b_->environments_.count(e.name())) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "Unable to process the environment spec.");
    }
    e.set_uid(absl::StrCat("environment_", b_->next_uid_++));
    b_->environments_[e.name()] = e;
    SetOk(V1Environment(e), resp);
    return grpc::Status::OK;
  }

  grpc::Status ListEnvironments(grpc::ServerContext* ctx,
                                const env::SubmarineListEnvironmentsRequest*,
                                SubmarineV1Response* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [name, e] : b_->environments_) {
      if (name.rfind(kV1Prefix, 0) == 0) list.push_back(V1Environment(e));
    }
    SetOk(list, resp);
    return grpc::Status::OK;
  }

  grpc::Status GetEnvironment(grpc::ServerContext* ctx,
                              const env::SubmarineEnvironmentNameRequest* req,
                              SubmarineV1Response* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    auto it = b_->environments_.find(absl::StrCat(kV1Prefix, req->name()));
    if (it == b_->environments_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "Environment not found.");
    }
    SetOk(V1Environment(it->second), resp);
    return grpc::Status::OK;
  }

  grpc::Status PatchEnvironment(grpc::ServerContext* ctx,
                                const env::SubmarinePatchEnvironmentRequest* req,
                                SubmarineV1Response* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    auto it = b_->environments_.find(absl::StrCat(kV1Prefix, req->name()));
    if (it == b_->environments_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "Environment not found.");
    }
    env::SubmarineEnvironmentSpec spec = req->spec();
    spec.set_name(req->name());
    env::Environment e = FromSpec(spec);
    e.set_uid(absl::StrCat("environment_", b_->next_uid_++));
    it->second = e;
    SetOk(V1Environment(e), resp);
    return grpc::Status::OK;
  }

  grpc::Status DeleteEnvironment(grpc::ServerContext* ctx,
                                 const env::SubmarineEnvironmentNameRequest* req,
                                 SubmarineV1Response* resp) override {
    b_->Record(ctx);
    std::lock_guard lock(b_->mu_);
    auto it = b_->environments_.find(absl::StrCat(kV1Prefix, req->name()));
    if (it == b_->environments_.end()) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "Environment not found.");
    }
    SetOk(V1Environment(it->second), resp);
    b_->environments_.erase(it);
    return grpc::Status::OK;
  }

 private:
  EnvironmentBackend* b_;
};

EnvironmentBackend::EnvironmentBackend()
    : aip_(std::make_unique<Aip>(this)), v1_(std::make_unique<V1>(this)) {}

EnvironmentBackend::~EnvironmentBackend() { Stop(); }

absl::StatusOr<std::string> EnvironmentBackend::Start(const std::string& address) {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(aip_.get());
  builder.RegisterService(v1_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) return Unavailable(absl::StrCat("cannot listen on ", address));
  return absl::StrCat("127.0.0.1:", port);
}

void EnvironmentBackend::Stop() {
  ReleaseHeld();
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }
}

void EnvironmentBackend::Record(grpc::ServerContext* context) {
  std::string id = rpc::Metadata(*context, rpc::kRequestIdHeader);
  std::multimap<std::string, std::string> metadata;
  for (const auto& [k, v] : context->client_metadata()) {
    metadata.emplace(std::string(k.data(), k.size()), std::string(v.data(), v.size()));
  }
  std::lock_guard lock(mu_);
  last_request_id_ = id;
  last_metadata_ = std::move(metadata);
}

std::multimap<std::string, std::string> EnvironmentBackend::last_metadata() const {
  std::lock_guard lock(mu_);
  return last_metadata_;
}

std::string EnvironmentBackend::last_request_id() const {
  std::lock_guard lock(mu_);
  return last_request_id_;
}

environment::v1::ListEnvironmentsRequest EnvironmentBackend::last_list() const {
  std::lock_guard lock(mu_);
  return last_list_;
}

environment::v1::UpdateEnvironmentRequest EnvironmentBackend::last_update() const {
  std::lock_guard lock(mu_);
  return last_update_;
}

int EnvironmentBackend::held_calls() const {
  std::lock_guard lock(mu_);
  return held_;
}

void EnvironmentBackend::ReleaseHeld() {
  {
    std::lock_guard lock(mu_);
    released_ = true;
  }
  cv_.notify_all();
}

}  // namespace submarine::testing
