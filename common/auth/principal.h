#pragma once
// The verified caller as it travels between Submarine processes (proto
// submarine.common.v1.Principal). The gateway, after verifying a token, and services calling
// other services, attach two metadata entries:
//   x-submarine-principal      base64url(serialized Principal)
//   x-submarine-principal-mac  base64url(HMAC-SHA-256(secret, "v2\n" + principal + "\n" +
//   request_id))
// where the secret is the shared internal secret (server.gateway_secret_file). The signed
// Principal carries the one gRPC method it was signed for and a validity window
// (issued_at_ms..expires_at_ms, at most kMaxValidity), so a captured pair of headers is refused for
// any other method and after a few minutes. A receiver trusts the principal only if the MAC
// verifies under its own copy of the secret, the method matches the call, and the window (with
// kClockSkew of tolerance between hosts) contains its clock.

#include <grpcpp/client_context.h>

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "submarine/common/v1/principal.pb.h"

namespace submarine::auth {

inline constexpr char kPrincipalHeader[] = "x-submarine-principal";
inline constexpr char kPrincipalMacHeader[] = "x-submarine-principal-mac";

// Reads the internal secret file (ReadSecretFile); INVALID_ARGUMENT naming the file unless it
// holds at least 32 bytes.
absl::StatusOr<std::string> LoadInternalSecret(const std::string& path);

// "users/{user}" for USER, "services/{service}" for SERVICE, "" otherwise.
std::string SubjectOf(const submarine::common::v1::Principal& principal);

// Principal{SERVICE, service, user = on_behalf_of}.
submarine::common::v1::Principal ServicePrincipal(const std::string& service,
                                                  const std::string& on_behalf_of = "");

class PrincipalCodec {
 public:
  // Longest validity of a signed principal, and the clock difference tolerated between hosts.
  static constexpr std::chrono::milliseconds kMaxValidity = std::chrono::minutes(5);
  static constexpr std::chrono::milliseconds kClockSkew = std::chrono::seconds(30);

  explicit PrincipalCodec(std::string secret);

  struct Encoded {
    std::string principal;  // header value
    std::string mac;        // header value
  };
  // Signs `principal` for one call of `method` ("/package.Service/Method") issued at `now` and
  // valid for `validity` (capped at kMaxValidity).
  Encoded Encode(submarine::common::v1::Principal principal, const std::string& request_id,
                 const std::string& method, std::chrono::system_clock::time_point now,
                 std::chrono::milliseconds validity = kMaxValidity) const;
  // Adds both headers (and x-request-id if not empty) to an outgoing call of `method`, valid
  // until the call's deadline (at most kMaxValidity).
  void Attach(grpc::ClientContext* ctx, const submarine::common::v1::Principal& principal,
              const std::string& request_id, const std::string& method) const;
  // The principal when `mac` is right for it and `request_id`, it was signed for `method`, and
  // `now` lies within its validity (± kClockSkew). Otherwise UNAUTHENTICATED with reason
  // PRINCIPAL_MAC_INVALID (wrong MAC, malformed or empty principal), PRINCIPAL_WRONG_METHOD or
  // PRINCIPAL_EXPIRED (also for one issued in the future).
  absl::StatusOr<submarine::common::v1::Principal> Verify(
      const std::string& principal, const std::string& mac, const std::string& request_id,
      const std::string& method, std::chrono::system_clock::time_point now) const;

 private:
  std::string secret_;
};

}  // namespace submarine::auth
