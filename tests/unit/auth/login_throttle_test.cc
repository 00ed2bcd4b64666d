// The login throttle against a hand-driven clock.
#include "services/permission/login_throttle.h"

#include <gtest/gtest.h>

#include "common/status/status.h"
#include "tests/support/grpc_errors.h"

namespace submarine::permission {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = LoginThrottle::TimePoint;

LoginThrottle::Options Small() {
  LoginThrottle::Options o;
  o.free_attempts = 3;
  o.base_delay = seconds(2);
  o.max_delay = seconds(10);
  o.max_entries = 4;
  return o;
}

// Admits one attempt for `user` at `now` and reports it failed; false if it was not admitted.
bool Fail(LoginThrottle& t, const std::string& user, TimePoint now) {
  auto attempt = t.Admit(user, now);
  if (!attempt.ok()) return false;
  attempt->Failed(now);
  return true;
}

TEST(LoginThrottle, FreeAttemptsThenDoublingDelaysUpToTheCap) {
  LoginThrottle t(Small());
  TimePoint now{seconds(1000000)};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(Fail(t, "alice", now)) << "free attempt " << i;
  // Fourth failure → 2 s, fifth → 4 s, sixth → 8 s, then capped at 10 s.
  ASSERT_TRUE(Fail(t, "alice", now));  // three failures are free
  auto refused = t.Admit("alice", now + milliseconds(1999));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(submarine::testing::ErrorReason(refused.status()), "LOGIN_THROTTLED");
  EXPECT_NE(refused.status().message().find("retry in 1 s"), std::string::npos) << refused.status();
  now += seconds(2);
  for (int64_t expected : {4, 8, 10, 10}) {
    ASSERT_TRUE(Fail(t, "alice", now)) << expected;
    EXPECT_FALSE(t.Admit("alice", now + seconds(expected) - milliseconds(1)).ok()) << expected;
    now += seconds(expected);
  }
  // Other usernames, known or not, are unaffected; a success clears the record.
  EXPECT_TRUE(t.Admit("bob", now).ok());
  {
    auto attempt = t.Admit("alice", now);
    ASSERT_TRUE(attempt.ok());
    attempt->Succeeded();
  }
  EXPECT_EQ(t.size(), 0u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Fail(t, "alice", now)) << i;
}

TEST(LoginThrottle, AttemptsInFlightCountUntilTheyFinish) {
  LoginThrottle t(Small());
  TimePoint now{seconds(1000000)};
  ASSERT_TRUE(Fail(t, "alice", now));
  // Two more may run at once (1 failure + 2 in flight = the 3 free ones); a fourth must wait.
  auto a = t.Admit("alice", now);
  auto b = t.Admit("alice", now);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = t.Admit("alice", now);
  EXPECT_EQ(submarine::testing::ErrorReason(c.status()), "LOGIN_THROTTLED");
  // An attempt dropped without an outcome (e.g. the database was down) frees its place and
  // counts as nothing.
  { auto dropped = std::move(*a); }
  auto d = t.Admit("alice", now);
  ASSERT_TRUE(d.ok()) << d.status();
  b->Failed(now);
  d->Failed(now);  // the third failure: the free attempts are used up
  auto e = t.Admit("alice", now);
  ASSERT_TRUE(e.ok());
  e->Failed(now);  // the fourth: a 2 s delay
  EXPECT_FALSE(t.Admit("alice", now + milliseconds(1999)).ok());
}

TEST(LoginThrottle, BoundedRecordsForgetTheExpiredFirstThenTheOldest) {
  LoginThrottle t(Small());
  TimePoint now{seconds(1000000)};
  // "old" failed long ago (past the longest delay): it is the first to be forgotten.
  ASSERT_TRUE(Fail(t, "old", now));
  now += seconds(60);
  for (const char* u : {"a", "b", "c"}) {
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(Fail(t, u, now));  // each now waits 2 s
    now += milliseconds(1);
  }
  ASSERT_EQ(t.size(), 4u);
  ASSERT_TRUE(Fail(t, "d", now));
  EXPECT_EQ(t.size(), 4u);
  EXPECT_FALSE(t.Admit("a", now).ok());  // still throttled: not evicted
  // Full of live records: the oldest ("a") makes room.
  ASSERT_TRUE(Fail(t, "e", now));
  EXPECT_EQ(t.size(), 4u);
  EXPECT_FALSE(t.Admit("b", now).ok());
  EXPECT_TRUE(t.Admit("a", now).ok());  // forgotten: a fresh start
}

TEST(LoginThrottle, EvictionForgetsAnExpiredRecordBeforeTheLeastRecentlyActive) {
  LoginThrottle::Options o = Small();
  o.max_entries = 3;
  LoginThrottle t(o);
  TimePoint t0{seconds(1000000)};
  ASSERT_TRUE(Fail(t, "old", t0));  // long past the 10 s maximum delay by t1
  TimePoint t1 = t0 + seconds(60);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Fail(t, "x", t1));  // x, then y, wait 2 s
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Fail(t, "y", t1));
  {
    // "old" is active again (an attempt whose check could not be made): the most recent, but
    // its last failure is still a minute old.
    auto dropped = t.Admit("old", t1);
    ASSERT_TRUE(dropped.ok());
  }
  ASSERT_EQ(t.size(), 3u);
  // Full: the expired record goes, although "x" is the least recently active.
  ASSERT_TRUE(Fail(t, "z", t1));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_FALSE(t.Admit("x", t1).ok());
  EXPECT_FALSE(t.Admit("y", t1).ok());

  // Nothing expired: the least recently active goes. x fails again later, so y is now the one
  // that was idle longest.
  TimePoint t2 = t1 + seconds(3);
  ASSERT_TRUE(Fail(t, "x", t2));  // its fifth failure: 4 s
  ASSERT_TRUE(Fail(t, "w", t2));
  EXPECT_EQ(t.size(), 3u);
  EXPECT_FALSE(t.Admit("x", t2).ok());  // kept
  // y's four failures are forgotten: one more leaves it within its free attempts.
  ASSERT_TRUE(Fail(t, "y", t2));
  EXPECT_TRUE(t.Admit("y", t2).ok());
}

// 200,000 usernames, then 200,000 more: each newcomer evicts the least recently active record.
// With a scan of the table per eviction this takes hours (the test's 120 s timeout fails it);
// with the indexes it takes a moment.
TEST(LoginThrottle, AFullLargeTableEvictsWithoutScanning) {
  constexpr int kEntries = 200000;
  LoginThrottle::Options o;
  o.free_attempts = 0;  // every failure throttles: a record's presence is visible
  o.base_delay = seconds(1);
  o.max_delay = seconds(300);
  o.max_entries = kEntries;
  LoginThrottle t(o);
  TimePoint now{seconds(1000000)};
  for (int i = 0; i < kEntries; ++i) ASSERT_TRUE(Fail(t, "u" + std::to_string(i), now));
  ASSERT_EQ(t.size(), static_cast<size_t>(kEntries));
  for (int i = 0; i < kEntries; ++i) ASSERT_TRUE(Fail(t, "v" + std::to_string(i), now));
  EXPECT_EQ(t.size(), static_cast<size_t>(kEntries));
  // Every newcomer is still throttled; every earlier record was forgotten, oldest first.
  for (int i : {0, 1, kEntries / 2, kEntries - 1}) {
    EXPECT_FALSE(t.Admit("v" + std::to_string(i), now).ok()) << i;
  }
  EXPECT_TRUE(t.Admit("u" + std::to_string(kEntries - 1), now).ok());
}

}  // namespace
}  // namespace submarine::permission
