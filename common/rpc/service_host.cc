#include "common/rpc/service_host.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/api/names.h"
#include "common/auth/principal.h"
#include "common/db/periodic_leader_task.h"
#include "common/events/event_log_service.h"
#include "common/events/outbox.h"
#include "common/events/relay.h"
#include "common/events/retention.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "submarine/common/v1/project_resources.grpc.pb.h"

namespace submarine::rpc {
namespace {

using submarine::config::v1::CommonServiceConfig;
using submarine::config::v1::PeerService;

constexpr uint32_t kDefaultRequestIdRetentionHours = 24;
constexpr auto kProbePeriod = std::chrono::seconds(1);
constexpr auto kProbeTimeout = std::chrono::seconds(2);

constexpr db::Statement kPing{"host.ping", "SELECT 1"};

const db::StatementSet& HostStatements() {
  static const auto* set = new db::StatementSet{kPing};
  return *set;
}

}  // namespace

// The database health probe: NOT_SERVING while the schema's database cannot answer, so the
// gateway's readiness (and any load balancer) stops sending traffic to a replica that would fail
// every call.
class ServiceHost::DatabaseProbe : public BackgroundTask {
 public:
  explicit DatabaseProbe(db::ConnectionPool* pool) : pool_(pool) {}
  ~DatabaseProbe() override { Stop(); }
  std::string TaskName() const override { return "database-probe"; }
  absl::Status Start() override {
    thread_ = std::thread([this] { Loop(); });
    return absl::OkStatus();
  }
  void Stop() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool Healthy() const override { return healthy_.load(); }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      lock.unlock();
      absl::Status st = pool_->Read(std::chrono::system_clock::now() + kProbeTimeout,
                                    [](pqxx::transaction_base& tx) {
                                      db::Exec(tx, kPing);
                                      return absl::OkStatus();
                                    });
      if (st.ok() != healthy_.exchange(st.ok())) {
        if (st.ok()) {
          log::Get("runner")->info("the database answers again");
        } else {
          log::Get("runner")->error("the database does not answer ({}); NOT_SERVING until it does",
                                    Message(st));
        }
      }
      lock.lock();
      cv_.wait_for(lock, kProbePeriod, [this] { return stop_; });
    }
  }

  db::ConnectionPool* pool_;
  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Leader-only housekeeping: the kit's retention jobs, then the service's.
class ServiceHost::Housekeeping : public BackgroundTask {
 public:
  struct Job {
    std::string name;
    std::function<absl::StatusOr<int64_t>()> run;
  };
  Housekeeping(const std::string& name, const std::string& conninfo,
               std::chrono::milliseconds period) {
    db::PeriodicLeaderTask::Options o;
    o.name = name;
    o.conninfo = conninfo;
    o.period = period;
    o.run = [this] { return RunAll(); };
    task_ = std::make_unique<db::PeriodicLeaderTask>(std::move(o));
  }
  void Add(Job job) { jobs_.push_back(std::move(job)); }
  std::string TaskName() const override { return task_->TaskName(); }
  absl::Status Start() override { return task_->Start(); }
  void Stop() override { task_->Stop(); }

 private:
  absl::Status RunAll() {
    absl::Status first;
    for (const Job& job : jobs_) {
      auto done = job.run();
      if (!done.ok()) {
        log::Get("housekeeping")->warn("{} failed: {}", job.name, Message(done.status()));
        if (first.ok()) first = done.status();
      } else if (*done > 0) {
        log::Get("housekeeping")->info("{}: {}", job.name, *done);
      }
    }
    return first;
  }

  std::vector<Job> jobs_;
  std::unique_ptr<db::PeriodicLeaderTask> task_;
};

// ProjectResources.CountProjectResources from the counters the service declared.
class ServiceHost::ProjectResourcesService final
    : public submarine::common::v1::ProjectResources::Service {
 public:
  using Counter = std::function<int64_t(pqxx::transaction_base&, const std::string&)>;
  ProjectResourcesService(db::ConnectionPool* pool, std::string domain)
      : pool_(pool), domain_(std::move(domain)) {}
  void Add(std::string collection, Counter count) {
    counters_.emplace_back(std::move(collection), std::move(count));
  }

  grpc::Status CountProjectResources(
      grpc::ServerContext* ctx, const submarine::common::v1::CountProjectResourcesRequest* req,
      submarine::common::v1::CountProjectResourcesResponse* resp) override {
    return HandleCall(*ctx, domain_.c_str(), [&](const CallInfo& call) -> absl::Status {
      std::string id;
      SUBMARINE_RETURN_IF_ERROR(api::ParseProjectName(req->project(), "project", &id));
      if (counters_.empty()) return absl::OkStatus();
      return pool_->Read(call.deadline, [&](pqxx::transaction_base& tx) {
        resp->Clear();
        for (const auto& [collection, count] : counters_) {
          int64_t n = count(tx, id);
          if (n > 0) (*resp->mutable_counts())[collection] = n;
        }
        return absl::OkStatus();
      });
    });
  }

 private:
  db::ConnectionPool* pool_;
  std::string domain_;
  std::vector<std::pair<std::string, Counter>> counters_;
};

// A subscriber created when the runner starts its tasks: only then is this process' own address
// known (for a service that consumes its own stream).
class ServiceHost::SubscriberTask : public BackgroundTask {
 public:
  SubscriberTask(events::Subscriber::Options options, std::function<std::string()> address)
      : options_(std::move(options)), address_(std::move(address)) {}
  ~SubscriberTask() override { Stop(); }
  std::string TaskName() const override { return absl::StrCat("subscriber(", options_.name, ")"); }
  absl::Status Start() override {
    options_.event_log_address = address_();
    subscriber_ = std::make_unique<events::Subscriber>(options_);
    return subscriber_->Start();
  }
  void Stop() override {
    if (subscriber_) subscriber_->Stop();
  }
  bool Healthy() const override { return subscriber_ == nullptr || subscriber_->Healthy(); }

 private:
  events::Subscriber::Options options_;
  std::function<std::string()> address_;
  std::unique_ptr<events::Subscriber> subscriber_;
};

ServiceHost::ServiceHost(ServiceSpec spec, CommonServiceConfig config)
    : spec_(std::move(spec)), config_(std::move(config)) {}

ServiceHost::~ServiceHost() {
  runner_.reset();  // stops serving and every task, if Run() did not already
  while (!owned_.empty()) owned_.pop_back();
  tasks_.clear();
  services_.clear();
  idempotency_.reset();
  pool_.reset();
  authorizer_.reset();
}

absl::StatusOr<std::unique_ptr<ServiceHost>> ServiceHost::Create(
    ServiceSpec spec, const CommonServiceConfig& config) {
  std::unique_ptr<ServiceHost> host(new ServiceHost(std::move(spec), config));
  SUBMARINE_RETURN_IF_ERROR(host->Init());
  return host;
}

absl::Status ServiceHost::Init() {
  const auto& server = config_.server();
  // The internal secret verifies callers' principals, signs this process' calls and its events
  // and verifies its peers'. Authorization is settled before anything is touched, so a
  // misconfigured service refuses to start rather than serving without it.
  if (!server.gateway_secret_file().empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(secret_, auth::LoadInternalSecret(server.gateway_secret_file()));
    SetPrincipalCodec(std::make_shared<auth::PrincipalCodec>(secret_));
  }
  bool insecure = false;
  if (spec_.authorizes_callers) {
    SUBMARINE_ASSIGN_OR_RETURN(
        authorizer_, authz::Authorizer::Create(config_.permission(), spec_.name, secret_));
    insecure = authorizer_->insecure();
    SetAnonymousCallsAllowed(insecure);
  }
  if (secret_.empty() && !insecure) {
    return InvalidField("common.server.gateway_secret_file",
                        "is required: it verifies callers' principals and signs this service's "
                        "calls and events (only permission.insecure_no_authorization runs "
                        "without it)");
  }
  SUBMARINE_RETURN_IF_ERROR(SetPeerTls(server.peer_tls()));

  SUBMARINE_ASSIGN_OR_RETURN(db_settings_, db::PoolSettingsFrom(config_.database()));
  std::vector<db::MigrationSeries> series = {{"events", events::EventsMigrations()},
                                             {"idempotency", api::IdempotencyMigrations()}};
  for (const auto& s : spec_.migrations) series.push_back(s);
  SUBMARINE_RETURN_IF_ERROR(db::MigrateSchema(db_settings_, series));
  db::ConnectionPool::Options options = db_settings_.options;
  options.statements = {&HostStatements(), &events::Statements(), &api::Idempotency::Statements()};
  for (const auto* set : spec_.statements) options.statements.push_back(set);
  SUBMARINE_ASSIGN_OR_RETURN(pool_,
                             db::ConnectionPool::Create(options, db_settings_.connect_retry));
  idempotency_ =
      std::make_unique<api::Idempotency>(spec_.seal_request_answers ? secret_ : std::string());
  runner_ = std::make_unique<ServerRunner>(server, spec_.name);

  const std::string& conninfo = db_settings_.options.conninfo;
  db::ConnectionPool* pool = pool_.get();
  if (authorizer_) {
    for (auto* task : authorizer_->tasks()) runner_->AddTask(task);
  }
  if (!spec_.topic_prefix.empty()) {
    events::OutboxRelay::Options relay;
    relay.publisher = spec_.name;
    relay.topic_prefix = spec_.topic_prefix;
    relay.conninfo = conninfo;
    relay.schema = db_settings_.options.schema;
    relay.pool = pool;
    relay.events = config_.events();
    relay.secret = secret_;
    tasks_.push_back(std::make_unique<events::OutboxRelay>(relay));
    runner_->AddTask(tasks_.back().get());
    services_.push_back(std::make_unique<events::EventLogService>(spec_.name, pool, secret_));
  }
  auto resources = std::make_unique<ProjectResourcesService>(pool, spec_.error_domain);
  project_resources_ = resources.get();
  services_.push_back(std::move(resources));

  tasks_.push_back(std::make_unique<DatabaseProbe>(pool));
  runner_->AddTask(tasks_.back().get());

  auto period = config_.housekeeping_interval_ms()
                    ? std::chrono::milliseconds(config_.housekeeping_interval_ms())
                    : spec_.default_housekeeping;
  auto housekeeping = std::make_unique<Housekeeping>(
      absl::StrCat(db_settings_.options.schema, ".housekeeping"), conninfo, period);
  housekeeping_ = housekeeping.get();
  tasks_.push_back(std::move(housekeeping));
  runner_->AddTask(tasks_.back().get());
  const submarine::config::v1::EventsConfig events_config = config_.events();
  if (!spec_.topic_prefix.empty()) {
    AddHousekeeping("sent events pruned", [pool, events_config, name = spec_.name] {
      return events::PruneOutbox(*pool, name, events_config);
    });
  }
  AddHousekeeping("applied inbox rows pruned",
                  [pool, events_config] { return events::PruneInbox(*pool, events_config); });
  uint32_t request_hours = config_.has_request_id_retention_hours()
                               ? config_.request_id_retention_hours()
                               : kDefaultRequestIdRetentionHours;
  AddHousekeeping("request-id answers pruned",
                  [pool, request_hours] { return api::Idempotency::Prune(*pool, request_hours); });
  return absl::OkStatus();
}

void ServiceHost::AddService(grpc::Service* service) { runner_->AddService(service); }

void ServiceHost::AddTask(BackgroundTask* task) { runner_->AddTask(task); }

void ServiceHost::AddHousekeeping(std::string name, std::function<absl::StatusOr<int64_t>()> job) {
  housekeeping_->Add({std::move(name), std::move(job)});
}

db::PeriodicLeaderTask* ServiceHost::AddLeaderLoop(const std::string& name,
                                                   std::chrono::milliseconds period,
                                                   std::function<absl::Status()> run) {
  db::PeriodicLeaderTask::Options o;
  o.name = absl::StrCat(db_settings_.options.schema, ".", name);
  o.conninfo = db_settings_.options.conninfo;
  o.period = period;
  // Every pass is timed: a control loop's pass time is what says whether it keeps up.
  metrics::Histogram* seconds = metrics::Registry::Global().GetHistogram(
      "submarine_leader_loop_seconds", "Time of one pass of a leader-elected loop",
      absl::StrCat("service=\"", spec_.name, "\",loop=\"", name, "\""));
  o.run = [run = std::move(run), seconds] {
    const auto start = std::chrono::steady_clock::now();
    absl::Status st = run();
    seconds->Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    return st;
  };
  auto task = std::make_unique<db::PeriodicLeaderTask>(std::move(o));
  db::PeriodicLeaderTask* raw = task.get();
  tasks_.push_back(std::move(task));
  runner_->AddTask(raw);
  return raw;
}

const PeerService* ServiceHost::Peer(const std::string& name) const {
  for (const auto& peer : config_.peers()) {
    if (peer.name() == name) return &peer;
  }
  return nullptr;
}

absl::Status ServiceHost::Subscribe(const std::string& publisher,
                                    events::Subscriber::ApplyFn apply) {
  std::string prefix;
  std::function<std::string()> address;
  if (publisher == spec_.name) {
    prefix = spec_.topic_prefix;
    address = [this] { return runner_->grpc_address(); };
  } else if (const PeerService* peer = Peer(publisher)) {
    prefix = peer->topic_prefix();
    address = [a = peer->address()] { return a; };
  }
  if (!subscribed_.insert(publisher).second) {
    return InvalidField("common.peers", absl::StrCat("\"", publisher,
                                                     "\" is subscribed to twice (offsets are "
                                                     "kept per publisher)"));
  }
  if (prefix.empty()) {
    return InvalidField("common.peers", absl::StrCat("no peer \"", publisher,
                                                     "\" with a topic_prefix to subscribe to"));
  }
  if (config_.events().subscribe_endpoint().empty()) {
    log::Get("events")->warn("events.subscribe_endpoint is not set: {} applies no event of {}",
                             spec_.name, publisher);
    return absl::OkStatus();
  }
  events::Subscriber::Options o;
  o.name = absl::StrCat(spec_.name, ".", publisher);
  o.service_name = spec_.name;
  o.secret = secret_;
  o.publisher = publisher;
  o.topic_prefix = prefix;
  o.subscribe_endpoint = config_.events().subscribe_endpoint();
  o.pool = pool_.get();
  o.apply = std::move(apply);
  tasks_.push_back(std::make_unique<SubscriberTask>(std::move(o), std::move(address)));
  runner_->AddTask(tasks_.back().get());
  return absl::OkStatus();
}

void ServiceHost::CountInProject(
    std::string collection,
    std::function<int64_t(pqxx::transaction_base&, const std::string&)> count) {
  project_resources_->Add(std::move(collection), std::move(count));
}

absl::Status ServiceHost::Start() {
  for (auto& service : services_) runner_->AddService(service.get());
  return runner_->Start();
}

int ServiceHost::Run() {
  for (auto& service : services_) runner_->AddService(service.get());
  return runner_->Run();
}

}  // namespace submarine::rpc
