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
struct ResourceRef {
  std::string project;              // p
  std::vector<std::string> chain;   // every resource name below the project, outermost first
  bool is_project() const { return chain.empty(); }
};
absl::Status ParseResource(const std::string& resource, const std::string& field,
                           ResourceRef* out);

// A generated id (role bindings, grants, tokens): 1-64 lower-case hex digits.
absl::Status ValidateHexId(const std::string& id, const std::string& field);

// Subject syntax: "users/{u}", "teams/{t}" or "allUsers".
absl::Status ValidateSubject(const std::string& subject, const std::string& field);

// A short, quoted rendering of untrusted input for error messages (api::Quoted).
std::string Quote(const std::string& value);

}  // namespace submarine::permission
