#include "common/compute/local_backend.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/compute/workload.h"
#include "common/log/log.h"
#include "common/net/address.h"
#include "common/status/status.h"
#include "common/util/clock.h"
#include "nlohmann/json.hpp"

namespace submarine::compute {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A supervisor's figures as the backend reports them; an ended task holds no memory.
Usage ReportedUsage(const local::TaskUsage& u, bool ended) {
  Usage out{u.cpu_micros / 1e6, ended ? 0 : u.rss_bytes, u.max_rss_bytes};
  if (u.gpu) {
    out.gpu_memory_bytes = ended ? 0 : u.gpu->memory_bytes;
    out.max_gpu_memory_bytes = u.gpu->max_memory_bytes;
    out.gpu_utilization = u.gpu->utilization;
  }
  return out;
}

constexpr char kWorkloadFile[] = "workload.json";
// A service workload's secret_env (0600), for the replicas Scale adds later.
constexpr char kSecretsFile[] = "secrets.json";
// Every workload's secret_env, a 0600 file per key in a 0700 directory: SUBMARINE_SECRETS_DIR,
// where running tasks read values UpdateSecrets renews.
constexpr char kSecretsDir[] = "secrets";
constexpr char kLoopback[] = "127.0.0.1";
constexpr auto kLaunchTimeout = std::chrono::seconds(10);
// Variables of the service's environment a replica inherits; nothing else (it may hold secrets).
constexpr const char* kInheritedVariables[] = {"PATH",   "HOME",     "USER", "LOGNAME", "LANG",
                                               "LC_ALL", "LC_CTYPE", "TZ",   "TMPDIR",  "SHELL"};

std::string Join(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/", name);
}

absl::Status ErrnoUnavailable(const std::string& what) {
  return Unavailable(absl::StrCat(what, ": ", std::strerror(errno)));
}

absl::Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Unavailable(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  return absl::OkStatus();
}

// ---- The stored workload ----

// The spec inside a workload.json (null when the file is not JSON: SpecFromJson says so).
json ParseStored(const std::string& text) {
  json stored = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return stored.is_object() && stored.contains("spec") ? stored["spec"] : json();
}

// ---- Validation ----

absl::Status Validate(const WorkloadSpec& spec, size_t gpus_configured) {
  SUBMARINE_RETURN_IF_ERROR(ValidateWorkloadSpec(spec));
  int64_t gpus = 0;
  for (size_t i = 0; i < spec.roles.size(); ++i) {
    const RoleSpec& role = spec.roles[i];
    const Resources& r = role.resources;
    const std::string field = absl::StrCat("spec.roles[", i, "]");
    // A role asking for more than the host has fails alone, before any product can overflow.
    gpus = r.gpus > static_cast<int64_t>(gpus_configured) ? r.gpus : gpus + r.gpus * role.replicas;
    if (gpus > static_cast<int64_t>(gpus_configured)) {
      return InvalidField(field + ".resources",
                          absl::StrCat("the workload needs ", gpus, " GPUs up to this role; the ",
                                       "local backend has ", gpus_configured, " configured"));
    }
  }
  return absl::OkStatus();
}

// ---- Launching a supervisor ----

// Reads one line from `fd` until `deadline`; "" on EOF, nullopt on timeout.
std::optional<std::string> ReadLine(int fd, std::chrono::steady_clock::time_point deadline) {
  std::string line;
  char c;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{fd, POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? std::nullopt : std::optional<std::string>(line);
    ssize_t r = ::read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || c == '\n') return line;
    line += c;
  }
}

// SIGKILLs a task's supervisor, so it cannot start another attempt, then what is left of the
// task's process group, and removes its cgroup.
void KillTask(const std::string& task_dir) {
  auto text = local::ReadSmallFile(Join(task_dir, local::kSupervisorFile));
  if (!text.ok()) return;
  auto record = local::SupervisorRecordFromJson(*text);
  if (!record.ok()) return;
  if (local::IsAlive(record->supervisor)) ::kill(record->supervisor.pid, SIGKILL);
  local::KillGroupInSession(record->supervisor.pid, record->child_pid);
  if (!record->cgroup.empty()) ::rmdir(record->cgroup.c_str());
}

}  // namespace

struct LocalBackend::TaskView {
  TaskStatus status;
  bool launched = false;  // a supervisor recorded itself (or the task is final)

  static TaskView Running(const TaskRef& task, const std::string& host,
                          const local::SupervisorRecord& record) {
    TaskView view;
    view.launched = true;
    view.status.task = task;
    view.status.host = host;
    view.status.phase = Phase::kRunning;
    view.status.attempt = record.attempt;
    view.status.start_time =
        std::chrono::system_clock::time_point(std::chrono::microseconds(record.started_us));
    view.status.message =
        record.restarting.empty()
            ? record.note
            : absl::StrCat(record.restarting, record.note.empty() ? "" : "; ", record.note);
    if (record.port > 0) view.status.endpoint = absl::StrCat(kLoopback, ":", record.port);
    return view;
  }
};

absl::StatusOr<std::unique_ptr<LocalBackend>> LocalBackend::Create(Options options) {
  if (options.root_dir.empty()) return InvalidField("root_dir", "is required");
  std::error_code ec;
  options.root_dir = fs::absolute(options.root_dir, ec).lexically_normal().string();
  while (options.root_dir.size() > 1 && options.root_dir.back() == '/') options.root_dir.pop_back();
  if (options.supervisor_path.empty()) {
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return Unavailable(absl::StrCat("cannot resolve /proc/self/exe: ", ec.message()));
    options.supervisor_path = (self.parent_path() / "submarine-task-supervisor").string();
  }
  struct stat st {};
  if (::stat(options.supervisor_path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
      ::access(options.supervisor_path.c_str(), X_OK) != 0) {
    return InvalidField("supervisor_path",
                        absl::StrCat(options.supervisor_path, " is not an executable file"));
  }
  if (!options.nvidia_smi.empty() && options.nvidia_smi.find('/') == std::string::npos) {
    // Looked up on PATH once; absent (no NVIDIA driver): no GPU figures.
    std::string found;
    const char* path = std::getenv("PATH");
    for (absl::string_view dir : absl::StrSplit(path ? path : "", ':', absl::SkipEmpty())) {
      const std::string candidate = absl::StrCat(dir, "/", options.nvidia_smi);
      if (::access(candidate.c_str(), X_OK) == 0) {
        found = candidate;
        break;
      }
    }
    options.nvidia_smi = found;
  }
  std::set<std::string> seen;
  for (const std::string& gpu : options.gpus) {
    if (gpu.empty() || gpu.find(',') != std::string::npos) {
      return InvalidField("gpus", absl::StrCat("\"", QuoteInput(gpu), "\" is not a GPU id"));
    }
    if (!seen.insert(gpu).second) {
      return InvalidField("gpus", absl::StrCat("GPU \"", QuoteInput(gpu), "\" is repeated"));
    }
  }
  if (options.host_name.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    options.host_name = host[0] != '\0' ? host : "localhost";
  }
  const std::string workloads = Join(options.root_dir, "workloads");
  SUBMARINE_RETURN_IF_ERROR(MakeDirs(workloads));
  SUBMARINE_RETURN_IF_ERROR(MakeDirs(Join(options.root_dir, "logs")));
  // What a crash left half-deleted is removed; half-staged workloads only once they are old
  // enough that no other instance can still be writing them.
  for (const auto& entry : fs::directory_iterator(workloads, ec)) {
    const std::string name = entry.path().filename().string();
    const bool deleting = name.rfind(".deleting-", 0) == 0;
    const bool stale_staging = name.rfind(".staging-", 0) == 0 &&
                               fs::last_write_time(entry.path(), ec) <
                                   fs::file_time_type::clock::now() - std::chrono::hours(1);
    if (deleting || stale_staging) fs::remove_all(entry.path(), ec);
  }
  return std::unique_ptr<LocalBackend>(new LocalBackend(std::move(options)));
}

LocalBackend::LocalBackend(Options options) : options_(std::move(options)) {}

std::string LocalBackend::WorkloadDir(const std::string& id) const {
  return absl::StrCat(options_.root_dir, "/workloads/", id);
}

std::string LocalBackend::TaskDir(const std::string& id, const TaskRef& task) const {
  return absl::StrCat(WorkloadDir(id), "/tasks/", TaskName(task));
}

std::string LocalBackend::LogFile(const std::string& id, const TaskRef& task) const {
  return absl::StrCat(options_.root_dir, "/logs/", id, "/", TaskName(task), ".log");
}

absl::StatusOr<std::vector<local::TaskPlan>> LocalBackend::PlanTasks(
    const WorkloadSpec& spec, std::string* rendezvous_json) const {
  // Rendezvous: ports picked once, distinct within the workload, stored with the spec.
  std::set<int> picked;
  auto pick = [&]() -> absl::StatusOr<int> {
    for (int attempt = 0; attempt < 16; ++attempt) {
      SUBMARINE_ASSIGN_OR_RETURN(int port, net::PickFreePort());
      if (picked.insert(port).second) return port;
    }
    return Unavailable("cannot find free ports for the workload's rendezvous");
  };
  const std::vector<TaskRef> ranked = RankOrder(spec);
  const int world_size = static_cast<int>(ranked.size());
  json rendezvous = json::object();
  std::map<std::string, int> task_ports;  // TensorFlow: one per replica
  int master_port = 0;
  if (spec.framework == Framework::kTensorflow) {
    json cluster = json::object();
    for (const TaskRef& t : TasksOf(spec)) {
      SUBMARINE_ASSIGN_OR_RETURN(int port, pick());
      task_ports[TaskName(t)] = port;
      cluster[t.role].push_back(absl::StrCat(kLoopback, ":", port));
    }
    rendezvous["cluster"] = cluster;
  } else if (spec.framework == Framework::kPytorch || spec.framework == Framework::kXgboost) {
    SUBMARINE_ASSIGN_OR_RETURN(master_port, pick());
    rendezvous["port"] = master_port;
  }
  *rendezvous_json = rendezvous.dump();

  std::map<std::string, std::string> base;
  for (const char* name : kInheritedVariables) {
    if (const char* value = std::getenv(name)) base[name] = value;
  }
  if (!base.count("PATH")) base["PATH"] = "/usr/local/bin:/usr/bin:/bin";

  std::vector<local::TaskPlan> plans;
  size_t next_gpu = 0;
  for (const RoleSpec& role : spec.roles) {
    for (int index = 0; index < role.replicas; ++index) {
      const TaskRef task{role.name, index};
      const int rank =
          static_cast<int>(std::find(ranked.begin(), ranked.end(), task) - ranked.begin());
      local::TaskPlan plan;
      plan.workload_id = spec.id;
      plan.task = task;
      plan.argv = role.command;
      plan.env = base;
      for (const auto& [k, v] : spec.secret_env) plan.env[k] = v;
      for (const auto& [k, v] : spec.env) plan.env[k] = v;
      for (const auto& [k, v] : role.env) plan.env[k] = v;
      auto& env = plan.env;
      if (!spec.secret_env.empty())
        env["SUBMARINE_SECRETS_DIR"] = Join(WorkloadDir(spec.id), kSecretsDir);
      env["SUBMARINE_WORKLOAD_ID"] = spec.id;
      env["SUBMARINE_TASK_ROLE"] = role.name;
      env["SUBMARINE_TASK_INDEX"] = absl::StrCat(index);
      env.erase("SUBMARINE_TASK_ATTEMPT");  // the supervisor sets it for each attempt
      std::vector<std::string> gpus;
      for (int64_t g = 0; g < role.resources.gpus; ++g) gpus.push_back(options_.gpus[next_gpu++]);
      env["CUDA_VISIBLE_DEVICES"] = absl::StrJoin(gpus, ",");
      switch (spec.framework) {
        case Framework::kPlain:
          break;
        case Framework::kTensorflow:
          env["TF_CONFIG"] = json{{"cluster", rendezvous["cluster"]},
                                  {"task", {{"type", role.name}, {"index", index}}}}
                                 .dump();
          break;
        case Framework::kPytorch:
          env["MASTER_ADDR"] = kLoopback;
          env["MASTER_PORT"] = absl::StrCat(master_port);
          env["WORLD_SIZE"] = absl::StrCat(world_size);
          env["RANK"] = absl::StrCat(rank);
          env["LOCAL_RANK"] = "0";
          env["LOCAL_WORLD_SIZE"] = "1";
          break;
        case Framework::kXgboost:
          env["DMLC_TRACKER_URI"] = kLoopback;
          env["DMLC_TRACKER_PORT"] = absl::StrCat(master_port);
          env["DMLC_TASK_ID"] = absl::StrCat(rank);
          env["DMLC_NUM_WORKER"] = absl::StrCat(world_size);
          env["DMLC_ROLE"] = "worker";
          break;
      }
      plan.working_dir = spec.working_dir.empty()
                             ? absl::StrCat(WorkloadDir(spec.id), "/work/", TaskName(task))
                             : spec.working_dir;
      plan.log_file = LogFile(spec.id, task);
      plan.stop_file = Join(WorkloadDir(spec.id), local::kStopFile);
      plan.max_restarts = role.max_restarts;
      plan.cpu_millis = role.resources.cpu_millis;
      plan.memory_bytes = role.resources.memory_bytes;
      plan.cgroup_root = options_.cgroup_root;
      if (role.resources.gpus > 0) plan.nvidia_smi = options_.nvidia_smi;
      plan.host = options_.host_name;
      if (spec.kind == WorkloadKind::kService) {
        // Replicas share the host: each serves its own free port, whatever role.port says.
        SUBMARINE_ASSIGN_OR_RETURN(plan.port, pick());
        env["SUBMARINE_PORT"] = absl::StrCat(plan.port);
        env["SUBMARINE_HOST"] = kLoopback;
        plan.restart_always = true;
        plan.max_restarts = 0;
        plan.probe = role.readiness;
        plan.task_stop_file = Join(TaskDir(spec.id, task), local::kStopFile);
      }
      plans.push_back(std::move(plan));
    }
  }
  return plans;
}

absl::Status LocalBackend::Submit(const WorkloadSpec& spec) {
  SUBMARINE_RETURN_IF_ERROR(Validate(spec, options_.gpus.size()));
  absl::MutexLock lock(&mu_);
  if (!local::FileExists(Join(WorkloadDir(spec.id), kWorkloadFile))) {
    SUBMARINE_RETURN_IF_ERROR(WriteWorkload(spec));
  }
  // The first spec wins: launch what the stored one (maybe another Submit's) still lacks.
  auto stored = local::ReadSmallFile(Join(WorkloadDir(spec.id), kWorkloadFile));
  if (!stored.ok()) return Unavailable(std::string(stored.status().message()));
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec first, SpecFromJson(ParseStored(*stored)));
  return LaunchPending(spec.id, first);
}

// Writes the workload into a staging directory and renames it into place, so that a workload
// directory is complete whenever it exists. Losing the rename to a concurrent Submit is fine.
absl::Status LocalBackend::WriteWorkload(const WorkloadSpec& spec) {
  std::string rendezvous;
  SUBMARINE_ASSIGN_OR_RETURN(std::vector<local::TaskPlan> plans, PlanTasks(spec, &rendezvous));
  const std::string staging = absl::StrCat(options_.root_dir, "/workloads/.staging-", spec.id, "-",
                                           IdGenerator::Secure().RandomHex(4));
  const std::string logs = absl::StrCat(options_.root_dir, "/logs/", spec.id);
  SUBMARINE_RETURN_IF_ERROR(MakeDirs(logs));
  absl::Status st = absl::OkStatus();
  for (const local::TaskPlan& plan : plans) {
    const std::string name = TaskName(plan.task);
    st.Update(MakeDirs(absl::StrCat(staging, "/tasks/", name)));
    if (spec.working_dir.empty()) st.Update(MakeDirs(absl::StrCat(staging, "/work/", name)));
    if (!st.ok()) break;
    st.Update(local::WriteFileAtomically(
        absl::StrCat(staging, "/tasks/", name, "/", local::kPlanFile), local::ToJson(plan),
        0600));  // it holds the task's secret_env
  }
  if (st.ok() && spec.kind == WorkloadKind::kService) {
    st.Update(local::WriteFileAtomically(Join(staging, kSecretsFile), json(spec.secret_env).dump(),
                                         0600));
  }
  if (st.ok() && !spec.secret_env.empty()) {
    const std::string secrets = Join(staging, kSecretsDir);
    if (::mkdir(secrets.c_str(), 0700) != 0) {
      st.Update(ErrnoUnavailable(absl::StrCat("cannot create ", secrets)));
    }
    for (const auto& [key, value] : spec.secret_env) {
      if (st.ok()) st.Update(local::WriteFileAtomically(Join(secrets, key), value, 0600));
    }
  }
  if (st.ok()) {
    json stored = {{"spec", SpecToJson(spec)},
                   {"rendezvous", json::parse(rendezvous)},
                   {"submitted_us", local::NowMicros()}};
    st.Update(local::WriteFileAtomically(Join(staging, kWorkloadFile), stored.dump(2) + "\n"));
  }
  if (st.ok() && ::rename(staging.c_str(), WorkloadDir(spec.id).c_str()) != 0 && errno != EEXIST &&
      errno != ENOTEMPTY) {
    st.Update(
        ErrnoUnavailable(absl::StrCat("cannot move the workload into ", WorkloadDir(spec.id))));
  }
  std::error_code ec;
  fs::remove_all(staging, ec);  // gone after a successful rename; a loser's copy otherwise
  if (!st.ok()) return Unavailable(std::string(st.message()));
  // The logs exist from the start, so that ReadLog knows the tasks before they write anything;
  // made only now that the workload is in place, since a log without its workload reads as
  // complete (a workload deleted keeping its logs).
  for (const local::TaskPlan& plan : plans) {
    int fd = ::open(plan.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoUnavailable(absl::StrCat("cannot create ", plan.log_file));
    ::close(fd);
  }
  return absl::OkStatus();
}

absl::Status LocalBackend::LaunchPending(const std::string& id, const WorkloadSpec& spec) {
  for (const TaskRef& task : TasksOf(spec)) {
    const std::string dir = TaskDir(id, task);
    if (local::FileExists(Join(dir, local::kSupervisorFile)) ||
        local::FileExists(Join(dir, local::kStatusFile))) {
      continue;
    }
    SUBMARINE_RETURN_IF_ERROR(Launch(dir));
  }
  return absl::OkStatus();
}

// Starts `submarine-task-supervisor --detach` in a session of its own with nothing of this
// process but a pipe on fd 3, and waits for the supervisor's first line on it. posix_spawn, not
// fork: the service is multi-threaded, and its memory need not be copied to run a small program.
absl::Status LocalBackend::Launch(const std::string& task_dir) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoUnavailable("pipe");
  // fd 3 must end up without FD_CLOEXEC, and the file actions below must not clobber the pipe:
  // move a write end numbered 0 to 3 (possible when the service closed its stdio) out of the way.
  if (fds[1] <= 3) {
    int moved = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
    ::close(fds[1]);
    fds[1] = moved;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 3);
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t blocked, defaults;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGCHLD);
  sigfillset(&defaults);
  posix_spawnattr_setsigmask(&attr, &blocked);  // the supervisor takes them synchronously
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<std::string> args = {
      options_.supervisor_path, "--detach", "--task-dir", task_dir, "--ready-fd", "3"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  char* envp[] = {nullptr};
  pid_t pid = 0;
  int spawned =
      ::posix_spawn(&pid, options_.supervisor_path.c_str(), &actions, &attr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (spawned != 0) {
    ::close(fds[0]);
    return Unavailable(
        absl::StrCat("cannot start ", options_.supervisor_path, ": ", std::strerror(spawned)));
  }
  int ignored;
  while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
  }
  std::optional<std::string> line =
      ReadLine(fds[0], std::chrono::steady_clock::now() + kLaunchTimeout);
  ::close(fds[0]);
  if (line == "ready" || line == "busy" || line == "done") return absl::OkStatus();
  std::string why = !line           ? "it did not report within 10 s"
                    : line->empty() ? "it exited without a word"
                                    : *line;
  log::Get("compute")->warn("task supervisor for {} did not start: {}", task_dir, why);
  return Unavailable(absl::StrCat("the task supervisor for ", task_dir, " did not start: ", why));
}

absl::StatusOr<LocalBackend::TaskView> LocalBackend::ReadTask(const std::string& id,
                                                              const TaskRef& task) {
  const std::string dir = TaskDir(id, task);
  TaskView view;
  view.status.task = task;
  view.status.host = options_.host_name;
  auto from_outcome = [&](const std::string& text) -> absl::StatusOr<TaskView> {
    auto outcome = local::OutcomeFromJson(text);
    if (!outcome.ok()) return Unavailable(std::string(outcome.status().message()));
    TaskStatus& s = view.status;
    s.phase = outcome->phase;
    s.attempt = outcome->attempt;
    s.exit_code = outcome->exit_code;
    s.signal = outcome->signal;
    if (!outcome->host.empty()) s.host = outcome->host;
    using std::chrono::microseconds;
    using std::chrono::system_clock;
    if (outcome->started_us > 0) {
      s.start_time = system_clock::time_point(microseconds(outcome->started_us));
    }
    s.finish_time = system_clock::time_point(microseconds(outcome->finished_us));
    s.message = outcome->message;
    if (outcome->usage) s.usage = ReportedUsage(*outcome->usage, /*ended=*/true);
    view.launched = true;
    return view;
  };
  auto status_text = local::ReadSmallFile(Join(dir, local::kStatusFile));
  if (status_text.ok()) return from_outcome(*status_text);
  if (!absl::IsNotFound(status_text.status())) {
    return Unavailable(std::string(status_text.status().message()));
  }
  auto record_text = local::ReadSmallFile(Join(dir, local::kSupervisorFile));
  if (absl::IsNotFound(record_text.status())) return view;  // not launched yet: PENDING
  if (!record_text.ok()) return Unavailable(std::string(record_text.status().message()));
  auto record = local::SupervisorRecordFromJson(*record_text);
  if (!record.ok()) return Unavailable(std::string(record.status().message()));
  if (!local::IsAlive(record->supervisor)) return SupervisorVanished(id, task, *record);
  TaskView running = TaskView::Running(task, options_.host_name, *record);
  if (record->port > 0 && record->restarting.empty()) {
    if (auto text = local::ReadSmallFile(Join(dir, local::kReadyFile)); text.ok()) {
      if (auto r = local::ReadinessFromJson(*text); r.ok() && r->attempt == record->attempt) {
        running.status.ready = r->ready;
        if (!r->ready && !r->message.empty()) {
          running.status.message =
              running.status.message.empty()
                  ? absl::StrCat("not ready: ", r->message)
                  : absl::StrCat("not ready: ", r->message, "; ", running.status.message);
        }
      }
    }
  }
  if (auto text = local::ReadSmallFile(Join(dir, local::kUsageFile)); text.ok()) {
    if (auto u = local::UsageFromJson(*text); u.ok()) {
      running.status.usage = ReportedUsage(*u, /*ended=*/false);
    }
  }
  return running;
}

// The recorded supervisor is gone. Under the task lock (so no supervisor can be writing), either
// it recorded a status after all, or the task failed: kill what is left of its process group and
// record that, so the verdict holds.
absl::StatusOr<LocalBackend::TaskView> LocalBackend::SupervisorVanished(
    const std::string& id, const TaskRef& task, const local::SupervisorRecord& record) {
  const std::string dir = TaskDir(id, task);
  int lock_fd = ::open(Join(dir, local::kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd < 0) return ErrnoUnavailable(absl::StrCat("cannot open the lock of ", dir));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    // Someone holds it after all — another instance recording this verdict, or a supervisor
    // starting up: still running as far as can be told.
    ::close(lock_fd);
    return TaskView::Running(task, options_.host_name, record);
  }
  if (local::FileExists(Join(dir, local::kStatusFile))) {
    ::close(lock_fd);
    return ReadTask(id, task);
  }
  const int killed = local::KillGroupInSession(record.supervisor.pid, record.child_pid);
  if (!record.cgroup.empty()) ::rmdir(record.cgroup.c_str());
  const bool stopping = local::FileExists(Join(WorkloadDir(id), local::kStopFile)) ||
                        local::FileExists(Join(dir, local::kStopFile));
  if (record.port > 0 && !stopping) {
    // A service replica restarts always, also when its supervisor is what died: under a new
    // supervisor (after this lock is let go, or it would find the task busy), attempts counted
    // on.
    log::Get("compute")->warn("{} {}: the task supervisor vanished; starting the replica again", id,
                              TaskName(task));
    absl::Status st =
        local::WriteFileAtomically(Join(dir, local::kAttemptsFile), absl::StrCat(record.attempt));
    if (st.ok() && ::unlink(Join(dir, local::kSupervisorFile).c_str()) != 0) {
      st = ErrnoUnavailable(absl::StrCat("cannot remove the record in ", dir));
    }
    ::close(lock_fd);
    if (!st.ok()) return Unavailable(std::string(st.message()));
    {
      absl::MutexLock lock(&mu_);
      SUBMARINE_RETURN_IF_ERROR(Launch(dir));
    }
    return ReadTask(id, task);
  }
  local::TaskOutcome outcome;
  outcome.phase = Phase::kFailed;
  outcome.attempt = record.attempt;
  outcome.started_us = record.started_us;
  outcome.finished_us = local::NowMicros();
  outcome.host = options_.host_name;
  outcome.message = "the task supervisor exited without recording a status";
  log::Get("compute")->warn("{} {}: {}; killed {} processes left in its group", id, TaskName(task),
                            outcome.message, killed);
  absl::Status written =
      local::WriteFileAtomically(Join(dir, local::kStatusFile), local::ToJson(outcome));
  ::close(lock_fd);
  if (!written.ok()) return Unavailable(std::string(written.message()));
  return ReadTask(id, task);
}

absl::StatusOr<std::vector<LocalBackend::TaskView>> LocalBackend::ReadTasks(
    const std::string& id, const WorkloadSpec& spec) {
  std::vector<TaskView> views;
  for (const TaskRef& task : TasksOf(spec)) {
    SUBMARINE_ASSIGN_OR_RETURN(TaskView view, ReadTask(id, task));
    views.push_back(std::move(view));
  }
  return views;
}

absl::StatusOr<std::string> LocalBackend::StoredWorkload(const std::string& id) const {
  if (!ValidId(id)) return NotFound("workload", QuoteInput(id));
  auto stored = local::ReadSmallFile(Join(WorkloadDir(id), kWorkloadFile));
  if (absl::IsNotFound(stored.status())) return NotFound("workload", id);
  if (!stored.ok()) return Unavailable(std::string(stored.status().message()));
  return stored;
}

absl::StatusOr<WorkloadStatus> LocalBackend::Get(const std::string& id) {
  auto stored = StoredWorkload(id);
  if (!stored.ok()) return stored.status();
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(ParseStored(*stored)));
  SUBMARINE_ASSIGN_OR_RETURN(std::vector<TaskView> views, ReadTasks(id, spec));
  if (std::any_of(views.begin(), views.end(), [](const TaskView& v) { return !v.launched; })) {
    // Submit stopped (crashed) between writing the workload and launching every task.
    absl::MutexLock lock(&mu_);
    SUBMARINE_RETURN_IF_ERROR(LaunchPending(id, spec));
    SUBMARINE_ASSIGN_OR_RETURN(views, ReadTasks(id, spec));
  }

  WorkloadStatus out;
  out.id = id;
  out.labels = spec.labels;
  const TaskView* first_failed = nullptr;
  bool all_final = true, all_succeeded = true, any_started = false;
  for (const TaskView& v : views) {
    const Phase p = v.status.phase;
    all_final = all_final && IsFinal(p);
    all_succeeded = all_succeeded && p == Phase::kSucceeded;
    any_started = any_started || p != Phase::kPending;
    if (p == Phase::kFailed &&
        (first_failed == nullptr || v.status.finish_time < first_failed->status.finish_time)) {
      first_failed = &v;
    }
  }
  if (first_failed != nullptr) {
    out.phase = Phase::kFailed;
    out.message = absl::StrCat("task ", TaskName(first_failed->status.task),
                               " failed: ", first_failed->status.message);
    if (!all_final) {
      // A batch workload fails with its first task; what still runs of it is stopped.
      SUBMARINE_RETURN_IF_ERROR(RequestStop(id, spec, kFailureGrace));
    }
  } else if (spec.kind == WorkloadKind::kService && views.empty()) {
    // Scaled to zero: it runs nothing but still exists, until it is stopped.
    const bool stopped = local::FileExists(Join(WorkloadDir(id), local::kStopFile));
    out.phase = stopped ? Phase::kKilled : Phase::kRunning;
    out.message = stopped ? "stopped on request" : "scaled to zero replicas";
  } else if (all_final) {
    out.phase = all_succeeded ? Phase::kSucceeded : Phase::kKilled;
    if (!all_succeeded) out.message = "stopped on request";
  } else {
    out.phase = any_started ? Phase::kRunning : Phase::kPending;
  }
  for (TaskView& v : views) out.tasks.push_back(std::move(v.status));
  return out;
}

absl::StatusOr<std::vector<WorkloadStatus>> LocalBackend::List() {
  std::vector<std::string> ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(Join(options_.root_dir, "workloads"), ec)) {
    const std::string name = entry.path().filename().string();
    if (ValidId(name)) ids.push_back(name);
  }
  if (ec) return Unavailable(absl::StrCat("cannot list workloads: ", ec.message()));
  std::sort(ids.begin(), ids.end());
  std::vector<WorkloadStatus> out;
  for (const std::string& id : ids) {
    auto status = Get(id);
    if (absl::IsNotFound(status.status())) continue;  // deleted meanwhile
    if (!status.ok()) return status.status();
    out.push_back(*std::move(status));
  }
  return out;
}

absl::Status LocalBackend::RequestStop(const std::string& id, const WorkloadSpec& spec,
                                       std::chrono::milliseconds grace) {
  const std::string stop_file = Join(WorkloadDir(id), local::kStopFile);
  if (!local::FileExists(stop_file)) {
    local::StopRequest request{grace.count(), local::NowMicros()};
    SUBMARINE_RETURN_IF_ERROR(local::WriteFileAtomically(stop_file, local::ToJson(request)));
  }
  // The marker is written before any record is read: a supervisor not recorded yet sees it
  // after recording itself, so every task gets the stop one way or the other.
  for (const TaskRef& task : TasksOf(spec)) {
    const std::string dir = TaskDir(id, task);
    if (local::FileExists(Join(dir, local::kStatusFile))) continue;
    auto text = local::ReadSmallFile(Join(dir, local::kSupervisorFile));
    if (!text.ok()) continue;
    auto record = local::SupervisorRecordFromJson(*text);
    if (record.ok() && local::IsAlive(record->supervisor)) {
      ::kill(record->supervisor.pid, SIGTERM);
    }
  }
  return absl::OkStatus();
}

absl::Status LocalBackend::Stop(const std::string& id, std::chrono::milliseconds grace) {
  if (grace.count() < 0) return InvalidField("grace", "must not be negative");
  auto stored = StoredWorkload(id);
  if (!stored.ok()) return stored.status();
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(ParseStored(*stored)));
  return RequestStop(id, spec, grace);
}

absl::Status LocalBackend::Delete(const std::string& id, bool keep_logs) {
  if (!ValidId(id)) return absl::OkStatus();  // never held
  absl::MutexLock lock(&mu_);
  const std::string dir = WorkloadDir(id);
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    // Nothing new starts (a supervisor between attempts sees the marker), then everything that
    // runs is SIGKILLed: each supervisor first, so it cannot start another attempt, then what is
    // left of its task's process group.
    local::StopRequest request{0, local::NowMicros()};
    (void)local::WriteFileAtomically(Join(dir, local::kStopFile), local::ToJson(request));
    for (const auto& entry : fs::directory_iterator(Join(dir, "tasks"), ec)) {
      KillTask(entry.path().string());
    }
    // Renamed away first, so that the workload disappears at once and a crash in remove_all
    // leaves only a hidden directory (removed by the next Create).
    const std::string doomed = absl::StrCat(options_.root_dir, "/workloads/.deleting-", id, "-",
                                            IdGenerator::Secure().RandomHex(4));
    if (::rename(dir.c_str(), doomed.c_str()) != 0) {
      return ErrnoUnavailable(absl::StrCat("cannot remove ", dir));
    }
    fs::remove_all(doomed, ec);
    if (ec) return Unavailable(absl::StrCat("cannot remove ", doomed, ": ", ec.message()));
  }
  if (!keep_logs) {
    fs::remove_all(absl::StrCat(options_.root_dir, "/logs/", id), ec);
    if (ec) return Unavailable(absl::StrCat("cannot remove the logs of ", id, ": ", ec.message()));
  }
  return absl::OkStatus();
}

absl::Status LocalBackend::UpdateSecrets(const std::string& id,
                                         const std::map<std::string, std::string>& values) {
  absl::MutexLock lock(&mu_);
  const std::string dir = WorkloadDir(id);
  auto text = StoredWorkload(id);
  if (!text.ok()) return text.status();
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(ParseStored(*text)));
  // The stored spec names its secret keys (never their values).
  for (const auto& [key, value] : values) {
    if (!spec.secret_env.count(key)) {
      return InvalidField("secret_env", absl::StrCat("workload ", id, " has no secret \"",
                                                     QuoteInput(key), "\" to update"));
    }
  }
  if (!local::FileExists(Join(dir, kSecretsDir))) {
    return absl::FailedPreconditionError(
        absl::StrCat("workload ", id, " was submitted before secrets could be updated"));
  }
  for (const auto& [key, value] : values) {
    SUBMARINE_RETURN_IF_ERROR(
        local::WriteFileAtomically(Join(Join(dir, kSecretsDir), key), value, 0600));
  }
  // Replicas that Scale adds later start with the new values.
  auto stored = local::ReadSmallFile(Join(dir, kSecretsFile));
  if (stored.ok()) {
    json secrets = json::parse(*stored, nullptr, /*allow_exceptions=*/false);
    if (secrets.is_object()) {
      for (const auto& [key, value] : values) secrets[key] = value;
      SUBMARINE_RETURN_IF_ERROR(
          local::WriteFileAtomically(Join(dir, kSecretsFile), secrets.dump(), 0600));
    }
  }
  return absl::OkStatus();
}

absl::Status LocalBackend::Scale(const std::string& id, const std::string& role_name, int replicas,
                                 std::chrono::milliseconds grace) {
  if (replicas < 0 || replicas > kMaxReplicas) {
    return InvalidField("replicas", absl::StrCat("must be 0 to ", kMaxReplicas));
  }
  if (grace.count() < 0) return InvalidField("grace", "must not be negative");
  absl::MutexLock lock(&mu_);
  const std::string dir = WorkloadDir(id);
  auto text = StoredWorkload(id);
  if (!text.ok()) return text.status();
  json stored = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  SUBMARINE_ASSIGN_OR_RETURN(WorkloadSpec spec, SpecFromJson(ParseStored(*text)));
  if (spec.kind != WorkloadKind::kService) {
    return absl::FailedPreconditionError(
        absl::StrCat("workload ", id, " is a batch workload: only service workloads scale"));
  }
  if (local::FileExists(Join(dir, local::kStopFile))) {
    return absl::FailedPreconditionError(absl::StrCat("workload ", id, " is stopped"));
  }
  auto role = std::find_if(spec.roles.begin(), spec.roles.end(),
                           [&](const RoleSpec& r) { return r.name == role_name; });
  if (role == spec.roles.end()) {
    return NotFound("role", absl::StrCat(id, "/", QuoteInput(role_name)));
  }
  const int before = role->replicas;
  if (replicas == before) return absl::OkStatus();
  role->replicas = replicas;
  if (replicas > before) {
    SUBMARINE_RETURN_IF_ERROR(Validate(spec, options_.gpus.size()));
    auto secrets = local::ReadSmallFile(Join(dir, kSecretsFile));
    if (secrets.ok()) {
      json values = json::parse(*secrets, nullptr, /*allow_exceptions=*/false);
      if (values.is_object()) spec.secret_env = values.get<std::map<std::string, std::string>>();
    }
    std::string rendezvous;
    SUBMARINE_ASSIGN_OR_RETURN(std::vector<local::TaskPlan> plans, PlanTasks(spec, &rendezvous));
    for (const local::TaskPlan& plan : plans) {
      if (plan.task.role != role_name || plan.task.index < before) continue;
      // The directory of an earlier replica with this index (scaled down, maybe still stopping).
      const std::string task_dir = TaskDir(id, plan.task);
      KillTask(task_dir);
      std::error_code ec;
      fs::remove_all(task_dir, ec);
      SUBMARINE_RETURN_IF_ERROR(MakeDirs(task_dir));
      if (spec.working_dir.empty()) SUBMARINE_RETURN_IF_ERROR(MakeDirs(plan.working_dir));
      SUBMARINE_RETURN_IF_ERROR(
          local::WriteFileAtomically(Join(task_dir, local::kPlanFile), local::ToJson(plan), 0600));
      int fd = ::open(plan.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) return ErrnoUnavailable(absl::StrCat("cannot create ", plan.log_file));
      ::close(fd);
    }
  }
  stored["spec"] = SpecToJson(spec);
  SUBMARINE_RETURN_IF_ERROR(
      local::WriteFileAtomically(Join(dir, kWorkloadFile), stored.dump(2) + "\n"));
  if (replicas > before) return LaunchPending(id, spec);
  // Scaled down: each replica beyond the count stops alone, with the grace.
  const local::StopRequest request{grace.count(), local::NowMicros()};
  for (int index = replicas; index < before; ++index) {
    const std::string task_dir = TaskDir(id, TaskRef{role_name, index});
    if (local::FileExists(Join(task_dir, local::kStatusFile))) continue;
    SUBMARINE_RETURN_IF_ERROR(
        local::WriteFileAtomically(Join(task_dir, local::kStopFile), local::ToJson(request)));
    auto record_text = local::ReadSmallFile(Join(task_dir, local::kSupervisorFile));
    if (!record_text.ok()) continue;  // not recorded yet: it sees the marker once it is
    auto record = local::SupervisorRecordFromJson(*record_text);
    if (record.ok() && local::IsAlive(record->supervisor)) ::kill(record->supervisor.pid, SIGTERM);
  }
  return absl::OkStatus();
}

absl::StatusOr<LogChunk> LocalBackend::ReadLog(const std::string& id, const TaskRef& task,
                                               int64_t offset, int64_t max_bytes) {
  if (offset < 0) return InvalidField("offset", "must not be negative");
  if (max_bytes <= 0) return InvalidField("max_bytes", "must be positive");
  if (!ValidId(id) || !ValidName(task.role, 40) || task.index < 0) {
    return NotFound("task",
                    absl::StrCat(QuoteInput(id), "/", QuoteInput(task.role), "-", task.index));
  }
  // Whether the task is finished is decided before the size is read: a finished task's log does
  // not grow, so `complete` then covers every byte up to `size`.
  bool complete = !local::FileExists(Join(WorkloadDir(id), kWorkloadFile)) ||
                  local::FileExists(Join(TaskDir(id, task), local::kStatusFile));
  const std::string path = LogFile(id, task);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    return NotFound("task", absl::StrCat(id, "/", TaskName(task)));
  }
  if (fd < 0) return ErrnoUnavailable(absl::StrCat("cannot open ", path));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    absl::Status error = ErrnoUnavailable(absl::StrCat("cannot stat ", path));
    ::close(fd);
    return error;
  }
  LogChunk chunk;
  chunk.size = st.st_size;
  chunk.complete = complete;
  const int64_t want =
      std::min({max_bytes, kMaxLogChunk, std::max<int64_t>(0, chunk.size - offset)});
  chunk.data.resize(static_cast<size_t>(want));
  int64_t got = 0;
  while (got < want) {
    ssize_t n = ::pread(fd, chunk.data.data() + got, static_cast<size_t>(want - got), offset + got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += n;
  }
  ::close(fd);
  chunk.data.resize(static_cast<size_t>(got));
  chunk.next_offset = offset + got;
  return chunk;
}

}  // namespace submarine::compute
