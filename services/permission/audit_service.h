#pragma once
// AuditServiceImpl: the gRPC adapter of the audit log (submarine.permission.v1.AuditService)
// around AuditManager; never throws.

#include "services/permission/audit_manager.h"
#include "submarine/permission/v1/permission.grpc.pb.h"

namespace submarine::permission {

class AuditServiceImpl final : public submarine::permission::v1::AuditService::Service {
 public:
  // `pool` (connections prepared with AuditStore::Prepare) must outlive it.
  explicit AuditServiceImpl(db::ConnectionPool* pool) : manager_(pool) {}

  grpc::Status ListAuditEvents(grpc::ServerContext* ctx, const v1::ListAuditEventsRequest* req,
                               v1::ListAuditEventsResponse* resp) override;

 private:
  AuditManager manager_;
};

}  // namespace submarine::permission
