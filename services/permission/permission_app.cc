#include "services/permission/permission_app.h"

#include <algorithm>

#include "common/auth/crypto.h"
#include "common/status/status.h"
#include "services/permission/access_manager.h"
#include "services/permission/audit_log.h"
#include "services/permission/audit_service.h"
#include "services/permission/audit_store.h"
#include "services/permission/credential_service.h"
#include "services/permission/credential_store.h"
#include "services/permission/identity.h"
#include "services/permission/permission_service.h"
#include "services/permission/permission_store.h"
#include "services/permission/project_holdings.h"
#include "services/permission/quota_service.h"
#include "services/permission/quota_store.h"

namespace submarine::permission {
namespace {

using submarine::config::v1::PermissionServiceConfig;

absl::StatusOr<IdentityOptions> IdentityOptionsFrom(const PermissionServiceConfig& config) {
  IdentityOptions identity;
  SUBMARINE_ASSIGN_OR_RETURN(identity.sessions.signing_key,
                             auth::LoadOrCreateSigningKey(config.signing_key_file()));
  identity.sessions.issuer = config.issuer().empty() ? "submarine" : config.issuer();
  if (config.access_token_ttl_seconds()) {
    identity.sessions.access_ttl_seconds = config.access_token_ttl_seconds();
  }
  if (config.refresh_token_ttl_seconds()) {
    identity.sessions.refresh_ttl_seconds = config.refresh_token_ttl_seconds();
  }
  if (config.password_ops_limit()) {
    identity.passwords.cost.ops_limit = config.password_ops_limit();
  }
  if (config.password_mem_limit_kib()) {
    identity.passwords.cost.mem_limit = size_t{config.password_mem_limit_kib()} * 1024;
  }
  identity.admin_password_file = config.admin_password_file();
  if (config.login_free_attempts()) {
    identity.login_throttle.free_attempts =
        static_cast<int>(std::min<uint32_t>(config.login_free_attempts(), 1u << 20));
  }
  if (config.login_backoff_base_ms()) {
    identity.login_throttle.base_delay = std::chrono::milliseconds(config.login_backoff_base_ms());
  }
  if (config.login_backoff_max_ms()) {
    identity.login_throttle.max_delay = std::chrono::milliseconds(config.login_backoff_max_ms());
  }
  return identity;
}

}  // namespace

rpc::ServiceSpec Spec() {
  rpc::ServiceSpec spec;
  spec.name = "permission";
  spec.error_domain = kErrorDomain;
  spec.topic_prefix = "submarine.permission.v1.";
  spec.migrations = {{"permission", PermissionMigrations()}};
  spec.statements = {&PermissionStore::Statements(), &QuotaStore::Statements(),
                     &CredentialStore::Statements(), &AuditStore::Statements()};
  spec.authorizes_callers = false;  // it is the authority
  spec.seal_request_answers = true;  // answers hold tokens, requests passwords
  spec.default_housekeeping = std::chrono::seconds(5);  // lapsed leases come back quickly
  return spec;
}

absl::Status Build(rpc::ServiceHost& host, const PermissionServiceConfig& config) {
  if (config.signing_key_file().empty()) return InvalidField("signing_key_file", "is required");
  if (config.master_key_file().empty()) return InvalidField("master_key_file", "is required");
  if (config.admin_password_file().empty()) {
    return InvalidField("admin_password_file", "is required");
  }
  SUBMARINE_ASSIGN_OR_RETURN(IdentityOptions identity_options, IdentityOptionsFrom(config));
  SUBMARINE_ASSIGN_OR_RETURN(std::string master_key,
                             auth::LoadOrCreateKeyFile(config.master_key_file(), 32));
  db::ConnectionPool* pool = &host.pool();

  // A project is deleted only when no other service holds anything in it (fail closed).
  std::vector<submarine::config::v1::PeerService> peers(host.config().peers().begin(),
                                                        host.config().peers().end());
  auto* holdings = host.Make<PeerProjectHoldings>(peers);
  identity_options.project_holdings = [holdings](const std::string& project,
                                                 std::chrono::system_clock::time_point deadline) {
    return holdings->Count(project, deadline);
  };
  SUBMARINE_ASSIGN_OR_RETURN(
      auto identity_owned,
      Identity::Create(pool, &host.idempotency(), std::move(identity_options), host.clock(),
                       host.ids()));
  Identity* identity = host.Own(std::move(identity_owned));
  SUBMARINE_RETURN_IF_ERROR(identity->Bootstrap());
  auto* access = host.Make<AccessManager>(pool, &host.idempotency(), host.clock(), host.ids());
  host.Serve<IdentityServiceImpl>(identity);
  host.Serve<AccessServiceImpl>(access);
  host.Serve<SubmarineAuthApiImpl>(identity);
  auto* quota = host.Serve<QuotaServiceImpl>(pool, &host.idempotency(), config, host.clock(),
                                            host.ids());
  host.Serve<CredentialServiceImpl>(pool, &host.idempotency(), std::move(master_key),
                                    host.clock());
  host.Serve<AuditServiceImpl>(pool);

  // The audit log and grant clean-up consume every stream: this service's and each peer's.
  SUBMARINE_RETURN_IF_ERROR(host.Subscribe(host.spec().name, ApplyServiceEvent));
  for (const auto& peer : host.config().peers()) {
    if (peer.topic_prefix().empty() || peer.name() == host.spec().name) continue;
    SUBMARINE_RETURN_IF_ERROR(host.Subscribe(peer.name(), ApplyServiceEvent));
  }
  host.AddHousekeeping("lapsed leases reclaimed", [quota] { return quota->ReclaimExpired(); });
  SessionManager* sessions = &identity->sessions();
  host.AddHousekeeping("expired tokens pruned", [sessions] { return sessions->PruneExpired(); });
  return absl::OkStatus();
}

}  // namespace submarine::permission
