#pragma once
// An authenticated client of the gateway's REST API for the CLI commands. Commands call RPCs by
// name with the generated request messages and get the generated response messages back; the
// REST request is derived from the RPC's google.api.http rule (rest_request.h).
//
// Every call carries "Authorization: Bearer <token>" (but auth_exempt RPCs: login, refresh), the
// token coming from, in order:
//   1. $SUBMARINE_TOKEN (an API token, typically for CI): used as is, never refreshed;
//   2. the credentials file (credentials.h), if it was written for the same gateway: the access
//      token is refreshed with the refresh token (POST /v1/auth:refresh) when it has expired or
//      is about to, and once more when a call answers 401 with reason TOKEN_EXPIRED. A refresh
//      holds CredentialsLock and re-reads the file first: when another process (another CLI,
//      the SDK) refreshed meanwhile, its tokens are taken over instead of spending the refresh
//      token that process already used (refresh tokens are single use). The new tokens are
//      written back while the file still belongs to the same gateway and user.
// Without a token calls go out anonymously, and a 401 says how to log in.
//
// Idempotency and retries: a request whose message has a request_id field (every mutation) gets a
// fresh UUID there when it is empty, the same for every retry of that call, so the server can
// answer a repeat with its first answer (AIP-155). GETs and such mutations are retried on
// UNAVAILABLE (connection refused or reset, HTTP 503) per RetryPolicy; nothing else is retried.

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "clients/cli/credentials.h"
#include "clients/cli/http_client.h"
#include "clients/cli/rest_request.h"
#include "common/util/clock.h"
#include "submarine/permission/v1/permission.pb.h"

namespace submarine::cli {

// Sends one request to the server (HttpClient::Send in production; a fake in tests).
using HttpSender = std::function<absl::StatusOr<HttpResponse>(
    const std::string& method, const std::string& path_and_query, const std::string& body,
    const HttpHeaders& headers)>;

// Sends one request whose answer is streamed (HttpClient::Stream in production).
using HttpStreamSender = std::function<absl::StatusOr<HttpResponse>(
    const std::string& method, const std::string& path_and_query, const HttpHeaders& headers,
    const std::function<bool(std::string_view)>& on_data)>;

// How a call that fails with UNAVAILABLE is retried. Before retry n (1, 2, ...) the client waits
// what the answer's Retry-After header asks, else min(max_backoff, initial_backoff * 2^(n-1))
// with equal jitter (a uniformly random point in its upper half). It stops after `max_attempts`
// attempts, or instead of starting a wait that would end more than `max_total` after the first
// attempt began; the last failure is then returned.
struct RetryPolicy {
  int max_attempts = 5;  // 1: never retry
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds max_total{30000};
};

struct ApiClientOptions {
  std::string server;            // the resolved gateway URL, no trailing '/'
  std::string env_token;         // $SUBMARINE_TOKEN ("" when unset)
  std::string credentials_path;  // where `submarine login` stores tokens
  RetryPolicy retry;
  HttpSender sender;                  // default: an HttpClient for `server`
  HttpStreamSender stream_sender;     // default: another HttpClient for `server`
  std::function<int64_t()> now_unix;  // default: the system clock
  // For retries (defaults: std::chrono::steady_clock, std::this_thread::sleep_for, and a
  // uniformly random number in [0, 1)).
  std::function<std::chrono::steady_clock::time_point()> steady_now;
  std::function<void(std::chrono::milliseconds)> sleep;
  std::function<double()> random;
  IdGenerator* ids = nullptr;  // request ids; default IdGenerator::Secure()
};

class ApiClient {
 public:
  explicit ApiClient(ApiClientOptions options);

  const std::string& server() const { return options_.server; }

  // Calls `rpc` (full name, e.g. "submarine.permission.v1.IdentityService.CreateUser") with
  // `request`, a message of its input type, and parses the answer into `response` (of its output
  // type; cleared first), ignoring fields this CLI does not know so a newer server stays usable.
  // Returns the server's error (StatusFromResponse) — on UNAUTHENTICATED without a token with a
  // hint how to log in —, INVALID_ARGUMENT when a name does not fit the RPC's path
  // (BuildRestRequest), INTERNAL for an unknown RPC or an answer that is not the response type.
  // Not thread-safe.
  absl::Status Invoke(const std::string& rpc, const google::protobuf::Message& request,
                      google::protobuf::Message* response);

  template <typename Response>
  absl::StatusOr<Response> Call(const std::string& rpc, const google::protobuf::Message& request) {
    Response response;
    absl::Status status = Invoke(rpc, request, &response);
    if (!status.ok()) return status;
    return response;
  }

  // Calls a server-streaming `rpc` (its REST answer is NDJSON, one message per line) and hands
  // each message, parsed into `response` (of its output type), to `on_message` as it arrives;
  // an error from `on_message` stops the stream and is returned. The server's error answer, or
  // the error line that ends a stream after its first message, is returned as StatusFromResponse
  // reads it; UNAVAILABLE when the connection breaks. Not retried (tokens are refreshed as for
  // Invoke before anything was received). Not thread-safe.
  absl::Status InvokeStream(const std::string& rpc, const google::protobuf::Message& request,
                            google::protobuf::Message* response,
                            const std::function<absl::Status()>& on_message);

  // Logs in (IdentityService.Login); on success writes the credentials file for this server and
  // returns what it wrote. The password is sent once and kept nowhere.
  absl::StatusOr<Credentials> Login(const std::string& username, const std::string& password);

  // Ends the session (IdentityService.Logout with the stored refresh token), then removes the
  // credentials file (also when the server refuses: a local logout always succeeds). Returns the
  // server's error, if any.
  absl::Status Logout();

  // The username of the stored credentials for this server, "" when the token comes from
  // $SUBMARINE_TOKEN or nobody is logged in.
  std::string StoredUsername();

  // The caller's username: StoredUsername(), else IdentityService.GetCurrentUser.
  absl::StatusOr<std::string> CurrentUsername();

  // Where the token of the next call comes from: "SUBMARINE_TOKEN", the credentials file's path,
  // or "" (none).
  std::string TokenSource();

 private:
  // Loads the credentials file once; keeps them only if they are for options_.server.
  void LoadCredentials();
  // Whether the stored access token has expired or is about to.
  bool Expiring() const;
  // Refreshes the stored tokens under CredentialsLock (see the header comment); takes over the
  // file's tokens instead when another process refreshed and they are neither expiring nor
  // `rejected_access_token` (a copy: credentials_ changes underneath).
  absl::Status Refresh(std::string rejected_access_token);
  // "Authorization: Bearer <token>" when `authenticated` and a token is at hand; else none.
  HttpHeaders AuthorizationHeaders(bool authenticated) const;
  // Sends `rest` (with the token when `authenticated`), retrying UNAVAILABLE when `retryable`.
  absl::StatusOr<HttpResponse> Exchange(const RestRequest& rest, bool authenticated,
                                        bool retryable);
  std::chrono::milliseconds Backoff(int retry);

  ApiClientOptions options_;
  bool loaded_ = false;
  std::optional<Credentials> credentials_;  // for this server
  std::string other_gateway_;               // the gateway of credentials for another server
};

// Credentials from a LoginResponse at time `now_unix` for `gateway`; `username` when the answer
// names no user. INVALID_ARGUMENT if there is no access token.
absl::StatusOr<Credentials> CredentialsFromLoginResponse(
    const submarine::permission::v1::LoginResponse& response, const std::string& gateway,
    const std::string& username, int64_t now_unix);

}  // namespace submarine::cli
