#pragma once
// Typed configuration: a proto message filled from a YAML or JSON file (or text). `${NAME}` and
// `${NAME:-default}` are replaced from the environment before parsing; an unset variable without
// a default is an error. Unknown keys are an error naming the key.

#include <google/protobuf/message.h>

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::config {

// Replaces ${VAR} / ${VAR:-default} from the process environment.
absl::StatusOr<std::string> SubstituteEnv(std::string_view text);

// Parses YAML (JSON is YAML) into `out`, rejecting unknown fields.
absl::Status ParseConfigText(std::string_view text, google::protobuf::Message* out);

// Reads `path`, substitutes the environment and parses it into `out`.
absl::Status LoadConfigFile(const std::string& path, google::protobuf::Message* out);

// YAML text to JSON text, read as plain data (maps, lists, scalars): scalars that are plain
// (unquoted) integers, floats, true/false or null become JSON numbers, booleans and null; every
// other scalar becomes a string. Tags are ignored, never mapped to types.
absl::StatusOr<std::string> YamlToJson(std::string_view yaml);

// Reads a secret (password, key) kept in a file: the content without trailing whitespace.
// NOT_FOUND if missing. Every reader of a secret file uses this, so writers and readers agree.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

// Reads a whole file; NOT_FOUND if missing.
absl::StatusOr<std::string> ReadFile(const std::string& path);
// Writes a file atomically (temp file + rename) with the given mode.
absl::Status WriteFileAtomic(const std::string& path, std::string_view content, int mode = 0644);

}  // namespace submarine::config
