#include "common/auth/principal.h"

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/config/config.h"
#include "common/status/status.h"

namespace submarine::auth {

using submarine::common::v1::Principal;

absl::StatusOr<std::string> LoadInternalSecret(const std::string& path) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string secret, config::ReadSecretFile(path));
  if (secret.size() < 32) {
    return InvalidField(path, "the internal secret must be at least 32 bytes");
  }
  return secret;
}

std::string SubjectOf(const Principal& principal) {
  switch (principal.kind()) {
    case Principal::USER:
      return principal.user().empty() ? "" : absl::StrCat("users/", principal.user());
    case Principal::SERVICE:
      return principal.service().empty() ? "" : absl::StrCat("services/", principal.service());
    default:
      return "";
  }
}

PrincipalCodec::PrincipalCodec(std::string secret) : secret_(std::move(secret)) {}

namespace {
std::string MacInput(const std::string& principal, const std::string& request_id) {
  return absl::StrCat("v1\n", principal, "\n", request_id);
}
}  // namespace

PrincipalCodec::Encoded PrincipalCodec::Encode(const Principal& principal,
                                               const std::string& request_id) const {
  Encoded out;
  out.principal = Base64UrlEncode(principal.SerializeAsString());
  out.mac = Base64UrlEncode(HmacSha256(secret_, MacInput(out.principal, request_id)));
  return out;
}

void PrincipalCodec::Attach(grpc::ClientContext* ctx, const Principal& principal,
                            const std::string& request_id) const {
  Encoded e = Encode(principal, request_id);
  ctx->AddMetadata(kPrincipalHeader, e.principal);
  ctx->AddMetadata(kPrincipalMacHeader, e.mac);
  if (!request_id.empty()) ctx->AddMetadata("x-request-id", request_id);
}

absl::StatusOr<Principal> PrincipalCodec::Verify(const std::string& principal,
                                                 const std::string& mac,
                                                 const std::string& request_id) const {
  auto invalid = [] {
    return MakeError(absl::StatusCode::kUnauthenticated, "PRINCIPAL_MAC_INVALID",
                     "the caller's identity is not signed by the gateway");
  };
  if (principal.empty() || principal.size() > 8192 || mac.empty()) return invalid();
  std::string expected = Base64UrlEncode(HmacSha256(secret_, MacInput(principal, request_id)));
  if (!ConstantTimeEquals(expected, mac)) return invalid();
  auto bytes = Base64UrlDecode(principal);
  Principal out;
  if (!bytes || !out.ParseFromString(*bytes) || out.kind() == Principal::KIND_UNSPECIFIED) {
    return invalid();
  }
  return out;
}

}  // namespace submarine::auth
