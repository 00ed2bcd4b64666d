// The embedded local stack end to end, as a user drives it: `submarine local up` with the real
// processes requires login (401 without a token; the printed first admin password logs in),
// REST CRUD through the gateway with a token, `submarine login` storing a 0600 credentials file,
// the environment and permission CLI commands with it, SUBMARINE_TOKEN with an API token,
// `local status`, a killed service restarted by the supervisor, and `local down` leaving no
// process behind; and PostgreSQL killed with SIGKILL, restarted on the first attempt and counted.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "clients/cli/http_client.h"
#include "common/config/config.h"
#include "common/util/clock.h"
#include "tests/support/busy_backend.h"
#include "tests/support/fake_kube/fake_kube_apiserver.h"
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

int Mode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 0777);
}

// The password `local up` prints the first time: the line after "has the password".
std::string PrintedAdminPassword(const std::string& output) {
  const std::string marker = "has the password\n\n";
  auto at = output.find(marker);
  if (at == std::string::npos) return "";
  std::string rest = output.substr(at + marker.size());
  rest = rest.substr(0, rest.find('\n'));
  auto start = rest.find_first_not_of(' ');
  return start == std::string::npos ? "" : rest.substr(start);
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
    config_dir_ = log_dir_ + "/client-config";
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
  // The client finds its credentials in config_dir_ (never the tester's own); `env` adds or
  // overrides variables (e.g. SUBMARINE_TOKEN).
  CommandResult Submarine(std::vector<std::string> args,
                          std::map<std::string, std::string> env = {},
                          seconds timeout = seconds(300)) {
    args.push_back("--data-dir");
    args.push_back(data_dir_);
    return Run(testing::BinDir() + "/submarine", args, std::move(env), timeout);
  }

  // Writes `spec_yaml` to a file, runs it as experiment `id` with `submarine experiment run -f`
  // and returns `submarine experiment logs <id> -f` (the whole log, once the experiment ends).
  CommandResult RunAndFollow(const std::string& id, const std::string& spec_yaml) {
    const std::string spec = absl::StrCat(log_dir_, "/", id, ".yaml");
    std::ofstream(spec) << spec_yaml;
    CommandResult run = Submarine({"experiment", "run", "-f", spec, "--id", id});
    if (run.exit_code != 0) return run;
    return Submarine({"experiment", "logs", id, "-f"});
  }

  // `submarine <args> --data-dir <data_dir_>` with `stdin_text` on its standard input (for
  // --password-stdin), through /bin/sh so the secret never appears in an argv.
  CommandResult SubmarineWithStdin(const std::vector<std::string>& args,
                                   const std::string& stdin_text) {
    std::string script = "printf '%s' \"$SUBMARINE_TEST_STDIN\" | \"$0\" \"$@\"";
    std::vector<std::string> sh_args = {"-c", script, testing::BinDir() + "/submarine"};
    sh_args.insert(sh_args.end(), args.begin(), args.end());
    sh_args.push_back("--data-dir");
    sh_args.push_back(data_dir_);
    return Run("/bin/sh", sh_args, {{"SUBMARINE_TEST_STDIN", stdin_text}}, seconds(120));
  }

  CommandResult Run(const std::string& binary, const std::vector<std::string>& args,
                    std::map<std::string, std::string> env, seconds timeout) {
    env.emplace("SUBMARINE_SERVER", "");
    env.emplace("SUBMARINE_TOKEN", "");
    env.emplace("SUBMARINE_CONFIG_DIR", config_dir_);
    std::string log = absl::StrCat(log_dir_, "/cmd-", ++commands_, ".log");
    auto child = testing::ChildProcess::Start(binary, args, log, env);
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
  std::string config_dir_;
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

  // ---- security of a fresh installation ----
  const std::string password_file = data_dir_ + "/secrets/admin.password";
  std::string admin_password = PrintedAdminPassword(up.output);
  ASSERT_FALSE(admin_password.empty()) << "up prints the first admin password: " << up.output;
  EXPECT_NE(up.output.find(password_file), std::string::npos) << up.output;
  auto stored_password = config::ReadSecretFile(password_file);
  ASSERT_TRUE(stored_password.ok()) << stored_password.status();
  EXPECT_EQ(*stored_password, admin_password);
  EXPECT_EQ(Mode(data_dir_ + "/secrets"), 0700);
  for (const char* secret : {"admin.password", "gateway.secret", "signing.key", "master.key"}) {
    EXPECT_EQ(Mode(absl::StrCat(data_dir_, "/secrets/", secret)), 0600) << secret;
  }
  CommandResult again = Submarine({"local", "up", "--gateway-port", "0"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output.find(admin_password), std::string::npos)
      << "the password is shown only once: " << again.output;
  EXPECT_NE(again.output.find(password_file), std::string::npos) << again.output;

  auto readyz = http.Send("GET", "/readyz");
  ASSERT_TRUE(readyz.ok());
  EXPECT_EQ(readyz->status, 200) << "health needs no token";
  auto anonymous = http.Send("GET", "/v1/projects/default/environments");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401) << anonymous->body;
  EXPECT_EQ(json::parse(anonymous->body)["error"]["status"], "UNAUTHENTICATED");
  auto forged = http.Send("GET", "/v1/projects/default/environments", "",
                          {{"Authorization", "Bearer not.a.token"}});
  ASSERT_TRUE(forged.ok());
  EXPECT_EQ(forged->status, 401) << forged->body;
  auto wrong = http.Send("POST", "/v1/auth:login",
                         json{{"username", "admin"}, {"password", "not-the-password"}}.dump());
  ASSERT_TRUE(wrong.ok());
  EXPECT_EQ(wrong->status, 401) << wrong->body;

  auto login = http.Send("POST", "/v1/auth:login",
                         json{{"username", "admin"}, {"password", admin_password}}.dump());
  ASSERT_TRUE(login.ok());
  ASSERT_EQ(login->status, 200) << login->body;
  std::string access_token = json::parse(login->body)["accessToken"];
  ASSERT_FALSE(access_token.empty());
  const HttpHeaders auth = {{"Authorization", "Bearer " + access_token}};

  // ---- REST CRUD through the gateway ----
  json body = {{"displayName", "Test env"},
               {"image", "python:3.11-slim"},
               {"kernelSpec", {{"name", "python3"}, {"pipDependencies", {"pandas==2.1.0"}}}},
               {"labels", {{"team", "ml"}}}};
  auto created = http.Send("POST", "/v1/projects/default/environments?environmentId=rest-env",
                           body.dump(), auth);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_EQ(created->status, 200) << created->body;
  json env = json::parse(created->body);
  EXPECT_EQ(env["name"], "projects/default/environments/rest-env");
  EXPECT_EQ(env["image"], "python:3.11-slim");
  EXPECT_EQ(env["kernelSpec"]["pipDependencies"][0], "pandas==2.1.0");

  auto got = http.Send("GET", "/v1/projects/default/environments/rest-env", "", auth);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->status, 200) << got->body;
  EXPECT_EQ(json::parse(got->body)["labels"]["team"], "ml");

  auto listed = http.Send("GET", "/v1/projects/default/environments?pageSize=1000", "", auth);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->status, 200) << listed->body;
  std::set<std::string> names;
  json page = json::parse(listed->body);
  for (const auto& e : page["environments"]) names.insert(e["name"].get<std::string>());
  EXPECT_TRUE(names.count("projects/default/environments/rest-env")) << listed->body;

  json patch = {{"name", "projects/default/environments/rest-env"},
                {"displayName", "Renamed"},
                {"etag", env["etag"]}};
  auto updated =
      http.Send("PATCH", "/v1/projects/default/environments/rest-env?updateMask=displayName",
                patch.dump(), auth);
  ASSERT_TRUE(updated.ok());
  ASSERT_EQ(updated->status, 200) << updated->body;
  EXPECT_EQ(json::parse(updated->body)["displayName"], "Renamed");
  EXPECT_EQ(json::parse(updated->body)["image"], "python:3.11-slim");

  auto deleted = http.Send("DELETE", "/v1/projects/default/environments/rest-env", "", auth);
  ASSERT_TRUE(deleted.ok());
  ASSERT_EQ(deleted->status, 200) << deleted->body;
  EXPECT_EQ(json::parse(deleted->body)["environment"]["name"],
            "projects/default/environments/rest-env");
  auto gone = http.Send("GET", "/v1/projects/default/environments/rest-env", "", auth);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->status, 404) << gone->body;
  EXPECT_EQ(json::parse(gone->body)["error"]["status"], "NOT_FOUND") << gone->body;

  // ---- CLI login: a 0600 credentials file the other commands use ----
  CommandResult unauthenticated = Submarine({"environment", "list"});
  EXPECT_NE(unauthenticated.exit_code, 0);
  EXPECT_NE(unauthenticated.output.find("UNAUTHENTICATED"), std::string::npos)
      << unauthenticated.output;
  EXPECT_NE(unauthenticated.output.find("submarine login"), std::string::npos)
      << unauthenticated.output;
  CommandResult cli_login =
      SubmarineWithStdin({"login", "-u", "admin", "--password-stdin"}, admin_password + "\n");
  ASSERT_EQ(cli_login.exit_code, 0) << cli_login.output;
  EXPECT_EQ(cli_login.output.find(admin_password), std::string::npos) << cli_login.output;
  const std::string credentials = config_dir_ + "/credentials";
  EXPECT_EQ(Mode(credentials), 0600);
  EXPECT_EQ(Mode(config_dir_), 0700);
  auto credentials_json = json::parse(ReadAll(credentials), nullptr, false);
  ASSERT_TRUE(credentials_json.is_object());
  EXPECT_EQ(credentials_json["gateway"], gateway);
  EXPECT_EQ(credentials_json["username"], "admin");
  EXPECT_EQ(ReadAll(credentials).find(admin_password), std::string::npos);

  CommandResult whoami = Submarine({"whoami", "-o", "json"});
  ASSERT_EQ(whoami.exit_code, 0) << whoami.output;
  EXPECT_EQ(json::parse(whoami.output, nullptr, false)["name"], "users/admin") << whoami.output;

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

  // ---- experiment logs -f: one NDJSON stream, printed as the task writes, until it ends ----
  CommandResult follow =
      RunAndFollow("follow-me",
                   "meta:\n  name: follow\n  cmd: echo one; sleep 0.3; echo two\n"
                   "spec:\n  Worker: {replicas: 1}\n");
  ASSERT_EQ(follow.exit_code, 0) << follow.output;
  EXPECT_EQ(follow.output, "one\ntwo\n");

  // ---- permission commands: users, teams, projects, grants, tokens ----
  CommandResult bob = SubmarineWithStdin(
      {"user", "create", "bob", "--display-name", "Bob", "--password-stdin", "-o", "json"},
      "bobs-password-123\n");
  ASSERT_EQ(bob.exit_code, 0) << bob.output;
  EXPECT_EQ(json::parse(bob.output, nullptr, false)["name"], "users/bob") << bob.output;
  ASSERT_EQ(Submarine({"team", "create", "ml", "--display-name", "ML"}).exit_code, 0);
  CommandResult member = Submarine({"team", "add-member", "ml", "bob", "--role", "maintainer"});
  ASSERT_EQ(member.exit_code, 0) << member.output;
  CommandResult members = Submarine({"team", "members", "ml", "-o", "json"});
  ASSERT_EQ(members.exit_code, 0) << members.output;
  EXPECT_NE(members.output.find("users/bob"), std::string::npos) << members.output;
  CommandResult project = Submarine({"project", "create", "ml-work", "--owner", "teams/ml"});
  ASSERT_EQ(project.exit_code, 0) << project.output;
  CommandResult projects = Submarine({"project", "list"});
  ASSERT_EQ(projects.exit_code, 0) << projects.output;
  EXPECT_NE(projects.output.find("ml-work"), std::string::npos) << projects.output;
  CommandResult bad_role = Submarine({"project", "bind", "ml-work", "users/bob", "--role", "god"});
  EXPECT_NE(bad_role.exit_code, 0);
  EXPECT_NE(bad_role.output.find("INVALID_ARGUMENT"), std::string::npos) << bad_role.output;

  CommandResult token = Submarine({"token", "create", "--display-name", "ci", "-o", "json"});
  ASSERT_EQ(token.exit_code, 0) << token.output;
  json token_json = json::parse(token.output, nullptr, false);
  ASSERT_TRUE(token_json.is_object()) << token.output;
  std::string api_token = token_json.value("secret", "");
  ASSERT_FALSE(api_token.empty()) << token.output;

  // SUBMARINE_TOKEN alone (no credentials file) authenticates the CLI.
  std::map<std::string, std::string> token_env = {{"SUBMARINE_TOKEN", api_token},
                                                  {"SUBMARINE_CONFIG_DIR", log_dir_ + "/none"}};
  CommandResult with_token = Submarine({"whoami", "-o", "json"}, token_env);
  ASSERT_EQ(with_token.exit_code, 0) << with_token.output;
  EXPECT_EQ(json::parse(with_token.output, nullptr, false)["name"], "users/admin");
  CommandResult token_list = Submarine({"environment", "list", "-o", "json"}, token_env);
  EXPECT_EQ(token_list.exit_code, 0) << token_list.output;
  CommandResult bogus = Submarine({"environment", "list"}, {{"SUBMARINE_TOKEN", "bogus"}});
  EXPECT_NE(bogus.exit_code, 0) << "an invalid SUBMARINE_TOKEN wins over the stored login";
  EXPECT_NE(bogus.output.find("UNAUTHENTICATED"), std::string::npos) << bogus.output;

  CommandResult logout = Submarine({"logout"});
  ASSERT_EQ(logout.exit_code, 0) << logout.output;
  EXPECT_FALSE(fs::exists(credentials));
  EXPECT_NE(Submarine({"whoami"}).exit_code, 0) << "logged out";

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
  EXPECT_EQ(process_names, (std::set<std::string>{"postgres", "eventbus", "permission",
                                                  "environment", "experiment", "gateway"}));

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
        auto l = http.Send("GET", "/v1/projects/default/environments", "", auth);
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

// kill -9 of the stack's postmaster while a backend still holds its shared memory: the
// supervisor restarts PostgreSQL on its first attempt (no stale-lock failures), counts the
// restart in `local status`, never runs or quotes initdb again, and the services serve again.
TEST_F(LocalStackTest, KilledPostgresRestartsOnTheFirstAttemptAndIsCounted) {
  CommandResult up = Submarine({"local", "up", "--gateway-port", "0"});
  ASSERT_EQ(up.exit_code, 0) << up.output << "\nsupervisor log:\n"
                             << testing::Tail(data_dir_ + "/logs/supervisor.log");
  json state = State();
  ASSERT_EQ(state["phase"], "running") << state.dump(2);
  const pid_t postmaster = state["postgres"]["pid"].get<pid_t>();
  ASSERT_GT(postmaster, 0) << state.dump(2);
  EXPECT_EQ(state["postgres"]["restarts"], 0) << state.dump(2);
  const std::string supervisor_log = data_dir_ + "/logs/supervisor.log";
  const size_t log_before = ReadAll(supervisor_log).size();

  // A backend busy in a loop keeps the dead postmaster's shared memory attached for 4 s after
  // the kill: PostgreSQL refuses to start until it lets go (busy_backend.h).
  const std::string conninfo =
      absl::StrCat("host=", data_dir_, "/postgres/run port=", state["postgres"]["port"].get<int>(),
                   " user=postgres dbname=postgres");
  auto busy = testing::BusyBackend::Start(conninfo, seconds(4));
  ASSERT_TRUE(busy.ok()) << busy.status();
  ASSERT_EQ(::kill(postmaster, SIGKILL), 0);

  // Back within a bound: a new postmaster recorded, and the gateway ready again.
  HttpClient http(state["gatewayUrl"].get<std::string>());
  bool back = testing::WaitFor(
      [&] {
        json now = State();
        if (!now.is_object()) return false;
        pid_t pid = now["postgres"]["pid"].get<pid_t>();
        if (pid <= 0 || pid == postmaster || !Alive(pid)) return false;
        auto r = http.Send("GET", "/readyz");
        return r.ok() && r->status == 200;
      },
      seconds(60));
  std::string log = ReadAll(supervisor_log).substr(log_before);
  ASSERT_TRUE(back) << "PostgreSQL not back; supervisor log since the kill:\n" << log;

  EXPECT_EQ(State()["postgres"]["restarts"], 1) << "one restart, on the first attempt:\n" << log;
  EXPECT_EQ(log.find("restarting PostgreSQL:"), std::string::npos) << "a failed attempt:\n" << log;
  for (const char* initdb :
       {"The files belonging to this database system", "initdb", "Success. You can now start"}) {
    EXPECT_EQ(log.find(initdb), std::string::npos) << initdb << " in:\n" << log;
  }
  CommandResult status = Submarine({"local", "status", "-o", "json"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  json health = json::parse(status.output, nullptr, false);
  ASSERT_TRUE(health.is_object()) << status.output;
  bool found = false;
  for (const auto& p : health["processes"]) {
    if (p["name"] != "postgres") continue;
    found = true;
    EXPECT_EQ(p["restarts"], 1) << p.dump();
    EXPECT_EQ(p["ready"], true) << p.dump();
  }
  EXPECT_TRUE(found) << status.output;
  CommandResult table = Submarine({"local", "status"});
  EXPECT_NE(table.output.find("RESTARTS"), std::string::npos) << table.output;

  CommandResult down = Submarine({"local", "down"});
  ASSERT_EQ(down.exit_code, 0) << down.output;
  EXPECT_TRUE(LiveProcessesMentioning(data_dir_).empty());
}

// An administrator adds a Kubernetes cluster (the fake API server, whose kubelet runs pods as
// local processes) with one CLI command: its kubeconfig becomes a platform credential, the
// cluster a computeClusters/ record, and the experiment service builds its backend from both,
// so an experiment naming the cluster runs there. Users read clusters but may not manage them
// nor platform credentials.
TEST_F(LocalStackTest, AnAdminAddsAKubernetesClusterAndExperimentsRunOnIt) {
  // Tasks' identity tokens live 4 s (renewed every 2 s), so that a task outlives its first one.
  CommandResult up = Submarine({"local", "up", "--gateway-port", "0"},
                               {{"SUBMARINE_IDENTITY_TOKEN_TTL", "4"}});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  const std::string admin_password = PrintedAdminPassword(up.output);
  ASSERT_EQ(SubmarineWithStdin({"login", "-u", "admin", "--password-stdin"}, admin_password + "\n")
                .exit_code,
            0);

  testing::FakeKubeOptions options;
  options.work_dir = log_dir_ + "/kubelet";
  options.bearer_token = "local-stack-k8s-token";
  fs::create_directories(options.work_dir);
  auto kube = testing::FakeKubeApiServer::Start(options);
  ASSERT_TRUE(kube.ok()) << kube.status();
  ASSERT_TRUE((*kube)
                  ->Create("/api/v1/namespaces", {{"apiVersion", "v1"},
                                                  {"kind", "Namespace"},
                                                  {"metadata", {{"name", "ml-jobs"}}}})
                  .ok());
  const std::string kubeconfig = log_dir_ + "/kubeconfig";
  ASSERT_TRUE((*kube)->WriteKubeconfig(kubeconfig, "ml-jobs").ok());

  CommandResult builtin = Submarine({"cluster", "list", "-o", "json"});
  ASSERT_EQ(builtin.exit_code, 0) << builtin.output;
  json listed = json::parse(builtin.output, nullptr, false);
  ASSERT_TRUE(listed.is_array()) << builtin.output;
  ASSERT_EQ(listed.size(), 1u) << builtin.output;
  EXPECT_EQ(listed[0]["name"], "computeClusters/local");

  CommandResult created =
      Submarine({"cluster", "create", "k8s", "--kubernetes", "--kubeconfig", kubeconfig,
                 "--namespace", "ml-jobs", "--default-image", "registry.example/train:1",
                 "--capacity", "cpu=4", "-o", "json"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  json cluster = json::parse(created.output, nullptr, false);
  EXPECT_EQ(cluster["kind"], "kubernetes") << created.output;
  EXPECT_EQ(cluster["kubernetes"]["kubeconfigCredential"], "platform/credentials/k8s-kubeconfig");
  EXPECT_EQ(created.output.find("local-stack-k8s-token"), std::string::npos)
      << "the kubeconfig never comes back";
  CommandResult secrets = Submarine({"credential", "list", "--platform", "-o", "json"});
  ASSERT_EQ(secrets.exit_code, 0) << secrets.output;
  EXPECT_EQ(json::parse(secrets.output, nullptr, false)[0]["type"], "kubeconfig") << secrets.output;
  CommandResult table = Submarine({"cluster", "list"});
  EXPECT_NE(table.output.find("platform/credentials/k8s-kubeconfig ns=ml-jobs"), std::string::npos)
      << table.output;

  // The project's default cluster takes the experiments whose spec names none.
  CommandResult bad_default =
      Submarine({"project", "update", "default", "--default-cluster", "No Such"});
  EXPECT_NE(bad_default.exit_code, 0);
  EXPECT_NE(bad_default.output.find("project.default_compute_cluster"), std::string::npos)
      << bad_default.output;
  CommandResult with_default =
      Submarine({"project", "update", "default", "--default-cluster", "k8s", "-o", "json"});
  ASSERT_EQ(with_default.exit_code, 0) << with_default.output;
  EXPECT_EQ(json::parse(with_default.output, nullptr, false)["defaultComputeCluster"],
            "computeClusters/k8s")
      << with_default.output;
  CommandResult follow = RunAndFollow("on-k8s",
                                      "meta:\n  name: on-k8s\n  cmd: echo hello from the cluster\n"
                                      "spec:\n  Worker: {replicas: 1, resources: cpu=1}\n");
  ASSERT_EQ(follow.exit_code, 0) << follow.output;
  CommandResult back_to_local =
      Submarine({"project", "update", "default", "--default-cluster", ""});
  ASSERT_EQ(back_to_local.exit_code, 0) << back_to_local.output;
  EXPECT_EQ(follow.output, "hello from the cluster\n");
  CommandResult got = Submarine({"experiment", "get", "on-k8s", "-o", "json"});
  json experiment = json::parse(got.output, nullptr, false);
  EXPECT_EQ(experiment["state"], "SUCCEEDED") << got.output;
  EXPECT_EQ(experiment["reproducibility"]["backend"], "kubernetes") << got.output;

  // Workload identity: a task reaches the platform with `import submarine` and its own token,
  // which is limited to the experiment's project, renewed at half its life while the task runs
  // (the first one revoked then) and revoked when the attempt ends.
  const std::string script = log_dir_ + "/identity.py";
  std::ofstream(script) << R"(import os
import submarine
from submarine import PermissionDenied
client = submarine.Client()
me = client.experiments.get(os.environ["SUBMARINE_EXPERIMENT"])
print("sees itself:", me.uid == os.environ["SUBMARINE_EXPERIMENT_UID"])
try:
    submarine.Client(project="elsewhere").environments.list_page()
    print("other project: allowed")
except PermissionDenied as err:
    print("other project:", err.reason)
try:
    client.tokens.create("escape", ttl_seconds=60)
    print("new token: allowed")
except PermissionDenied as err:
    print("new token:", err.reason)
import time
from submarine import Unauthenticated
first = os.environ["SUBMARINE_TOKEN"]
started, first_refused, calls = time.monotonic(), "", True
while time.monotonic() - started < 9:  # past twice a token's life
    calls = calls and client.experiments.get(os.environ["SUBMARINE_EXPERIMENT"]).uid == me.uid
    if not first_refused:
        try:
            submarine.Client(token=first).experiments.get(os.environ["SUBMARINE_EXPERIMENT"])
        except Unauthenticated as err:
            first_refused = err.reason
    time.sleep(0.2)
with open(os.path.join(os.environ["SUBMARINE_SECRETS_DIR"], "SUBMARINE_TOKEN")) as f:
    print("renewed:", f.read() != first)
print("first token:", first_refused)
print("calls all along:", calls)
)";
  CommandResult identity =
      RunAndFollow("identity", absl::StrCat("meta:\n  name: identity\n  cmd: /usr/bin/python3 ",
                                            script, "\nspec:\n  Worker: {replicas: 1}\n"));
  EXPECT_EQ(identity.output,
            "sees itself: True\nother project: TOKEN_SCOPE\nnew token: TOKEN_SCOPE\n"
            "renewed: True\nfirst token: TOKEN_REVOKED\ncalls all along: True\n");
  CommandResult described = Submarine({"experiment", "get", "identity", "-o", "json"});
  const std::string token_name =
      json::parse(described.output, nullptr, false).value("workloadToken", "");
  ASSERT_FALSE(token_name.empty()) << described.output;
  CommandResult tokens = Submarine({"token", "list", "-o", "json"});
  bool revoked = false;
  for (const auto& t : json::parse(tokens.output, nullptr, false)) {
    if (t.value("name", "") != token_name) continue;
    EXPECT_EQ(t.value("scope", ""), "projects/default") << t.dump();
    EXPECT_TRUE(t.contains("expireTime")) << t.dump();
    revoked = t.contains("revokeTime");
  }
  EXPECT_TRUE(revoked) << token_name << " in " << tokens.output;

  // Over the capacity: refused when submitted, naming the field.
  const std::string spec = log_dir_ + "/too-big.yaml";
  std::ofstream(spec) << "meta:\n  name: too-big\n  cmd: 'true'\n"
                         "computeCluster: k8s\nspec:\n  Worker: {replicas: 5, resources: cpu=1}\n";
  CommandResult too_big = Submarine({"experiment", "run", "-f", spec});
  EXPECT_NE(too_big.exit_code, 0);
  EXPECT_NE(too_big.output.find("experiment.spec.compute_cluster"), std::string::npos)
      << too_big.output;

  // A user reads clusters but manages neither them nor the platform's credentials.
  ASSERT_EQ(
      SubmarineWithStdin({"user", "create", "carol", "--password-stdin"}, "carols-password-123\n")
          .exit_code,
      0);
  ASSERT_EQ(
      SubmarineWithStdin({"login", "-u", "carol", "--password-stdin"}, "carols-password-123\n")
          .exit_code,
      0);
  CommandResult seen = Submarine({"cluster", "get", "k8s", "-o", "json"});
  ASSERT_EQ(seen.exit_code, 0) << seen.output;
  CommandResult denied = Submarine(
      {"cluster", "create", "mine", "--yarn", "--rm-url", "http://rm:8088", "--yarn-user", "c"});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_NE(denied.output.find("PERMISSION_DENIED"), std::string::npos) << denied.output;
  CommandResult no_delete = Submarine({"cluster", "delete", "k8s"});
  EXPECT_NE(no_delete.output.find("PERMISSION_DENIED"), std::string::npos) << no_delete.output;
  CommandResult no_secrets = Submarine({"credential", "list", "--platform"});
  EXPECT_NE(no_secrets.output.find("PERMISSION_DENIED"), std::string::npos) << no_secrets.output;

  ASSERT_EQ(Submarine({"local", "down"}).exit_code, 0);
}

}  // namespace
}  // namespace submarine::cli
