#pragma once
// Everything one permission-service process runs, built from its config: the signing key, the
// connection pool (after the schema's migrations are applied), the first-start bootstrap, the
// managers, every gRPC face (identity, access, Submarine auth, quota, credential, audit, event
// log), the outbox relay, the audit log's subscribers, the leader-only housekeeping, and the
// ServerRunner that serves them and shuts them down in reverse order.

#include <memory>

#include "absl/status/statusor.h"
#include "common/db/migrations.h"
#include "common/db/periodic_leader_task.h"
#include "common/db/pool.h"
#include "common/events/event_log_service.h"
#include "common/events/relay.h"
#include "common/rpc/server_runner.h"
#include "services/permission/access_manager.h"
#include "services/permission/audit_log.h"
#include "services/permission/credential_service.h"
#include "services/permission/identity.h"
#include "services/permission/permission_service.h"
#include "services/permission/quota_service.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::permission {

// The service's migrations (services/permission/migrations), embedded at build time.
std::vector<db::Migration> PermissionMigrations();

class PermissionApp {
 public:
  // Refuses a config without server.gateway_secret_file, signing_key_file or master_key_file
  // (INVALID_ARGUMENT naming the field). Loads or creates the keys, connects (retrying while
  // PostgreSQL starts), migrates, bootstraps an empty installation and wires the services. Does
  // not start serving.
  static absl::StatusOr<std::unique_ptr<PermissionApp>> Create(
      const submarine::config::v1::PermissionServiceConfig& config);

  rpc::ServerRunner& runner() { return *runner_; }
  Identity& identity() { return *identity_; }

 private:
  PermissionApp() = default;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<Identity> identity_;
  std::unique_ptr<AccessManager> access_;
  std::unique_ptr<IdentityServiceImpl> identity_service_;
  std::unique_ptr<AccessServiceImpl> access_service_;
  std::unique_ptr<SubmarineAuthApiImpl> submarine_api_;
  std::unique_ptr<QuotaServiceImpl> quota_service_;
  std::unique_ptr<CredentialServiceImpl> credential_service_;
  std::unique_ptr<AuditLog> audit_;
  std::unique_ptr<events::EventLogService> event_log_;
  std::unique_ptr<events::OutboxRelay> relay_;
  std::unique_ptr<db::PeriodicLeaderTask> housekeeping_;
  std::unique_ptr<rpc::ServerRunner> runner_;
};

}  // namespace submarine::permission
