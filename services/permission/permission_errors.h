#pragma once
// Errors the permission service's managers share beyond common/status.h. Stateless, thread-safe.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "common/rpc/call_context.h"

namespace submarine::permission {

// `status` with `extra` added to its ErrorInfo metadata (for metadata known only at run time;
// MakeError takes a fixed list). A status without ErrorInfo is returned unchanged.
absl::Status WithMetadata(absl::Status status,
                          const std::vector<std::pair<std::string, std::string>>& extra);

// PERMISSION_DENIED (reason PERMISSION_DENIED): "<caller's subject> may not <what>", metadata
// "resource".
absl::Status CallerMayNot(const rpc::CallInfo& call, const std::string& what,
                          const std::string& resource);

}  // namespace submarine::permission
