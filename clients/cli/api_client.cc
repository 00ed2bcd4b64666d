#include "clients/cli/api_client.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

// Refresh this long before the access token expires, so a call does not race its expiry (and
// clocks a few seconds apart do not matter).
constexpr int64_t kRefreshMarginSeconds = 30;

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// int64 fields come as JSON strings in proto3 JSON; accept numbers too.
int64_t Int64Field(const nlohmann::json& object, const char* key) {
  if (!object.contains(key)) return 0;
  const auto& v = object[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      return std::stoll(v.get<std::string>());
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

std::string StringField(const nlohmann::json& object, const char* key) {
  return object.is_object() && object.contains(key) && object[key].is_string()
             ? object[key].get<std::string>()
             : std::string();
}

absl::StatusOr<nlohmann::json> ParseBody(const std::string& method, const std::string& path,
                                         const HttpResponse& response) {
  SUBMARINE_RETURN_IF_ERROR(StatusFromResponse(response));
  if (response.body.empty()) return nlohmann::json::object();
  nlohmann::json json = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return Internal(absl::StrCat(method, " ", path, ": the server answered with invalid JSON"));
  }
  return json;
}

}  // namespace

absl::StatusOr<Credentials> CredentialsFromLoginResponse(const nlohmann::json& response,
                                                         const std::string& gateway,
                                                         const std::string& username,
                                                         int64_t now_unix) {
  Credentials c;
  c.gateway = gateway;
  c.access_token = StringField(response, "accessToken");
  if (c.access_token.empty()) {
    return InvalidField("accessToken", "the server's login answer carries no access token");
  }
  c.refresh_token = StringField(response, "refreshToken");
  int64_t expires_in = Int64Field(response, "expiresIn");
  c.expires_at = expires_in > 0 ? now_unix + expires_in : 0;
  std::string user_name =
      response.contains("user") ? StringField(response["user"], "name") : std::string();
  c.username = user_name.rfind("users/", 0) == 0 ? user_name.substr(6) : username;
  return c;
}

ApiClient::ApiClient(ApiClientOptions options) : options_(std::move(options)) {
  while (!options_.server.empty() && options_.server.back() == '/') options_.server.pop_back();
  if (!options_.sender) {
    auto client = std::make_shared<HttpClient>(options_.server);
    options_.sender = [client](const std::string& method, const std::string& path,
                               const std::string& body, const HttpHeaders& headers) {
      return client->Send(method, path, body, headers);
    };
  }
  if (!options_.now_unix) options_.now_unix = SystemNow;
}

void ApiClient::LoadCredentials() {
  if (loaded_) return;
  loaded_ = true;
  if (!options_.env_token.empty() || options_.credentials_path.empty()) return;
  auto stored = ReadCredentials(options_.credentials_path);
  if (!stored.ok()) return;
  // Tokens go only to the gateway that issued them, never to whatever server a flag names.
  if (stored->gateway == options_.server) {
    credentials_ = std::move(*stored);
  } else {
    other_gateway_ = stored->gateway;
  }
}

std::string ApiClient::TokenSource() {
  if (!options_.env_token.empty()) return "SUBMARINE_TOKEN";
  LoadCredentials();
  return credentials_ ? options_.credentials_path : "";
}

std::string ApiClient::StoredUsername() {
  LoadCredentials();
  return credentials_ ? credentials_->username : "";
}

absl::StatusOr<std::string> ApiClient::CurrentUsername() {
  std::string stored = StoredUsername();
  if (!stored.empty()) return stored;
  SUBMARINE_ASSIGN_OR_RETURN(nlohmann::json me, Call("GET", "/v1/users:me"));
  std::string name = StringField(me, "name");
  if (name.rfind("users/", 0) != 0) return Internal("GET /v1/users:me answered without a name");
  return name.substr(6);
}

absl::StatusOr<HttpResponse> ApiClient::SendOnce(const std::string& method, const std::string& path,
                                                 const std::string& body, bool authenticated) {
  HttpHeaders headers;
  if (authenticated) {
    const std::string& token =
        !options_.env_token.empty()
            ? options_.env_token
            : (credentials_ ? credentials_->access_token : options_.env_token);
    if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  }
  return options_.sender(method, path, body, headers);
}

absl::Status ApiClient::Refresh() {
  nlohmann::json body = {{"refreshToken", credentials_->refresh_token}};
  SUBMARINE_ASSIGN_OR_RETURN(HttpResponse response,
                             SendOnce("POST", "/v1/auth:refresh", body.dump(), false));
  auto json = ParseBody("POST", "/v1/auth:refresh", response);
  if (!json.ok()) {
    if (json.status().code() == absl::StatusCode::kUnauthenticated) {
      return MakeError(absl::StatusCode::kUnauthenticated, "SESSION_EXPIRED",
                       absl::StrCat("your session on ", options_.server, " has ended (",
                                    Message(json.status()), "); run `submarine login`"),
                       {{"server", options_.server}});
    }
    return json.status();
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      Credentials fresh, CredentialsFromLoginResponse(*json, options_.server,
                                                      credentials_->username, options_.now_unix()));
  if (fresh.refresh_token.empty()) fresh.refresh_token = credentials_->refresh_token;
  credentials_ = fresh;
  return WriteCredentials(options_.credentials_path, fresh);
}

absl::StatusOr<nlohmann::json> ApiClient::Call(const std::string& method, const std::string& path,
                                               const nlohmann::json& body) {
  LoadCredentials();
  std::string text = body.is_null() ? std::string() : body.dump();
  bool refreshed = false;
  if (credentials_ && !credentials_->refresh_token.empty() && credentials_->expires_at > 0 &&
      options_.now_unix() >= credentials_->expires_at - kRefreshMarginSeconds) {
    SUBMARINE_RETURN_IF_ERROR(Refresh());
    refreshed = true;
  }
  SUBMARINE_ASSIGN_OR_RETURN(HttpResponse response, SendOnce(method, path, text, true));
  if (response.status == 401 && credentials_ && !refreshed &&
      !credentials_->refresh_token.empty() && ErrorReason(response) == "TOKEN_EXPIRED") {
    SUBMARINE_RETURN_IF_ERROR(Refresh());
    SUBMARINE_ASSIGN_OR_RETURN(response, SendOnce(method, path, text, true));
  }
  auto json = ParseBody(method, path, response);
  if (!json.ok() && json.status().code() == absl::StatusCode::kUnauthenticated &&
      TokenSource().empty()) {
    std::string hint =
        other_gateway_.empty()
            ? absl::StrCat("; log in with `submarine login` or set SUBMARINE_TOKEN")
            : absl::StrCat("; you are logged in to ", other_gateway_, ", not ", options_.server,
                           ": run `submarine login --server ", options_.server, "`");
    return absl::Status(json.status().code(), absl::StrCat(Message(json.status()), hint));
  }
  return json;
}

absl::StatusOr<Credentials> ApiClient::Login(const std::string& username,
                                             const std::string& password) {
  nlohmann::json body = {{"username", username}, {"password", password}};
  SUBMARINE_ASSIGN_OR_RETURN(HttpResponse response,
                             SendOnce("POST", "/v1/auth:login", body.dump(), false));
  SUBMARINE_ASSIGN_OR_RETURN(nlohmann::json json, ParseBody("POST", "/v1/auth:login", response));
  SUBMARINE_ASSIGN_OR_RETURN(
      Credentials credentials,
      CredentialsFromLoginResponse(json, options_.server, username, options_.now_unix()));
  SUBMARINE_RETURN_IF_ERROR(WriteCredentials(options_.credentials_path, credentials));
  credentials_ = credentials;
  loaded_ = true;
  other_gateway_.clear();
  return credentials;
}

absl::Status ApiClient::Logout() {
  LoadCredentials();
  absl::Status server_status = absl::OkStatus();
  if (credentials_) {
    auto answer = Call("POST", "/v1/auth:logout",
                       nlohmann::json{{"refreshToken", credentials_->refresh_token}});
    if (!answer.ok()) server_status = answer.status();
  }
  if (!options_.credentials_path.empty()) {
    SUBMARINE_RETURN_IF_ERROR(RemoveCredentials(options_.credentials_path));
  }
  credentials_.reset();
  return server_status;
}

}  // namespace submarine::cli
