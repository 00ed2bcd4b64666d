// The audit log end to end: mutations made through the permission service (in process, with its
// real outbox relay, EventLog and AuditLog) and through a real environment-service process,
// carried by a real eventbus process, appear in ListAuditEvents with who, what, when and the
// request id; filters and pagination work; only admins may read it.

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <csignal>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/rpc/channel.h"
#include "common/util/wait.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/integration/events/events_harness.h"
#include "tests/integration/quota/permission_inprocess.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::permission::testing {
namespace {

using google::protobuf::util::TimeUtil;
using submarine::common::v1::Principal;
using P = PermissionInProcess;

// Microsecond wall-clock time (the precision of the recorded occur_time).
google::protobuf::Timestamp NowTimestamp() {
  return TimeUtil::MicrosecondsToTimestamp(std::chrono::duration_cast<std::chrono::microseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count());
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = submarine::testing::MakeTempDir("audit-test");
    auto bus = events::testing::BusProcess::Start(dir_);
    ASSERT_TRUE(bus.ok()) << bus.status();
    bus_ = *std::move(bus);

    // The environment service trusts principals signed with the same internal secret as the
    // in-process permission service's codec.
    std::string secret_file = dir_ + "/internal.secret";
    {
      std::ofstream out(secret_file);
      out << std::string(32, 's');
    }
    ::chmod(secret_file.c_str(), 0600);
    std::string env_db = submarine::testing::TestPostgres::Get().CreateDatabase("audit_env");
    std::string yaml = absl::StrReplaceAll(
        submarine::testing::EnvironmentConfig(env_db, bus_->frontend()),
        {{"server:\n", absl::StrCat("server:\n  gateway_secret_file: ", secret_file, "\n")}});
    yaml += "permission:\n  insecure_no_authorization: true\n";
    auto env = submarine::testing::StartService("submarine-environment", dir_, "environment", yaml,
                                                &env_ready_);
    ASSERT_TRUE(env.ok()) << env.status();
    env_process_ = *std::move(env);
    env_ =
        submarine::environment::v1::EnvironmentService::NewStub(rpc::MakeChannel(env_ready_.grpc));

    InProcessOptions options;
    options.manual_clock = false;
    options.with_events = true;
    auto* events = options.config.mutable_common()->mutable_events();
    events->set_publish_endpoint(bus_->frontend());
    events->set_subscribe_endpoint(bus_->backend());
    events->set_heartbeat_ms(100);
    auto* peer = options.config.mutable_common()->add_peers();
    peer->set_name("environment");
    peer->set_topic_prefix("submarine.environment.v1.");
    peer->set_address(env_ready_.grpc);
    auto started = PermissionInProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("root", /*admin=*/true).ok());
    ASSERT_TRUE(svc_->AddUser("alice").ok());
    ASSERT_TRUE(svc_->AddProject("p1", "users/alice").ok());
  }

  void TearDown() override {
    svc_.reset();
    env_process_.Signal(SIGTERM);
    env_process_.Wait();
  }

  // Every audit event matching `req`, walking all pages of `page_size`.
  std::vector<v1::AuditEvent> All(v1::ListAuditEventsRequest req, int page_size = 0) {
    std::vector<v1::AuditEvent> out;
    req.set_page_size(page_size);
    for (int pages = 0; pages < 1000; ++pages) {
      v1::ListAuditEventsResponse resp;
      auto st = svc_->audit->ListAuditEvents(svc_->As(P::User("root")).get(), req, &resp);
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok()) break;
      for (const auto& e : resp.events()) out.push_back(e);
      if (resp.next_page_token().empty()) break;
      req.set_page_token(resp.next_page_token());
    }
    return out;
  }

  static const v1::AuditEvent* Find(const std::vector<v1::AuditEvent>& events,
                                    const std::string& type, const std::string& resource) {
    for (const auto& e : events) {
      if (e.type() == type && e.resource() == resource) return &e;
    }
    return nullptr;
  }

  std::string dir_;
  std::unique_ptr<events::testing::BusProcess> bus_;
  submarine::testing::ChildProcess env_process_;
  submarine::testing::ReadyInfo env_ready_;
  std::unique_ptr<submarine::environment::v1::EnvironmentService::Stub> env_;
  std::unique_ptr<PermissionInProcess> svc_;
};

TEST_F(AuditTest, MutationsOfEveryStreamAreRecordedWithWhoWhatWhenAndRequestId) {
  auto before = NowTimestamp();
  // Through the permission service.
  v1::AcquireLeaseRequest acquire;
  acquire.mutable_lease()->set_owner("users/alice");
  acquire.mutable_lease()->set_project("projects/p1");
  acquire.mutable_lease()->mutable_resources()->set_gpus(1);
  v1::Lease lease;
  ASSERT_TRUE(
      svc_->quota->AcquireLease(svc_->As(P::User("alice"), "req-lease-1").get(), acquire, &lease)
          .ok());
  v1::SetQuotaRequest quota;
  quota.set_owner("users/alice");
  quota.mutable_limits()->set_gpus(8);
  v1::Usage usage;
  ASSERT_TRUE(
      svc_->quota->SetQuota(svc_->As(P::User("root"), "req-quota-1").get(), quota, &usage).ok());
  // Through the environment service, as alice (principal signed with the shared secret).
  submarine::environment::v1::CreateEnvironmentRequest create;
  create.set_parent("projects/default");
  create.set_environment_id("e_1");
  create.mutable_environment()->set_image("python:3.11");
  submarine::environment::v1::Environment env;
  auto st = env_->CreateEnvironment(svc_->As(P::User("alice"), "req-env-1").get(), create, &env);
  ASSERT_TRUE(st.ok()) << st.error_message();

  std::vector<v1::AuditEvent> events;
  ASSERT_TRUE(WaitUntil(
      [&] {
        events = All(v1::ListAuditEventsRequest());
        return Find(events, "submarine.permission.v1.LeaseChanged", lease.name()) &&
               Find(events, "submarine.permission.v1.QuotaChanged", "users/alice") &&
               Find(events, "submarine.environment.v1.EnvironmentCreated", env.name());
      },
      std::chrono::seconds(30)))
      << events.size() << " events recorded";
  auto after = NowTimestamp();

  const auto* e = Find(events, "submarine.permission.v1.LeaseChanged", lease.name());
  EXPECT_EQ(e->publisher(), "permission");
  EXPECT_EQ(e->principal(), "users/alice");
  EXPECT_EQ(e->request_id(), "req-lease-1");
  EXPECT_GE(e->occur_time(), before);
  EXPECT_LE(e->occur_time(), after);
  EXPECT_GT(e->seq(), 0u);
  e = Find(events, "submarine.permission.v1.QuotaChanged", "users/alice");
  EXPECT_EQ(e->principal(), "users/root");
  EXPECT_EQ(e->request_id(), "req-quota-1");
  e = Find(events, "submarine.environment.v1.EnvironmentCreated", env.name());
  EXPECT_EQ(e->publisher(), "environment");
  EXPECT_EQ(e->principal(), "users/alice");
  EXPECT_EQ(e->request_id(), "req-env-1");
  EXPECT_GE(e->occur_time(), before);

  // Exactly once each, newest first.
  std::set<std::string> ids;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_TRUE(ids.insert(events[i].event_id()).second) << events[i].event_id();
    if (i > 0) {
      EXPECT_LE(events[i].occur_time(), events[i - 1].occur_time());
    }
  }
  // Paging one by one returns the same sequence.
  auto paged = All(v1::ListAuditEventsRequest(), 1);
  ASSERT_EQ(paged.size(), events.size());
  for (size_t i = 0; i < paged.size(); ++i) EXPECT_EQ(paged[i].event_id(), events[i].event_id());

  // Filters.
  v1::ListAuditEventsRequest by_user;
  by_user.set_principal("users/root");
  auto root_events = All(by_user);
  ASSERT_EQ(root_events.size(), 1u);
  EXPECT_EQ(root_events[0].type(), "submarine.permission.v1.QuotaChanged");

  v1::ListAuditEventsRequest by_resource;
  by_resource.set_resource("projects/default");
  auto project_events = All(by_resource);
  EXPECT_TRUE(Find(project_events, "submarine.environment.v1.EnvironmentCreated", env.name()));
  for (const auto& pe : project_events) {
    EXPECT_EQ(pe.resource().rfind("projects/default/", 0), 0u) << pe.resource();
  }
  // The resource itself and its children, literally: "_" and "%" are not wildcards, and a
  // shared prefix that is not a parent does not match.
  by_resource.set_resource(env.name());
  EXPECT_EQ(All(by_resource).size(), 1u);
  // Unescaped, each of these LIKE patterns would match every child of projects/default.
  for (const char* wildcard :
       {"projects/defaul_", "projects/%", "projects/default_", "projects/d%t"}) {
    by_resource.set_resource(wildcard);
    EXPECT_EQ(All(by_resource).size(), 0u) << wildcard;
  }
  by_resource.set_resource("projects/def");
  EXPECT_EQ(All(by_resource).size(), 0u);

  v1::ListAuditEventsRequest by_time;
  *by_time.mutable_start_time() = after;
  EXPECT_EQ(All(by_time).size(), 0u);
  by_time.clear_start_time();
  *by_time.mutable_end_time() = before;
  size_t older = All(by_time).size();  // the environment's seeded built-ins may be older
  *by_time.mutable_start_time() = before;
  *by_time.mutable_end_time() = after;
  auto window = All(by_time);
  EXPECT_EQ(window.size() + older, events.size());
  EXPECT_TRUE(Find(window, "submarine.permission.v1.LeaseChanged", lease.name()));
}

TEST_F(AuditTest, OnlyAdminsMayReadAndBadInputsNameTheirField) {
  v1::ListAuditEventsRequest req;
  v1::ListAuditEventsResponse resp;
  auto st = svc_->audit->ListAuditEvents(svc_->As(P::User("alice")).get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  Principal forged = P::User("alice");
  forged.set_admin(true);
  st = svc_->audit->ListAuditEvents(svc_->As(forged).get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // A service acting for alice has her rights, no more; one acting for itself an admin's.
  st = svc_->audit->ListAuditEvents(svc_->As(P::Service("experiment", "alice")).get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  st = svc_->audit->ListAuditEvents(svc_->As(P::Service("experiment", "")).get(), req, &resp);
  EXPECT_TRUE(st.ok()) << st.error_message();
  st = svc_->audit->ListAuditEvents(P::Anonymous().get(), req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  auto field = [&](const v1::ListAuditEventsRequest& bad) {
    auto s = svc_->audit->ListAuditEvents(svc_->As(P::User("root")).get(), bad, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
    return ErrorField(s);
  };
  v1::ListAuditEventsRequest bad;
  bad.set_principal(std::string(300, 'a'));
  EXPECT_EQ(field(bad), "principal");
  bad.Clear();
  bad.set_resource("projects/\n");
  EXPECT_EQ(field(bad), "resource");
  bad.Clear();
  *bad.mutable_start_time() = TimeUtil::SecondsToTimestamp(2000);
  *bad.mutable_end_time() = TimeUtil::SecondsToTimestamp(1000);
  EXPECT_EQ(field(bad), "end_time");
  bad.Clear();
  bad.mutable_start_time()->set_nanos(-5);
  EXPECT_EQ(field(bad), "start_time");
  bad.Clear();
  bad.set_page_size(-1);
  EXPECT_EQ(field(bad), "page_size");
  bad.Clear();
  bad.set_page_token("not-a-token");
  EXPECT_EQ(field(bad), "page_token");
  // A token issued for another filter is refused too.
  for (int i = 0; i < 3; ++i) {
    v1::SetQuotaRequest quota;
    quota.set_owner("users/alice");
    quota.mutable_limits()->set_gpus(i);
    v1::Usage usage;
    ASSERT_TRUE(svc_->quota->SetQuota(svc_->As(P::User("root")).get(), quota, &usage).ok());
  }
  v1::ListAuditEventsRequest first;
  first.set_page_size(1);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return svc_->audit->ListAuditEvents(svc_->As(P::User("root")).get(), first, &resp).ok() &&
               !resp.next_page_token().empty();
      },
      std::chrono::seconds(30)));
  bad.Clear();
  bad.set_principal("users/alice");
  bad.set_page_token(resp.next_page_token());
  EXPECT_EQ(field(bad), "page_token");
}

}  // namespace
}  // namespace submarine::permission::testing
