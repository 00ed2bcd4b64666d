#pragma once
// Injectable time and randomness, so tests can control them.

#include <chrono>
#include <cstdint>
#include <string>

namespace submarine {

// Source of wall-clock time. Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
  // The process-wide real clock.
  static const Clock& Real();
};

// Source of identifiers. Thread-safe.
class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  // A random RFC 4122 version-4 UUID, lower-case.
  virtual std::string Uuid() = 0;
  // Random bytes as lower-case hex (2 * bytes characters).
  virtual std::string RandomHex(size_t bytes) = 0;
  // The process-wide generator backed by libsodium's CSPRNG.
  static IdGenerator& Secure();
};

}  // namespace submarine
