#include "services/permission/permission_app.h"

#include "absl/strings/str_cat.h"
#include "common/auth/crypto.h"
#include "common/auth/principal.h"
#include "common/events/outbox.h"
#include "common/events/retention.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "services/permission/audit_store.h"
#include "services/permission/credential_store.h"
#include "services/permission/permission_store.h"
#include "services/permission/quota_store.h"

namespace submarine::permission {

absl::StatusOr<std::unique_ptr<PermissionApp>> PermissionApp::Create(
    const submarine::config::v1::PermissionServiceConfig& config) {
  // The internal secret authenticates the gateway and other services: without it any client
  // could claim to be anyone, so the permission service refuses to run without one.
  if (config.server().gateway_secret_file().empty()) {
    return InvalidField("server.gateway_secret_file", "is required");
  }
  if (config.signing_key_file().empty()) return InvalidField("signing_key_file", "is required");
  if (config.master_key_file().empty()) return InvalidField("master_key_file", "is required");
  if (config.admin_password_file().empty()) {
    return InvalidField("admin_password_file", "is required");
  }
  // Checked before the key files are created, so a bad configuration leaves nothing behind.
  SUBMARINE_ASSIGN_OR_RETURN(db::PoolSettings db_settings, db::PoolSettingsFrom(config.database()));
  // Signs and verifies events (the relay, EventLog and the audit log's subscribers).
  SUBMARINE_ASSIGN_OR_RETURN(std::string internal_secret,
                             auth::LoadInternalSecret(config.server().gateway_secret_file()));

  IdentityOptions identity;
  SUBMARINE_ASSIGN_OR_RETURN(identity.sessions.signing_key,
                             auth::LoadOrCreateSigningKey(config.signing_key_file()));
  SUBMARINE_ASSIGN_OR_RETURN(std::string master_key,
                             auth::LoadOrCreateKeyFile(config.master_key_file(), 32));
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

  SUBMARINE_RETURN_IF_ERROR(db::MigrateSchema(
      db_settings,
      {{"events", events::EventsMigrations()}, {"permission", PermissionMigrations()}}));
  const std::string& conninfo = db_settings.options.conninfo;
  db::ConnectionPool::Options options = db_settings.options;

  std::unique_ptr<PermissionApp> app(new PermissionApp());
  options.statements = {&PermissionStore::Statements(), &QuotaStore::Statements(),
                        &CredentialStore::Statements(), &AuditStore::Statements()};
  SUBMARINE_ASSIGN_OR_RETURN(app->pool_,
                             db::ConnectionPool::Create(options, db_settings.connect_retry));
  db::ConnectionPool* pool = app->pool_.get();
  SUBMARINE_ASSIGN_OR_RETURN(
      app->identity_,
      Identity::Create(pool, std::move(identity), Clock::Real(), IdGenerator::Secure()));
  SUBMARINE_RETURN_IF_ERROR(app->identity_->Bootstrap());
  app->access_ = std::make_unique<AccessManager>(pool, Clock::Real(), IdGenerator::Secure());
  app->identity_service_ = std::make_unique<IdentityServiceImpl>(app->identity_.get());
  app->access_service_ = std::make_unique<AccessServiceImpl>(app->access_.get());
  app->submarine_api_ = std::make_unique<SubmarineAuthApiImpl>(app->identity_.get());
  app->quota_service_ =
      std::make_unique<QuotaServiceImpl>(pool, config, Clock::Real(), IdGenerator::Secure());
  app->credential_service_ =
      std::make_unique<CredentialServiceImpl>(pool, std::move(master_key), Clock::Real());
  app->event_log_ = std::make_unique<events::EventLogService>("permission", pool, internal_secret);

  app->runner_ = std::make_unique<rpc::ServerRunner>(config.server(), "permission");
  rpc::ServerRunner* runner = app->runner_.get();
  app->audit_ = std::make_unique<AuditLog>(
      pool, config, [runner] { return runner->grpc_address(); }, internal_secret);

  events::OutboxRelay::Options relay;
  relay.publisher = "permission";
  relay.topic_prefix = "submarine.permission.v1.";
  relay.conninfo = conninfo;
  relay.schema = db_settings.options.schema;
  relay.pool = pool;
  relay.events = config.events();
  relay.secret = internal_secret;
  app->relay_ = std::make_unique<events::OutboxRelay>(relay);

  // Housekeeping (one replica): lapsed leases come back, expired refresh tokens and
  // revocations of expired tokens go, and so do events past their retention (retention.h).
  const submarine::config::v1::EventsConfig events_config = config.events();
  SessionManager* sessions = &app->identity_->sessions();
  QuotaServiceImpl* quota = app->quota_service_.get();
  db::PeriodicLeaderTask::Options housekeeping;
  housekeeping.name = "permission.housekeeping";
  housekeeping.conninfo = conninfo;
  housekeeping.period = std::chrono::milliseconds(
      config.housekeeping_interval_ms() ? config.housekeeping_interval_ms() : 5000);
  housekeeping.run = [pool, events_config, sessions, quota]() -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(int64_t leases, quota->ReclaimExpired());
    SUBMARINE_ASSIGN_OR_RETURN(int64_t tokens, sessions->PruneExpired());
    SUBMARINE_ASSIGN_OR_RETURN(int64_t events,
                               events::PruneOutbox(*pool, "permission", events_config));
    SUBMARINE_ASSIGN_OR_RETURN(int64_t inbox, events::PruneInbox(*pool, events_config));
    if (leases + tokens + events + inbox > 0) {
      log::Get("housekeeping")
          ->info(
              "reclaimed {} lapsed leases; pruned {} expired tokens, {} sent events and {} "
              "inbox rows",
              leases, tokens, events, inbox);
    }
    return absl::OkStatus();
  };
  app->housekeeping_ = std::make_unique<db::PeriodicLeaderTask>(housekeeping);

  runner->AddService(app->identity_service_.get());
  runner->AddService(app->access_service_.get());
  runner->AddService(app->submarine_api_.get());
  runner->AddService(app->quota_service_.get());
  runner->AddService(app->credential_service_.get());
  runner->AddService(app->audit_->service());
  runner->AddService(app->event_log_.get());
  runner->AddTask(app->relay_.get());
  for (auto* task : app->audit_->tasks()) runner->AddTask(task);
  runner->AddTask(app->housekeeping_.get());
  PermissionApp* raw = app.get();
  runner->OnShutdown([raw] { raw->pool_.reset(); });
  return app;
}

}  // namespace submarine::permission
