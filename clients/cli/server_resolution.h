#pragma once
// Which Submarine server the client commands talk to.

#include <string>

#include "absl/status/statusor.h"

namespace submarine::cli {

// The first of: `flag` (--server), `env` (the value of SUBMARINE_SERVER; may be null), the
// "gatewayUrl" of the local stack state file `state_file` while that stack is running. A trailing
// '/' is dropped. FAILED_PRECONDITION naming all three sources when none gives a server.
absl::StatusOr<std::string> ResolveServer(const std::string& flag, const char* env,
                                          const std::string& state_file);

}  // namespace submarine::cli
