#pragma once
// PasswordHasher runs every Argon2id hash and verification of the permission service (logins,
// password changes, new users, the first-start bootstrap) and bounds how many run at once,
// process-wide: one instance is shared by every class that checks or sets passwords.
//
// Argon2id is deliberately slow and memory-hard (64 MiB by default), so unbounded parallel
// password work would starve every other call of CPU and memory. A call takes one of
// `max_concurrent` turns for the duration of one hash or verification; while none is free it
// waits, in order of arrival, at most until the earlier of its deadline and now + max_wait:
//   * the call's deadline passes first → DEADLINE_EXCEEDED (reason DEADLINE_EXCEEDED);
//   * max_wait passes first, or `max_waiting` calls already wait → RESOURCE_EXHAUSTED (reason
//     PASSWORD_WORK_BUSY, metadata retryAfterSeconds).
// No database connection may be held while waiting or hashing (callers read what they need, let
// the connection go, then call here). Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "common/auth/crypto.h"

namespace submarine::permission {

class PasswordHasher {
 public:
  using Deadline = std::chrono::system_clock::time_point;

  struct Options {
    auth::PasswordCost cost;
    // Hashes and verifications running at once; 0 = max(2, std::thread::hardware_concurrency()).
    size_t max_concurrent = 0;
    // Calls allowed to wait for a turn; past that a call is refused at once.
    size_t max_waiting = 256;
    // Longest wait for a turn, whatever the call's deadline.
    std::chrono::milliseconds max_wait{10000};
  };

  explicit PasswordHasher(Options options);
  PasswordHasher(const PasswordHasher&) = delete;
  PasswordHasher& operator=(const PasswordHasher&) = delete;

  // One turn, held until destroyed (it must not outlive the hasher).
  class Turn {
   public:
    Turn(Turn&& other) noexcept : hasher_(other.hasher_) { other.hasher_ = nullptr; }
    Turn& operator=(Turn&&) = delete;
    ~Turn();

   private:
    friend class PasswordHasher;
    explicit Turn(PasswordHasher* hasher) : hasher_(hasher) {}
    PasswordHasher* hasher_;
  };
  // Waits for a turn as the header comment says, for work that needs several steps under one
  // turn (checking the current password, then hashing the new one).
  absl::StatusOr<Turn> Acquire(Deadline deadline);

  // Under a turn the caller holds: the "$argon2id$..." hash of `password` under options().cost
  // (INTERNAL if out of memory), and whether `password` matches `hash` (false for a malformed
  // hash).
  absl::StatusOr<std::string> Hash(const Turn& turn, std::string_view password);
  bool Verify(const Turn& turn, std::string_view hash, std::string_view password);
  // The same, each in a turn of its own.
  absl::StatusOr<std::string> Hash(std::string_view password, Deadline deadline);
  absl::StatusOr<bool> Verify(std::string_view hash, std::string_view password, Deadline deadline);

  // Turns in use and calls waiting for one, now (for tests and metrics).
  size_t running() const;
  size_t waiting() const;
  size_t max_concurrent() const { return max_concurrent_; }
  const Options& options() const { return options_; }

 private:
  void Release();

  const Options options_;
  const size_t max_concurrent_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<uint64_t> queue_ ABSL_GUARDED_BY(mu_);  // tickets of waiting calls, oldest first
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace submarine::permission
