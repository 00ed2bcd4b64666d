#pragma once
// Small socket helpers shared by the metrics server, the local stack and tests.

#include <string>

#include "absl/status/statusor.h"

namespace submarine::net {

struct BoundSocket {
  int fd = -1;          // listening socket, owned by the caller
  std::string address;  // "host:port" actually bound
};

// Splits "host:port" (port may be 0). INVALID_ARGUMENT if malformed.
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port);

// Binds and listens on an IPv4 "host:port" (port 0 = any free port).
absl::StatusOr<BoundSocket> ListenTcp(const std::string& address);

// A port that was free on 127.0.0.1 a moment ago (for processes that need a fixed port up front,
// such as PostgreSQL or an event bus that must come back on the same port after a restart),
// chosen below the kernel's ephemeral range when possible, so that no outgoing connection takes
// it before its process binds it.
absl::StatusOr<int> PickFreePort();

}  // namespace submarine::net
