#include "tests/integration/events/events_harness.h"

#include <google/protobuf/wrappers.pb.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/config/config.h"
#include "common/db/migrations.h"
#include "common/events/outbox.h"
#include "common/net/address.h"
#include "common/rpc/call_context.h"
#include "common/rpc/channel.h"
#include "common/status/status.h"
#include "tests/support/test_postgres.h"

namespace submarine::events::testing {
namespace {

using submarine::testing::TestPostgres;

constexpr char kCreateApplied[] = R"sql(
CREATE TABLE applied (
  apply_order BIGSERIAL   PRIMARY KEY,
  seq         BIGINT      NOT NULL,
  event_id    UUID        NOT NULL,
  ordinal     BIGINT      NOT NULL,
  applied_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
))sql";

constexpr char kInsertApplied[] =
    "INSERT INTO applied (seq, event_id, ordinal) VALUES ($1, $2::uuid, $3)";

constexpr char kCountApplied[] = "SELECT count(*) FROM applied";

constexpr char kAuditApplied[] = R"sql(
SELECT count(*), count(DISTINCT event_id), coalesce(min(seq), 0), coalesce(max(seq), 0),
       count(*) FILTER (WHERE prev IS NOT NULL AND seq <> prev + 1),
       count(*) FILTER (WHERE ordinal <> seq - 1)
FROM (SELECT seq, event_id, ordinal, lag(seq) OVER (ORDER BY apply_order) AS prev
      FROM applied) t)sql";

constexpr char kReadCursor[] =
    "SELECT last_seq, published_seq FROM outbox_cursor WHERE publisher = $1";

// A database with the event tables in `schema` and a pool on it.
absl::StatusOr<std::unique_ptr<db::ConnectionPool>> EventsDatabase(
    const std::string& prefix, const std::string& schema, std::string* conninfo,
    const std::string& extra_sql = "") {
  auto& pg = TestPostgres::Get();
  *conninfo = pg.ConnInfo(pg.CreateDatabase(prefix));
  try {
    pqxx::connection conn(*conninfo);
    SUBMARINE_RETURN_IF_ERROR(db::ApplyMigrations(conn, schema, "events", EventsMigrations()));
    if (!extra_sql.empty()) {
      pqxx::work tx(conn);
      tx.exec("SET LOCAL search_path TO " + tx.quote_name(schema));
      tx.exec(extra_sql);
      tx.commit();
    }
  } catch (...) {
    return db::StatusFromCurrentException();
  }
  db::ConnectionPool::Options options;
  options.conninfo = *conninfo;
  options.schema = schema;
  options.size = 8;
  options.statements = {&events::Statements()};
  return db::ConnectionPool::Create(options);
}

}  // namespace

absl::StatusOr<std::unique_ptr<BusProcess>> BusProcess::Start(const std::string& dir) {
  std::unique_ptr<BusProcess> bus(new BusProcess());
  bus->dir_ = dir;
  SUBMARINE_ASSIGN_OR_RETURN(bus->frontend_port_, net::PickFreePort());
  SUBMARINE_ASSIGN_OR_RETURN(bus->backend_port_, net::PickFreePort());
  SUBMARINE_RETURN_IF_ERROR(bus->Launch());
  return bus;
}

absl::Status BusProcess::Restart() { return Launch(); }

absl::Status BusProcess::Launch() {
  std::string yaml = absl::StrCat("frontend: tcp://127.0.0.1:", frontend_port_,
                                  "\nbackend: tcp://127.0.0.1:", backend_port_,
                                  "\nhwm: 100000\nserver:\n  grpc_listen: 127.0.0.1:0\n"
                                  "  metrics_listen: 127.0.0.1:0\n");
  submarine::testing::ReadyInfo ready;
  SUBMARINE_ASSIGN_OR_RETURN(process_, submarine::testing::StartService("submarine-eventbus", dir_,
                                                                        "eventbus", yaml, &ready));
  SUBMARINE_ASSIGN_OR_RETURN(std::string text,
                             config::ReadFile(absl::StrCat(dir_, "/eventbus.ready")));
  auto j = nlohmann::json::parse(text);
  frontend_ = j.value("frontend", "");
  backend_ = j.value("backend", "");
  metrics_ = ready.metrics;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TestPublisher>> TestPublisher::Create(const std::string& publisher) {
  std::unique_ptr<TestPublisher> p(new TestPublisher());
  p->publisher_ = publisher;
  SUBMARINE_ASSIGN_OR_RETURN(p->pool_, EventsDatabase("evpub", "publisher", &p->conninfo_));
  rpc::SetPrincipalCodec(std::make_shared<auth::PrincipalCodec>(kTestSecret));
  p->service_ = std::make_unique<EventLogService>(publisher, p->pool_.get(), kTestSecret);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  rpc::InstallCallInterceptor(builder);
  builder.RegisterService(p->service_.get());
  p->server_ = builder.BuildAndStart();
  if (!p->server_ || port == 0) return Unavailable("cannot start the EventLog server");
  p->address_ = absl::StrCat("127.0.0.1:", port);
  return p;
}

TestPublisher::~TestPublisher() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

OutboxRelay::Options TestPublisher::RelayOptions(const std::string& endpoint,
                                                 uint32_t heartbeat_ms) const {
  OutboxRelay::Options o;
  o.publisher = publisher_;
  o.topic_prefix = kTopicPrefix;
  o.conninfo = conninfo_;
  o.schema = "publisher";
  o.pool = pool_.get();
  o.secret = kTestSecret;
  o.events.set_publish_endpoint(endpoint);
  o.events.set_heartbeat_ms(heartbeat_ms);
  o.events.set_send_hwm(100000);
  o.events.set_relay_batch(500);
  return o;
}

absl::Status TestPublisher::Append(int64_t count, int per_transaction) {
  for (int64_t done = 0; done < count;) {
    int64_t n = std::min<int64_t>(per_transaction, count - done);
    int64_t first = next_ordinal_.fetch_add(n);
    absl::Status st = pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
      for (int64_t i = 0; i < n; ++i) {
        google::protobuf::Int64Value value;
        value.set_value(first + i);
        SUBMARINE_RETURN_IF_ERROR(AppendToOutbox(
            tx, value, absl::StrCat("tests/events/", first + i), "req-test", "tester"));
      }
      return absl::OkStatus();
    });
    if (!st.ok()) {
      next_ordinal_.fetch_sub(n);  // single-writer tests: keep ordinals dense
      return st;
    }
    done += n;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> TestPublisher::Cursor() {
  std::pair<uint64_t, uint64_t> out{0, 0};
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    auto r = tx.exec_params(kReadCursor, publisher_);
    if (!r.empty()) out = {r[0][0].as<int64_t>(), r[0][1].as<int64_t>()};
    return absl::OkStatus();
  }));
  return out;
}

void AsService(grpc::ClientContext* ctx) {
  rpc::ActAs(ctx, auth::ServicePrincipal("events-test"));
}

absl::StatusOr<std::unique_ptr<TestConsumer>> TestConsumer::Create() {
  std::unique_ptr<TestConsumer> c(new TestConsumer());
  std::string conninfo;
  SUBMARINE_ASSIGN_OR_RETURN(c->pool_,
                             EventsDatabase("evsub", "consumer", &conninfo, kCreateApplied));
  return c;
}

absl::Status TestConsumer::Apply(pqxx::work& tx, const submarine::common::v1::Event& event) {
  google::protobuf::Int64Value value;
  if (!value.ParseFromString(event.payload())) return Internal("payload does not parse");
  tx.exec_params(kInsertApplied, static_cast<int64_t>(event.header().seq()),
                 event.header().event_id(), value.value());
  return absl::OkStatus();
}

Subscriber::Options TestConsumer::SubscriberOptions(const TestPublisher& publisher,
                                                    const std::string& backend) {
  Subscriber::Options o;
  o.name = "test-consumer";
  o.service_name = "consumer";
  o.secret = kTestSecret;
  o.publisher = publisher.publisher();
  o.topic_prefix = kTopicPrefix;
  o.subscribe_endpoint = backend;
  o.event_log_address = publisher.event_log_address();
  o.pool = pool_.get();
  o.apply = &TestConsumer::Apply;
  o.silence_timeout = std::chrono::milliseconds(1000);
  return o;
}

int64_t TestConsumer::AppliedCount() {
  int64_t n = -1;
  auto st = pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    n = tx.exec(kCountApplied)[0][0].as<int64_t>();
    return absl::OkStatus();
  });
  return st.ok() ? n : -1;
}

absl::StatusOr<TestConsumer::Audit> TestConsumer::AuditApplied() {
  Audit a;
  SUBMARINE_RETURN_IF_ERROR(pool_->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    auto r = tx.exec(kAuditApplied)[0];
    a.rows = r[0].as<int64_t>();
    a.distinct_events = r[1].as<int64_t>();
    a.min_seq = r[2].as<int64_t>();
    a.max_seq = r[3].as<int64_t>();
    a.out_of_order = r[4].as<int64_t>();
    a.ordinal_mismatch = r[5].as<int64_t>();
    return absl::OkStatus();
  }));
  return a;
}

}  // namespace submarine::events::testing
