#pragma once
// AuditManager answers ListAuditEvents: platform admins only (a service acting for itself
// included; PERMISSION_DENIED for everyone else; the caller is resolved by ResolveCaller,
// access_evaluator.h, from the users table, never from the principal's admin flag), filters by
// principal, by resource
// (the resource itself and its children: "projects/p" matches "projects/p/environments/e" but
// not "projects/pq"), and by time range [start_time, end_time); newest first; keyset pages.
// Every bad input names its field. Thread-safe (stateless apart from the pool).

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "common/rpc/call_context.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::permission {

class AuditManager {
 public:
  // `pool` must outlive the manager; its connections must have AuditStore::Prepare run.
  explicit AuditManager(db::ConnectionPool* pool) : pool_(pool) {}

  absl::StatusOr<v1::ListAuditEventsResponse> List(const v1::ListAuditEventsRequest& request,
                                                   const rpc::CallInfo& call);

 private:
  db::ConnectionPool* pool_;
};

}  // namespace submarine::permission
