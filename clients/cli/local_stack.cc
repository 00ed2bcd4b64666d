#include "clients/cli/local_stack.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "clients/cli/http_client.h"
#include "clients/cli/processes.h"
#include "clients/cli/stack_paths.h"
#include "clients/cli/stack_plan.h"
#include "common/config/config.h"
#include "common/db/postgres_cluster.h"
#include "common/net/address.h"
#include "common/status/status.h"

namespace submarine::cli {
namespace fs = std::filesystem;
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kSupervisorStopTimeout(90000);
constexpr milliseconds kLeftoverGrace(10000);

long GatewayReadyz(const std::string& gateway_url) {
  if (gateway_url.empty()) return 0;
  HttpClient client(gateway_url, std::chrono::seconds(2));
  auto response = client.Send("GET", "/readyz");
  return response.ok() ? response->status : 0;
}

// Binaries the stack needs, missing from `bin_dir`.
std::vector<std::string> MissingBinaries(const std::string& bin_dir) {
  std::vector<std::string> names = {"submarine-eventbus", "submarine-gateway"};
  for (const ServiceDefinition& s : LocalStackServices()) names.push_back(s.binary);
  std::vector<std::string> missing;
  for (const auto& name : names) {
    if (::access(absl::StrCat(bin_dir, "/", name).c_str(), X_OK) != 0) missing.push_back(name);
  }
  return missing;
}

// Stops processes of the stack in `data_dir` that outlived their supervisor: pids recorded in the
// state file whose command line still names the data dir, and any process started with a config
// from the data dir. Returns how many it stopped.
int StopLeftovers(const StackPaths& paths, const StackState* state) {
  std::set<pid_t> pids;
  if (state != nullptr) {
    for (const ProcessState& p : state->processes) {
      if (ProcessAlive(p.pid) &&
          ProcessCmdline(p.pid).find(paths.data_dir()) != std::string::npos) {
        pids.insert(p.pid);
      }
    }
  }
  // Only our own processes of this stack: a submarine-* binary started with `--config` from
  // this data dir (never, say, an editor or `tail -f` that happens to name a config file).
  const std::string config_arg = "--config " + paths.ConfigDir() + "/";
  for (pid_t pid : ProcessesMentioning(config_arg)) {
    std::string cmdline = ProcessCmdline(pid);
    std::string argv0 = cmdline.substr(0, cmdline.find(' '));
    std::string base = argv0.substr(argv0.rfind('/') + 1);
    if (base.rfind("submarine-", 0) == 0) pids.insert(pid);
  }
  for (pid_t pid : pids) ::kill(pid, SIGTERM);
  for (pid_t pid : pids) TerminateProcess(pid, kLeftoverGrace);
  return static_cast<int>(pids.size());
}

std::string ProcessAddress(const ProcessState& p) {
  const nlohmann::json& r = p.ready;
  if (!r.is_object()) return "";
  auto get = [&r](const char* key) {
    return r.contains(key) && r[key].is_string() ? r[key].get<std::string>() : std::string();
  };
  if (!get("http").empty()) {
    std::string grpc = get("grpc");
    return grpc.empty() ? "http://" + get("http")
                        : absl::StrCat("http://", get("http"), ", grpc ", grpc);
  }
  if (!get("frontend").empty()) {
    return absl::StrCat("grpc ", get("grpc"), ", pub ", get("frontend"), ", sub ", get("backend"));
  }
  return get("grpc").empty() ? "" : "grpc " + get("grpc");
}

}  // namespace

void ReportAdminPassword(const StackPaths& paths, std::ostream& out) {
  const std::string file = paths.AdminPasswordFile();
  auto password = config::ReadSecretFile(file);
  if (!password.ok() || password->empty()) return;  // not written yet, or removed by its owner
  std::error_code ec;
  if (fs::exists(paths.AdminPasswordShownFile(), ec)) {
    out << "  admin password: in " << file << " (log in: submarine login -u admin)\n";
    return;
  }
  // Shown once, the first time; afterwards only where it is, so it does not end up in every
  // terminal scrollback and CI log that runs `local up`.
  out << "\nFirst start: user \"admin\" has the password\n\n    " << *password << "\n\n"
      << "(also in " << file << ", mode 0600; shown only this once).\n"
      << "Log in with: submarine login -u admin\n";
  auto marked = config::WriteFileAtomic(paths.AdminPasswordShownFile(), "", 0600);
  if (!marked.ok()) out << "warning: " << Message(marked) << "\n";
}

bool SupervisorAlive(pid_t pid, const std::string& data_dir) {
  if (!ProcessAlive(pid)) return false;
  std::string cmdline = ProcessCmdline(pid);
  return cmdline.find(" local supervise ") != std::string::npos &&
         cmdline.find(absl::StrCat(" --data-dir ", data_dir, " ")) != std::string::npos;
}

absl::Status LocalUp(const UpOptions& options, std::ostream& out) {
  StackPaths paths(AbsolutePath(options.data_dir));
  SUBMARINE_RETURN_IF_ERROR(paths.CreateDirectories());

  auto existing = ReadStackState(paths.StateFile());
  if (existing.ok() && SupervisorAlive(existing->supervisor_pid, paths.data_dir())) {
    if (existing->phase == kPhaseRunning) {
      out << "Submarine is already running at " << existing->gateway_url << " (data dir "
          << paths.data_dir() << ")\n";
      ReportAdminPassword(paths, out);
      return absl::OkStatus();
    }
    return MakeError(absl::StatusCode::kFailedPrecondition, "STACK_BUSY",
                     absl::StrCat("the supervisor of ", paths.data_dir(), " (pid ",
                                  existing->supervisor_pid, ") is ", existing->phase,
                                  "; see `submarine local status` or run `submarine local down`"),
                     {{"dataDir", paths.data_dir()}});
  }
  StopLeftovers(paths, existing.ok() ? &*existing : nullptr);

  SUBMARINE_ASSIGN_OR_RETURN(std::string bin_dir, SelfBinDir());
  std::vector<std::string> missing = MissingBinaries(bin_dir);
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "BINARIES_MISSING",
        absl::StrCat("missing next to ", bin_dir, "/submarine: ", list, " (build them with ninja)"),
        {{"binDir", bin_dir}});
  }

  if (options.gateway_port != 0) {
    auto probe = net::ListenTcp(absl::StrCat("127.0.0.1:", options.gateway_port));
    if (!probe.ok()) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "GATEWAY_PORT_IN_USE",
                       absl::StrCat("port ", options.gateway_port,
                                    " is in use; choose another with --gateway-port (0: any)"),
                       {{"port", std::to_string(options.gateway_port)}});
    }
    ::close(probe->fd);
  }

  std::error_code ec;
  fs::remove(paths.StateFile(), ec);
  SUBMARINE_ASSIGN_OR_RETURN(
      pid_t supervisor, SpawnProcess(SpawnOptions{{bin_dir + "/submarine", "local", "supervise",
                                                   "--data-dir", paths.data_dir(), "--gateway-port",
                                                   std::to_string(options.gateway_port)},
                                                  paths.LogFile("supervisor"),
                                                  /*new_session=*/true,
                                                  /*parent_death_signal=*/0}));
  out << "Starting the local stack in " << paths.data_dir() << " (supervisor pid " << supervisor
      << ")..." << std::endl;

  bool exited = false;
  int exit_status = 0;
  StackState state;
  bool done = WaitUntil(
      [&] {
        if (::waitpid(supervisor, &exit_status, WNOHANG) == supervisor) {
          exited = true;
          return true;
        }
        auto current = ReadStackState(paths.StateFile());
        if (!current.ok() || current->supervisor_pid != supervisor) return false;
        state = *current;
        if (state.phase == kPhaseFailed) return true;
        return state.phase == kPhaseRunning && GatewayReadyz(state.gateway_url) == 200;
      },
      options.timeout);

  if (exited || state.phase == kPhaseFailed) {
    if (!exited) ::waitpid(supervisor, &exit_status, 0);
    auto final_state = ReadStackState(paths.StateFile());
    std::string error =
        final_state.ok() && final_state->supervisor_pid == supervisor ? final_state->error : "";
    if (error.empty()) error = FileTail(paths.LogFile("supervisor"), 2000);
    return MakeError(absl::StatusCode::kUnavailable, "STACK_START_FAILED",
                     absl::StrCat("the local stack failed to start: ", error),
                     {{"dataDir", paths.data_dir()}});
  }
  if (!done) {
    TerminateProcess(supervisor, kSupervisorStopTimeout);
    ::waitpid(supervisor, nullptr, WNOHANG);
    return absl::DeadlineExceededError(
        absl::StrCat("the local stack was not ready after ",
                     std::chrono::duration_cast<std::chrono::seconds>(options.timeout).count(),
                     " s; see ", paths.LogDir()));
  }
  out << "Submarine is up: " << state.gateway_url << "\n"
      << "  data dir: " << paths.data_dir() << "\n"
      << "  logs:     " << paths.LogDir() << "\n"
      << "  stop it:  submarine local down --data-dir " << paths.data_dir() << "\n";
  ReportAdminPassword(paths, out);
  return absl::OkStatus();
}

absl::Status LocalDown(const std::string& data_dir, std::ostream& out) {
  StackPaths paths(AbsolutePath(data_dir));
  auto state = ReadStackState(paths.StateFile());
  if (!state.ok() && state.status().code() != absl::StatusCode::kNotFound) return state.status();
  bool stopped_something = false;
  if (state.ok() && SupervisorAlive(state->supervisor_pid, paths.data_dir())) {
    pid_t pid = state->supervisor_pid;
    out << "Stopping the supervisor (pid " << pid << ")..." << std::endl;
    ::kill(pid, SIGTERM);
    if (!WaitUntil([&] { return !ProcessAlive(pid); }, kSupervisorStopTimeout)) {
      out << "The supervisor did not stop in time; killing it" << std::endl;
      ::kill(pid, SIGKILL);
      WaitUntil([&] { return !ProcessAlive(pid); }, std::chrono::seconds(5));
    }
    stopped_something = true;
    state = ReadStackState(paths.StateFile());
  }
  if (StopLeftovers(paths, state.ok() ? &*state : nullptr) > 0) stopped_something = true;

  db::PostgresCluster cluster(db::PostgresCluster::Options{paths.PostgresDir()});
  if (fs::exists(cluster.data_dir() + "/PG_VERSION") && cluster.Running()) {
    SUBMARINE_RETURN_IF_ERROR(cluster.Stop());
    stopped_something = true;
  }
  if (state.ok() && state->phase != kPhaseStopped && state->phase != kPhaseFailed) {
    StackState stopped = *state;
    stopped.phase = kPhaseStopped;
    stopped.postgres_pid = 0;
    for (ProcessState& p : stopped.processes) {
      p.pid = 0;
      p.state = "stopped";
      p.ready = nullptr;
    }
    SUBMARINE_RETURN_IF_ERROR(WriteStackState(paths.StateFile(), stopped));
  }
  out << (stopped_something ? "Stopped the local stack in " : "Nothing was running in ")
      << paths.data_dir() << "\n";
  return absl::OkStatus();
}

bool StackHealth::Healthy() const {
  if (!supervisor_alive || gateway_readyz != 200) return false;
  for (const ProcessHealth& p : processes) {
    if (!p.ready) return false;
  }
  return true;
}

absl::StatusOr<StackHealth> InspectStack(const std::string& data_dir) {
  StackPaths paths(AbsolutePath(data_dir));
  auto state = ReadStackState(paths.StateFile());
  if (!state.ok() && state.status().code() == absl::StatusCode::kNotFound) {
    return MakeError(absl::StatusCode::kNotFound, "STACK_NOT_FOUND",
                     absl::StrCat("no local stack in ", paths.data_dir(),
                                  "; start one with `submarine local up`"),
                     {{"dataDir", paths.data_dir()}});
  }
  if (!state.ok()) return state.status();
  StackHealth health;
  health.data_dir = paths.data_dir();
  health.phase = state->phase;
  health.supervisor_pid = state->supervisor_pid;
  health.supervisor_alive = SupervisorAlive(state->supervisor_pid, paths.data_dir());
  health.gateway_url = state->gateway_url;
  if (health.supervisor_alive) health.gateway_readyz = GatewayReadyz(state->gateway_url);

  ProcessHealth postgres;
  postgres.name = "postgres";
  postgres.pid = state->postgres_pid;
  postgres.alive = ProcessAlive(postgres.pid);
  postgres.ready = postgres.alive;
  postgres.state = postgres.alive ? "running" : "stopped";
  postgres.restarts = state->postgres_restarts;
  postgres.address = absl::StrCat("127.0.0.1:", state->postgres_port);
  health.processes.push_back(postgres);

  for (const ProcessState& p : state->processes) {
    ProcessHealth h;
    h.name = p.name;
    h.pid = p.pid;
    h.alive = ProcessAlive(p.pid);
    h.state = p.state;
    h.restarts = p.restarts;
    h.address = ProcessAddress(p);
    auto ready_text = config::ReadFile(paths.ReadyFile(p.name));
    if (h.alive && ready_text.ok()) {
      auto ready = nlohmann::json::parse(*ready_text, nullptr, /*allow_exceptions=*/false);
      h.ready =
          ready.is_object() && (!ready.contains("pid") || ready["pid"] == nlohmann::json(p.pid));
    }
    if (!h.alive && h.state == "ready") h.state = "dead";
    health.processes.push_back(std::move(h));
  }
  return health;
}

std::string FormatStackHealth(const StackHealth& health, OutputFormat format) {
  nlohmann::json processes = nlohmann::json::array();
  for (const ProcessHealth& p : health.processes) {
    processes.push_back({{"name", p.name},
                         {"pid", p.pid},
                         {"alive", p.alive},
                         {"state", p.state},
                         {"ready", p.ready},
                         {"restarts", p.restarts},
                         {"address", p.address}});
  }
  nlohmann::json json = {
      {"dataDir", health.data_dir},
      {"phase", health.phase},
      {"healthy", health.Healthy()},
      {"supervisor", {{"pid", health.supervisor_pid}, {"alive", health.supervisor_alive}}},
      {"gatewayUrl", health.gateway_url},
      {"gatewayReadyz", health.gateway_readyz},
      {"processes", processes}};
  if (format == OutputFormat::kJson) return json.dump(2) + "\n";
  if (format == OutputFormat::kYaml) return JsonToYaml(json);

  std::string out = absl::StrCat(
      "Local stack in ", health.data_dir, ": ", health.phase, ", supervisor pid ",
      health.supervisor_pid, health.supervisor_alive ? " (alive)" : " (not running)", "\n",
      "Gateway: ", health.gateway_url.empty() ? "-" : health.gateway_url, "  /readyz: ",
      health.gateway_readyz == 0 ? std::string("unreachable")
                                 : std::to_string(health.gateway_readyz),
      "\n\n");
  std::vector<std::vector<std::string>> rows;
  for (const ProcessHealth& p : health.processes) {
    rows.push_back({p.name, p.pid > 0 ? std::to_string(p.pid) : "-", p.state,
                    p.ready ? "healthy" : "unhealthy", std::to_string(p.restarts),
                    p.address.empty() ? "-" : p.address});
  }
  return out + RenderTable({"PROCESS", "PID", "STATE", "HEALTH", "RESTARTS", "ADDRESS"}, rows);
}

}  // namespace submarine::cli
