#include "tests/integration/gateway/permission_backend.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::testing {

namespace perm = submarine::permission::v1;
using submarine::common::v1::Principal;

class PermissionBackend::Identity : public perm::IdentityService::Service {
 public:
  explicit Identity(PermissionBackend* b) : b_(b) {}

  grpc::Status GetAuthState(grpc::ServerContext* ctx, const perm::GetAuthStateRequest*,
                            perm::AuthState* resp) override {
    auto caller = b_->Verify(ctx, "/submarine.permission.v1.IdentityService/GetAuthState");
    std::unique_lock lock(b_->mu_);
    if (!caller.ok() || caller->kind() != Principal::SERVICE) {
      ++b_->rejected_;
      return ToGrpcStatus(caller.ok() ? MakeError(absl::StatusCode::kPermissionDenied,
                                                  "INTERNAL_ONLY", "GetAuthState is for services")
                                      : caller.status(),
                          "permission.submarine.io");
    }
    if (b_->hold_) {
      ++b_->held_;
      b_->cv_.notify_all();
      b_->cv_.wait_until(lock, ctx->deadline(), [this] { return !b_->hold_; });
      --b_->held_;
    }
    if (b_->refusing_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not yet");
    ++b_->calls_;
    b_->last_caller_ = *caller;
    *resp = b_->state_;
    return grpc::Status::OK;
  }

  grpc::Status Login(grpc::ServerContext* ctx, const perm::LoginRequest* req,
                     perm::LoginResponse* resp) override {
    bool had = !rpc::Metadata(*ctx, rpc::kPrincipalHeader).empty();
    {
      std::lock_guard lock(b_->mu_);
      b_->login_had_principal_ = had;
    }
    resp->set_access_token(absl::StrCat("token-for-", req->username()));
    resp->set_token_type("Bearer");
    return grpc::Status::OK;
  }

  grpc::Status GetCurrentUser(grpc::ServerContext* ctx, const perm::GetCurrentUserRequest*,
                              perm::User* resp) override {
    auto caller = b_->Verify(ctx, "/submarine.permission.v1.IdentityService/GetCurrentUser");
    if (!caller.ok()) return ToGrpcStatus(caller.status(), "permission.submarine.io");
    resp->set_name(absl::StrCat("users/", caller->user()));
    resp->set_admin(caller->admin());
    for (const auto& t : caller->teams()) resp->add_teams(absl::StrCat("teams/", t));
    return grpc::Status::OK;
  }

 private:
  PermissionBackend* b_;
};

class PermissionBackend::V1 : public perm::SubmarineAuthApi::Service {
 public:
  grpc::Status Login(grpc::ServerContext*, const perm::SubmarineLoginRequest* req,
                     submarine::common::v1::SubmarineV1Response* resp) override {
    resp->set_status("OK");
    resp->set_code(200);
    resp->mutable_success()->set_bool_value(true);
    resp->mutable_message()->set_string_value("Login successfully!");
    resp->mutable_result()->set_string_value(absl::StrCat("token-for-", req->username()));
    return grpc::Status::OK;
  }
};

class PermissionBackend::Access : public perm::AccessService::Service {
 public:
  explicit Access(PermissionBackend* b) : b_(b) {}

  grpc::Status CheckPermission(grpc::ServerContext* ctx, const perm::CheckPermissionRequest*,
                               perm::CheckPermissionResponse* resp) override {
    auto caller = b_->Verify(ctx, "/submarine.permission.v1.AccessService/CheckPermission");
    if (!caller.ok()) return ToGrpcStatus(caller.status(), "permission.submarine.io");
    if (caller->kind() != Principal::SERVICE) {
      return ToGrpcStatus(MakeError(absl::StatusCode::kPermissionDenied, "PERMISSION_DENIED",
                                    "this stand-in answers services only"),
                          "permission.submarine.io");
    }
    std::lock_guard lock(b_->mu_);
    ++b_->check_calls_;
    resp->set_allowed(true);
    return grpc::Status::OK;
  }

 private:
  PermissionBackend* b_;
};

int PermissionBackend::check_calls() const {
  std::lock_guard lock(mu_);
  return check_calls_;
}

PermissionBackend::PermissionBackend(std::string internal_secret)
    : codec_(std::move(internal_secret)) {}

PermissionBackend::~PermissionBackend() { Stop(); }

absl::StatusOr<std::string> PermissionBackend::Start(const std::string& address) {
  identity_ = std::make_unique<Identity>(this);
  v1_ = std::make_unique<V1>();
  access_ = std::make_unique<Access>(this);
  grpc::EnableDefaultHealthCheckService(true);  // the gateway's /readyz asks every backend
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(identity_.get());
  builder.RegisterService(v1_.get());
  builder.RegisterService(access_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) return Unavailable(absl::StrCat("cannot listen on ", address));
  return absl::StrCat(address.substr(0, address.rfind(':')), ":", port);
}

void PermissionBackend::Stop() {
  Release();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_.reset();
}

absl::StatusOr<Principal> PermissionBackend::Verify(grpc::ServerContext* ctx,
                                                    const std::string& method) const {
  std::string principal = rpc::Metadata(*ctx, rpc::kPrincipalHeader);
  std::string mac = rpc::Metadata(*ctx, rpc::kPrincipalMacHeader);
  if (principal.empty()) {
    return MakeError(absl::StatusCode::kUnauthenticated, "UNAUTHENTICATED", "no principal");
  }
  return codec_.Verify(principal, mac, rpc::Metadata(*ctx, rpc::kRequestIdHeader), method,
                       std::chrono::system_clock::now());
}

void PermissionBackend::SetState(perm::AuthState state) {
  std::lock_guard lock(mu_);
  state_ = std::move(state);
}

perm::AuthState PermissionBackend::state() const {
  std::lock_guard lock(mu_);
  return state_;
}

void PermissionBackend::SetRefusing(bool refusing) {
  std::lock_guard lock(mu_);
  refusing_ = refusing;
}

void PermissionBackend::Hold() {
  std::lock_guard lock(mu_);
  hold_ = true;
}

void PermissionBackend::Release() {
  {
    std::lock_guard lock(mu_);
    hold_ = false;
  }
  cv_.notify_all();
}

int PermissionBackend::held_calls() const {
  std::lock_guard lock(mu_);
  return held_;
}

int PermissionBackend::auth_state_calls() const {
  std::lock_guard lock(mu_);
  return calls_;
}

int PermissionBackend::rejected_principals() const {
  std::lock_guard lock(mu_);
  return rejected_;
}

Principal PermissionBackend::last_caller() const {
  std::lock_guard lock(mu_);
  return last_caller_;
}

bool PermissionBackend::login_had_principal() const {
  std::lock_guard lock(mu_);
  return login_had_principal_;
}

}  // namespace submarine::testing
