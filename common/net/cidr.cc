#include "common/net/cidr.h"

#include <arpa/inet.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::net {
namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

absl::Status BadBlock(std::string_view text, const std::string& problem) {
  return absl::InvalidArgumentError(
      absl::StrCat("\"", QuoteInput(std::string(text)), "\" is not a CIDR block: ", problem));
}

}  // namespace

std::optional<IpAddress> IpAddress::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; anything longer than the longest IPv6 text form
  // cannot be an address.
  if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
  std::string copy(text);
  std::array<uint8_t, 4> v4;
  if (::inet_pton(AF_INET, copy.c_str(), v4.data()) == 1) return FromV4(v4);
  std::array<uint8_t, 16> v6;
  if (::inet_pton(AF_INET6, copy.c_str(), v6.data()) == 1) return FromV6(v6);
  return std::nullopt;
}

IpAddress IpAddress::FromV4(const std::array<uint8_t, 4>& bytes) {
  IpAddress a;
  std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), a.bytes_.begin());
  std::copy(bytes.begin(), bytes.end(), a.bytes_.begin() + 12);
  return a;
}

IpAddress IpAddress::FromV6(const std::array<uint8_t, 16>& bytes) {
  IpAddress a;
  a.bytes_ = bytes;
  return a;
}

bool IpAddress::is_v4() const {
  return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), bytes_.begin());
}

std::string IpAddress::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    ::inet_ntop(AF_INET, bytes_.data() + 12, buf, sizeof buf);
  } else {
    ::inet_ntop(AF_INET6, bytes_.data(), buf, sizeof buf);
  }
  return buf;
}

absl::StatusOr<CidrBlock> CidrBlock::Parse(std::string_view text) {
  size_t slash = text.find('/');
  auto address = IpAddress::Parse(text.substr(0, slash));
  if (!address.has_value()) return BadBlock(text, "the address does not parse");
  const int max_bits = address->is_v4() ? 32 : 128;
  int bits = max_bits;
  if (slash != std::string_view::npos) {
    std::string_view length = text.substr(slash + 1);
    bool digits =
        !length.empty() && length.size() <= 3 &&
        std::all_of(length.begin(), length.end(), [](char c) { return c >= '0' && c <= '9'; });
    bits = digits ? std::stoi(std::string(length)) : -1;
    if (bits < 0 || bits > max_bits) {
      return BadBlock(text, absl::StrCat("the prefix length must be 0-", max_bits));
    }
  }
  CidrBlock block;
  block.network_ = *address;
  block.prefix_bits_ = address->is_v4() ? 96 + bits : bits;
  for (int bit = block.prefix_bits_; bit < 128; ++bit) {
    if (address->bytes()[bit / 8] & (0x80 >> (bit % 8))) {
      return BadBlock(text, absl::StrCat("the address has bits set beyond the /", bits, " prefix"));
    }
  }
  return block;
}

bool CidrBlock::Contains(const IpAddress& address) const {
  const auto& a = address.bytes();
  const auto& n = network_.bytes();
  int full = prefix_bits_ / 8;
  if (!std::equal(n.begin(), n.begin() + full, a.begin())) return false;
  int rest = prefix_bits_ % 8;
  if (rest == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (a[full] & mask) == (n[full] & mask);
}

std::string CidrBlock::ToString() const {
  return absl::StrCat(network_.ToString(), "/",
                      network_.is_v4() ? prefix_bits_ - 96 : prefix_bits_);
}

bool AnyContains(const std::vector<CidrBlock>& blocks, const IpAddress& address) {
  return std::any_of(blocks.begin(), blocks.end(),
                     [&](const CidrBlock& b) { return b.Contains(address); });
}

}  // namespace submarine::net
