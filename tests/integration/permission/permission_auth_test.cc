// Authentication by the permission service: login, refresh rotation, logout, password changes,
// disabled users, API tokens, what GetAuthState tells the gateway, forged principals sent
// straight to the service, internal-only methods, and the Apache Submarine auth face.
#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "tests/integration/permission/permission_fixture.h"

namespace submarine::testing {
namespace {

namespace v1 = submarine::permission::v1;
using submarine::common::v1::Principal;
constexpr char kPassword[] = "correct horse battery";

class PermissionAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = StartPermission();
    ASSERT_TRUE(p.ok()) << p.status();
    perm_ = std::move(*p);
    ASSERT_TRUE(perm_->CreateUser("alice", kPassword).ok());
  }

  v1::AuthState AuthState() {
    v1::AuthState state;
    auto st = perm_->identity->GetAuthState(perm_->AsService("gateway").get(),
                                            v1::GetAuthStateRequest(), &state);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return state;
  }

  // Verifies a token with the keys GetAuthState publishes, as the gateway does.
  absl::StatusOr<auth::TokenClaims> Verify(const std::string& token) {
    auto state = AuthState();
    auth::JwtVerifier verifier;
    std::vector<std::pair<std::string, std::string>> keys;
    for (const auto& k : state.signing_keys()) keys.emplace_back(k.key_id(), k.public_key());
    verifier.SetKeys(keys);
    return verifier.Verify(token, state.issuer(), std::time(nullptr));
  }

  static bool Revoked(const v1::AuthState& state, const std::string& jti) {
    for (const auto& r : state.revoked_tokens()) {
      if (r.token_id() == jti) return true;
    }
    return false;
  }

  std::unique_ptr<PermissionProcess> perm_;
};

TEST_F(PermissionAuthTest, LoginIssuesATokenTheGatewayCanVerify) {
  auto login = perm_->Login("alice", kPassword);
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->token_type(), "Bearer");
  EXPECT_EQ(login->expires_in(), 900);
  EXPECT_EQ(login->user().name(), "users/alice");
  EXPECT_FALSE(login->refresh_token().empty());
  auto claims = Verify(login->access_token());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(claims->kind, "access");
  EXPECT_FALSE(claims->admin);
  EXPECT_EQ(claims->expires_at - claims->issued_at, 900);
  EXPECT_FALSE(claims->token_id.empty());
  // The key in the data dir is the one GetAuthState publishes.
  auto key = auth::LoadOrCreateSigningKey(perm_->signing_key_file());
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(AuthState().signing_keys(0).public_key(), key->public_key);
}

TEST_F(PermissionAuthTest, EveryLoginFailureLooksTheSame) {
  ASSERT_TRUE(perm_->CreateUser("dora", kPassword).ok());
  v1::UpdateUserRequest disable;
  disable.mutable_user()->set_name("users/dora");
  disable.mutable_user()->set_disabled(true);
  disable.mutable_update_mask()->add_paths("disabled");
  v1::User out;
  ASSERT_TRUE(perm_->identity->UpdateUser(perm_->AsAdmin().get(), disable, &out).ok());

  std::vector<std::pair<std::string, std::string>> attempts = {
      {"alice", "wrong password!!"}, {"nobody", kPassword}, {"dora", kPassword},
      {"' OR '1'='1", kPassword},    {"alice", ""},         {"", ""}};
  for (const auto& [user, password] : attempts) {
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password(password);
    v1::LoginResponse resp;
    auto st = perm_->identity->Login(perm_->Anonymous().get(), req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << user;
    EXPECT_EQ(st.error_message(), "invalid username or password") << user;
    EXPECT_EQ(ErrorReason(st), "LOGIN_FAILED") << user;
  }
  // The disabled user is blocked for the gateway.
  auto state = AuthState();
  EXPECT_EQ(std::vector<std::string>(state.blocked_users().begin(), state.blocked_users().end()),
            std::vector<std::string>{"dora"});
}

// Password guessing is braked per username: after login_free_attempts failures every further
// attempt waits, refused before any password check, whether the username exists or not.
TEST(PermissionLoginThrottleTest, FailuresPastTheFreeAttemptsAreThrottledPerUsername) {
  auto started = StartPermission("", "",
                                 "login_free_attempts: 2\nlogin_backoff_base_ms: 600000\n"
                                 "login_backoff_max_ms: 900000\n");
  ASSERT_TRUE(started.ok()) << started.status();
  auto& perm = *started;
  ASSERT_TRUE(perm->CreateUser("alice", kPassword).ok());
  ASSERT_TRUE(perm->CreateUser("bob", kPassword).ok());
  ASSERT_TRUE(perm->CreateUser("carol", kPassword).ok());
  auto login = [&](const std::string& user, const std::string& password) {
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password(password);
    v1::LoginResponse resp;
    return perm->identity->Login(perm->Anonymous().get(), req, &resp);
  };
  // A success before the threshold starts the count afresh.
  EXPECT_EQ(ErrorReason(login("carol", "wrong password!!")), "LOGIN_FAILED");
  EXPECT_EQ(ErrorReason(login("carol", "wrong password!!")), "LOGIN_FAILED");
  EXPECT_TRUE(login("carol", kPassword).ok());
  EXPECT_EQ(ErrorReason(login("carol", "wrong password!!")), "LOGIN_FAILED");
  EXPECT_TRUE(login("carol", kPassword).ok());
  // An existing and an unknown username answer alike: three failures, then throttled, even
  // with the right password.
  for (const std::string user : {"alice", "ghost"}) {
    for (int i = 0; i < 3; ++i) {
      auto st = login(user, "wrong password!!");
      EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED) << user << " " << i;
      EXPECT_EQ(ErrorReason(st), "LOGIN_FAILED") << user << " " << i;
    }
    auto st = login(user, kPassword);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << user;
    EXPECT_EQ(ErrorReason(st), "LOGIN_THROTTLED") << user;
    EXPECT_NE(st.error_message().find("retry in 600 s"), std::string::npos) << st.error_message();
  }
  // Nobody else is affected.
  EXPECT_TRUE(login("bob", kPassword).ok());
}

TEST_F(PermissionAuthTest, RefreshTokensRotateAndAreSingleUse) {
  auto login = perm_->Login("alice", kPassword);
  ASSERT_TRUE(login.ok());
  v1::RefreshTokenRequest req;
  req.set_refresh_token(login->refresh_token());
  v1::LoginResponse refreshed;
  auto st = perm_->identity->RefreshToken(perm_->Anonymous().get(), req, &refreshed);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_NE(refreshed.refresh_token(), login->refresh_token());
  EXPECT_TRUE(Verify(refreshed.access_token()).ok());
  // The old one is spent.
  st = perm_->identity->RefreshToken(perm_->Anonymous().get(), req, &refreshed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ErrorReason(st), "REFRESH_TOKEN_INVALID");
  req.set_refresh_token("made-up");
  EXPECT_EQ(perm_->identity->RefreshToken(perm_->Anonymous().get(), req, &refreshed).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(PermissionAuthTest, LogoutRevokesTheCallingTokenAndTheRefreshToken) {
  auto login = perm_->Login("alice", kPassword);
  ASSERT_TRUE(login.ok());
  auto claims = Verify(login->access_token());
  ASSERT_TRUE(claims.ok());
  v1::LogoutRequest req;
  req.set_refresh_token(login->refresh_token());
  v1::LogoutResponse resp;
  auto st = perm_->identity->Logout(perm_->AsUser("alice", claims->token_id).get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_TRUE(Revoked(AuthState(), claims->token_id));
  EXPECT_TRUE(perm_->WaitForEvent("submarine.permission.v1.TokenRevoked", "users/alice"));
  v1::RefreshTokenRequest refresh;
  refresh.set_refresh_token(login->refresh_token());
  v1::LoginResponse again;
  EXPECT_EQ(perm_->identity->RefreshToken(perm_->Anonymous().get(), refresh, &again).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Logout needs a caller.
  EXPECT_EQ(perm_->identity->Logout(perm_->Anonymous().get(), req, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(PermissionAuthTest, ChangingAPasswordEndsEarlierSessions) {
  auto login = perm_->Login("alice", kPassword);
  ASSERT_TRUE(login.ok());
  auto claims = Verify(login->access_token());
  ASSERT_TRUE(claims.ok());
  v1::SetPasswordRequest req;
  req.set_name("users/alice");
  req.set_password("a brand new passphrase");
  v1::SetPasswordResponse resp;
  auto st = perm_->identity->SetPassword(perm_->AsUser("alice").get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "current_password");
  req.set_current_password("not my password");
  EXPECT_EQ(perm_->identity->SetPassword(perm_->AsUser("alice").get(), req, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->CreateUser("bob", kPassword).ok());
  EXPECT_EQ(perm_->identity->SetPassword(perm_->AsUser("bob").get(), req, &resp).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  req.set_current_password(kPassword);
  st = perm_->identity->SetPassword(perm_->AsUser("alice").get(), req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();

  EXPECT_EQ(perm_->Login("alice", kPassword).status().code(), absl::StatusCode::kUnauthenticated);
  auto fresh = perm_->Login("alice", "a brand new passphrase");
  ASSERT_TRUE(fresh.ok());
  // Tokens issued before the change are refused by the gateway (iat < not_before); the new one
  // is not. The old refresh token is dead.
  auto state = AuthState();
  ASSERT_TRUE(state.not_before().count("alice"));
  int64_t not_before = state.not_before().at("alice").seconds();
  EXPECT_LT(claims->issued_at, not_before);
  auto fresh_claims = Verify(fresh->access_token());
  ASSERT_TRUE(fresh_claims.ok());
  EXPECT_GE(fresh_claims->issued_at, not_before);
  v1::RefreshTokenRequest refresh;
  refresh.set_refresh_token(login->refresh_token());
  v1::LoginResponse again;
  EXPECT_EQ(perm_->identity->RefreshToken(perm_->Anonymous().get(), refresh, &again).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Admins reset anyone's password without the current one.
  req.set_name("users/bob");
  req.clear_current_password();
  EXPECT_TRUE(perm_->identity->SetPassword(perm_->AsAdmin().get(), req, &resp).ok());
  EXPECT_TRUE(perm_->Login("bob", "a brand new passphrase").ok());
}

TEST_F(PermissionAuthTest, ApiTokensAreListedRevokedAndPublished) {
  v1::CreateApiTokenRequest create;
  create.set_parent("users/alice");
  create.set_display_name("ci");
  create.set_ttl_seconds(3600);
  v1::CreateApiTokenResponse made;
  auto st = perm_->identity->CreateApiToken(perm_->AsUser("alice").get(), create, &made);
  ASSERT_TRUE(st.ok()) << st.error_message();
  auto claims = Verify(made.secret());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->kind, "api");
  EXPECT_EQ(claims->subject, "alice");
  EXPECT_EQ(made.token().name(), "users/alice/tokens/" + claims->token_id);
  EXPECT_EQ(made.token().expire_time().seconds(), claims->expires_at);
  create.set_ttl_seconds(0);
  v1::CreateApiTokenResponse forever;
  ASSERT_TRUE(perm_->identity->CreateApiToken(perm_->AsUser("alice").get(), create, &forever).ok());
  EXPECT_EQ(Verify(forever.secret())->expires_at, 0);
  EXPECT_FALSE(forever.token().has_expire_time());

  // Not for someone else; no negative lifetimes.
  ASSERT_TRUE(perm_->CreateUser("bob", kPassword).ok());
  v1::CreateApiTokenResponse nope;
  EXPECT_EQ(perm_->identity->CreateApiToken(perm_->AsUser("bob").get(), create, &nope).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
  create.set_ttl_seconds(-1);
  st = perm_->identity->CreateApiToken(perm_->AsUser("alice").get(), create, &nope);
  EXPECT_EQ(ErrorField(st), "ttl_seconds");

  v1::ListApiTokensRequest list;
  list.set_parent("users/alice");
  v1::ListApiTokensResponse tokens;
  ASSERT_TRUE(perm_->identity->ListApiTokens(perm_->AsUser("alice").get(), list, &tokens).ok());
  ASSERT_EQ(tokens.tokens_size(), 2);
  for (const auto& t : tokens.tokens()) EXPECT_EQ(t.display_name(), "ci");
  EXPECT_EQ(perm_->identity->ListApiTokens(perm_->AsUser("bob").get(), list, &tokens).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  v1::RevokeApiTokenRequest revoke;
  revoke.set_name(made.token().name());
  v1::ApiToken revoked;
  EXPECT_EQ(
      perm_->identity->RevokeApiToken(perm_->AsUser("bob").get(), revoke, &revoked).error_code(),
      grpc::StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(perm_->identity->RevokeApiToken(perm_->AsUser("alice").get(), revoke, &revoked).ok());
  EXPECT_TRUE(revoked.has_revoke_time());
  EXPECT_TRUE(Revoked(AuthState(), claims->token_id));
  EXPECT_TRUE(perm_->WaitForEvent("submarine.permission.v1.TokenRevoked", made.token().name()));
  ASSERT_TRUE(perm_->identity->ListApiTokens(perm_->AsUser("alice").get(), list, &tokens).ok());
  int with_revoke_time = 0;
  for (const auto& t : tokens.tokens()) with_revoke_time += t.has_revoke_time();
  EXPECT_EQ(with_revoke_time, 1);
  revoke.set_name("users/alice/tokens/ffff");
  EXPECT_EQ(
      perm_->identity->RevokeApiToken(perm_->AsUser("alice").get(), revoke, &revoked).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(PermissionAuthTest, ForgedPrincipalsAreRefused) {
  v1::User me;
  // Correct: accepted.
  ASSERT_TRUE(perm_->identity
                  ->GetCurrentUser(perm_->AsUser("alice").get(), v1::GetCurrentUserRequest(), &me)
                  .ok());
  Principal admin;
  admin.set_kind(Principal::USER);
  admin.set_user("admin");
  admin.set_admin(true);
  // Signed with another secret.
  auth::PrincipalCodec wrong(auth::RandomToken(32));
  grpc::ClientContext c1;
  constexpr char kGetCurrentUser[] = "/submarine.permission.v1.IdentityService/GetCurrentUser";
  wrong.Attach(&c1, admin, "req-1", kGetCurrentUser);
  auto st = perm_->identity->GetCurrentUser(&c1, v1::GetCurrentUserRequest(), &me);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ErrorReason(st), "PRINCIPAL_MAC_INVALID");
  // No MAC at all.
  grpc::ClientContext c2;
  auto encoded =
      perm_->codec->Encode(admin, "req-2", kGetCurrentUser, std::chrono::system_clock::now());
  c2.AddMetadata(auth::kPrincipalHeader, encoded.principal);
  c2.AddMetadata("x-request-id", "req-2");
  EXPECT_EQ(perm_->identity->GetCurrentUser(&c2, v1::GetCurrentUserRequest(), &me).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A genuine MAC, replayed with another request id.
  grpc::ClientContext c3;
  c3.AddMetadata(auth::kPrincipalHeader, encoded.principal);
  c3.AddMetadata(auth::kPrincipalMacHeader, encoded.mac);
  c3.AddMetadata("x-request-id", "req-3");
  EXPECT_EQ(perm_->identity->GetCurrentUser(&c3, v1::GetCurrentUserRequest(), &me).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Even on a method that needs no caller, a forgery is not ignored.
  grpc::ClientContext c4;
  wrong.Attach(&c4, admin, "req-4", "/submarine.permission.v1.IdentityService/Login");
  v1::LoginRequest login;
  login.set_username("alice");
  login.set_password(kPassword);
  v1::LoginResponse resp;
  EXPECT_EQ(perm_->identity->Login(&c4, login, &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // A forged admin cannot create users.
  grpc::ClientContext c5;
  wrong.Attach(&c5, admin, "req-5", "/submarine.permission.v1.IdentityService/CreateUser");
  v1::CreateUserRequest create;
  create.set_user_id("mallory");
  create.set_password(kPassword);
  v1::User made;
  EXPECT_EQ(perm_->identity->CreateUser(&c5, create, &made).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Genuine headers captured off the wire: worthless for another method, and after a while.
  auto captured =
      perm_->codec->Encode(admin, "req-6", kGetCurrentUser, std::chrono::system_clock::now());
  grpc::ClientContext c6;
  c6.AddMetadata(auth::kPrincipalHeader, captured.principal);
  c6.AddMetadata(auth::kPrincipalMacHeader, captured.mac);
  c6.AddMetadata("x-request-id", "req-6");
  auto replayed = perm_->identity->CreateUser(&c6, create, &made);
  EXPECT_EQ(replayed.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ErrorReason(replayed), "PRINCIPAL_WRONG_METHOD");
  auto old = perm_->codec->Encode(admin, "req-7", kGetCurrentUser,
                                  std::chrono::system_clock::now() - std::chrono::minutes(10));
  grpc::ClientContext c7;
  c7.AddMetadata(auth::kPrincipalHeader, old.principal);
  c7.AddMetadata(auth::kPrincipalMacHeader, old.mac);
  c7.AddMetadata("x-request-id", "req-7");
  auto stale = perm_->identity->GetCurrentUser(&c7, v1::GetCurrentUserRequest(), &me);
  EXPECT_EQ(stale.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(ErrorReason(stale), "PRINCIPAL_EXPIRED");
  v1::GetUserRequest get;
  get.set_name("users/mallory");
  EXPECT_EQ(perm_->identity->GetUser(perm_->AsAdmin().get(), get, &made).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // The admin flag in a genuine principal is not trusted either: the database decides.
  Principal claims_admin;
  claims_admin.set_kind(Principal::USER);
  claims_admin.set_user("alice");
  claims_admin.set_admin(true);
  EXPECT_EQ(perm_->identity->CreateUser(perm_->WithPrincipal(claims_admin).get(), create, &made)
                .error_code(),
            grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(PermissionAuthTest, InternalMethodsRefuseUsers) {
  v1::AuthState state;
  auto st =
      perm_->identity->GetAuthState(perm_->AsAdmin().get(), v1::GetAuthStateRequest(), &state);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ErrorReason(st), "INTERNAL_ONLY");
  EXPECT_EQ(
      perm_->identity->GetAuthState(perm_->Anonymous().get(), v1::GetAuthStateRequest(), &state)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(
      perm_->identity
          ->GetAuthState(perm_->AsService("gateway").get(), v1::GetAuthStateRequest(), &state)
          .ok());
  EXPECT_EQ(state.issuer(), "submarine");
}

TEST_F(PermissionAuthTest, SubmarineAuthFace) {
  v1::SubmarineLoginRequest req;
  req.set_username("alice");
  req.set_password(kPassword);
  submarine::common::v1::SubmarineV1Response resp;
  ASSERT_TRUE(perm_->submarine->Login(perm_->Anonymous().get(), req, &resp).ok());
  EXPECT_EQ(resp.code(), 200);
  EXPECT_TRUE(resp.success().bool_value());
  EXPECT_EQ(resp.message().string_value(), "Login successfully!");
  const auto& user = resp.result().struct_value().fields();
  EXPECT_EQ(user.at("userName").string_value(), "alice");
  EXPECT_TRUE(Verify(user.at("token").string_value()).ok());
  EXPECT_EQ(user.at("password").string_value(), "******");

  ASSERT_TRUE(perm_->submarine->GetToken(perm_->Anonymous().get(), req, &resp).ok());
  EXPECT_EQ(resp.message().string_value(), "Get token successfully!");
  EXPECT_TRUE(Verify(resp.result().string_value()).ok());

  req.set_password("wrong password!!");
  ASSERT_TRUE(perm_->submarine->Login(perm_->Anonymous().get(), req, &resp).ok());
  EXPECT_EQ(resp.code(), 401);
  EXPECT_EQ(resp.status(), "UNAUTHORIZED");
  EXPECT_FALSE(resp.success().bool_value());
  EXPECT_EQ(resp.message().string_value(), "User Not Found. Please try again!");
  EXPECT_TRUE(resp.result().has_null_value());

  ASSERT_TRUE(perm_->submarine
                  ->GetUserInfo(perm_->AsUser("alice").get(), v1::SubmarineUserInfoRequest(), &resp)
                  .ok());
  const auto& info = resp.result().struct_value().fields();
  EXPECT_EQ(info.at("username").string_value(), "alice");
  EXPECT_EQ(info.at("password").string_value(), "******");
  EXPECT_EQ(
      perm_->submarine->GetUserInfo(perm_->Anonymous().get(), v1::SubmarineUserInfoRequest(), &resp)
          .error_code(),
      grpc::StatusCode::UNAUTHENTICATED);
  ASSERT_TRUE(
      perm_->submarine
          ->Logout(perm_->AsUser("alice", "abc123").get(), v1::SubmarineLogoutRequest(), &resp)
          .ok());
  EXPECT_TRUE(resp.result().bool_value());
  EXPECT_TRUE(Revoked(AuthState(), "abc123"));
}

}  // namespace
}  // namespace submarine::testing
