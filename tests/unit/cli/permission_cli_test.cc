// Unit tests of the CLI's authenticated client and permission commands against a scripted fake
// gateway (no network): where the token comes from, the 0600 credentials file, refreshing, what
// each command sends, and the local stack's security wiring (secrets, the admin password shown
// once, the permission service in the plan).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "clients/cli/api_client.h"
#include "clients/cli/credentials.h"
#include "clients/cli/local_stack.h"
#include "clients/cli/permission_commands.h"
#include "clients/cli/server_resolution.h"
#include "clients/cli/stack_plan.h"
#include "common/auth/principal.h"
#include "common/config/config.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/config/v1/experiment_config.pb.h"
#include "tests/support/process.h"

namespace submarine::cli {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr char kServer[] = "http://gw.test:8080";

int Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

// "a%2Fb+c" -> "a/b c" (query values as the gateway decodes them).
std::string Unescape(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      out += static_cast<char>(std::stoi(text.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += text[i] == '+' ? ' ' : text[i];
    }
  }
  return out;
}

// A gateway that answers requests from a script and records what it was sent. The request id of
// a mutation is taken out of the body or the query into `request_id` (where it travels per RPC
// is checked by RestRequestTest), so the rest compares as before.
class FakeGateway {
 public:
  struct Request {
    std::string method;
    std::string path;                          // without the query
    std::map<std::string, std::string> query;  // decoded, requestId taken out
    json body;                                 // requestId taken out
    std::string authorization;
    std::string request_id;  // "" when none was sent
    std::string target;      // path and query as sent
  };

  // Queues the answer to the next request (or the failure of sending it).
  void Answer(long status, json body, HttpHeaders headers = {}) {
    answers_.push_back(HttpResponse{status, body.dump(), std::move(headers)});
  }
  void Fail(absl::Status status) { answers_.push_back(std::move(status)); }

  HttpSender Sender() {
    return [this](const std::string& method, const std::string& target, const std::string& body,
                  const HttpHeaders& headers) -> absl::StatusOr<HttpResponse> {
      Request r{method, target.substr(0, target.find('?')),
                {},     body.empty() ? json() : json::parse(body),
                "",     "",
                target};
      if (auto q = target.find('?'); q != std::string::npos) {
        std::stringstream pairs(target.substr(q + 1));
        std::string pair;
        while (std::getline(pairs, pair, '&')) {
          auto eq = pair.find('=');
          r.query[Unescape(pair.substr(0, eq))] = Unescape(pair.substr(eq + 1));
        }
      }
      if (r.query.count("requestId") > 0) {
        r.request_id = r.query["requestId"];
        r.query.erase("requestId");
      }
      if (r.body.is_object() && r.body.contains("requestId")) {
        r.request_id = r.body["requestId"];
        r.body.erase("requestId");
      }
      for (const auto& [name, value] : headers) {
        if (name == "Authorization") r.authorization = value;
      }
      requests.push_back(r);
      if (answers_.empty()) return HttpResponse{500, R"({"error":{"message":"unscripted"}})"};
      absl::StatusOr<HttpResponse> response = answers_.front();
      answers_.pop_front();
      return response;
    };
  }

  std::vector<Request> requests;

 private:
  std::deque<absl::StatusOr<HttpResponse>> answers_;
};

namespace pb = submarine::permission::v1;

// GET /v1/users:me and GET /v1/projects through the typed client.
absl::StatusOr<pb::User> Me(ApiClient& api) {
  return api.Call<pb::User>("submarine.permission.v1.IdentityService.GetCurrentUser",
                            pb::GetCurrentUserRequest());
}
absl::StatusOr<pb::User> MeOf(ApiClient api) { return Me(api); }
absl::StatusOr<pb::ListProjectsResponse> Projects(ApiClient& api) {
  return api.Call<pb::ListProjectsResponse>("submarine.permission.v1.IdentityService.ListProjects",
                                            pb::ListProjectsRequest());
}
absl::StatusOr<pb::ListProjectsResponse> ProjectsOf(ApiClient api) { return Projects(api); }

json Error(int code, const std::string& status, const std::string& reason,
           const std::string& message) {
  return {{"error",
           {{"code", code},
            {"message", message},
            {"status", status},
            {"details",
             {{{"@type", "type.googleapis.com/google.rpc.ErrorInfo"},
               {"reason", reason},
               {"domain", "permission.submarine.io"}}}}}}};
}

json LoginAnswer(const std::string& access, const std::string& refresh, int expires_in) {
  // int64 fields are strings in proto3 JSON, as the gateway renders them.
  return {{"accessToken", access},
          {"expiresIn", std::to_string(expires_in)},
          {"refreshToken", refresh},
          {"tokenType", "Bearer"},
          {"user", {{"name", "users/alice"}}}};
}

class ApiClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("cli-auth");
    credentials_path_ = dir_ + "/config/submarine/credentials";
  }
  void TearDown() override { fs::remove_all(dir_); }

  ApiClient Client(const std::string& env_token = "", RetryPolicy retry = RetryPolicy()) {
    ApiClientOptions options;
    options.server = kServer;
    options.env_token = env_token;
    options.credentials_path = credentials_path_;
    options.retry = retry;
    options.sender = gateway_.Sender();
    options.now_unix = [this] { return now_; };
    // Waiting between retries only advances a fake monotonic clock, and records the wait.
    options.steady_now = [this] { return steady_; };
    options.sleep = [this](std::chrono::milliseconds d) {
      sleeps_.push_back(d);
      steady_ += d;
    };
    options.random = [this] { return jitter_; };
    return ApiClient(std::move(options));
  }

  void Store(const std::string& gateway, int64_t expires_at) {
    ASSERT_TRUE(WriteCredentials(credentials_path_, Credentials{gateway, "alice", "stored-access",
                                                                "stored-refresh", expires_at})
                    .ok());
  }

  // A client that has read the stored login (it made a call); then `other` replaces the file, as
  // another process that refreshed, or logged in, would leave it.
  ApiClient ClientThenFileReplacedBy(const Credentials& other) {
    Store(kServer, now_ + 600);
    gateway_.Answer(200, {{"name", "users/alice"}});
    ApiClient api = Client();
    EXPECT_TRUE(Me(api).ok());
    EXPECT_TRUE(WriteCredentials(credentials_path_, other).ok());
    return api;
  }

  std::string dir_;
  std::string credentials_path_;
  FakeGateway gateway_;
  int64_t now_ = 1'700'000'000;
  std::chrono::steady_clock::time_point steady_{};
  std::vector<std::chrono::milliseconds> sleeps_;
  double jitter_ = 0.5;
};

TEST_F(ApiClientTest, LoginStoresTokensIn0600FileInside0700DirectoryAndNoPassword) {
  gateway_.Answer(200, LoginAnswer("acc-1", "ref-1", 900));
  ApiClient api = Client();
  auto stored = api.Login("alice", "correct horse battery");
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(gateway_.requests.size(), 1u);
  EXPECT_EQ(gateway_.requests[0].path, "/v1/auth:login");
  EXPECT_EQ(gateway_.requests[0].body["username"], "alice");
  EXPECT_EQ(gateway_.requests[0].authorization, "") << "login sends no token";

  EXPECT_EQ(Mode(credentials_path_), 0600);
  EXPECT_EQ(Mode(fs::path(credentials_path_).parent_path().string()), 0700);
  auto text = config::ReadFile(credentials_path_);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->find("correct horse"), std::string::npos) << "the password is never stored";
  auto back = ReadCredentials(credentials_path_);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->gateway, kServer);
  EXPECT_EQ(back->username, "alice");
  EXPECT_EQ(back->access_token, "acc-1");
  EXPECT_EQ(back->refresh_token, "ref-1");
  EXPECT_EQ(back->expires_at, now_ + 900);
}

TEST_F(ApiClientTest, RejectedLoginWritesNothing) {
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "BAD_CREDENTIALS", "wrong password"));
  auto stored = Client().Login("alice", "nope-nope-nope");
  ASSERT_FALSE(stored.ok());
  EXPECT_EQ(stored.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(stored.status().message()), "wrong password");
  EXPECT_FALSE(fs::exists(credentials_path_));
}

TEST_F(ApiClientTest, SendsTheStoredTokenToItsOwnGatewayOnly) {
  Store(kServer, now_ + 600);
  gateway_.Answer(200, {{"name", "users/alice"}});
  ApiClient api = Client();
  ASSERT_TRUE(Me(api).ok());
  EXPECT_EQ(gateway_.requests.back().authorization, "Bearer stored-access");
  EXPECT_EQ(api.StoredUsername(), "alice");

  Store("http://elsewhere:1", now_ + 600);
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "TOKEN_MISSING", "authentication required"));
  ApiClient other = Client();
  auto refused = Me(other);
  EXPECT_EQ(gateway_.requests.back().authorization, "") << "a token never goes to another server";
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(std::string(refused.status().message()).find("logged in to http://elsewhere:1"),
            std::string::npos)
      << refused.status();
}

TEST_F(ApiClientTest, EnvironmentTokenWinsAndIsNeverRefreshed) {
  Store(kServer, now_ - 10);  // expired stored token: would be refreshed if it were used
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "token expired"));
  ApiClient api = Client("ci-token");
  EXPECT_EQ(api.TokenSource(), "SUBMARINE_TOKEN");
  auto result = Projects(api);
  ASSERT_EQ(gateway_.requests.size(), 1u) << "no refresh call";
  EXPECT_EQ(gateway_.requests[0].authorization, "Bearer ci-token");
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  auto kept = ReadCredentials(credentials_path_);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->access_token, "stored-access");
}

TEST_F(ApiClientTest, RefreshesAnExpiredTokenFirstAndSavesTheNewOnes) {
  Store(kServer, now_ + 5);  // within the refresh margin
  gateway_.Answer(200, LoginAnswer("acc-2", "ref-2", 900));
  gateway_.Answer(200, {{"projects", json::array()}});
  ApiClient api = Client();
  ASSERT_TRUE(Projects(api).ok());
  ASSERT_EQ(gateway_.requests.size(), 2u);
  EXPECT_EQ(gateway_.requests[0].path, "/v1/auth:refresh");
  EXPECT_EQ(gateway_.requests[0].body["refreshToken"], "stored-refresh");
  EXPECT_FALSE(gateway_.requests[0].request_id.empty()) << "a lost answer can be replayed";
  EXPECT_EQ(gateway_.requests[0].authorization, "");
  EXPECT_EQ(gateway_.requests[1].authorization, "Bearer acc-2");
  auto saved = ReadCredentials(credentials_path_);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(saved->access_token, "acc-2");
  EXPECT_EQ(saved->refresh_token, "ref-2");
  EXPECT_EQ(saved->expires_at, now_ + 900);
  EXPECT_EQ(Mode(credentials_path_), 0600);
}

TEST_F(ApiClientTest, RetriesOnceAfterA401TokenExpired) {
  Store(kServer, now_ + 600);  // the client thinks it is valid; the server disagrees
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "token expired"));
  gateway_.Answer(200, LoginAnswer("acc-3", "ref-3", 900));
  gateway_.Answer(200, {{"name", "users/alice"}});
  ApiClient api = Client();
  auto me = Me(api);
  ASSERT_TRUE(me.ok()) << me.status();
  ASSERT_EQ(gateway_.requests.size(), 3u);
  EXPECT_EQ(gateway_.requests[1].path, "/v1/auth:refresh");
  EXPECT_EQ(gateway_.requests[2].authorization, "Bearer acc-3");
}

TEST_F(ApiClientTest, OtherUnauthenticatedReasonsAreNotRetried) {
  Store(kServer, now_ + 600);
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "TOKEN_REVOKED", "token revoked"));
  auto result = MeOf(Client());
  EXPECT_EQ(gateway_.requests.size(), 1u);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
}

TEST_F(ApiClientTest, AFailedRefreshAsksToLogInAgain) {
  Store(kServer, now_ - 1);
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "REFRESH_TOKEN_INVALID", "refresh revoked"));
  auto result = MeOf(Client());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(std::string(result.status().message()).find("submarine login"), std::string::npos);
}

TEST_F(ApiClientTest, WithoutATokenA401SaysHowToLogIn) {
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "TOKEN_MISSING", "authentication required"));
  auto result = ProjectsOf(Client());
  EXPECT_EQ(gateway_.requests[0].authorization, "");
  ASSERT_FALSE(result.ok());
  std::string message(result.status().message());
  EXPECT_NE(message.find("authentication required"), std::string::npos);
  EXPECT_NE(message.find("submarine login"), std::string::npos) << message;
}

TEST_F(ApiClientTest, LogoutRevokesTheSessionAndRemovesTheFile) {
  Store(kServer, now_ + 600);
  gateway_.Answer(200, json::object());
  ASSERT_TRUE(Client().Logout().ok());
  EXPECT_EQ(gateway_.requests[0].path, "/v1/auth:logout");
  EXPECT_EQ(gateway_.requests[0].body["refreshToken"], "stored-refresh");
  EXPECT_EQ(gateway_.requests[0].authorization, "Bearer stored-access");
  EXPECT_FALSE(fs::exists(credentials_path_));
}

// ---- Request ids and retries.

constexpr char kCreateTeam[] = "submarine.permission.v1.IdentityService.CreateTeam";

pb::CreateTeamRequest TeamRequest(const std::string& id, const std::string& request_id = "") {
  pb::CreateTeamRequest request;
  request.set_team_id(id);
  request.set_request_id(request_id);
  return request;
}

TEST_F(ApiClientTest, RetriesAnUnavailableMutationWithItsRequestIdAndHonoursRetryAfter) {
  Store(kServer, now_ + 3600);
  gateway_.Fail(absl::UnavailableError("cannot reach http://gw.test:8080: Connection refused"));
  gateway_.Answer(503, Error(503, "UNAVAILABLE", "BACKEND_UNAVAILABLE", "draining"),
                  {{"retry-after", "2"}});
  gateway_.Answer(200, {{"name", "teams/ml"}});
  gateway_.Answer(200, {{"name", "teams/ds"}});
  ApiClient api = Client();
  auto team = api.Call<pb::Team>(kCreateTeam, TeamRequest("ml"));
  ASSERT_TRUE(team.ok()) << team.status();
  EXPECT_EQ(team->name(), "teams/ml");
  ASSERT_EQ(gateway_.requests.size(), 3u);
  const std::string id = gateway_.requests[0].request_id;
  EXPECT_EQ(id.size(), 36u) << "a UUID: " << id;
  EXPECT_EQ(gateway_.requests[1].request_id, id) << "a retry repeats the call's request id";
  EXPECT_EQ(gateway_.requests[2].request_id, id);
  using std::chrono::milliseconds;
  EXPECT_EQ(sleeps_, (std::vector<milliseconds>{milliseconds(150), milliseconds(2000)}))
      << "jittered backoff after the refused connection, then what Retry-After asked";

  ASSERT_TRUE(api.Call<pb::Team>(kCreateTeam, TeamRequest("ds")).ok());
  EXPECT_NE(gateway_.requests[3].request_id, id) << "every call gets its own request id";
}

TEST_F(ApiClientTest, KeepsTheCallersRequestId) {
  Store(kServer, now_ + 3600);
  gateway_.Answer(200, {{"name", "teams/ml"}});
  ApiClient api = Client();
  ASSERT_TRUE(api.Call<pb::Team>(kCreateTeam, TeamRequest("ml", "my-own-id")).ok());
  EXPECT_EQ(gateway_.requests[0].request_id, "my-own-id");
}

TEST_F(ApiClientTest, RetriesReadsButNeverOtherFailuresOrRequestsWithoutARequestId) {
  Store(kServer, now_ + 3600);
  ApiClient api = Client();
  gateway_.Fail(absl::UnavailableError("reset"));
  gateway_.Answer(200, {{"name", "users/alice"}});
  ASSERT_TRUE(Me(api).ok()) << "a GET is retried";
  EXPECT_EQ(gateway_.requests.size(), 2u);

  for (long status : {500L, 409L, 429L, 504L}) {
    gateway_.requests.clear();
    gateway_.Answer(status, json::object());
    EXPECT_FALSE(api.Call<pb::Team>(kCreateTeam, TeamRequest("ml")).ok());
    EXPECT_EQ(gateway_.requests.size(), 1u) << "HTTP " << status << " is not retried";
  }
  gateway_.requests.clear();
  gateway_.Fail(absl::DeadlineExceededError("timed out"));
  EXPECT_EQ(Me(api).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(gateway_.requests.size(), 1u) << "a timeout may have taken effect: not retried";

  gateway_.requests.clear();
  gateway_.Answer(503, Error(503, "UNAVAILABLE", "BACKEND_UNAVAILABLE", "down"));
  EXPECT_EQ(api.Login("alice", "a-long-password").status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(gateway_.requests.size(), 1u) << "Login carries no request id: never repeated";
}

TEST_F(ApiClientTest, BackoffDoublesUpToItsCapWithEqualJitter) {
  Store(kServer, now_ + 3600);
  RetryPolicy policy;
  policy.max_attempts = 6;
  policy.initial_backoff = std::chrono::milliseconds(100);
  policy.max_backoff = std::chrono::milliseconds(400);
  using std::chrono::milliseconds;
  for (double jitter : {0.0, 1.0}) {
    jitter_ = jitter;
    sleeps_.clear();
    gateway_.requests.clear();
    for (int i = 0; i < 6; ++i) gateway_.Fail(absl::UnavailableError("refused"));
    ApiClient api = Client("", policy);
    EXPECT_EQ(Me(api).status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(gateway_.requests.size(), 6u) << "max_attempts bounds the attempts";
    std::vector<milliseconds> expected =
        jitter == 0.0
            ? std::vector<milliseconds>{milliseconds(50), milliseconds(100), milliseconds(200),
                                        milliseconds(200), milliseconds(200)}
            : std::vector<milliseconds>{milliseconds(100), milliseconds(200), milliseconds(400),
                                        milliseconds(400), milliseconds(400)};
    EXPECT_EQ(sleeps_, expected) << "jitter " << jitter;
  }
}

TEST_F(ApiClientTest, GivesUpRatherThanWaitPastTheRetryTimeout) {
  Store(kServer, now_ + 3600);
  RetryPolicy policy;
  policy.max_total = std::chrono::seconds(3);
  gateway_.Answer(503, Error(503, "UNAVAILABLE", "BACKEND_UNAVAILABLE", "down"),
                  {{"retry-after", "2"}});
  gateway_.Answer(503, Error(503, "UNAVAILABLE", "BACKEND_UNAVAILABLE", "down"),
                  {{"retry-after", "2"}});
  ApiClient api = Client("", policy);
  auto result = Me(api);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(std::string(result.status().message()), "down");
  EXPECT_EQ(gateway_.requests.size(), 2u) << "a second 2 s wait would end after 3 s";
}

// ---- Refresh tokens shared with other processes through the file.

// Whether some process waits for the flock on `path` (a "->" line of /proc/locks names the
// blocked waiter with the file's inode).
bool SomeoneWaitsForLock(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return false;
  std::ifstream locks("/proc/locks");
  std::string line;
  const std::string inode = ":" + std::to_string(st.st_ino) + " ";
  while (std::getline(locks, line)) {
    if (line.find("->") != std::string::npos && line.find(inode) != std::string::npos) return true;
  }
  return false;
}

TEST_F(ApiClientTest, TakesOverTheTokensAnotherProcessRefreshed) {
  // Another process (the SDK, another CLI) refreshed and spent "stored-refresh".
  ApiClient api = ClientThenFileReplacedBy(
      Credentials{kServer, "alice", "acc-other", "ref-other", now_ + 1800});
  now_ += 590;  // our access token is about to expire
  gateway_.Answer(200, {{"name", "users/alice"}});
  ASSERT_TRUE(Me(api).ok());
  ASSERT_EQ(gateway_.requests.size(), 2u) << "no refresh with the spent refresh token";
  EXPECT_EQ(gateway_.requests[1].authorization, "Bearer acc-other");
  EXPECT_EQ(ReadCredentials(credentials_path_)->refresh_token, "ref-other");
}

TEST_F(ApiClientTest, AfterA401TakesOverAFresherTokenFromTheFile) {
  ApiClient api = ClientThenFileReplacedBy(
      Credentials{kServer, "alice", "acc-other", "ref-other", now_ + 1800});
  gateway_.Answer(401, Error(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "token expired"));
  gateway_.Answer(200, {{"name", "users/alice"}});
  ASSERT_TRUE(Me(api).ok());
  ASSERT_EQ(gateway_.requests.size(), 3u);
  EXPECT_EQ(gateway_.requests[1].authorization, "Bearer stored-access");
  EXPECT_EQ(gateway_.requests[2].authorization, "Bearer acc-other");
}

TEST_F(ApiClientTest, RefreshesWithTheFilesTokenWhenItsAccessTokenExpiresToo) {
  ApiClient api =
      ClientThenFileReplacedBy(Credentials{kServer, "alice", "acc-other", "ref-other", now_ + 600});
  now_ += 590;
  gateway_.Answer(200, LoginAnswer("acc-new", "ref-new", 900));
  gateway_.Answer(200, {{"name", "users/alice"}});
  ASSERT_TRUE(Me(api).ok());
  ASSERT_EQ(gateway_.requests.size(), 3u);
  EXPECT_EQ(gateway_.requests[1].path, "/v1/auth:refresh");
  EXPECT_EQ(gateway_.requests[1].body["refreshToken"], "ref-other");
  EXPECT_EQ(ReadCredentials(credentials_path_)->refresh_token, "ref-new");
  EXPECT_EQ(Mode(credentials_path_ + ".lock"), 0600);
}

TEST_F(ApiClientTest, NeverWritesItsRefreshedTokensOverAnotherLogin) {
  ApiClient api = ClientThenFileReplacedBy(Credentials{kServer, "bob", "acc-bob", "ref-bob", 0});
  now_ += 590;
  gateway_.Answer(200, LoginAnswer("acc-2", "ref-2", 900));
  gateway_.Answer(200, {{"name", "users/alice"}});
  ASSERT_TRUE(Me(api).ok());
  EXPECT_EQ(gateway_.requests[1].body["refreshToken"], "stored-refresh");
  EXPECT_EQ(gateway_.requests[2].authorization, "Bearer acc-2");
  EXPECT_EQ(ReadCredentials(credentials_path_)->username, "bob") << "bob's login stays";
}

TEST_F(ApiClientTest, WaitsForTheLockOfAnotherRefresherAndUsesItsTokens) {
  Store(kServer, now_ - 1);
  gateway_.Answer(200, {{"name", "users/alice"}});
  ApiClient api = Client();
  auto acquired = CredentialsLock::Acquire(credentials_path_);
  ASSERT_TRUE(acquired.ok()) << acquired.status();
  std::optional<CredentialsLock> held(std::move(*acquired));
  absl::StatusOr<pb::User> me = absl::UnknownError("not run");
  std::thread caller([&] { me = Me(api); });
  bool waiting = testing::WaitFor([&] { return SomeoneWaitsForLock(credentials_path_ + ".lock"); },
                                  std::chrono::seconds(30));
  // What the lock holder does: refresh, write the file, unlock.
  ASSERT_TRUE(WriteCredentials(credentials_path_,
                               Credentials{kServer, "alice", "acc-other", "ref-other", now_ + 900})
                  .ok());
  held.reset();
  caller.join();
  ASSERT_TRUE(waiting) << "the refresh never waited for the lock";
  ASSERT_TRUE(me.ok()) << me.status();
  ASSERT_EQ(gateway_.requests.size(), 1u) << "no refresh of its own";
  EXPECT_EQ(gateway_.requests[0].authorization, "Bearer acc-other");
}

TEST(CredentialsTest, DirectoryFromEnvironmentOrHome) {
  EXPECT_EQ(CredentialsDir("/x/conf", "/home/a"), "/x/conf");
  EXPECT_EQ(CredentialsDir("", "/home/a"), "/home/a/.config/submarine");
  EXPECT_EQ(CredentialsDir(nullptr, "/home/a"), "/home/a/.config/submarine");
  EXPECT_FALSE(CredentialsFromJson(json::array()).ok());
  EXPECT_FALSE(CredentialsFromJson(json{{"gateway", "x"}}).ok());
}

// ---- Commands: what they send and print.

class CommandTest : public ApiClientTest {
 protected:
  void SetUp() override {
    ApiClientTest::SetUp();
    Store(kServer, now_ + 3600);
  }
  absl::Status Run(const std::function<absl::Status(const ClientContext&)>& command,
                   OutputFormat format = OutputFormat::kTable) {
    ApiClient api = Client();
    out_.str("");
    return command(ClientContext{&api, format, &out_, &in_});
  }
  std::stringstream out_;
  std::stringstream in_;
};

TEST_F(CommandTest, LoginWithPasswordOnStdinNeedsAUsernameAndPrintsNoToken) {
  in_.str("s3cret-password-1\n");
  EXPECT_EQ(Run([](const ClientContext& c) {
              return Login(c, LoginOptions{"", true});
            }).code(),
            absl::StatusCode::kInvalidArgument);
  gateway_.Answer(200, LoginAnswer("acc-secret-value", "ref-secret-value", 900));
  absl::Status st = Run([](const ClientContext& c) { return Login(c, {"alice", true}); });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(gateway_.requests.back().body["password"], "s3cret-password-1");
  EXPECT_NE(out_.str().find("Logged in to http://gw.test:8080 as alice"), std::string::npos);
  EXPECT_EQ(out_.str().find("secret-value"), std::string::npos) << out_.str();
}

TEST_F(CommandTest, UserCreateSendsIdFieldsAndPasswordFromStdin) {
  in_.str("initial-password-42\n");
  gateway_.Answer(200, {{"name", "users/bob"}, {"displayName", "Bob"}, {"admin", false}});
  UserFields fields;
  fields.display_name = "Bob";
  fields.email = "bob@example.com";
  absl::Status st = Run([&](const ClientContext& c) { return CreateUser(c, "bob", fields, true); });
  ASSERT_TRUE(st.ok()) << st;
  const auto& r = gateway_.requests.back();
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/v1/users");
  EXPECT_EQ(r.body["userId"], "bob");
  EXPECT_EQ(r.body["user"], (json{{"displayName", "Bob"}, {"email", "bob@example.com"}}));
  EXPECT_EQ(r.body["password"], "initial-password-42");
  EXPECT_NE(out_.str().find("bob"), std::string::npos);
  EXPECT_EQ(out_.str().find("initial-password"), std::string::npos);
}

TEST_F(CommandTest, UserUpdateSendsOnlyTheChangedFieldsInTheMask) {
  gateway_.Answer(200, {{"name", "users/bob"}, {"disabled", true}});
  UserFields fields;
  fields.disabled = true;
  ASSERT_TRUE(Run([&](const ClientContext& c) { return UpdateUser(c, "bob", fields); }).ok());
  const auto& r = gateway_.requests.back();
  EXPECT_EQ(r.method, "PATCH");
  EXPECT_EQ(r.path, "/v1/users/bob");
  EXPECT_EQ(r.query, (std::map<std::string, std::string>{{"updateMask", "disabled"}}));
  EXPECT_FALSE(r.request_id.empty()) << "every mutation carries a request id";
  EXPECT_EQ(r.body, (json{{"name", "users/bob"}, {"disabled", true}}));
  EXPECT_EQ(Run([](const ClientContext& c) { return UpdateUser(c, "bob", {}); }).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(CommandTest, ChangingOnesOwnPasswordSendsTheCurrentOne) {
  in_.str("old-password-123\nnew-password-456\n");
  gateway_.Answer(200, json::object());
  ASSERT_TRUE(Run([](const ClientContext& c) { return SetPassword(c, "", true); }).ok());
  const auto& r = gateway_.requests.back();
  EXPECT_EQ(r.path, "/v1/users/alice:setPassword");
  EXPECT_EQ(r.body,
            (json{{"currentPassword", "old-password-123"}, {"password", "new-password-456"}}));
  in_.clear();
  in_.str("bobs-new-password\n");
  gateway_.Answer(200, json::object());
  ASSERT_TRUE(Run([](const ClientContext& c) { return SetPassword(c, "bob", true); }).ok());
  EXPECT_EQ(gateway_.requests.back().body, (json{{"password", "bobs-new-password"}}))
      << "an admin resetting someone else's password sends no current password";
}

TEST_F(CommandTest, TeamMembersUseFullNamesAndRoleEnums) {
  gateway_.Answer(200, {{"user", "users/bob"}, {"role", "MAINTAINER"}});
  ASSERT_TRUE(
      Run([](const ClientContext& c) { return AddTeamMember(c, "ml", "bob", "maintainer"); }).ok());
  EXPECT_EQ(gateway_.requests.back().path, "/v1/teams/ml/members");
  EXPECT_EQ(gateway_.requests.back().body, (json{{"user", "users/bob"}, {"role", "MAINTAINER"}}));
  EXPECT_NE(out_.str().find("maintainer"), std::string::npos) << out_.str();

  gateway_.Answer(200, json::object());
  ASSERT_TRUE(
      Run([](const ClientContext& c) { return RemoveTeamMember(c, "teams/ml", "bob"); }).ok());
  EXPECT_EQ(gateway_.requests.back().method, "DELETE");
  EXPECT_EQ(gateway_.requests.back().path, "/v1/teams/ml/members/users/bob");
  EXPECT_EQ(
      Run([](const ClientContext& c) { return AddTeamMember(c, "ml", "bob", "boss"); }).code(),
      absl::StatusCode::kInvalidArgument);
}

TEST_F(CommandTest, ProjectBindAndUnbindBySubject) {
  gateway_.Answer(
      200, {{"name", "projects/p/roleBindings/b1"}, {"subject", "teams/ml"}, {"role", "EDITOR"}});
  ASSERT_TRUE(
      Run([](const ClientContext& c) { return BindRole(c, "p", "teams/ml", "editor"); }).ok());
  EXPECT_EQ(gateway_.requests.back().path, "/v1/projects/p/roleBindings");
  EXPECT_EQ(gateway_.requests.back().body, (json{{"subject", "teams/ml"}, {"role", "EDITOR"}}));

  gateway_.Answer(200, {{"roleBindings",
                         {{{"name", "projects/p/roleBindings/b0"}, {"subject", "users/bob"}},
                          {{"name", "projects/p/roleBindings/b1"}, {"subject", "teams/ml"}}}}});
  gateway_.Answer(200, json::object());
  ASSERT_TRUE(Run([](const ClientContext& c) { return UnbindRole(c, "p", "teams/ml"); }).ok());
  EXPECT_EQ(gateway_.requests.back().method, "DELETE");
  EXPECT_EQ(gateway_.requests.back().path, "/v1/projects/p/roleBindings/b1");

  gateway_.Answer(200, {{"roleBindings", json::array()}});
  EXPECT_EQ(Run([](const ClientContext& c) { return UnbindRole(c, "p", "users/zed"); }).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Run([](const ClientContext& c) { return BindRole(c, "p", "bob", "viewer"); }).code(),
            absl::StatusCode::kInvalidArgument)
      << "a subject must say whether it is a user or a team";
}

TEST_F(CommandTest, GrantCreateSendsResourceSubjectAndPermission) {
  gateway_.Answer(200, {{"name", "grants/g1"},
                        {"resource", "projects/p/environments/e"},
                        {"subject", "users/bob"},
                        {"permission", "READ"}});
  ASSERT_TRUE(Run([](const ClientContext& c) {
                return CreateGrant(c, "projects/p/environments/e", "users/bob", "read");
              }).ok());
  EXPECT_EQ(gateway_.requests.back().path, "/v1/grants");
  EXPECT_EQ(gateway_.requests.back().body, (json{{"resource", "projects/p/environments/e"},
                                                 {"subject", "users/bob"},
                                                 {"permission", "READ"}}));
  gateway_.Answer(200, {{"grants", json::array()}});
  ASSERT_TRUE(
      Run([](const ClientContext& c) { return ListGrants(c, "projects/p/environments/e"); }).ok());
  EXPECT_EQ(gateway_.requests.back().target, "/v1/grants?resource=projects%2Fp%2Fenvironments%2Fe");
}

TEST_F(CommandTest, QuotaSetSendsOnlyGivenLimitsAndGetShowsUnlimited) {
  QuotaLimits limits;
  limits.gpus = 2;
  limits.cpu_millis = 8000;
  json usage = {{"owner", "teams/ml"},
                {"limits", {{"gpus", "2"}, {"cpuMillis", "8000"}}},
                {"used", {{"gpus", "1"}}},
                {"activeLeases", 1}};
  gateway_.Answer(200, usage);
  ASSERT_TRUE(Run([&](const ClientContext& c) { return SetQuota(c, "teams/ml", limits); }).ok());
  ASSERT_EQ(gateway_.requests.size(), 1u) << "SetQuota answers with the usage it prints";
  EXPECT_EQ(gateway_.requests[0].method, "PATCH");
  EXPECT_EQ(gateway_.requests[0].path, "/v1/teams/ml/quota");
  // int64 in proto3 JSON: decimal strings.
  EXPECT_EQ(gateway_.requests[0].body, (json{{"gpus", "2"}, {"cpuMillis", "8000"}}));
  EXPECT_FALSE(gateway_.requests[0].request_id.empty());
  EXPECT_EQ(out_.str(),
            "Usage of teams/ml (1 active leases)\n"
            "RESOURCE           USED   LIMIT\n"
            "cpu (millicores)   0      8000\n"
            "memory (MiB)       0      unlimited\n"
            "gpus               1      2\n"
            "experiments        0      unlimited\n"
            "notebooks          0      unlimited\n"
            "serving replicas   0      unlimited\n");
  EXPECT_EQ(Run([](const ClientContext& c) { return SetQuota(c, "bob", {}); }).code(),
            absl::StatusCode::kInvalidArgument);

  gateway_.Answer(200, usage);
  ASSERT_TRUE(
      Run([](const ClientContext& c) { return GetQuota(c, "teams/ml"); }, OutputFormat::kJson)
          .ok());
  EXPECT_EQ(gateway_.requests.back().path, "/v1/teams/ml/usage");
  EXPECT_EQ(json::parse(out_.str()), usage) << "JSON prints the Usage as the server sent it";
}

TEST_F(CommandTest, TokenCreatePrintsTheSecretOnceAndRevokeExpandsTheId) {
  gateway_.Answer(200, {{"token", {{"name", "users/alice/tokens/t1"}, {"displayName", "ci"}}},
                        {"secret", "eyJ.the.jwt"}});
  ASSERT_TRUE(Run([](const ClientContext& c) { return CreateToken(c, "", "ci", "90d"); }).ok());
  EXPECT_EQ(gateway_.requests.back().path, "/v1/users/alice/tokens");
  EXPECT_EQ(gateway_.requests.back().body,
            (json{{"displayName", "ci"}, {"ttlSeconds", "7776000"}}));
  EXPECT_NE(out_.str().find("eyJ.the.jwt"), std::string::npos);
  EXPECT_NE(out_.str().find("cannot be shown again"), std::string::npos);

  gateway_.Answer(200, {{"name", "users/alice/tokens/t1"}});
  ASSERT_TRUE(Run([](const ClientContext& c) { return RevokeToken(c, "", "t1"); }).ok());
  EXPECT_EQ(gateway_.requests.back().method, "DELETE");
  EXPECT_EQ(gateway_.requests.back().path, "/v1/users/alice/tokens/t1");
}

TEST_F(CommandTest, CredentialSecretTravelsAsBase64FromStdinAndIsNotPrinted) {
  in_.str(
      "ghp_secret\x01"
      "binary");
  gateway_.Answer(200, {{"name", "users/alice/credentials/git"}, {"type", "git-token"}});
  ASSERT_TRUE(Run([](const ClientContext& c) {
                return CreateCredential(c, "", "git", CredentialInput{"git-token", "", "-"});
              }).ok());
  const auto& r = gateway_.requests.back();
  EXPECT_EQ(r.path, "/v1/users/alice/credentials");
  EXPECT_EQ(r.body["credentialId"], "git");
  EXPECT_EQ(r.body["credential"], (json{{"type", "git-token"}}));
  EXPECT_EQ(r.body["secret"], "Z2hwX3NlY3JldAFiaW5hcnk=");
  EXPECT_EQ(out_.str().find("ghp_secret"), std::string::npos);
}

TEST_F(CommandTest, AuditListTranslatesFiltersAndStopsAtTheLimit) {
  gateway_.Answer(200, {{"events", {{{"type", "a"}}, {{"type", "b"}}}}, {"nextPageToken", "n1"}});
  gateway_.Answer(200, {{"events", {{{"type", "c"}}, {{"type", "d"}}}}, {"nextPageToken", "n2"}});
  AuditQuery query{"bob", "projects/p", "1h", "", 3};
  ASSERT_TRUE(Run([&](const ClientContext& c) { return ListAuditEvents(c, query, now_); },
                  OutputFormat::kJson)
                  .ok());
  ASSERT_EQ(gateway_.requests.size(), 2u) << "stops once the limit is reached";
  EXPECT_EQ(gateway_.requests[0].target,
            "/v1/auditEvents?principal=users%2Fbob&resource=projects%2Fp&startTime=2023-11-"
            "14T21%3A13%3A20Z&pageSize=3");
  EXPECT_EQ(gateway_.requests[1].query["pageToken"], "n1");
  EXPECT_EQ(json::parse(out_.str()).size(), 3u);
}

TEST_F(CommandTest, ServerErrorsComeBackWithTheirMessage) {
  gateway_.Answer(403, Error(403, "PERMISSION_DENIED", "PERMISSION_DENIED",
                             "alice may not read projects/secret"));
  absl::Status st = Run([](const ClientContext& c) { return GetProject(c, "secret"); });
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(std::string(st.message()), "alice may not read projects/secret");
}

TEST(ArgumentParsingTest, NamesRolesDurationsAndTimes) {
  EXPECT_EQ(UserResource("alice"), "users/alice");
  EXPECT_EQ(UserResource("users/alice"), "users/alice");
  EXPECT_EQ(TeamResource("ml"), "teams/ml");
  EXPECT_EQ(ProjectResource("projects/p"), "projects/p");
  EXPECT_EQ(*ParseSubject("allUsers", "s"), "allUsers");
  EXPECT_FALSE(ParseSubject("users/", "s").ok());
  EXPECT_FALSE(ParseSubject("users/a/b", "s").ok());
  EXPECT_FALSE(ParseSubject("groups/x", "s").ok());
  EXPECT_EQ(*ParseOwner("bob"), "users/bob");
  EXPECT_EQ(*ParseOwner("teams/ml"), "teams/ml");
  EXPECT_FALSE(ParseOwner("projects/p").ok());
  EXPECT_EQ(*ParseRole("Viewer"), "VIEWER");
  EXPECT_EQ(*ParseRole("admin"), "PROJECT_ADMIN");
  EXPECT_FALSE(ParseRole("owner").ok());
  EXPECT_EQ(*ParsePermission("write"), "WRITE");
  EXPECT_FALSE(ParsePermission("execute").ok());
  EXPECT_EQ(*ParseDurationSeconds("90d", "ttl"), 90 * 86400);
  EXPECT_EQ(*ParseDurationSeconds("12h", "ttl"), 12 * 3600);
  EXPECT_EQ(*ParseDurationSeconds("3600", "ttl"), 3600);
  EXPECT_FALSE(ParseDurationSeconds("-5m", "ttl").ok());
  EXPECT_FALSE(ParseDurationSeconds("d", "ttl").ok());
  EXPECT_EQ(*ParseTimeBound("2024-05-01T10:00:00Z", 0, "since"), "2024-05-01T10:00:00Z");
  EXPECT_EQ(*ParseTimeBound("2h", 7200, "since"), "1970-01-01T00:00:00Z");
  EXPECT_FALSE(ParseTimeBound("yesterday", 0, "since").ok());
}

TEST(ErrorReasonTest, ReadsTheErrorInfoReason) {
  HttpResponse r{401, Error(401, "UNAUTHENTICATED", "TOKEN_EXPIRED", "expired").dump()};
  EXPECT_EQ(ErrorReason(r), "TOKEN_EXPIRED");
  EXPECT_EQ(ErrorReason(HttpResponse{401, "not json"}), "");
}

TEST(ServerResolutionWithLoginTest, LoggedInGatewayComesAfterTheLocalStack) {
  std::string none = "/nonexistent/state.json";
  EXPECT_EQ(*ResolveServer("", nullptr, none, "http://remote:1/"), "http://remote:1");
  EXPECT_EQ(*ResolveServer("http://flag:2", nullptr, none, "http://remote:1"), "http://flag:2");
  EXPECT_FALSE(ResolveServer("", nullptr, none, "").ok());
}

// ---- The local stack's security wiring.

TEST(StackSecurityTest, PermissionServiceStartsFirstAndEveryoneSharesTheInternalSecret) {
  int next_port = 21000;
  StackPlanOptions options;
  options.bin_dir = "/opt/bin";
  options.postgres_port = 5433;
  options.pick_port = [&next_port]() -> absl::StatusOr<int> { return next_port++; };
  StackPaths paths("/d");
  auto plan = BuildStackPlan(paths, options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<std::string> order;
  for (const auto& p : plan->processes) order.push_back(p.name);
  EXPECT_EQ(order, (std::vector<std::string>{"eventbus", "permission", "environment", "experiment",
                                             "gateway"}));

  config::v1::EventbusConfig bus;
  ASSERT_TRUE(config::ParseConfigText(plan->processes[0].config_text, &bus).ok());
  config::v1::PermissionServiceConfig perm;
  absl::Status st = config::ParseConfigText(plan->processes[1].config_text, &perm);
  ASSERT_TRUE(st.ok()) << st;
  config::v1::EnvironmentServiceConfig env;
  ASSERT_TRUE(config::ParseConfigText(plan->processes[2].config_text, &env).ok());
  config::v1::ExperimentServiceConfig experiment;
  ASSERT_TRUE(config::ParseConfigText(plan->processes[3].config_text, &experiment).ok());
  EXPECT_EQ(experiment.local().root_dir(), "/d/compute");
  config::v1::GatewayConfig gateway;
  ASSERT_TRUE(config::ParseConfigText(plan->processes[4].config_text, &gateway).ok());

  for (const auto* server : {&bus.server(), &perm.common().server(), &env.common().server(),
                             &experiment.common().server(), &gateway.server()}) {
    EXPECT_EQ(server->gateway_secret_file(), "/d/secrets/gateway.secret");
  }
  EXPECT_EQ(perm.common().database().user(), "submarine_permission");
  EXPECT_EQ(perm.common().database().schema(), "permission");
  EXPECT_EQ(perm.signing_key_file(), "/d/secrets/signing.key");
  EXPECT_EQ(perm.master_key_file(), "/d/secrets/master.key");
  EXPECT_EQ(perm.admin_password_file(), "/d/secrets/admin.password");
  // The permission service records every other service's events and asks each before deleting
  // a project; every service knows every other.
  ASSERT_EQ(perm.common().peers_size(), 2);
  EXPECT_EQ(perm.common().peers(0).name(), "environment");
  EXPECT_EQ(perm.common().peers(0).topic_prefix(), "submarine.environment.v1.");
  EXPECT_EQ(perm.common().peers(0).address(), env.common().server().grpc_listen());
  EXPECT_EQ(perm.common().peers(1).name(), "experiment");
  EXPECT_EQ(perm.common().peers(1).topic_prefix(), "submarine.experiment.v1.");
  EXPECT_EQ(perm.common().peers(1).address(), experiment.common().server().grpc_listen());
  EXPECT_FALSE(perm.common().has_permission());  // it is the permission service
  ASSERT_EQ(env.common().peers_size(), 2);
  EXPECT_EQ(env.common().peers(0).name(), "permission");
  EXPECT_EQ(env.common().peers(0).address(), perm.common().server().grpc_listen());
  EXPECT_EQ(experiment.common().permission().address(), perm.common().server().grpc_listen());

  EXPECT_EQ(env.common().permission().address(), perm.common().server().grpc_listen());
  EXPECT_EQ(env.common().permission().subscribe_endpoint(), bus.backend());
  EXPECT_FALSE(env.common().permission().insecure_no_authorization());
  EXPECT_EQ(gateway.auth().address(), perm.common().server().grpc_listen());
  EXPECT_EQ(gateway.auth().subscribe_endpoint(), bus.backend());

  std::set<std::string> routed;
  for (const auto& b : gateway.backends()) {
    for (const auto& s : b.services()) {
      if (b.address() == perm.common().server().grpc_listen()) routed.insert(s);
    }
  }
  EXPECT_EQ(
      routed,
      (std::set<std::string>{
          "submarine.permission.v1.IdentityService", "submarine.permission.v1.AccessService",
          "submarine.permission.v1.QuotaService", "submarine.permission.v1.CredentialService",
          "submarine.permission.v1.AuditService", "submarine.permission.v1.SubmarineAuthApi"}));
}

TEST(StackSecurityTest, InternalSecretIsCreatedOnce0600AndUsableByThePrincipalCodec) {
  std::string dir = testing::MakeTempDir("cli-secret");
  std::string path = dir + "/secrets/gateway.secret";
  fs::create_directories(dir + "/secrets");
  ASSERT_TRUE(EnsureGatewaySecret(path).ok());
  EXPECT_EQ(Mode(path), 0600);
  auto first = config::ReadFile(path);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(EnsureGatewaySecret(path).ok());
  EXPECT_EQ(*config::ReadFile(path), *first) << "never regenerated: running services hold it";
  auto secret = auth::LoadInternalSecret(path);
  EXPECT_TRUE(secret.ok()) << secret.status();

  std::string other = dir + "/secrets/other.secret";
  ASSERT_TRUE(EnsureGatewaySecret(other).ok());
  EXPECT_NE(*config::ReadFile(other), *first) << "random per installation";
  fs::remove_all(dir);
}

TEST(StackSecurityTest, AdminPasswordIsShownOnceThenOnlyItsPath) {
  std::string dir = testing::MakeTempDir("cli-admin");
  StackPaths paths(dir);
  ASSERT_TRUE(paths.CreateDirectories().ok());
  std::stringstream none;
  ReportAdminPassword(paths, none);
  EXPECT_EQ(none.str(), "") << "nothing before the permission service wrote it";

  ASSERT_TRUE(config::WriteFileAtomic(paths.AdminPasswordFile(), "Xy7-first-pass\n", 0600).ok());
  std::stringstream first;
  ReportAdminPassword(paths, first);
  EXPECT_NE(first.str().find("Xy7-first-pass"), std::string::npos) << first.str();
  EXPECT_NE(first.str().find(paths.AdminPasswordFile()), std::string::npos);

  std::stringstream second;
  ReportAdminPassword(paths, second);
  EXPECT_EQ(second.str().find("Xy7-first-pass"), std::string::npos) << second.str();
  EXPECT_NE(second.str().find(paths.AdminPasswordFile()), std::string::npos) << second.str();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace submarine::cli
