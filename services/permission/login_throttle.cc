#include "services/permission/login_throttle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

absl::Status Throttled(std::chrono::system_clock::duration wait) {
  int64_t seconds = std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(wait + std::chrono::milliseconds(999))
             .count());
  return MakeError(
      absl::StatusCode::kResourceExhausted, "LOGIN_THROTTLED",
      absl::StrCat("too many failed logins for this username; retry in ", seconds, " s"),
      {{"retryAfterSeconds", absl::StrCat(seconds)}});
}

}  // namespace

LoginThrottle::Attempt::Attempt(Attempt&& other) noexcept
    : throttle_(other.throttle_), username_(std::move(other.username_)) {
  other.throttle_ = nullptr;
}

LoginThrottle::Attempt::~Attempt() {
  if (throttle_ != nullptr) throttle_->Finish(username_, Outcome::kUnknown, TimePoint());
}

void LoginThrottle::Attempt::Failed(TimePoint now) {
  if (throttle_ == nullptr) return;
  throttle_->Finish(username_, Outcome::kFailed, now);
  throttle_ = nullptr;
}

void LoginThrottle::Attempt::Succeeded() {
  if (throttle_ == nullptr) return;
  throttle_->Finish(username_, Outcome::kSucceeded, TimePoint());
  throttle_ = nullptr;
}

absl::StatusOr<LoginThrottle::Attempt> LoginThrottle::Admit(const std::string& username,
                                                            TimePoint now) {
  std::lock_guard lock(mu_);
  auto it = records_.find(username);
  if (it != records_.end()) {
    Record& r = it->second;
    if (now < r.next_allowed) return Throttled(r.next_allowed - now);
    // Past the free attempts, one attempt at a time: the next waits for this one's outcome.
    if (r.in_flight > 0 && r.failures + r.in_flight >= options_.free_attempts) {
      return Throttled(std::chrono::seconds(1));
    }
    if (r.in_flight == 0) idle_.erase({r.last_failure, it->first});
    recency_.splice(recency_.begin(), recency_, r.recency);
  } else {
    if (records_.size() >= options_.max_entries) MakeRoom(now);
    it = records_.emplace(username, Record{}).first;
    recency_.push_front(&it->first);
    it->second.recency = recency_.begin();
  }
  ++it->second.in_flight;
  return Attempt(this, username);
}

void LoginThrottle::Finish(const std::string& username, Outcome outcome, TimePoint now) {
  std::lock_guard lock(mu_);
  auto it = records_.find(username);
  if (it == records_.end()) return;  // evicted meanwhile
  Record& r = it->second;
  // (Evicted and created again meanwhile, the record may have nothing in flight.)
  if (r.in_flight == 0) idle_.erase({r.last_failure, it->first});
  r.in_flight = std::max(0, r.in_flight - 1);
  switch (outcome) {
    case Outcome::kSucceeded:
      r.failures = 0;
      r.next_allowed = TimePoint();
      break;
    case Outcome::kFailed: {
      r.failures = std::min(r.failures + 1, 1 << 20);
      r.last_failure = now;
      recency_.splice(recency_.begin(), recency_, r.recency);
      int over = r.failures - options_.free_attempts;
      if (over <= 0) {
        r.next_allowed = now;
        break;
      }
      // base * 2^(over-1), without overflowing: past 2^30 the cap has long been reached.
      auto delay = options_.base_delay * (int64_t{1} << std::min(over - 1, 30));
      r.next_allowed = std::max(r.next_allowed, now + std::min(delay, options_.max_delay));
      break;
    }
    case Outcome::kUnknown:
      break;
  }
  if (r.failures == 0 && r.in_flight == 0) {
    recency_.erase(r.recency);
    records_.erase(it);
    return;
  }
  if (r.in_flight == 0) idle_.insert({r.last_failure, it->first});
}

size_t LoginThrottle::size() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

void LoginThrottle::Erase(Records::iterator it) {
  Record& r = it->second;
  if (r.in_flight == 0) idle_.erase({r.last_failure, it->first});
  recency_.erase(r.recency);
  records_.erase(it);
}

void LoginThrottle::MakeRoom(TimePoint now) {
  // A record with nothing in flight whose last failure is older than the longest delay (so its
  // delay has passed) can go: forgetting it gives an attacker little that waiting would not.
  // The idle record with the oldest failure is such a record if any is.
  if (!idle_.empty()) {
    const auto& [last_failure, key] = *idle_.begin();
    auto it = records_.find(std::string(key));
    if (now - last_failure >= options_.max_delay && now >= it->second.next_allowed) {
      Erase(it);
      return;
    }
  }
  if (recency_.empty()) return;
  Erase(records_.find(*recency_.back()));
}

}  // namespace submarine::permission
