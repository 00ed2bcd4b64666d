#pragma once
// An authenticated client of the gateway's REST API for the CLI commands. Every call carries
// "Authorization: Bearer <token>", the token coming from, in order:
//   1. $SUBMARINE_TOKEN (an API token, typically for CI): used as is, never refreshed;
//   2. the credentials file (credentials.h), if it was written for the same gateway: the access
//      token is refreshed with the refresh token (POST /v1/auth:refresh) when it has expired or
//      is about to, and once more when a call answers 401 with reason TOKEN_EXPIRED; the new
//      tokens are written back to the file.
// Without a token calls go out anonymously, and a 401 says how to log in.

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cli/credentials.h"
#include "clients/cli/http_client.h"

namespace submarine::cli {

// Sends one request to the server (HttpClient::Send in production; a fake in tests).
using HttpSender = std::function<absl::StatusOr<HttpResponse>(
    const std::string& method, const std::string& path_and_query, const std::string& body,
    const HttpHeaders& headers)>;

struct ApiClientOptions {
  std::string server;                 // the resolved gateway URL, no trailing '/'
  std::string env_token;              // $SUBMARINE_TOKEN ("" when unset)
  std::string credentials_path;       // where `submarine login` stores tokens
  HttpSender sender;                  // default: an HttpClient for `server`
  std::function<int64_t()> now_unix;  // default: the system clock
};

class ApiClient {
 public:
  explicit ApiClient(ApiClientOptions options);

  const std::string& server() const { return options_.server; }

  // Sends a request and returns its JSON body ({} when empty), or the server's error as a status
  // (StatusFromResponse). `body` is sent as JSON unless null. Not thread-safe.
  absl::StatusOr<nlohmann::json> Call(const std::string& method, const std::string& path,
                                      const nlohmann::json& body = nullptr);

  // POST /v1/auth:login; on success writes the credentials file for this server and returns what
  // it wrote. The password is sent once and kept nowhere.
  absl::StatusOr<Credentials> Login(const std::string& username, const std::string& password);

  // POST /v1/auth:logout with the stored refresh token, then removes the credentials file (also
  // when the server refuses: a local logout always succeeds). Returns the server's error, if any.
  absl::Status Logout();

  // The username of the stored credentials for this server, "" when the token comes from
  // $SUBMARINE_TOKEN or nobody is logged in.
  std::string StoredUsername();

  // The caller's username: StoredUsername(), else GET /v1/users:me.
  absl::StatusOr<std::string> CurrentUsername();

  // Where the token of the next call comes from: "SUBMARINE_TOKEN", the credentials file's path,
  // or "" (none).
  std::string TokenSource();

 private:
  // Loads the credentials file once; keeps them only if they are for options_.server.
  void LoadCredentials();
  absl::Status Refresh();
  absl::StatusOr<HttpResponse> SendOnce(const std::string& method, const std::string& path,
                                        const std::string& body, bool authenticated);

  ApiClientOptions options_;
  bool loaded_ = false;
  std::optional<Credentials> credentials_;  // for this server
  std::string other_gateway_;               // the gateway of credentials for another server
};

// Credentials from a LoginResponse JSON (accessToken, expiresIn, refreshToken, user.name) at
// time `now_unix` for `gateway`. INVALID_ARGUMENT if there is no access token.
absl::StatusOr<Credentials> CredentialsFromLoginResponse(const nlohmann::json& response,
                                                         const std::string& gateway,
                                                         const std::string& username,
                                                         int64_t now_unix);

}  // namespace submarine::cli
