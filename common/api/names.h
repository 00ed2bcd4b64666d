#pragma once
// The one set of validators for what requests name, shared by every service: ids, resource
// names under a project, collections and free text. Every error is INVALID_ARGUMENT naming the
// request field (InvalidField) and echoes at most a short, quoted prefix of the offending value
// (QuoteInput), so no error carries a whole request field or invalid UTF-8.
//
// Resource names follow AIP-122: "projects/{project}/{collection}/{id}", nested collections
// below that; a project id is [a-z][a-z0-9-]{0,62}, a resource id inside a project
// [a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?.

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::api {

// [a-z][a-z0-9-]{0,62}: project and team ids.
absl::Status ValidateId(const std::string& id, const std::string& field);
// [a-z][a-z0-9_.-]{0,62}: usernames.
absl::Status ValidateUsername(const std::string& username, const std::string& field);
// [a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?: a resource inside a project (an environment, an
// experiment, a model). `kind` names it in the message ("environment").
bool IsValidResourceId(const std::string& id);
absl::Status ValidateResourceId(const std::string& id, const std::string& field,
                                const std::string& kind = "resource");
// A compute cluster named in a setting: "computeClusters/{id}" or the bare id → the full name;
// "" stays "" (not set). INVALID_ARGUMENT naming `field` when the id is not a resource id.
absl::StatusOr<std::string> CanonicalClusterName(const std::string& value,
                                                 const std::string& field);
// A collection: a lowerCamel word ("environments", "roleBindings").
bool IsValidCollection(const std::string& collection);
absl::Status ValidateCollection(const std::string& collection, const std::string& field);

// At most `max_bytes` of valid UTF-8 without control characters (newline and tab allowed when
// `multiline`).
absl::Status CheckText(const std::string& value, const std::string& field, size_t max_bytes,
                       bool multiline = false);

// "projects/{p}" → p.
absl::Status ParseProjectName(const std::string& name, const std::string& field,
                              std::string* project);
// "projects/{p}/{collection}/{id}" with exactly `collection` → p and id; the message names the
// expected shape, e.g. "projects/{project}/environments/{environment}".
absl::Status ParseProjectResourceName(const std::string& name, const std::string& field,
                                      const std::string& collection, const std::string& kind,
                                      std::string* project, std::string* id);

// `value` quoted for an error message: "\"" + QuoteInput(value) + "\"".
std::string Quoted(const std::string& value);

}  // namespace submarine::api
