#pragma once
// Who a request is accounted to by the HTTP server's per-client limits. Stateless; thread-safe.

#include <string>
#include <string_view>
#include <vector>

#include "common/net/cidr.h"

namespace submarine::gateway {

// Whether `peer` is one of `trusted_proxies`, whose X-Forwarded-For is believed.
inline bool IsTrustedProxy(const net::IpAddress& peer,
                           const std::vector<net::CidrBlock>& trusted_proxies) {
  return net::AnyContains(trusted_proxies, peer);
}

// The client behind a request that arrived from `peer`, in canonical text form. A peer that is
// not a trusted proxy is the client itself, whatever it sends. For a trusted proxy,
// `forwarded_for` (its X-Forwarded-For values, comma-joined in arrival order) is read from the
// right, each proxy having appended the address it received the request from: entries inside
// `trusted_proxies` are skipped and the first one outside is the client; entries to its left
// were written by the client and prove nothing. When every entry is trusted the left-most is the
// client, and without entries the proxy itself. An entry may carry a port ("203.0.113.7:4711",
// "[2001:db8::1]:443"); one that is not an address is taken as written, cut to 64 bytes.
std::string ClientAddress(const net::IpAddress& peer, std::string_view forwarded_for,
                          const std::vector<net::CidrBlock>& trusted_proxies);

}  // namespace submarine::gateway
