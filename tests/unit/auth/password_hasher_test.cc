// The process-wide bound on Argon2id work: turns held by the test stand in for running hashes.
#include "services/permission/password_hasher.h"

#include <gtest/gtest.h>

#include <optional>
#include <thread>

#include "common/status/status.h"
#include "common/util/wait.h"
#include "tests/support/grpc_errors.h"

namespace submarine::permission {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

PasswordHasher::Options Cheap(size_t max_concurrent, size_t max_waiting = 8,
                              milliseconds max_wait = milliseconds(10000)) {
  PasswordHasher::Options o;
  o.cost.ops_limit = 1;
  o.cost.mem_limit = 8 * 1024;
  o.max_concurrent = max_concurrent;
  o.max_waiting = max_waiting;
  o.max_wait = max_wait;
  return o;
}

TEST(PasswordHasher, HashesAndVerifies) {
  PasswordHasher hasher(Cheap(2));
  auto hash = hasher.Hash("correct-horse-battery", system_clock::now() + seconds(10));
  ASSERT_TRUE(hash.ok()) << hash.status();
  EXPECT_EQ(hash->rfind("$argon2id$", 0), 0u);
  EXPECT_TRUE(*hasher.Verify(*hash, "correct-horse-battery", system_clock::now() + seconds(10)));
  EXPECT_FALSE(*hasher.Verify(*hash, "wrong", system_clock::now() + seconds(10)));
  EXPECT_FALSE(*hasher.Verify("not-a-hash", "wrong", system_clock::now() + seconds(10)));
  EXPECT_EQ(hasher.running(), 0u);
}

TEST(PasswordHasher, DefaultsToAtLeastTwoTurns) {
  PasswordHasher hasher(Cheap(0));
  EXPECT_GE(hasher.max_concurrent(), 2u);
  EXPECT_GE(hasher.max_concurrent(), std::thread::hardware_concurrency());
}

TEST(PasswordHasher, NoMoreThanMaxConcurrentAtOnceAndADeadlineEndsTheWait) {
  PasswordHasher hasher(Cheap(2));
  auto a = hasher.Acquire(system_clock::now() + seconds(10));
  auto b = hasher.Acquire(system_clock::now() + seconds(10));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(hasher.running(), 2u);
  // Both turns are taken: a third waits until its deadline, and is told so.
  auto c = hasher.Verify("x", "y", system_clock::now() + milliseconds(50));
  EXPECT_EQ(c.status().code(), absl::StatusCode::kDeadlineExceeded) << c.status();
  EXPECT_EQ(hasher.waiting(), 0u);
  // A turn given back lets the next one run.
  { auto done = std::move(*a); }
  EXPECT_EQ(hasher.running(), 1u);
  EXPECT_TRUE(hasher.Hash("pw", system_clock::now() + milliseconds(50)).ok());
}

TEST(PasswordHasher, WaitersAreServedInOrderOfArrival) {
  PasswordHasher hasher(Cheap(1));
  auto first = hasher.Acquire(system_clock::now() + seconds(10));
  ASSERT_TRUE(first.ok());
  std::optional<PasswordHasher::Turn> held;
  held.emplace(std::move(*first));
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.emplace_back([&, i] {
      auto turn = hasher.Acquire(system_clock::now() + seconds(30));
      ASSERT_TRUE(turn.ok()) << turn.status();
      std::lock_guard lock(mu);
      order.push_back(i);
    });
    // The next waiter starts only once this one is queued.
    ASSERT_TRUE(WaitUntil([&] { return hasher.waiting() == static_cast<size_t>(i + 1); },
                          milliseconds(10000)));
  }
  held.reset();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(hasher.running(), 0u);
}

TEST(PasswordHasher, TooManyWaitingOrWaitingTooLongIsRefusedAsBusy) {
  PasswordHasher hasher(Cheap(1, /*max_waiting=*/1, /*max_wait=*/milliseconds(50)));
  auto held = hasher.Acquire(system_clock::now() + seconds(10));
  ASSERT_TRUE(held.ok());
  // max_wait ends the wait when the call's own deadline is later.
  auto late = hasher.Hash("pw", system_clock::now() + seconds(30));
  EXPECT_EQ(late.status().code(), absl::StatusCode::kResourceExhausted) << late.status();
  EXPECT_EQ(submarine::testing::ErrorReason(late.status()), "PASSWORD_WORK_BUSY");

  // With one call already waiting, the next is refused at once.
  PasswordHasher queue(Cheap(1, /*max_waiting=*/1));
  auto turn = queue.Acquire(system_clock::now() + seconds(10));
  ASSERT_TRUE(turn.ok());
  std::thread waiter([&] {
    auto t = queue.Acquire(system_clock::now() + seconds(30));
    EXPECT_TRUE(t.ok()) << t.status();
  });
  ASSERT_TRUE(WaitUntil([&] { return queue.waiting() == 1; }, milliseconds(10000)));
  auto refused = queue.Verify("x", "y", system_clock::now() + seconds(30));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(submarine::testing::ErrorReason(refused.status()), "PASSWORD_WORK_BUSY");
  { auto done = std::move(*turn); }
  waiter.join();
}

}  // namespace
}  // namespace submarine::permission
