#pragma once
// QuotaServiceImpl: the gRPC adapter of quotas and leases (submarine.permission.v1.QuotaService).
// It translates protos and statuses around QuotaManager and never throws. ReclaimExpired() is run
// by the leader's housekeeping task (the app owns the schedule).

#include <memory>

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "common/util/clock.h"
#include "services/permission/quota_manager.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::permission {

class QuotaServiceImpl final : public submarine::permission::v1::QuotaService::Service {
 public:
  // `pool` (connections prepared with QuotaStore::Prepare), `clock` and `ids` must outlive it.
  QuotaServiceImpl(db::ConnectionPool* pool, const api::Idempotency* idempotency,
                   const submarine::config::v1::PermissionServiceConfig& config, const Clock& clock,
                   IdGenerator& ids);

  // Deletes lapsed leases (publishing LeaseChanged DELETED); returns how many.
  absl::StatusOr<int64_t> ReclaimExpired();

  grpc::Status SetQuota(grpc::ServerContext* ctx, const v1::SetQuotaRequest* req,
                        v1::Usage* resp) override;
  grpc::Status GetUsage(grpc::ServerContext* ctx, const v1::GetUsageRequest* req,
                        v1::Usage* resp) override;
  grpc::Status AcquireLease(grpc::ServerContext* ctx, const v1::AcquireLeaseRequest* req,
                            v1::Lease* resp) override;
  grpc::Status HeartbeatLease(grpc::ServerContext* ctx, const v1::HeartbeatLeaseRequest* req,
                              v1::Lease* resp) override;
  grpc::Status ReleaseLease(grpc::ServerContext* ctx, const v1::ReleaseLeaseRequest* req,
                            v1::ReleaseLeaseResponse* resp) override;
  grpc::Status ListLeases(grpc::ServerContext* ctx, const v1::ListLeasesRequest* req,
                          v1::ListLeasesResponse* resp) override;

 private:
  QuotaManager manager_;
};

}  // namespace submarine::permission
