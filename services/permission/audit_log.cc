#include "services/permission/audit_log.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/status/status.h"
#include "services/permission/audit_store.h"

namespace submarine::permission {
namespace {

constexpr char kOwnPublisher[] = "permission";
constexpr char kOwnPrefix[] = "submarine.permission.v1.";

}  // namespace

// Builds and starts the own stream's subscriber only when the runner starts tasks, i.e. after
// the gRPC server has bound and self_address() can answer.
class AuditLog::OwnStreamTask : public rpc::BackgroundTask {
 public:
  OwnStreamTask(db::ConnectionPool* pool, std::string endpoint,
                std::function<std::string()> self_address, std::string secret)
      : pool_(pool),
        endpoint_(std::move(endpoint)),
        self_address_(std::move(self_address)),
        secret_(std::move(secret)) {}

  std::string TaskName() const override { return "audit.permission"; }

  absl::Status Start() override {
    std::string address = self_address_ ? self_address_() : std::string();
    if (address.empty()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "NOT_SERVING",
                       "the audit log's own stream needs this process' gRPC address");
    }
    subscriber_ = std::make_unique<events::Subscriber>(
        SubscriberOptions(pool_, endpoint_, kOwnPublisher, kOwnPrefix, address, secret_));
    return subscriber_->Start();
  }
  void Stop() override {
    if (subscriber_) subscriber_->Stop();
  }
  bool Healthy() const override { return !subscriber_ || subscriber_->Healthy(); }

 private:
  db::ConnectionPool* pool_;
  std::string endpoint_;
  std::function<std::string()> self_address_;
  std::string secret_;
  std::unique_ptr<events::Subscriber> subscriber_;
};

events::Subscriber::Options AuditLog::SubscriberOptions(db::ConnectionPool* pool,
                                                        const std::string& subscribe_endpoint,
                                                        const std::string& publisher,
                                                        const std::string& topic_prefix,
                                                        const std::string& event_log_address,
                                                        const std::string& internal_secret) {
  events::Subscriber::Options o;
  o.name = absl::StrCat("audit.", publisher);
  o.service_name = kOwnPublisher;  // the permission service runs the audit log
  o.publisher = publisher;
  o.topic_prefix = topic_prefix;
  o.subscribe_endpoint = subscribe_endpoint;
  o.event_log_address = event_log_address;
  o.secret = internal_secret;
  o.pool = pool;
  o.apply = [](pqxx::work& tx, const submarine::common::v1::Event& event) {
    AuditStore::Record(tx, event);
    return absl::OkStatus();
  };
  return o;
}

AuditLog::AuditLog(db::ConnectionPool* pool,
                   const submarine::config::v1::PermissionServiceConfig& config,
                   std::function<std::string()> self_address, std::string internal_secret)
    : service_(pool) {
  const std::string& endpoint = config.events().subscribe_endpoint();
  auto logger = log::Get("audit");
  if (endpoint.empty()) {
    logger->warn("events.subscribe_endpoint is not set: the audit log records nothing");
    return;
  }
  // One subscriber per publisher: offsets and inbox rows are keyed by publisher name.
  std::set<std::string> publishers = {kOwnPublisher};
  for (const auto& source : config.audit_sources()) {
    if (!publishers.insert(source.publisher()).second) {
      logger->warn(
          "audit source \"{}\" is listed twice or is the permission service itself; "
          "recording it once",
          source.publisher());
      continue;
    }
    sources_.push_back(std::make_unique<events::Subscriber>(
        SubscriberOptions(pool, endpoint, source.publisher(), source.topic_prefix(),
                          source.event_log_address(), internal_secret)));
  }
  own_ = std::make_unique<OwnStreamTask>(pool, endpoint, std::move(self_address),
                                         std::move(internal_secret));
}

AuditLog::~AuditLog() = default;

submarine::permission::v1::AuditService::Service* AuditLog::service() { return &service_; }

std::vector<rpc::BackgroundTask*> AuditLog::tasks() {
  std::vector<rpc::BackgroundTask*> out;
  for (auto& s : sources_) out.push_back(s.get());
  if (own_) out.push_back(own_.get());
  return out;
}

}  // namespace submarine::permission
