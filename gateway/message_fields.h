#pragma once
// Reflection helpers the transcoder uses to bind path variables and query parameters to request
// message fields. Thread-safe (no state).

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::gateway {

using FieldPath = std::vector<const google::protobuf::FieldDescriptor*>;

// The field of `desc` whose proto name or JSON (lowerCamel) name is `name`; null if none.
const google::protobuf::FieldDescriptor* FindFieldByAnyName(
    const google::protobuf::Descriptor* desc, std::string_view name);

// Resolves a dotted path ("environment.name", "kernelSpec.name") from `desc`. Every element but
// the last must be a singular message field; INVALID_ARGUMENT naming the first element that does
// not resolve.
absl::StatusOr<FieldPath> ResolveFieldPath(const google::protobuf::Descriptor* desc,
                                           std::string_view path);

// True if the field can be set from one text value: a scalar, an enum, or a well-known type with
// a string JSON form (Timestamp, Duration, FieldMask, wrappers). Map fields never are.
bool IsTextSettable(const google::protobuf::FieldDescriptor* field);

// The message holding the last field of `path` inside `root`, creating intermediate messages.
google::protobuf::Message* MutableLeafParent(google::protobuf::Message* root,
                                             const FieldPath& path);

// Sets a singular field (or appends to a repeated one) from text: integers in decimal, floats,
// booleans as true/false/1/0, enums by name or number, bytes as (URL-safe) base64, well-known
// types by their JSON string form. INVALID_ARGUMENT describing the bad value otherwise,
// including text that is not valid UTF-8 (the caller names the parameter).
absl::Status SetFieldFromText(google::protobuf::Message* message,
                              const google::protobuf::FieldDescriptor* field,
                              std::string_view text);

// The JSON (lowerCamel) form of a path, e.g. "environment.kernelSpec".
std::string JsonPathName(const FieldPath& path);

}  // namespace submarine::gateway
