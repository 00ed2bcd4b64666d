#pragma once
// AIP-134 update masks, one way for every service: which paths an Update changes, and copying
// them from the request's resource onto the stored one.
//
// Paths are snake_case field paths ("display_name", "kernel_spec.pip_dependencies"); lowerCamel
// paths from JSON clients ("displayName") are accepted and converted. "*" means every path in
// `updatable` that is a top-level field. An empty mask means the fields the request sets (the
// caller passes them as `implicit`). Errors are INVALID_ARGUMENT naming "update_mask" and the
// path (quoted, at most a short prefix).

#include <google/protobuf/field_mask.pb.h>
#include <google/protobuf/message.h>

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::api {

// The paths to update, in snake_case: each must be in `updatable` (output-only fields such as
// name, etag, create_time are simply not in it: "cannot be updated").
absl::StatusOr<std::vector<std::string>> UpdatePaths(const google::protobuf::FieldMask& mask,
                                                     const std::set<std::string>& updatable,
                                                     std::vector<std::string> implicit = {});

// Copies every path from `from` onto `to` (same message type): a whole field (message, repeated
// or map replaced, not merged) or a sub-field path into a message field.
void ApplyPaths(const std::vector<std::string>& paths, const google::protobuf::Message& from,
                google::protobuf::Message* to);

}  // namespace submarine::api
