#include "services/permission/audit_service.h"

#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::permission {

grpc::Status AuditServiceImpl::ListAuditEvents(grpc::ServerContext* ctx,
                                               const v1::ListAuditEventsRequest* req,
                                               v1::ListAuditEventsResponse* resp) {
  return rpc::HandleCall(*ctx, "permission.submarine.io", [&](const rpc::CallInfo& scope) {
    return rpc::Fill(manager_.List(*req, scope), resp);
  });
}

}  // namespace submarine::permission
