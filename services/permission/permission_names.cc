#include "services/permission/permission_names.h"

#include "absl/algorithm/container.h"
#include "absl/strings/str_cat.h"
#include "common/api/names.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = s.find('/', start);
    parts.push_back(s.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

absl::Status ParsePrefixed(const std::string& name, const std::string& field,
                           const std::string& prefix, bool username, std::string* out) {
  if (name.rfind(prefix, 0) != 0) {
    return InvalidField(field, absl::StrCat("expected \"", prefix, "{id}\", got ", Quote(name)));
  }
  *out = name.substr(prefix.size());
  return username ? ValidateUsername(*out, field) : ValidateId(*out, field);
}

}  // namespace

std::string Quote(const std::string& value) { return api::Quoted(value); }

absl::Status ParseUserName(const std::string& name, const std::string& field, std::string* user) {
  return ParsePrefixed(name, field, "users/", true, user);
}

absl::Status ParseTeamName(const std::string& name, const std::string& field, std::string* team) {
  return ParsePrefixed(name, field, "teams/", false, team);
}

absl::Status ParseResource(const std::string& resource, const std::string& field, ResourceRef* out,
                           bool allow_platform) {
  auto bad = [&](const std::string& why) {
    return InvalidField(field, absl::StrCat("expected \"projects/{project}\" or "
                                            "\"projects/{project}/{collection}/{id}\" (", why,
                                            "), got ", Quote(resource)));
  };
  if (resource.empty()) return InvalidField(field, "is required");
  if (resource.size() > 1024) return InvalidField(field, "longer than 1024 bytes");
  auto parts = Split(resource);
  if (allow_platform && parts.size() == 2 &&
      absl::c_linear_search(kPlatformCollections, parts[0])) {
    if (!api::IsValidResourceId(parts[1])) {
      return bad("ids are 1-63 of [a-z0-9._-], starting and ending with a letter or digit");
    }
    out->project.clear();
    out->chain = {resource};
    out->platform = true;
    return absl::OkStatus();
  }
  if (parts.size() < 2 || parts[0] != "projects") return bad("must start with projects/");
  if (parts.size() % 2 != 0) return bad("collection without an id");
  if (parts.size() > 18) return bad("nested too deeply");
  SUBMARINE_RETURN_IF_ERROR(ValidateId(parts[1], field));
  out->project = parts[1];
  out->chain.clear();
  std::string name = "projects/" + parts[1];
  for (size_t i = 2; i < parts.size(); i += 2) {
    if (!api::IsValidCollection(parts[i])) return bad("collections are lowerCamel words");
    if (!api::IsValidResourceId(parts[i + 1])) {
      return bad("ids are 1-63 of [a-z0-9._-], starting and ending with a letter or digit");
    }
    absl::StrAppend(&name, "/", parts[i], "/", parts[i + 1]);
    out->chain.push_back(name);
  }
  return absl::OkStatus();
}

absl::Status ValidateHexId(const std::string& id, const std::string& field) {
  bool ok = !id.empty() && id.size() <= 64;
  for (char c : id) ok = ok && (IsDigit(c) || (c >= 'a' && c <= 'f'));
  if (!ok) return InvalidField(field, absl::StrCat("ids are lower-case hex, got ", Quote(id)));
  return absl::OkStatus();
}

absl::Status ValidateSubject(const std::string& subject, const std::string& field) {
  if (subject == kAllUsers) return absl::OkStatus();
  std::string id;
  if (subject.rfind("users/", 0) == 0) return ParseUserName(subject, field, &id);
  if (subject.rfind("teams/", 0) == 0) return ParseTeamName(subject, field, &id);
  return InvalidField(field, absl::StrCat("expected \"users/{user}\", \"teams/{team}\" or "
                                          "\"allUsers\", got ",
                                          Quote(subject)));
}

}  // namespace submarine::permission
