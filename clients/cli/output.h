#pragma once
// How the CLI prints resources: aligned tables for people, JSON or YAML for scripts. Resources
// are the generated proto messages; JSON and YAML print them as the gateway sends them (proto3
// JSON: lowerCamel names in declaration order, default values omitted, int64 as strings).

#include <google/protobuf/map.h>
#include <google/protobuf/message.h>
#include <google/protobuf/repeated_ptr_field.h>
#include <google/protobuf/timestamp.pb.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::cli {

enum class OutputFormat { kTable, kJson, kYaml };

// "table", "json" or "yaml"; INVALID_ARGUMENT otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text);

// Block-style YAML of a JSON value. Strings that YAML would read back as something else
// (numbers, booleans, null, empty, leading/trailing spaces, ...) are double-quoted.
std::string JsonToYaml(const nlohmann::ordered_json& value);

// `value` as indented JSON for kJson, as YAML otherwise; ends with '\n'.
std::string FormatValue(const nlohmann::ordered_json& value, OutputFormat format);

// `message` in proto3 JSON form (see the header comment).
nlohmann::ordered_json MessageToJson(const google::protobuf::Message& message);

// Left-aligned columns separated by three spaces, one header row; every line ends with '\n'.
std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// A table column: its header and how a cell is read from a message of type M.
template <typename M>
struct Column {
  std::string header;
  std::function<std::string(const M&)> cell;
};

// Messages in the given format: a table with `columns`, or for JSON/YAML one object when `single`
// (and there is exactly one), else an array.
template <typename M>
std::string FormatMessages(const std::vector<M>& items, const std::vector<Column<M>>& columns,
                           OutputFormat format, bool single) {
  if (format != OutputFormat::kTable) {
    if (single && items.size() == 1) return FormatValue(MessageToJson(items.front()), format);
    nlohmann::ordered_json array = nlohmann::ordered_json::array();
    for (const M& item : items) array.push_back(MessageToJson(item));
    return FormatValue(array, format);
  }
  std::vector<std::string> headers;
  for (const Column<M>& c : columns) headers.push_back(c.header);
  std::vector<std::vector<std::string>> rows;
  for (const M& item : items) {
    std::vector<std::string> row;
    for (const Column<M>& c : columns) row.push_back(c.cell(item));
    rows.push_back(std::move(row));
  }
  return RenderTable(headers, rows);
}

// Environments: a table (NAME, DISPLAY NAME, IMAGE, LABELS, CREATED), or FormatMessages' JSON/YAML.
std::string FormatEnvironments(const std::vector<environment::v1::Environment>& environments,
                               OutputFormat format, bool single);

// Cell helpers: the last path segment of a name ("users/alice" -> "alice"), a timestamp to the
// second in UTC ("2024-05-01T10:00:00Z"; "" when unset, i.e. the epoch), and strings joined with
// ','.
std::string LastSegmentOf(const std::string& name);
// Labels as "k1=v1,k2=v2", sorted by key.
std::string LabelsText(const google::protobuf::Map<std::string, std::string>& labels);
std::string TimeText(const google::protobuf::Timestamp& time);
std::string Joined(const google::protobuf::RepeatedPtrField<std::string>& items);

}  // namespace submarine::cli
