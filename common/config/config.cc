#include "common/config/config.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::config {
namespace {

// Limits that keep a hostile document (deep nesting, alias bombs) from exhausting the process.
constexpr int kMaxDepth = 64;
constexpr size_t kMaxNodes = 200000;

// A plain scalar that is a JSON number: optional sign, digits, optional fraction and exponent.
bool LooksNumeric(const std::string& s, bool* integral) {
  if (s.empty() || s.size() > 40) return false;
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  size_t digits = 0, frac = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++digits;
  *integral = true;
  if (i < s.size() && s[i] == '.') {
    *integral = false;
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++frac;
  }
  if (digits + frac == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    *integral = false;
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i, ++exp;
    if (exp == 0) return false;
  }
  return i == s.size();
}

nlohmann::json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted scalar: always a string
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  bool integral = false;
  if (!LooksNumeric(s, &integral)) return s;
  errno = 0;
  char* end = nullptr;
  if (integral) {
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (errno == 0 && end == s.c_str() + s.size()) return v;
    return s;  // out of range: keep the text
  }
  double d = std::strtod(s.c_str(), &end);
  if (errno == 0 && end == s.c_str() + s.size() && std::isfinite(d)) return d;
  return s;
}

// A YAML document past the limits; its text is ours and may be answered to a client.
class UnacceptableYaml : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws UnacceptableYaml past the limits (caught by YamlToJson).
nlohmann::json NodeToJson(const YAML::Node& node, int depth, size_t* nodes) {
  if (++*nodes > kMaxNodes) throw UnacceptableYaml("more than 200000 YAML nodes");
  if (depth > kMaxDepth) throw UnacceptableYaml("YAML nested deeper than 64 levels");
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      auto arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(NodeToJson(item, depth + 1, nodes));
      return arr;
    }
    case YAML::NodeType::Map: {
      auto obj = nlohmann::json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) throw UnacceptableYaml("YAML map keys must be scalars");
        obj[kv.first.Scalar()] = NodeToJson(kv.second, depth + 1, nodes);
      }
      return obj;
    }
    case YAML::NodeType::Scalar: return ScalarToJson(node);
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<std::string> SubstituteEnv(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      size_t end = text.find('}', i + 2);
      if (end == std::string_view::npos) {
        return InvalidField("config", "unterminated ${ in configuration");
      }
      std::string expr(text.substr(i + 2, end - i - 2));
      std::string name = expr, def;
      bool has_default = false;
      if (auto pos = expr.find(":-"); pos != std::string::npos) {
        name = expr.substr(0, pos);
        def = expr.substr(pos + 2);
        has_default = true;
      }
      const char* value = std::getenv(name.c_str());
      if (value != nullptr) {
        out += value;
      } else if (has_default) {
        out += def;
      } else {
        return InvalidField("config", absl::StrCat("environment variable ", name,
                                                   " is not set and has no default"));
      }
      i = end + 1;
    } else {
      out += text[i++];
    }
  }
  return out;
}

absl::StatusOr<std::string> YamlToJson(std::string_view yaml) {
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    size_t nodes = 0;
    return NodeToJson(root, 0, &nodes).dump();
  } catch (const YAML::Exception& e) {
    // The parser's own words and position, not what() (which names the library); the caller
    // quotes the message, which may echo the input.
    if (e.mark.is_null()) return InvalidField("body", absl::StrCat("malformed YAML: ", e.msg));
    return InvalidField("body", absl::StrCat("malformed YAML at line ", e.mark.line + 1,
                                             ", column ", e.mark.column + 1, ": ", e.msg));
  } catch (const UnacceptableYaml& e) {
    return InvalidField("body", absl::StrCat("unacceptable YAML: ", e.what()));
  } catch (const std::exception&) {
    // Anything else (an allocation failure) names C++ internals: not for a client.
    return InvalidField("body", "the YAML document could not be read");
  }
}

absl::Status ParseConfigText(std::string_view text, google::protobuf::Message* out) {
  absl::StatusOr<std::string> converted = YamlToJson(text);
  if (!converted.ok()) return converted.status();
  const std::string json = *converted == "null" ? std::string("{}") : *converted;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = false;
  auto st = google::protobuf::util::JsonStringToMessage(json, out, opts);
  if (!st.ok()) {
    return InvalidField("config", absl::StrCat("invalid configuration for ",
                                               out->GetDescriptor()->full_name(), ": ",
                                               st.message().as_string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string secret, ReadFile(path));
  while (!secret.empty() && std::isspace(static_cast<unsigned char>(secret.back()))) {
    secret.pop_back();
  }
  return secret;
}

absl::Status LoadConfigFile(const std::string& path, google::protobuf::Message* out) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string raw, ReadFile(path));
  SUBMARINE_ASSIGN_OR_RETURN(std::string text, SubstituteEnv(raw));
  auto st = ParseConfigText(text, out);
  if (!st.ok()) return absl::Status(st.code(), absl::StrCat(path, ": ", Message(st)));
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view content, int mode) {
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return Internal(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
  ::fchmod(fd, mode);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      ::close(fd);
      return Internal(absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal(absl::StrCat("cannot rename ", tmp, ": ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace submarine::config
