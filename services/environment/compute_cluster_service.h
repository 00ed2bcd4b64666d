#pragma once
// gRPC adapter of ComputeClusterService: translates protos and statuses around
// ComputeClusterManager and never throws.

#include "services/environment/compute_cluster_manager.h"
#include "submarine/environment/v1/compute_cluster.grpc.pb.h"

namespace submarine::environment {

class ComputeClusterServiceImpl final : public v1::ComputeClusterService::Service {
 public:
  explicit ComputeClusterServiceImpl(ComputeClusterManager* manager) : manager_(manager) {}

  grpc::Status GetComputeCluster(grpc::ServerContext* ctx, const v1::GetComputeClusterRequest* req,
                                 v1::ComputeCluster* resp) override;
  grpc::Status ListComputeClusters(grpc::ServerContext* ctx,
                                   const v1::ListComputeClustersRequest* req,
                                   v1::ListComputeClustersResponse* resp) override;
  grpc::Status CreateComputeCluster(grpc::ServerContext* ctx,
                                    const v1::CreateComputeClusterRequest* req,
                                    v1::ComputeCluster* resp) override;
  grpc::Status UpdateComputeCluster(grpc::ServerContext* ctx,
                                    const v1::UpdateComputeClusterRequest* req,
                                    v1::ComputeCluster* resp) override;
  grpc::Status DeleteComputeCluster(grpc::ServerContext* ctx,
                                    const v1::DeleteComputeClusterRequest* req,
                                    v1::DeleteComputeClusterResponse* resp) override;

 private:
  ComputeClusterManager* manager_;
};

}  // namespace submarine::environment
