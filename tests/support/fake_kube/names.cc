#include "tests/support/fake_kube/names.h"

#include <cctype>
#include <mutex>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace submarine::testing::fake_kube {
namespace {

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool IsDns1123Label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!IsLowerAlnum(s.front()) || !IsLowerAlnum(s.back())) return false;
  for (char c : s) {
    if (!IsLowerAlnum(c) && c != '-') return false;
  }
  return true;
}

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng;
}

}  // namespace

std::string Dns1123SubdomainProblem(const std::string& name) {
  if (name.size() > 253) return "must be no more than 253 characters";
  bool ok = !name.empty();
  size_t start = 0;
  while (ok && start <= name.size()) {
    size_t dot = name.find('.', start);
    std::string part =
        name.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || !IsLowerAlnum(part.front()) || !IsLowerAlnum(part.back())) ok = false;
    for (char c : part) {
      if (!IsLowerAlnum(c) && c != '-') ok = false;
    }
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  if (ok) return "";
  return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
         "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
         "regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
}

std::string Dns1123LabelProblem(const std::string& name) {
  if (name.size() > 63) return "must be no more than 63 characters";
  if (IsDns1123Label(name)) return "";
  return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
         "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
         "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
}

std::string Dns1035LabelProblem(const std::string& name) {
  if (name.size() > 63) return "must be no more than 63 characters";
  if (IsDns1123Label(name) && name.front() >= 'a' && name.front() <= 'z') return "";
  return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
         "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
         "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
}

std::string QualifiedNameProblem(const std::string& key) {
  std::string name = key;
  size_t slash = key.find('/');
  if (slash != std::string::npos) {
    std::string prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty()) return "prefix part must be non-empty";
    if (!Dns1123SubdomainProblem(prefix).empty()) {
      return absl::StrCat("prefix part ", Dns1123SubdomainProblem(prefix));
    }
  }
  if (name.empty()) return "name part must be non-empty";
  if (name.size() > 63) return "name part must be no more than 63 characters";
  bool ok = IsAlnum(name.front()) && IsAlnum(name.back());
  for (char c : name) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') ok = false;
  }
  if (ok) return "";
  return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
         "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
         "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
}

std::string LabelValueProblem(const std::string& value) {
  if (value.empty()) return "";
  if (value.size() > 63) return "must be no more than 63 characters";
  bool ok = IsAlnum(value.front()) && IsAlnum(value.back());
  for (char c : value) {
    if (!IsAlnum(c) && c != '-' && c != '_' && c != '.') ok = false;
  }
  if (ok) return "";
  return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
         "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
         "'my_value',  or '12345', regex used for validation is "
         "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
}

std::string Rfc3339(TimePoint t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromChrono(t), absl::UTCTimeZone());
}

std::string NowRfc3339() { return Rfc3339(std::chrono::system_clock::now()); }

std::optional<TimePoint> ParseRfc3339(const std::string& text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return std::nullopt;
  return absl::ToChronoTime(t);
}

std::string RandomSuffix(size_t n) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string out;
  for (size_t i = 0; i < n; ++i) out.push_back(kAlphabet[pick(Rng())]);
  return out;
}

std::string NewUid() {
  uint64_t a = Rng()(), b = Rng()();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                         b >> 48, b & 0xffffffffffffULL);
}

const nlohmann::json* ControllerRef(const nlohmann::json& object) {
  const nlohmann::json& refs = Field(Field(object, "metadata"), "ownerReferences");
  for (size_t i = 0; refs.is_array() && i < refs.size(); ++i) {
    if (BoolField(refs[i], "controller")) return &refs[i];
  }
  return nullptr;
}

const nlohmann::json& Field(const nlohmann::json& obj, const std::string& key) {
  static const nlohmann::json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string StringField(const nlohmann::json& obj, const std::string& key) {
  const auto& v = Field(obj, key);
  return v.is_string() ? v.get<std::string>() : "";
}

int64_t IntField(const nlohmann::json& obj, const std::string& key, int64_t fallback) {
  const auto& v = Field(obj, key);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

bool BoolField(const nlohmann::json& obj, const std::string& key) {
  const auto& v = Field(obj, key);
  return v.is_boolean() && v.get<bool>();
}

}  // namespace submarine::testing::fake_kube
