#pragma once
// QuotaManager decides everything about quotas and leases: validation (every error names its
// field), who may use whose quota, effective limits (explicit, else the configured default,
// else unlimited), the atomic all-or-nothing AcquireLease and the LeaseChanged events (written to
// the outbox in the same transaction as the change). The gRPC adapter (quota_service.h) only
// translates. Thread-safe (stateless apart from the pool).
//
// Who may act on the quota of an owner: for "users/u" the user u, for "teams/t" a member of t,
// each directly or through a service acting for them, and platform admins — a service acting for
// itself included (the caller is resolved by ResolveCaller, access_evaluator.h: admin flags and
// memberships come from the database, never from the principal; an unknown or disabled user is
// UNAUTHENTICATED). Authorization is decided before existence: a stranger gets
// PERMISSION_DENIED whether or not the owner exists.
//
// Lease lifecycle: a lease counts while expire_time is in the future (by the injected clock);
// HeartbeatLease moves expire_time to now + ttl as long as it has not passed; once it has, the
// lease never comes back (FAILED_PRECONDITION LEASE_EXPIRED until ReclaimExpired deletes it,
// NOT_FOUND afterwards). ReleaseLease deletes the lease; releasing it again is NOT_FOUND.

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "common/util/clock.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class QuotaManager {
 public:
  // Lease time-to-live bounds and default, in seconds.
  static constexpr int32_t kMinTtlSeconds = 5;
  static constexpr int32_t kMaxTtlSeconds = 3600;
  static constexpr int32_t kDefaultTtlSeconds = 60;

  // `pool` must outlive the manager; its connections must have QuotaStore::Prepare run. Only the
  // default quotas are read from `config`.
  QuotaManager(db::ConnectionPool* pool, const api::Idempotency* idempotency,
               const submarine::config::v1::PermissionServiceConfig& config, const Clock& clock,
               IdGenerator& ids);

  // Admins only. Returns the owner's usage under the new limits. NOT_FOUND for an unknown owner.
  absl::StatusOr<v1::Usage> SetQuota(const v1::SetQuotaRequest& request, const rpc::CallInfo& call);
  absl::StatusOr<v1::Usage> GetUsage(const v1::GetUsageRequest& request, const rpc::CallInfo& call);
  // All or nothing: RESOURCE_EXHAUSTED (reason QUOTA_EXCEEDED) names every missing resource in
  // the message and in ErrorInfo metadata ("<resource>Requested", "<resource>Used",
  // "<resource>Limit", and "resources": the comma-separated field names).
  absl::StatusOr<v1::Lease> AcquireLease(const v1::AcquireLeaseRequest& request,
                                         const rpc::CallInfo& call);
  absl::StatusOr<v1::Lease> HeartbeatLease(const v1::HeartbeatLeaseRequest& request,
                                           const rpc::CallInfo& call);
  absl::Status ReleaseLease(const v1::ReleaseLeaseRequest& request, const rpc::CallInfo& call);
  // Active leases of one owner, or (owner empty) every lease the caller may see.
  absl::StatusOr<v1::ListLeasesResponse> ListLeases(const v1::ListLeasesRequest& request,
                                                    const rpc::CallInfo& call);

  // Deletes every lease whose expire_time has passed, publishing LeaseChanged DELETED for each;
  // returns how many. Cleanup only: expired leases already stopped counting.
  absl::StatusOr<int64_t> ReclaimExpired();

 private:
  int64_t NowMicros() const;
  v1::Resources EffectiveLimits(const std::string& owner,
                                const v1::Resources& explicit_limits) const;

  db::ConnectionPool* pool_;
  const api::Idempotency* idempotency_;  // request ids of every mutation
  v1::Resources default_user_quota_;
  v1::Resources default_team_quota_;
  const Clock& clock_;
  IdGenerator& ids_;
};

}  // namespace submarine::permission
