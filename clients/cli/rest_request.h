#pragma once
// The REST request of one RPC call, derived from the RPC's google.api.http rule the way the
// gateway reads it (its routes come from the same options, AIP-127):
//   - path variables ({name=users/*}) are filled from the request's fields by
//     api::PathTemplate::Expand (common/api/resource_name.h), the inverse of the gateway's
//     match: each segment percent-encoded, a value that does not fit the variable's pattern
//     refused;
//   - the body is the field the rule names, or with body "*" every field not bound by the path;
//   - every other field that is set becomes a query parameter named by its lowerCamel JSON name
//     ("a.b" for a field of a nested message); well-known types (Timestamp, FieldMask, ...) take
//     their JSON string form, repeated fields repeat the parameter.
// So a field such as request_id travels where the server looks for it, with no per-command code.
// Stateless and thread-safe.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::cli {

struct RestRequest {
  std::string method;          // "GET", "POST", "PATCH", "PUT" or "DELETE"
  std::string path_and_query;  // e.g. "/v1/users/alice?requestId=..."
  std::string body;            // JSON; "" when the rule has no body
};

// One binding of a google.api.http rule: the rule itself or one of its additional_bindings.
struct RestBinding {
  std::string method;         // "GET", "POST", ...
  std::string path_template;  // e.g. "/v1/{name=users/*}:setPassword"
  std::string body;           // "", "*" or the name of a top-level request field
};

// The bindings of `rpc`, the rule's own first; empty when it has no google.api.http option.
std::vector<RestBinding> RestBindingsOf(const google::protobuf::MethodDescriptor& rpc);

// The REST request for calling `rpc` with `request` (a message of rpc's input type), through the
// first binding whose path variables all match the request's values. INVALID_ARGUMENT naming the
// field when its value fits no binding (e.g. "users/a/b" for {name=users/*}), FAILED_PRECONDITION
// when `rpc` has no REST mapping.
absl::StatusOr<RestRequest> BuildRestRequest(const google::protobuf::MethodDescriptor& rpc,
                                             const google::protobuf::Message& request);

}  // namespace submarine::cli
