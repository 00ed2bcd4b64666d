#pragma once
// An in-memory stand-in for the permission service's authentication face, for gateway tests:
// IdentityService.GetAuthState answers a token state the test controls (and, like the real
// service, only to a SERVICE principal whose MAC verifies under the internal secret), Login and
// GetCurrentUser answer from what the gateway sent, and SubmarineAuthApi.Login answers the v1
// envelope; AccessService.CheckPermission allows everything a verified service asks (benchmarks
// measure the caller's cache with it). It can refuse or hold GetAuthState to test readiness and
// coalescing. Thread-safe.

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "submarine/permission/v1/permission.grpc.pb.h"
#include "submarine/permission/v1/submarine_v1.grpc.pb.h"

namespace submarine::testing {

class PermissionBackend {
 public:
  explicit PermissionBackend(std::string internal_secret);
  ~PermissionBackend();

  absl::StatusOr<std::string> Start(const std::string& address = "127.0.0.1:0");
  void Stop();

  // The state GetAuthState returns from now on.
  void SetState(submarine::permission::v1::AuthState state);
  submarine::permission::v1::AuthState state() const;
  // While true GetAuthState answers UNAVAILABLE.
  void SetRefusing(bool refusing);
  // While held, GetAuthState calls wait (until released or their deadline).
  void Hold();
  void Release();
  int held_calls() const;

  // GetAuthState calls answered with a state, and calls refused for a bad principal.
  int auth_state_calls() const;
  int rejected_principals() const;
  // The principal of the last GetAuthState call.
  submarine::common::v1::Principal last_caller() const;
  // Principal headers present on the last Login call (exempt: the gateway sends none).
  bool login_had_principal() const;
  // AccessService.CheckPermission answers `allowed` to every question from a verified SERVICE
  // principal (for measuring a service's cached check, not for deciding anything); the count.
  int check_calls() const;

 private:
  class Identity;
  class V1;
  class Access;

  absl::StatusOr<submarine::common::v1::Principal> Verify(grpc::ServerContext* ctx,
                                                          const std::string& method) const;

  auth::PrincipalCodec codec_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  submarine::permission::v1::AuthState state_;
  bool refusing_ = false;
  bool hold_ = false;
  int held_ = 0;
  int calls_ = 0;
  int rejected_ = 0;
  bool login_had_principal_ = false;
  submarine::common::v1::Principal last_caller_;
  std::unique_ptr<Identity> identity_;
  std::unique_ptr<V1> v1_;
  std::unique_ptr<Access> access_;
  int check_calls_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace submarine::testing
