#include "common/api/names.h"

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

bool IsLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// [a-z] then up to 62 characters for which `allowed` holds.
bool LowerWord(const std::string& s, bool (*allowed)(char)) {
  if (s.empty() || s.size() > 63 || !IsLower(s[0])) return false;
  for (char c : s) {
    if (!allowed(c)) return false;
  }
  return true;
}

}  // namespace

std::string Quoted(const std::string& value) { return absl::StrCat("\"", QuoteInput(value), "\""); }

absl::Status ValidateId(const std::string& id, const std::string& field) {
  if (!LowerWord(id, [](char c) { return IsLower(c) || IsDigit(c) || c == '-'; })) {
    return InvalidField(field, absl::StrCat("ids match [a-z][a-z0-9-]{0,62}, got ", Quoted(id)));
  }
  return absl::OkStatus();
}

absl::Status ValidateUsername(const std::string& username, const std::string& field) {
  if (!LowerWord(username, [](char c) {
        return IsLower(c) || IsDigit(c) || c == '_' || c == '.' || c == '-';
      })) {
    return InvalidField(
        field, absl::StrCat("usernames match [a-z][a-z0-9_.-]{0,62}, got ", Quoted(username)));
  }
  return absl::OkStatus();
}

bool IsValidResourceId(const std::string& id) {
  if (id.empty() || id.size() > 63) return false;
  auto edge = [](char c) { return IsLower(c) || IsDigit(c); };
  if (!edge(id.front()) || !edge(id.back())) return false;
  for (char c : id) {
    if (!(edge(c) || c == '-' || c == '_' || c == '.')) return false;
  }
  return true;
}

absl::Status ValidateResourceId(const std::string& id, const std::string& field,
                                const std::string& kind) {
  if (!IsValidResourceId(id)) {
    return InvalidField(field, absl::StrCat(kind,
                                            " ids are 1-63 of [a-z0-9._-], starting and ending "
                                            "with a letter or digit, got ",
                                            Quoted(id)));
  }
  return absl::OkStatus();
}

bool IsValidCollection(const std::string& collection) {
  return LowerWord(collection, [](char c) { return IsLower(c) || IsUpper(c) || IsDigit(c); });
}

absl::StatusOr<std::string> CanonicalClusterName(const std::string& value,
                                                 const std::string& field) {
  if (value.empty()) return value;
  const std::string kPrefix = "computeClusters/";
  std::string id = value.rfind(kPrefix, 0) == 0 ? value.substr(kPrefix.size()) : value;
  if (!IsValidResourceId(id)) {
    return InvalidField(field, absl::StrCat("expected \"computeClusters/{cluster}\" or a cluster "
                                            "id, got ",
                                            Quoted(value)));
  }
  return absl::StrCat(kPrefix, id);
}

absl::Status ValidateCollection(const std::string& collection, const std::string& field) {
  if (!IsValidCollection(collection)) {
    return InvalidField(field, absl::StrCat("collections are lowerCamel words, got ",
                                            Quoted(collection)));
  }
  return absl::OkStatus();
}

absl::Status CheckText(const std::string& value, const std::string& field, size_t max_bytes,
                       bool multiline) {
  if (value.size() > max_bytes) {
    return InvalidField(field, absl::StrCat("longer than ", max_bytes, " bytes"));
  }
  for (unsigned char c : value) {
    if (c == 0x7f || (c < 0x20 && !(multiline && (c == '\n' || c == '\t')))) {
      return InvalidField(field, "contains control characters");
    }
  }
  if (!IsValidUtf8(value)) return InvalidField(field, "is not valid UTF-8");
  return absl::OkStatus();
}

absl::Status ParseProjectName(const std::string& name, const std::string& field,
                              std::string* project) {
  constexpr std::string_view kPrefix = "projects/";
  if (name.rfind(kPrefix, 0) != 0 || name.find('/', kPrefix.size()) != std::string::npos) {
    return InvalidField(field,
                        absl::StrCat("expected \"projects/{project}\", got ", Quoted(name)));
  }
  *project = name.substr(kPrefix.size());
  return ValidateId(*project, field);
}

absl::Status ParseProjectResourceName(const std::string& name, const std::string& field,
                                      const std::string& collection, const std::string& kind,
                                      std::string* project, std::string* id) {
  constexpr std::string_view kPrefix = "projects/";
  std::string middle = absl::StrCat("/", collection, "/");
  size_t mid = name.find(middle, kPrefix.size());
  if (name.rfind(kPrefix, 0) != 0 || mid == std::string::npos || mid == kPrefix.size() ||
      name.find('/', kPrefix.size()) != mid) {
    return InvalidField(field, absl::StrCat("expected \"projects/{project}/", collection, "/{",
                                            kind, "}\", got ", Quoted(name)));
  }
  *project = name.substr(kPrefix.size(), mid - kPrefix.size());
  *id = name.substr(mid + middle.size());
  SUBMARINE_RETURN_IF_ERROR(ValidateId(*project, field));
  return ValidateResourceId(*id, field, kind);
}

}  // namespace submarine::api
