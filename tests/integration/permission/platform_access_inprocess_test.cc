// Platform resources and platform credentials (what compute clusters need): every enabled user
// may READ a platform resource ("computeClusters/{id}") and only administrators WRITE it, with
// no grant applying; the platform's credentials ("platform/credentials/{id}") are managed by
// administrators only, and their plain secret goes to the experiment, notebook and serving
// services alone — never to another service, nor to any user.

#include <gtest/gtest.h>

#include "tests/integration/quota/permission_inprocess.h"
#include "tests/support/grpc_errors.h"

namespace submarine::permission::testing {
namespace {

using grpc::StatusCode;
using P = PermissionInProcess;

class PlatformAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = PermissionInProcess::Start(InProcessOptions());
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("root", /*admin=*/true).ok());
    ASSERT_TRUE(svc_->AddUser("alice").ok());
    ASSERT_TRUE(svc_->AddUser("carol", /*admin=*/false, /*disabled=*/true).ok());
  }

  grpc::Status Check(const std::string& user, const std::string& resource,
                     v1::Permission permission, bool* allowed) {
    v1::CheckPermissionRequest req;
    req.set_resource(resource);
    req.set_permission(permission);
    v1::CheckPermissionResponse resp;
    grpc::Status st = svc_->access->CheckPermission(svc_->As(P::User(user)).get(), req, &resp);
    *allowed = resp.allowed();
    return st;
  }

  grpc::Status CreatePlatformCredential(const submarine::common::v1::Principal& who,
                                        const std::string& id) {
    v1::CreateCredentialRequest req;
    req.set_parent("platform");
    req.set_credential_id(id);
    req.mutable_credential()->set_type("kubeconfig");
    req.set_secret("apiVersion: v1\nkind: Config\n");
    v1::Credential out;
    return svc_->credentials->CreateCredential(svc_->As(who).get(), req, &out);
  }

  std::unique_ptr<PermissionInProcess> svc_;
};

TEST_F(PlatformAccessTest, EveryoneReadsAPlatformResourceAndOnlyAdminsWriteIt) {
  bool allowed = false;
  ASSERT_TRUE(Check("alice", "computeClusters/gpu-a", v1::READ, &allowed).ok());
  EXPECT_TRUE(allowed);
  ASSERT_TRUE(Check("alice", "computeClusters/gpu-a", v1::WRITE, &allowed).ok());
  EXPECT_FALSE(allowed);
  ASSERT_TRUE(Check("root", "computeClusters/gpu-a", v1::ADMIN, &allowed).ok());
  EXPECT_TRUE(allowed);
  // A disabled user is no caller at all.
  EXPECT_EQ(Check("carol", "computeClusters/gpu-a", v1::READ, &allowed).error_code(),
            StatusCode::UNAUTHENTICATED);
  // Only the known platform collections exist; a grant cannot open one to a user.
  grpc::Status unknown = Check("alice", "widgets/w", v1::READ, &allowed);
  EXPECT_EQ(unknown.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(submarine::testing::ErrorField(unknown), "resource");
  v1::CreateGrantRequest grant;
  grant.mutable_grant()->set_resource("computeClusters/gpu-a");
  grant.mutable_grant()->set_subject("users/alice");
  grant.mutable_grant()->set_permission(v1::WRITE);
  v1::Grant out;
  grpc::Status st = svc_->access->CreateGrant(svc_->As(P::User("root")).get(), grant, &out);
  EXPECT_EQ(st.error_code(), StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_EQ(submarine::testing::ErrorField(st), "grant.resource");
}

TEST_F(PlatformAccessTest, PlatformCredentialsAreForAdminsAndTheirSecretForWorkloadServices) {
  EXPECT_EQ(CreatePlatformCredential(P::User("alice"), "kube").error_code(),
            StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(CreatePlatformCredential(P::User("root"), "kube").ok());

  v1::ListCredentialsRequest list;
  list.set_parent("platform");
  v1::ListCredentialsResponse listed;
  ASSERT_TRUE(
      svc_->credentials->ListCredentials(svc_->As(P::User("root")).get(), list, &listed).ok());
  ASSERT_EQ(listed.credentials_size(), 1);
  EXPECT_EQ(listed.credentials(0).name(), "platform/credentials/kube");
  EXPECT_EQ(svc_->credentials->ListCredentials(svc_->As(P::User("alice")).get(), list, &listed)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
  // A user's own credentials are another list.
  list.set_parent("users/alice");
  ASSERT_TRUE(
      svc_->credentials->ListCredentials(svc_->As(P::User("alice")).get(), list, &listed).ok());
  EXPECT_EQ(listed.credentials_size(), 0);

  auto secret_for = [&](const submarine::common::v1::Principal& who) {
    v1::AccessCredentialSecretRequest req;
    req.set_name("platform/credentials/kube");
    v1::AccessCredentialSecretResponse resp;
    grpc::Status st = svc_->credentials->AccessCredentialSecret(svc_->As(who).get(), req, &resp);
    return std::make_pair(st.error_code(), resp.secret());
  };
  EXPECT_EQ(secret_for(P::Service("experiment", "")),
            std::make_pair(StatusCode::OK, std::string("apiVersion: v1\nkind: Config\n")));
  EXPECT_EQ(secret_for(P::Service("serving", "alice")).first, StatusCode::OK);
  EXPECT_EQ(secret_for(P::Service("gateway", "")).first, StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(secret_for(P::Service("environment", "root")).first, StatusCode::PERMISSION_DENIED);
  EXPECT_NE(secret_for(P::User("root")).first, StatusCode::OK) << "never to a user, admins too";

  v1::DeleteCredentialRequest del;
  del.set_name("platform/credentials/kube");
  v1::DeleteCredentialResponse deleted;
  EXPECT_EQ(svc_->credentials->DeleteCredential(svc_->As(P::User("alice")).get(), del, &deleted)
                .error_code(),
            StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(
      svc_->credentials->DeleteCredential(svc_->As(P::User("root")).get(), del, &deleted).ok());
  EXPECT_EQ(secret_for(P::Service("experiment", "")).first, StatusCode::NOT_FOUND);
}

TEST_F(PlatformAccessTest, AProjectScopedTokenNeedsALifetimeAndSaysItsScope) {
  auto create = [&](const std::string& scope, int64_t ttl, v1::CreateApiTokenResponse* out) {
    v1::CreateApiTokenRequest req;
    req.set_parent("users/alice");
    req.set_scope(scope);
    req.set_ttl_seconds(ttl);
    return svc_->identity_stub->CreateApiToken(svc_->As(P::User("alice")).get(), req, out);
  };
  v1::CreateApiTokenResponse out;
  grpc::Status forever = create("projects/vision", 0, &out);
  EXPECT_EQ(forever.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(submarine::testing::ErrorField(forever), "ttl_seconds");
  grpc::Status bad = create("vision", 3600, &out);
  EXPECT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(submarine::testing::ErrorField(bad), "scope");
  ASSERT_TRUE(create("projects/vision", 3600, &out).ok());
  EXPECT_EQ(out.token().scope(), "projects/vision");
  // The scope is in the signed token, where the gateway reads it.
  EXPECT_NE(out.secret().find('.'), std::string::npos);
  v1::ListApiTokensRequest list;
  list.set_parent("users/alice");
  v1::ListApiTokensResponse listed;
  ASSERT_TRUE(
      svc_->identity_stub->ListApiTokens(svc_->As(P::User("alice")).get(), list, &listed).ok());
  ASSERT_EQ(listed.tokens_size(), 1);
  EXPECT_EQ(listed.tokens(0).scope(), "projects/vision");
}

}  // namespace
}  // namespace submarine::permission::testing
