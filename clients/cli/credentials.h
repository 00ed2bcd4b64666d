#pragma once
// The CLI's stored login: ${SUBMARINE_CONFIG_DIR:-$HOME/.config/submarine}/credentials, a JSON
// object written by `submarine login` and by token refreshes, read by every client command and
// by the Python SDK:
//
//   {"gateway": "http://127.0.0.1:8080", "username": "alice", "access_token": "<JWT>",
//    "refresh_token": "<opaque>", "expires_at": 1700000000}
//
// `expires_at` is the access token's expiry in Unix seconds (0: unknown). The directory is created
// 0700 and the file 0600 (written atomically, never readable by others even for an instant); the
// tokens are never printed or logged.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::cli {

struct Credentials {
  std::string gateway;  // the server the tokens were issued by (no trailing '/')
  std::string username;
  std::string access_token;
  std::string refresh_token;
  int64_t expires_at = 0;
};

// The directory: `config_dir_env` ($SUBMARINE_CONFIG_DIR, may be null) if set, else
// `home`/.config/submarine.
std::string CredentialsDir(const char* config_dir_env, const char* home);
// CredentialsDir() of the real environment + "/credentials".
std::string DefaultCredentialsPath();

nlohmann::json CredentialsToJson(const Credentials& credentials);
// INVALID_ARGUMENT unless `json` is an object with a string access_token.
absl::StatusOr<Credentials> CredentialsFromJson(const nlohmann::json& json);

// NOT_FOUND if there is no file; INVALID_ARGUMENT naming the file if it is not credentials.
absl::StatusOr<Credentials> ReadCredentials(const std::string& path);
// Creates the parent directory (0700) if missing and writes the file with mode 0600.
absl::Status WriteCredentials(const std::string& path, const Credentials& credentials);
// Removes the file; OK if there was none.
absl::Status RemoveCredentials(const std::string& path);

}  // namespace submarine::cli
