// The gateway's token check without any network: tokens signed here with auth::SignJwt (and
// forged by hand) against an AuthSnapshot built from an AuthState like the permission service's.

#include "gateway/auth_filter.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth/crypto.h"
#include "common/events/event_options.h"
#include "common/status/status.h"
#include "gateway/auth_state.h"
#include "google/protobuf/descriptor.pb.h"
#include "submarine/experiment/v1/experiment.pb.h"
#include "submarine/permission/v1/permission.pb.h"
#include "tests/support/fake_clock.h"

namespace submarine::gateway {
namespace {

using submarine::common::v1::Principal;
using submarine::testing::FakeClock;
namespace perm = submarine::permission::v1;

constexpr int64_t kNow = 1'700'000'000;
constexpr char kIssuer[] = "https://submarine.test";

std::string ReasonOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  return GetErrorInfo(status, &info) ? info.reason() : "<no ErrorInfo>";
}

class AuthSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auth::InitSodium();
    key_ = auth::GenerateSigningKey();
    other_key_ = auth::GenerateSigningKey();
    auto* k = state_.add_signing_keys();
    k->set_key_id(key_.key_id);
    k->set_public_key(key_.public_key);
    state_.set_issuer(kIssuer);
  }

  auth::TokenClaims Claims() const {
    auth::TokenClaims c;
    c.issuer = kIssuer;
    c.subject = "alice";
    c.token_id = "tok-1";
    c.kind = "access";
    c.teams = {"ml", "infra"};
    c.admin = false;
    c.issued_at = kNow - 60;
    c.expires_at = kNow + 600;
    return c;
  }

  std::shared_ptr<const AuthSnapshot> Snapshot() const {
    auto snapshot = AuthSnapshot::Build(state_);
    EXPECT_TRUE(snapshot.ok()) << snapshot.status();
    return snapshot.ok() ? *snapshot : nullptr;
  }

  absl::StatusOr<Principal> Check(const std::string& token) const {
    return Snapshot()->Authenticate(absl::StrCat("Bearer ", token), kNow);
  }

  // Expects `token` to be refused with `reason`, without the token in the message.
  void ExpectRefused(const std::string& token, const std::string& reason) const {
    auto result = Check(token);
    ASSERT_FALSE(result.ok()) << "accepted: " << token;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated) << result.status();
    EXPECT_EQ(ReasonOf(result.status()), reason) << result.status();
    if (!token.empty()) {
      EXPECT_EQ(result.status().message().find(token), absl::string_view::npos);
      for (const auto part : absl::StrSplit(token, '.')) {
        if (part.size() > 8) {
          EXPECT_EQ(result.status().message().find(std::string(part)), absl::string_view::npos);
        }
      }
    }
  }

  // Re-assembles a JWT from a JSON header and payload with the given signature bytes.
  static std::string Assemble(const nlohmann::json& header, const nlohmann::json& payload,
                              const std::string& signature) {
    return absl::StrCat(auth::Base64UrlEncode(header.dump()), ".",
                        auth::Base64UrlEncode(payload.dump()), ".",
                        auth::Base64UrlEncode(signature));
  }

  static nlohmann::json Part(const std::string& token, int index) {
    std::vector<std::string> parts = absl::StrSplit(token, '.');
    auto decoded = auth::Base64UrlDecode(parts.at(index));
    EXPECT_TRUE(decoded.has_value());
    return nlohmann::json::parse(decoded.value_or("{}"));
  }

  auth::SigningKey key_;
  auth::SigningKey other_key_;
  perm::AuthState state_;
};

TEST_F(AuthSnapshotTest, ValidTokenGivesTheUserPrincipal) {
  auto claims = Claims();
  claims.admin = true;
  auto principal = Check(auth::SignJwt(claims, key_));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->kind(), Principal::USER);
  EXPECT_EQ(principal->user(), "alice");
  EXPECT_EQ(principal->token_id(), "tok-1");
  EXPECT_TRUE(principal->admin());
  ASSERT_EQ(principal->teams_size(), 2);
  EXPECT_EQ(principal->teams(0), "ml");
  EXPECT_EQ(principal->teams(1), "infra");
  EXPECT_TRUE(principal->service().empty());
}

TEST_F(AuthSnapshotTest, AScopedTokenCarriesItsScopeAndIsKeptOutOfThePermissionService) {
  auto claims = Claims();
  claims.scope = "projects/p";
  auto principal = Check(auth::SignJwt(claims, key_));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->scope(), "projects/p");
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  auto method = [&](const std::string& name) {
    const auto* m = pool->FindMethodByName(name);
    EXPECT_NE(m, nullptr) << name;
    return m;
  };
  EXPECT_TRUE(
      CheckScope(method("submarine.experiment.v1.ExperimentService.CreateExperiment"), *principal)
          .ok());
  EXPECT_TRUE(
      CheckScope(method("submarine.permission.v1.IdentityService.GetCurrentUser"), *principal)
          .ok());
  for (const char* refused : {"submarine.permission.v1.IdentityService.CreateApiToken",
                              "submarine.permission.v1.AccessService.CreateGrant",
                              "submarine.permission.v1.CredentialService.ListCredentials"}) {
    absl::Status st = CheckScope(method(refused), *principal);
    EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << refused;
  }
  // Unscoped tokens are not limited.
  principal->clear_scope();
  EXPECT_TRUE(
      CheckScope(method("submarine.permission.v1.IdentityService.CreateApiToken"), *principal)
          .ok());
}

TEST_F(AuthSnapshotTest, ApiTokensWithoutExpiryAreAccepted) {
  auto claims = Claims();
  claims.kind = "api";
  claims.expires_at = 0;
  auto principal = Check(auth::SignJwt(claims, key_));
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->user(), "alice");
}

TEST_F(AuthSnapshotTest, SchemeIsCaseInsensitiveAndOtherSchemesAreRefused) {
  std::string token = auth::SignJwt(Claims(), key_);
  auto snapshot = Snapshot();
  EXPECT_TRUE(snapshot->Authenticate(absl::StrCat("bearer ", token), kNow).ok());
  EXPECT_TRUE(snapshot->Authenticate(absl::StrCat("  BEARER   ", token, " "), kNow).ok());
  for (const std::string& header :
       {std::string(""), std::string("   "), std::string("Bearer"), absl::StrCat("Basic ", token),
        absl::StrCat("Token ", token), token}) {
    auto result = snapshot->Authenticate(header, kNow);
    ASSERT_FALSE(result.ok()) << header;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_EQ(ReasonOf(result.status()), "UNAUTHENTICATED") << header;
  }
  auto two = snapshot->Authenticate(absl::StrCat("Bearer ", token, " extra"), kNow);
  EXPECT_EQ(ReasonOf(two.status()), "TOKEN_MALFORMED");
}

TEST_F(AuthSnapshotTest, MalformedTokensAreRefused) {
  for (const std::string token : {"abc", "a.b", "a.b.c", "....", "e30.e30.", "!!.??.**"}) {
    ExpectRefused(token, "TOKEN_MALFORMED");
  }
  ExpectRefused(std::string(9000, 'a'), "TOKEN_MALFORMED");
}

TEST_F(AuthSnapshotTest, TamperedPayloadWithTheOriginalSignatureIsRefused) {
  std::string token = auth::SignJwt(Claims(), key_);
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  auto signature = auth::Base64UrlDecode(parts[2]);
  ASSERT_TRUE(signature.has_value());
  nlohmann::json payload = Part(token, 1);
  payload["admin"] = true;
  ExpectRefused(Assemble(Part(token, 0), payload, *signature), "TOKEN_BAD_SIGNATURE");
  payload = Part(token, 1);
  payload["sub"] = "root";
  ExpectRefused(Assemble(Part(token, 0), payload, *signature), "TOKEN_BAD_SIGNATURE");
  // One flipped signature character.
  std::string flipped = token;
  flipped[flipped.size() - 2] = flipped[flipped.size() - 2] == 'A' ? 'B' : 'A';
  ExpectRefused(flipped, "TOKEN_BAD_SIGNATURE");
}

TEST_F(AuthSnapshotTest, TokensSignedWithAnotherKeyAreRefused) {
  ExpectRefused(auth::SignJwt(Claims(), other_key_), "TOKEN_UNKNOWN_KEY");
  // The attacker's key claiming the trusted key id.
  auth::SigningKey impostor = other_key_;
  impostor.key_id = key_.key_id;
  ExpectRefused(auth::SignJwt(Claims(), impostor), "TOKEN_BAD_SIGNATURE");
}

TEST_F(AuthSnapshotTest, KeyRotationAcceptsEveryPublishedKey) {
  auto* k = state_.add_signing_keys();
  k->set_key_id(other_key_.key_id);
  k->set_public_key(other_key_.public_key);
  EXPECT_TRUE(Check(auth::SignJwt(Claims(), key_)).ok());
  EXPECT_TRUE(Check(auth::SignJwt(Claims(), other_key_)).ok());
}

TEST_F(AuthSnapshotTest, ExpiredAndFutureTokensAreRefused) {
  auto expired = Claims();
  expired.issued_at = kNow - 7200;
  expired.expires_at = kNow - 3600;
  ExpectRefused(auth::SignJwt(expired, key_), "TOKEN_EXPIRED");
  auto future = Claims();
  future.issued_at = kNow + 3600;
  future.expires_at = kNow + 7200;
  ExpectRefused(auth::SignJwt(future, key_), "TOKEN_NOT_YET_VALID");
  // Within the leeway a skewed clock is tolerated.
  future.issued_at = kNow + AuthSnapshot::kLeewaySeconds - 1;
  EXPECT_TRUE(Check(auth::SignJwt(future, key_)).ok());
}

TEST_F(AuthSnapshotTest, WrongIssuerIsRefused) {
  auto claims = Claims();
  claims.issuer = "https://evil.example";
  ExpectRefused(auth::SignJwt(claims, key_), "TOKEN_WRONG_ISSUER");
}

TEST_F(AuthSnapshotTest, AlgNoneAndHs256AreRefused) {
  std::string token = auth::SignJwt(Claims(), key_);
  nlohmann::json payload = Part(token, 1);
  payload["admin"] = true;
  // "alg": "none" with an empty signature, with and without the trailing dot.
  nlohmann::json none = {{"alg", "none"}, {"typ", "JWT"}};
  std::string unsigned_token = Assemble(none, payload, "");
  ExpectRefused(unsigned_token, "TOKEN_MALFORMED");
  ExpectRefused(unsigned_token.substr(0, unsigned_token.size() - 1), "TOKEN_MALFORMED");
  nlohmann::json none_kid = {{"alg", "none"}, {"typ", "JWT"}, {"kid", key_.key_id}};
  ExpectRefused(Assemble(none_kid, payload, ""), "TOKEN_MALFORMED");
  // HS256 "signed" with the public key as the HMAC secret (the key-confusion attack).
  nlohmann::json hs = {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", key_.key_id}};
  std::string signing_input =
      absl::StrCat(auth::Base64UrlEncode(hs.dump()), ".", auth::Base64UrlEncode(payload.dump()));
  std::string hs_token = absl::StrCat(
      signing_input, ".", auth::Base64UrlEncode(auth::HmacSha256(key_.public_key, signing_input)));
  ExpectRefused(hs_token, "TOKEN_MALFORMED");
}

TEST_F(AuthSnapshotTest, RevokedTokenIsRefusedAndOthersStillWork) {
  state_.add_revoked_tokens()->set_token_id("tok-1");
  ExpectRefused(auth::SignJwt(Claims(), key_), "TOKEN_REVOKED");
  auto other = Claims();
  other.token_id = "tok-2";
  EXPECT_TRUE(Check(auth::SignJwt(other, key_)).ok());
}

TEST_F(AuthSnapshotTest, BlockedUserIsRefused) {
  state_.add_blocked_users("alice");
  ExpectRefused(auth::SignJwt(Claims(), key_), "USER_DISABLED");
  auto bob = Claims();
  bob.subject = "bob";
  EXPECT_TRUE(Check(auth::SignJwt(bob, key_)).ok());
}

TEST_F(AuthSnapshotTest, TokensIssuedBeforeTheUsersNotBeforeAreRefused) {
  (*state_.mutable_not_before())["alice"].set_seconds(kNow - 30);
  auto old_token = Claims();
  old_token.issued_at = kNow - 31;
  ExpectRefused(auth::SignJwt(old_token, key_), "TOKEN_REVOKED");
  auto fresh = Claims();
  fresh.issued_at = kNow - 30;
  EXPECT_TRUE(Check(auth::SignJwt(fresh, key_)).ok());
  auto bob = Claims();
  bob.subject = "bob";
  bob.issued_at = kNow - 3000;
  EXPECT_TRUE(Check(auth::SignJwt(bob, key_)).ok());
}

TEST_F(AuthSnapshotTest, RememberedTokensStillExpire) {
  auto claims = Claims();
  claims.expires_at = kNow + 100;
  std::string header = absl::StrCat("Bearer ", auth::SignJwt(claims, key_));
  auto snapshot = Snapshot();
  ASSERT_TRUE(snapshot->Authenticate(header, kNow).ok());
  ASSERT_TRUE(snapshot->Authenticate(header, kNow + 50).ok());
  auto later = snapshot->Authenticate(header, kNow + 100 + AuthSnapshot::kLeewaySeconds);
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(ReasonOf(later.status()), "TOKEN_EXPIRED");
}

TEST_F(AuthSnapshotTest, RememberedTokensAreCheckedAgainstEachNewState) {
  std::string header = absl::StrCat("Bearer ", auth::SignJwt(Claims(), key_));
  auto before = Snapshot();
  ASSERT_TRUE(before->Authenticate(header, kNow).ok());
  state_.add_revoked_tokens()->set_token_id("tok-1");
  auto after = Snapshot();
  EXPECT_EQ(ReasonOf(after->Authenticate(header, kNow).status()), "TOKEN_REVOKED");
  state_.clear_revoked_tokens();
  state_.add_blocked_users("alice");
  EXPECT_EQ(ReasonOf(Snapshot()->Authenticate(header, kNow).status()), "USER_DISABLED");
  // A removed signing key takes its tokens with it, remembered or not.
  state_.clear_blocked_users();
  state_.clear_signing_keys();
  auto* k = state_.add_signing_keys();
  k->set_key_id(other_key_.key_id);
  k->set_public_key(other_key_.public_key);
  EXPECT_EQ(ReasonOf(Snapshot()->Authenticate(header, kNow).status()), "TOKEN_UNKNOWN_KEY");
}

TEST_F(AuthSnapshotTest, ManyDistinctTokensStayCorrectBeyondTheCacheSize) {
  auto snapshot = Snapshot();
  std::vector<std::string> headers;
  for (size_t i = 0; i < AuthSnapshot::kVerifiedCacheSize + 16; ++i) {
    auto c = Claims();
    c.token_id = absl::StrCat("tok-", i);
    headers.push_back(absl::StrCat("Bearer ", auth::SignJwt(c, key_)));
  }
  for (const auto& h : headers) ASSERT_TRUE(snapshot->Authenticate(h, kNow).ok());
  // The first ones were evicted and are verified again; the answer is the same.
  auto first = snapshot->Authenticate(headers[0], kNow);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->token_id(), "tok-0");
  auto last = snapshot->Authenticate(headers.back(), kNow);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->token_id(), absl::StrCat("tok-", AuthSnapshot::kVerifiedCacheSize + 15));
}

TEST_F(AuthSnapshotTest, BuildRejectsAnUnusableState) {
  perm::AuthState no_issuer = state_;
  no_issuer.clear_issuer();
  auto a = AuthSnapshot::Build(no_issuer);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("issuer"), absl::string_view::npos);
  perm::AuthState short_key = state_;
  short_key.mutable_signing_keys(0)->set_public_key("short");
  auto b = AuthSnapshot::Build(short_key);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("signing_keys[0]"), absl::string_view::npos);
}

// ---- AuthFilter: which methods need a token.

const google::protobuf::MethodDescriptor* Method(const std::string& name) {
  const auto* m = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
  EXPECT_NE(m, nullptr) << name;
  return m;
}

TEST_F(AuthSnapshotTest, FilterExemptsOnlyMethodsMarkedAuthExempt) {
  auto snapshot = Snapshot();
  FakeClock clock;  // at kNow
  AuthFilter filter([snapshot] { return snapshot; }, nullptr, &clock);
  ASSERT_TRUE(filter.enabled());
  for (const char* exempt : {"submarine.permission.v1.IdentityService.Login",
                             "submarine.permission.v1.IdentityService.RefreshToken",
                             "submarine.permission.v1.SubmarineAuthApi.Login",
                             "submarine.permission.v1.SubmarineAuthApi.GetToken"}) {
    auto r = filter.Authenticate(Method(exempt), "");
    ASSERT_TRUE(r.ok()) << exempt << ": " << r.status();
    EXPECT_FALSE(r->has_value()) << exempt;
  }
  for (const char* guarded :
       {"submarine.permission.v1.IdentityService.Logout",
        "submarine.permission.v1.IdentityService.GetCurrentUser",
        "submarine.permission.v1.SubmarineAuthApi.GetUserInfo",
        "submarine.environment.v1.EnvironmentService.GetEnvironment",
        "submarine.environment.v1.SubmarineEnvironmentApi.ListEnvironments"}) {
    auto r = filter.Authenticate(Method(guarded), "");
    ASSERT_FALSE(r.ok()) << guarded;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
    auto ok = filter.Authenticate(Method(guarded),
                                  absl::StrCat("Bearer ", auth::SignJwt(Claims(), key_)));
    ASSERT_TRUE(ok.ok()) << guarded << ": " << ok.status();
    ASSERT_TRUE(ok->has_value());
    EXPECT_EQ((*ok)->user(), "alice");
  }
  EXPECT_TRUE(IsInternalOnly(Method("submarine.permission.v1.IdentityService.GetAuthState")));
  EXPECT_FALSE(IsInternalOnly(Method("submarine.permission.v1.IdentityService.Login")));
}

TEST_F(AuthSnapshotTest, FilterIsUnavailableUntilTheStateIsLoaded) {
  FakeClock clock;  // at kNow
  AuthFilter filter([] { return std::shared_ptr<const AuthSnapshot>(); }, nullptr, &clock);
  auto r = filter.Authenticate(Method("submarine.environment.v1.EnvironmentService.GetEnvironment"),
                               absl::StrCat("Bearer ", auth::SignJwt(Claims(), key_)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(r.status()), "AUTH_STATE_UNAVAILABLE");
  // Exempt methods do not need the state.
  EXPECT_TRUE(
      filter.Authenticate(Method("submarine.permission.v1.IdentityService.Login"), "").ok());
}

TEST(AuthFilterTest, InsecureFilterChecksNothing) {
  AuthFilter filter;
  EXPECT_FALSE(filter.enabled());
  auto r = filter.Authenticate(google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
                                   "submarine.environment.v1.EnvironmentService.GetEnvironment"),
                               "Bearer garbage");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
}

TEST(AuthStateCacheTest, OnlyEventsThatCanChangeTokenStateTriggerAFetch) {
  for (const char* topic :
       {"submarine.permission.v1.TokenRevoked", "submarine.permission.v1.UserChanged",
        "submarine.permission.v1.TeamChanged", "submarine.permission.v1.SomethingNew"}) {
    EXPECT_TRUE(events::OptionsOfTopic(topic).affects_tokens()) << topic;
  }
  for (const char* topic :
       {"submarine.permission.v1.LeaseChanged", "submarine.permission.v1.QuotaChanged",
        "submarine.permission.v1.AccessChanged", "submarine.permission.v1.CredentialAccessed",
        "submarine.permission.v1.ProjectChanged", "submarine.environment.v1.EnvironmentDeleted"}) {
    EXPECT_FALSE(events::OptionsOfTopic(topic).affects_tokens()) << topic;
  }
}

}  // namespace
}  // namespace submarine::gateway
