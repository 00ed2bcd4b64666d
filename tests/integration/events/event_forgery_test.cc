// Authenticated events: what someone who reaches the bus' ports (but holds no internal secret)
// can do to a subscriber, and who may read a publisher's EventLog. Real PostgreSQL, a real
// submarine-eventbus process, the real relay, EventLog over gRPC and subscriber.

#include <google/protobuf/wrappers.pb.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <functional>
#include <iterator>
#include <optional>
#include <vector>
#include <zmq_addon.hpp>

#include "absl/strings/str_cat.h"
#include "common/rpc/channel.h"
#include "common/auth/crypto.h"
#include "common/auth/principal.h"
#include "common/metrics/metrics.h"
#include "common/util/clock.h"
#include "submarine/common/v1/events.grpc.pb.h"
#include "tests/integration/events/events_fixture.h"
#include "tests/support/grpc_errors.h"

namespace submarine::events::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using submarine::common::v1::EventHeader;
using submarine::common::v1::Heartbeat;
using submarine::common::v1::Principal;
using submarine::testing::ErrorReason;
using submarine::testing::WaitFor;

constexpr int64_t kForgedOrdinal = 666;

// Someone on the bus without the internal secret: it reads the stream like any subscriber and
// publishes whatever frames it likes. Owned by the test thread.
class Forger {
 public:
  Forger(const std::string& frontend, const std::string& backend)
      : pub_(ProcessContext(), zmq::socket_type::pub),
        sub_(ProcessContext(), zmq::socket_type::sub) {
    pub_.set(zmq::sockopt::linger, 0);
    pub_.connect(frontend);
    sub_.set(zmq::sockopt::linger, 0);
    sub_.set(zmq::sockopt::subscribe, std::string(kTopicPrefix) + "Heartbeat");
    sub_.connect(backend);
  }
  ~Forger() {
    pub_.close();
    sub_.close();
  }

  // The publisher's last sequence number, read off one of its heartbeats.
  std::optional<uint64_t> LastSeqFromHeartbeat(const std::string& publisher) {
    std::optional<uint64_t> last;
    WaitFor([&] {
      zmq_pollitem_t item{sub_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, milliseconds(100));
      std::vector<zmq::message_t> frames;
      while (zmq::recv_multipart(sub_, std::back_inserter(frames), zmq::recv_flags::dontwait)) {
        Heartbeat beat;
        if (frames.size() >= 3 && beat.ParseFromArray(frames[2].data(), frames[2].size()) &&
            beat.publisher() == publisher) {
          last = beat.last_seq();
        }
        frames.clear();
      }
      return last.has_value();
    });
    return last;
  }

  // A made-up event of `publisher` with sequence `seq`, as three frames (the format before
  // events were authenticated) and again with a made-up fourth frame in place of a MAC.
  void Event(const std::string& publisher, uint64_t seq) {
    auto event = Made(publisher, seq);
    Send(event.topic(), event.header(), event.payload());
  }

  // The same event signed with `key`: what a relay of another publisher (key.publisher()) could
  // send, naming `publisher`.
  void SignedEvent(const std::string& publisher, uint64_t seq, const EventKey& key) {
    SendEvent(pub_, Made(publisher, seq), key);
  }

  // Messages the forger made: three frames, and four with a made-up MAC.
  static constexpr int kMessagesPerSend = 2;

  // A made-up heartbeat of `publisher` announcing `last_seq`, in both forms.
  void Beat(const std::string& publisher, uint64_t last_seq) {
    EventHeader header;
    header.set_publisher(publisher);
    Heartbeat beat;
    beat.set_publisher(publisher);
    beat.set_last_seq(last_seq);
    Send(std::string(kTopicPrefix) + "Heartbeat", header, beat.SerializeAsString());
  }

 private:
  static submarine::common::v1::Event Made(const std::string& publisher, uint64_t seq) {
    submarine::common::v1::Event event;
    event.set_topic(std::string(kTopicPrefix) + "Int64Value");
    auto* header = event.mutable_header();
    header->set_publisher(publisher);
    header->set_seq(seq);
    header->set_event_id(IdGenerator::Secure().Uuid());
    header->set_principal("users/mallory");
    header->set_resource("projects/default/environments/production");
    google::protobuf::Int64Value payload;
    payload.set_value(kForgedOrdinal);
    event.set_payload(payload.SerializeAsString());
    return event;
  }

  void Send(const std::string& topic, const EventHeader& header, const std::string& payload) {
    const std::string h = header.SerializeAsString();
    constexpr auto kMore = zmq::send_flags::sndmore | zmq::send_flags::dontwait;
    pub_.send(zmq::buffer(topic), kMore);
    pub_.send(zmq::buffer(h), kMore);
    pub_.send(zmq::buffer(payload), zmq::send_flags::dontwait);
    pub_.send(zmq::buffer(topic), kMore);
    pub_.send(zmq::buffer(h), kMore);
    pub_.send(zmq::buffer(payload), kMore);
    pub_.send(zmq::buffer(IdGenerator::Secure().RandomHex(16)), zmq::send_flags::dontwait);
  }

  zmq::socket_t pub_;
  zmq::socket_t sub_;
};

// The MAC is exactly what wire.h documents, so any implementation can produce and check it.
TEST(EventKeyTest, TheMacIsTheDocumentedHmac) {
  auto be64 = [](uint64_t n) {
    std::string out(8, '\0');
    for (int i = 7; i >= 0; --i, n >>= 8) out[i] = static_cast<char>(n & 0xff);
    return out;
  };
  const std::string topic = "submarine.environment.v1.EnvironmentDeleted";
  const std::string header = "header-bytes";
  const std::string payload = "payload-bytes";
  const std::string k_p = auth::HmacSha256(kTestSecret, "submarine-events-v1\nenvironment");
  const std::string expected =
      auth::HmacSha256(k_p, be64(topic.size()) + topic + be64(header.size()) + header + payload);
  const EventKey key(kTestSecret, "environment");
  EXPECT_EQ(key.Mac(topic, header, payload), expected);
  EXPECT_TRUE(key.Verify(topic, header, payload, expected));
  // Moving a byte between header and payload changes the MAC.
  EXPECT_FALSE(key.Verify(topic, header + "p", payload.substr(1), expected));
  EXPECT_FALSE(EventKey(kTestSecret, "permission").Verify(topic, header, payload, expected));
  EXPECT_FALSE(
      EventKey(std::string(40, 'x'), "environment").Verify(topic, header, payload, expected));
}

// The attack from the hardening issue: the forger reads the last sequence number off a
// heartbeat and publishes events with the next numbers before the publisher does. Had the
// subscriber applied them, the real events with those numbers would be dropped as duplicates,
// for good. The real events must all be applied, the forged ones never, across a restart too.
TEST_F(EventsTest, ForgedEventsWithTheNextSequenceNumbersAreNeverApplied) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("forged"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay(bus_->frontend());
  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  options.silence_timeout = seconds(300);
  auto sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(2));
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 2; }));

  Forger forger(bus_->frontend(), bus_->backend());
  auto last = forger.LastSeqFromHeartbeat("forged");
  ASSERT_TRUE(last.has_value()) << "no heartbeat on the bus";
  ASSERT_EQ(*last, 2u);
  // Until the subscriber has seen them (the forger's connection to the bus is asynchronous).
  // Also as another publisher's relay could sign them: naming "forged" (the MAC is not forged's)
  // and naming itself; and, as only a holder of forged's key could, naming another publisher.
  const EventKey other(kTestSecret, "other");
  ASSERT_TRUE(WaitFor(
      [&] {
        forger.Event("forged", *last + 1);
        forger.Event("forged", *last + 2);
        forger.SignedEvent("forged", *last + 1, other);
        forger.SignedEvent("other", *last + 1, other);
        forger.SignedEvent("other", *last + 1, publisher_->key());
        return sub->stats().rejected >= 2 * Forger::kMessagesPerSend + 3;
      },
      seconds(10)));
  auto rejected = [&](const char* reason) {
    return metrics::Registry::Global()
        .GetCounter("submarine_events_rejected_total", "",
                    absl::StrCat("subscriber=\"test-consumer\",publisher=\"forged\",reason=\"",
                                 reason, "\""))
        ->Value();
  };
  EXPECT_GE(rejected(kMalformedBusMessage), 2u) << "three-frame messages";
  EXPECT_GE(rejected(kEventMacInvalid), 4u) << "made-up MACs and another publisher's";
  EXPECT_GE(rejected(kEventWrongPublisher), 1u);
  EXPECT_EQ(sub->offset(), *last) << "a forged event moved the offset";
  EXPECT_EQ(consumer_->AppliedCount(), 2);

  ASSERT_OK(publisher_->Append(2));  // the real events 3 and 4
  ASSERT_TRUE(WaitFor([&] { return relay->sent_seq() == 4 && sub->offset() == 4; }));
  sub->Stop();
  sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(1));
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() >= 5 && sub->offset() == 5; }));

  auto audit = ValueOrDie(consumer_->AuditApplied());
  EXPECT_EQ(audit.rows, 5);
  EXPECT_EQ(audit.distinct_events, 5);
  EXPECT_EQ(audit.min_seq, 1);
  EXPECT_EQ(audit.max_seq, 5);
  EXPECT_EQ(audit.out_of_order, 0);
  EXPECT_EQ(audit.ordinal_mismatch, 0) << "a forged event was applied";
}

// A forged heartbeat far ahead of the stream must not send the subscriber replaying forever.
TEST_F(EventsTest, ForgedHeartbeatsAheadOfTheStreamAreIgnored) {
  StartBus();
  publisher_ = ValueOrDie(TestPublisher::Create("forgedbeat"));
  consumer_ = ValueOrDie(TestConsumer::Create());
  auto relay = StartRelay(bus_->frontend());
  auto options = consumer_->SubscriberOptions(*publisher_, bus_->backend());
  options.silence_timeout = seconds(300);
  options.max_lag = milliseconds(500);
  auto sub = StartSubscriber(options);
  ASSERT_OK(publisher_->Append(1));
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 1; }));

  Forger forger(bus_->frontend(), bus_->backend());
  ASSERT_TRUE(forger.LastSeqFromHeartbeat("forgedbeat").has_value());
  const uint64_t replays = sub->stats().replays;
  ASSERT_TRUE(WaitFor(
      [&] {
        forger.Beat("forgedbeat", 1000000);
        return sub->stats().rejected >= 10 * Forger::kMessagesPerSend ||
               sub->stats().heartbeat_gaps > 0;
      },
      seconds(10)));
  EXPECT_EQ(sub->stats().heartbeat_gaps, 0u);
  EXPECT_EQ(sub->stats().replays, replays);
  // Nor does it count as the publisher's last sequence: the subscriber is not behind.
  EXPECT_FALSE(WaitFor([&] { return !sub->Healthy(); }, options.max_lag + seconds(1)));
  ASSERT_OK(publisher_->Append(1));
  ASSERT_TRUE(WaitFor([&] { return consumer_->AppliedCount() == 2 && sub->Healthy(); }));
}

// EventLog is internal: only a SERVICE principal signed with the internal secret is served, and
// what it serves carries the publisher's MACs.
TEST_F(EventsTest, EventLogServesOnlyServicePrincipals) {
  publisher_ = ValueOrDie(TestPublisher::Create("eventlogauth"));
  auto relay = StartRelay("");
  ASSERT_OK(publisher_->Append(2));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(2, 0); }));
  auto stub = submarine::common::v1::EventLog::NewStub(
      rpc::MakeChannel(publisher_->event_log_address()));
  const auth::PrincipalCodec codec(kTestSecret);
  const auth::PrincipalCodec forger(std::string(40, 'f'));
  auto sign = [](grpc::ClientContext* ctx, const auth::PrincipalCodec* signer,
                 Principal::Kind kind, const char* method) {
    if (signer == nullptr) return;
    Principal p;
    p.set_kind(kind);
    if (kind == Principal::SERVICE) p.set_service("audit");
    if (kind == Principal::USER) p.set_user("alice");
    signer->Attach(ctx, p, "", method);
  };
  submarine::common::v1::ListEventsResponse listed;
  auto list = [&](const auth::PrincipalCodec* signer, Principal::Kind kind) {
    grpc::ClientContext ctx;
    sign(&ctx, signer, kind, "/submarine.common.v1.EventLog/ListEvents");
    submarine::common::v1::ListEventsRequest req;
    req.set_publisher("eventlogauth");
    listed.Clear();
    return stub->ListEvents(&ctx, req, &listed);
  };
  auto acknowledge = [&](const auth::PrincipalCodec* signer, Principal::Kind kind) {
    grpc::ClientContext ctx;
    sign(&ctx, signer, kind, "/submarine.common.v1.EventLog/AcknowledgeEvents");
    submarine::common::v1::AcknowledgeEventsRequest req;
    req.set_publisher("eventlogauth");
    req.set_subscriber("audit.eventlogauth");
    req.set_seq(1);
    submarine::common::v1::AcknowledgeEventsResponse resp;
    return stub->AcknowledgeEvents(&ctx, req, &resp);
  };
  for (const auto& call :
       {std::function<grpc::Status(const auth::PrincipalCodec*, Principal::Kind)>(list),
        std::function<grpc::Status(const auth::PrincipalCodec*, Principal::Kind)>(acknowledge)}) {
    auto none = call(nullptr, Principal::SERVICE);
    EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(ErrorReason(none), "UNAUTHENTICATED");
    auto forged = call(&forger, Principal::SERVICE);
    EXPECT_EQ(forged.error_code(), grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(ErrorReason(forged), "PRINCIPAL_MAC_INVALID");
    auto user = call(&codec, Principal::USER);
    EXPECT_EQ(user.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_EQ(ErrorReason(user), "INTERNAL_ONLY");
    auto service = call(&codec, Principal::SERVICE);
    EXPECT_TRUE(service.ok()) << service.error_message();
  }
  ASSERT_TRUE(list(&codec, Principal::SERVICE).ok());
  ASSERT_EQ(listed.events_size(), 2);
  for (const auto& e : listed.events()) {
    EXPECT_EQ(e.mac().size(), kMacBytes);
    EXPECT_TRUE(VerifyEvent(publisher_->key(), e)) << e.header().seq();
    EXPECT_FALSE(VerifyEvent(EventKey(kTestSecret, "other"), e)) << e.header().seq();
  }
}

// What AcknowledgeEvents accepts: a subscriber name and a sequence the publisher has assigned.
TEST_F(EventsTest, AcknowledgeEventsValidatesItsRequest) {
  publisher_ = ValueOrDie(TestPublisher::Create("acks"));
  auto relay = StartRelay("");
  ASSERT_OK(publisher_->Append(3));
  ASSERT_TRUE(WaitFor([&] { return CursorIs(3, 0); }));
  auto stub = submarine::common::v1::EventLog::NewStub(
      rpc::MakeChannel(publisher_->event_log_address()));
  auto acknowledge = [&](const std::string& publisher, const std::string& subscriber,
                         uint64_t seq) {
    grpc::ClientContext ctx;
    AsService(&ctx);
    submarine::common::v1::AcknowledgeEventsRequest req;
    req.set_publisher(publisher);
    req.set_subscriber(subscriber);
    req.set_seq(seq);
    submarine::common::v1::AcknowledgeEventsResponse resp;
    return stub->AcknowledgeEvents(&ctx, req, &resp);
  };
  EXPECT_TRUE(acknowledge("acks", "audit.acks", 3).ok());
  EXPECT_TRUE(acknowledge("acks", "audit.acks", 1).ok()) << "an operator may rewind a subscriber";
  EXPECT_EQ(acknowledge("someone-else", "audit.acks", 1).error_code(), grpc::StatusCode::NOT_FOUND);
  auto beyond = acknowledge("acks", "audit.acks", 4);
  EXPECT_EQ(beyond.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(submarine::testing::ErrorField(beyond), "seq");
  for (const std::string& bad :
       {std::string(), std::string(129, 'a'), std::string("a b"), std::string("a\nb")}) {
    auto st = acknowledge("acks", bad, 1);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_EQ(submarine::testing::ErrorField(st), "subscriber") << bad;
  }
  int64_t acked = -1;
  ASSERT_OK(publisher_->pool()->Transact(db::kNoDeadline, [&](pqxx::work& tx) {
    acked = tx.exec("SELECT acked_seq FROM event_consumers WHERE subscriber = 'audit.acks'")[0][0]
                .as<int64_t>();
    return absl::OkStatus();
  }));
  EXPECT_EQ(acked, 1);
}

}  // namespace
}  // namespace submarine::events::testing
