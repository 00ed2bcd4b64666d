#include "common/config/config.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::config {
namespace {

nlohmann::json NodeToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined: return nullptr;
    case YAML::NodeType::Sequence: {
      auto arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(NodeToJson(item));
      return arr;
    }
    case YAML::NodeType::Map: {
      auto obj = nlohmann::json::object();
      for (const auto& kv : node) obj[kv.first.as<std::string>()] = NodeToJson(kv.second);
      return obj;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = node.Scalar();
      if (node.Tag() == "!") return s;  // quoted scalar: always a string
      static const std::regex kInt("^[-+]?[0-9]+$");
      static const std::regex kFloat("^[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?$");
      if (s == "true" || s == "True") return true;
      if (s == "false" || s == "False") return false;
      if (s == "null" || s == "~" || s.empty()) return nullptr;
      if (std::regex_match(s, kInt) && s.size() < 19) return std::stoll(s);
      if (std::regex_match(s, kFloat)) return std::stod(s);
      return s;
    }
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
    return NodeToJson(root).dump();
  } catch (const YAML::Exception& e) {
    return InvalidField("body", absl::StrCat("malformed YAML: ", e.what()));
  }
}

absl::Status ParseConfigText(std::string_view text, google::protobuf::Message* out) {
  SUBMARINE_ASSIGN_OR_RETURN(std::string json, YamlToJson(text));
  if (json == "null") json = "{}";
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
