// Per-user credentials: sealed at rest, metadata-only answers, the secret released only to a
// SERVICE acting for the owner, a wrong master key failing closed, and input validation.

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/rpc/channel.h"
#include "submarine/permission/v1/permission.pb.h"
#include "tests/integration/quota/permission_inprocess.h"

namespace submarine::permission::testing {
namespace {

using submarine::common::v1::Principal;
using P = PermissionInProcess;

constexpr char kSecret[] = "ghp_Sup3rSecretTokenValue-0123456789";

class CredentialTest : public ::testing::Test {
 protected:
  void Start(const std::string& master_key = std::string(32, 'k')) {
    InProcessOptions options;
    options.master_key = master_key;
    auto started = PermissionInProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("root", /*admin=*/true).ok());
    ASSERT_TRUE(svc_->AddUser("alice").ok());
    ASSERT_TRUE(svc_->AddUser("bob").ok());
  }
  void SetUp() override { Start(); }

  grpc::Status Create(const Principal& as, const std::string& user, const std::string& id,
                      const std::string& secret = kSecret, const std::string& type = "git-token",
                      v1::Credential* out = nullptr) {
    v1::CreateCredentialRequest req;
    req.set_parent("users/" + user);
    req.set_credential_id(id);
    req.mutable_credential()->set_type(type);
    req.mutable_credential()->set_description("GitHub token");
    req.set_secret(secret);
    v1::Credential c;
    auto st = svc_->credentials->CreateCredential(svc_->As(as).get(), req, &c);
    if (out) *out = c;
    return st;
  }

  grpc::Status Access(const Principal& as, const std::string& name,
                      v1::AccessCredentialSecretResponse* out = nullptr) {
    v1::AccessCredentialSecretRequest req;
    req.set_name(name);
    v1::AccessCredentialSecretResponse resp;
    auto st = svc_->credentials->AccessCredentialSecret(svc_->As(as).get(), req, &resp);
    if (out) *out = resp;
    return st;
  }

  std::unique_ptr<PermissionInProcess> svc_;
};

TEST_F(CredentialTest, SecretIsSealedAtRestAndOnlyReleasedToAServiceActingForTheOwner) {
  v1::Credential created;
  ASSERT_TRUE(Create(P::User("alice"), "alice", "github", kSecret, "git-token", &created).ok());
  EXPECT_EQ(created.name(), "users/alice/credentials/github");
  EXPECT_EQ(created.type(), "git-token");
  EXPECT_TRUE(created.has_create_time());

  // At rest: neither the secret nor a recognizable part of it is in the row.
  auto rows = svc_->Query("SELECT encode(sealed, 'escape'), length(sealed) FROM credentials");
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 1u);
  std::string stored = (*rows)[0][0].as<std::string>();
  EXPECT_EQ(stored.find("Sup3rSecret"), std::string::npos);
  EXPECT_EQ(stored.find(kSecret), std::string::npos);
  // nonce (24) + MAC (16) + ciphertext
  EXPECT_EQ((*rows)[0][1].as<size_t>(), std::string(kSecret).size() + 40);
  // And it opens with the master key to exactly the secret.
  auto raw = svc_->Query("SELECT sealed FROM credentials");
  ASSERT_TRUE(raw.ok());
  auto opened = auth::Open(std::string(32, 'k'), pqxx::binarystring((*raw)[0][0]).str());
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, kSecret);

  // Metadata answers never carry it.
  v1::GetCredentialRequest get;
  get.set_name(created.name());
  v1::Credential got;
  ASSERT_TRUE(svc_->credentials->GetCredential(svc_->As(P::User("alice")).get(), get, &got).ok());
  EXPECT_EQ(got.SerializeAsString().find("Sup3rSecret"), std::string::npos);
  EXPECT_EQ(got.description(), "GitHub token");
  v1::ListCredentialsRequest list;
  list.set_parent("users/alice");
  v1::ListCredentialsResponse listed;
  ASSERT_TRUE(
      svc_->credentials->ListCredentials(svc_->As(P::User("root")).get(), list, &listed).ok());
  ASSERT_EQ(listed.credentials_size(), 1);
  EXPECT_EQ(listed.SerializeAsString().find("Sup3rSecret"), std::string::npos);

  // The service launching alice's workload gets it, and the access is recorded.
  v1::AccessCredentialSecretResponse resp;
  auto st = Access(P::Service("experiment", "alice"), created.name(), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.secret(), kSecret);
  EXPECT_EQ(resp.credential().name(), created.name());
  auto events = svc_->Query(
      "SELECT principal, payload FROM outbox WHERE topic = "
      "'submarine.permission.v1.CredentialAccessed'");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0][0].as<std::string>(), "services/experiment");
  v1::CredentialAccessed accessed;
  ASSERT_TRUE(accessed.ParseFromString(pqxx::binarystring((*events)[0][1]).str()));
  EXPECT_EQ(accessed.credential(), created.name());
  EXPECT_EQ(accessed.service(), "experiment");

  // Nobody else: not the owner as a USER, not an admin, not a service acting for someone else.
  for (const auto& who : {P::User("alice"), P::User("root"), P::Service("experiment", "bob"),
                          P::Service("experiment", "root"), P::Service("experiment", "")}) {
    st = Access(who, created.name(), &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << who.ShortDebugString();
    EXPECT_EQ(st.error_message().find("Sup3rSecret"), std::string::npos);
  }
  Principal forged = P::User("alice");
  forged.set_admin(true);
  EXPECT_EQ(Access(forged, created.name()).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(
      svc_->credentials
          ->AccessCredentialSecret(P::Anonymous().get(), v1::AccessCredentialSecretRequest(), &resp)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  // A missing credential for a service acting for its owner.
  EXPECT_EQ(
      Access(P::Service("experiment", "alice"), "users/alice/credentials/nosuch").error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(CredentialTest, ManagingCredentialsIsForTheOwnerAndAdmins) {
  ASSERT_TRUE(Create(P::User("alice"), "alice", "s3", "AKIA:secret", "s3-keys").ok());
  ASSERT_TRUE(Create(P::User("root"), "bob", "keytab",
                     "\x05\x02"
                     "binary",
                     "kerberos-keytab")
                  .ok());
  EXPECT_EQ(Create(P::User("bob"), "alice", "x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Create(P::Service("notebook", "bob"), "alice", "x").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_TRUE(Create(P::Service("notebook", "alice"), "alice", "x").ok());
  // Permission before existence.
  EXPECT_EQ(Create(P::User("bob"), "nosuch", "x").error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(Create(P::User("root"), "nosuch", "x").error_code(), grpc::StatusCode::NOT_FOUND);

  v1::GetCredentialRequest get;
  get.set_name("users/alice/credentials/s3");
  v1::Credential got;
  EXPECT_EQ(
      svc_->credentials->GetCredential(svc_->As(P::User("bob")).get(), get, &got).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  get.set_name("users/alice/credentials/nosuch");
  EXPECT_EQ(
      svc_->credentials->GetCredential(svc_->As(P::User("bob")).get(), get, &got).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(
      svc_->credentials->GetCredential(svc_->As(P::User("alice")).get(), get, &got).error_code(),
      grpc::StatusCode::NOT_FOUND);

  // Replacing keeps create_time and publishes UPDATED.
  v1::Credential first, second;
  ASSERT_TRUE(Create(P::User("alice"), "alice", "gh", "one", "git-token", &first).ok());
  ASSERT_TRUE(
      Create(P::User("alice"), "alice", "gh", "second-Secret-Value", "generic", &second).ok());
  EXPECT_EQ(second.create_time().seconds(), first.create_time().seconds());
  EXPECT_EQ(second.type(), "generic");
  v1::AccessCredentialSecretResponse resp;
  ASSERT_TRUE(Access(P::Service("experiment", "alice"), "users/alice/credentials/gh", &resp).ok());
  EXPECT_EQ(resp.secret(), "second-Secret-Value");

  v1::ListCredentialsRequest list;
  list.set_parent("users/alice");
  v1::ListCredentialsResponse listed;
  EXPECT_EQ(svc_->credentials->ListCredentials(svc_->As(P::User("bob")).get(), list, &listed)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(
      svc_->credentials->ListCredentials(svc_->As(P::User("alice")).get(), list, &listed).ok());
  ASSERT_EQ(listed.credentials_size(), 3);
  EXPECT_EQ(listed.credentials(0).name(), "users/alice/credentials/gh");

  v1::DeleteCredentialRequest del;
  del.set_name("users/alice/credentials/s3");
  v1::DeleteCredentialResponse deleted;
  EXPECT_EQ(svc_->credentials->DeleteCredential(svc_->As(P::User("bob")).get(), del, &deleted)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(
      svc_->credentials->DeleteCredential(svc_->As(P::User("alice")).get(), del, &deleted).ok());
  EXPECT_EQ(svc_->credentials->DeleteCredential(svc_->As(P::User("alice")).get(), del, &deleted)
                .error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto changes = svc_->Query(
      "SELECT count(*) FROM outbox WHERE topic = 'submarine.permission.v1.CredentialChanged'");
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ((*changes)[0][0].as<int>(), 6);  // 5 stores (one replace) and 1 delete
  // No event carries a secret.
  auto payloads = svc_->Query(
      "SELECT count(*) FROM outbox WHERE position('AKIA' in "
      "encode(payload, 'escape')) > 0 OR position('second-Secret' in "
      "encode(payload, 'escape')) > 0");
  ASSERT_TRUE(payloads.ok());
  EXPECT_EQ((*payloads)[0][0].as<int>(), 0);
}

TEST_F(CredentialTest, EveryBadInputNamesItsField) {
  auto field = [&](const std::string& user, const std::string& id, const std::string& secret,
                   const std::string& type) {
    auto st = Create(P::User("root"), user, id, secret, type);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    return ErrorField(st);
  };
  EXPECT_EQ(field("Alice", "gh", "s", "generic"), "parent");
  EXPECT_EQ(field("../etc", "gh", "s", "generic"), "parent");
  EXPECT_EQ(field("alice", "", "s", "generic"), "credential_id");
  EXPECT_EQ(field("alice", "gh'; DROP TABLE credentials; --", "s", "generic"), "credential_id");
  EXPECT_EQ(field("alice", std::string(64, 'a'), "s", "generic"), "credential_id");
  EXPECT_EQ(field("alice", "gh", "s", "password"), "credential.type");
  EXPECT_EQ(field("alice", "gh", "", "generic"), "secret");
  EXPECT_EQ(field("alice", "gh", std::string(64 * 1024 + 1, 'x'), "generic"), "secret");
  EXPECT_TRUE(Create(P::User("root"), "alice", "big", std::string(64 * 1024, 'x'), "generic").ok());

  for (const std::string& name :
       {std::string(""), std::string("users/alice"), std::string("users/alice/credentials/"),
        std::string("users/alice/tokens/x"), std::string("users/../credentials/x"),
        std::string("users/alice/credentials/x/y")}) {
    v1::GetCredentialRequest get;
    get.set_name(name);
    v1::Credential got;
    auto st = svc_->credentials->GetCredential(svc_->As(P::User("alice")).get(), get, &got);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
    EXPECT_EQ(ErrorField(st), "name") << name;
  }
  auto count = svc_->Query("SELECT count(*) FROM credentials");
  ASSERT_TRUE(count.ok());
  EXPECT_EQ((*count)[0][0].as<int>(), 1);
}

TEST(CredentialMasterKeyTest, AWrongMasterKeyFailsClosedWithoutLeaking) {
  // Store under one key, then serve the same database with another.
  InProcessOptions options;
  options.master_key = std::string(32, 'a');
  auto first = PermissionInProcess::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto& svc = **first;
  ASSERT_TRUE(svc.AddUser("alice").ok());
  v1::CreateCredentialRequest req;
  req.set_parent("users/alice");
  req.set_credential_id("gh");
  req.mutable_credential()->set_type("git-token");
  req.set_secret(kSecret);
  v1::Credential c;
  ASSERT_TRUE(svc.credentials->CreateCredential(svc.As(P::User("alice")).get(), req, &c).ok());

  // A second service object over the same pool with a different key.
  CredentialServiceImpl wrong(svc.pool(), svc.idempotency(), std::string(32, 'b'),
                              Clock::Real());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  rpc::InstallCallInterceptor(builder);
  builder.RegisterService(&wrong);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server && port);
  auto stub = v1::CredentialService::NewStub(rpc::MakeChannel(absl::StrCat("127.0.0.1:", port)));
  v1::AccessCredentialSecretRequest access;
  access.set_name("users/alice/credentials/gh");
  v1::AccessCredentialSecretResponse resp;
  auto st =
      stub->AccessCredentialSecret(svc.As(P::Service("experiment", "alice")).get(), access, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(st.error_message().find("cannot decrypt"), std::string::npos) << st.error_message();
  EXPECT_EQ(ErrorReason(st), "CREDENTIAL_UNREADABLE");
  EXPECT_EQ(st.error_message().find("Sup3rSecret"), std::string::npos);
  EXPECT_EQ(st.error_details().find("Sup3rSecret"), std::string::npos);
  EXPECT_TRUE(resp.secret().empty());
  // No CredentialAccessed event for a secret that was not released.
  auto events = svc.Query(
      "SELECT count(*) FROM outbox WHERE topic = "
      "'submarine.permission.v1.CredentialAccessed'");
  ASSERT_TRUE(events.ok());
  EXPECT_EQ((*events)[0][0].as<int>(), 0);
  server->Shutdown();
}

}  // namespace
}  // namespace submarine::permission::testing
