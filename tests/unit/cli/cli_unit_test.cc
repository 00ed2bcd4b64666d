// Unit tests of submarine_cli_lib: what the CLI prints, how it reads environment files and finds
// its server, the REST form of RPC calls, the HTTP client against a loopback server, and the
// configs the local stack writes.
#include <arpa/inet.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "clients/cli/cli_app.h"
#include "clients/cli/environment_commands.h"
#include "clients/cli/experiment_commands.h"
#include "clients/cli/http_client.h"
#include "clients/cli/output.h"
#include "clients/cli/rest_request.h"
#include "clients/cli/server_resolution.h"
#include "clients/cli/stack_plan.h"
#include "clients/cli/stack_state.h"
#include "common/config/config.h"
#include "submarine/config/v1/config.pb.h"
#include "submarine/config/v1/experiment_config.pb.h"
#include "submarine/environment/v1/environment.pb.h"
#include "submarine/permission/v1/permission.pb.h"
#include "tests/support/process.h"

namespace submarine::cli {
namespace {

using nlohmann::json;

TEST(OutputFormatTest, ParsesKnownFormatsAndRejectsOthers) {
  EXPECT_EQ(*ParseOutputFormat("table"), OutputFormat::kTable);
  EXPECT_EQ(*ParseOutputFormat("json"), OutputFormat::kJson);
  EXPECT_EQ(*ParseOutputFormat("yaml"), OutputFormat::kYaml);
  auto bad = ParseOutputFormat("xml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(OutputFormatTest, YamlReadsBackAsTheSameJson) {
  json value = {{"name", "projects/default/environments/x"},
                {"labels", {{"version", "1.0"}, {"flag", "true"}, {"empty", ""}, {"n", "no"}}},
                {"kernelSpec", {{"channels", json::array()}, {"pipDependencies", {"a==1"}}}},
                {"count", 3},
                {"ok", true},
                {"nothing", nullptr},
                {"note", " padded "}};
  std::string yaml = JsonToYaml(value);
  auto back = config::YamlToJson(yaml);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(json::parse(*back), value) << yaml;
}

TEST(OutputFormatTest, TableAlignsColumns) {
  std::string table = RenderTable({"A", "LONG HEADER"}, {{"wide value", "x"}, {"b", ""}});
  EXPECT_EQ(table,
            "A            LONG HEADER\n"
            "wide value   x\n"
            "b\n");
}

environment::v1::Environment EnvironmentFrom(const json& value) {
  environment::v1::Environment e;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(value.dump(), &e).ok()) << value;
  return e;
}

TEST(OutputFormatTest, EnvironmentTableShowsShortNamesLabelsAndSeconds) {
  auto env = EnvironmentFrom({{"name", "projects/default/environments/py3"},
                              {"displayName", "Python 3"},
                              {"image", "python:3.11"},
                              {"labels", {{"team", "ml"}, {"gpu", "a100"}}},
                              {"createTime", "2024-05-01T10:00:00.123456Z"}});
  EXPECT_EQ(FormatEnvironments({env}, OutputFormat::kTable, /*single=*/true),
            "NAME   DISPLAY NAME   IMAGE         LABELS             CREATED\n"
            "py3    Python 3       python:3.11   gpu=a100,team=ml   2024-05-01T10:00:00Z\n");
}

// `experiment get` shows each task's state and system metrics; GPU figures only where known.
TEST(OutputFormatTest, TasksShowTheirUsageAndGpuFiguresWhereKnown) {
  experiment::v1::Experiment e;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  json{{"tasks",
                        {{{"role", "worker"},
                          {"index", 0},
                          {"attempt", 2},
                          {"state", "RUNNING"},
                          {"host", "n1"},
                          {"cpuSeconds", 12.34},
                          {"memoryBytes", "536870912"},
                          {"maxMemoryBytes", "1073741824"},
                          {"gpuMemoryBytes", "314572800"},
                          {"maxGpuMemoryBytes", "419430400"},
                          {"gpuUtilization", 75.4}},
                         {{"role", "worker"},
                          {"index", 1},
                          {"attempt", 1},
                          {"state", "FAILED"},
                          {"memoryBytes", "512"},
                          {"message", "exit code 3"}}}}}
                      .dump(),
                  &e)
                  .ok());
  EXPECT_EQ(FormatTasks(e),
            "TASK       STATE     ATTEMPT   HOST   CPU     MEMORY          GPU                   "
            "REASON\n"
            "worker-0   RUNNING   2         n1     12.3s   512.0Mi/1.0Gi   300.0Mi/400.0Mi 75%\n"
            "worker-1   FAILED    1                0.0s    512/0           -                     "
            "exit code 3\n");
}

TEST(OutputFormatTest, JsonIsTheServersJsonAnObjectForOneAndAnArrayForAList) {
  json value = {{"name", "projects/default/environments/a"},
                {"image", "python:3.11"},
                {"kernelSpec", {{"name", "py"}, {"pipDependencies", {"pandas"}}}},
                {"createTime", "2024-05-01T10:00:00.123456Z"}};
  auto env = EnvironmentFrom(value);
  EXPECT_EQ(json::parse(FormatEnvironments({env}, OutputFormat::kJson, true)), value);
  EXPECT_EQ(json::parse(FormatEnvironments({env}, OutputFormat::kJson, false)),
            json::array({value}));
  EXPECT_EQ(json::parse(FormatEnvironments({}, OutputFormat::kJson, false)), json::array());
  auto yaml = config::YamlToJson(FormatEnvironments({env}, OutputFormat::kYaml, true));
  ASSERT_TRUE(yaml.ok());
  EXPECT_EQ(json::parse(*yaml), value);
  std::string printed = FormatEnvironments({env}, OutputFormat::kJson, true);
  EXPECT_LT(printed.find("\"name\""), printed.find("\"image\""))
      << "declaration order: " << printed;
  EXPECT_LT(printed.find("\"image\""), printed.find("\"kernelSpec\"")) << printed;
}

TEST(EnvironmentFileTest, TakesTheIdFromTheNameAndStripsIt) {
  auto c = ParseEnvironmentFile(
      "name: projects/default/environments/my-env\nimage: python:3.11\n"
      "kernelSpec:\n  name: python3\n  pipDependencies: [\"pandas==2.1.0\"]\n",
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->environment_id, "my-env");
  EXPECT_EQ(c->environment.name(), "");
  EXPECT_EQ(c->environment.image(), "python:3.11");
  ASSERT_EQ(c->environment.kernel_spec().pip_dependencies_size(), 1);
  EXPECT_EQ(c->environment.kernel_spec().pip_dependencies(0), "pandas==2.1.0");
}

TEST(EnvironmentFileTest, IdFlagWinsAndJsonIsAccepted) {
  auto c = ParseEnvironmentFile(R"({"name": "ignored", "image": "x"})", "from-flag");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->environment_id, "from-flag");
}

TEST(EnvironmentFileTest, RejectsFilesWithoutIdOrMappingOrWithUnknownFields) {
  EXPECT_EQ(ParseEnvironmentFile("image: x\n", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseEnvironmentFile("- a\n- b\n", "id").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto misspelt = ParseEnvironmentFile("image: x\nimgae: y\n", "id");
  EXPECT_EQ(misspelt.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(misspelt.status().message()).find("imgae"), std::string::npos)
      << misspelt.status();
}

TEST(EnvironmentNameTest, ExpandsIdsAndKeepsFullNames) {
  EXPECT_EQ(EnvironmentName("default", "x"), "projects/default/environments/x");
  EXPECT_EQ(EnvironmentName("p", "projects/q/environments/y"), "projects/q/environments/y");
}

class ServerResolutionTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::MakeTempDir("cli-unit"); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void WriteState(const std::string& phase, const std::string& url) {
    StackState state;
    state.phase = phase;
    state.gateway_url = url;
    ASSERT_TRUE(WriteStackState(dir_ + "/state.json", state).ok());
  }
  std::string dir_;
};

TEST_F(ServerResolutionTest, FlagThenEnvironmentThenRunningStack) {
  WriteState(kPhaseRunning, "http://127.0.0.1:9/");
  std::string state_file = dir_ + "/state.json";
  EXPECT_EQ(*ResolveServer("http://flag:1/", "http://env:2", state_file), "http://flag:1");
  EXPECT_EQ(*ResolveServer("", "http://env:2", state_file), "http://env:2");
  EXPECT_EQ(*ResolveServer("", "", state_file), "http://127.0.0.1:9");
  EXPECT_EQ(*ResolveServer("", nullptr, state_file), "http://127.0.0.1:9");
}

TEST_F(ServerResolutionTest, StoppedOrMissingStackIsAnError) {
  WriteState(kPhaseStopped, "http://127.0.0.1:9");
  auto stopped = ResolveServer("", nullptr, dir_ + "/state.json");
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kFailedPrecondition);
  auto missing = ResolveServer("", nullptr, dir_ + "/nothing.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(std::string(missing.status().message()).find("SUBMARINE_SERVER"), std::string::npos);
}

TEST(StatusFromResponseTest, UsesTheServersStatusAndMessage) {
  HttpResponse not_found{404, R"({"error":{"code":404,"message":"environment \"x\" not found",)"
                              R"("status":"NOT_FOUND","details":[]}})"};
  absl::Status st = StatusFromResponse(not_found);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "environment \"x\" not found");

  HttpResponse conflict{409, R"({"error":{"code":409,"message":"etag","status":"ABORTED"}})"};
  EXPECT_EQ(StatusFromResponse(conflict).code(), absl::StatusCode::kAborted);

  HttpResponse plain{503, "upstream down"};
  st = StatusFromResponse(plain);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(st.message(), "upstream down");

  EXPECT_TRUE(StatusFromResponse(HttpResponse{200, "{}"}).ok());
}

TEST(RetryAfterTest, ReadsSecondsAndHttpDates) {
  HttpResponse seconds{503, "", {{"retry-after", "7"}}};
  EXPECT_EQ(RetryAfter(seconds, 0), std::chrono::milliseconds(7000));
  // Wed, 21 Oct 2015 07:28:00 GMT is 1445412480.
  HttpResponse date{503, "", {{"retry-after", "Wed, 21 Oct 2015 07:28:00 GMT"}}};
  EXPECT_EQ(RetryAfter(date, 1445412480 - 30), std::chrono::milliseconds(30000));
  EXPECT_EQ(RetryAfter(date, 1445412480 + 30), std::chrono::milliseconds(0)) << "never negative";
  EXPECT_EQ(RetryAfter(HttpResponse{503, "", {{"retry-after", "soon"}}}, 0), std::nullopt);
  EXPECT_EQ(RetryAfter(HttpResponse{503, "", {}}, 0), std::nullopt);
}

// ---- The REST form of RPC calls.

namespace pb = submarine::permission::v1;
namespace env = submarine::environment::v1;

// Sets the string field at `dotted` (e.g. "environment.name") of `message`.
void SetPathField(google::protobuf::Message* message, const std::string& dotted,
                  const std::string& value) {
  std::vector<std::string> names = absl::StrSplit(dotted, '.');
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    const auto* field = message->GetDescriptor()->FindFieldByName(names[i]);
    message = message->GetReflection()->MutableMessage(message, field);
  }
  message->GetReflection()->SetString(
      message, message->GetDescriptor()->FindFieldByName(names.back()), value);
}

TEST(RestRequestTest, EveryMutationSendsItsRequestIdWhereItsHttpRuleSays) {
  std::set<std::string> covered;
  for (const auto* file :
       {pb::User::descriptor()->file(), env::Environment::descriptor()->file()}) {
    for (int s = 0; s < file->service_count(); ++s) {
      const auto* service = file->service(s);
      for (int m = 0; m < service->method_count(); ++m) {
        const auto* rpc = service->method(m);
        const auto* id_field = rpc->input_type()->FindFieldByName("request_id");
        std::vector<RestBinding> bindings = RestBindingsOf(*rpc);
        if (id_field == nullptr || bindings.empty()) continue;
        // A request whose path fields fit the first binding: every "*" becomes "x".
        std::unique_ptr<google::protobuf::Message> request(
            google::protobuf::MessageFactory::generated_factory()
                ->GetPrototype(rpc->input_type())
                ->New());
        static const std::regex kVariable(R"(\{([a-z_.]+)(?:=([^}]*))?\})");
        const std::string& tmpl = bindings[0].path_template;
        for (std::sregex_iterator it(tmpl.begin(), tmpl.end(), kVariable), end; it != end; ++it) {
          std::string pattern = (*it)[2].matched ? (*it)[2].str() : "*";
          SetPathField(request.get(), (*it)[1].str(),
                       std::regex_replace(pattern, std::regex(R"(\*)"), "x"));
        }
        request->GetReflection()->SetString(request.get(), id_field, "rid-1");
        auto rest = BuildRestRequest(*rpc, *request);
        ASSERT_TRUE(rest.ok()) << rpc->full_name() << ": " << rest.status();
        EXPECT_EQ(rest->method, bindings[0].method) << rpc->full_name();
        json body = rest->body.empty() ? json() : json::parse(rest->body);
        bool in_query = rest->path_and_query.find("requestId=rid-1") != std::string::npos;
        bool in_body = body.is_object() && body.value("requestId", "") == "rid-1";
        if (bindings[0].body == "*") {
          EXPECT_TRUE(in_body && !in_query)
              << rpc->full_name() << " (body \"*\"): " << rest->path_and_query << " " << rest->body;
        } else {
          EXPECT_TRUE(in_query && !in_body) << rpc->full_name() << " (body \"" << bindings[0].body
                                            << "\"): " << rest->path_and_query << " " << rest->body;
        }
        covered.insert(rpc->name());
      }
    }
  }
  for (const char* rpc :
       {"CreateUser",     "UpdateUser",        "DeleteUser",        "SetPassword",
        "CreateTeam",     "DeleteTeam",        "SetTeamMember",     "RemoveTeamMember",
        "CreateProject",  "UpdateProject",     "DeleteProject",     "CreateApiToken",
        "RevokeApiToken", "CreateRoleBinding", "DeleteRoleBinding", "CreateGrant",
        "DeleteGrant",    "SetQuota",          "AcquireLease",      "HeartbeatLease",
        "ReleaseLease",   "CreateCredential",  "DeleteCredential",  "RefreshToken",
        "Logout",         "CreateEnvironment", "UpdateEnvironment", "DeleteEnvironment"}) {
    EXPECT_TRUE(covered.count(rpc)) << rpc << " has no request_id or no REST mapping";
  }
}

const google::protobuf::MethodDescriptor& Rpc(const std::string& name) {
  const auto* rpc = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(name);
  EXPECT_NE(rpc, nullptr) << name;
  return *rpc;
}

TEST(RestRequestTest, PathFieldsLeaveTheBodyAndOtherFieldsGoToTheQuery) {
  pb::UpdateUserRequest update;
  update.mutable_user()->set_name("users/bob");
  update.mutable_user()->set_display_name("Bob B");
  update.mutable_update_mask()->add_paths("display_name");
  update.mutable_update_mask()->add_paths("email");
  update.set_request_id("r1");
  auto rest = BuildRestRequest(Rpc("submarine.permission.v1.IdentityService.UpdateUser"), update);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->method, "PATCH");
  EXPECT_EQ(rest->path_and_query, "/v1/users/bob?updateMask=displayName%2Cemail&requestId=r1");
  EXPECT_EQ(json::parse(rest->body), (json{{"name", "users/bob"}, {"displayName", "Bob B"}}));

  pb::CreateApiTokenRequest token;
  token.set_parent("users/alice");
  token.set_ttl_seconds(60);
  rest = BuildRestRequest(Rpc("submarine.permission.v1.IdentityService.CreateApiToken"), token);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->path_and_query, "/v1/users/alice/tokens");
  EXPECT_EQ(json::parse(rest->body), (json{{"ttlSeconds", "60"}})) << "parent is in the path";

  pb::ListAuditEventsRequest audit;
  audit.set_principal("users/bob");
  audit.mutable_start_time()->set_seconds(1700000000);
  audit.set_page_size(3);
  rest = BuildRestRequest(Rpc("submarine.permission.v1.AuditService.ListAuditEvents"), audit);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->method, "GET");
  EXPECT_EQ(rest->path_and_query,
            "/v1/auditEvents?principal=users%2Fbob&startTime=2023-11-14T22%3A13%3A20Z&pageSize=3");
  EXPECT_EQ(rest->body, "");
}

TEST(RestRequestTest, PicksTheBindingTheNamesFitAndEncodesSegments) {
  const auto& set_quota = Rpc("submarine.permission.v1.QuotaService.SetQuota");
  pb::SetQuotaRequest quota;
  quota.set_owner("teams/ml");
  quota.mutable_limits()->set_gpus(2);
  auto rest = BuildRestRequest(set_quota, quota);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->path_and_query, "/v1/teams/ml/quota") << "the additional binding";
  quota.set_owner("users/al");
  EXPECT_EQ(BuildRestRequest(set_quota, quota)->path_and_query, "/v1/users/al/quota");
  quota.set_owner("projects/p");
  auto refused = BuildRestRequest(set_quota, quota);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(refused.status().message()).find("owner"), std::string::npos)
      << refused.status();

  pb::GetUserRequest user;
  user.set_name("users/a/b");
  auto two_segments =
      BuildRestRequest(Rpc("submarine.permission.v1.IdentityService.GetUser"), user);
  EXPECT_EQ(two_segments.status().code(), absl::StatusCode::kInvalidArgument) << "one segment only";
  EXPECT_EQ(two_segments.status().message(), "name: \"users/a/b\" is not of the form users/*");

  env::GetEnvironmentRequest get;
  get.set_name("projects/my project/environments/é");
  rest = BuildRestRequest(Rpc("submarine.environment.v1.EnvironmentService.GetEnvironment"), get);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->path_and_query, "/v1/projects/my%20project/environments/%C3%A9");
}

// ---- The HTTP client against a loopback server.

// A TCP server on 127.0.0.1 (random port) that hands each accepted connection to `serve`, one at
// a time, on its own thread. Stops (and joins) when destroyed.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listen_fd_, 8), 0);
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;  // shut down
        ++connections;
        serve_(fd);
        ::close(fd);
      }
    });
  }
  ~LoopbackServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Reads one request (head and Content-Length body); false when the peer closed first.
  static bool ReadRequest(int fd, std::string* head) {
    std::string data;
    char buf[4096];
    while (data.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      data.append(buf, static_cast<size_t>(n));
    }
    *head = data.substr(0, data.find("\r\n\r\n"));
    std::smatch m;
    size_t length = 0;
    if (std::regex_search(*head, m, std::regex("[Cc]ontent-[Ll]ength: *([0-9]+)"))) {
      length = std::stoul(m[1].str());
    }
    size_t have = data.size() - head->size() - 4;
    while (have < length) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return false;
      have += static_cast<size_t>(n);
    }
    return true;
  }
  static void Write(int fd, const std::string& text) {
    ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(text.size()));
  }

  std::atomic<int> connections{0};

 private:
  std::function<void(int)> serve_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

TEST(HttpClientTest, ReusesOneConnectionAndReturnsTheHeaders) {
  LoopbackServer server([](int fd) {
    std::string head;
    while (LoopbackServer::ReadRequest(fd, &head)) {
      std::string body = head.rfind("POST", 0) == 0 ? R"({"posted":true})" : "{}";
      LoopbackServer::Write(fd,
                            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
                            "Content-Type: application/json\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  });
  HttpClient http(server.url());
  auto first = http.Send("POST", "/v1/a", R"({"x":1})");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->status, 503);
  EXPECT_EQ(first->body, R"({"posted":true})");
  EXPECT_EQ(HeaderValue(*first, "retry-after"), "7");
  auto second = http.Send("GET", "/v1/b");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "{}") << "a GET after a POST sends no body";
  EXPECT_EQ(server.connections.load(), 1) << "keep-alive: one connection for both";
}

TEST(HttpClientTest, ReconnectsWhenTheServerClosedTheConnection) {
  LoopbackServer server([](int fd) {
    std::string head;
    if (!LoopbackServer::ReadRequest(fd, &head)) return;
    // Answers without announcing the close, then closes (like an idle timeout would).
    LoopbackServer::Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
  });
  HttpClient http(server.url());
  for (int i = 0; i < 3; ++i) {
    auto answer = http.Send("GET", "/v1/x");
    ASSERT_TRUE(answer.ok()) << i << ": " << answer.status();
    EXPECT_EQ(answer->status, 200);
  }
  EXPECT_EQ(server.connections.load(), 3);
}

TEST(HttpClientTest, RefusedAndResetConnectionsAreUnavailable) {
  int port = 0;
  {
    LoopbackServer gone([](int) {});
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  HttpClient refused("http://127.0.0.1:" + std::to_string(port));
  EXPECT_EQ(refused.Send("GET", "/").status().code(), absl::StatusCode::kUnavailable);

  LoopbackServer resetting([](int fd) {
    std::string head;
    LoopbackServer::ReadRequest(fd, &head);
    linger hard{1, 0};  // close with RST
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
  });
  HttpClient reset(resetting.url());
  EXPECT_EQ(reset.Send("POST", "/v1/x", "{}").status().code(), absl::StatusCode::kUnavailable);

  EXPECT_EQ(HttpClient("notascheme://x").Send("GET", "/").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(CliRetryTest, RetriesAnUnavailableServerAsOftenAsMaxAttemptsSays) {
  std::atomic<int> requests{0};
  LoopbackServer server([&requests](int fd) {
    std::string head;
    while (LoopbackServer::ReadRequest(fd, &head)) {
      ++requests;
      std::string body = R"({"error":{"code":503,"message":"draining","status":"UNAVAILABLE"}})";
      LoopbackServer::Write(fd,
                            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                            "Content-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  });
  std::string config = testing::MakeTempDir("cli-retry");
  ::setenv("SUBMARINE_CONFIG_DIR", config.c_str(), 1);
  ::unsetenv("SUBMARINE_TOKEN");
  auto run = [&server](const std::string& attempts, std::string* err_text) {
    std::vector<std::string> args = {"submarine", "team",       "list",
                                     "--server",  server.url(), "--max-attempts",
                                     attempts,    "--data-dir", "/nonexistent"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::stringstream out, err;
    std::stringstream in;
    int code = RunCli(static_cast<int>(argv.size()), argv.data(), out, err, in);
    *err_text = err.str();
    return code;
  };
  std::string err;
  EXPECT_EQ(run("3", &err), 1);
  EXPECT_EQ(err, "error: UNAVAILABLE: draining\n");
  EXPECT_EQ(requests.load(), 3);
  requests = 0;
  EXPECT_EQ(run("1", &err), 1);
  EXPECT_EQ(requests.load(), 1) << "--max-attempts 1: no retries";
  EXPECT_NE(run("0", &err), 0) << "at least one attempt";
  std::filesystem::remove_all(config);
}

TEST(CliLogsTest, FollowPrintsTheStreamAsItArrivesAndEndsOnItsErrorLine) {
  std::string target;
  LoopbackServer server([&target](int fd) {
    std::string head;
    if (!LoopbackServer::ReadRequest(fd, &head)) return;
    target = head.substr(0, head.find("\r\n"));
    // Lines cut across chunks, as the gateway's chunks need not end with a line.
    const std::vector<std::string> chunks = {
        R"({"task":"worker-0","data":"fir)", "st\\n\"}\n{\"data\":\"second\\n\"}\n",
        R"({"error":{"code":404,"message":"no such task any more","status":"NOT_FOUND"}})"
        "\n"};
    std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: "
        "chunked\r\nConnection: close\r\n\r\n";
    for (const auto& c : chunks) {
      std::ostringstream size;
      size << std::hex << c.size();
      answer += size.str() + "\r\n" + c + "\r\n";
    }
    LoopbackServer::Write(fd, answer + "0\r\n\r\n");
  });
  std::string config = testing::MakeTempDir("cli-logs");
  ::setenv("SUBMARINE_CONFIG_DIR", config.c_str(), 1);
  ::unsetenv("SUBMARINE_TOKEN");
  std::vector<std::string> args = {"submarine", "experiment", "logs",       "e1",          "-f",
                                   "--server",  server.url(), "--data-dir", "/nonexistent"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::stringstream out, err, in;
  int code = RunCli(static_cast<int>(argv.size()), argv.data(), out, err, in);
  EXPECT_EQ(target, "GET /v1/projects/default/experiments/e1/logs:stream?follow=true HTTP/1.1");
  EXPECT_EQ(out.str(), "first\nsecond\n");
  EXPECT_EQ(code, 1);
  EXPECT_EQ(err.str(), "error: NOT_FOUND: no such task any more\n");
  std::filesystem::remove_all(config);
}

TEST(StackStateTest, RoundTripsThroughJson) {
  StackState state;
  state.phase = kPhaseRunning;
  state.supervisor_pid = 42;
  state.data_dir = "/tmp/x";
  state.gateway_url = "http://127.0.0.1:8080";
  state.postgres_port = 5433;
  state.postgres_pid = 43;
  state.processes.push_back({"eventbus", 44, "ready", 2, json{{"grpc", "127.0.0.1:1"}}, "/l"});
  auto back = StackStateFromJson(StackStateToJson(state));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(StackStateToJson(*back), StackStateToJson(state));
  EXPECT_FALSE(StackStateFromJson(json::array()).ok());
}

TEST(StackPlanTest, ConfigsParseAsTypedConfigsAndWireProcessesTogether) {
  int next_port = 20000;
  StackPlanOptions options;
  options.bin_dir = "/opt/submarine/bin";
  options.gateway_port = 0;
  options.postgres_port = 5433;
  options.pick_port = [&next_port]() -> absl::StatusOr<int> { return next_port++; };
  StackPaths paths("/var/lib/submarine");
  auto plan = BuildStackPlan(paths, options);
  ASSERT_TRUE(plan.ok()) << plan.status();

  ASSERT_EQ(plan->processes.size(), 2 + LocalStackServices().size());
  EXPECT_EQ(plan->processes.front().name, "eventbus");
  EXPECT_EQ(plan->processes.back().name, "gateway");
  EXPECT_EQ(plan->processes.back().Argv(),
            (std::vector<std::string>{"/opt/submarine/bin/submarine-gateway", "--config",
                                      "/var/lib/submarine/config/gateway.yaml"}));

  config::v1::EventbusConfig bus;
  ASSERT_TRUE(config::ParseConfigText(plan->processes[0].config_text, &bus).ok());
  EXPECT_EQ(bus.server().ready_file(), "/var/lib/submarine/run/eventbus.ready");

  auto process = [&plan](const std::string& name) -> const ProcessPlan& {
    for (const ProcessPlan& p : plan->processes) {
      if (p.name == name) return p;
    }
    ADD_FAILURE() << "no process " << name;
    return plan->processes.front();
  };
  config::v1::EnvironmentServiceConfig env;
  absl::Status st = config::ParseConfigText(process("environment").config_text, &env);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(env.common().database().host(), "127.0.0.1");
  EXPECT_EQ(env.common().database().port(), 5433u);
  EXPECT_EQ(env.common().database().user(), "submarine_environment");
  EXPECT_EQ(env.common().database().schema(), "environment");
  EXPECT_EQ(env.common().database().password_file(),
            "/var/lib/submarine/secrets/submarine_environment.password");
  EXPECT_EQ(env.common().events().publish_endpoint(), bus.frontend());
  EXPECT_EQ(env.common().events().subscribe_endpoint(), bus.backend());
  EXPECT_NE(bus.frontend(), bus.backend());

  config::v1::GatewayConfig gateway;
  ASSERT_TRUE(config::ParseConfigText(plan->processes.back().config_text, &gateway).ok());
  ASSERT_EQ(gateway.backends_size(), static_cast<int>(LocalStackServices().size()));
  const config::v1::GatewayBackend* env_backend = nullptr;
  for (const auto& b : gateway.backends()) {
    if (b.address() == env.common().server().grpc_listen()) env_backend = &b;
  }
  ASSERT_NE(env_backend, nullptr) << "the gateway routes to the environment service";
  EXPECT_EQ(env_backend->services(0), "submarine.environment.v1.EnvironmentService");
  EXPECT_EQ(plan->gateway_url, "http://" + gateway.http_listen());
}

TEST(StackPlanTest, TheExperimentServiceGivesTasksThePlatformAndThePipSources) {
  int next_port = 40000;
  StackPlanOptions options;
  options.gateway_port = 8080;
  options.pip_index_url = "https://pypi.example.com/simple";
  options.pip_find_links = "/srv/wheels";
  options.pick_port = [&next_port]() -> absl::StatusOr<int> { return next_port++; };
  auto plan = BuildStackPlan(StackPaths("/d"), options);
  ASSERT_TRUE(plan.ok()) << plan.status();
  const ProcessPlan* experiment = nullptr;
  for (const ProcessPlan& p : plan->processes) {
    if (p.name == "experiment") experiment = &p;
  }
  ASSERT_NE(experiment, nullptr);
  config::v1::ExperimentServiceConfig config;
  absl::Status st = config::ParseConfigText(experiment->config_text, &config);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(config.task_server_url(), "http://127.0.0.1:8080");
  EXPECT_EQ(config.local().root_dir(), "/d/compute");
  EXPECT_EQ(config.python_env_dir(), "/d/compute/python-envs");
  EXPECT_EQ(config.pip_index_url(), "https://pypi.example.com/simple");
  EXPECT_EQ(config.pip_find_links(), "/srv/wheels");
}

TEST(StackPlanTest, KeepsAnExplicitGatewayPort) {
  int next_port = 30000;
  StackPlanOptions options;
  options.gateway_port = 8080;
  options.pick_port = [&next_port]() -> absl::StatusOr<int> { return next_port++; };
  auto plan = BuildStackPlan(StackPaths("/d"), options);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->gateway_url, "http://127.0.0.1:8080");
}

}  // namespace
}  // namespace submarine::cli
