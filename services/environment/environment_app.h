#pragma once
// The environment service as the service kit runs it: its spec (name, error domain, events,
// migrations, statements) and the build function that creates its domain objects on the host —
// the manager, both gRPC faces, the project-resource count and the built-in profiles.

#include <vector>

#include "absl/status/status.h"
#include "common/db/migrations.h"
#include "common/rpc/service_host.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::environment {

// The service's own migrations (services/environment/migrations), embedded at build time.
std::vector<db::Migration> EnvironmentMigrations();

rpc::ServiceSpec Spec();

// Seeds the built-in profiles unless config.seed_builtin is false.
absl::Status Build(rpc::ServiceHost& host,
                   const submarine::config::v1::EnvironmentServiceConfig& config);

}  // namespace submarine::environment
