// Retention and subscriber health: pruning never strands a known consumer, a subscriber behind
// pruned events says so, and health follows sequence lag rather than clocks of other hosts.
// Real PostgreSQL, a real submarine-eventbus process, the real relay, EventLog and subscriber.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "common/rpc/channel.h"
#include "common/events/retention.h"
#include "common/metrics/metrics.h"
#include "submarine/common/v1/events.grpc.pb.h"
#include "tests/integration/events/events_fixture.h"

namespace submarine::events::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using submarine::testing::WaitFor;

// Runs `sql` in the schema of `pool`.
absl::Status Exec(db::ConnectionPool* pool, const std::string& sql) {
  return pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    tx.exec(sql);
    return absl::OkStatus();
  });
}

// The first column of the first row of `sql` (-1 if it failed or returned nothing).
int64_t Query(db::ConnectionPool* pool, const std::string& sql) {
  int64_t out = -1;
  auto st = pool->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    auto r = tx.exec(sql);
    if (!r.empty() && !r[0][0].is_null()) out = r[0][0].as<int64_t>();
    return absl::OkStatus();
  });
  return st.ok() ? out : -1;
}

int64_t Gauge(const char* name, const std::string& publisher) {
  return metrics::Registry::Global()
      .GetGauge(name, "",
                absl::StrCat("subscriber=\"test-consumer\",publisher=\"", publisher, "\""))
      ->Value();
}

// Retention at zero hours: only the consumers' acknowledgements hold events back.
submarine::config::v1::EventsConfig ZeroRetention() {
  submarine::config::v1::EventsConfig events;
  events.set_outbox_retention_hours(0);
  events.set_inbox_retention_hours(0);
  return events;
}

// Events 1..5 were pruned while the subscriber (at offset 0) was away: it cannot catch up, so it
// must say so (NOT_SERVING) instead of retrying in silence, and recover once an operator moved
// its offset past the hole.
TEST_F(EventsTest, ASubscriberBehindPrunedEventsIsStrandedUntilItsOffsetIsMoved) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("stranded"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay(bus_->frontend());
  ASSERT_OK(publisher_->Append(10));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(10, 10); }));
  ASSERT_OK(Exec(publisher_->pool(), "DELETE FROM outbox WHERE seq <= 5"));

  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  options.stranded_retry = milliseconds(200);
  auto sub = StartSubscriber(options);
  ASSERT_TRUE(WaitFor([&] { return !sub->Healthy(); }, seconds(10)))
      << "a subscriber that cannot catch up must report NOT_SERVING";
  EXPECT_TRUE(sub->stranded());
  EXPECT_EQ(Gauge("submarine_events_subscriber_stranded", "stranded"), 1);
  EXPECT_EQ(Gauge("submarine_events_subscriber_lag_events", "stranded"), 10);
  EXPECT_EQ(consumer_->AppliedCount(), 0);
  // It keeps trying (slowly), so it does not recover by itself while the hole is there.
  const uint64_t replays = sub->stats().replays;
  EXPECT_FALSE(WaitFor([&] { return sub->Healthy(); }, seconds(1)));
  EXPECT_EQ(sub->stats().replays, replays);

  // The operator accepts the loss of 1..5.
  ASSERT_OK(Exec(consumer_->pool(),
                 "INSERT INTO consumer_offsets (publisher, last_seq) VALUES ('stranded', 5)"));
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 5 && sub->Healthy(); }));
  EXPECT_FALSE(sub->stranded());
  EXPECT_EQ(Gauge("submarine_events_subscriber_stranded", "stranded"), 0);
  EXPECT_EQ(Gauge("submarine_events_subscriber_lag_events", "stranded"), 0);
  auto audit = ValueOrDie(consumer_->AuditApplied());
  EXPECT_EQ(audit.min_seq, 6);
  EXPECT_EQ(audit.max_seq, 10);
}

// The answer of the publisher's EventLog for a subscriber behind pruned events.
TEST_F(EventsTest, ReplayingPastPrunedEventsIsRefusedAsEventsPruned) {
  publisher_ = ValueOrDie(TestPublisher::Create("pruned"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay("");
  ASSERT_OK(publisher_->Append(3));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(3, 0); }));
  // Everything pruned: even an empty page must not look like "caught up".
  ASSERT_OK(Exec(publisher_->pool(), "DELETE FROM outbox"));
  auto options = consumer_->SubscriberOptions(*publisher_, "tcp://127.0.0.1:1");
  options.stranded_retry = milliseconds(200);
  auto sub = StartSubscriber(options);
  ASSERT_TRUE(WaitFor([&] { return sub->stranded() && !sub->Healthy(); }, seconds(10)));
}

// The window between the relay's sequencing commit and ListEvents' reads: a transaction holding the
// cursor (as the relay's does while it numbers events) sequences three events while ListEvents
// waits for it. The page must hold every event up to the last_seq it returns, never "last_seq 3
// and no events", which a subscriber must take for pruned events (it would be stranded).
TEST_F(EventsTest, ListEventsNeverAnnouncesEventsItDoesNotReturn) {
  publisher_ = ValueOrDie(TestPublisher::Create("sequencing"));
  ASSERT_OK(
      Exec(publisher_->pool(), "INSERT INTO outbox_cursor (publisher) VALUES ('sequencing')"));
  ASSERT_OK(publisher_->Append(3));  // committed, not sequenced: no relay runs
  pqxx::connection conn(publisher_->RelayOptions("").conninfo);
  pqxx::work sequencer(conn);
  sequencer.exec("SET LOCAL search_path TO publisher");
  sequencer.exec("LOCK TABLE outbox_cursor IN ACCESS EXCLUSIVE MODE");

  auto stub = submarine::common::v1::EventLog::NewStub(
      rpc::MakeChannel(publisher_->event_log_address()));
  submarine::common::v1::ListEventsResponse listed;
  auto call = std::async(std::launch::async, [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(30));
    AsService(&ctx);
    submarine::common::v1::ListEventsRequest req;
    req.set_publisher("sequencing");
    return stub->ListEvents(&ctx, req, &listed);
  });
  ASSERT_TRUE(WaitFor([&] {
    return Query(publisher_->pool(), "SELECT count(*) FROM pg_locks WHERE NOT granted") > 0;
  })) << "ListEvents never waited for the cursor";
  sequencer.exec("UPDATE outbox SET seq = id");
  sequencer.exec("UPDATE outbox_cursor SET last_seq = 3");
  sequencer.commit();

  grpc::Status st = call.get();
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(listed.last_seq(), 3u);
  EXPECT_EQ(listed.events_size(), 3);
}

// A subscriber that stopped at 4 reported it when stopping: pruning keeps 5.. for it, until the
// subscriber has not been heard from for longer than consumer_ttl_hours.
TEST_F(EventsTest, PruningKeepsWhatAKnownConsumerHasNotAcknowledged) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("pruning"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay(bus_->frontend());
  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  auto sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(4));
  ASSERT_TRUE(WaitFor([&] { return sub->offset() == 4; }));
  sub->Stop();
  ASSERT_OK(publisher_->Append(6));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(10, 10); }));

  EXPECT_EQ(Query(publisher_->pool(),
                  "SELECT acked_seq FROM event_consumers WHERE subscriber = 'test-consumer'"),
            4);

  auto pruned = PruneOutbox(*publisher_->pool(), "pruning", ZeroRetention());
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 4);
  sub = StartSubscriber(options);
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 10 && sub->Healthy(); }));
  sub->Stop();
  EXPECT_EQ(*PruneOutbox(*publisher_->pool(), "pruning", ZeroRetention()), 6);

  // A consumer silent for longer than the TTL (decommissioned) holds nothing back.
  ASSERT_OK(publisher_->Append(2));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(12, 12); }));
  ASSERT_OK(Exec(publisher_->pool(),
                 "UPDATE event_consumers SET acked_seq = 10, "
                 "updated_at = now() - INTERVAL '721 hours'"));
  EXPECT_EQ(*PruneOutbox(*publisher_->pool(), "pruning", ZeroRetention()), 2);
  EXPECT_EQ(Query(publisher_->pool(), "SELECT count(*) FROM event_consumers"), 0);
  // Nor does the time-based rule delete anything younger than the retention (default 7 days).
  ASSERT_OK(publisher_->Append(1));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(13, 13); }));
  EXPECT_EQ(*PruneOutbox(*publisher_->pool(), "pruning", {}), 0);
}

// A subscriber reports its offset every ack_interval while it runs, not only when it stops.
TEST_F(EventsTest, ASubscriberReportsItsOffsetWhileRunning) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("acking"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay(bus_->frontend());
  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  options.ack_interval = milliseconds(100);
  auto sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(3));
  EXPECT_TRUE(WaitFor([&] {
    return Query(publisher_->pool(),
                 "SELECT acked_seq FROM event_consumers WHERE subscriber = 'test-consumer'") == 3;
  }));
}

// Inbox rows at or below the offset go after their retention; rows above it (an operator rewound
// the offset) stay, and still keep their events from being applied twice.
TEST_F(EventsTest, PruneInboxKeepsRowsAboveTheOffset) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("inbox"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay(bus_->frontend());
  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  auto sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(5));
  ASSERT_TRUE(WaitFor([&] { return sub->offset() == 5; }));
  sub->Stop();
  ASSERT_OK(Exec(consumer_->pool(), "UPDATE consumer_offsets SET last_seq = 3"));

  // Within the retention nothing goes.
  auto kept = PruneInbox(*consumer_->pool(), {});
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, 0);
  auto pruned = PruneInbox(*consumer_->pool(), ZeroRetention());
  ASSERT_TRUE(pruned.ok()) << pruned.status();
  EXPECT_EQ(*pruned, 3);
  EXPECT_EQ(Query(consumer_->pool(), "SELECT min(seq) FROM inbox"), 4);

  sub = StartSubscriber(options);
  ASSERT_TRUE(WaitFor([&] { return sub->offset() == 5 && sub->stats().replays >= 1; }));
  EXPECT_EQ(sub->stats().applied, 0u);
  EXPECT_EQ(consumer_->AppliedCount(), 5);
}

// The publisher's database clock is five hours behind the subscriber's: a subscriber that keeps
// up stays healthy. Then five hours ahead, with an event that cannot be applied: the subscriber
// goes unhealthy once its offset has not moved for max_lag, and healthy again once it applies.
TEST_F(EventsTest, HealthFollowsSequenceLagNotTheClocksOfOtherHosts) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("skewed"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  ASSERT_OK(Exec(publisher_->pool(),
                 "ALTER TABLE outbox ALTER COLUMN occurred_at "
                 "SET DEFAULT clock_timestamp() - INTERVAL '5 hours'"));
  auto relay = StartRelay(bus_->frontend());
  std::atomic<bool> refuse{false};
  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  options.max_lag = milliseconds(500);
  options.max_batch = 1;  // a burst is applied one event per transaction, with more queued
  options.apply = [&](pqxx::work& tx, const submarine::common::v1::Event& e) {
    if (refuse) return Internal("cannot apply this event");
    return TestConsumer::Apply(tx, e);
  };
  auto sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(20, 20));
  EXPECT_FALSE(WaitFor([&] { return !sub->Healthy(); }, milliseconds(1500)))
      << "a subscriber that keeps up is healthy whatever the publisher's clock says";
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 20; }));

  ASSERT_OK(Exec(publisher_->pool(),
                 "ALTER TABLE outbox ALTER COLUMN occurred_at "
                 "SET DEFAULT clock_timestamp() + INTERVAL '5 hours'"));
  refuse = true;
  ASSERT_OK(publisher_->Append(1));
  EXPECT_TRUE(WaitFor([&] { return !sub->Healthy(); }, seconds(10)))
      << "an event that cannot be applied must make the subscriber unhealthy";
  EXPECT_EQ(Gauge("submarine_events_subscriber_lag_events", "skewed"), 1);
  refuse = false;
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 21 && sub->Healthy(); }));
}

}  // namespace
}  // namespace submarine::events::testing
