// The principal hop: only a holder of the internal secret can produce a principal a service
// accepts, and the MAC binds it to one request id, one method and a few minutes.
#include "common/auth/principal.h"

#include <gtest/gtest.h>

#include "common/auth/crypto.h"
#include "common/status/status.h"
#include "tests/support/grpc_errors.h"

namespace submarine::auth {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using submarine::common::v1::Principal;

constexpr char kMethod[] = "/submarine.permission.v1.IdentityService/GetUser";

Principal Alice() {
  Principal p;
  p.set_kind(Principal::USER);
  p.set_user("alice");
  p.add_teams("ml");
  p.set_token_id("t1");
  return p;
}

const auto kNow = std::chrono::system_clock::time_point(seconds(1'800'000'000));

TEST(PrincipalCodec, VerifiesOnlyWithTheSameSecretAndRequestId) {
  PrincipalCodec codec(std::string(32, 's'));
  auto e = codec.Encode(Alice(), "req-1", kMethod, kNow);
  auto back = codec.Verify(e.principal, e.mac, "req-1", kMethod, kNow);
  ASSERT_TRUE(back.ok()) << Message(back.status());
  EXPECT_EQ(back->user(), "alice");
  EXPECT_EQ(back->method(), kMethod);
  EXPECT_EQ(SubjectOf(*back), "users/alice");

  EXPECT_EQ(submarine::testing::ErrorReason(
                codec.Verify(e.principal, e.mac, "req-2", kMethod, kNow).status()),
            "PRINCIPAL_MAC_INVALID");
  EXPECT_EQ(submarine::testing::ErrorReason(PrincipalCodec(std::string(32, 't'))
                                                .Verify(e.principal, e.mac, "req-1", kMethod, kNow)
                                                .status()),
            "PRINCIPAL_MAC_INVALID");
  EXPECT_EQ(submarine::testing::ErrorReason(
                codec.Verify(e.principal, "", "req-1", kMethod, kNow).status()),
            "PRINCIPAL_MAC_INVALID");

  // A forged principal (admin: true) with the MAC of the genuine one.
  Principal forged = *back;
  forged.set_admin(true);
  std::string forged_b64 = Base64UrlEncode(forged.SerializeAsString());
  auto st = codec.Verify(forged_b64, e.mac, "req-1", kMethod, kNow).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);

  // A correctly MACed but empty principal is not a caller.
  auto empty = codec.Encode(Principal(), "r", kMethod, kNow);
  EXPECT_FALSE(codec.Verify(empty.principal, empty.mac, "r", kMethod, kNow).ok());
}

// Headers captured off the wire are worth one method for a few minutes, never more.
TEST(PrincipalCodec, ReplaysAgainstAnotherMethodOrLaterAreRefused) {
  PrincipalCodec codec(std::string(32, 's'));
  auto e = codec.Encode(Alice(), "req-1", kMethod, kNow, seconds(30));
  EXPECT_EQ(submarine::testing::ErrorReason(
                codec
                    .Verify(e.principal, e.mac, "req-1",
                            "/submarine.permission.v1.IdentityService/DeleteUser", kNow)
                    .status()),
            "PRINCIPAL_WRONG_METHOD");
  // Within the window and the tolerated skew: accepted.
  EXPECT_TRUE(codec.Verify(e.principal, e.mac, "req-1", kMethod, kNow + seconds(59)).ok());
  EXPECT_TRUE(codec.Verify(e.principal, e.mac, "req-1", kMethod, kNow - seconds(29)).ok());
  // After it (the old v1 headers were valid forever) or well before it: refused.
  EXPECT_EQ(submarine::testing::ErrorReason(
                codec.Verify(e.principal, e.mac, "req-1", kMethod, kNow + minutes(2)).status()),
            "PRINCIPAL_EXPIRED");
  EXPECT_EQ(submarine::testing::ErrorReason(
                codec.Verify(e.principal, e.mac, "req-1", kMethod, kNow - minutes(2)).status()),
            "PRINCIPAL_EXPIRED");
  // The validity is capped whatever the signer asked for.
  auto long_lived = codec.Encode(Alice(), "req-1", kMethod, kNow, minutes(600));
  EXPECT_EQ(submarine::testing::ErrorReason(
                codec
                    .Verify(long_lived.principal, long_lived.mac, "req-1", kMethod,
                            kNow + PrincipalCodec::kMaxValidity + minutes(1))
                    .status()),
            "PRINCIPAL_EXPIRED");
}

TEST(PrincipalCodec, SubjectOfServices) {
  Principal p = ServicePrincipal("experiment", "alice");
  EXPECT_EQ(SubjectOf(p), "services/experiment");
  EXPECT_EQ(p.user(), "alice");
  EXPECT_EQ(SubjectOf(Principal()), "");
}

}  // namespace
}  // namespace submarine::auth
