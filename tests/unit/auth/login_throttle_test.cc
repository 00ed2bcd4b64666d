// The login throttle against a hand-driven clock.
#include "services/permission/login_throttle.h"

#include <gtest/gtest.h>

#include "common/status/status.h"

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

std::string Reason(const absl::Status& st) {
  google::rpc::ErrorInfo info;
  return GetErrorInfo(st, &info) ? info.reason() : "";
}

TEST(LoginThrottle, FreeAttemptsThenDoublingDelaysUpToTheCap) {
  LoginThrottle t(Small());
  TimePoint now{seconds(1000000)};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(t.Admit("alice", now).ok()) << "free attempt " << i;
    t.Failed("alice", now);
  }
  // Fourth failure → 2 s, fifth → 4 s, sixth → 8 s, then capped at 10 s.
  ASSERT_TRUE(t.Admit("alice", now).ok());  // three failures are free
  t.Failed("alice", now);
  auto refused = t.Admit("alice", now + milliseconds(1999));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Reason(refused), "LOGIN_THROTTLED");
  EXPECT_NE(refused.message().find("retry in 1 s"), std::string::npos) << refused;
  now += seconds(2);
  ASSERT_TRUE(t.Admit("alice", now).ok());
  for (int64_t expected : {4, 8, 10, 10}) {
    t.Failed("alice", now);
    EXPECT_FALSE(t.Admit("alice", now + seconds(expected) - milliseconds(1)).ok()) << expected;
    now += seconds(expected);
    EXPECT_TRUE(t.Admit("alice", now).ok()) << expected;
  }
  // Other usernames, known or not, are unaffected; a success clears the record.
  EXPECT_TRUE(t.Admit("bob", now).ok());
  t.Succeeded("alice");
  EXPECT_EQ(t.size(), 0u);
  t.Failed("alice", now);
  EXPECT_TRUE(t.Admit("alice", now).ok());
}

TEST(LoginThrottle, BoundedRecordsForgetTheExpiredFirstThenTheOldest) {
  LoginThrottle t(Small());
  TimePoint now{seconds(1000000)};
  // "old" failed long ago (past the longest delay): it is the first to be forgotten.
  t.Failed("old", now);
  now += seconds(60);
  for (const char* u : {"a", "b", "c"}) {
    for (int i = 0; i < 4; ++i) t.Failed(u, now);  // each now waits 2 s
    now += milliseconds(1);
  }
  ASSERT_EQ(t.size(), 4u);
  t.Failed("d", now);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_FALSE(t.Admit("a", now).ok());  // still throttled: not evicted
  // Full of live records: the oldest ("a") makes room.
  t.Failed("e", now);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_TRUE(t.Admit("a", now).ok());
  EXPECT_FALSE(t.Admit("b", now).ok());
}

}  // namespace
}  // namespace submarine::permission
