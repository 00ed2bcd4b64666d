#include "tests/support/process.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config/config.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "common/util/wait.h"

namespace submarine::testing {
namespace fs = std::filesystem;

std::string BinDir() { return SUBMARINE_BIN_DIR; }

std::string MakeTempDir(const std::string& prefix) {
  auto dir = fs::temp_directory_path() /
             absl::StrCat(prefix, "-", IdGenerator::Secure().RandomHex(6));
  fs::create_directories(dir);
  return dir.string();
}

bool WaitFor(const std::function<bool()>& ready, std::chrono::milliseconds timeout) {
  return WaitUntil(ready, timeout);
}

ChildProcess::ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_), exit_code_(o.exit_code_) {
  o.pid_ = -1;
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    Kill();
    pid_ = o.pid_;
    exit_code_ = o.exit_code_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

absl::StatusOr<ChildProcess> ChildProcess::Start(const std::string& binary,
                                                 const std::vector<std::string>& args,
                                                 const std::string& log_file,
                                                 const std::map<std::string, std::string>& env) {
  std::string path = binary.find('/') == std::string::npos ? BinDir() + "/" + binary : binary;
  std::vector<std::string> argv_s = {path};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  pid_t pid = ::fork();
  if (pid < 0) return Internal("fork failed");
  if (pid == 0) {
    // A child never outlives the test that started it, even if the test crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(path.c_str(), argv.data());
    ::_exit(127);
  }
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

bool ChildProcess::running() {
  if (pid_ <= 0) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == 0) return true;
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
  }
  return false;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_code_;
  if (!WaitFor([this] { return !running(); }, timeout)) {
    DumpStacks();
    return -1;
  }
  return exit_code_;
}

void ChildProcess::DumpStacks() {
  // A child that outlived its deadline is a hang to diagnose: print every thread's stack (with
  // gdb, when installed) to this test's output before the caller gives up on it.
  std::fprintf(stderr, "process %d did not exit in time; its threads:\n", pid_);
  std::fflush(stderr);
  std::string command = absl::StrCat(
      "command -v gdb >/dev/null && gdb -p ", pid_,
      " -batch -nx -ex 'set pagination off' -ex 'thread apply all bt' >&2 2>/dev/null "
      "|| echo '(gdb is not installed: no stacks)' 1>&2");
  int rc = std::system(command.c_str());
  (void)rc;
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  exit_code_ = 128 + SIGKILL;
  pid_ = -1;
}

std::string Tail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  return s.size() > max_bytes ? s.substr(s.size() - max_bytes) : s;
}

std::string NestCommonConfig(const std::string& yaml) {
  static const std::set<std::string> kCommon = {
      "server", "database", "events", "permission", "peers", "request_id_retention_hours",
      "housekeeping_interval_ms"};
  std::string own, common;
  bool in_common = false;
  std::vector<std::string> lines = absl::StrSplit(yaml, '\n');
  for (const std::string& line : lines) {
    if (!line.empty() && line[0] != ' ' && line[0] != '#' && line[0] != '-') {
      in_common = kCommon.count(line.substr(0, line.find(':'))) > 0;
    }
    if (line.empty()) continue;
    if (in_common) {
      absl::StrAppend(&common, "  ", line, "\n");
    } else {
      absl::StrAppend(&own, line, "\n");
    }
  }
  return common.empty() ? own : absl::StrCat(own, "common:\n", common);
}

absl::StatusOr<ChildProcess> StartService(const std::string& binary, const std::string& dir,
                                          const std::string& name, std::string config_yaml,
                                          ReadyInfo* ready) {
  std::string ready_file = absl::StrCat(dir, "/", name, ".ready");
  std::string log_file = absl::StrCat(dir, "/", name, ".log");
  std::error_code ec;
  fs::remove(ready_file, ec);
  // The ready file goes under the `server:` block, which every process config has.
  auto pos = config_yaml.find("server:\n");
  if (pos == std::string::npos) {
    config_yaml += absl::StrCat("\nserver:\n  ready_file: ", ready_file, "\n");
  } else {
    config_yaml.insert(pos + 8, absl::StrCat("  ready_file: ", ready_file, "\n"));
  }
  if (!binary.starts_with("submarine-gateway") && binary != "submarine-eventbus") {
    config_yaml = NestCommonConfig(config_yaml);
  }
  std::string config_path = absl::StrCat(dir, "/", name, ".yaml");
  SUBMARINE_RETURN_IF_ERROR(config::WriteFileAtomic(config_path, config_yaml));
  SUBMARINE_ASSIGN_OR_RETURN(ChildProcess child,
                             ChildProcess::Start(binary, {"--config", config_path}, log_file));
  bool ok = WaitFor([&] { return fs::exists(ready_file) || !child.running(); },
                    std::chrono::seconds(60));
  if (!ok || !fs::exists(ready_file)) {
    return Internal(absl::StrCat(name, " did not become ready; log:\n", Tail(log_file)));
  }
  auto text = config::ReadFile(ready_file);
  if (!text.ok()) return text.status();
  auto j = nlohmann::json::parse(*text);
  if (ready) {
    ready->grpc = j.value("grpc", "");
    ready->metrics = j.value("metrics", "");
    ready->http = j.value("http", "");
  }
  return child;
}

absl::StatusOr<EventBus> StartEventBus(const std::string& dir) {
  EventBus bus;
  SUBMARINE_ASSIGN_OR_RETURN(
      bus.process,
      StartService("submarine-eventbus", dir, "eventbus",
                   "frontend: tcp://127.0.0.1:0\nbackend: tcp://127.0.0.1:0\nserver: {}\n",
                   nullptr));
  SUBMARINE_ASSIGN_OR_RETURN(std::string text, config::ReadFile(dir + "/eventbus.ready"));
  auto ready = nlohmann::json::parse(text, nullptr, false);
  bus.frontend = ready.value("frontend", "");
  bus.backend = ready.value("backend", "");
  if (bus.frontend.empty() || bus.backend.empty()) {
    return Internal(absl::StrCat("the event bus's ready file names no endpoints: ", text));
  }
  return bus;
}

}  // namespace submarine::testing
