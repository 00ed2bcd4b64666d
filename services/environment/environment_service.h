#pragma once
// gRPC adapters of the environment service: EnvironmentService (the AIP face) and
// SubmarineEnvironmentApi (the Apache Submarine 0.8 compatible face, /api/v1/environment). They
// translate protos and statuses around EnvironmentManager and never throw.

#include "services/environment/environment_manager.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "submarine/environment/v1/submarine_v1.grpc.pb.h"

namespace submarine::environment {

inline constexpr char kErrorDomain[] = "environment.submarine.io";

class EnvironmentServiceImpl final : public v1::EnvironmentService::Service {
 public:
  explicit EnvironmentServiceImpl(EnvironmentManager* manager) : manager_(manager) {}

  grpc::Status GetEnvironment(grpc::ServerContext* ctx, const v1::GetEnvironmentRequest* req,
                              v1::Environment* resp) override;
  grpc::Status ListEnvironments(grpc::ServerContext* ctx, const v1::ListEnvironmentsRequest* req,
                                v1::ListEnvironmentsResponse* resp) override;
  grpc::Status CreateEnvironment(grpc::ServerContext* ctx,
                                 const v1::CreateEnvironmentRequest* req,
                                 v1::Environment* resp) override;
  grpc::Status UpdateEnvironment(grpc::ServerContext* ctx,
                                 const v1::UpdateEnvironmentRequest* req,
                                 v1::Environment* resp) override;
  grpc::Status DeleteEnvironment(grpc::ServerContext* ctx,
                                 const v1::DeleteEnvironmentRequest* req,
                                 v1::DeleteEnvironmentResponse* resp) override;

 private:
  EnvironmentManager* manager_;
};

// Errors follow Apache Submarine: 400 "Invalid environment spec." for a missing or invalid
// spec, 400 "Unable to process the environment spec." for a duplicate name, 404 "Environment
// not found."; the gateway renders them in the JsonResponse envelope.
class SubmarineEnvironmentApiImpl final : public v1::SubmarineEnvironmentApi::Service {
 public:
  explicit SubmarineEnvironmentApiImpl(EnvironmentManager* manager) : manager_(manager) {}

  grpc::Status CreateEnvironment(grpc::ServerContext* ctx,
                                 const v1::SubmarineCreateEnvironmentRequest* req,
                                 submarine::common::v1::SubmarineV1Response* resp) override;
  grpc::Status ListEnvironments(grpc::ServerContext* ctx,
                                const v1::SubmarineListEnvironmentsRequest* req,
                                submarine::common::v1::SubmarineV1Response* resp) override;
  grpc::Status GetEnvironment(grpc::ServerContext* ctx,
                              const v1::SubmarineEnvironmentNameRequest* req,
                              submarine::common::v1::SubmarineV1Response* resp) override;
  grpc::Status PatchEnvironment(grpc::ServerContext* ctx,
                                const v1::SubmarinePatchEnvironmentRequest* req,
                                submarine::common::v1::SubmarineV1Response* resp) override;
  grpc::Status DeleteEnvironment(grpc::ServerContext* ctx,
                                 const v1::SubmarineEnvironmentNameRequest* req,
                                 submarine::common::v1::SubmarineV1Response* resp) override;

 private:
  EnvironmentManager* manager_;
};

}  // namespace submarine::environment
