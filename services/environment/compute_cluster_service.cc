#include "services/environment/compute_cluster_service.h"

#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "services/environment/environment_service.h"

namespace submarine::environment {
namespace {

// Runs `body` with the call's CallInfo (rpc::HandleCall), `out` getting its answer.
template <class T, class F>
grpc::Status Answer(grpc::ServerContext* ctx, T* out, F&& body) {
  return rpc::HandleCall(*ctx, kErrorDomain, [&](const rpc::CallInfo& call) -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(*out, body(call));
    return absl::OkStatus();
  });
}

}  // namespace

grpc::Status ComputeClusterServiceImpl::GetComputeCluster(grpc::ServerContext* ctx,
                                                          const v1::GetComputeClusterRequest* req,
                                                          v1::ComputeCluster* resp) {
  return Answer(ctx, resp,
                [&](const rpc::CallInfo& call) { return manager_->Get(req->name(), call); });
}

grpc::Status ComputeClusterServiceImpl::ListComputeClusters(
    grpc::ServerContext* ctx, const v1::ListComputeClustersRequest* req,
    v1::ListComputeClustersResponse* resp) {
  return Answer(ctx, resp, [&](const rpc::CallInfo& call) { return manager_->List(*req, call); });
}

grpc::Status ComputeClusterServiceImpl::CreateComputeCluster(
    grpc::ServerContext* ctx, const v1::CreateComputeClusterRequest* req,
    v1::ComputeCluster* resp) {
  return Answer(ctx, resp, [&](const rpc::CallInfo& call) { return manager_->Create(*req, call); });
}

grpc::Status ComputeClusterServiceImpl::UpdateComputeCluster(
    grpc::ServerContext* ctx, const v1::UpdateComputeClusterRequest* req,
    v1::ComputeCluster* resp) {
  return Answer(ctx, resp, [&](const rpc::CallInfo& call) { return manager_->Update(*req, call); });
}

grpc::Status ComputeClusterServiceImpl::DeleteComputeCluster(
    grpc::ServerContext* ctx, const v1::DeleteComputeClusterRequest* req,
    v1::DeleteComputeClusterResponse* resp) {
  return Answer(ctx, resp->mutable_compute_cluster(),
                [&](const rpc::CallInfo& call) { return manager_->Delete(*req, call); });
}

}  // namespace submarine::environment
