#pragma once
// The verified caller as it travels between Submarine processes (proto
// submarine.common.v1.Principal). The gateway, after verifying a token, and services calling
// other services, attach two metadata entries:
//   x-submarine-principal      base64url(serialized Principal)
//   x-submarine-principal-mac  base64url(HMAC-SHA-256(secret, "v1\n" + principal + "\n" + request_id))
// where the secret is the shared internal secret (server.gateway_secret_file). A receiver trusts
// the principal only if the MAC verifies under its own copy of the secret, so a header forged by
// a client that reaches a service directly is refused.

#include <grpcpp/client_context.h>

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

class PrincipalCodec {
 public:
  explicit PrincipalCodec(std::string secret);

  struct Encoded {
    std::string principal;  // header value
    std::string mac;        // header value
  };
  Encoded Encode(const submarine::common::v1::Principal& principal,
                 const std::string& request_id) const;
  // Adds both headers (and x-request-id if not empty) to an outgoing call.
  void Attach(grpc::ClientContext* ctx, const submarine::common::v1::Principal& principal,
              const std::string& request_id) const;
  // UNAUTHENTICATED (reason PRINCIPAL_MAC_INVALID) unless `mac` is right; INVALID principal
  // bytes are UNAUTHENTICATED too.
  absl::StatusOr<submarine::common::v1::Principal> Verify(const std::string& principal,
                                                          const std::string& mac,
                                                          const std::string& request_id) const;

 private:
  std::string secret_;
};

}  // namespace submarine::auth
