#pragma once
// What a handler knows about its call, and the one place that decides whether a call may reach a
// handler at all.
//
// Every gRPC server of Submarine runs the call interceptor (InstallCallInterceptor; the
// ServerRunner does it). When a call's metadata arrives, Admit() decides from the metadata and
// the called method's proto options (submarine.common.v1.auth_exempt, internal_only):
//   * principal headers that do not verify (common/auth/principal.h: wrong MAC, another method,
//     expired) → UNAUTHENTICATED, on every method, exempt ones included: a forgery is never
//     ignored;
//   * an internal_only method called by anything but a SERVICE principal → UNAUTHENTICATED for an
//     anonymous caller (unless the process allows anonymous calls, below), PERMISSION_DENIED
//     (reason INTERNAL_ONLY) for a USER;
//   * any other method of a submarine.* service without a verified principal → UNAUTHENTICATED,
//     unless it is auth_exempt or the process allows anonymous calls (a service run alone with
//     permission.insecure_no_authorization);
//   * methods outside submarine.* (grpc.health.v1, reflection) are open.
// The decision, with the call's CallInfo, is kept for the call; HandleCall() answers a refused
// call with its status without running the handler, so no handler re-checks any of this by hand.
// (gRPC's C++ server interceptors cannot end a call themselves, hence the split.) Should a
// handler ever answer OK to a refused call without HandleCall, the interceptor replaces the
// answer with the refusal and logs an error.
//
// The request id is the caller's x-request-id when it is acceptable (AcceptableRequestId, the
// same rule the gateway applies), else a fresh UUID: junk never reaches a log line or an event.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <exception>
#include <map>
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

// Who asked, for which request, until when: what every domain method takes (no domain class
// takes a gRPC ServerContext).
struct CallInfo {
  std::string request_id;
  // The verified caller; kind KIND_UNSPECIFIED when anonymous (exempt methods, or a process that
  // allows anonymous calls).
  submarine::common::v1::Principal principal;
  // "users/{u}", "services/{s}", or "" when anonymous: what events record as the actor.
  std::string subject;
  std::chrono::system_clock::time_point deadline = std::chrono::system_clock::time_point::max();
  // The full gRPC method, "/package.Service/Method" ("" for work that is not a call).
  std::string method;

  bool anonymous() const {
    return principal.kind() == submarine::common::v1::Principal::KIND_UNSPECIFIED;
  }
  bool is_service() const { return principal.kind() == submarine::common::v1::Principal::SERVICE; }
  // The user the call acts for: a USER caller, or the user a SERVICE acts on behalf of; "" for
  // an anonymous caller or a service acting for itself.
  const std::string& user() const { return principal.user(); }

  // This process acting on its own behalf (housekeeping, applying events): a SERVICE principal.
  static CallInfo System(const std::string& service, std::string request_id = "");
};

// Installs (or, with nullptr, removes) the codec every admission of this process verifies
// principals with. Thread-safe; normally called once at start-up by the ServerRunner.
void SetPrincipalCodec(std::shared_ptr<const auth::PrincipalCodec> codec);
// The installed codec, or nullptr (for clients in the same process that call other services).
std::shared_ptr<const auth::PrincipalCodec> GetPrincipalCodec();

// Whether methods that need authentication admit anonymous callers in this process (default
// false). Only a service run alone without authorization sets it.
void SetAnonymousCallsAllowed(bool allowed);

// Client-chosen request ids are kept when short (≤ 128) and made of [A-Za-z0-9._:-].
bool AcceptableRequestId(std::string_view id);

// Value of a client metadata key, empty if absent.
std::string Metadata(const grpc::ServerContextBase& ctx, const std::string& key);

// The decision about one call.
struct Admission {
  CallInfo call;
  absl::Status status;  // OK: the handler runs; otherwise the answer
};

// Decides about a call of `method` ("/package.Service/Method") carrying `metadata`, as the header
// comment says. `now` is when the call arrived.
Admission Admit(const std::string& method,
                const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                std::chrono::system_clock::time_point deadline,
                std::chrono::system_clock::time_point now);

// Adds the call interceptor (admission, x-request-id echo, access log, Prometheus metrics
// grpc_server_handled_total{method,code} / grpc_server_handling_seconds{method}) to a server
// being built. `enforce` false observes only (the gateway's proxy, which authenticates with
// tokens instead).
void InstallCallInterceptor(grpc::ServerBuilder& builder, bool enforce = true);

// The admission of the call `ctx` belongs to (nullptr when the server was built without the
// interceptor).
std::shared_ptr<const Admission> AdmissionOf(const grpc::ServerContextBase& ctx);

// Reports an exception that escaped a handler (logged with its type only: its text could quote
// request bytes, and requests may carry secrets) and returns the INTERNAL answer for it.
absl::Status EscapedException(const std::exception& e);

// The answer to a call whose server lacks the interceptor: refused, INTERNAL (fail closed).
absl::Status NoAdmission();

// Runs a handler's `body(call)` for an admitted call, with its request id bound to the thread; a
// refused call gets its refusal without running `body`. The Status `body` returns, or INTERNAL
// for an exception that escaped it, becomes the gRPC answer with ErrorInfo domain `domain`.
template <class F>
grpc::Status HandleCall(const grpc::ServerContextBase& ctx, const char* domain, F&& body) {
  std::shared_ptr<const Admission> admission = AdmissionOf(ctx);
  if (admission == nullptr) return ToGrpcStatus(NoAdmission(), domain);
  if (!admission->status.ok()) return ToGrpcStatus(admission->status, domain);
  log::ScopedRequestId bind(admission->call.request_id);
  absl::Status status;
  try {
    status = body(admission->call);
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
