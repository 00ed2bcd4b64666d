// The embedded local stack end to end, as a user drives it: `submarine local up` with the real
// processes, REST CRUD through the gateway, the environment CLI commands, `local status`, a
// killed service restarted by the supervisor, and `local down` leaving no process behind.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "clients/cli/http_client.h"
#include "common/config/config.h"
#include "common/util/clock.h"
#include "tests/support/process.h"

namespace submarine::cli {
namespace {

using nlohmann::json;
using std::chrono::seconds;
namespace fs = std::filesystem;

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Processes (not zombies) whose command line contains `needle`, read straight from /proc.
std::set<pid_t> LiveProcessesMentioning(const std::string& needle) {
  std::set<pid_t> found;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string pid_text = entry.path().filename().string();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = ReadAll(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    std::string stat = ReadAll(entry.path().string() + "/stat");
    auto close = stat.rfind(')');
    bool zombie = close != std::string::npos && close + 2 < stat.size() &&
                  (stat[close + 2] == 'Z' || stat[close + 2] == 'X');
    if (!zombie && cmdline.find(needle) != std::string::npos) found.insert(std::stoi(pid_text));
  }
  return found;
}

bool Alive(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::string stat = ReadAll(absl::StrCat("/proc/", pid, "/stat"));
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

class LocalStackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Under /tmp: as root PostgreSQL runs as `postgres`, which cannot enter /root.
    data_dir_ = absl::StrCat("/tmp/submarine-local-stack-", IdGenerator::Secure().RandomHex(6));
    fs::create_directories(data_dir_);
    log_dir_ = testing::MakeTempDir("local-stack-cmds");
  }

  void TearDown() override {
    if (!LiveProcessesMentioning(data_dir_).empty()) Submarine({"local", "down"});
    if (!HasFailure()) {
      fs::remove_all(data_dir_);
      fs::remove_all(log_dir_);
    } else {
      std::cerr << "left for post-mortem: " << data_dir_ << " (logs/) and " << log_dir_ << "\n";
    }
  }

  // Runs `submarine <args> --data-dir <data_dir_>` (the flag is appended to every command).
  CommandResult Submarine(std::vector<std::string> args, seconds timeout = seconds(300)) {
    args.push_back("--data-dir");
    args.push_back(data_dir_);
    std::string log = absl::StrCat(log_dir_, "/cmd-", ++commands_, ".log");
    auto child = testing::ChildProcess::Start(testing::BinDir() + "/submarine", args, log,
                                              {{"SUBMARINE_SERVER", ""}});
    if (!child.ok()) return {-1, std::string(child.status().message())};
    CommandResult result;
    result.exit_code = child->Wait(timeout);
    result.output = ReadAll(log);
    return result;
  }

  json State() {
    auto text = config::ReadFile(data_dir_ + "/state.json");
    if (!text.ok()) return json();
    return json::parse(*text, nullptr, false);
  }

  pid_t ProcessPid(const std::string& name) {
    json state = State();
    if (!state.is_object()) return 0;
    for (const auto& p : state["processes"]) {
      if (p["name"] == name) return p["pid"].get<pid_t>();
    }
    return 0;
  }

  std::string data_dir_;
  std::string log_dir_;
  int commands_ = 0;
};

TEST_F(LocalStackTest, UpServesCrudSurvivesAKilledServiceAndDownLeavesNothing) {
  // ---- up ----
  CommandResult up = Submarine({"local", "up", "--gateway-port", "0"});
  ASSERT_EQ(up.exit_code, 0) << up.output << "\nsupervisor log:\n"
                             << testing::Tail(data_dir_ + "/logs/supervisor.log");
  json state = State();
  ASSERT_EQ(state["phase"], "running") << state.dump(2);
  std::string gateway = state["gatewayUrl"];
  EXPECT_NE(up.output.find(gateway), std::string::npos) << "up prints the URL: " << up.output;
  HttpClient http(gateway);

  // ---- REST CRUD through the gateway ----
  json body = {{"displayName", "Test env"},
               {"image", "python:3.11-slim"},
               {"kernelSpec", {{"name", "python3"}, {"pipDependencies", {"pandas==2.1.0"}}}},
               {"labels", {{"team", "ml"}}}};
  auto created =
      http.Send("POST", "/v1/projects/default/environments?environmentId=rest-env", body.dump());
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->status, 200) << created->body;
  json env = json::parse(created->body);
  EXPECT_EQ(env["name"], "projects/default/environments/rest-env");
  EXPECT_EQ(env["image"], "python:3.11-slim");
  EXPECT_EQ(env["kernelSpec"]["pipDependencies"][0], "pandas==2.1.0");

  auto got = http.Send("GET", "/v1/projects/default/environments/rest-env");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(json::parse(got->body)["labels"]["team"], "ml");

  auto listed = http.Send("GET", "/v1/projects/default/environments?pageSize=1000");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->status, 200) << listed->body;
  std::set<std::string> names;
  json page = json::parse(listed->body);
  for (const auto& e : page["environments"]) names.insert(e["name"].get<std::string>());
  EXPECT_TRUE(names.count("projects/default/environments/rest-env")) << listed->body;

  json patch = {{"name", "projects/default/environments/rest-env"},
                {"displayName", "Renamed"},
                {"etag", env["etag"]}};
  auto updated = http.Send(
      "PATCH", "/v1/projects/default/environments/rest-env?updateMask=displayName", patch.dump());
  ASSERT_TRUE(updated.ok());
  ASSERT_EQ(updated->status, 200) << updated->body;
  EXPECT_EQ(json::parse(updated->body)["displayName"], "Renamed");
  EXPECT_EQ(json::parse(updated->body)["image"], "python:3.11-slim");

  auto deleted = http.Send("DELETE", "/v1/projects/default/environments/rest-env");
  ASSERT_TRUE(deleted.ok());
  ASSERT_EQ(deleted->status, 200) << deleted->body;
  EXPECT_EQ(json::parse(deleted->body)["environment"]["name"],
            "projects/default/environments/rest-env");
  auto gone = http.Send("GET", "/v1/projects/default/environments/rest-env");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->status, 404) << gone->body;
  EXPECT_EQ(json::parse(gone->body)["error"]["status"], "NOT_FOUND") << gone->body;

  // ---- CLI commands (server found through the state file) ----
  std::string file = log_dir_ + "/env.yaml";
  std::ofstream(file) << "name: cli-env\ndisplayName: From the CLI\nimage: python:3.12\n"
                         "kernelSpec:\n  name: python3\n  condaDependencies: [\"numpy=1.26\"]\n"
                         "labels:\n  source: cli\n";
  CommandResult create = Submarine({"environment", "create", "-f", file, "-o", "json"});
  ASSERT_EQ(create.exit_code, 0) << create.output;
  json cli_env = json::parse(create.output, nullptr, false);
  ASSERT_TRUE(cli_env.is_object()) << create.output;
  EXPECT_EQ(cli_env["name"], "projects/default/environments/cli-env");
  EXPECT_EQ(cli_env["kernelSpec"]["condaDependencies"][0], "numpy=1.26");

  CommandResult list = Submarine({"environment", "list", "-o", "json", "--filter",
                                  "labels.source = \"cli\"", "--page-size", "1"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  json cli_list = json::parse(list.output, nullptr, false);
  ASSERT_TRUE(cli_list.is_array()) << list.output;
  ASSERT_EQ(cli_list.size(), 1u) << list.output;
  EXPECT_EQ(cli_list[0]["name"], "projects/default/environments/cli-env");

  CommandResult table = Submarine({"environment", "list"});
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_NE(table.output.find("cli-env"), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("IMAGE"), std::string::npos) << table.output;

  CommandResult get = Submarine({"environment", "get", "cli-env", "-o", "yaml"});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  auto get_json = config::YamlToJson(get.output);
  ASSERT_TRUE(get_json.ok()) << get.output;
  EXPECT_EQ(json::parse(*get_json)["displayName"], "From the CLI");

  CommandResult del = Submarine({"environment", "delete", "cli-env"});
  ASSERT_EQ(del.exit_code, 0) << del.output;
  CommandResult missing = Submarine({"environment", "get", "cli-env"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.output.find("NOT_FOUND"), std::string::npos) << missing.output;

  // ---- status ----
  CommandResult status = Submarine({"local", "status", "-o", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  json health = json::parse(status.output, nullptr, false);
  ASSERT_TRUE(health.is_object()) << status.output;
  EXPECT_EQ(health["healthy"], true) << status.output;
  EXPECT_EQ(health["gatewayReadyz"], 200);
  std::set<std::string> process_names;
  for (const auto& p : health["processes"]) {
    process_names.insert(p["name"].get<std::string>());
    EXPECT_EQ(p["ready"], true) << p.dump();
  }
  EXPECT_EQ(process_names,
            (std::set<std::string>{"postgres", "eventbus", "environment", "gateway"}));

  // ---- a killed service comes back ----
  pid_t killed = ProcessPid("environment");
  ASSERT_GT(killed, 0);
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  bool recovered = testing::WaitFor(
      [&] {
        pid_t now = ProcessPid("environment");
        if (now <= 0 || now == killed) return false;
        auto r = http.Send("GET", "/readyz");
        if (!r.ok() || r->status != 200) return false;
        auto l = http.Send("GET", "/v1/projects/default/environments");
        return l.ok() && l->status == 200;
      },
      seconds(90));
  ASSERT_TRUE(recovered) << "environment not restarted; supervisor log:\n"
                         << testing::Tail(data_dir_ + "/logs/supervisor.log");
  status = Submarine({"local", "status", "-o", "json"});
  EXPECT_EQ(status.exit_code, 0) << status.output;
  health = json::parse(status.output, nullptr, false);
  for (const auto& p : health["processes"]) {
    if (p["name"] == "environment") {
      EXPECT_GE(p["restarts"].get<int>(), 1) << p.dump();
    }
  }

  // ---- down: nothing of the stack is left ----
  state = State();
  std::set<pid_t> recorded = {killed, state["supervisorPid"].get<pid_t>(),
                              state["postgres"]["pid"].get<pid_t>()};
  for (const auto& p : state["processes"]) recorded.insert(p["pid"].get<pid_t>());
  ASSERT_FALSE(LiveProcessesMentioning(data_dir_).empty());

  CommandResult down = Submarine({"local", "down"});
  ASSERT_EQ(down.exit_code, 0) << down.output;
  for (pid_t pid : recorded) EXPECT_FALSE(Alive(pid)) << "pid " << pid << " still runs";
  EXPECT_TRUE(LiveProcessesMentioning(data_dir_).empty());
  EXPECT_EQ(State()["phase"], "stopped");

  CommandResult after = Submarine({"local", "status"});
  EXPECT_NE(after.exit_code, 0) << "status of a stopped stack is not healthy: " << after.output;
  auto refused = http.Send("GET", "/readyz");
  EXPECT_FALSE(refused.ok()) << "the gateway still answers";
}

}  // namespace
}  // namespace submarine::cli
