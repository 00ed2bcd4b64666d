#include "gateway/client_address.h"

#include <optional>

#include "common/status/status.h"

namespace submarine::gateway {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The address of one X-Forwarded-For entry, without the port some proxies append.
std::optional<net::IpAddress> EntryAddress(std::string_view entry) {
  if (!entry.empty() && entry.front() == '[') {
    size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    return net::IpAddress::Parse(entry.substr(1, close - 1));
  }
  size_t colon = entry.find(':');
  if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    entry = entry.substr(0, colon);  // IPv4 with a port; two or more colons mean IPv6
  }
  return net::IpAddress::Parse(entry);
}

}  // namespace

std::string ClientAddress(const net::IpAddress& peer, std::string_view forwarded_for,
                          const std::vector<net::CidrBlock>& trusted_proxies) {
  if (!IsTrustedProxy(peer, trusted_proxies)) return peer.ToString();
  std::optional<net::IpAddress> leftmost;
  while (!forwarded_for.empty()) {
    size_t comma = forwarded_for.rfind(',');
    std::string_view entry =
        Trim(comma == std::string_view::npos ? forwarded_for : forwarded_for.substr(comma + 1));
    forwarded_for =
        comma == std::string_view::npos ? std::string_view() : forwarded_for.substr(0, comma);
    if (entry.empty()) continue;
    auto address = EntryAddress(entry);
    if (!address.has_value()) return QuoteInput(std::string(entry));
    if (!IsTrustedProxy(*address, trusted_proxies)) return address->ToString();
    leftmost = address;
  }
  return leftmost.has_value() ? leftmost->ToString() : peer.ToString();
}

}  // namespace submarine::gateway
