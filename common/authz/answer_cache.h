#pragma once
// AnswerCache: the bounded, expiring memory of permission answers inside common/authz.
//
// * Bounded: at most `capacity` entries; inserting into a full cache evicts the least recently
//   used entry.
// * Expiring: an entry is served until `fetched_at + ttl` (fetched_at = when the question was
//   sent, so an answer is never served for longer than ttl after the permission service gave
//   it), events or not.
// * Invalidated as a whole by InvalidateAll(), which also bumps a generation counter. A caller
//   reads generation() BEFORE asking the permission service and passes it to Put(): an answer
//   fetched before an invalidation is then dropped instead of being inserted after it, so a
//   revoked permission cannot come back from a request that was in flight during the revocation.
//
// Thread-safe (one mutex; every operation is O(1) apart from the copy of the value).

#include <chrono>
#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "common/util/clock.h"

namespace submarine::authz {

template <class Value>
class AnswerCache {
 public:
  // `clock` must outlive the cache. capacity 0 disables caching (every Get misses).
  AnswerCache(size_t capacity, std::chrono::milliseconds ttl, const Clock& clock)
      : capacity_(capacity), ttl_(ttl), clock_(clock) {}

  // The cached value, or nullopt when absent or expired (an expired entry is removed).
  std::optional<Value> Get(const std::string& key) {
    std::lock_guard lock(mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    if (clock_.Now() >= it->second->expires) {
      lru_.erase(it->second);
      index_.erase(it);
      return std::nullopt;
    }
    lru_.splice(lru_.begin(), lru_, it->second);  // most recently used first
    return it->second->value;
  }

  // The current generation; read it before fetching an answer to Put().
  uint64_t generation() const {
    std::lock_guard lock(mu_);
    return generation_;
  }

  // Stores `value` if no invalidation happened since `generation` was read and it has not
  // already expired. Returns whether it was stored.
  bool Put(const std::string& key, Value value, uint64_t generation,
           std::chrono::system_clock::time_point fetched_at) {
    if (capacity_ == 0) return false;
    auto expires = fetched_at + ttl_;
    std::lock_guard lock(mu_);
    if (generation != generation_ || clock_.Now() >= expires) return false;
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->value = std::move(value);
      it->second->expires = expires;
      lru_.splice(lru_.begin(), lru_, it->second);
      return true;
    }
    if (lru_.size() >= capacity_) {
      index_.erase(lru_.back().key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{key, std::move(value), expires});
    index_.emplace(key, lru_.begin());
    return true;
  }

  // Forgets everything and starts a new generation.
  void InvalidateAll() {
    std::lock_guard lock(mu_);
    ++generation_;
    index_.clear();
    lru_.clear();
  }

  size_t size() const {
    std::lock_guard lock(mu_);
    return lru_.size();
  }

 private:
  struct Entry {
    std::string key;
    Value value;
    std::chrono::system_clock::time_point expires;
  };

  const size_t capacity_;
  const std::chrono::milliseconds ttl_;
  const Clock& clock_;
  mutable std::mutex mu_;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::list<Entry> lru_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace submarine::authz
