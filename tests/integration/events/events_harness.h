#pragma once
// Real pieces for event-system tests and benchmarks: an eventbus PROCESS on fixed ports (so it
// can be killed and restarted on the same ones), an in-process publisher (own database and
// schema, AppendToOutbox in transactions, OutboxRelay, EventLogService on a real gRPC server at
// 127.0.0.1:0) and a subscribing service's database (own database and schema, an `applied`
// table written by the apply callback). Events are google.protobuf.Int64Value payloads carrying
// the publisher's append ordinal, under the topic prefix "google.protobuf.". Every piece holds
// kTestSecret as the internal secret, which TestPublisher::Create also installs as the process'
// principal codec (rpc::SetPrincipalCodec), as the ServerRunner of a service would.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/db/pool.h"
#include "common/events/event_log_service.h"
#include "common/events/relay.h"
#include "common/events/subscriber.h"
#include "tests/support/process.h"

namespace submarine::events::testing {

inline constexpr char kTopicPrefix[] = "google.protobuf.";
inline constexpr char kTestSecret[] = "events-test-internal-secret-of-40-bytes!";

// submarine-eventbus as a child process.
class BusProcess {
 public:
  // Picks two free ports and starts the bus on them; `dir` holds its config, log, ready file.
  static absl::StatusOr<std::unique_ptr<BusProcess>> Start(const std::string& dir);

  // XSUB (publishers) and XPUB (subscribers) endpoints, as read from the ready file.
  const std::string& frontend() const { return frontend_; }
  const std::string& backend() const { return backend_; }
  const std::string& metrics() const { return metrics_; }
  submarine::testing::ChildProcess& process() { return process_; }

  // SIGKILL: everything in flight in the bus is lost.
  void Kill() { process_.Kill(); }
  // Starts the bus again on the same ports (after Kill()).
  absl::Status Restart();

 private:
  absl::Status Launch();
  std::string dir_;
  int frontend_port_ = 0;
  int backend_port_ = 0;
  std::string frontend_;
  std::string backend_;
  std::string metrics_;
  submarine::testing::ChildProcess process_;
};

// A publishing service inside the test process.
class TestPublisher {
 public:
  // Creates a database, migrates the event tables into schema "publisher" and serves
  // EventLog(`publisher`) on 127.0.0.1:0 to SERVICE principals signed with kTestSecret.
  static absl::StatusOr<std::unique_ptr<TestPublisher>> Create(const std::string& publisher);
  ~TestPublisher();

  const std::string& publisher() const { return publisher_; }
  const std::string& event_log_address() const { return address_; }
  db::ConnectionPool* pool() { return pool_.get(); }

  // The key this publisher's relay signs with (wire.h).
  EventKey key() const { return EventKey(kTestSecret, publisher_); }

  // Options of a relay for this publisher sending to `endpoint` (empty: sequence, never send).
  OutboxRelay::Options RelayOptions(const std::string& endpoint, uint32_t heartbeat_ms = 100) const;

  // Commits `count` events, `per_transaction` per transaction, carrying the next ordinals.
  absl::Status Append(int64_t count, int per_transaction = 1);
  int64_t appended() const { return next_ordinal_.load(); }

  // outbox_cursor's (last_seq, published_seq); {0, 0} before the relay created it.
  absl::StatusOr<std::pair<uint64_t, uint64_t>> Cursor();

 private:
  std::string publisher_;
  std::string conninfo_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<EventLogService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::atomic<int64_t> next_ordinal_{0};
};

// The call acts as Principal{SERVICE, "events-test"} (signed with kTestSecret, the process codec
// TestPublisher installs, by an rpc::MakeChannel channel).
void AsService(grpc::ClientContext* ctx);

// A subscribing service's database (schema "consumer").
class TestConsumer {
 public:
  static absl::StatusOr<std::unique_ptr<TestConsumer>> Create();

  db::ConnectionPool* pool() { return pool_.get(); }

  // Inserts (seq, event_id, ordinal) into `applied` in the subscriber's transaction.
  static absl::Status Apply(pqxx::work& tx, const submarine::common::v1::Event& event);

  // Subscriber options (service "consumer", subscriber "test-consumer") wired to `publisher`, the
  // bus' XPUB `backend` and this database.
  Subscriber::Options SubscriberOptions(const TestPublisher& publisher, const std::string& backend);

  // Rows in `applied`; -1 if the query failed.
  int64_t AppliedCount();

  // What a user of the subscriber's table would check.
  struct Audit {
    int64_t rows = 0;             // rows in `applied`
    int64_t distinct_events = 0;  // distinct event ids
    int64_t min_seq = 0;
    int64_t max_seq = 0;
    int64_t out_of_order = 0;      // rows whose seq is not the previous applied row's seq + 1
    int64_t ordinal_mismatch = 0;  // rows whose payload ordinal is not seq - 1
  };
  absl::StatusOr<Audit> AuditApplied();

 private:
  std::unique_ptr<db::ConnectionPool> pool_;
};

}  // namespace submarine::events::testing
