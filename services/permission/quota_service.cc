#include "services/permission/quota_service.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

constexpr char kDomain[] = "permission.submarine.io";

using rpc::Fill;

}  // namespace

QuotaServiceImpl::QuotaServiceImpl(db::ConnectionPool* pool,
                                   const api::Idempotency* idempotency,
                                   const submarine::config::v1::PermissionServiceConfig& config,
                                   const Clock& clock, IdGenerator& ids)
    : manager_(pool, idempotency, config, clock, ids) {}

absl::StatusOr<int64_t> QuotaServiceImpl::ReclaimExpired() { return manager_.ReclaimExpired(); }

grpc::Status QuotaServiceImpl::SetQuota(grpc::ServerContext* ctx, const v1::SetQuotaRequest* req,
                                        v1::Usage* resp) {
  return rpc::HandleCall(*ctx, kDomain, [&](const rpc::CallInfo& s) {
    return Fill(manager_.SetQuota(*req, s), resp);
  });
}

grpc::Status QuotaServiceImpl::GetUsage(grpc::ServerContext* ctx, const v1::GetUsageRequest* req,
                                        v1::Usage* resp) {
  return rpc::HandleCall(*ctx, kDomain, [&](const rpc::CallInfo& s) {
    return Fill(manager_.GetUsage(*req, s), resp);
  });
}

grpc::Status QuotaServiceImpl::AcquireLease(grpc::ServerContext* ctx,
                                            const v1::AcquireLeaseRequest* req, v1::Lease* resp) {
  return rpc::HandleCall(*ctx, kDomain, [&](const rpc::CallInfo& s) {
    return Fill(manager_.AcquireLease(*req, s), resp);
  });
}

grpc::Status QuotaServiceImpl::HeartbeatLease(grpc::ServerContext* ctx,
                                              const v1::HeartbeatLeaseRequest* req,
                                              v1::Lease* resp) {
  return rpc::HandleCall(*ctx, kDomain, [&](const rpc::CallInfo& s) {
    return Fill(manager_.HeartbeatLease(*req, s), resp);
  });
}

grpc::Status QuotaServiceImpl::ReleaseLease(grpc::ServerContext* ctx,
                                            const v1::ReleaseLeaseRequest* req,
                                            v1::ReleaseLeaseResponse*) {
  return rpc::HandleCall(*ctx, kDomain,
                         [&](const rpc::CallInfo& s) { return manager_.ReleaseLease(*req, s); });
}

grpc::Status QuotaServiceImpl::ListLeases(grpc::ServerContext* ctx,
                                          const v1::ListLeasesRequest* req,
                                          v1::ListLeasesResponse* resp) {
  return rpc::HandleCall(*ctx, kDomain, [&](const rpc::CallInfo& s) {
    return Fill(manager_.ListLeases(*req, s), resp);
  });
}

}  // namespace submarine::permission
