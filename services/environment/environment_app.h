#pragma once
// Everything one environment-service process runs, built from its config: the connection pool
// (after the schema's migrations are applied), the authorizer (permission-service client and its
// event-invalidated cache), the manager, both gRPC faces, the event log, the outbox relay, and
// the ServerRunner that serves them and shuts them down in reverse order.

#include <memory>

#include "absl/status/statusor.h"
#include "common/authz/authorizer.h"
#include "common/db/migrations.h"
#include "common/db/periodic_leader_task.h"
#include "common/db/pool.h"
#include "common/events/event_log_service.h"
#include "common/events/relay.h"
#include "common/rpc/server_runner.h"
#include "services/environment/environment_manager.h"
#include "services/environment/environment_service.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::environment {

// The service's own migrations (services/environment/migrations), embedded at build time.
std::vector<db::Migration> EnvironmentMigrations();

class EnvironmentApp {
 public:
  // Connects (retrying while PostgreSQL starts), migrates, seeds the built-in profiles and wires
  // the services. Does not start serving. INVALID_ARGUMENT unless `permission` names the
  // permission service (with server.gateway_secret_file to call it and to verify callers) or
  // sets insecure_no_authorization.
  static absl::StatusOr<std::unique_ptr<EnvironmentApp>> Create(
      const submarine::config::v1::EnvironmentServiceConfig& config);

  rpc::ServerRunner& runner() { return *runner_; }
  EnvironmentManager& manager() { return *manager_; }

 private:
  EnvironmentApp() = default;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<EnvironmentManager> manager_;
  std::unique_ptr<EnvironmentServiceImpl> service_;
  std::unique_ptr<SubmarineEnvironmentApiImpl> submarine_api_;
  std::unique_ptr<events::EventLogService> event_log_;
  std::unique_ptr<events::OutboxRelay> relay_;
  std::unique_ptr<db::PeriodicLeaderTask> retention_;
  std::unique_ptr<rpc::ServerRunner> runner_;
};

}  // namespace submarine::environment
