#pragma once
// A controller's work queue, as client-go's: keys ("namespace/name") are de-duplicated while
// they wait, can be delayed (deadlines, backoff), and are handed to one worker thread. Add is
// cheap and never calls out, so the store may call it under its lock.

#include <chrono>
#include <deque>
#include <map>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace submarine::testing::fake_kube {

class WorkQueue {
 public:
  void Add(const std::string& key) {
    absl::MutexLock lock(&mu_);
    if (queued_.insert(key).second) ready_.push_back(key);
  }
  void AddAfter(const std::string& key, absl::Duration delay) {
    absl::MutexLock lock(&mu_);
    delayed_.emplace(absl::Now() + delay, key);
    delayed_changed_ = true;
  }
  // Blocks for the next key; false once ShutDown was called.
  bool Get(std::string* key) {
    absl::MutexLock lock(&mu_);
    while (true) {
      if (shutdown_) return false;
      delayed_changed_ = false;
      absl::Time now = absl::Now();
      while (!delayed_.empty() && delayed_.begin()->first <= now) {
        if (queued_.insert(delayed_.begin()->second).second) {
          ready_.push_back(delayed_.begin()->second);
        }
        delayed_.erase(delayed_.begin());
      }
      if (!ready_.empty()) {
        *key = ready_.front();
        ready_.pop_front();
        queued_.erase(*key);
        return true;
      }
      absl::Time wake = delayed_.empty() ? now + absl::Seconds(1) : delayed_.begin()->first;
      mu_.AwaitWithDeadline(absl::Condition(this, &WorkQueue::HasWorkLocked), wake);
    }
  }
  void ShutDown() {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }

 private:
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return shutdown_ || !ready_.empty() || delayed_changed_;
  }

  absl::Mutex mu_;
  std::deque<std::string> ready_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> queued_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::string> delayed_ ABSL_GUARDED_BY(mu_);
  bool delayed_changed_ ABSL_GUARDED_BY(mu_) = false;  // wakes Get to recompute its deadline
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace submarine::testing::fake_kube
