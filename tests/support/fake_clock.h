#pragma once
// The one fake Clock for tests: time stands still until a test moves it. Starts at
// 1'700'000'000'000'000 µs after the epoch (2023-11-14T22:13:20Z), so tests that compare with
// fixed timestamps ("seconds 1'700'000'000") agree without setting it.
//
// Thread-safe: Now(), Advance() and Set() may race (one atomic); Now() never goes backwards
// unless a test calls Set() with an earlier time or Advance() with a negative duration.
// Resolution is one microsecond: Set() and Advance() truncate finer durations toward zero.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "common/util/clock.h"

namespace submarine::testing {

class FakeClock : public Clock {
 public:
  static constexpr std::chrono::microseconds kDefaultStart{1'700'000'000'000'000};

  FakeClock() = default;
  explicit FakeClock(std::chrono::system_clock::time_point start) { Set(start); }

  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::microseconds(micros_.load(std::memory_order_acquire))));
  }

  // Moves the clock by `d` (any duration type that converts to microseconds: seconds,
  // milliseconds, ...).
  void Advance(std::chrono::microseconds d) {
    micros_.fetch_add(d.count(), std::memory_order_acq_rel);
  }

  // Puts the clock at `t`.
  void Set(std::chrono::system_clock::time_point t) {
    micros_.store(
        std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count(),
        std::memory_order_release);
  }

 private:
  std::atomic<int64_t> micros_{kDefaultStart.count()};
};

}  // namespace submarine::testing
