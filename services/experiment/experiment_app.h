#pragma once
// The experiment service as the service kit runs it: its spec and the build function that
// creates the compute backend, the controller (a leader loop), the manager and the gRPC face.

#include <vector>

#include "absl/status/status.h"
#include "common/db/migrations.h"
#include "common/rpc/service_host.h"
#include "submarine/config/v1/experiment_config.pb.h"

namespace submarine::experiment {

// The service's own migrations (services/experiment/migrations), embedded at build time.
std::vector<db::Migration> ExperimentMigrations();

rpc::ServiceSpec Spec();

absl::Status Build(rpc::ServiceHost& host,
                   const submarine::config::v1::ExperimentServiceConfig& config);

}  // namespace submarine::experiment
