#include "clients/cli/output.h"

#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

bool NeedsQuotes(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return true;
  static const std::regex kSpecial(
      "(?:[-+]?(?:[0-9][0-9_]*(?:\\.[0-9_]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?|"
      "0x[0-9a-fA-F]+|0o[0-7]+|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)|"
      "~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|yes|Yes|YES|n|N|no|No|NO|"
      "on|On|ON|off|Off|OFF)");
  return std::regex_match(s, kSpecial);
}

void Emit(YAML::Emitter& out, const nlohmann::ordered_json& value) {
  switch (value.type()) {
    case nlohmann::ordered_json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        if (NeedsQuotes(key)) out << YAML::DoubleQuoted;
        out << key << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::ordered_json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : value) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::ordered_json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      break;
    }
    case nlohmann::ordered_json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << value.dump();  // numbers and booleans print the same in YAML
  }
}

std::string Labels(const environment::v1::Environment& environment) {
  return LabelsText(environment.labels());
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "yaml") return OutputFormat::kYaml;
  return InvalidField(
      "output", absl::StrCat("unknown output format \"", text, "\"; use table, json or yaml"));
}

std::string JsonToYaml(const nlohmann::ordered_json& value) {
  YAML::Emitter out;
  Emit(out, value);
  return std::string(out.c_str()) + "\n";
}

std::string FormatValue(const nlohmann::ordered_json& value, OutputFormat format) {
  return format == OutputFormat::kJson ? value.dump(2) + "\n" : JsonToYaml(value);
}

nlohmann::ordered_json MessageToJson(const google::protobuf::Message& message) {
  std::string text;
  // Printing a message parsed from (or built for) the wire cannot fail; an empty object stands
  // in if it ever did.
  if (!google::protobuf::util::MessageToJsonString(message, &text).ok()) {
    return nlohmann::ordered_json::object();
  }
  return nlohmann::ordered_json::parse(text);
}

std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& h : headers) widths.push_back(h.size());
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  auto line = [&widths](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string cell = i < cells.size() ? cells[i] : "";
      out += cell;
      if (i + 1 < widths.size()) out += std::string(widths[i] - cell.size() + 3, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(headers);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string FormatEnvironments(const std::vector<environment::v1::Environment>& environments,
                               OutputFormat format, bool single) {
  using environment::v1::Environment;
  static const auto* columns = new std::vector<Column<Environment>>{
      {"NAME", [](const Environment& e) { return LastSegmentOf(e.name()); }},
      {"DISPLAY NAME", [](const Environment& e) { return e.display_name(); }},
      {"IMAGE", [](const Environment& e) { return e.image(); }},
      {"LABELS", Labels},
      {"CREATED", [](const Environment& e) { return TimeText(e.create_time()); }}};
  return FormatMessages(environments, *columns, format, single);
}

std::string LabelsText(const google::protobuf::Map<std::string, std::string>& map) {
  // The map's iteration order is unspecified: sort for a stable table.
  std::vector<std::pair<std::string, std::string>> labels(map.begin(), map.end());
  std::sort(labels.begin(), labels.end());
  std::string out;
  for (const auto& [key, value] : labels) {
    absl::StrAppend(&out, out.empty() ? "" : ",", key, "=", value);
  }
  return out;
}

std::string LastSegmentOf(const std::string& name) {
  auto slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

std::string TimeText(const google::protobuf::Timestamp& time) {
  if (time.seconds() == 0 && time.nanos() == 0) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(time.seconds()),
                          absl::UTCTimeZone());
}

std::string Joined(const google::protobuf::RepeatedPtrField<std::string>& items) {
  return absl::StrJoin(items, ",");
}

}  // namespace submarine::cli
