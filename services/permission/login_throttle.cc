#include "services/permission/login_throttle.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::permission {

absl::Status LoginThrottle::Admit(const std::string& username, TimePoint now) {
  std::lock_guard lock(mu_);
  auto it = records_.find(username);
  if (it == records_.end() || now >= it->second.next_allowed) return absl::OkStatus();
  auto wait = std::chrono::duration_cast<std::chrono::seconds>(it->second.next_allowed - now +
                                                               std::chrono::milliseconds(999));
  int64_t seconds = std::max<int64_t>(1, wait.count());
  return MakeError(
      absl::StatusCode::kResourceExhausted, "LOGIN_THROTTLED",
      absl::StrCat("too many failed logins for this username; retry in ", seconds, " s"),
      {{"retryAfterSeconds", absl::StrCat(seconds)}});
}

void LoginThrottle::Failed(const std::string& username, TimePoint now) {
  std::lock_guard lock(mu_);
  auto it = records_.find(username);
  if (it == records_.end()) {
    if (records_.size() >= options_.max_entries) MakeRoom(now);
    it = records_.emplace(username, Record{}).first;
  }
  Record& r = it->second;
  r.failures = std::min(r.failures + 1, 1 << 20);
  r.last_failure = now;
  int over = r.failures - options_.free_attempts;
  if (over <= 0) {
    r.next_allowed = now;
    return;
  }
  // base * 2^(over-1), without overflowing: past 2^30 the cap has long been reached.
  auto delay = options_.base_delay * (int64_t{1} << std::min(over - 1, 30));
  r.next_allowed = now + std::min(delay, options_.max_delay);
}

void LoginThrottle::Succeeded(const std::string& username) {
  std::lock_guard lock(mu_);
  records_.erase(username);
}

size_t LoginThrottle::size() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

void LoginThrottle::MakeRoom(TimePoint now) {
  // A record whose delay has passed and whose last failure is older than the longest delay can
  // go: forgetting it costs an attacker nothing they would not have regained by waiting.
  for (auto it = records_.begin(); it != records_.end();) {
    if (now >= it->second.next_allowed && now - it->second.last_failure >= options_.max_delay) {
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
  if (records_.size() < options_.max_entries) return;
  auto oldest = std::min_element(
      records_.begin(), records_.end(),
      [](const auto& a, const auto& b) { return a.second.last_failure < b.second.last_failure; });
  records_.erase(oldest);
}

}  // namespace submarine::permission
