#include "common/auth/principal.h"

#include <algorithm>

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

Principal ServicePrincipal(const std::string& service, const std::string& on_behalf_of) {
  Principal p;
  p.set_kind(Principal::SERVICE);
  p.set_service(service);
  p.set_user(on_behalf_of);
  return p;
}

PrincipalCodec::PrincipalCodec(std::string secret) : secret_(std::move(secret)) {}

namespace {

std::string MacInput(const std::string& principal, const std::string& request_id) {
  return absl::StrCat("v2\n", principal, "\n", request_id);
}

int64_t UnixMillis(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

absl::Status Refused(const char* reason, const std::string& message) {
  return MakeError(absl::StatusCode::kUnauthenticated, reason, message);
}

}  // namespace

PrincipalCodec::Encoded PrincipalCodec::Encode(Principal principal, const std::string& request_id,
                                               const std::string& method,
                                               std::chrono::system_clock::time_point now,
                                               std::chrono::milliseconds validity) const {
  validity = std::clamp(validity, std::chrono::milliseconds(0), kMaxValidity);
  principal.set_issued_at_ms(UnixMillis(now));
  principal.set_expires_at_ms(UnixMillis(now + validity));
  principal.set_method(method);
  Encoded out;
  out.principal = Base64UrlEncode(principal.SerializeAsString());
  out.mac = Base64UrlEncode(HmacSha256(secret_, MacInput(out.principal, request_id)));
  return out;
}

void PrincipalCodec::Attach(grpc::ClientContext* ctx, const Principal& principal,
                            const std::string& request_id, const std::string& method) const {
  auto now = std::chrono::system_clock::now();
  auto validity = kMaxValidity;
  if (ctx->deadline() != std::chrono::system_clock::time_point::max()) {
    validity = std::min(
        validity, std::chrono::duration_cast<std::chrono::milliseconds>(ctx->deadline() - now));
  }
  Encoded e = Encode(principal, request_id, method, now, validity);
  ctx->AddMetadata(kPrincipalHeader, e.principal);
  ctx->AddMetadata(kPrincipalMacHeader, e.mac);
  if (!request_id.empty()) ctx->AddMetadata("x-request-id", request_id);
}

absl::StatusOr<Principal> PrincipalCodec::Verify(const std::string& principal,
                                                 const std::string& mac,
                                                 const std::string& request_id,
                                                 const std::string& method,
                                                 std::chrono::system_clock::time_point now) const {
  auto invalid = [] {
    return Refused("PRINCIPAL_MAC_INVALID", "the caller's identity is not signed by the gateway");
  };
  if (principal.empty() || principal.size() > 8192 || mac.empty()) return invalid();
  std::string expected = Base64UrlEncode(HmacSha256(secret_, MacInput(principal, request_id)));
  if (!ConstantTimeEquals(expected, mac)) return invalid();
  auto bytes = Base64UrlDecode(principal);
  Principal out;
  if (!bytes || !out.ParseFromString(*bytes) || out.kind() == Principal::KIND_UNSPECIFIED) {
    return invalid();
  }
  if (out.method() != method) {
    return Refused("PRINCIPAL_WRONG_METHOD", "the caller's identity was signed for another method");
  }
  const int64_t now_ms = UnixMillis(now);
  const int64_t skew = kClockSkew.count();
  if (now_ms + skew < out.issued_at_ms() || now_ms - skew > out.expires_at_ms() ||
      out.expires_at_ms() - out.issued_at_ms() > kMaxValidity.count()) {
    return Refused("PRINCIPAL_EXPIRED",
                   "the caller's identity has expired (or the clocks of the two hosts disagree "
                   "by more than 30 s)");
  }
  return out;
}

}  // namespace submarine::auth
