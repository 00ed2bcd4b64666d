#pragma once
// The gateway's authentication filter, shared by the REST side and the gRPC proxy.
//
// Which calls need a token is decided by the called method's proto options only, never by a
// client header: a method with (submarine.common.v1.auth_exempt) is served without one, every
// other method needs "Bearer <jwt>"; a method with (submarine.common.v1.internal_only) is never
// routed at all. With authentication off (auth.insecure_no_authorization) nothing is checked and
// no principal is attached. Thread-safe.

#include <google/protobuf/descriptor.h>
#include <grpcpp/client_context.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "common/util/clock.h"
#include "gateway/auth_state.h"
#include "submarine/common/v1/principal.pb.h"

namespace submarine::gateway {

bool IsAuthExempt(const google::protobuf::MethodDescriptor* method);
bool IsInternalOnly(const google::protobuf::MethodDescriptor* method);
// A token scoped to a project (Principal.scope, e.g. a workload's identity) may call every
// service but the permission service's (only IdentityService.GetCurrentUser there):
// PERMISSION_DENIED (reason TOKEN_SCOPE) otherwise. The services check resources against the
// scope themselves (authz::Authorizer).
absl::Status CheckScope(const google::protobuf::MethodDescriptor* method,
                        const submarine::common::v1::Principal& principal);

class AuthFilter {
 public:
  // Authentication off: every call passes anonymously.
  AuthFilter() = default;
  // The current token state; nullptr while it has not been loaded.
  using StateSource = std::function<std::shared_ptr<const AuthSnapshot>()>;
  // Authentication on. `clock` is not owned and must outlive the filter.
  AuthFilter(StateSource state, std::shared_ptr<const auth::PrincipalCodec> codec,
             const Clock* clock)
      : state_(std::move(state)), codec_(std::move(codec)), clock_(clock) {}

  bool enabled() const { return static_cast<bool>(state_); }

  // The principal to send with a call of `method` carrying `authorization` (the Authorization
  // header / "authorization" metadata, empty when absent): nullopt when authentication is off or
  // the method is exempt; the verified principal otherwise. UNAUTHENTICATED as
  // AuthSnapshot::Authenticate says; PERMISSION_DENIED as CheckScope says; UNAVAILABLE (reason
  // AUTH_STATE_UNAVAILABLE) while the token state has not been loaded yet.
  absl::StatusOr<std::optional<submarine::common::v1::Principal>> Authenticate(
      const google::protobuf::MethodDescriptor* method, std::string_view authorization) const;

  // The verified caller behind `authorization`, for public endpoints that show more to some
  // callers (the /readyz detail is for platform admins): nullopt when authentication is off, the
  // token state is not loaded, or the credentials are absent or fail any check. Counts nothing
  // in gateway_auth_failures_total: an anonymous probe of a public endpoint is not a failure.
  std::optional<submarine::common::v1::Principal> Identify(std::string_view authorization) const;

  // Adds x-request-id and, for a principal, x-submarine-principal + its MAC to a backend call of
  // `method` ("/package.Service/Method"). Set the call's deadline first: the signed principal
  // expires with it.
  void Attach(grpc::ClientContext* ctx,
              const std::optional<submarine::common::v1::Principal>& principal,
              const std::string& request_id, const std::string& method) const;

 private:
  int64_t NowUnix() const;

  StateSource state_;
  std::shared_ptr<const auth::PrincipalCodec> codec_;
  const Clock* clock_ = nullptr;
};

}  // namespace submarine::gateway
