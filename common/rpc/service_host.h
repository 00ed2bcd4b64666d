#pragma once
// The service kit: everything a Submarine service process runs besides its own domain.
//
// A service is a ServiceSpec (its name, error domain, event topic prefix, migrations and
// statements), a config message that embeds config.v1.CommonServiceConfig as field `common`, and
// a build function that creates its domain objects on a ServiceHost. Its main is one call:
//
//   int main(int argc, char** argv) {
//     return submarine::rpc::RunService<submarine::config::v1::EnvironmentServiceConfig>(
//         argc, argv, submarine::environment::Spec(), submarine::environment::Build);
//   }
//
// The host owns, in start order: the process settings (internal secret → principal codec, peer
// TLS), the authorizer (when the spec authorizes callers: the permission service's client and
// its event-invalidated cache; with permission.insecure_no_authorization, anonymous callers are
// admitted and everything is allowed), the migrated schema (the kit's series "events" and
// "idempotency", then the spec's), the connection pool (with the kit's statements and the
// spec's), the clock and id source, api::Idempotency, the outbox relay and EventLog (when the
// spec publishes), the ProjectResources service, the database health probe (the process reports
// NOT_SERVING while its database is unreachable), the leader-elected housekeeping (pruning sent
// events, consumed inbox rows and old request-id answers, then every job added with
// AddHousekeeping), the subscribers added with Subscribe, and the ServerRunner. It owns every
// object the build function makes with Make() and destroys them in reverse order, after the
// runner has stopped and before its own parts.
//
// Thread-safety: build-time methods (Make, AddService, AddTask, AddHousekeeping, Subscribe,
// CountInProject) before Run(); the accessors from any thread afterwards.

#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/api/idempotency.h"
#include "common/authz/authorizer.h"
#include "common/db/migrations.h"
#include "common/db/periodic_leader_task.h"
#include "common/db/pool.h"
#include "common/db/statement.h"
#include "common/events/subscriber.h"
#include "common/log/log.h"
#include "common/rpc/server_runner.h"
#include "common/util/clock.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::rpc {

// What a service is, apart from its domain.
struct ServiceSpec {
  // Process, logger, SERVICE principal and event publisher name, e.g. "environment".
  std::string name;
  // google.rpc.ErrorInfo domain of its errors, e.g. "environment.submarine.io".
  std::string error_domain;
  // Prefix of the events it publishes, e.g. "submarine.environment.v1."; empty: it publishes
  // none (no relay, no EventLog).
  std::string topic_prefix;
  // Its own migration series, applied after the kit's ("events", "idempotency").
  std::vector<db::MigrationSeries> migrations;
  // Its stores' statements, prepared on every pooled connection with the kit's.
  std::vector<const db::StatementSet*> statements;
  // Whether it asks the permission service about its callers (an authz::Authorizer from
  // common.permission). The permission service itself does not.
  bool authorizes_callers = true;
  // Seals stored request-id answers and keys request hashes with the internal secret (for
  // services whose requests or answers carry passwords or tokens; see api::Idempotency).
  bool seal_request_answers = false;
  // Housekeeping period when common.housekeeping_interval_ms is not set.
  std::chrono::milliseconds default_housekeeping{std::chrono::minutes(10)};
};

class ServiceHost {
 public:
  // Sets up everything listed in the header comment except the runner's start: validates the
  // config (INVALID_ARGUMENT naming the field: database.schema, server.gateway_secret_file unless
  // permission.insecure_no_authorization, permission.address), connects (retrying while
  // PostgreSQL starts), migrates. Does not serve yet.
  static absl::StatusOr<std::unique_ptr<ServiceHost>> Create(
      ServiceSpec spec, const submarine::config::v1::CommonServiceConfig& config);
  // Destroys what the build function made (reverse order), then the host's own parts.
  ~ServiceHost();
  ServiceHost(const ServiceHost&) = delete;
  ServiceHost& operator=(const ServiceHost&) = delete;

  const ServiceSpec& spec() const { return spec_; }
  const submarine::config::v1::CommonServiceConfig& config() const { return config_; }
  db::ConnectionPool& pool() { return *pool_; }
  // Requires spec().authorizes_callers.
  authz::Authorizer& authorizer() { return *authorizer_; }
  const Clock& clock() const { return Clock::Real(); }
  IdGenerator& ids() { return IdGenerator::Secure(); }
  const api::Idempotency& idempotency() const { return *idempotency_; }
  // The internal secret (server.gateway_secret_file); empty when running without one.
  const std::string& internal_secret() const { return secret_; }
  ServerRunner& runner() { return *runner_; }

  // Takes ownership of an object the service builds; it lives until the host is destroyed.
  template <class T>
  T* Own(std::unique_ptr<T> object) {
    T* raw = object.get();
    owned_.push_back(std::make_unique<Owned<T>>(std::move(object)));
    return raw;
  }
  template <class T, class... Args>
  T* Make(Args&&... args) {
    return Own(std::make_unique<T>(std::forward<Args>(args)...));
  }
  // Serves a gRPC service (owned by the caller or by Own/Make).
  void AddService(grpc::Service* service);
  // Makes and serves a gRPC service in one step.
  template <class S, class... Args>
  S* Serve(Args&&... args) {
    S* s = Make<S>(std::forward<Args>(args)...);
    AddService(s);
    return s;
  }
  // Runs a background task (not owned) with the runner.
  void AddTask(BackgroundTask* task);
  // Adds a job to the leader-only housekeeping run every housekeeping interval; it returns how
  // many rows it touched (logged when not 0). Errors are logged and retried next period.
  void AddHousekeeping(std::string name, std::function<absl::StatusOr<int64_t>()> job);
  // Runs `run` every `period` on the one replica that holds the leader lock named
  // "<schema>.<name>" (control loops: schedulers, reconcilers, cullers). The returned task's
  // Wake() starts the next run at once. Errors are logged and retried next period.
  db::PeriodicLeaderTask* AddLeaderLoop(const std::string& name, std::chrono::milliseconds period,
                                        std::function<absl::Status()> run);
  // Applies every event of `publisher` (this service, or one of common.peers) exactly once, in
  // order, with `apply` in the transaction that records it (events::Subscriber). INVALID_ARGUMENT
  // when the publisher is not a known peer; without events.subscribe_endpoint nothing is applied
  // (a warning is logged). INVALID_ARGUMENT for a publisher subscribed to before.
  absl::Status Subscribe(const std::string& publisher, events::Subscriber::ApplyFn apply);
  // Declares how many resources of `collection` (e.g. "environments") this service holds in a
  // project, for ProjectResources.CountProjectResources: `count(tx, project_id)`.
  void CountInProject(std::string collection,
                      std::function<int64_t(pqxx::transaction_base&, const std::string&)> count);

  // The peer named `name` in common.peers, or nullptr.
  const submarine::config::v1::PeerService* Peer(const std::string& name) const;

  // Starts serving and blocks until shutdown completes; the process exit code.
  int Run();
  // For embedders and tests: starts serving and returns; stop with runner().Shutdown() (or by
  // destroying the host). Either Run() or Start(), once.
  absl::Status Start();

 private:
  struct OwnedBase {
    virtual ~OwnedBase() = default;
  };
  template <class T>
  struct Owned : OwnedBase {
    explicit Owned(std::unique_ptr<T> p) : object(std::move(p)) {}
    std::unique_ptr<T> object;
  };
  class Housekeeping;
  class ProjectResourcesService;
  class DatabaseProbe;
  class SubscriberTask;

  ServiceHost(ServiceSpec spec, submarine::config::v1::CommonServiceConfig config);
  absl::Status Init();

  ServiceSpec spec_;
  submarine::config::v1::CommonServiceConfig config_;
  std::string secret_;
  db::PoolSettings db_settings_;
  std::unique_ptr<authz::Authorizer> authorizer_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<api::Idempotency> idempotency_;
  std::vector<std::unique_ptr<BackgroundTask>> tasks_;   // relay, probe, housekeeping, subscribers
  std::vector<std::unique_ptr<grpc::Service>> services_;  // EventLog, ProjectResources
  Housekeeping* housekeeping_ = nullptr;
  ProjectResourcesService* project_resources_ = nullptr;
  std::set<std::string> subscribed_;  // publishers with a subscriber
  std::unique_ptr<ServerRunner> runner_;
  std::vector<std::unique_ptr<OwnedBase>> owned_;  // the service's objects, destroyed first
};

// The whole of a service's main(): reads `--config FILE` (or SUBMARINE_CONFIG) into Config (a
// message with a `common` field of type CommonServiceConfig), initialises logging, creates the
// host, calls `build(host, config)` and runs. Exit codes: 2 for a bad command line or config,
// 1 when start-up fails (logged), else what the runner returns.
template <class Config>
int RunService(int argc, char** argv, ServiceSpec spec,
               const std::function<absl::Status(ServiceHost&, const Config&)>& build) {
  ServerRunner::InstallSignalHandling();
  Config config;
  if (!LoadConfigFromArgs(argc, argv, &config)) return 2;
  log::Init(config.common().server().log(), spec.name);
  auto host = ServiceHost::Create(std::move(spec), config.common());
  absl::Status built = host.ok() ? build(**host, config) : host.status();
  if (!built.ok()) {
    log::Get("main")->error("cannot start: {}", std::string(built.message()));
    return 1;
  }
  return (*host)->Run();
}

}  // namespace submarine::rpc
