#pragma once
// What a handler knows about its call: the request id (x-request-id as set by the gateway, or
// generated here for a direct caller that sent none), the verified principal and the deadline.
// CallScope binds the request id to the thread so every log line carries it.
//
// The principal (x-submarine-principal + x-submarine-principal-mac, see common/auth/principal.h)
// is trusted only when its MAC verifies under the process' internal secret, installed once by
// the ServerRunner from server.gateway_secret_file. Without a secret, or without the headers, the
// call is anonymous; with headers that do not verify, principal_status() is UNAUTHENTICATED.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "submarine/common/v1/principal.pb.h"

namespace submarine::rpc {

inline constexpr char kRequestIdHeader[] = "x-request-id";
inline constexpr char kPrincipalHeader[] = "x-submarine-principal";
inline constexpr char kPrincipalMacHeader[] = "x-submarine-principal-mac";

// Installs (or, with nullptr, removes) the codec every CallScope of this process verifies
// principals with. Thread-safe; normally called once at start-up.
void SetPrincipalCodec(std::shared_ptr<const auth::PrincipalCodec> codec);
// The installed codec, or nullptr (for clients in the same process that call other services).
std::shared_ptr<const auth::PrincipalCodec> GetPrincipalCodec();

// Client-chosen request ids are kept when short (≤ 128) and made of [A-Za-z0-9._:-]; the gateway
// replaces any other with a fresh one before it reaches a service or a log line.
bool AcceptableRequestId(std::string_view id);

// Value of a client metadata key, empty if absent.
std::string Metadata(const grpc::ServerContextBase& ctx, const std::string& key);

class CallScope {
 public:
  explicit CallScope(const grpc::ServerContextBase& ctx);
  const std::string& request_id() const { return request_id_; }
  // The verified caller; kind KIND_UNSPECIFIED when anonymous.
  const submarine::common::v1::Principal& principal() const { return principal_; }
  // "users/{u}", "services/{s}", or "" when anonymous: what events record as the actor.
  const std::string& subject() const { return subject_; }
  bool authenticated() const {
    return principal_.kind() != submarine::common::v1::Principal::KIND_UNSPECIFIED;
  }
  // OK when anonymous or verified; UNAUTHENTICATED when principal headers came but did not
  // verify (a forgery, or a secret mismatch).
  const absl::Status& principal_status() const { return principal_status_; }
  // OK only for a verified principal; otherwise UNAUTHENTICATED (reason UNAUTHENTICATED or
  // PRINCIPAL_MAC_INVALID).
  absl::Status RequireAuthenticated() const;
  std::chrono::system_clock::time_point deadline() const { return deadline_; }

 private:
  std::string request_id_;
  submarine::common::v1::Principal principal_;
  std::string subject_;
  absl::Status principal_status_;
  std::chrono::system_clock::time_point deadline_;
  log::ScopedRequestId bind_;
};

// Reports an exception that escaped a handler (logged with its type only: its text could quote
// request bytes, and requests may carry secrets) and returns the INTERNAL answer for it.
absl::Status EscapedException(const std::exception& e);

// Runs a handler's `body(scope)` with the call's scope bound; the Status it returns, or INTERNAL
// for an exception that escaped it, becomes the gRPC answer with ErrorInfo domain `domain`.
template <class F>
grpc::Status HandleCall(const grpc::ServerContextBase& ctx, const char* domain, F&& body) {
  CallScope scope(ctx);
  absl::Status status;
  try {
    status = body(scope);
  } catch (const std::exception& e) {
    status = EscapedException(e);
  }
  return ToGrpcStatus(status, domain);
}

// Moves a handler's result into its response message.
template <class T>
absl::Status Fill(absl::StatusOr<T> result, T* response) {
  if (!result.ok()) return result.status();
  *response = *std::move(result);
  return absl::OkStatus();
}

}  // namespace submarine::rpc
