// The real submarine-permission binary as wired by its app: the audit log records identity,
// quota and environment mutations (an environment-service process as an audit source, over a
// real eventbus), reporting how far it got to each publisher; the leader's housekeeping
// reclaims a lease whose holder stopped heart-beating and prunes the audit log's inbox; and only
// admins read the log.

#include <gtest/gtest.h>

#include <csignal>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/config/config.h"
#include "common/rpc/channel.h"
#include "common/util/wait.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/integration/environment/environment_fixture.h"
#include "tests/integration/events/events_harness.h"
#include "tests/integration/permission/permission_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::testing {
namespace {

namespace pv1 = submarine::permission::v1;

// The first column of the first row of `sql` on database `dbname` (-1 on any failure).
int64_t Query(const std::string& dbname, const std::string& sql) {
  try {
    pqxx::connection conn(TestPostgres::Get().ConnInfo(dbname));
    pqxx::work tx(conn);
    auto r = tx.exec(sql);
    return r.empty() || r[0][0].is_null() ? -1 : r[0][0].as<int64_t>();
  } catch (const std::exception&) {
    return -1;
  }
}

TEST(AuditProcessTest, TheServiceRecordsEveryStreamAndReclaimsLapsedLeases) {
  std::string dir = MakeTempDir("audit-process");
  auto bus = events::testing::BusProcess::Start(dir);
  ASSERT_TRUE(bus.ok()) << bus.status();

  // The permission process reuses an existing internal secret in its data dir: write it first so
  // the environment service can be started (and named as an audit source) before it.
  std::string perm_dir = MakeTempDir("audit-process-perm");
  std::string secret_file = perm_dir + "/internal.secret";
  ASSERT_TRUE(config::WriteFileAtomic(secret_file, std::string(40, 'q'), 0600).ok());
  const std::string env_db = TestPostgres::Get().CreateDatabase("audit_env");
  std::string env_yaml = absl::StrReplaceAll(
      EnvironmentConfig(env_db, (*bus)->frontend()),
      {{"server:\n", absl::StrCat("server:\n  gateway_secret_file: ", secret_file, "\n")}});
  env_yaml += "permission:\n  insecure_no_authorization: true\n";
  ReadyInfo env_ready;
  auto env_process =
      StartService("submarine-environment", dir, "environment", env_yaml, &env_ready);
  ASSERT_TRUE(env_process.ok()) << env_process.status();

  // Inbox rows go as soon as they are at or below the offset (the housekeeping runs every
  // 500 ms).
  std::string extra = absl::StrCat(
      "  subscribe_endpoint: \"", (*bus)->backend(), "\"\n", "  inbox_retention_hours: 0\n",
      "peers:\n  - name: environment\n    topic_prefix: submarine.environment.v1.\n",
      "    address: \"", env_ready.grpc, "\"\n");
  auto started = StartPermission("", perm_dir, extra, (*bus)->frontend());
  ASSERT_TRUE(started.ok()) << started.status();
  auto& perm = **started;

  ASSERT_TRUE(perm.CreateUser("alice", "alice-password-1").ok());
  ASSERT_TRUE(perm.CreateProject("p1", "alice").ok());
  pv1::SetQuotaRequest quota;
  quota.set_owner("users/alice");
  quota.mutable_limits()->set_gpus(2);
  pv1::Usage usage;
  ASSERT_TRUE(
      perm.quota->SetQuota(perm.AsUser("admin", "", "req-quota").get(), quota, &usage).ok());

  // A holder takes the whole quota with the shortest ttl and then stops heart-beating.
  pv1::AcquireLeaseRequest acquire;
  acquire.mutable_lease()->set_owner("users/alice");
  acquire.mutable_lease()->set_project("projects/p1");
  acquire.mutable_lease()->mutable_resources()->set_gpus(2);
  acquire.set_ttl_seconds(5);
  pv1::Lease lease;
  auto st = perm.quota->AcquireLease(perm.AsUser("alice", "", "req-lease").get(), acquire, &lease);
  ASSERT_TRUE(st.ok()) << st.error_message();
  acquire.mutable_lease()->mutable_resources()->set_gpus(1);
  pv1::Lease refused;
  EXPECT_EQ(perm.quota->AcquireLease(perm.AsUser("alice").get(), acquire, &refused).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  // A mutation in another service, as alice.
  auto env_stub =
      submarine::environment::v1::EnvironmentService::NewStub(rpc::MakeChannel(env_ready.grpc));
  submarine::environment::v1::CreateEnvironmentRequest create;
  create.set_parent("projects/default");
  create.set_environment_id("audited");
  create.mutable_environment()->set_image("python:3.11");
  submarine::environment::v1::Environment env;
  st = env_stub->CreateEnvironment(perm.AsUser("alice", "", "req-env").get(), create, &env);
  ASSERT_TRUE(st.ok()) << st.error_message();

  // The resources come back without any release.
  pv1::GetUsageRequest get_usage;
  get_usage.set_owner("users/alice");
  EXPECT_TRUE(WaitUntil(
      [&] {
        return perm.quota->GetUsage(perm.AsUser("alice").get(), get_usage, &usage).ok() &&
               usage.used().gpus() == 0 && usage.active_leases() == 0;
      },
      std::chrono::seconds(30)));
  EXPECT_TRUE(perm.quota->AcquireLease(perm.AsUser("alice").get(), acquire, &refused).ok());

  // The audit log has all of it, including the housekeeping's reclaim of the lapsed lease.
  auto find = [](const pv1::ListAuditEventsResponse& r, const std::string& type,
                 const std::string& resource, const std::string& principal) {
    for (const auto& e : r.events()) {
      if (e.type() == type && e.resource() == resource && e.principal() == principal) return &e;
    }
    return static_cast<const pv1::AuditEvent*>(nullptr);
  };
  pv1::ListAuditEventsRequest list;
  list.set_page_size(1000);
  pv1::ListAuditEventsResponse events;
  ASSERT_TRUE(WaitUntil(
      [&] {
        if (!perm.audit->ListAuditEvents(perm.AsAdmin().get(), list, &events).ok()) return false;
        return find(events, "submarine.permission.v1.LeaseChanged", lease.name(), "users/alice") &&
               find(events, "submarine.permission.v1.LeaseChanged", lease.name(), "") &&
               find(events, "submarine.environment.v1.EnvironmentCreated", env.name(),
                    "users/alice") &&
               find(events, "submarine.permission.v1.QuotaChanged", "users/alice", "users/admin") &&
               find(events, "submarine.permission.v1.UserChanged", "users/alice", "users/admin");
      },
      std::chrono::seconds(30)))
      << events.DebugString();
  EXPECT_EQ(find(events, "submarine.permission.v1.LeaseChanged", lease.name(), "users/alice")
                ->request_id(),
            "req-lease");
  EXPECT_EQ(find(events, "submarine.permission.v1.QuotaChanged", "users/alice", "users/admin")
                ->request_id(),
            "req-quota");
  const auto* created =
      find(events, "submarine.environment.v1.EnvironmentCreated", env.name(), "users/alice");
  EXPECT_EQ(created->request_id(), "req-env");
  EXPECT_EQ(created->publisher(), "environment");

  // Each audit subscriber told its publisher how far it got (retention keeps the rest for it),
  // and the housekeeping pruned the inbox rows it no longer needs (the records stay).
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Query(env_db,
                     "SELECT acked_seq FROM environment.event_consumers "
                     "WHERE publisher = 'environment' AND subscriber = 'permission.environment'") ==
               Query(perm.dbname,
                     "SELECT last_seq FROM permission.consumer_offsets "
                     "WHERE publisher = 'environment'");
      },
      std::chrono::seconds(30)));
  EXPECT_GT(Query(env_db, "SELECT acked_seq FROM environment.event_consumers"), 0);
  EXPECT_TRUE(
      WaitUntil([&] { return Query(perm.dbname, "SELECT count(*) FROM permission.inbox") == 0; },
                std::chrono::seconds(30)));
  EXPECT_GE(Query(perm.dbname, "SELECT count(*) FROM permission.audit_events"), 5);

  pv1::ListAuditEventsResponse denied;
  EXPECT_EQ(perm.audit->ListAuditEvents(perm.AsUser("alice").get(), list, &denied).error_code(),
            grpc::StatusCode::PERMISSION_DENIED);

  perm.process.Signal(SIGTERM);
  EXPECT_EQ(perm.process.Wait(), 0);
  env_process->Signal(SIGTERM);
  EXPECT_EQ(env_process->Wait(), 0);
}

}  // namespace
}  // namespace submarine::testing
