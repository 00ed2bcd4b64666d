#include "clients/cli/output.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>

#include "absl/strings/str_cat.h"
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

void Emit(YAML::Emitter& out, const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::object:
      out << YAML::BeginMap;
      for (const auto& [key, item] : value.items()) {
        out << YAML::Key;
        if (NeedsQuotes(key)) out << YAML::DoubleQuoted;
        out << key << YAML::Value;
        Emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::json::value_t::array:
      out << YAML::BeginSeq;
      for (const auto& item : value) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      if (NeedsQuotes(s)) out << YAML::DoubleQuoted;
      out << s;
      break;
    }
    case nlohmann::json::value_t::null:
      out << YAML::Null;
      break;
    default:
      out << value.dump();  // numbers and booleans print the same in YAML
  }
}

std::string Field(const nlohmann::json& object, const char* key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_string()) return "";
  return object[key].get<std::string>();
}

std::string LastSegment(const std::string& name) {
  auto slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

// "2024-05-01T10:00:00.123456Z" -> "2024-05-01T10:00:00Z".
std::string ShortTime(const std::string& time) {
  auto dot = time.find('.');
  if (dot == std::string::npos) return time;
  return time.substr(0, dot) + "Z";
}

std::string Labels(const nlohmann::json& environment) {
  if (!environment.contains("labels") || !environment["labels"].is_object()) return "";
  std::string out;
  for (const auto& [key, value] : environment["labels"].items()) {
    absl::StrAppend(&out, out.empty() ? "" : ",", key, "=",
                    value.is_string() ? value.get<std::string>() : value.dump());
  }
  return out;
}

}  // namespace

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text) {
  if (text == "table") return OutputFormat::kTable;
  if (text == "json") return OutputFormat::kJson;
  if (text == "yaml") return OutputFormat::kYaml;
  return InvalidField(
      "output", absl::StrCat("unknown output format \"", text, "\"; use table, json or yaml"));
}

std::string JsonToYaml(const nlohmann::json& value) {
  YAML::Emitter out;
  Emit(out, value);
  return std::string(out.c_str()) + "\n";
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

std::string FormatEnvironments(const std::vector<nlohmann::json>& environments, OutputFormat format,
                               bool single) {
  if (format != OutputFormat::kTable) {
    nlohmann::json value =
        single && environments.size() == 1 ? environments.front() : nlohmann::json(environments);
    return format == OutputFormat::kJson ? value.dump(2) + "\n" : JsonToYaml(value);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& e : environments) {
    rows.push_back({LastSegment(Field(e, "name")), Field(e, "displayName"), Field(e, "image"),
                    Labels(e), ShortTime(Field(e, "createTime"))});
  }
  return RenderTable({"NAME", "DISPLAY NAME", "IMAGE", "LABELS", "CREATED"}, rows);
}

std::string FormatResources(const std::vector<nlohmann::json>& items,
                            const std::vector<Column>& columns, OutputFormat format, bool single) {
  if (format != OutputFormat::kTable) {
    nlohmann::json value = single && items.size() == 1 ? items.front() : nlohmann::json(items);
    return format == OutputFormat::kJson ? value.dump(2) + "\n" : JsonToYaml(value);
  }
  std::vector<std::string> headers;
  for (const Column& c : columns) headers.push_back(c.header);
  std::vector<std::vector<std::string>> rows;
  for (const auto& item : items) {
    std::vector<std::string> row;
    for (const Column& c : columns) row.push_back(c.cell(item));
    rows.push_back(std::move(row));
  }
  return RenderTable(headers, rows);
}

std::string TextField(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object() || !object.contains(key)) return "";
  const auto& v = object[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string LastSegmentOf(const std::string& name) { return LastSegment(name); }

std::string ShortTimeOf(const std::string& rfc3339) { return ShortTime(rfc3339); }

std::string JoinedField(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object() || !object.contains(key) || !object[key].is_array()) return "";
  std::string out;
  for (const auto& item : object[key]) {
    absl::StrAppend(&out, out.empty() ? "" : ",",
                    item.is_string() ? item.get<std::string>() : item.dump());
  }
  return out;
}

}  // namespace submarine::cli
