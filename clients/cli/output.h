#pragma once
// How the CLI prints resources: aligned tables for people, JSON or YAML for scripts.

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace submarine::cli {

enum class OutputFormat { kTable, kJson, kYaml };

// "table", "json" or "yaml"; INVALID_ARGUMENT otherwise.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& text);

// Block-style YAML of a JSON value. Strings that YAML would read back as something else
// (numbers, booleans, null, empty, leading/trailing spaces, ...) are double-quoted.
std::string JsonToYaml(const nlohmann::json& value);

// Left-aligned columns separated by three spaces, one header row; every line ends with '\n'.
std::string RenderTable(const std::vector<std::string>& headers,
                        const std::vector<std::vector<std::string>>& rows);

// Environments in the given format: a table (NAME, DISPLAY NAME, IMAGE, LABELS, CREATED), or for
// JSON/YAML one object when `single`, else an array.
std::string FormatEnvironments(const std::vector<nlohmann::json>& environments, OutputFormat format,
                               bool single);

// A table column: its header and how a cell is read from a resource.
struct Column {
  std::string header;
  std::function<std::string(const nlohmann::json&)> cell;
};

// Resources in the given format: a table with `columns`, or for JSON/YAML one object when
// `single` (and there is exactly one), else an array.
std::string FormatResources(const std::vector<nlohmann::json>& items,
                            const std::vector<Column>& columns, OutputFormat format, bool single);

// Cell helpers: a field as text ("" if absent; numbers and booleans printed as JSON), its last
// path segment ("users/alice" -> "alice"), a timestamp to the second, and a string list joined
// with ','.
std::string TextField(const nlohmann::json& object, const std::string& key);
std::string LastSegmentOf(const std::string& name);
std::string ShortTimeOf(const std::string& rfc3339);
std::string JoinedField(const nlohmann::json& object, const std::string& key);

}  // namespace submarine::cli
