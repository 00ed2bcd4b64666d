#include "clients/cli/stack_supervisor.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "clients/cli/database_provisioner.h"
#include "clients/cli/processes.h"
#include "common/config/config.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr int kMaxCrashesBeforeReady = 3;
constexpr milliseconds kReadyPollInterval(20);
constexpr milliseconds kIdleInterval(1000);

std::shared_ptr<spdlog::logger> Log() { return log::Get("supervisor"); }

sigset_t SupervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, sig);
  return set;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with code ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("was killed by signal ", WTERMSIG(status));
  return "stopped";
}

const char* StateName(int state) {
  static constexpr const char* kNames[] = {"pending", "starting", "ready", "backoff", "stopped"};
  return kNames[state];
}

void AppendLine(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  out << "=== " << stamp << " supervisor: " << line << " ===\n";
}

}  // namespace

StackSupervisor::StackSupervisor(SupervisorOptions options)
    : options_(std::move(options)),
      paths_(options_.data_dir),
      cluster_(db::PostgresCluster::Options{paths_.PostgresDir(), 0, true, "postgres"}) {}

absl::Status StackSupervisor::Run() {
  sigset_t set = SupervisedSignals();
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  phase_ = kPhaseStarting;
  absl::Status status = paths_.CreateDirectories();
  WriteState(kPhaseStarting);
  // Before any process starts: each one's config names this file.
  if (status.ok()) status = EnsureGatewaySecret(paths_.GatewaySecretFile());
  if (status.ok()) status = StartDatabase();
  if (status.ok()) {
    StackPlanOptions plan_options;
    plan_options.bin_dir = options_.bin_dir;
    plan_options.gateway_port = options_.gateway_port;
    plan_options.postgres_port = cluster_.port();
    // Tasks install an environment's pip dependencies from where pip would for the user who
    // started the stack.
    for (auto [name, value] : {std::pair{"PIP_INDEX_URL", &plan_options.pip_index_url},
                               std::pair{"PIP_FIND_LINKS", &plan_options.pip_find_links}}) {
      if (const char* set = std::getenv(name)) *value = set;
    }
    // How long tasks' identity tokens live (renewed at half-life while they run).
    if (const char* ttl = std::getenv("SUBMARINE_IDENTITY_TOKEN_TTL")) {
      if (!absl::SimpleAtoi(ttl, &plan_options.identity_token_ttl_seconds)) {
        status = InvalidField("SUBMARINE_IDENTITY_TOKEN_TTL",
                              absl::StrCat("\"", QuoteInput(ttl), "\" is not a number of seconds"));
      }
    }
    auto plan = BuildStackPlan(paths_, plan_options);
    if (plan.ok() && status.ok()) status = WriteConfigs(*plan);
    if (!plan.ok()) status = plan.status();
    if (status.ok()) {
      gateway_url_ = plan->gateway_url;
      for (ProcessPlan& p : plan->processes) children_.push_back(Child{std::move(p)});
      status = Supervise();
    }
  }
  if (!status.ok()) Log()->error("start-up failed: {}", Message(status));

  stopping_ = true;
  phase_ = kPhaseStopping;
  WriteState(kPhaseStopping, status.ok() ? "" : Message(status));
  StopChildren();
  absl::Status db_stop = cluster_.Stop();
  if (!db_stop.ok()) Log()->error("stopping PostgreSQL: {}", Message(db_stop));
  phase_ = status.ok() ? kPhaseStopped : kPhaseFailed;
  WriteState(phase_, status.ok() ? "" : Message(status));
  Log()->info("stopped");
  return status;
}

absl::Status StackSupervisor::StartDatabase() {
  SUBMARINE_RETURN_IF_ERROR(cluster_.InitIfNeeded());
  if (cluster_.Running()) {
    // Left over by a supervisor that died without stopping it; its port is unknown.
    Log()->warn("PostgreSQL from an earlier run is still up; restarting it");
    SUBMARINE_RETURN_IF_ERROR(cluster_.Stop());
  }
  SUBMARINE_RETURN_IF_ERROR(cluster_.Start());
  Log()->info("PostgreSQL listening on 127.0.0.1:{}", cluster_.port());
  std::vector<ServiceRole> roles;
  for (const ServiceDefinition& s : LocalStackServices()) {
    roles.push_back(
        {RoleForSchema(s.schema), s.schema, paths_.PasswordFile(RoleForSchema(s.schema))});
  }
  return ProvisionDatabase(cluster_, kStackDatabase, roles);
}

absl::Status StackSupervisor::Supervise() {
  const auto startup_deadline = steady_clock::now() + options_.startup_timeout;
  auto next_db_check = steady_clock::now() + kIdleInterval;
  while (!stop_requested_) {
    ReapChildren();
    auto now = steady_clock::now();
    bool predecessors_ready = true;
    for (Child& child : children_) {
      bool due = (child.state == ChildState::kPending && predecessors_ready) ||
                 (child.state == ChildState::kBackoff && now >= child.next_start);
      if (due) SUBMARINE_RETURN_IF_ERROR(StartChild(child));
      if (child.state == ChildState::kStarting) CheckReady(child);
      if (child.state == ChildState::kStarting && !child.kill_sent &&
          now - child.started >= options_.startup_timeout) {
        // Hung before serving: kill it; ReapChildren() schedules the restart.
        Log()->error(
            "{} (pid {}) not ready after {} s; killing it", child.plan.name, child.pid,
            std::chrono::duration_cast<std::chrono::seconds>(options_.startup_timeout).count());
        ::kill(child.pid, SIGKILL);
        child.kill_sent = true;
      }
      if (child.state != ChildState::kReady) predecessors_ready = false;
    }

    if (phase_ == kPhaseStarting) {
      if (predecessors_ready) {
        phase_ = kPhaseRunning;
        Log()->info("all processes ready; gateway at {}", gateway_url_);
      }
      for (const Child& child : children_) {
        if (child.crashes_before_ready >= kMaxCrashesBeforeReady) {
          return Unavailable(absl::StrCat(child.plan.name, " exited ", child.crashes_before_ready,
                                          " times before becoming ready; last lines of ",
                                          child.plan.log_file, ":\n",
                                          FileTail(child.plan.log_file, 1500)));
        }
      }
      if (phase_ == kPhaseStarting && now >= startup_deadline) {
        std::string waiting;
        for (const Child& child : children_) {
          if (child.state != ChildState::kReady) waiting = child.plan.name;
        }
        return absl::DeadlineExceededError(
            absl::StrCat("the stack did not become ready in time (waiting for ", waiting, "); see ",
                         paths_.LogDir()));
      }
    }
    if (now >= next_db_check) {
      CheckDatabase();
      next_db_check = steady_clock::now() + kIdleInterval;
    }
    WriteState(phase_);

    milliseconds timeout = kIdleInterval;
    now = steady_clock::now();
    for (const Child& child : children_) {
      if (child.state == ChildState::kStarting) timeout = std::min(timeout, kReadyPollInterval);
      if (child.state == ChildState::kBackoff) {
        auto until = std::chrono::duration_cast<milliseconds>(child.next_start - now);
        timeout = std::min(timeout, std::max(until, milliseconds(1)));
      }
    }
    WaitForSignal(timeout);
  }
  Log()->info("stop requested");
  return absl::OkStatus();
}

absl::Status StackSupervisor::StartChild(Child& child) {
  std::error_code ec;
  std::filesystem::remove(child.plan.ready_file, ec);
  AppendLine(child.plan.log_file, child.restarts == 0
                                      ? "starting"
                                      : absl::StrCat("restarting (restart ", child.restarts, ")"));
  auto pid = SpawnProcess(SpawnOptions{child.plan.Argv(), child.plan.log_file,
                                       /*new_session=*/false, /*parent_death_signal=*/SIGTERM});
  if (!pid.ok()) return pid.status();
  child.pid = *pid;
  child.state = ChildState::kStarting;
  child.kill_sent = false;
  child.started = steady_clock::now();
  child.ready = nullptr;
  Log()->info("started {} (pid {})", child.plan.name, child.pid);
  return absl::OkStatus();
}

void StackSupervisor::CheckReady(Child& child) {
  auto text = config::ReadFile(child.plan.ready_file);
  if (!text.ok()) return;
  nlohmann::json ready = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!ready.is_object()) return;
  if (ready.contains("pid") && ready["pid"].is_number_integer() &&
      ready["pid"].get<pid_t>() != child.pid) {
    return;  // written by an earlier incarnation
  }
  child.ready = std::move(ready);
  child.state = ChildState::kReady;
  child.ready_since = steady_clock::now();
  child.crashes_before_ready = 0;
  Log()->info("{} is ready (pid {})", child.plan.name, child.pid);
}

void StackSupervisor::CheckDatabase() {
  if (cluster_.Running()) return;
  // Counted per attempt, like a supervised process' restarts; Start() clears what the dead
  // postmaster left (its lock file, once its backends have let go of the shared memory), so the
  // first attempt after a crash succeeds.
  ++postgres_restarts_;
  Log()->error("PostgreSQL (pid {}) is not running; restarting it on port {} (restart {})",
               cluster_.PostmasterPid(), cluster_.port(), postgres_restarts_);
  absl::Status st = cluster_.Start();
  if (!st.ok()) {
    Log()->error("restarting PostgreSQL: {}", Message(st));
    return;
  }
  Log()->info("PostgreSQL is back (pid {})", cluster_.PostmasterPid());
}

void StackSupervisor::WaitForSignal(milliseconds timeout) {
  sigset_t set = SupervisedSignals();
  timespec ts{static_cast<time_t>(timeout.count() / 1000),
              static_cast<long>((timeout.count() % 1000) * 1000000)};
  int sig = ::sigtimedwait(&set, nullptr, &ts);
  if (sig == SIGTERM || sig == SIGINT) stop_requested_ = true;
  ReapChildren();
}

void StackSupervisor::ReapChildren() {
  int status = 0;
  pid_t pid;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    auto it = std::find_if(children_.begin(), children_.end(),
                           [pid](const Child& c) { return c.pid == pid; });
    if (it == children_.end()) continue;
    Child& child = *it;
    auto now = steady_clock::now();
    bool was_ready = child.state == ChildState::kReady;
    child.pid = 0;
    child.ready = nullptr;
    if (stopping_) {
      child.state = ChildState::kStopped;
      Log()->info("{} {}", child.plan.name, DescribeExit(status));
      continue;
    }
    bool stable = was_ready && now - child.ready_since >= options_.stable_after;
    if (!was_ready) ++child.crashes_before_ready;
    child.backoff = (stable || child.backoff.count() == 0)
                        ? options_.initial_backoff
                        : std::min(child.backoff * 2, options_.max_backoff);
    ++child.restarts;
    child.state = ChildState::kBackoff;
    child.next_start = now + child.backoff;
    AppendLine(child.plan.log_file, absl::StrCat("process ", pid, " ", DescribeExit(status)));
    Log()->warn("{} (pid {}) {}; restarting in {} ms", child.plan.name, pid, DescribeExit(status),
                child.backoff.count());
  }
}

void StackSupervisor::StopChildren() {
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) {
    Child& child = *it;
    if (child.pid > 0) {
      pid_t pid = child.pid;
      Log()->info("stopping {} (pid {})", child.plan.name, pid);
      ::kill(pid, SIGTERM);
      auto deadline = steady_clock::now() + options_.stop_grace;
      while (child.pid > 0 && steady_clock::now() < deadline) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - steady_clock::now());
        WaitForSignal(std::max(std::min(left, kIdleInterval), milliseconds(1)));
      }
      if (child.pid > 0) {
        Log()->warn("{} (pid {}) ignored SIGTERM; killing it", child.plan.name, pid);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        child.pid = 0;
      }
    }
    child.state = ChildState::kStopped;
    WriteState(kPhaseStopping);
  }
}

void StackSupervisor::WriteState(const std::string& phase, const std::string& error) {
  StackState state;
  state.phase = phase;
  state.error = error;
  state.supervisor_pid = ::getpid();
  state.data_dir = paths_.data_dir();
  state.gateway_url = gateway_url_;
  state.postgres_port = cluster_.port();
  state.postgres_pid = cluster_.Running() ? cluster_.PostmasterPid() : 0;
  state.postgres_restarts = postgres_restarts_;
  for (const Child& child : children_) {
    state.processes.push_back(ProcessState{child.plan.name, child.pid,
                                           StateName(static_cast<int>(child.state)), child.restarts,
                                           child.ready, child.plan.log_file});
  }
  std::string text = StackStateToJson(state).dump();
  if (text == last_state_) return;
  absl::Status st = WriteStackState(paths_.StateFile(), state);
  if (!st.ok()) {
    Log()->error("writing {}: {}", paths_.StateFile(), Message(st));
    return;
  }
  last_state_ = std::move(text);
}

}  // namespace submarine::cli
