#include "services/permission/password_hasher.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

size_t DefaultConcurrency() { return std::max<size_t>(2, std::thread::hardware_concurrency()); }

absl::Status Busy(std::chrono::milliseconds max_wait) {
  int64_t seconds =
      std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(max_wait).count() / 2);
  return MakeError(absl::StatusCode::kResourceExhausted, "PASSWORD_WORK_BUSY",
                   absl::StrCat("too many password checks are running; retry in ", seconds, " s"),
                   {{"retryAfterSeconds", absl::StrCat(seconds)}});
}

}  // namespace

PasswordHasher::PasswordHasher(Options options)
    : options_(options),
      max_concurrent_(options.max_concurrent ? options.max_concurrent : DefaultConcurrency()) {}

PasswordHasher::Turn::~Turn() {
  if (hasher_ != nullptr) hasher_->Release();
}

absl::StatusOr<PasswordHasher::Turn> PasswordHasher::Acquire(Deadline deadline) {
  std::unique_lock lock(mu_);
  if (queue_.empty() && running_ < max_concurrent_) {
    ++running_;
    return Turn(this);
  }
  if (queue_.size() >= options_.max_waiting) return Busy(options_.max_wait);
  const auto give_up_at = std::chrono::system_clock::now() + options_.max_wait;
  const bool deadline_first = deadline <= give_up_at;
  const uint64_t ticket = next_ticket_++;
  queue_.push_back(ticket);
  // First come, first served: a turn goes to the oldest waiter.
  bool got = cv_.wait_until(lock, std::min(deadline, give_up_at),
                            [&] { return running_ < max_concurrent_ && queue_.front() == ticket; });
  queue_.erase(std::find(queue_.begin(), queue_.end(), ticket));
  if (!got) {
    cv_.notify_all();  // the front may have changed
    if (deadline_first) {
      return MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                       "the call's deadline passed while it waited to check a password");
    }
    return Busy(options_.max_wait);
  }
  ++running_;
  cv_.notify_all();  // the next waiter may take another free turn
  return Turn(this);
}

void PasswordHasher::Release() {
  {
    std::lock_guard lock(mu_);
    --running_;
  }
  cv_.notify_all();
}

absl::StatusOr<std::string> PasswordHasher::Hash(const Turn&, std::string_view password) {
  return auth::HashPassword(password, options_.cost);
}

bool PasswordHasher::Verify(const Turn&, std::string_view hash, std::string_view password) {
  return auth::VerifyPassword(hash, password);
}

absl::StatusOr<std::string> PasswordHasher::Hash(std::string_view password, Deadline deadline) {
  SUBMARINE_ASSIGN_OR_RETURN(Turn turn, Acquire(deadline));
  return Hash(turn, password);
}

absl::StatusOr<bool> PasswordHasher::Verify(std::string_view hash, std::string_view password,
                                            Deadline deadline) {
  SUBMARINE_ASSIGN_OR_RETURN(Turn turn, Acquire(deadline));
  return Verify(turn, hash, password);
}

size_t PasswordHasher::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

size_t PasswordHasher::waiting() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

}  // namespace submarine::permission
