#pragma once
// Validation of everything a permission request names: user, team and project ids, resource
// names, subjects and free text. Every error is INVALID_ARGUMENT naming the request field, and
// echoes at most a short, sanitized prefix of the offending value.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/api/names.h"

namespace submarine::permission {

inline constexpr char kAllUsers[] = "allUsers";

// The platform's shared validators (common/api/names.h): usernames, ids of teams and projects,
// free text, collections, "projects/{p}".
using api::CanonicalClusterName;
using api::CheckText;
using api::ParseProjectName;
using api::ValidateCollection;
using api::ValidateId;
using api::ValidateUsername;

// "users/{u}" → u.
absl::Status ParseUserName(const std::string& name, const std::string& field, std::string* user);
// "teams/{t}" → t.
absl::Status ParseTeamName(const std::string& name, const std::string& field, std::string* team);

// A resource inside the permission model: "projects/{p}" or
// "projects/{p}/{collection}/{id}[/{collection}/{id}...]" (at most 8 levels); collections are
// lowerCamel words, ids [a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?.
// With `allow_platform`, also a platform-level resource outside every project,
// "{collection}/{id}" of a collection in kPlatformCollections ("computeClusters/gpu-a"): every
// enabled user may READ those, only platform administrators WRITE or ADMIN them, and no grant
// or binding applies (AccessEvaluator).
struct ResourceRef {
  std::string project;              // p; empty for a platform resource
  std::vector<std::string> chain;   // every resource name below the project, outermost first
  bool platform = false;            // a platform resource: chain holds its name only
  bool is_project() const { return chain.empty(); }
};
inline constexpr const char* kPlatformCollections[] = {"computeClusters"};
absl::Status ParseResource(const std::string& resource, const std::string& field,
                           ResourceRef* out, bool allow_platform = false);

// A generated id (role bindings, grants, tokens): 1-64 lower-case hex digits.
absl::Status ValidateHexId(const std::string& id, const std::string& field);

// Subject syntax: "users/{u}", "teams/{t}" or "allUsers".
absl::Status ValidateSubject(const std::string& subject, const std::string& field);

// A short, quoted rendering of untrusted input for error messages (api::Quoted).
std::string Quote(const std::string& value);

}  // namespace submarine::permission
