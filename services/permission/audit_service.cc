#include "services/permission/audit_service.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"

namespace submarine::permission {

grpc::Status AuditServiceImpl::ListAuditEvents(grpc::ServerContext* ctx,
                                               const v1::ListAuditEventsRequest* req,
                                               v1::ListAuditEventsResponse* resp) {
  constexpr char kDomain[] = "permission.submarine.io";
  rpc::CallScope scope(*ctx);
  try {
    auto result = manager_.List(*req, scope);
    if (result.ok()) *resp = *std::move(result);
    return ToGrpcStatus(result.status(), kDomain);
  } catch (const std::exception& e) {
    return ToGrpcStatus(Internal(absl::StrCat("unexpected error: ", e.what())), kDomain);
  }
}

}  // namespace submarine::permission
