#include "clients/cli/api_client.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"
#include "submarine/common/v1/options.pb.h"

namespace submarine::cli {
namespace {

namespace pb = submarine::permission::v1;

constexpr char kLoginRpc[] = "submarine.permission.v1.IdentityService.Login";
constexpr char kRefreshRpc[] = "submarine.permission.v1.IdentityService.RefreshToken";
constexpr char kLogoutRpc[] = "submarine.permission.v1.IdentityService.Logout";
constexpr char kCurrentUserRpc[] = "submarine.permission.v1.IdentityService.GetCurrentUser";

// Refresh this long before the access token expires, so a call does not race its expiry (and
// clocks a few seconds apart do not matter).
constexpr int64_t kRefreshMarginSeconds = 30;

int64_t SystemNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

absl::StatusOr<Credentials> CredentialsFromLoginResponse(const pb::LoginResponse& response,
                                                         const std::string& gateway,
                                                         const std::string& username,
                                                         int64_t now_unix) {
  Credentials c;
  c.gateway = gateway;
  c.access_token = response.access_token();
  if (c.access_token.empty()) {
    return InvalidField("accessToken", "the server's login answer carries no access token");
  }
  c.refresh_token = response.refresh_token();
  c.expires_at = response.expires_in() > 0 ? now_unix + response.expires_in() : 0;
  const std::string& user_name = response.user().name();
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
  if (!options_.stream_sender) {
    auto client = std::make_shared<HttpClient>(options_.server);
    options_.stream_sender = [client](const std::string& method, const std::string& path,
                                      const HttpHeaders& headers,
                                      const std::function<bool(std::string_view)>& on_data) {
      return client->Stream(method, path, headers, on_data);
    };
  }
  if (!options_.now_unix) options_.now_unix = SystemNow;
  if (!options_.steady_now) options_.steady_now = [] { return std::chrono::steady_clock::now(); };
  if (!options_.sleep) {
    options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  }
  if (!options_.random) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    options_.random = [engine] { return std::uniform_real_distribution<double>(0, 1)(*engine); };
  }
  if (options_.ids == nullptr) options_.ids = &IdGenerator::Secure();
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
  SUBMARINE_ASSIGN_OR_RETURN(pb::User me,
                             Call<pb::User>(kCurrentUserRpc, pb::GetCurrentUserRequest()));
  if (me.name().rfind("users/", 0) != 0) {
    return Internal("GET /v1/users:me answered without a name");
  }
  return me.name().substr(6);
}

bool ApiClient::Expiring() const {
  return credentials_ && !credentials_->refresh_token.empty() && credentials_->expires_at > 0 &&
         options_.now_unix() >= credentials_->expires_at - kRefreshMarginSeconds;
}

std::chrono::milliseconds ApiClient::Backoff(int retry) {
  const RetryPolicy& p = options_.retry;
  int64_t cap = p.initial_backoff.count();
  for (int i = 1; i < retry && cap < p.max_backoff.count(); ++i) cap *= 2;
  cap = std::min<int64_t>(cap, p.max_backoff.count());
  double jitter = std::clamp(options_.random(), 0.0, 1.0);
  return std::chrono::milliseconds(cap / 2 + static_cast<int64_t>(jitter * (cap - cap / 2)));
}

HttpHeaders ApiClient::AuthorizationHeaders(bool authenticated) const {
  HttpHeaders headers;
  if (!authenticated) return headers;
  const std::string& token = !options_.env_token.empty()
                                 ? options_.env_token
                                 : (credentials_ ? credentials_->access_token : options_.env_token);
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  return headers;
}

absl::StatusOr<HttpResponse> ApiClient::Exchange(const RestRequest& rest, bool authenticated,
                                                 bool retryable) {
  HttpHeaders headers = AuthorizationHeaders(authenticated);
  const auto start = options_.steady_now();
  for (int attempt = 1;; ++attempt) {
    absl::StatusOr<HttpResponse> answer =
        options_.sender(rest.method, rest.path_and_query, rest.body, headers);
    bool unavailable = answer.ok() ? answer->status == 503
                                   : answer.status().code() == absl::StatusCode::kUnavailable;
    if (!unavailable || !retryable || attempt >= options_.retry.max_attempts) return answer;
    std::optional<std::chrono::milliseconds> asked;
    if (answer.ok()) asked = RetryAfter(*answer, options_.now_unix());
    std::chrono::milliseconds wait = asked ? *asked : Backoff(attempt);
    if (options_.steady_now() - start + wait > options_.retry.max_total) return answer;
    options_.sleep(wait);
  }
}

absl::Status ApiClient::InvokeStream(const std::string& rpc_name,
                                     const google::protobuf::Message& request,
                                     google::protobuf::Message* response,
                                     const std::function<absl::Status()>& on_message) {
  const google::protobuf::MethodDescriptor* rpc =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(rpc_name);
  if (rpc == nullptr || !rpc->server_streaming() || rpc->input_type() != request.GetDescriptor() ||
      rpc->output_type() != response->GetDescriptor()) {
    return Internal(absl::StrCat("no server-streaming RPC ", rpc_name, " taking ",
                                 request.GetTypeName(), " and returning ",
                                 response->GetTypeName()));
  }
  SUBMARINE_ASSIGN_OR_RETURN(RestRequest rest, BuildRestRequest(*rpc, request));
  const bool authenticated = !rpc->options().GetExtension(submarine::common::v1::auth_exempt);
  LoadCredentials();
  bool refreshed = false;
  if (authenticated && Expiring()) {
    SUBMARINE_RETURN_IF_ERROR(Refresh(""));
    refreshed = true;
  }
  for (;;) {
    HttpHeaders headers = AuthorizationHeaders(authenticated);
    std::string pending;        // a line not yet complete
    absl::Status stream_error;  // the error line, a bad line or on_message's error
    google::protobuf::util::JsonParseOptions parse;
    parse.ignore_unknown_fields = true;
    auto on_data = [&](std::string_view data) {
      pending.append(data);
      size_t start = 0;
      for (size_t end; (end = pending.find('\n', start)) != std::string::npos; start = end + 1) {
        std::string_view line(pending.data() + start, end - start);
        if (line.empty()) continue;
        if (line.starts_with("{\"error\"")) {
          HttpResponse error;
          auto j = nlohmann::json::parse(line, nullptr, false);
          error.status = j.is_object() ? j["error"].value("code", 500) : 500;
          error.body = std::string(line);
          stream_error = StatusFromResponse(error);
          if (stream_error.ok()) stream_error = Internal("the stream ended with an error");
          return false;
        }
        response->Clear();
        auto parsed = google::protobuf::util::JsonStringToMessage(line, response, parse);
        if (!parsed.ok()) {
          stream_error = Internal(absl::StrCat(
              rest.path_and_query, ": a line of the stream is not a ", response->GetTypeName()));
          return false;
        }
        stream_error = on_message();
        if (!stream_error.ok()) return false;
      }
      pending.erase(0, start);
      return true;
    };
    SUBMARINE_ASSIGN_OR_RETURN(
        HttpResponse answer,
        options_.stream_sender(rest.method, rest.path_and_query, headers, on_data));
    if (!stream_error.ok()) return stream_error;
    if (answer.status >= 200 && answer.status < 300) return absl::OkStatus();
    if (authenticated && answer.status == 401 && credentials_ && !refreshed &&
        !credentials_->refresh_token.empty() && ErrorReason(answer) == "TOKEN_EXPIRED") {
      SUBMARINE_RETURN_IF_ERROR(Refresh(credentials_->access_token));
      refreshed = true;
      continue;
    }
    return StatusFromResponse(answer);
  }
}

absl::Status ApiClient::Refresh(std::string rejected_access_token) {
  SUBMARINE_ASSIGN_OR_RETURN(CredentialsLock lock,
                             CredentialsLock::Acquire(options_.credentials_path));
  auto on_disk = ReadCredentials(options_.credentials_path);
  bool same_session = on_disk.ok() && on_disk->gateway == credentials_->gateway &&
                      on_disk->username == credentials_->username;
  if (same_session && on_disk->refresh_token != credentials_->refresh_token) {
    // Another process refreshed first and spent the refresh token we hold: its tokens are ours.
    credentials_ = *on_disk;
    if (!Expiring() && credentials_->access_token != rejected_access_token) {
      return absl::OkStatus();
    }
  }
  pb::RefreshTokenRequest request;
  request.set_refresh_token(credentials_->refresh_token);
  auto answer = Call<pb::LoginResponse>(kRefreshRpc, request);
  if (!answer.ok()) {
    if (answer.status().code() == absl::StatusCode::kUnauthenticated) {
      return MakeError(absl::StatusCode::kUnauthenticated, "SESSION_EXPIRED",
                       absl::StrCat("your session on ", options_.server, " has ended (",
                                    Message(answer.status()), "); run `submarine login`"),
                       {{"server", options_.server}});
    }
    return answer.status();
  }
  SUBMARINE_ASSIGN_OR_RETURN(
      Credentials fresh, CredentialsFromLoginResponse(*answer, options_.server,
                                                      credentials_->username, options_.now_unix()));
  if (fresh.refresh_token.empty()) fresh.refresh_token = credentials_->refresh_token;
  credentials_ = fresh;
  // Written back only while the file holds this session: not over another user's login, and not
  // again after a logout removed it.
  if (!same_session) return absl::OkStatus();
  return WriteCredentials(options_.credentials_path, fresh);
}

absl::Status ApiClient::Invoke(const std::string& rpc_name,
                               const google::protobuf::Message& request,
                               google::protobuf::Message* response) {
  const google::protobuf::MethodDescriptor* rpc =
      google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(rpc_name);
  if (rpc == nullptr || rpc->input_type() != request.GetDescriptor() ||
      rpc->output_type() != response->GetDescriptor()) {
    return Internal(absl::StrCat("no RPC ", rpc_name, " taking ", request.GetTypeName(),
                                 " and returning ", response->GetTypeName()));
  }
  std::unique_ptr<google::protobuf::Message> sent(request.New());
  sent->CopyFrom(request);
  std::string request_id;
  const google::protobuf::FieldDescriptor* id_field =
      rpc->input_type()->FindFieldByName("request_id");
  if (id_field != nullptr && id_field->type() == google::protobuf::FieldDescriptor::TYPE_STRING &&
      !id_field->is_repeated()) {
    request_id = sent->GetReflection()->GetString(*sent, id_field);
    if (request_id.empty()) {
      request_id = options_.ids->Uuid();
      sent->GetReflection()->SetString(sent.get(), id_field, request_id);
    }
  }
  SUBMARINE_ASSIGN_OR_RETURN(RestRequest rest, BuildRestRequest(*rpc, *sent));
  const bool authenticated = !rpc->options().GetExtension(submarine::common::v1::auth_exempt);
  const bool retryable = rest.method == "GET" || !request_id.empty();

  LoadCredentials();
  bool refreshed = false;
  if (authenticated && Expiring()) {
    SUBMARINE_RETURN_IF_ERROR(Refresh(""));
    refreshed = true;
  }
  SUBMARINE_ASSIGN_OR_RETURN(HttpResponse answer, Exchange(rest, authenticated, retryable));
  if (authenticated && answer.status == 401 && credentials_ && !refreshed &&
      !credentials_->refresh_token.empty() && ErrorReason(answer) == "TOKEN_EXPIRED") {
    SUBMARINE_RETURN_IF_ERROR(Refresh(credentials_->access_token));
    SUBMARINE_ASSIGN_OR_RETURN(answer, Exchange(rest, authenticated, retryable));
  }
  absl::Status status = StatusFromResponse(answer);
  if (!status.ok()) {
    if (status.code() == absl::StatusCode::kUnauthenticated && authenticated &&
        TokenSource().empty()) {
      std::string hint =
          other_gateway_.empty()
              ? std::string("; log in with `submarine login` or set SUBMARINE_TOKEN")
              : absl::StrCat("; you are logged in to ", other_gateway_, ", not ", options_.server,
                             ": run `submarine login --server ", options_.server, "`");
      return absl::Status(status.code(), absl::StrCat(Message(status), hint));
    }
    return status;
  }
  response->Clear();
  if (answer.body.empty()) return absl::OkStatus();
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;
  auto parsed = google::protobuf::util::JsonStringToMessage(answer.body, response, parse);
  if (!parsed.ok()) {
    return Internal(absl::StrCat(rest.method, " ", rest.path_and_query,
                                 ": the server's answer is not a ", response->GetTypeName(), " (",
                                 parsed.message().as_string(), ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Credentials> ApiClient::Login(const std::string& username,
                                             const std::string& password) {
  pb::LoginRequest request;
  request.set_username(username);
  request.set_password(password);
  SUBMARINE_ASSIGN_OR_RETURN(pb::LoginResponse answer, Call<pb::LoginResponse>(kLoginRpc, request));
  SUBMARINE_ASSIGN_OR_RETURN(
      Credentials credentials,
      CredentialsFromLoginResponse(answer, options_.server, username, options_.now_unix()));
  {
    SUBMARINE_ASSIGN_OR_RETURN(CredentialsLock lock,
                               CredentialsLock::Acquire(options_.credentials_path));
    SUBMARINE_RETURN_IF_ERROR(WriteCredentials(options_.credentials_path, credentials));
  }
  credentials_ = credentials;
  loaded_ = true;
  other_gateway_.clear();
  return credentials;
}

absl::Status ApiClient::Logout() {
  LoadCredentials();
  absl::Status server_status = absl::OkStatus();
  if (credentials_) {
    // A refresh first, if one is due, so the refresh token revoked is the current one.
    if (Expiring()) server_status = Refresh("");
    if (server_status.ok()) {
      pb::LogoutRequest request;
      request.set_refresh_token(credentials_->refresh_token);
      server_status = Call<pb::LogoutResponse>(kLogoutRpc, request).status();
    }
  }
  if (!options_.credentials_path.empty() && std::filesystem::exists(options_.credentials_path)) {
    SUBMARINE_ASSIGN_OR_RETURN(CredentialsLock lock,
                               CredentialsLock::Acquire(options_.credentials_path));
    SUBMARINE_RETURN_IF_ERROR(RemoveCredentials(options_.credentials_path));
  }
  credentials_.reset();
  return server_status;
}

}  // namespace submarine::cli
