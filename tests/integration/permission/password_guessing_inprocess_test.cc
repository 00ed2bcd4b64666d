// Changing one's password is a password check too. Guessing the current password through
// SetPassword must cost an attacker the same as guessing it through Login (one throttle budget per
// username), and a burst of guesses must not take the database connections everyone else needs
// (Argon2 never runs while a connection is held, and only a bounded number of hashes run at
// once). Before this, 40 parallel wrong guesses all got an answer within 1.4 s, other users' calls
// slowed from 1.4 ms to seconds, and 120 in parallel emptied the pool (UNAVAILABLE).

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/quota/permission_inprocess.h"

namespace submarine::permission::testing {
namespace {

using submarine::common::v1::Principal;
using P = PermissionInProcess;

constexpr char kPassword[] = "correct-horse-battery";

class PasswordGuessingTest : public ::testing::Test {
 protected:
  void Start(InProcessOptions options) {
    auto started = PermissionInProcess::Start(std::move(options));
    ASSERT_TRUE(started.ok()) << started.status();
    svc_ = *std::move(started);
    ASSERT_TRUE(svc_->AddUser("alice", false, false, kPassword).ok());
    ASSERT_TRUE(svc_->AddUser("bob", false, false, kPassword).ok());
  }

  grpc::Status SetOwnPassword(const std::string& user, const std::string& current,
                              const std::string& next = "a-brand-new-password") {
    v1::SetPasswordRequest req;
    req.set_name("users/" + user);
    req.set_current_password(current);
    req.set_password(next);
    v1::SetPasswordResponse resp;
    return svc_->identity_stub->SetPassword(svc_->As(P::User(user)).get(), req, &resp);
  }

  grpc::Status Login(const std::string& user, const std::string& password) {
    v1::LoginRequest req;
    req.set_username(user);
    req.set_password(password);
    v1::LoginResponse resp;
    return svc_->identity_stub->Login(P::Anonymous().get(), req, &resp);
  }

  // Fires `n` wrong current_password guesses for alice at once; returns the answers by
  // "CODE/REASON".
  std::map<std::string, int> Guess(int n) {
    std::vector<std::thread> threads;
    std::mutex mu;
    std::map<std::string, int> answers;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] {
        auto st = SetOwnPassword("alice", absl::StrCat("wrong-guess-", i, "-xxxxxx"));
        std::lock_guard lock(mu);
        ++answers[absl::StrCat(st.error_code(), "/", ErrorReason(st))];
      });
    }
    for (auto& t : threads) t.join();
    return answers;
  }

  std::unique_ptr<PermissionInProcess> svc_;
};

const std::string kWrong = absl::StrCat(grpc::StatusCode::PERMISSION_DENIED, "/WRONG_PASSWORD");
const std::string kThrottled =
    absl::StrCat(grpc::StatusCode::RESOURCE_EXHAUSTED, "/LOGIN_THROTTLED");

TEST_F(PasswordGuessingTest, ParallelWrongCurrentPasswordsAreThrottledLikeLogins) {
  Start(InProcessOptions());  // 5 free attempts, then 1 s doubling; the clock stands still
  const int free_attempts = svc_->identity().throttle().options().free_attempts;
  auto answers = Guess(40);
  // Only the free attempts (and the one the first delay allows) are checked at all.
  int wrong = answers[kWrong];
  EXPECT_GE(wrong, 1);
  EXPECT_LE(wrong, free_attempts + 1);
  EXPECT_EQ(answers[kThrottled], 40 - wrong);
  EXPECT_EQ(answers.size(), 2u) << "unexpected answers besides these two";

  // One budget: the right password through Login waits too, and so does the right one here.
  EXPECT_EQ(ErrorReason(Login("alice", kPassword)), "LOGIN_THROTTLED");
  EXPECT_EQ(ErrorReason(SetOwnPassword("alice", kPassword)), "LOGIN_THROTTLED");
  // Other users are not affected.
  EXPECT_TRUE(Login("bob", kPassword).ok());

  // Once the delay has run, the right password works and clears the count.
  svc_->clock().Advance(std::chrono::minutes(10));
  auto st = SetOwnPassword("alice", kPassword);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(svc_->identity().throttle().size(), 0u);
  EXPECT_TRUE(Login("alice", "a-brand-new-password").ok());
}

TEST_F(PasswordGuessingTest, FailedLoginsSpendTheBudgetOfPasswordChanges) {
  Start(InProcessOptions());
  const int free_attempts = svc_->identity().throttle().options().free_attempts;
  for (int i = 0; i <= free_attempts; ++i) {
    EXPECT_EQ(ErrorReason(Login("alice", "not-her-password")), "LOGIN_FAILED") << i;
  }
  auto st = SetOwnPassword("alice", kPassword);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_EQ(ErrorReason(st), "LOGIN_THROTTLED");
}

// A pool of two connections, a real Argon2id cost, and no throttling at all (every guess is
// checked): the guesses still leave the connections to everyone else, because no hash runs
// while one is held; the hasher queues them instead.
TEST_F(PasswordGuessingTest, GuessesNeverHoldTheConnectionsOtherCallsNeed) {
  InProcessOptions options;
  options.pool_size = 2;
  options.acquire_timeout = std::chrono::milliseconds(300);
  options.identity.passwords.cost.ops_limit = 2;
  options.identity.passwords.cost.mem_limit = 32 * 1024 * 1024;
  options.identity.login_throttle.free_attempts = 1000;
  Start(std::move(options));

  std::atomic<bool> guessing = true;
  std::atomic<int> bob_calls = 0;
  std::atomic<int> bob_failures = 0;
  std::string first_failure;
  std::thread bob([&] {
    while (guessing.load()) {
      v1::User me;
      auto st = svc_->identity_stub->GetCurrentUser(svc_->As(P::User("bob")).get(),
                                                    v1::GetCurrentUserRequest(), &me);
      ++bob_calls;
      if (!st.ok() && bob_failures++ == 0) first_failure = st.error_message();
    }
  });
  auto answers = Guess(20);
  guessing = false;
  bob.join();

  std::string seen;
  for (const auto& [answer, count] : answers) absl::StrAppend(&seen, " ", answer, " x", count);
  EXPECT_EQ(answers[kWrong], 20) << "every guess is checked and refused, none fails otherwise;"
                                 << " answers (code/reason x count):" << seen;
  EXPECT_GT(bob_calls.load(), 0);
  EXPECT_EQ(bob_failures.load(), 0) << first_failure;
}

}  // namespace
}  // namespace submarine::permission::testing
