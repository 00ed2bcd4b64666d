// End to end: the real submarine-gateway in front of the real submarine-environment on the run's
// throwaway PostgreSQL. Both REST faces and the gRPC proxy, as a user would call them.

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "submarine/environment/v1/environment.grpc.pb.h"
#include "tests/support/http_client.h"
#include "tests/support/process.h"
#include "tests/support/test_postgres.h"

namespace submarine::testing {
namespace {

using nlohmann::json;

class GatewayEnvironmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& pg = TestPostgres::Get();
    std::string db = pg.CreateDatabase("gwenv");
    dir_ = MakeTempDir("gateway-env");
    std::string env_yaml = absl::StrCat(
        "server:\n  grpc_listen: 127.0.0.1:0\n", "database: {host: ", pg.socket_dir(),
        ", port: ", pg.port(), ", dbname: ", db, ", user: postgres, schema: environment}\n",
        "events: {publish_endpoint: \"\"}\n");
    ReadyInfo env_ready;
    auto environment =
        StartService("submarine-environment", dir_, "environment", env_yaml, &env_ready);
    ASSERT_TRUE(environment.ok()) << environment.status();
    environment_ = std::move(environment).value();
    std::string gw_yaml = absl::StrCat(
        "http_listen: 127.0.0.1:0\ngrpc_listen: 127.0.0.1:0\nbackends:\n  - address: ",
        env_ready.grpc,
        "\n    services: [submarine.environment.v1.EnvironmentService, "
        "submarine.environment.v1.SubmarineEnvironmentApi]\nserver:\n  shutdown_grace_ms: 5000\n");
    auto gateway = StartService("submarine-gateway", dir_, "gateway", gw_yaml, &ready_);
    ASSERT_TRUE(gateway.ok()) << gateway.status();
    gateway_ = std::move(gateway).value();
  }

  void TearDown() override {
    gateway_.Signal(SIGTERM);
    EXPECT_EQ(gateway_.Wait(), 0);
    environment_.Signal(SIGTERM);
    EXPECT_EQ(environment_.Wait(), 0);
  }

  HttpResult Call(const std::string& method, const std::string& target,
                  const std::string& body = "",
                  const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    auto r = HttpCall(ready_.http, method, target, body, headers);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : HttpResult();
  }

  std::string dir_;
  ReadyInfo ready_;
  ChildProcess environment_;
  ChildProcess gateway_;
};

TEST_F(GatewayEnvironmentTest, ResourceApiThroughTheGateway) {
  auto created = Call("POST", "/v1/projects/default/environments?environmentId=e2e",
                      "image: python:3.11\nkernelSpec:\n  name: py3\n",
                      {{"Content-Type", "application/yaml"}});
  ASSERT_EQ(created.status, 200) << created.body;
  auto body = json::parse(created.body);
  EXPECT_EQ(body["name"], "projects/default/environments/e2e");
  EXPECT_FALSE(body.value("etag", "").empty());

  auto patched = Call("PATCH", "/v1/projects/default/environments/e2e?updateMask=image",
                      R"({"image":"python:3.12"})");
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(json::parse(patched.body)["image"], "python:3.12");

  auto listed = Call("GET", "/v1/projects/default/environments?pageSize=1&orderBy=create_time");
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(json::parse(listed.body)["environments"].size(), 1u);

  auto missing = Call("GET", "/v1/projects/default/environments/nope");
  EXPECT_EQ(missing.status, 404);
  auto error = json::parse(missing.body)["error"];
  EXPECT_EQ(error["status"], "NOT_FOUND");
  ASSERT_FALSE(error["details"].empty());
  EXPECT_EQ(error["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
  EXPECT_FALSE(error["details"][0].value("reason", "").empty());

  auto stub = environment::v1::EnvironmentService::NewStub(
      grpc::CreateChannel(ready_.grpc, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  environment::v1::GetEnvironmentRequest req;
  req.set_name("projects/default/environments/e2e");
  environment::v1::Environment env;
  grpc::Status st = stub->GetEnvironment(&ctx, req, &env);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(env.image(), "python:3.12");
}

TEST_F(GatewayEnvironmentTest, SubmarineV1FaceThroughTheGateway) {
  auto seeded = Call("GET", "/api/v1/environment/notebook-env");
  ASSERT_EQ(seeded.status, 200) << seeded.body;
  EXPECT_EQ(seeded.body.rfind(R"({"status":"OK","code":200,"success":true,)", 0), 0u)
      << seeded.body;
  auto body = json::parse(seeded.body);
  EXPECT_EQ(body["result"]["environmentSpec"]["name"], "notebook-env");
  EXPECT_EQ(body["attributes"], json::object());

  auto invalid =
      Call("POST", "/api/v1/environment", "null", {{"Content-Type", "application/json"}});
  EXPECT_EQ(invalid.status, 400) << invalid.body;
  EXPECT_EQ(json::parse(invalid.body)["message"], "Invalid environment spec.");

  auto missing = Call("GET", "/api/v1/environment/absent");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"status":"NOT_FOUND","code":404,"success":null,)"
                          R"("message":"Environment not found.","result":null,"attributes":{}})");
}

}  // namespace
}  // namespace submarine::testing
