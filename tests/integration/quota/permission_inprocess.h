#pragma once
// The permission service's classes (identity, access, quota, credential, audit), run inside the
// test process against a fresh database of the run's throwaway PostgreSQL: the real migrations,
// the real service classes on a real gRPC server at 127.0.0.1:0 behind the real call
// interceptor, a manual clock, and the process-wide principal codec so tests can call as any
// USER or SERVICE principal (or forge one). Identity rows (users, teams, projects) can be seeded
// with SQL, for tests about something else than the identity API; what only a process could
// show (its config, bootstrap, housekeeping) is tested with the real binary instead
// (tests/integration/permission/permission_fixture.h).

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/auth/principal.h"
#include "common/db/pool.h"
#include "common/events/event_log_service.h"
#include "common/events/relay.h"
#include "common/util/clock.h"
#include "google/rpc/error_details.pb.h"
#include "common/events/subscriber.h"
#include "services/permission/access_manager.h"
#include "services/permission/audit_log.h"
#include "services/permission/audit_service.h"
#include "services/permission/credential_service.h"
#include "services/permission/identity.h"
#include "services/permission/permission_service.h"
#include "services/permission/quota_service.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"
#include "tests/support/fake_clock.h"
#include "tests/support/grpc_errors.h"

namespace submarine::permission::testing {

struct InProcessOptions {
  submarine::config::v1::PermissionServiceConfig config;
  std::string master_key = std::string(32, 'k');
  // Also run the outbox relay, EventLog and the event consumers of the service's own stream and
  // config.common.peers (audit log, grant clean-up; needs common.events endpoints).
  bool with_events = false;
  // Use the manual clock (otherwise the real one).
  bool manual_clock = true;
  // Connections: races need enough of them for every racer to be inside its transaction at
  // once, or the pool itself would serialize them and hide a missing lock.
  size_t pool_size = 8;
  // How long a call waits for a connection before UNAVAILABLE.
  std::chrono::milliseconds acquire_timeout{20000};
  // The identity classes' options; the signing key is generated, the Argon2id cost is the
  // cheapest libsodium accepts unless a test sets another.
  IdentityOptions identity = CheapIdentity();

  static IdentityOptions CheapIdentity();
};

class PermissionInProcess {
 public:
  static absl::StatusOr<std::unique_ptr<PermissionInProcess>> Start(InProcessOptions options);
  ~PermissionInProcess();

  // ---- Seeding (SQL on the service's schema).
  // `password` empty: the user cannot log in (no valid hash).
  absl::Status AddUser(const std::string& username, bool admin = false, bool disabled = false,
                       const std::string& password = "");
  absl::Status AddTeam(const std::string& team_id, const std::vector<std::string>& members);
  absl::Status AddProject(const std::string& project_id, const std::string& owner);
  // Runs one statement with text parameters; returns its rows.
  absl::StatusOr<pqxx::result> Query(const std::string& sql,
                                     const std::vector<std::string>& params = {});

  // ---- Calling.
  static submarine::common::v1::Principal User(const std::string& username);
  static submarine::common::v1::Principal Service(const std::string& service,
                                                  const std::string& for_user);
  // A context carrying `principal` (verified by the service) and a request id.
  std::unique_ptr<grpc::ClientContext> As(const submarine::common::v1::Principal& principal,
                                          const std::string& request_id = "") const;
  // A context without any principal.
  static std::unique_ptr<grpc::ClientContext> Anonymous();

  submarine::testing::FakeClock& clock() { return clock_; }
  db::ConnectionPool* pool() { return pool_.get(); }
  const api::Idempotency* idempotency() const { return idempotency_.get(); }
  QuotaServiceImpl& quota_service() { return *quota_; }
  Identity& identity() { return *identity_; }
  const std::string& address() const { return address_; }
  const std::string& conninfo() const { return conninfo_; }
  const auth::PrincipalCodec& codec() const { return *codec_; }

  std::unique_ptr<v1::IdentityService::Stub> identity_stub;
  std::unique_ptr<v1::AccessService::Stub> access;
  std::unique_ptr<v1::QuotaService::Stub> quota;
  std::unique_ptr<v1::CredentialService::Stub> credentials;
  std::unique_ptr<v1::AuditService::Stub> audit;

 private:
  PermissionInProcess() = default;
  submarine::testing::FakeClock clock_;
  std::string dbname_;
  std::string conninfo_;
  std::string address_;
  std::shared_ptr<auth::PrincipalCodec> codec_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<api::Idempotency> idempotency_;
  auth::PasswordCost password_cost_;  // what seeded passwords are hashed with
  std::unique_ptr<Identity> identity_;
  std::unique_ptr<AccessManager> access_manager_;
  std::unique_ptr<IdentityServiceImpl> identity_service_;
  std::unique_ptr<AccessServiceImpl> access_service_;
  std::unique_ptr<QuotaServiceImpl> quota_;
  std::unique_ptr<CredentialServiceImpl> credentials_;
  std::unique_ptr<AuditServiceImpl> audit_;
  std::vector<std::unique_ptr<events::Subscriber>> subscribers_;
  std::unique_ptr<events::EventLogService> event_log_;
  std::unique_ptr<events::OutboxRelay> relay_;
  std::vector<rpc::BackgroundTask*> started_;
  std::unique_ptr<grpc::Server> server_;
};

using submarine::testing::ErrorField;
using submarine::testing::ErrorInfoOf;
using submarine::testing::ErrorReason;

}  // namespace submarine::permission::testing
