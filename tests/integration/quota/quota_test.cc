// Quotas and leases: the atomic all-or-nothing AcquireLease under 50-way concurrency, lapsing
// and heart-beating leases (manual clock), release, reclaim, authorization and input validation.

#include <google/protobuf/util/time_util.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/util/wait.h"
#include "submarine/permission/v1/permission.pb.h"
#include "tests/integration/quota/permission_inprocess.h"

namespace submarine::permission::testing {
namespace {

using google::protobuf::util::TimeUtil;
using submarine::common::v1::Principal;
using P = PermissionInProcess;

class QuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InProcessOptions options;
    options.config.mutable_default_user_quota()->set_notebooks(2);
    options.pool_size = 50;
    auto started = PermissionInProcess::Start(options);
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("root", /*admin=*/true).ok());
    ASSERT_TRUE(svc_->AddUser("alice").ok());
    ASSERT_TRUE(svc_->AddUser("bob").ok());
    ASSERT_TRUE(svc_->AddUser("carol", false, /*disabled=*/true).ok());
    ASSERT_TRUE(svc_->AddTeam("ml", {"alice"}).ok());
    ASSERT_TRUE(svc_->AddProject("p1", "users/alice").ok());
  }

  grpc::Status SetQuota(const std::string& owner, const v1::Resources& limits,
                        const Principal& as = P::User("root")) {
    v1::SetQuotaRequest req;
    req.set_owner(owner);
    *req.mutable_limits() = limits;
    v1::Usage usage;
    return svc_->quota->SetQuota(svc_->As(as).get(), req, &usage);
  }

  static v1::AcquireLeaseRequest LeaseRequest(const std::string& owner, const v1::Resources& r,
                                              int ttl = 0) {
    v1::AcquireLeaseRequest req;
    req.mutable_lease()->set_owner(owner);
    req.mutable_lease()->set_project("projects/p1");
    req.mutable_lease()->set_holder("projects/p1/experiments/e1");
    *req.mutable_lease()->mutable_resources() = r;
    req.set_ttl_seconds(ttl);
    return req;
  }

  grpc::Status Acquire(const Principal& as, const v1::AcquireLeaseRequest& req,
                       v1::Lease* out = nullptr) {
    v1::Lease lease;
    auto st = svc_->quota->AcquireLease(svc_->As(as).get(), req, &lease);
    if (out) *out = lease;
    return st;
  }

  v1::Usage Usage(const std::string& owner, const Principal& as = P::User("root")) {
    v1::GetUsageRequest req;
    req.set_owner(owner);
    v1::Usage usage;
    auto st = svc_->quota->GetUsage(svc_->As(as).get(), req, &usage);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return usage;
  }

  static v1::Resources Gpus(int64_t n) {
    v1::Resources r;
    r.set_gpus(n);
    return r;
  }

  std::unique_ptr<PermissionInProcess> svc_;
};

// Runs `n` AcquireLease calls at once; returns their statuses.
std::vector<grpc::Status> Race(
    PermissionInProcess* svc, int n,
    const std::function<std::pair<Principal, v1::AcquireLeaseRequest>(int)>& make) {
  std::vector<grpc::Status> out(n);
  std::vector<std::thread> threads;
  std::atomic<int> ready{0};
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto [who, req] = make(i);
      auto ctx = svc->As(who);
      v1::Lease lease;
      ready++;
      while (ready.load() < n) std::this_thread::yield();  // start together
      out[i] = svc->quota->AcquireLease(ctx.get(), req, &lease);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

TEST_F(QuotaTest, FiftyConcurrentAcquisitionsNeverOverCommit) {
  // A missing lock shows up as over-commit only in some interleavings: race several times.
  for (int round = 0; round < 3; ++round) {
    std::string user = absl::StrCat("racer", round);
    std::string owner = "users/" + user;
    ASSERT_TRUE(svc_->AddUser(user).ok());
    ASSERT_TRUE(SetQuota(owner, Gpus(10)).ok());
    auto results = Race(svc_.get(), 50, [&](int) {
      return std::make_pair(P::User(user), LeaseRequest(owner, Gpus(3)));
    });
    int granted = 0;
    for (const auto& st : results) {
      if (st.ok()) {
        ++granted;
        continue;
      }
      ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
      EXPECT_EQ(ErrorReason(st), "QUOTA_EXCEEDED");
      auto md = ErrorInfoOf(st).metadata();
      EXPECT_EQ(md["resources"], "gpus");
      EXPECT_EQ(md["gpusRequested"], "3");
      EXPECT_EQ(md["gpusUsed"], "9");
      EXPECT_EQ(md["gpusLimit"], "10");
      EXPECT_NE(st.error_message().find("gpus requested 3, used 9, limit 10"), std::string::npos)
          << st.error_message();
    }
    EXPECT_EQ(granted, 3) << "round " << round;  // floor(10 / 3)
    auto usage = Usage(owner);
    EXPECT_EQ(usage.used().gpus(), 9);
    EXPECT_EQ(usage.limits().gpus(), 10);
    EXPECT_EQ(usage.active_leases(), 3);
  }
}

TEST_F(QuotaTest, ConcurrentAcquisitionsForAUserAndATeamEachHoldTheirLimit) {
  v1::Resources cpu;
  cpu.set_cpu_millis(1000);
  ASSERT_TRUE(SetQuota("users/alice", cpu).ok());
  ASSERT_TRUE(SetQuota("teams/ml", cpu).ok());
  v1::Resources want;
  want.set_cpu_millis(300);
  want.set_memory_mib(512);  // unlimited: never the missing resource
  auto results = Race(svc_.get(), 50, [&](int i) {
    // Half for alice herself, half for her team, some through a service acting for her.
    std::string owner = i % 2 ? "teams/ml" : "users/alice";
    Principal who = i % 3 ? P::User("alice") : P::Service("experiment", "alice");
    return std::make_pair(who, LeaseRequest(owner, want));
  });
  int granted = 0;
  for (const auto& st : results) {
    if (st.ok()) {
      ++granted;
      continue;
    }
    ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
    EXPECT_EQ(ErrorInfoOf(st).metadata().at("resources"), "cpu_millis");
  }
  EXPECT_EQ(granted, 6);
  EXPECT_EQ(Usage("users/alice").used().cpu_millis(), 900);
  EXPECT_EQ(Usage("teams/ml").used().cpu_millis(), 900);
  EXPECT_EQ(Usage("teams/ml").used().memory_mib(), 3 * 512);
}

TEST_F(QuotaTest, RefusalNamesEveryMissingResourceAndGrantsNothing) {
  v1::Resources limits;
  limits.set_gpus(1);
  limits.set_cpu_millis(100);
  ASSERT_TRUE(SetQuota("users/alice", limits).ok());
  v1::Resources want;
  want.set_gpus(2);
  want.set_cpu_millis(200);
  want.set_memory_mib(1);
  auto st = Acquire(P::User("alice"), LeaseRequest("users/alice", want));
  ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto md = ErrorInfoOf(st).metadata();
  EXPECT_EQ(md["resources"], "cpu_millis,gpus");
  EXPECT_EQ(md["cpuMillisLimit"], "100");
  EXPECT_EQ(md["gpusRequested"], "2");
  EXPECT_EQ(md["owner"], "users/alice");
  EXPECT_EQ(Usage("users/alice").active_leases(), 0);
}

TEST_F(QuotaTest, DefaultsApplyUntilAnExplicitLimitOverridesThem) {
  v1::Resources two;
  two.set_notebooks(2);
  v1::Resources three;
  three.set_notebooks(3);
  auto usage = Usage("users/bob", P::User("bob"));
  EXPECT_EQ(usage.limits().notebooks(), 2);  // config default_user_quota
  EXPECT_FALSE(usage.limits().has_gpus());   // absent default: unlimited
  EXPECT_EQ(Acquire(P::User("bob"), LeaseRequest("users/bob", three)).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(SetQuota("users/bob", three).ok());
  EXPECT_TRUE(Acquire(P::User("bob"), LeaseRequest("users/bob", three)).ok());
  // An explicit quota that leaves notebooks unset falls back to the default again.
  ASSERT_TRUE(SetQuota("users/bob", Gpus(4)).ok());
  usage = Usage("users/bob");
  EXPECT_EQ(usage.limits().notebooks(), 2);
  EXPECT_EQ(usage.limits().gpus(), 4);
  EXPECT_EQ(usage.used().notebooks(), 3);  // over the lowered limit: nothing more fits
  v1::Resources one;
  one.set_notebooks(1);
  EXPECT_EQ(Acquire(P::User("bob"), LeaseRequest("users/bob", one)).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Teams have no default here: unlimited.
  EXPECT_TRUE(Acquire(P::User("alice"), LeaseRequest("teams/ml", three)).ok());
}

TEST_F(QuotaTest, AHolderThatStopsHeartbeatingGetsItsResourcesBack) {
  ASSERT_TRUE(SetQuota("users/alice", Gpus(4)).ok());
  v1::Lease lease;
  ASSERT_TRUE(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(4), 5), &lease).ok());
  EXPECT_EQ(TimeUtil::TimestampToSeconds(lease.expire_time()) -
                TimeUtil::TimestampToSeconds(lease.create_time()),
            5);
  EXPECT_EQ(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(1))).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  svc_->clock().Advance(std::chrono::seconds(6));  // the holder crashed: no heartbeat
  // The lapsed lease stops counting at once, before any reclaim.
  EXPECT_TRUE(
      WaitUntil([&] { return Usage("users/alice").used().gpus() == 0; }, std::chrono::seconds(10)));
  EXPECT_TRUE(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(4))).ok());

  // A lapsed lease never comes back.
  v1::HeartbeatLeaseRequest hb;
  hb.set_name(lease.name());
  v1::Lease renewed;
  auto st = svc_->quota->HeartbeatLease(svc_->As(P::User("alice")).get(), hb, &renewed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrorReason(st), "LEASE_EXPIRED");

  // Reclaim deletes it (and only it) and publishes LeaseChanged DELETED.
  auto reclaimed = svc_->quota_service().ReclaimExpired();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 1);
  st = svc_->quota->HeartbeatLease(svc_->As(P::User("alice")).get(), hb, &renewed);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Usage("users/alice").active_leases(), 1);
  auto rows = svc_->Query(
      "SELECT count(*) FROM outbox WHERE topic = 'submarine.permission.v1.LeaseChanged' "
      "AND resource = $1",
      {lease.name()});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0][0].as<int>(), 2);  // CREATED and DELETED
}

TEST_F(QuotaTest, HeartbeatsKeepALeaseAlive) {
  ASSERT_TRUE(SetQuota("users/alice", Gpus(2)).ok());
  v1::Lease lease;
  ASSERT_TRUE(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(2), 5), &lease).ok());
  v1::HeartbeatLeaseRequest hb;
  hb.set_name(lease.name());
  // Three periods of 4 s with a heartbeat each: 12 s in all, past the first 5 s deadline.
  for (int i = 0; i < 3; ++i) {
    svc_->clock().Advance(std::chrono::seconds(4));
    v1::Lease renewed;
    auto st = svc_->quota->HeartbeatLease(
        svc_->As(i == 1 ? P::Service("experiment", "alice") : P::User("alice")).get(), hb,
        &renewed);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(TimeUtil::TimestampToMicroseconds(renewed.expire_time()),
              std::chrono::duration_cast<std::chrono::microseconds>(
                  svc_->clock().Now().time_since_epoch() + std::chrono::seconds(5))
                  .count());
    EXPECT_EQ(Usage("users/alice").used().gpus(), 2);
  }
  EXPECT_EQ(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(1))).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  auto reclaimed = svc_->quota_service().ReclaimExpired();
  ASSERT_TRUE(reclaimed.ok());
  EXPECT_EQ(*reclaimed, 0);
  // A longer ttl on a heartbeat sticks.
  hb.set_ttl_seconds(60);
  v1::Lease renewed;
  ASSERT_TRUE(svc_->quota->HeartbeatLease(svc_->As(P::User("alice")).get(), hb, &renewed).ok());
  svc_->clock().Advance(std::chrono::seconds(30));
  EXPECT_EQ(Usage("users/alice").used().gpus(), 2);
  svc_->clock().Advance(std::chrono::seconds(31));
  EXPECT_EQ(Usage("users/alice").used().gpus(), 0);
}

TEST_F(QuotaTest, ReleaseGivesResourcesBackOnce) {
  ASSERT_TRUE(SetQuota("users/alice", Gpus(1)).ok());
  v1::Lease lease;
  ASSERT_TRUE(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(1)), &lease).ok());
  v1::ListLeasesRequest list_req;
  v1::ListLeasesResponse list;
  ASSERT_TRUE(svc_->quota->ListLeases(svc_->As(P::User("alice")).get(), list_req, &list).ok());
  ASSERT_EQ(list.leases_size(), 1);
  EXPECT_EQ(list.leases(0).name(), lease.name());
  EXPECT_EQ(list.leases(0).resources().gpus(), 1);
  EXPECT_EQ(list.leases(0).holder(), "projects/p1/experiments/e1");

  v1::ReleaseLeaseRequest rel;
  rel.set_name(lease.name());
  v1::ReleaseLeaseResponse resp;
  ASSERT_TRUE(svc_->quota->ReleaseLease(svc_->As(P::User("alice")).get(), rel, &resp).ok());
  EXPECT_EQ(Usage("users/alice").used().gpus(), 0);
  EXPECT_TRUE(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(1))).ok());
  // Releasing again: NOT_FOUND (documented), and it frees nothing more.
  auto st = svc_->quota->ReleaseLease(svc_->As(P::User("alice")).get(), rel, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Usage("users/alice").used().gpus(), 1);
}

TEST_F(QuotaTest, AuthorizationIsDecidedFromTheDatabaseBeforeExistence) {
  auto code = [&](const Principal& who, const std::string& owner) {
    return Acquire(who, LeaseRequest(owner, Gpus(1))).error_code();
  };
  using grpc::StatusCode;
  EXPECT_EQ(code(P::User("alice"), "users/alice"), StatusCode::OK);
  EXPECT_EQ(code(P::User("alice"), "teams/ml"), StatusCode::OK);
  EXPECT_EQ(code(P::Service("notebook", "alice"), "teams/ml"), StatusCode::OK);
  EXPECT_EQ(code(P::User("root"), "users/bob"), StatusCode::OK);
  EXPECT_EQ(code(P::User("bob"), "users/alice"), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(code(P::User("bob"), "teams/ml"), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(code(P::Service("notebook", "bob"), "users/alice"), StatusCode::PERMISSION_DENIED);
  // A service acting for itself has an administrator's rights (Caller, access_evaluator.h).
  EXPECT_EQ(code(P::Service("notebook", ""), "users/alice"), StatusCode::OK);
  // A disabled user acts for nobody, not even themself, however they call.
  EXPECT_EQ(code(P::User("carol"), "users/carol"), StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(code(P::Service("notebook", "carol"), "users/carol"), StatusCode::UNAUTHENTICATED);
  // Existence is revealed only to those who could use the quota.
  EXPECT_EQ(code(P::User("bob"), "teams/nosuch"), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(code(P::User("bob"), "users/nosuch"), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(code(P::User("root"), "teams/nosuch"), StatusCode::NOT_FOUND);
  // The principal's own admin/teams claims are not trusted: the database decides.
  Principal forged = P::User("bob");
  forged.set_admin(true);
  forged.add_teams("ml");
  EXPECT_EQ(code(forged, "teams/ml"), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(SetQuota("users/bob", Gpus(100), forged).error_code(), StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(SetQuota("users/alice", Gpus(100), P::User("alice")).error_code(),
            StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(SetQuota("users/nosuch", Gpus(1)).error_code(), StatusCode::NOT_FOUND);

  // No principal at all, and a principal whose MAC does not verify.
  v1::Lease lease;
  EXPECT_EQ(
      svc_->quota->AcquireLease(P::Anonymous().get(), LeaseRequest("users/alice", Gpus(1)), &lease)
          .error_code(),
      StatusCode::UNAUTHENTICATED);
  auto ctx = P::Anonymous();
  auth::PrincipalCodec other(std::string(32, 'x'));
  other.Attach(ctx.get(), P::User("root"), "req-1",
               "/submarine.permission.v1.QuotaService/AcquireLease");
  EXPECT_EQ(
      svc_->quota->AcquireLease(ctx.get(), LeaseRequest("users/bob", Gpus(1)), &lease).error_code(),
      StatusCode::UNAUTHENTICATED);

  // Usage, heartbeat, release and list of someone else's quota or lease.
  v1::GetUsageRequest ureq;
  ureq.set_owner("teams/ml");
  v1::Usage usage;
  EXPECT_EQ(svc_->quota->GetUsage(svc_->As(P::User("bob")).get(), ureq, &usage).error_code(),
            StatusCode::PERMISSION_DENIED);
  ASSERT_TRUE(Acquire(P::User("alice"), LeaseRequest("users/alice", Gpus(1)), &lease).ok());
  v1::HeartbeatLeaseRequest hb;
  hb.set_name(lease.name());
  v1::Lease renewed;
  EXPECT_EQ(svc_->quota->HeartbeatLease(svc_->As(P::User("bob")).get(), hb, &renewed).error_code(),
            StatusCode::PERMISSION_DENIED);
  v1::ReleaseLeaseRequest rel;
  rel.set_name(lease.name());
  v1::ReleaseLeaseResponse released;
  EXPECT_EQ(svc_->quota->ReleaseLease(svc_->As(P::User("bob")).get(), rel, &released).error_code(),
            StatusCode::PERMISSION_DENIED);
  v1::ListLeasesRequest lreq;
  v1::ListLeasesResponse list;
  ASSERT_TRUE(svc_->quota->ListLeases(svc_->As(P::User("bob")).get(), lreq, &list).ok());
  EXPECT_EQ(list.leases_size(), 1);  // only the one root took for bob
  for (const auto& l : list.leases()) EXPECT_EQ(l.owner(), "users/bob");
  ASSERT_TRUE(svc_->quota->ListLeases(svc_->As(P::User("alice")).get(), lreq, &list).ok());
  EXPECT_EQ(list.leases_size(), 5);  // her own three and the team's two
  ASSERT_TRUE(svc_->quota->ListLeases(svc_->As(P::User("root")).get(), lreq, &list).ok());
  EXPECT_EQ(list.leases_size(), 6);
  lreq.set_owner("users/alice");
  EXPECT_EQ(svc_->quota->ListLeases(svc_->As(P::User("bob")).get(), lreq, &list).error_code(),
            StatusCode::PERMISSION_DENIED);
}

// AIP-155 on the permission APIs: a retried mutation with the same request_id gets the first
// answer and changes nothing twice (one lease, counted once; one team), concurrent repeats wait
// for the first, and an id reused for another request is refused.
TEST_F(QuotaTest, ARepeatedRequestIdAnswersTheFirstAnswerAndChangesNothingTwice) {
  ASSERT_TRUE(SetQuota("users/alice", Gpus(4)).ok());
  v1::AcquireLeaseRequest req = LeaseRequest("users/alice", Gpus(1));
  req.set_request_id("6c1f7c2e-0f4e-4a53-9c1e-2b7d9b0b1a01");
  std::vector<v1::Lease> leases(4);
  std::vector<grpc::Status> statuses(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] { statuses[i] = Acquire(P::User("alice"), req, &leases[i]); });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(leases[i].name(), leases[0].name());
  }
  EXPECT_EQ(Usage("users/alice").used().gpus(), 1);
  EXPECT_EQ(Usage("users/alice").active_leases(), 1);

  v1::AcquireLeaseRequest other = LeaseRequest("users/alice", Gpus(2));
  other.set_request_id(req.request_id());
  grpc::Status reused = Acquire(P::User("alice"), other);
  EXPECT_EQ(reused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(reused.error_message().find("request_id"), std::string::npos)
      << reused.error_message();
  EXPECT_EQ(Usage("users/alice").used().gpus(), 1);

  // The identity APIs too: a repeated CreateTeam is not ALREADY_EXISTS but the first answer.
  v1::CreateTeamRequest team;
  team.set_team_id("retried");
  team.set_request_id("7d2a8c3f-1a5b-4b64-8d2f-3c8e0c1c2b02");
  v1::Team first, second;
  ASSERT_TRUE(svc_->identity_stub->CreateTeam(svc_->As(P::User("alice")).get(), team, &first).ok());
  grpc::Status again =
      svc_->identity_stub->CreateTeam(svc_->As(P::User("alice")).get(), team, &second);
  ASSERT_TRUE(again.ok()) << again.error_message();
  EXPECT_EQ(second.name(), first.name());
  EXPECT_EQ(second.create_time().seconds(), first.create_time().seconds());

  // Mutations that check before their transaction answer a repeat first, without checking
  // again: a retried own-password change is OK although the old password no longer verifies,
  // and a retried project deletion is OK although the project is gone.
  ASSERT_TRUE(svc_->AddUser("dave", false, false, "dave-old-password-1").ok());
  v1::SetPasswordRequest change;
  change.set_name("users/dave");
  change.set_current_password("dave-old-password-1");
  change.set_password("dave-new-password-2");
  change.set_request_id("8e3b9d4a-2b6c-4c75-9e3a-4d9f1d2d3c03");
  v1::SetPasswordResponse changed;
  ASSERT_TRUE(
      svc_->identity_stub->SetPassword(svc_->As(P::User("dave")).get(), change, &changed).ok());
  grpc::Status repeated =
      svc_->identity_stub->SetPassword(svc_->As(P::User("dave")).get(), change, &changed);
  EXPECT_TRUE(repeated.ok()) << repeated.error_message();

  ASSERT_TRUE(svc_->AddProject("gone", "users/alice").ok());
  v1::DeleteProjectRequest drop;
  drop.set_name("projects/gone");
  drop.set_request_id("9f4cae5b-3c7d-4d86-af4b-5e0a2e3e4d04");
  v1::DeleteProjectResponse dropped;
  ASSERT_TRUE(
      svc_->identity_stub->DeleteProject(svc_->As(P::User("alice")).get(), drop, &dropped).ok());
  repeated = svc_->identity_stub->DeleteProject(svc_->As(P::User("alice")).get(), drop, &dropped);
  EXPECT_TRUE(repeated.ok()) << repeated.error_message();
}

TEST_F(QuotaTest, EveryBadInputNamesItsField) {
  struct Case {
    std::string field;
    std::function<void(v1::AcquireLeaseRequest*)> mutate;
  };
  std::vector<Case> cases = {
      {"lease.owner", [](auto* r) { r->mutable_lease()->clear_owner(); }},
      {"lease.owner", [](auto* r) { r->mutable_lease()->set_owner("alice"); }},
      {"lease.owner", [](auto* r) { r->mutable_lease()->set_owner("users/Alice'; DROP TABLE x"); }},
      {"lease.owner", [](auto* r) { r->mutable_lease()->set_owner("users/../teams/ml"); }},
      {"lease.owner", [](auto* r) { r->mutable_lease()->set_owner("groups/ml"); }},
      {"lease.owner",
       [](auto* r) { r->mutable_lease()->set_owner("users/" + std::string(100, 'a')); }},
      {"lease.project", [](auto* r) { r->mutable_lease()->clear_project(); }},
      {"lease.project", [](auto* r) { r->mutable_lease()->set_project("p1"); }},
      {"lease.project", [](auto* r) { r->mutable_lease()->set_project("projects/p1/x"); }},
      {"lease.project", [](auto* r) { r->mutable_lease()->set_project("projects/nosuch"); }},
      {"lease.resources.gpus",
       [](auto* r) { r->mutable_lease()->mutable_resources()->set_gpus(-1); }},
      {"lease.resources.memory_mib",
       [](auto* r) { r->mutable_lease()->mutable_resources()->set_memory_mib(-5); }},
      {"lease.resources", [](auto* r) { r->mutable_lease()->clear_resources(); }},
      {"lease.resources", [](auto* r) { r->mutable_lease()->mutable_resources()->set_gpus(0); }},
      {"lease.holder", [](auto* r) { r->mutable_lease()->set_holder(std::string(513, 'h')); }},
      {"lease.holder", [](auto* r) { r->mutable_lease()->set_holder("a\nb"); }},
      {"ttl_seconds", [](auto* r) { r->set_ttl_seconds(4); }},
      {"ttl_seconds", [](auto* r) { r->set_ttl_seconds(3601); }},
      {"ttl_seconds", [](auto* r) { r->set_ttl_seconds(-1); }},
  };
  for (const auto& c : cases) {
    auto req = LeaseRequest("users/alice", Gpus(1));
    c.mutate(&req);
    auto st = Acquire(P::User("alice"), req);
    EXPECT_TRUE(st.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                st.error_code() == grpc::StatusCode::NOT_FOUND)
        << c.field << ": " << st.error_message();
    EXPECT_EQ(ErrorField(st), c.field) << st.error_message();
  }
  EXPECT_EQ(Usage("users/alice").active_leases(), 0);

  v1::Resources negative;
  negative.set_serving_replicas(-1);
  auto st = SetQuota("users/alice", negative);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ErrorField(st), "limits.serving_replicas");
  EXPECT_EQ(ErrorField(SetQuota("users/", Gpus(1))), "owner");

  for (const std::string& name :
       {std::string(""), std::string("leases/"), std::string("leases/a/b"),
        std::string("leases/%27"), "leases/" + std::string(65, 'a'), std::string("x/abc")}) {
    v1::HeartbeatLeaseRequest hb;
    hb.set_name(name);
    v1::Lease out;
    st = svc_->quota->HeartbeatLease(svc_->As(P::User("alice")).get(), hb, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
    EXPECT_EQ(ErrorField(st), "name") << name;
    v1::ReleaseLeaseRequest rel;
    rel.set_name(name);
    v1::ReleaseLeaseResponse released;
    EXPECT_EQ(
        ErrorField(svc_->quota->ReleaseLease(svc_->As(P::User("alice")).get(), rel, &released)),
        "name");
  }
  v1::HeartbeatLeaseRequest hb;
  hb.set_name("leases/abc");
  hb.set_ttl_seconds(4000);
  v1::Lease out;
  EXPECT_EQ(ErrorField(svc_->quota->HeartbeatLease(svc_->As(P::User("alice")).get(), hb, &out)),
            "ttl_seconds");
  v1::ListLeasesRequest lreq;
  lreq.set_owner("nobody");
  v1::ListLeasesResponse list;
  EXPECT_EQ(ErrorField(svc_->quota->ListLeases(svc_->As(P::User("alice")).get(), lreq, &list)),
            "owner");
}

}  // namespace
}  // namespace submarine::permission::testing
