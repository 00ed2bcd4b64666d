#pragma once
// AccessManager: project role bindings, per-resource grants and permission checks. Who may do
// what is decided from the database (access_evaluator.h): bindings need ADMIN on the project,
// grants ADMIN on the resource, and a caller without access gets PERMISSION_DENIED whether or
// not the project exists. Each change writes an AccessChanged event in its transaction, so
// permission caches elsewhere drop stale answers. Thread-safe.

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/access_evaluator.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class AccessManager {
 public:
  // `pool` must outlive the manager; its connections must have PermissionStore::Prepare run.
  AccessManager(db::ConnectionPool* pool, const api::Idempotency* idempotency, const Clock& clock,
                IdGenerator& ids)
      : pool_(pool), idempotency_(idempotency), clock_(clock), ids_(ids) {}

  absl::StatusOr<v1::RoleBinding> CreateRoleBinding(const v1::CreateRoleBindingRequest& request,
                                                    const CallInfo& call);
  absl::StatusOr<v1::ListRoleBindingsResponse> ListRoleBindings(
      const v1::ListRoleBindingsRequest& request, const CallInfo& call);
  absl::Status DeleteRoleBinding(const v1::DeleteRoleBindingRequest& request,
                                 const CallInfo& call);

  absl::StatusOr<v1::Grant> CreateGrant(const v1::CreateGrantRequest& request,
                                        const CallInfo& call);
  absl::StatusOr<v1::ListGrantsResponse> ListGrants(const v1::ListGrantsRequest& request,
                                                    const CallInfo& call);
  absl::Status DeleteGrant(const v1::DeleteGrantRequest& request, const CallInfo& call);

  // Asking about another subject needs a SERVICE caller or an admin (PERMISSION_DENIED).
  absl::StatusOr<v1::CheckPermissionResponse> CheckPermission(
      const v1::CheckPermissionRequest& request, const CallInfo& call);
  // At most 1000 checks, answered with a fixed number of queries.
  absl::StatusOr<v1::BatchCheckPermissionsResponse> BatchCheckPermissions(
      const v1::BatchCheckPermissionsRequest& request, const CallInfo& call);
  absl::StatusOr<v1::ListAccessibleResponse> ListAccessible(
      const v1::ListAccessibleRequest& request, const CallInfo& call);

 private:
  int64_t NowMicros() const;
  // Answers `checks` (field names prefixed "checks[i]." unless `single`).
  absl::Status Answer(const google::protobuf::RepeatedPtrField<v1::CheckPermissionRequest>& checks,
                      bool single, const CallInfo& call, v1::BatchCheckPermissionsResponse* resp);

  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  const Clock& clock_;
  IdGenerator& ids_;
};

}  // namespace submarine::permission
