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
//
// Refresh tokens are single use, and the CLI and any number of SDK processes share the file. So
// whoever refreshes, logs in or logs out holds CredentialsLock — an exclusive flock(2) on the
// sibling file "credentials.lock" (the SDK takes the same lock) — and a refresher re-reads the
// file under it first: when another process already refreshed, its tokens are used instead of
// spending the now invalid refresh token (see ApiClient).

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

// An exclusive flock(2) on `<credentials path>.lock` (created 0600, in a directory created 0700
// if missing, never removed: removing a lock file lets two holders in at once). Held from
// Acquire() until destruction; blocks while another process (or another open of the file in this
// one) holds it. Move-only.
class CredentialsLock {
 public:
  // INTERNAL naming the file when it cannot be created or locked.
  static absl::StatusOr<CredentialsLock> Acquire(const std::string& credentials_path);

  CredentialsLock(CredentialsLock&& other) noexcept;
  CredentialsLock& operator=(CredentialsLock&& other) noexcept;
  CredentialsLock(const CredentialsLock&) = delete;
  CredentialsLock& operator=(const CredentialsLock&) = delete;
  ~CredentialsLock();

 private:
  explicit CredentialsLock(int fd) : fd_(fd) {}
  int fd_ = -1;
};

}  // namespace submarine::cli
