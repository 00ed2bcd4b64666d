// ChangeWatcher and the Authorizer's invalidation against a real submarine-eventbus process: the
// test publishes hand-made frames (so it controls sequence numbers exactly) and observes the
// callbacks; the authorizer half uses an in-process AccessService that checks the principal the
// authorizer signs.
#include "common/events/change_watcher.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/auth/principal.h"
#include "common/authz/authorizer.h"
#include "common/events/wire.h"
#include "common/metrics/metrics.h"
#include "common/rpc/call_context.h"
#include "common/status/status.h"
#include "submarine/permission/v1/permission.grpc.pb.h"
#include "tests/integration/events/events_harness.h"
#include "tests/support/process.h"

namespace submarine::events {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using submarine::common::v1::Event;
using submarine::testing::MakeTempDir;
using submarine::testing::WaitFor;

constexpr char kPrefix[] = "submarine.permission.v1.";
// The internal secret of every process of these tests (and of the authorizer's codec below).
const std::string kSecret(32, 'k');

// What the watcher reported, readable from the test thread.
struct Recorder {
  std::mutex mu;
  int resyncs = 0;
  std::vector<std::pair<std::string, uint64_t>> changes;  // (topic, seq)

  ChangeWatcher::Options Options(const std::string& endpoint, milliseconds silence) {
    ChangeWatcher::Options o;
    o.name = "test";
    o.publisher = "permission";
    o.subscribe_endpoint = endpoint;
    o.topic_prefix = kPrefix;
    o.secret = kSecret;
    o.silence_timeout = silence;
    o.on_change = [this](const std::string& topic, const submarine::common::v1::EventHeader& header,
                         const std::string&) {
      std::lock_guard lock(mu);
      changes.emplace_back(topic, header.seq());
    };
    o.on_resync = [this] {
      std::lock_guard lock(mu);
      ++resyncs;
    };
    return o;
  }
  int Resyncs() {
    std::lock_guard lock(mu);
    return resyncs;
  }
  size_t Changes() {
    std::lock_guard lock(mu);
    return changes.size();
  }
  std::pair<std::string, uint64_t> Change(size_t i) {
    std::lock_guard lock(mu);
    return changes.at(i);
  }
};

// A publisher socket on the bus' frontend, owned by the test thread: it signs like a publisher's
// relay (with the key of the publisher each message names), or forges.
class RawPublisher {
 public:
  explicit RawPublisher(const std::string& frontend)
      : socket_(ProcessContext(), zmq::socket_type::pub) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.connect(frontend);
  }
  void Event(const std::string& publisher, const std::string& type, uint64_t seq) {
    submarine::common::v1::Event e;
    e.set_topic(type.find('.') == std::string::npos ? absl::StrCat(kPrefix, type) : type);
    e.mutable_header()->set_publisher(publisher);
    e.mutable_header()->set_seq(seq);
    e.mutable_header()->set_event_id(absl::StrCat("00000000-0000-4000-8000-", 100000000000 + seq));
    SendEvent(socket_, e, EventKey(kSecret, publisher));
  }
  void Beat(const std::string& publisher, uint64_t last_seq) {
    SendHeartbeat(socket_, kPrefix, EventKey(kSecret, publisher), last_seq,
                  std::chrono::system_clock::now());
  }
  // What someone on the bus without the internal secret can send: an event and a heartbeat far
  // ahead, each as three frames and as four with a made-up MAC.
  void Forge(const std::string& publisher, uint64_t seq) {
    submarine::common::v1::EventHeader header;
    header.set_publisher(publisher);
    header.set_seq(seq);
    header.set_event_id(absl::StrCat("00000000-0000-4000-8000-", 200000000000 + seq));
    submarine::common::v1::Heartbeat beat;
    beat.set_publisher(publisher);
    beat.set_last_seq(seq + 1000);
    for (const auto& [topic, payload] :
         {std::make_pair(absl::StrCat(kPrefix, "AccessChanged"), std::string()),
          std::make_pair(absl::StrCat(kPrefix, "Heartbeat"), beat.SerializeAsString())}) {
      const std::string h = header.SerializeAsString();
      constexpr auto kMore = zmq::send_flags::sndmore;
      socket_.send(zmq::buffer(topic), kMore);
      socket_.send(zmq::buffer(h), kMore);
      socket_.send(zmq::buffer(payload), zmq::send_flags::none);
      socket_.send(zmq::buffer(topic), kMore);
      socket_.send(zmq::buffer(h), kMore);
      socket_.send(zmq::buffer(payload), kMore);
      socket_.send(zmq::buffer(std::string(32, 'm')), zmq::send_flags::none);
    }
  }
  ~RawPublisher() { socket_.close(); }

 private:
  zmq::socket_t socket_;
};

class ChangeWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto bus = testing::BusProcess::Start(MakeTempDir("watcher-bus"));
    ASSERT_TRUE(bus.ok()) << Message(bus.status());
    bus_ = std::move(*bus);
  }
  std::unique_ptr<testing::BusProcess> bus_;
};

TEST_F(ChangeWatcherTest, ReportsEventsInOrderAndResyncsOnGapsAndHeartbeatsAhead) {
  Recorder rec;
  ChangeWatcher watcher(rec.Options(bus_->backend(), seconds(60)));
  ASSERT_TRUE(watcher.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return rec.Resyncs() >= 1; })) << "no resync at start";
  RawPublisher pub(bus_->frontend());
  // The subscription travels to the bus asynchronously: beat until the watcher hears the first
  // one, which is itself a resync (events may have passed before the subscription arrived).
  ASSERT_TRUE(WaitFor([&] {
    pub.Beat("permission", 0);
    return rec.Resyncs() >= 2;
  }));
  const int base = rec.Resyncs();

  pub.Event("environment", "submarine.environment.v1.EnvironmentCreated", 1);  // not subscribed
  pub.Event("permission", "AccessChanged", 1);
  pub.Event("permission", "AccessChanged", 2);
  pub.Event("permission", "AccessChanged", 2);  // a re-send: reported once
  pub.Event("permission", "ProjectChanged", 3);
  ASSERT_TRUE(WaitFor([&] { return rec.Changes() >= 3; }));
  EXPECT_EQ(rec.Change(0), std::make_pair(std::string(kPrefix) + "AccessChanged", uint64_t{1}));
  EXPECT_EQ(rec.Change(1).second, 2u);
  EXPECT_EQ(rec.Change(2), std::make_pair(std::string(kPrefix) + "ProjectChanged", uint64_t{3}));
  EXPECT_EQ(rec.Resyncs(), base) << "consecutive events must not resync";

  pub.Event("permission", "AccessChanged", 5);  // 4 was lost
  ASSERT_TRUE(WaitFor([&] { return rec.Changes() >= 4; }));
  EXPECT_EQ(rec.Change(3).second, 5u);
  EXPECT_EQ(rec.Resyncs(), base + 1) << "a gap must resync";

  pub.Beat("permission", 5);  // nothing new
  pub.Beat("permission", 3);  // a stale replica's beat: nothing new either
  pub.Beat("permission", 7);  // 6 and 7 were lost
  ASSERT_TRUE(WaitFor([&] { return rec.Resyncs() >= base + 2; }));
  pub.Event("permission", "AccessChanged", 8);
  ASSERT_TRUE(WaitFor([&] { return rec.Changes() >= 5; }));
  EXPECT_EQ(rec.Change(4).second, 8u);
  EXPECT_EQ(rec.Resyncs(), base + 2) << "only the beat ahead resyncs";
  EXPECT_EQ(rec.Changes(), 5u) << "the environment event and the re-send are not reported";

  // Another publisher under the same prefix, signing with its own key, is not the publisher
  // this watcher listens to: dropped (the event after it proves it was seen first).
  pub.Event("permission-2", "AccessChanged", 9);
  pub.Event("permission", "AccessChanged", 9);
  ASSERT_TRUE(WaitFor([&] { return rec.Changes() >= 6; }));
  EXPECT_EQ(rec.Change(5).second, 9u);
  EXPECT_EQ(rec.Changes(), 6u);
  EXPECT_EQ(rec.Resyncs(), base + 2);
  watcher.Stop();
}

TEST_F(ChangeWatcherTest, SilenceReconnectsAndResyncsAndTheStreamResumes) {
  Recorder rec;
  ChangeWatcher watcher(rec.Options(bus_->backend(), milliseconds(300)));
  ASSERT_TRUE(watcher.Start().ok());
  ASSERT_TRUE(WaitFor([&] { return rec.Resyncs() >= 3; }, seconds(10)))
      << "silence must resync (start + two reconnects)";
  RawPublisher pub(bus_->frontend());
  uint64_t seq = 0;
  ASSERT_TRUE(WaitFor([&] {
    pub.Event("permission", "AccessChanged", ++seq);
    return rec.Changes() >= 1;
  }));
}

TEST_F(ChangeWatcherTest, ABusRestartEndsInAResync) {
  Recorder rec;
  ChangeWatcher watcher(rec.Options(bus_->backend(), seconds(60)));
  ASSERT_TRUE(watcher.Start().ok());
  RawPublisher pub(bus_->frontend());
  ASSERT_TRUE(WaitFor([&] {
    pub.Event("permission", "AccessChanged", 1);
    return rec.Changes() >= 1;
  }));
  bus_->Kill();
  ASSERT_TRUE(bus_->Restart().ok());
  const int before = rec.Resyncs();
  // Whatever was published while the bus was down is announced by the next heartbeat.
  ASSERT_TRUE(WaitFor([&] {
    pub.Beat("permission", 3);
    return rec.Resyncs() > before;
  }));
  const size_t changes = rec.Changes();
  ASSERT_TRUE(WaitFor([&] {
    pub.Event("permission", "AccessChanged", 4);
    return rec.Changes() > changes;
  }));
  EXPECT_EQ(rec.Change(changes).second, 4u);
}

// Forged messages (three frames, or a MAC made up without the secret) reach no callback and
// cause no resync: only the publisher's own relay can tell the watcher something changed.
TEST_F(ChangeWatcherTest, ForgedMessagesAreDroppedWithoutAnyCallback) {
  Recorder rec;
  ChangeWatcher watcher(rec.Options(bus_->backend(), seconds(60)));
  ASSERT_TRUE(watcher.Start().ok());
  RawPublisher pub(bus_->frontend());
  ASSERT_TRUE(WaitFor([&] {
    pub.Beat("permission", 0);
    return rec.Resyncs() >= 2;
  }));
  const int base = rec.Resyncs();
  auto* bad_macs = metrics::Registry::Global().GetCounter(
      "submarine_events_rejected_total", "",
      absl::StrCat("subscriber=\"test\",publisher=\"permission\",reason=\"", kEventMacInvalid,
                   "\""));
  const uint64_t bad_macs_before = bad_macs->Value();
  // One socket: the forgeries arrive before the real event that follows them.
  for (uint64_t seq = 1; seq <= 3; ++seq) pub.Forge("permission", seq);
  pub.Event("permission", "ProjectChanged", 1);
  ASSERT_TRUE(WaitFor([&] { return rec.Changes() >= 1; }));
  EXPECT_EQ(rec.Change(0), std::make_pair(std::string(kPrefix) + "ProjectChanged", uint64_t{1}));
  EXPECT_EQ(rec.Changes(), 1u);
  EXPECT_EQ(rec.Resyncs(), base);
  EXPECT_EQ(bad_macs->Value() - bad_macs_before, 6u);
  watcher.Stop();
}

TEST(ChangeWatcherOptions, EndpointPrefixPublisherAndSecretAreRequired) {
  ChangeWatcher::Options valid;
  valid.subscribe_endpoint = "tcp://127.0.0.1:1";
  valid.topic_prefix = kPrefix;
  valid.publisher = "permission";
  valid.secret = kSecret;
  for (auto [field, clear] :
       std::vector<std::pair<std::string, std::function<void(ChangeWatcher::Options&)>>>{
           {"subscribe_endpoint", [](auto& o) { o.subscribe_endpoint.clear(); }},
           {"topic_prefix", [](auto& o) { o.topic_prefix.clear(); }},
           {"publisher", [](auto& o) { o.publisher.clear(); }},
           {"secret", [](auto& o) { o.secret = std::string(31, 'k'); }}}) {
    ChangeWatcher::Options o = valid;
    clear(o);
    auto st = ChangeWatcher(o).Start();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << field;
    google::rpc::ErrorInfo info;
    ASSERT_TRUE(GetErrorInfo(st, &info)) << field;
    EXPECT_EQ(info.metadata().at("field"), field);
  }
}

// --- The authorizer end to end: signed calls to a permission service, invalidation by events.

// Allows READ on one resource to alice; records the verified callers.
class FakeAccessService final : public submarine::permission::v1::AccessService::Service {
 public:
  grpc::Status CheckPermission(grpc::ServerContext* ctx,
                               const submarine::permission::v1::CheckPermissionRequest* req,
                               submarine::permission::v1::CheckPermissionResponse* resp) override {
    return rpc::HandleCall(*ctx, "permission.submarine.io", [&](const rpc::CallInfo& call) {
      std::lock_guard lock(mu);
      callers.push_back(
          absl::StrCat(call.subject, " for ", call.principal.user(), " asks ", req->subject()));
      resp->set_allowed(allowed && req->subject() == "users/alice");
      return absl::OkStatus();
    });
  }
  std::mutex mu;
  bool allowed = true;
  std::vector<std::string> callers;
  size_t Calls() {
    std::lock_guard lock(mu);
    return callers.size();
  }
};

TEST_F(ChangeWatcherTest, AuthorizerAnswersAreDroppedByAccessEvents) {
  FakeAccessService fake;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&fake);
  rpc::InstallCallInterceptor(builder);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server && port);
  // Both ends of this process share the internal secret, as services and the gateway do.
  rpc::SetPrincipalCodec(std::make_shared<auth::PrincipalCodec>(kSecret));

  submarine::config::v1::PermissionClientConfig config;
  config.set_address(absl::StrCat("127.0.0.1:", port));
  config.set_subscribe_endpoint(bus_->backend());
  auto authorizer = authz::Authorizer::Create(config, "authz-it", kSecret);
  ASSERT_TRUE(authorizer.ok()) << Message(authorizer.status());
  auto tasks = (*authorizer)->tasks();
  ASSERT_EQ(tasks.size(), 1u);
  ASSERT_TRUE(tasks[0]->Start().ok());
  // The watcher's first connection drops the cache once; wait for it so it cannot fall between
  // the two checks below.
  auto* invalidations = metrics::Registry::Global().GetCounter(
      "submarine_authz_invalidations_total", "", "service=\"authz-it\"");
  ASSERT_TRUE(WaitFor([&] { return invalidations->Value() >= 1; }));

  rpc::CallInfo alice;
  alice.principal.set_kind(submarine::common::v1::Principal::USER);
  alice.principal.set_user("alice");
  alice.request_id = "req-authz-it";
  auto check = [&] {
    return (*authorizer)
        ->Check(alice, "projects/p/environments/e", submarine::permission::v1::Permission::READ);
  };
  ASSERT_TRUE(check().ok()) << Message(check());
  ASSERT_TRUE(check().ok());
  {
    std::lock_guard lock(fake.mu);
    ASSERT_EQ(fake.callers.size(), 1u) << "the second answer comes from the cache";
    EXPECT_EQ(fake.callers[0], "services/authz-it for alice asks users/alice");
  }

  // The grant is deleted: the permission service publishes AccessChanged.
  {
    std::lock_guard lock(fake.mu);
    fake.allowed = false;
  }
  RawPublisher pub(bus_->frontend());
  uint64_t seq = 0;
  ASSERT_TRUE(WaitFor([&] {
    pub.Event("permission", "AccessChanged", ++seq);
    return check().code() == absl::StatusCode::kPermissionDenied;
  })) << "an access event must drop the cached answer";

  tasks[0]->Stop();
  server->Shutdown(std::chrono::system_clock::now());
  rpc::SetPrincipalCodec(nullptr);
}

}  // namespace
}  // namespace submarine::events
