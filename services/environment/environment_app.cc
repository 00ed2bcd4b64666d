#include "services/environment/environment_app.h"

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/events/outbox.h"
#include "common/events/retention.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "services/environment/environment_store.h"

namespace submarine::environment {

absl::StatusOr<std::unique_ptr<EnvironmentApp>> EnvironmentApp::Create(
    const submarine::config::v1::EnvironmentServiceConfig& config) {
  // Signs this service's events and verifies the permission service's (when there is a secret:
  // a service authorizing nothing may run without one, but then publishes to no bus).
  std::string internal_secret;
  if (!config.server().gateway_secret_file().empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(internal_secret,
                               auth::LoadInternalSecret(config.server().gateway_secret_file()));
  }
  // Authorization is decided before anything else is touched, so a misconfigured one refuses to
  // start rather than serving without it.
  SUBMARINE_ASSIGN_OR_RETURN(
      auto authorizer,
      authz::Authorizer::Create(config.permission(), "environment", internal_secret));
  if (!authorizer->insecure() && config.server().gateway_secret_file().empty()) {
    return InvalidField("server.gateway_secret_file",
                        "is required with permission.address: it verifies callers' principals "
                        "and signs this service's calls to the permission service");
  }
  SUBMARINE_ASSIGN_OR_RETURN(db::PoolSettings db_settings, db::PoolSettingsFrom(config.database()));
  SUBMARINE_RETURN_IF_ERROR(db::MigrateSchema(
      db_settings,
      {{"events", events::EventsMigrations()}, {"environment", EnvironmentMigrations()}}));
  const std::string& conninfo = db_settings.options.conninfo;
  db::ConnectionPool::Options options = db_settings.options;

  std::unique_ptr<EnvironmentApp> app(new EnvironmentApp());
  rpc::SetAnonymousCallsAllowed(authorizer->insecure());
  app->authorizer_ = std::move(authorizer);
  options.on_connect = &EnvironmentStore::Prepare;
  SUBMARINE_ASSIGN_OR_RETURN(app->pool_,
                             db::ConnectionPool::Create(options, db_settings.connect_retry));
  app->manager_ = std::make_unique<EnvironmentManager>(app->pool_.get(), app->authorizer_.get(),
                                                       Clock::Real(), IdGenerator::Secure());
  if (!config.has_seed_builtin() || config.seed_builtin()) {
    SUBMARINE_RETURN_IF_ERROR(app->manager_->SeedBuiltins());
  }
  app->service_ = std::make_unique<EnvironmentServiceImpl>(app->manager_.get());
  app->submarine_api_ = std::make_unique<SubmarineEnvironmentApiImpl>(app->manager_.get());
  app->event_log_ =
      std::make_unique<events::EventLogService>("environment", app->pool_.get(), internal_secret);

  events::OutboxRelay::Options relay;
  relay.publisher = "environment";
  relay.topic_prefix = "submarine.environment.v1.";
  relay.conninfo = conninfo;
  relay.schema = db_settings.options.schema;
  relay.pool = app->pool_.get();
  relay.events = config.events();
  relay.secret = internal_secret;
  app->relay_ = std::make_unique<events::OutboxRelay>(relay);

  // Retention (one replica): sent events past their retention (retention.h), answers to request
  // ids past request_id_retention_hours.
  const submarine::config::v1::EventsConfig events_config = config.events();
  uint32_t request_hours =
      config.has_request_id_retention_hours() ? config.request_id_retention_hours() : 24;
  db::ConnectionPool* pool = app->pool_.get();
  db::PeriodicLeaderTask::Options retention;
  retention.name = "environment.retention";
  retention.conninfo = conninfo;
  retention.period = std::chrono::milliseconds(
      config.housekeeping_interval_ms() ? config.housekeeping_interval_ms() : 600000);
  retention.run = [pool, events_config, request_hours]() -> absl::Status {
    SUBMARINE_ASSIGN_OR_RETURN(int64_t events,
                               events::PruneOutbox(*pool, "environment", events_config));
    int64_t answers = 0;
    SUBMARINE_RETURN_IF_ERROR(pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      answers = EnvironmentStore::PruneResponses(tx, request_hours);
      return absl::OkStatus();
    }));
    if (events + answers > 0) {
      log::Get("housekeeping")
          ->info("pruned {} sent events and {} request-id answers", events, answers);
    }
    return absl::OkStatus();
  };
  app->retention_ = std::make_unique<db::PeriodicLeaderTask>(retention);

  app->runner_ = std::make_unique<rpc::ServerRunner>(config.server(), "environment");
  app->runner_->AddService(app->service_.get());
  app->runner_->AddService(app->submarine_api_.get());
  app->runner_->AddService(app->event_log_.get());
  for (auto* task : app->authorizer_->tasks()) app->runner_->AddTask(task);
  app->runner_->AddTask(app->relay_.get());
  app->runner_->AddTask(app->retention_.get());
  EnvironmentApp* raw = app.get();
  app->runner_->OnShutdown([raw] { raw->pool_.reset(); });
  return app;
}

}  // namespace submarine::environment
