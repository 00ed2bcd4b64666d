#include "common/util/clock.h"

#include <sodium.h>

#include <cstdio>
#include <stdexcept>
#include <vector>

namespace submarine {
namespace {

class RealClock : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

class SodiumIds : public IdGenerator {
 public:
  SodiumIds() {
    if (sodium_init() < 0) throw std::runtime_error("libsodium initialisation failed");
  }
  std::string Uuid() override {
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    char out[37];
    std::snprintf(out, sizeof out,
                  "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                  b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
                  b[14], b[15]);
    return out;
  }
  std::string RandomHex(size_t bytes) override {
    std::vector<unsigned char> b(bytes);
    randombytes_buf(b.data(), b.size());
    std::string hex(bytes * 2 + 1, '\0');
    sodium_bin2hex(hex.data(), hex.size(), b.data(), b.size());
    hex.pop_back();
    return hex;
  }
};

}  // namespace

const Clock& Clock::Real() {
  static const RealClock clock;
  return clock;
}

IdGenerator& IdGenerator::Secure() {
  static SodiumIds ids;
  return ids;
}

}  // namespace submarine
