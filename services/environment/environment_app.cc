#include "services/environment/environment_app.h"

#include "services/environment/compute_cluster_manager.h"
#include "services/environment/compute_cluster_service.h"
#include "services/environment/compute_cluster_store.h"
#include "services/environment/environment_manager.h"
#include "services/environment/environment_service.h"
#include "services/environment/environment_store.h"

namespace submarine::environment {

rpc::ServiceSpec Spec() {
  rpc::ServiceSpec spec;
  spec.name = "environment";
  spec.error_domain = kErrorDomain;
  spec.topic_prefix = "submarine.environment.v1.";
  spec.migrations = {{"environment", EnvironmentMigrations()}};
  spec.statements = {&EnvironmentStore::Statements(), &ComputeClusterStore::Statements()};
  return spec;
}

absl::Status Build(rpc::ServiceHost& host,
                   const submarine::config::v1::EnvironmentServiceConfig& config) {
  auto* manager = host.Make<EnvironmentManager>(&host.pool(), &host.authorizer(),
                                                &host.idempotency(), host.clock(), host.ids());
  if (!config.has_seed_builtin() || config.seed_builtin()) {
    SUBMARINE_RETURN_IF_ERROR(manager->SeedBuiltins());
  }
  host.Serve<EnvironmentServiceImpl>(manager);
  host.Serve<SubmarineEnvironmentApiImpl>(manager);
  auto* clusters = host.Make<ComputeClusterManager>(&host.pool(), &host.authorizer(),
                                                    &host.idempotency(), host.clock(), host.ids());
  SUBMARINE_RETURN_IF_ERROR(clusters->SeedLocal());
  host.Serve<ComputeClusterServiceImpl>(clusters);
  host.CountInProject("environments", &EnvironmentStore::CountInProject);
  return absl::OkStatus();
}

}  // namespace submarine::environment
