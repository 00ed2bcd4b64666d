#pragma once
// IP addresses and CIDR blocks, IPv4 and IPv6 alike, for deciding whether a peer is one of a
// configured set of networks (e.g. the gateway's trusted proxies). An IPv4 address and its
// IPv4-mapped IPv6 form (::ffff:a.b.c.d) are the same address, so the peers of a dual-stack
// listener match IPv4 blocks. Values; thread-safe to share once built.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::net {

class IpAddress {
 public:
  // The unspecified IPv6 address "::".
  IpAddress() = default;
  // Parses a bare address: "10.1.2.3", "::1", "2001:db8::7", "::ffff:10.1.2.3" (no brackets, no
  // port, no zone); nullopt for anything else.
  static std::optional<IpAddress> Parse(std::string_view text);
  static IpAddress FromV4(const std::array<uint8_t, 4>& bytes);
  static IpAddress FromV6(const std::array<uint8_t, 16>& bytes);

  // IPv4 (or IPv4-mapped IPv6).
  bool is_v4() const;
  // Dotted quad for IPv4 and IPv4-mapped addresses, the compressed RFC 5952 form for IPv6.
  std::string ToString() const;
  // IPv6 form; IPv4 is stored as ::ffff:a.b.c.d.
  const std::array<uint8_t, 16>& bytes() const { return bytes_; }

  friend bool operator==(const IpAddress&, const IpAddress&) = default;

 private:
  std::array<uint8_t, 16> bytes_{};
};

class CidrBlock {
 public:
  // Parses "10.0.0.0/8", "127.0.0.1/32", "fd00::/8", or a bare address (a block of one).
  // INVALID_ARGUMENT, quoting the text, if the address does not parse, the prefix length is out of
  // range (0-32 for IPv4, 0-128 for IPv6) or the address has bits set beyond the prefix (which
  // is usually a typo for another block).
  static absl::StatusOr<CidrBlock> Parse(std::string_view text);

  bool Contains(const IpAddress& address) const;
  // "10.0.0.0/8" form.
  std::string ToString() const;

 private:
  IpAddress network_;
  int prefix_bits_ = 128;  // in the 128-bit space: an IPv4 /n is 96 + n
};

// Whether any of `blocks` contains `address`.
bool AnyContains(const std::vector<CidrBlock>& blocks, const IpAddress& address);

}  // namespace submarine::net
