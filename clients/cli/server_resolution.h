#pragma once
// Which Submarine server the client commands talk to.

#include <string>

#include "absl/status/statusor.h"

namespace submarine::cli {

// The first of: `flag` (--server), `env` (the value of SUBMARINE_SERVER; may be null), the
// "gatewayUrl" of the local stack state file `state_file` while that stack is running, and
// `logged_in_gateway` (the gateway of the stored credentials, so that after `submarine login
// --server URL` later commands need no flag). A trailing '/' is dropped. FAILED_PRECONDITION
// naming the sources when none gives a server.
absl::StatusOr<std::string> ResolveServer(const std::string& flag, const char* env,
                                          const std::string& state_file,
                                          const std::string& logged_in_gateway = "");

}  // namespace submarine::cli
