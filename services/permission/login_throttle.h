#pragma once
// Slows down password guessing. Every username (whether it exists or not, so the answer reveals
// nothing) gets `free_attempts` failed logins; after that each further attempt must wait a delay
// that doubles with every failure, from `base_delay` up to `max_delay`, and an attempt inside the
// delay is refused before any password is checked (no Argon2 work is spent on it). Attempts still
// being checked count as failures until they finish, so parallel requests cannot slip past the
// free attempts together. A successful login clears the username's record. Records live in this
// process only (each replica throttles on its own), at most `max_entries` of them: to make room
// for a new username, a record with nothing in flight whose last failure is at least `max_delay`
// old (so its delay has passed) is forgotten first, the one with the oldest last failure; when
// there is none, the least recently active record (last attempt admitted or failed) goes.
// Either choice takes O(log n) under the lock (an index of idle records by last failure and a
// recency list), never a scan of the table. Thread-safe.
//
// Password checks elsewhere (SetPassword's current_password) take their attempts from the same
// throttle, so every way of guessing a user's password shares one budget.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"

namespace submarine::permission {

class LoginThrottle {
 public:
  struct Options {
    int free_attempts = 5;
    std::chrono::milliseconds base_delay{1000};
    std::chrono::milliseconds max_delay{300000};
    size_t max_entries = 100000;
  };
  using TimePoint = std::chrono::system_clock::time_point;

  // One admitted attempt. Report its outcome with Failed() or Succeeded(); one dropped without
  // either (the check itself could not be made, e.g. the database was down) counts as neither.
  class Attempt {
   public:
    Attempt(Attempt&& other) noexcept;
    Attempt& operator=(Attempt&&) = delete;
    ~Attempt();
    void Failed(TimePoint now);
    void Succeeded();

   private:
    friend class LoginThrottle;
    Attempt(LoginThrottle* throttle, std::string username)
        : throttle_(throttle), username_(std::move(username)) {}
    LoginThrottle* throttle_;  // null once reported
    std::string username_;
  };

  explicit LoginThrottle(Options options) : options_(options) {}

  // An attempt for `username` at `now`, or RESOURCE_EXHAUSTED (reason LOGIN_THROTTLED, metadata
  // retryAfterSeconds) while its delay runs or while the attempts in flight already use up the
  // free ones. The throttle must outlive the attempt.
  absl::StatusOr<Attempt> Admit(const std::string& username, TimePoint now);

  size_t size() const;
  const Options& options() const { return options_; }

 private:
  struct Record {
    int failures = 0;
    int in_flight = 0;
    TimePoint last_failure;
    TimePoint next_allowed;  // == last_failure while within the free attempts
    std::list<const std::string*>::iterator recency;  // position in recency_
  };
  using Records = std::unordered_map<std::string, Record>;
  enum class Outcome { kFailed, kSucceeded, kUnknown };
  void Finish(const std::string& username, Outcome outcome, TimePoint now);
  // Frees room for one more record. Requires mu_.
  void MakeRoom(TimePoint now);
  // Removes a record from the table and both indexes. Requires mu_.
  void Erase(Records::iterator it);

  const Options options_;
  mutable std::mutex mu_;
  // Node-based: the key strings the indexes point to never move while their record lives.
  Records records_ ABSL_GUARDED_BY(mu_);
  // Every record's key, most recently active (admitted or failed) first.
  std::list<const std::string*> recency_ ABSL_GUARDED_BY(mu_);
  // (last_failure, key) of the records with nothing in flight, oldest failure first.
  std::set<std::pair<TimePoint, std::string_view>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace submarine::permission
