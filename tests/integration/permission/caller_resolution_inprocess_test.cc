// One caller resolution for the whole permission service: every kind of principal against one
// representative method of each part (users, teams, projects, sessions, access, quotas,
// credentials, audit), through the real interceptor and handlers. The expected answers are the
// rule written in access_evaluator.h (Caller): a user has their own rights; a service acting for
// a user has exactly that user's rights (plus asking about others and receiving that user's
// secrets); a service acting for itself has an administrator's rights but no user; an unknown or
// disabled user is UNAUTHENTICATED however it calls. Before this rule the parts disagreed (a
// bare service was an admin for identity and nobody for quotas, credentials and audit; a
// disabled user was UNAUTHENTICATED in one part and PERMISSION_DENIED in another).

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/quota/permission_inprocess.h"

namespace submarine::permission::testing {
namespace {

using grpc::StatusCode;
using submarine::common::v1::Principal;
using P = PermissionInProcess;

constexpr StatusCode OK = StatusCode::OK;
constexpr StatusCode DENIED = StatusCode::PERMISSION_DENIED;
constexpr StatusCode UNAUTH = StatusCode::UNAUTHENTICATED;
constexpr StatusCode INVALID = StatusCode::INVALID_ARGUMENT;

const char* CodeName(StatusCode c) {
  switch (c) {
    case OK:
      return "OK";
    case DENIED:
      return "PERMISSION_DENIED";
    case UNAUTH:
      return "UNAUTHENTICATED";
    case INVALID:
      return "INVALID_ARGUMENT";
    default:
      return "other";
  }
}

class CallerResolutionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = PermissionInProcess::Start(InProcessOptions());
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("root", /*admin=*/true).ok());
    for (const char* u : {"alice", "bob", "dave"}) ASSERT_TRUE(svc_->AddUser(u).ok());
    ASSERT_TRUE(svc_->AddUser("carol", /*admin=*/false, /*disabled=*/true).ok());
    ASSERT_TRUE(svc_->AddTeam("ml", {"alice"}).ok());
    ASSERT_TRUE(svc_->Query("UPDATE team_members SET role = 3 WHERE team_id = 'ml'").ok());
    ASSERT_TRUE(svc_->AddProject("alpha", "users/alice").ok());
    v1::CreateCredentialRequest cred;
    cred.set_parent("users/alice");
    cred.set_credential_id("gh");
    cred.mutable_credential()->set_type("git-token");
    cred.set_secret("a-secret-value");
    v1::Credential created;
    auto st = svc_->credentials->CreateCredential(svc_->As(P::User("alice")).get(), cred, &created);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }

  // Runs `call` with a context for `who` (nullptr principal: anonymous).
  template <class F>
  StatusCode As(const Principal* who, F&& call) {
    auto ctx = who == nullptr ? P::Anonymous() : svc_->As(*who);
    return call(ctx.get()).error_code();
  }

  std::unique_ptr<PermissionInProcess> svc_;
};

TEST_F(CallerResolutionTest, EveryPartResolvesEveryKindOfCallerTheSameWay) {
  int created = 0;
  struct Column {
    std::string name;
    std::function<grpc::Status(grpc::ClientContext*)> call;
  };
  const std::vector<Column> columns = {
      {"users.CreateUser (admins)",
       [&](grpc::ClientContext* ctx) {
         v1::CreateUserRequest req;
         req.set_user_id(absl::StrCat("new", ++created));
         req.set_password("a-long-enough-password");
         v1::User out;
         return svc_->identity_stub->CreateUser(ctx, req, &out);
       }},
      {"users.GetCurrentUser (a user)",
       [&](grpc::ClientContext* ctx) {
         v1::User out;
         return svc_->identity_stub->GetCurrentUser(ctx, v1::GetCurrentUserRequest(), &out);
       }},
      {"users.GetUser alice (alice, admins)",
       [&](grpc::ClientContext* ctx) {
         v1::GetUserRequest req;
         req.set_name("users/alice");
         v1::User out;
         return svc_->identity_stub->GetUser(ctx, req, &out);
       }},
      {"teams.SetTeamMember ml (its owner alice, admins)",
       [&](grpc::ClientContext* ctx) {
         v1::SetTeamMemberRequest req;
         req.set_team("teams/ml");
         req.mutable_member()->set_user("users/dave");
         v1::TeamMember out;
         return svc_->identity_stub->SetTeamMember(ctx, req, &out);
       }},
      {"projects.GetProject alpha (its owner alice, admins)",
       [&](grpc::ClientContext* ctx) {
         v1::GetProjectRequest req;
         req.set_name("projects/alpha");
         v1::Project out;
         return svc_->identity_stub->GetProject(ctx, req, &out);
       }},
      {"sessions.ListApiTokens alice (alice, admins)",
       [&](grpc::ClientContext* ctx) {
         v1::ListApiTokensRequest req;
         req.set_parent("users/alice");
         v1::ListApiTokensResponse out;
         return svc_->identity_stub->ListApiTokens(ctx, req, &out);
       }},
      {"sessions.GetAuthState (internal)",
       [&](grpc::ClientContext* ctx) {
         v1::AuthState out;
         return svc_->identity_stub->GetAuthState(ctx, v1::GetAuthStateRequest(), &out);
       }},
      {"access.CheckPermission about alice (alice, admins, services)",
       [&](grpc::ClientContext* ctx) {
         v1::CheckPermissionRequest req;
         req.set_subject("users/alice");
         req.set_resource("projects/alpha");
         req.set_permission(v1::READ);
         v1::CheckPermissionResponse out;
         return svc_->access->CheckPermission(ctx, req, &out);
       }},
      {"quota.SetQuota (admins)",
       [&](grpc::ClientContext* ctx) {
         v1::SetQuotaRequest req;
         req.set_owner("users/alice");
         req.mutable_limits()->set_gpus(2);
         v1::Usage out;
         return svc_->quota->SetQuota(ctx, req, &out);
       }},
      {"quota.GetUsage alice (alice, admins)",
       [&](grpc::ClientContext* ctx) {
         v1::GetUsageRequest req;
         req.set_owner("users/alice");
         v1::Usage out;
         return svc_->quota->GetUsage(ctx, req, &out);
       }},
      {"credential.ListCredentials alice (alice, admins)",
       [&](grpc::ClientContext* ctx) {
         v1::ListCredentialsRequest req;
         req.set_parent("users/alice");
         v1::ListCredentialsResponse out;
         return svc_->credentials->ListCredentials(ctx, req, &out);
       }},
      {"credential.AccessCredentialSecret alice (internal, a service for alice)",
       [&](grpc::ClientContext* ctx) {
         v1::AccessCredentialSecretRequest req;
         req.set_name("users/alice/credentials/gh");
         v1::AccessCredentialSecretResponse out;
         return svc_->credentials->AccessCredentialSecret(ctx, req, &out);
       }},
      {"audit.ListAuditEvents (admins)",
       [&](grpc::ClientContext* ctx) {
         v1::ListAuditEventsResponse out;
         return svc_->audit->ListAuditEvents(ctx, v1::ListAuditEventsRequest(), &out);
       }},
  };

  struct Row {
    std::string name;
    std::optional<Principal> principal;  // none: anonymous
    std::vector<StatusCode> expected;    // one per column
  };
  // Columns: CreateUser, GetCurrentUser, GetUser, SetTeamMember, GetProject, ListApiTokens,
  // GetAuthState, CheckPermission, SetQuota, GetUsage, ListCredentials, AccessSecret, Audit.
  const std::vector<StatusCode> kNobody(columns.size(), UNAUTH);
  const std::vector<Row> rows = {
      {"USER root (admin)",
       P::User("root"),
       {OK, OK, OK, OK, OK, OK, DENIED, OK, OK, OK, OK, DENIED, OK}},
      {"USER alice",
       P::User("alice"),
       {DENIED, OK, OK, OK, OK, OK, DENIED, OK, DENIED, OK, OK, DENIED, DENIED}},
      {"USER bob",
       P::User("bob"),
       {DENIED, OK, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED, DENIED,
        DENIED}},
      // Internal methods refuse a USER in the interceptor, before anyone looks the user up.
      {"USER carol (disabled)",
       P::User("carol"),
       {UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, UNAUTH, UNAUTH, UNAUTH, UNAUTH,
        DENIED, UNAUTH}},
      {"USER nosuch (unknown)",
       P::User("nosuch"),
       {UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, UNAUTH, DENIED, UNAUTH, UNAUTH, UNAUTH, UNAUTH,
        DENIED, UNAUTH}},
      {"SERVICE for root",
       P::Service("notebook", "root"),
       {OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, DENIED, OK}},
      {"SERVICE for alice",
       P::Service("notebook", "alice"),
       {DENIED, OK, OK, OK, OK, OK, OK, OK, DENIED, OK, OK, OK, DENIED}},
      {"SERVICE for bob",
       P::Service("notebook", "bob"),
       {DENIED, OK, DENIED, DENIED, DENIED, DENIED, OK, OK, DENIED, DENIED, DENIED, DENIED,
        DENIED}},
      {"SERVICE for carol (disabled)", P::Service("notebook", "carol"), kNobody},
      {"SERVICE for nosuch (unknown)", P::Service("notebook", "nosuch"), kNobody},
      {"SERVICE for itself",
       P::Service("notebook", ""),
       {OK, INVALID, OK, OK, OK, OK, OK, OK, OK, OK, OK, DENIED, OK}},
      {"anonymous", std::nullopt, kNobody},
  };

  for (const auto& row : rows) {
    ASSERT_EQ(row.expected.size(), columns.size()) << row.name;
    for (size_t c = 0; c < columns.size(); ++c) {
      const Principal* who = row.principal ? &*row.principal : nullptr;
      StatusCode got = As(who, columns[c].call);
      EXPECT_EQ(got, row.expected[c])
          << row.name << " × " << columns[c].name << ": got " << CodeName(got) << ", expected "
          << CodeName(row.expected[c]);
    }
  }
}

// The refusals name why: an unknown or disabled user, and a service acting for itself where a
// user is needed.
TEST_F(CallerResolutionTest, RefusalsSayWhy) {
  v1::Usage usage;
  v1::GetUsageRequest req;
  req.set_owner("users/carol");
  auto st = svc_->quota->GetUsage(svc_->As(P::Service("notebook", "carol")).get(), req, &usage);
  EXPECT_EQ(ErrorReason(st), "USER_DISABLED") << st.error_message();
  req.set_owner("users/nosuch");
  st = svc_->quota->GetUsage(svc_->As(P::User("nosuch")).get(), req, &usage);
  EXPECT_EQ(ErrorReason(st), "USER_UNKNOWN") << st.error_message();
  v1::User user;
  st = svc_->identity_stub->GetCurrentUser(svc_->As(P::Service("notebook", "")).get(),
                                           v1::GetCurrentUserRequest(), &user);
  EXPECT_EQ(ErrorField(st), "principal") << st.error_message();
  // The principal's own admin claim is never believed.
  Principal forged = P::User("bob");
  forged.set_admin(true);
  v1::ListAuditEventsResponse events;
  st = svc_->audit->ListAuditEvents(svc_->As(forged).get(), v1::ListAuditEventsRequest(), &events);
  EXPECT_EQ(st.error_code(), DENIED);
}

}  // namespace
}  // namespace submarine::permission::testing
