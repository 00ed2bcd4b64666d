#pragma once
// AuditLog: the audit log of every mutation in every service, recorded from the event streams
// (ARCHITECTURE.md section 4) and queried through AuditService.ListAuditEvents.
//
// One events::Subscriber per configured audit source plus one for the permission service's own
// stream ("permission", "submarine.permission.v1.", replayed from this process' own EventLog);
// each applies an event by inserting an audit_events row in the transaction that also records
// its inbox row and offset, so every event is recorded exactly once and none is skipped. The own
// stream's subscriber starts in its task's Start(), after the server has bound, because only then
// is `self_address` known. Without events.subscribe_endpoint nothing is recorded (a warning is
// logged) and tasks() is empty.
//
// Every subscriber verifies its publisher's events and calls its EventLog as
// Principal{SERVICE, "permission"} with the internal secret (server.gateway_secret_file).
//
// The app adds service() with runner.AddService and each of tasks() with runner.AddTask; the
// pool's connections need AuditStore::Prepare and the schema the events migrations.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/db/pool.h"
#include "common/events/subscriber.h"
#include "common/rpc/server_runner.h"
#include "services/permission/audit_service.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::permission {

class AuditLog {
 public:
  // `pool` must outlive the AuditLog. `self_address` returns this process' gRPC address once
  // serving (for replaying its own stream). `internal_secret` is the process' internal secret.
  AuditLog(db::ConnectionPool* pool, const submarine::config::v1::PermissionServiceConfig& config,
           std::function<std::string()> self_address, std::string internal_secret);
  ~AuditLog();

  submarine::permission::v1::AuditService::Service* service();
  std::vector<rpc::BackgroundTask*> tasks();

  // Subscriber options for one stream (exposed for tests).
  static events::Subscriber::Options SubscriberOptions(db::ConnectionPool* pool,
                                                       const std::string& subscribe_endpoint,
                                                       const std::string& publisher,
                                                       const std::string& topic_prefix,
                                                       const std::string& event_log_address,
                                                       const std::string& internal_secret);

 private:
  class OwnStreamTask;
  AuditServiceImpl service_;
  std::vector<std::unique_ptr<events::Subscriber>> sources_;
  std::unique_ptr<OwnStreamTask> own_;
};

}  // namespace submarine::permission
