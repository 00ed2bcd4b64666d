// The one place that decides whether a call reaches a handler: rpc::Admit, from the method's
// proto options and the signed principal.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/auth/crypto.h"
#include "common/auth/principal.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::rpc {
namespace {

using submarine::common::v1::Principal;

constexpr char kGetUser[] = "/submarine.permission.v1.IdentityService/GetUser";
constexpr char kLogin[] = "/submarine.permission.v1.IdentityService/Login";
constexpr char kAuthState[] = "/submarine.permission.v1.IdentityService/GetAuthState";
constexpr char kHealth[] = "/grpc.health.v1.Health/Check";

std::string Reason(const absl::Status& st) {
  google::rpc::ErrorInfo info;
  return GetErrorInfo(st, &info) ? info.reason() : "";
}

class AdmitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auth::InitSodium();
    codec_ = std::make_shared<auth::PrincipalCodec>(std::string(32, 'k'));
    SetPrincipalCodec(codec_);
    SetAnonymousCallsAllowed(false);
  }
  void TearDown() override { SetAnonymousCallsAllowed(false); }

  // Admits a call of `method` carrying `headers` (owned here: the map holds views).
  Admission Call(const std::string& method, std::map<std::string, std::string> headers) {
    headers_ = std::move(headers);
    std::multimap<grpc::string_ref, grpc::string_ref> md;
    for (const auto& [k, v] : headers_) md.emplace(k, v);
    auto now = std::chrono::system_clock::now();
    return Admit(method, md, now + std::chrono::seconds(10), now);
  }
  std::map<std::string, std::string> Signed(const Principal& p, const std::string& method,
                                            const std::string& request_id = "req-1") {
    auto e = codec_->Encode(p, request_id, method, std::chrono::system_clock::now());
    return {{kPrincipalHeader, e.principal},
            {kPrincipalMacHeader, e.mac},
            {kRequestIdHeader, request_id}};
  }

  std::shared_ptr<auth::PrincipalCodec> codec_;
  std::map<std::string, std::string> headers_;
};

Principal User(const std::string& name) {
  Principal p;
  p.set_kind(Principal::USER);
  p.set_user(name);
  return p;
}

TEST_F(AdmitTest, MethodsNeedAVerifiedCallerUnlessExempt) {
  auto anonymous = Call(kGetUser, {});
  EXPECT_EQ(anonymous.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(Call(kLogin, {}).status.ok()) << "auth_exempt";
  EXPECT_TRUE(Call(kHealth, {}).status.ok()) << "outside submarine.*";
  auto alice = Call(kGetUser, Signed(User("alice"), kGetUser));
  ASSERT_TRUE(alice.status.ok()) << alice.status;
  EXPECT_EQ(alice.call.subject, "users/alice");
  EXPECT_EQ(alice.call.request_id, "req-1");
  EXPECT_EQ(alice.call.method, kGetUser);
  // A process running without authorization admits anonymous callers.
  SetAnonymousCallsAllowed(true);
  EXPECT_TRUE(Call(kGetUser, {}).status.ok());
}

TEST_F(AdmitTest, InternalMethodsAreForServicesOnly) {
  auto user = Call(kAuthState, Signed(User("alice"), kAuthState));
  EXPECT_EQ(user.status.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Reason(user.status), "INTERNAL_ONLY");
  EXPECT_EQ(Call(kAuthState, {}).status.code(), absl::StatusCode::kUnauthenticated);
  auto service = Call(kAuthState, Signed(auth::ServicePrincipal("gateway"), kAuthState));
  EXPECT_TRUE(service.status.ok()) << service.status;
  EXPECT_TRUE(service.call.is_service());
}

TEST_F(AdmitTest, ForgeriesAreRefusedEvenOnExemptMethods) {
  auth::PrincipalCodec forger(std::string(32, 'f'));
  auto e = forger.Encode(User("admin"), "req-1", kLogin, std::chrono::system_clock::now());
  auto forged = Call(
      kLogin,
      {{kPrincipalHeader, e.principal}, {kPrincipalMacHeader, e.mac}, {kRequestIdHeader, "req-1"}});
  EXPECT_EQ(forged.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Reason(forged.status), "PRINCIPAL_MAC_INVALID");
  // Signed for another method.
  auto replayed = Call(kAuthState, Signed(auth::ServicePrincipal("gateway"), kGetUser));
  EXPECT_EQ(Reason(replayed.status), "PRINCIPAL_WRONG_METHOD");
  // A MAC without its principal.
  auto half = Call(kLogin, {{kPrincipalMacHeader, "abc"}});
  EXPECT_EQ(half.status.code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(AdmitTest, JunkRequestIdsAreReplacedAtTheEdge) {
  auto junk = Call(kLogin, {{kRequestIdHeader, "line\nforged [access] ok"}});
  EXPECT_TRUE(junk.status.ok());
  EXPECT_NE(junk.call.request_id, "line\nforged [access] ok");
  EXPECT_TRUE(AcceptableRequestId(junk.call.request_id)) << junk.call.request_id;
  EXPECT_EQ(Call(kLogin, {{kRequestIdHeader, "client-id-7"}}).call.request_id, "client-id-7");
  EXPECT_EQ(Call(kLogin, {{kRequestIdHeader, std::string(200, 'a')}}).call.request_id.size(), 36u);
  // A signed principal stays valid for the request id it was signed with, even a junk one the
  // service logs under a fresh id.
  auto signed_junk = Call(kGetUser, Signed(User("bob"), kGetUser, "bad id"));
  EXPECT_TRUE(signed_junk.status.ok()) << signed_junk.status;
  EXPECT_NE(signed_junk.call.request_id, "bad id");
}

}  // namespace
}  // namespace submarine::rpc
