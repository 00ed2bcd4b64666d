// Unit tests of submarine_cli_lib: what the CLI prints, how it reads environment files and finds
// its server, and the configs the local stack writes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "clients/cli/environment_commands.h"
#include "clients/cli/http_client.h"
#include "clients/cli/output.h"
#include "clients/cli/server_resolution.h"
#include "clients/cli/stack_plan.h"
#include "clients/cli/stack_state.h"
#include "common/config/config.h"
#include "submarine/config/v1/config.pb.h"
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

TEST(OutputFormatTest, EnvironmentTableShowsShortNamesLabelsAndSeconds) {
  json env = {{"name", "projects/default/environments/py3"},
              {"displayName", "Python 3"},
              {"image", "python:3.11"},
              {"labels", {{"team", "ml"}}},
              {"createTime", "2024-05-01T10:00:00.123456Z"}};
  std::string table = FormatEnvironments({env}, OutputFormat::kTable, /*single=*/true);
  EXPECT_NE(table.find("NAME"), std::string::npos);
  EXPECT_NE(table.find("py3 "), std::string::npos) << table;
  EXPECT_EQ(table.find("projects/"), std::string::npos) << table;
  EXPECT_NE(table.find("team=ml"), std::string::npos) << table;
  EXPECT_NE(table.find("2024-05-01T10:00:00Z"), std::string::npos) << table;
}

TEST(OutputFormatTest, JsonIsAnObjectForOneAndAnArrayForAList) {
  json env = {{"name", "projects/default/environments/a"}};
  EXPECT_EQ(json::parse(FormatEnvironments({env}, OutputFormat::kJson, true)), env);
  EXPECT_EQ(json::parse(FormatEnvironments({env}, OutputFormat::kJson, false)), json::array({env}));
  EXPECT_EQ(json::parse(FormatEnvironments({}, OutputFormat::kJson, false)), json::array());
}

TEST(EnvironmentFileTest, TakesTheIdFromTheNameAndStripsIt) {
  auto c = ParseEnvironmentFile(
      "name: projects/default/environments/my-env\nimage: python:3.11\n"
      "kernelSpec:\n  name: python3\n  pipDependencies: [\"pandas==2.1.0\"]\n",
      "");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->environment_id, "my-env");
  EXPECT_FALSE(c->body.contains("name"));
  EXPECT_EQ(c->body["image"], "python:3.11");
  EXPECT_EQ(c->body["kernelSpec"]["pipDependencies"][0], "pandas==2.1.0");
}

TEST(EnvironmentFileTest, IdFlagWinsAndJsonIsAccepted) {
  auto c = ParseEnvironmentFile(R"({"name": "ignored", "image": "x"})", "from-flag");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->environment_id, "from-flag");
}

TEST(EnvironmentFileTest, RejectsFilesWithoutIdOrMapping) {
  EXPECT_EQ(ParseEnvironmentFile("image: x\n", "").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseEnvironmentFile("- a\n- b\n", "id").status().code(),
            absl::StatusCode::kInvalidArgument);
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
  EXPECT_EQ(env.database().host(), "127.0.0.1");
  EXPECT_EQ(env.database().port(), 5433u);
  EXPECT_EQ(env.database().user(), "submarine_environment");
  EXPECT_EQ(env.database().schema(), "environment");
  EXPECT_EQ(env.database().password_file(),
            "/var/lib/submarine/secrets/submarine_environment.password");
  EXPECT_EQ(env.events().publish_endpoint(), bus.frontend());
  EXPECT_EQ(env.events().subscribe_endpoint(), bus.backend());
  EXPECT_NE(bus.frontend(), bus.backend());

  config::v1::GatewayConfig gateway;
  ASSERT_TRUE(config::ParseConfigText(plan->processes.back().config_text, &gateway).ok());
  ASSERT_EQ(gateway.backends_size(), static_cast<int>(LocalStackServices().size()));
  const config::v1::GatewayBackend* env_backend = nullptr;
  for (const auto& b : gateway.backends()) {
    if (b.address() == env.server().grpc_listen()) env_backend = &b;
  }
  ASSERT_NE(env_backend, nullptr) << "the gateway routes to the environment service";
  EXPECT_EQ(env_backend->services(0), "submarine.environment.v1.EnvironmentService");
  EXPECT_EQ(plan->gateway_url, "http://" + gateway.http_listen());
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
