// The principal hop: only a holder of the internal secret can produce a principal a service
// accepts, and the MAC binds it to one request id.
#include "common/auth/principal.h"

#include <gtest/gtest.h>

#include "common/auth/crypto.h"
#include "common/status/status.h"

namespace submarine::auth {
namespace {

using submarine::common::v1::Principal;

Principal Alice() {
  Principal p;
  p.set_kind(Principal::USER);
  p.set_user("alice");
  p.add_teams("ml");
  p.set_token_id("t1");
  return p;
}

TEST(PrincipalCodec, VerifiesOnlyWithTheSameSecretAndRequestId) {
  PrincipalCodec codec(std::string(32, 's'));
  auto e = codec.Encode(Alice(), "req-1");
  auto back = codec.Verify(e.principal, e.mac, "req-1");
  ASSERT_TRUE(back.ok()) << Message(back.status());
  EXPECT_EQ(back->user(), "alice");
  EXPECT_EQ(SubjectOf(*back), "users/alice");

  auto reason = [](const absl::Status& st) {
    google::rpc::ErrorInfo info;
    return GetErrorInfo(st, &info) ? info.reason() : "";
  };
  EXPECT_EQ(reason(codec.Verify(e.principal, e.mac, "req-2").status()), "PRINCIPAL_MAC_INVALID");
  EXPECT_EQ(reason(PrincipalCodec(std::string(32, 't')).Verify(e.principal, e.mac, "req-1")
                       .status()),
            "PRINCIPAL_MAC_INVALID");
  EXPECT_EQ(reason(codec.Verify(e.principal, "", "req-1").status()), "PRINCIPAL_MAC_INVALID");

  // A forged principal (admin: true) with the MAC of the genuine one.
  Principal forged = Alice();
  forged.set_admin(true);
  std::string forged_b64 = Base64UrlEncode(forged.SerializeAsString());
  auto st = codec.Verify(forged_b64, e.mac, "req-1").status();
  EXPECT_EQ(st.code(), absl::StatusCode::kUnauthenticated);

  // A correctly MACed but empty principal is not a caller.
  auto empty = codec.Encode(Principal(), "r");
  EXPECT_FALSE(codec.Verify(empty.principal, empty.mac, "r").ok());
}

TEST(PrincipalCodec, SubjectOfServices) {
  Principal p;
  p.set_kind(Principal::SERVICE);
  p.set_service("experiment");
  EXPECT_EQ(SubjectOf(p), "services/experiment");
  EXPECT_EQ(SubjectOf(Principal()), "");
}

}  // namespace
}  // namespace submarine::auth
