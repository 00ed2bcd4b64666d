#include "services/permission/permission_names.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::permission {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

bool ValidResourceId(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 63 && (IsLower(id[0]) || IsDigit(id[0])) &&
            (IsLower(id.back()) || IsDigit(id.back()));
  for (char c : id) ok = ok && (IsLower(c) || IsDigit(c) || c == '-' || c == '_' || c == '.');
  return ok;
}

bool ValidCollection(const std::string& c) {
  bool ok = !c.empty() && c.size() <= 63 && IsLower(c[0]);
  for (char ch : c) ok = ok && (IsLower(ch) || IsUpper(ch) || IsDigit(ch));
  return ok;
}

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

std::string Quote(const std::string& value) {
  std::string out = "\"";
  for (size_t i = 0; i < value.size() && i < 64; ++i) {
    unsigned char c = static_cast<unsigned char>(value[i]);
    out += (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') ? '?' : static_cast<char>(c);
  }
  if (value.size() > 64) out += "...";
  return out + "\"";
}

absl::Status ValidateUsername(const std::string& username, const std::string& field) {
  bool ok = !username.empty() && username.size() <= 63 && IsLower(username[0]);
  for (char c : username) ok = ok && (IsLower(c) || IsDigit(c) || c == '_' || c == '.' || c == '-');
  if (!ok) {
    return InvalidField(field, absl::StrCat("usernames match [a-z][a-z0-9_.-]{0,62}, got ",
                                            Quote(username)));
  }
  return absl::OkStatus();
}

absl::Status ValidateId(const std::string& id, const std::string& field) {
  bool ok = !id.empty() && id.size() <= 63 && IsLower(id[0]);
  for (char c : id) ok = ok && (IsLower(c) || IsDigit(c) || c == '-');
  if (!ok) {
    return InvalidField(field, absl::StrCat("ids match [a-z][a-z0-9-]{0,62}, got ", Quote(id)));
  }
  return absl::OkStatus();
}

absl::Status CheckText(const std::string& value, const std::string& field, size_t max,
                       bool multiline) {
  if (value.size() > max) {
    return InvalidField(field, absl::StrCat("longer than ", max, " bytes"));
  }
  for (unsigned char c : value) {
    if (c == 0x7f || (c < 0x20 && !(multiline && (c == '\n' || c == '\t')))) {
      return InvalidField(field, "contains control characters");
    }
  }
  if (!ValidUtf8(value)) return InvalidField(field, "is not valid UTF-8");
  return absl::OkStatus();
}

absl::Status ParseUserName(const std::string& name, const std::string& field, std::string* user) {
  return ParsePrefixed(name, field, "users/", true, user);
}

absl::Status ParseTeamName(const std::string& name, const std::string& field, std::string* team) {
  return ParsePrefixed(name, field, "teams/", false, team);
}

absl::Status ParseProjectName(const std::string& name, const std::string& field,
                              std::string* project) {
  return ParsePrefixed(name, field, "projects/", false, project);
}

absl::Status ParseResource(const std::string& resource, const std::string& field,
                           ResourceRef* out) {
  auto bad = [&](const std::string& why) {
    return InvalidField(field, absl::StrCat("expected \"projects/{project}\" or "
                                            "\"projects/{project}/{collection}/{id}\" (", why,
                                            "), got ", Quote(resource)));
  };
  if (resource.empty()) return InvalidField(field, "is required");
  if (resource.size() > 1024) return InvalidField(field, "longer than 1024 bytes");
  auto parts = Split(resource);
  if (parts.size() < 2 || parts[0] != "projects") return bad("must start with projects/");
  if (parts.size() % 2 != 0) return bad("collection without an id");
  if (parts.size() > 18) return bad("nested too deeply");
  SUBMARINE_RETURN_IF_ERROR(ValidateId(parts[1], field));
  out->project = parts[1];
  out->chain.clear();
  std::string name = "projects/" + parts[1];
  for (size_t i = 2; i < parts.size(); i += 2) {
    if (!ValidCollection(parts[i])) return bad("collections are lowerCamel words");
    if (!ValidResourceId(parts[i + 1])) {
      return bad("ids are 1-63 of [a-z0-9._-], starting and ending with a letter or digit");
    }
    absl::StrAppend(&name, "/", parts[i], "/", parts[i + 1]);
    out->chain.push_back(name);
  }
  return absl::OkStatus();
}

absl::Status ValidateCollection(const std::string& collection, const std::string& field) {
  if (!ValidCollection(collection)) {
    return InvalidField(field, absl::StrCat("collections are lowerCamel words, got ",
                                            Quote(collection)));
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
