#pragma once
// Validation of everything a permission request names: user, team and project ids, resource
// names, subjects and free text. Every error is INVALID_ARGUMENT naming the request field, and
// echoes at most a short, sanitized prefix of the offending value.

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace submarine::permission {

inline constexpr char kAllUsers[] = "allUsers";

// [a-z][a-z0-9_.-]{0,62}
absl::Status ValidateUsername(const std::string& username, const std::string& field);
// [a-z][a-z0-9-]{0,62} (teams, projects, ids inside names)
absl::Status ValidateId(const std::string& id, const std::string& field);
// At most `max` bytes of valid UTF-8 without control characters (tab allowed when multiline).
absl::Status CheckText(const std::string& value, const std::string& field, size_t max,
                       bool multiline = false);

// "users/{u}" → u.
absl::Status ParseUserName(const std::string& name, const std::string& field, std::string* user);
// "teams/{t}" → t.
absl::Status ParseTeamName(const std::string& name, const std::string& field, std::string* team);
// "projects/{p}" → p.
absl::Status ParseProjectName(const std::string& name, const std::string& field,
                              std::string* project);

// A resource inside the permission model: "projects/{p}" or
// "projects/{p}/{collection}/{id}[/{collection}/{id}...]" (at most 8 levels); collections are
// lowerCamel words, ids [a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?.
struct ResourceRef {
  std::string project;              // p
  std::vector<std::string> chain;   // every resource name below the project, outermost first
  bool is_project() const { return chain.empty(); }
};
absl::Status ParseResource(const std::string& resource, const std::string& field,
                           ResourceRef* out);

// A collection name: a lowerCamel word ("environments", "roleBindings").
absl::Status ValidateCollection(const std::string& collection, const std::string& field);
// A generated id (role bindings, grants, tokens): 1-64 lower-case hex digits.
absl::Status ValidateHexId(const std::string& id, const std::string& field);

// Subject syntax: "users/{u}", "teams/{t}" or "allUsers".
absl::Status ValidateSubject(const std::string& subject, const std::string& field);

// A short, printable rendering of untrusted input for error messages.
std::string Quote(const std::string& value);

}  // namespace submarine::permission
