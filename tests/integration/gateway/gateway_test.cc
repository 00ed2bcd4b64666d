// The real submarine-gateway process in front of an in-memory environment backend: REST
// transcoding on both faces, limits, errors, built-in endpoints, keep-alive and the gRPC proxy.
// The gateway runs with authentication off (auth.insecure_no_authorization); authentication is
// tested in gateway_auth_test.cc.

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/net/address.h"
#include "common/status/status.h"
#include "grpcpp/generic/generic_stub.h"
#include "tests/integration/gateway/environment_backend.h"
#include "tests/integration/gateway/gateway_fixture.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"

namespace submarine::testing {
namespace {

using nlohmann::json;
namespace env = submarine::environment::v1;

std::string GatewayYaml(const std::string& backend, int timeout_ms = 1000) {
  return absl::StrCat(
      "http_listen: 127.0.0.1:0\n", "grpc_listen: 127.0.0.1:0\n", "max_body_bytes: 65536\n",
      "max_header_bytes: 8192\n", "request_timeout_ms: ", timeout_ms, "\n", "io_threads: 2\n",
      "backends:\n", "  - address: ", backend, "\n", "    services: ", kEnvServices, "\n",
      "auth: {insecure_no_authorization: true}\n", "server:\n", "  shutdown_grace_ms: 10000\n");
}

class GatewayTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    backend_ = new EnvironmentBackend();
    auto address = backend_->Start();
    ASSERT_TRUE(address.ok()) << address.status();
    backend_address_ = new std::string(*address);
    dir_ = new std::string(MakeTempDir("gateway-test"));
    ready_ = new ReadyInfo();
    auto child = StartService("submarine-gateway", *dir_, "gateway", GatewayYaml(*address), ready_);
    ASSERT_TRUE(child.ok()) << child.status();
    gateway_ = new ChildProcess(std::move(child).value());
  }

  static void TearDownTestSuite() {
    if (gateway_ != nullptr) {
      gateway_->Signal(SIGTERM);
      EXPECT_EQ(gateway_->Wait(), 0);
    }
    delete gateway_;
    delete backend_;
    delete backend_address_;
    delete ready_;
    delete dir_;
  }

  void SetUp() override { ASSERT_NE(gateway_, nullptr) << "the gateway did not start"; }

  static HttpResult Call(const std::string& method, const std::string& target,
                         const std::string& body = "",
                         const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto r = HttpCall(ready_->http, method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResult();
  }

  static void CreateAip(const std::string& id, const std::string& image) {
    auto r = Call("POST", absl::StrCat("/v1/projects/default/environments?environmentId=", id),
                  json{{"image", image}, {"displayName", id}}.dump(),
                  {{"Content-Type", "application/json"}});
    ASSERT_EQ(r.status, 200) << r.body;
  }

  static inline EnvironmentBackend* backend_ = nullptr;
  static inline std::string* backend_address_ = nullptr;
  static inline ChildProcess* gateway_ = nullptr;
  static inline ReadyInfo* ready_ = nullptr;
  static inline std::string* dir_ = nullptr;
};

TEST_F(GatewayTest, RoutesEveryVerbOfTheResourceApi) {
  auto created = Call("POST", "/v1/projects/default/environments?environmentId=verbs",
                      R"({"image":"python:3.11","kernelSpec":{"name":"py3","channels":["c"]}})");
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(Json(created)["name"], "projects/default/environments/verbs");
  EXPECT_EQ(Json(created)["kernelSpec"]["channels"], json::array({"c"}));
  EXPECT_EQ(created.Header("content-type"), "application/json");

  auto got = Call("GET", "/v1/projects/default/environments/verbs");
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(Json(got)["image"], "python:3.11");

  auto listed = Call("GET", "/v1/projects/default/environments");
  ASSERT_EQ(listed.status, 200) << listed.body;
  bool found = false;
  json list = Json(listed);
  for (const auto& e : list["environments"]) {
    found = found || e["name"] == "projects/default/environments/verbs";
  }
  EXPECT_TRUE(found) << listed.body;

  auto patched =
      Call("PATCH", "/v1/projects/default/environments/verbs", R"({"image":"python:3.12"})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(Json(patched)["image"], "python:3.12");

  auto deleted = Call("DELETE", "/v1/projects/default/environments/verbs");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(Json(deleted)["environment"]["image"], "python:3.12");
  EXPECT_EQ(Call("GET", "/v1/projects/default/environments/verbs").status, 404);
}

TEST_F(GatewayTest, NestedPathVariableSetsTheResourceName) {
  CreateAip("nested", "img:1");
  auto r = Call("PATCH", "/v1/projects/default/environments/nested",
                R"({"name":"projects/default/environments/other","description":"d"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(backend_->last_update().environment().name(), "projects/default/environments/nested");
  EXPECT_EQ(backend_->last_update().environment().description(), "d");
  EXPECT_EQ(Json(r)["description"], "d");
}

TEST_F(GatewayTest, QueryParametersFillTheRequest) {
  auto r = Call("GET",
                "/v1/projects/default/environments?pageSize=5&filter=image%20%3D%20%22a%22"
                "&orderBy=create_time+desc&page_token=tok");
  ASSERT_EQ(r.status, 200) << r.body;
  auto list = backend_->last_list();
  EXPECT_EQ(list.parent(), "projects/default");
  EXPECT_EQ(list.page_size(), 5);
  EXPECT_EQ(list.filter(), "image = \"a\"");
  EXPECT_EQ(list.order_by(), "create_time desc");
  EXPECT_EQ(list.page_token(), "tok");
}

TEST_F(GatewayTest, BadQueryValueIsA400NamingTheParameter) {
  auto r = Call("GET", "/v1/projects/default/environments?pageSize=lots");
  EXPECT_EQ(r.status, 400);
  auto body = Json(r);
  EXPECT_EQ(body["error"]["code"], 400);
  EXPECT_EQ(body["error"]["status"], "INVALID_ARGUMENT");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("pageSize"), std::string::npos);
  EXPECT_EQ(ErrorInfo(body)["reason"], "INVALID_QUERY_PARAMETER");
  EXPECT_EQ(ErrorInfo(body)["metadata"]["parameter"], "pageSize");

  auto unknown = Call("GET", "/v1/projects/default/environments?colour=red");
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(ErrorInfo(Json(unknown))["reason"], "UNKNOWN_QUERY_PARAMETER");
  EXPECT_NE(unknown.body.find("colour"), std::string::npos);
}

TEST_F(GatewayTest, UnknownJsonFieldIsA400NamingTheField) {
  auto r = Call("POST", "/v1/projects/default/environments?environmentId=u",
                R"({"image":"x","kernelSpec":{"nmae":"typo"}})");
  EXPECT_EQ(r.status, 400);
  auto body = Json(r);
  EXPECT_EQ(ErrorInfo(body)["reason"], "UNKNOWN_FIELD");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("nmae"), std::string::npos) << r.body;

  auto malformed = Call("POST", "/v1/projects/default/environments?environmentId=u", "{\"image\":");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_EQ(ErrorInfo(Json(malformed))["reason"], "INVALID_REQUEST_BODY");

  auto no_body = Call("GET", "/v1/projects/default/environments/x", R"({"a":1})");
  EXPECT_EQ(no_body.status, 400);
  EXPECT_EQ(ErrorInfo(Json(no_body))["reason"], "BODY_NOT_ALLOWED");
}

TEST_F(GatewayTest, YamlBodyIsAccepted) {
  std::string yaml =
      "image: apache/submarine:jupyter-notebook-0.8.0\n"
      "displayName: From YAML\n"
      "kernelSpec:\n"
      "  name: submarine_jupyter_py3\n"
      "  channels: [defaults]\n"
      "  pipDependencies:\n"
      "    - pandas==2.1.0\n";
  auto r = Call("POST", "/v1/projects/default/environments?environmentId=yaml", yaml,
                {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = Json(r);
  EXPECT_EQ(body["displayName"], "From YAML");
  EXPECT_EQ(body["kernelSpec"]["pipDependencies"], json::array({"pandas==2.1.0"}));

  auto v1 = Call("POST", "/api/v1/environment",
                 "name: yaml-v1\ndockerImage: img:2\nkernelSpec: {name: k}\n",
                 {{"Content-Type", "text/yaml; charset=utf-8"}});
  ASSERT_EQ(v1.status, 200) << v1.body;
  EXPECT_EQ(Json(v1)["result"]["environmentSpec"]["dockerImage"], "img:2");
}

TEST_F(GatewayTest, BodyOverTheLimitIs413) {
  std::string big(70000, 'x');
  auto r = Call("POST", "/v1/projects/default/environments?environmentId=big",
                absl::StrCat(R"({"image":")", big, R"("})"));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(ErrorInfo(Json(r))["reason"], "REQUEST_BODY_TOO_LARGE");
}

TEST_F(GatewayTest, HeadersOverTheLimitAre431) {
  auto r = Call("GET", "/healthz", "", {{"X-Padding", std::string(10000, 'p')}});
  EXPECT_EQ(r.status, 431);
  EXPECT_EQ(ErrorInfo(Json(r))["reason"], "REQUEST_HEADERS_TOO_LARGE");
}

TEST_F(GatewayTest, BackendErrorsRenderAsAip193) {
  auto r = Call("GET", "/v1/projects/default/environments/missing");
  EXPECT_EQ(r.status, 404);
  auto body = Json(r);
  EXPECT_EQ(body["error"]["code"], 404);
  EXPECT_EQ(body["error"]["status"], "NOT_FOUND");
  EXPECT_NE(body["error"]["message"].get<std::string>().find("missing"), std::string::npos);
  ASSERT_EQ(body["error"]["details"].size(), 1u) << r.body;
  auto info = ErrorInfo(body);
  EXPECT_EQ(info["reason"], "RESOURCE_NOT_FOUND");
  EXPECT_EQ(info["domain"], "environment.submarine.io");
  EXPECT_EQ(info["metadata"]["resource"], "projects/default/environments/missing");

  auto invalid = Call("POST", "/v1/projects/default/environments?environmentId=noimage", "");
  EXPECT_EQ(invalid.status, 400);
  EXPECT_EQ(ErrorInfo(Json(invalid))["reason"], "INVALID_FIELD");
  EXPECT_EQ(ErrorInfo(Json(invalid))["metadata"]["field"], "environment.image");
}

// A service's INTERNAL error may carry database or exception text (a service that forgets to
// conceal it): the gateway answers a fixed message naming the request id, on REST and through
// the gRPC proxy alike, and keeps the code and the reason.
TEST_F(GatewayTest, ServerFaultsOfAServiceReachNoClientVerbatim) {
  const std::vector<std::string> leaks = {"SELEC", "ERROR:",   "42601",        "pqxx",
                                          "std::", "10.9.8.7", "syntax error", "environments"};
  auto r = Call("GET", "/v1/projects/default/environments/leaky", "",
                {{"X-Request-Id", "leak-probe-1"}});
  EXPECT_EQ(r.status, 500) << r.body;
  for (const auto& leak : leaks) {
    EXPECT_EQ(r.body.find(leak), std::string::npos) << leak << " in " << r.body;
  }
  auto body = Json(r);
  EXPECT_EQ(body["error"]["status"], "INTERNAL");
  EXPECT_EQ(body["error"]["message"],
            "internal error in submarine.environment.v1.EnvironmentService; see its log for "
            "request leak-probe-1");
  EXPECT_EQ(ErrorInfo(body)["reason"], "DATABASE_ERROR");
  EXPECT_EQ(ErrorInfo(body)["domain"], "environment.submarine.io");
  EXPECT_EQ(ErrorInfo(body)["metadata"]["requestId"], "leak-probe-1");

  auto channel = grpc::CreateChannel(ready_->grpc, grpc::InsecureChannelCredentials());
  auto stub = env::EnvironmentService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-request-id", "leak-probe-2");
  env::GetEnvironmentRequest req;
  req.set_name(EnvironmentBackend::kLeakyName);
  env::Environment resp;
  grpc::Status st = stub->GetEnvironment(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INTERNAL);
  google::rpc::Status details;
  ASSERT_TRUE(DecodeStatusDetails(st, &details));
  std::string all = st.error_message();
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) all += info.DebugString();
  }
  for (const auto& leak : leaks) {
    EXPECT_EQ(all.find(leak), std::string::npos) << leak << " in " << all;
  }
  EXPECT_NE(st.error_message().find("leak-probe-2"), std::string::npos) << st.error_message();
}

TEST_F(GatewayTest, DeadlineExceededIs504) {
  auto r = Call("GET", "/v1/projects/default/environments/slow");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(Json(r)["error"]["status"], "DEADLINE_EXCEEDED");
  EXPECT_EQ(ErrorInfo(Json(r))["reason"], "BACKEND_DEADLINE_EXCEEDED");
}

TEST_F(GatewayTest, SubmarineV1EnvelopeOnSuccess) {
  auto created = Call("POST", "/api/v1/environment",
                      R"({"name":"v1-env","dockerImage":"apache/submarine:jupyter",)"
                      R"("kernelSpec":{"name":"py3","channels":["defaults"]}})",
                      {{"Content-Type", "application/json"}});
  ASSERT_EQ(created.status, 200) << created.body;
  auto got = Call("GET", "/api/v1/environment/v1-env");
  ASSERT_EQ(got.status, 200) << got.body;
  // Every member printed, in Apache Submarine's order, nulls included.
  EXPECT_EQ(
      got.body.rfind(R"({"status":"OK","code":200,"success":true,"message":null,"result":)", 0), 0u)
      << got.body;
  auto body = Json(got);
  EXPECT_EQ(body["attributes"], json::object());
  EXPECT_EQ(body["result"]["environmentSpec"]["name"], "v1-env");
  EXPECT_EQ(body["result"]["environmentSpec"]["kernelSpec"]["channels"], json::array({"defaults"}));

  auto listed = Call("GET", "/api/v1/environment?status=anything&ignored=1");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_TRUE(Json(listed)["result"].is_array());
}

TEST_F(GatewayTest, SubmarineV1EnvelopeOnError) {
  auto r = Call("GET", "/api/v1/environment/nope");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body,
            R"({"status":"NOT_FOUND","code":404,"success":null,"message":"Environment not found.",)"
            R"("result":null,"attributes":{}})");

  for (const std::string body : {"", "null", "  null \n"}) {
    auto invalid =
        Call("POST", "/api/v1/environment", body, {{"Content-Type", "application/json"}});
    EXPECT_EQ(invalid.status, 400) << invalid.body;
    EXPECT_EQ(Json(invalid)["message"], "Invalid environment spec.");
    EXPECT_EQ(Json(invalid)["status"], "BAD_REQUEST");
    EXPECT_TRUE(Json(invalid)["success"].is_null());
  }

  auto bad_json = Call("POST", "/api/v1/environment", R"({"name":"x","dockerimage":"typo"})");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_EQ(Json(bad_json)["code"], 400);
  EXPECT_NE(Json(bad_json)["message"].get<std::string>().find("dockerimage"), std::string::npos);
}

TEST_F(GatewayTest, UnknownRouteIs404AndWrongMethodIs405) {
  auto r = Call("GET", "/v2/nothing/here");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(ErrorInfo(Json(r))["reason"], "ROUTE_NOT_FOUND");

  auto m = Call("PUT", "/v1/projects/default/environments/x", "{}");
  EXPECT_EQ(m.status, 405);
  EXPECT_EQ(ErrorInfo(Json(m))["reason"], "METHOD_NOT_ALLOWED");
  std::string allow = m.Header("allow");
  for (const char* verb : {"GET", "PATCH", "DELETE"}) {
    EXPECT_NE(allow.find(verb), std::string::npos) << allow;
  }
  EXPECT_EQ(Call("POST", "/healthz").status, 405);
}

TEST_F(GatewayTest, RequestIdIsPropagatedOrGenerated) {
  auto r = Call("GET", "/v1/projects/default/environments/missing", "",
                {{"X-Request-Id", "client-chosen-42"}});
  EXPECT_EQ(r.Header("x-request-id"), "client-chosen-42");
  EXPECT_EQ(backend_->last_request_id(), "client-chosen-42");

  auto g = Call("GET", "/v1/projects/default/environments/missing");
  std::string generated = g.Header("x-request-id");
  EXPECT_EQ(generated.size(), 36u) << generated;
  EXPECT_EQ(backend_->last_request_id(), generated);

  // Junk is replaced, never forwarded into services' logs.
  for (const std::string& junk :
       {std::string("has space"), std::string(200, 'x'), std::string("quote\"and;semicolon"),
        std::string("\xff\xfe"), std::string("tab\there"), std::string("")}) {
    auto j = Call("GET", "/v1/projects/default/environments/missing", "", {{"X-Request-Id", junk}});
    std::string replaced = j.Header("x-request-id");
    EXPECT_EQ(replaced.size(), 36u) << "for " << junk << ": " << replaced;
    EXPECT_NE(replaced, junk);
    EXPECT_EQ(backend_->last_request_id(), replaced);
  }
}

TEST_F(GatewayTest, MalformedHttpIs400) {
  for (const std::string& raw :
       {std::string("GET /healthz HTTP/1.1\r\nHost x\r\n\r\n"),
        std::string("GET /healthz HTCPCP/1.0\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
        std::string("GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")}) {
    auto conn = HttpConnection::Connect(ready_->http);
    ASSERT_TRUE(conn.ok()) << conn.status();
    auto r = conn->SendRaw(raw);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 400) << raw;
    EXPECT_EQ(ErrorInfo(Json(*r))["reason"], "MALFORMED_HTTP_REQUEST") << r->body;
    EXPECT_TRUE(conn->PeerClosed());
  }
}

// Found by attacking a running stack: invalid UTF-8 anywhere in a path or query string was a 500,
// and errors echoing a long value grew past what gRPC metadata and clients accept. Every row must
// answer a 4xx (or succeed), with a small valid-UTF-8 JSON body that echoes no long input and no
// exception text; the invalid-UTF-8 rows are 400 naming the field.
TEST_F(GatewayTest, InvalidUtf8AndOversizedInputsAreBounded4xx) {
  constexpr size_t kMaxErrorBody = 2048;
  const std::string kLong(4000, 'a');
  const std::vector<std::string> kInvalid = {
      "%FF",       "%FE%FF",       "%C0%80",          "%C1%BF",  "%E0%80%80",
      "%ED%A0%80", "%F4%90%80%80", "%F8%88%80%80%80", "%80",     "%C3",
      "%E2%82",    "ab%FFcd",      "%F0%9F%98",       "ok%C3%28"};
  struct Case {
    std::string method;
    std::string target;
    std::string body;
    int status;         // expected HTTP status; 0: any 2xx-4xx
    std::string field;  // expected ErrorInfo metadata.field, if any
  };
  std::vector<Case> cases;
  for (const auto& bad : kInvalid) {
    const std::string env = "/v1/projects/default/environments";
    cases.push_back({"GET", absl::StrCat(env, "/", bad), "", 400, "name"});
    cases.push_back(
        {"GET", absl::StrCat("/v1/projects/", bad, "/environments/x"), "", 400, "name"});
    cases.push_back(
        {"GET", absl::StrCat("/v1/projects/", bad, "/environments"), "", 400, "parent"});
    cases.push_back({"DELETE", absl::StrCat(env, "/", bad), "", 400, "name"});
    cases.push_back({"PATCH", absl::StrCat(env, "/", bad), "{}", 400, "environment.name"});
    cases.push_back({"GET", absl::StrCat(env, "?pageToken=", bad), "", 400, "pageToken"});
    cases.push_back({"GET", absl::StrCat(env, "?filter=", bad, "%FE"), "", 400, "filter"});
    cases.push_back({"GET", absl::StrCat(env, "?orderBy=", bad), "", 400, "orderBy"});
    cases.push_back({"GET", absl::StrCat(env, "?pageSize=", bad), "", 400, "pageSize"});
    cases.push_back({"GET", absl::StrCat(env, "?", bad, "=1"), "", 400, ""});
    cases.push_back({"PATCH", absl::StrCat(env, "/x?updateMask=", bad), "{}", 400, "updateMask"});
    cases.push_back({"POST", absl::StrCat(env, "?environmentId=", bad), R"({"image":"i"})", 400,
                     "environmentId"});
    cases.push_back({"GET", absl::StrCat("/api/v1/environment/", bad), "", 400, ""});
    cases.push_back({"GET", absl::StrCat("/api/v1/environment?status=", bad), "", 0, ""});
    cases.push_back({"GET", absl::StrCat("/v2/", bad), "", 404, ""});
  }
  const std::string env = "/v1/projects/default/environments";
  cases.push_back({"GET", absl::StrCat(env, "?orderBy=", kLong), "", 0, ""});
  cases.push_back({"GET", absl::StrCat(env, "?filter=", kLong), "", 0, ""});
  cases.push_back({"GET", absl::StrCat(env, "?", kLong, "=1"), "", 400, ""});
  cases.push_back(
      {"GET", absl::StrCat(env, "?pageSize=", std::string(4000, '9')), "", 400, "pageSize"});
  cases.push_back({"GET", absl::StrCat(env, "/", kLong), "", 404, ""});
  cases.push_back({"PUT", absl::StrCat(env, "/", kLong), "{}", 405, ""});
  cases.push_back({kLong.substr(0, 2000), "/healthz", "", 0, ""});
  cases.push_back({"GET", absl::StrCat("/v2/", kLong), "", 404, ""});
  cases.push_back({"POST", absl::StrCat(env, "?environmentId=b1"),
                   absl::StrCat(R"({")", kLong, R"(":1})"), 400, ""});
  cases.push_back({"POST", absl::StrCat(env, "?environmentId=b2"),
                   absl::StrCat(R"({"image":")", kLong, "\n\x01"), 400, ""});
  cases.push_back(
      {"POST", absl::StrCat(env, "?environmentId=b3"), "{\"image\":\"\xff\xfe\"}", 400, ""});
  cases.push_back(
      {"POST", absl::StrCat(env, "?environmentId=b4"), "{\"image\":\"\xc0\x80\"}", 400, ""});
  cases.push_back({"POST", absl::StrCat(env, "?environmentId=b5"), R"({"image":"\ud800"})", 0, ""});
  cases.push_back({"POST", "/api/v1/environment", "{\"name\":\"\xed\xa0\x80\"}", 400, ""});

  for (const auto& c : cases) {
    std::string what = QuoteInput(absl::StrCat(c.method, " ", c.target, " ", c.body), 160);
    auto r = Call(c.method, c.target, c.body, {{"Content-Type", "application/json"}});
    ASSERT_NE(r.status, 0) << what;
    EXPECT_LT(r.status, 500) << what << ": " << r.body;
    if (c.status != 0) {
      EXPECT_EQ(r.status, c.status) << what << ": " << r.body;
    }
    if (r.status < 400) continue;
    EXPECT_LE(r.body.size(), kMaxErrorBody) << what;
    EXPECT_TRUE(IsValidUtf8(r.body)) << what;
    auto body = Json(r);
    ASSERT_FALSE(body.is_discarded()) << what << ": " << r.body;
    EXPECT_EQ(r.body.find("exception"), std::string::npos) << what << ": " << r.body;
    // (How much of its input a service quotes is the service's business; the backend here
    // echoes names whole, and only its gRPC edge bounds them.)
    if (ErrorInfo(body)["domain"] == "gateway.submarine.io") {
      EXPECT_EQ(r.body.find(std::string(65, 'a')), std::string::npos) << what << " echoed input";
    }
    if (!c.field.empty()) {
      EXPECT_EQ(body["error"]["status"], "INVALID_ARGUMENT") << what << ": " << r.body;
      EXPECT_EQ(ErrorInfo(body)["metadata"]["field"], c.field) << what << ": " << r.body;
      std::string leaf = c.field.substr(c.field.rfind('.') + 1);  // npos + 1 == 0
      EXPECT_NE(body["error"]["message"].get<std::string>().find(leaf), std::string::npos)
          << what << ": " << r.body;
    }
  }
  // The same in a YAML body, and in headers that are forwarded to the backend.
  auto yaml = Call("POST", absl::StrCat(env, "?environmentId=y1"), "image: \xff\xfe\n",
                   {{"Content-Type", "application/yaml"}});
  EXPECT_EQ(yaml.status, 400) << yaml.body;
  EXPECT_EQ(ErrorInfo(Json(yaml))["reason"], "INVALID_REQUEST_BODY") << yaml.body;
  EXPECT_EQ(Json(yaml)["error"]["message"], "Invalid request body: it is not valid UTF-8");
  auto json_body = Call("POST", absl::StrCat(env, "?environmentId=j1"), "{\"image\":\"\xc3\x28\"}",
                        {{"Content-Type", "application/json"}});
  EXPECT_EQ(json_body.status, 400) << json_body.body;
  EXPECT_EQ(Json(json_body)["error"]["message"], "Invalid request body: it is not valid UTF-8");
  // (Found by this test: gRPC aborted the gateway on a trace header that was not ASCII.)
  for (const char* header : {"traceparent", "tracestate"}) {
    for (const std::string& value :
         {std::string("\xff\xfe"), std::string(4000, 't'), std::string("00-zz-\x7f")}) {
      auto r = Call("GET", absl::StrCat(env, "/missing"), "", {{header, value}});
      // Served without it, or refused as malformed HTTP (DEL is not allowed in a header).
      EXPECT_TRUE(r.status == 404 || r.status == 400) << header << ": " << r.body;
      EXPECT_EQ(backend_->last_metadata().count(header), 0u) << header << " was forwarded";
    }
  }
  const std::string traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto traced = Call("GET", absl::StrCat(env, "/missing"), "",
                     {{"traceparent", traceparent}, {"tracestate", "congo=t61rcWkgMzE"}});
  EXPECT_EQ(traced.status, 404);
  auto md = backend_->last_metadata();
  ASSERT_EQ(md.count("traceparent"), 1u);
  EXPECT_EQ(md.find("traceparent")->second, traceparent);
  EXPECT_EQ(md.find("tracestate")->second, "congo=t61rcWkgMzE");
}

TEST_F(GatewayTest, BuiltInEndpoints) {
  auto health = Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(Json(health)["status"], "ok");

  auto ready = Call("GET", "/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;

  Call("GET", "/v1/projects/default/environments/missing");
  auto metrics = Call("GET", "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.Header("content-type").find("text/plain"), std::string::npos);
  EXPECT_NE(metrics.body.find("gateway_http_requests_total{route=\"GET "
                              "/v1/{name=projects/*/environments/*}\",code=\"404\"}"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("gateway_http_request_duration_seconds_bucket"), std::string::npos);

  auto openapi = Call("GET", "/api/openapi.json");
  ASSERT_EQ(openapi.status, 200);
  auto doc = Json(openapi);
  EXPECT_EQ(doc["openapi"], "3.0.3");
  const auto& paths = doc["paths"];
  ASSERT_TRUE(paths.contains("/v1/projects/{project}/environments/{environment}")) << doc.dump(1);
  const auto& item = paths["/v1/projects/{project}/environments/{environment}"];
  EXPECT_TRUE(item.contains("get"));
  EXPECT_TRUE(item.contains("patch"));
  EXPECT_TRUE(item.contains("delete"));
  EXPECT_TRUE(paths["/v1/projects/{project}/environments"]["post"].contains("requestBody"));
  bool page_size = false;
  for (const auto& p : paths["/v1/projects/{project}/environments"]["get"]["parameters"]) {
    page_size = page_size || (p["name"] == "pageSize" && p["in"] == "query");
  }
  EXPECT_TRUE(page_size);
  EXPECT_TRUE(paths.contains("/api/v1/environment/{name}"));
  EXPECT_TRUE(doc["components"]["schemas"].contains("submarine.environment.v1.Environment"));
}

TEST_F(GatewayTest, KeepAliveServesManyRequestsOnOneConnection) {
  auto conn = HttpConnection::Connect(ready_->http);
  ASSERT_TRUE(conn.ok()) << conn.status();
  for (int i = 0; i < 200; ++i) {
    auto r = conn->Request(i % 2 ? "GET" : "POST",
                           i % 2 ? "/healthz" : "/v1/projects/default/environments:none", "");
    ASSERT_TRUE(r.ok()) << "request " << i << ": " << r.status();
    ASSERT_EQ(r->status, i % 2 ? 200 : 404);
    ASSERT_NE(r->Header("connection"), "close");
  }
}

TEST_F(GatewayTest, GrpcProxyForwardsCallsAndErrors) {
  CreateAip("proxied", "img:proxy");
  auto channel = grpc::CreateChannel(ready_->grpc, grpc::InsecureChannelCredentials());
  auto stub = env::EnvironmentService::NewStub(channel);
  {
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", "grpc-client-7");
    env::GetEnvironmentRequest req;
    req.set_name("projects/default/environments/proxied");
    env::Environment resp;
    grpc::Status st = stub->GetEnvironment(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.image(), "img:proxy");
    EXPECT_EQ(backend_->last_request_id(), "grpc-client-7");
  }
  {
    grpc::ClientContext ctx;
    env::GetEnvironmentRequest req;
    req.set_name("projects/default/environments/absent");
    env::Environment resp;
    grpc::Status st = stub->GetEnvironment(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    google::rpc::Status details;
    ASSERT_TRUE(DecodeStatusDetails(st, &details));
    google::rpc::ErrorInfo info;
    ASSERT_EQ(details.details_size(), 1);
    ASSERT_TRUE(details.details(0).UnpackTo(&info));
    EXPECT_EQ(info.reason(), "RESOURCE_NOT_FOUND");
    EXPECT_EQ(info.domain(), "environment.submarine.io");
    auto id = ctx.GetServerInitialMetadata().find("x-request-id");
    ASSERT_NE(id, ctx.GetServerInitialMetadata().end());
    EXPECT_EQ(std::string(id->second.data(), id->second.size()), backend_->last_request_id());
  }
  {
    grpc::GenericStub generic(channel);
    grpc::ClientContext ctx;
    grpc::Slice empty("");
    grpc::ByteBuffer req(&empty, 1);
    grpc::ByteBuffer resp;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status result;
    generic.UnaryCall(&ctx, "/no.such.Service/Method", grpc::StubOptions(), &req, &resp,
                      [&](grpc::Status st) {
                        std::lock_guard lock(mu);
                        result = st;
                        done = true;
                        cv.notify_all();
                      });
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
    EXPECT_EQ(result.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  }
}

// With authentication off nothing is verified and nothing is attached: no principal reaches the
// service, whatever the client sends, and the client's credentials are not forwarded either.
TEST_F(GatewayTest, InsecureModeForwardsNoPrincipalAndNoCredentials) {
  std::vector<std::pair<std::string, std::string>> headers = {
      {"Authorization", "Bearer whatever"},
      {"X-Submarine-Principal", "Zm9yZ2Vk"},
      {"X-Submarine-Principal-Mac", "Zm9yZ2Vk"}};
  auto r = Call("GET", "/v1/projects/default/environments/missing", "", headers);
  EXPECT_EQ(r.status, 404) << r.body;
  auto rest_md = backend_->last_metadata();
  EXPECT_EQ(rest_md.count("x-submarine-principal"), 0u);
  EXPECT_EQ(rest_md.count("x-submarine-principal-mac"), 0u);
  EXPECT_EQ(rest_md.count("authorization"), 0u);
  auto channel = grpc::CreateChannel(ready_->grpc, grpc::InsecureChannelCredentials());
  auto stub = env::EnvironmentService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer whatever");
  ctx.AddMetadata("x-submarine-principal", "Zm9yZ2Vk");
  ctx.AddMetadata("x-submarine-principal-mac", "Zm9yZ2Vk");
  env::GetEnvironmentRequest req;
  req.set_name("projects/default/environments/missing");
  env::Environment resp;
  EXPECT_EQ(stub->GetEnvironment(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  auto md = backend_->last_metadata();
  EXPECT_EQ(md.count("x-submarine-principal"), 0u);
  EXPECT_EQ(md.count("x-submarine-principal-mac"), 0u);
  EXPECT_EQ(md.count("authorization"), 0u);
  EXPECT_NE(Tail(*dir_ + "/gateway.log", 1 << 20).find("AUTHENTICATION IS OFF"), std::string::npos);
  auto ready = Call("GET", "/readyz");
  EXPECT_EQ(Json(ready)["authentication"], "off") << ready.body;
}

// Readiness follows the backend (with authentication off everyone sees which backend is down);
// REST calls to a missing backend are 503.
TEST(GatewayReadinessTest, ReadyzFollowsTheBackend) {
  auto port = net::PickFreePort();
  ASSERT_TRUE(port.ok());
  std::string backend_address = absl::StrCat("127.0.0.1:", *port);
  std::string dir = MakeTempDir("gateway-readyz");
  ReadyInfo ready;
  auto gateway =
      StartService("submarine-gateway", dir, "gateway", GatewayYaml(backend_address), &ready);
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  auto down = HttpCall(ready.http, "GET", "/readyz");
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->status, 503);
  EXPECT_NE(down->body.find(backend_address), std::string::npos) << down->body;

  auto call = HttpCall(ready.http, "GET", "/v1/projects/default/environments/x");
  ASSERT_TRUE(call.ok());
  EXPECT_EQ(call->status, 503) << call->body;
  EXPECT_EQ(ErrorInfo(Json(*call))["reason"], "BACKEND_UNAVAILABLE");
  // gRPC's words for it name the address; they go to the log, not to the client.
  EXPECT_EQ(call->body.find(backend_address), std::string::npos) << call->body;
  EXPECT_EQ(ErrorInfo(Json(*call))["metadata"]["service"],
            "submarine.environment.v1.EnvironmentService");

  EnvironmentBackend backend;
  ASSERT_TRUE(backend.Start(backend_address).ok());
  EXPECT_TRUE(WaitFor([&] {
    auto r = HttpCall(ready.http, "GET", "/readyz");
    return r.ok() && r->status == 200;
  }));
  gateway->Signal(SIGTERM);
  EXPECT_EQ(gateway->Wait(), 0);
}

// SIGTERM: the listener closes at once, the request in flight still gets its answer, exit 0.
TEST(GatewayShutdownTest, SigtermFinishesInFlightRequests) {
  EnvironmentBackend backend;
  auto address = backend.Start();
  ASSERT_TRUE(address.ok());
  std::string dir = MakeTempDir("gateway-sigterm");
  ReadyInfo ready;
  auto gateway =
      StartService("submarine-gateway", dir, "gateway", GatewayYaml(*address, 20000), &ready);
  ASSERT_TRUE(gateway.ok()) << gateway.status();

  absl::StatusOr<HttpResult> in_flight = Unavailable("not sent");
  std::thread client(
      [&] { in_flight = HttpCall(ready.http, "GET", "/v1/projects/default/environments/held"); });
  ASSERT_TRUE(WaitFor([&] { return backend.held_calls() == 1; }));
  gateway->Signal(SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return !HttpConnection::Connect(ready.http).ok(); }));
  backend.ReleaseHeld();
  client.join();
  ASSERT_TRUE(in_flight.ok()) << in_flight.status();
  EXPECT_EQ(in_flight->status, 200);
  EXPECT_EQ(Json(*in_flight)["name"], "projects/default/environments/held");
  EXPECT_EQ(gateway->Wait(), 0);
}

}  // namespace
}  // namespace submarine::testing
