#pragma once
// Starts a real permission-service process on a fresh database of the run's throwaway
// PostgreSQL, with a temp data dir (signing key, master key, admin password file), a fresh
// internal (gateway) secret and a cheap Argon2id cost, and gives tests stubs for every permission
// service plus client contexts carrying a principal signed with that secret. Reusable by any
// test that needs a permission service (gateway, authz, quota): link `permission_test_fixture`
// and depend on the `submarine-permission` target.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/auth/principal.h"
#include "submarine/common/v1/events.grpc.pb.h"
#include "submarine/permission/v1/permission.grpc.pb.h"
#include "submarine/permission/v1/submarine_v1.grpc.pb.h"
#include "tests/support/grpc_errors.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::testing {

struct PermissionProcess {
  std::string dir;     // data dir: config, keys, admin.password, log
  std::string dbname;  // database on the test cluster (schema "permission")
  ChildProcess process;
  ReadyInfo ready;  // ready.grpc is the service address
  // The internal secret (content of secret_file) and a codec signing principals with it.
  std::string secret;
  std::string secret_file;
  std::shared_ptr<auth::PrincipalCodec> codec;

  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<submarine::permission::v1::IdentityService::Stub> identity;
  std::unique_ptr<submarine::permission::v1::AccessService::Stub> access;
  std::unique_ptr<submarine::permission::v1::QuotaService::Stub> quota;
  std::unique_ptr<submarine::permission::v1::CredentialService::Stub> credentials;
  std::unique_ptr<submarine::permission::v1::AuditService::Stub> audit;
  std::unique_ptr<submarine::permission::v1::SubmarineAuthApi::Stub> submarine;
  std::unique_ptr<submarine::common::v1::EventLog::Stub> events;

  // Paths of the files the service manages in `dir`.
  std::string admin_password_file() const { return dir + "/admin.password"; }
  std::string signing_key_file() const { return dir + "/signing.key"; }
  std::string master_key_file() const { return dir + "/master.key"; }
  std::string config_file() const { return dir + "/permission.yaml"; }

  // The bootstrap password of "admin" (empty if the file is missing).
  std::string AdminPassword() const;

  // A context (20 s deadline, x-request-id = request_id or a fresh one) with no principal.
  std::unique_ptr<grpc::ClientContext> Anonymous(const std::string& request_id = "") const;
  // ... carrying Principal{kind USER, user} (what the gateway sends after verifying a token).
  // `token_id` becomes the principal's token_id (the jti of the token used).
  std::unique_ptr<grpc::ClientContext> AsUser(const std::string& user,
                                              const std::string& token_id = "",
                                              const std::string& request_id = "") const;
  // "admin", the bootstrap platform administrator.
  std::unique_ptr<grpc::ClientContext> AsAdmin() const { return AsUser("admin"); }
  // ... carrying Principal{kind SERVICE, service, user = on_behalf_of}.
  std::unique_ptr<grpc::ClientContext> AsService(const std::string& service = "test",
                                                 const std::string& on_behalf_of = "",
                                                 const std::string& request_id = "") const;
  // ... carrying an arbitrary principal, signed with the right secret.
  std::unique_ptr<grpc::ClientContext> WithPrincipal(
      const submarine::common::v1::Principal& principal, const std::string& request_id = "") const;

  // IdentityService.Login.
  absl::StatusOr<submarine::permission::v1::LoginResponse> Login(const std::string& username,
                                                                 const std::string& password) const;
  // Creates a user as admin (password must be 12+ bytes).
  absl::StatusOr<submarine::permission::v1::User> CreateUser(const std::string& username,
                                                             const std::string& password,
                                                             bool admin = false) const;
  // Every event of the service's own stream sequenced so far (the relay sequences events
  // shortly after their commit).
  std::vector<submarine::common::v1::Event> Events() const;
  // Waits (up to 20 s) until an event with topic `topic` (e.g.
  // "submarine.permission.v1.TokenRevoked") about `resource` is sequenced.
  bool WaitForEvent(const std::string& topic, const std::string& resource) const;

  // Creates a team as `owner` (who becomes its OWNER) and adds `members` as MEMBER.
  absl::Status CreateTeam(const std::string& team_id, const std::string& owner,
                          const std::vector<std::string>& members = {}) const;
  // Creates a project as `creator`; owner "" = the creator.
  absl::Status CreateProject(const std::string& project_id, const std::string& creator,
                             const std::string& owner = "") const;
};

// Config YAML (blocks server, database, top-level keys, then events last so `extra_yaml` can add
// events keys indented by two spaces, or top-level keys at column 0).
std::string PermissionConfig(const PermissionProcess& p, const std::string& bus = "");

// Starts the service. `dbname`/`dir` empty → fresh ones (reuse both to restart on the same data);
// `bus` is an eventbus frontend ("" = do not publish).
absl::StatusOr<std::unique_ptr<PermissionProcess>> StartPermission(
    const std::string& dbname = "", const std::string& dir = "", const std::string& extra_yaml = "",
    const std::string& bus = "");

}  // namespace submarine::testing
