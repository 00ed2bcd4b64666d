#include "common/compute/task_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"

namespace submarine::compute::local {
namespace {

using nlohmann::json;

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

json IdentityToJson(const ProcessIdentity& id) {
  return {{"pid", id.pid}, {"start_ticks", id.start_ticks}, {"boot_id", id.boot_id}};
}

ProcessIdentity IdentityFromJson(const json& j) {
  ProcessIdentity id;
  id.pid = j.at("pid").get<pid_t>();
  id.start_ticks = j.at("start_ticks").get<uint64_t>();
  id.boot_id = j.at("boot_id").get<std::string>();
  return id;
}

Phase PhaseFromName(const std::string& name) {
  for (Phase p :
       {Phase::kPending, Phase::kRunning, Phase::kSucceeded, Phase::kFailed, Phase::kKilled}) {
    if (name == PhaseName(p)) return p;
  }
  throw std::invalid_argument("unknown phase " + name);
}

// Parses `text` with `read`, turning every JSON error into INVALID_ARGUMENT.
template <typename T, typename Read>
absl::StatusOr<T> Parse(const std::string& text, const char* what, Read read) {
  try {
    return read(json::parse(text));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed ", what, ": ", e.what()));
  }
}

json UsageJson(const TaskUsage& u) {
  json j = {
      {"cpu_micros", u.cpu_micros}, {"rss_bytes", u.rss_bytes}, {"max_rss_bytes", u.max_rss_bytes}};
  if (u.gpu) {
    j["gpu"] = {{"memory_bytes", u.gpu->memory_bytes},
                {"max_memory_bytes", u.gpu->max_memory_bytes},
                {"utilization", u.gpu->utilization}};
  }
  return j;
}

TaskUsage UsageOfJson(const json& j) {
  TaskUsage u;
  u.cpu_micros = j.at("cpu_micros").get<int64_t>();
  u.rss_bytes = j.at("rss_bytes").get<int64_t>();
  u.max_rss_bytes = j.at("max_rss_bytes").get<int64_t>();
  if (j.contains("gpu")) {
    const json& g = j["gpu"];
    u.gpu = GpuUsage{g.at("memory_bytes").get<int64_t>(), g.at("max_memory_bytes").get<int64_t>(),
                     g.at("utilization").get<double>()};
  }
  return u;
}

}  // namespace

std::string ToJson(const TaskPlan& p) {
  json j = {{"workload_id", p.workload_id},
            {"role", p.task.role},
            {"index", p.task.index},
            {"argv", p.argv},
            {"env", p.env},
            {"working_dir", p.working_dir},
            {"log_file", p.log_file},
            {"stop_file", p.stop_file},
            {"max_restarts", p.max_restarts},
            {"cpu_millis", p.cpu_millis},
            {"memory_bytes", p.memory_bytes},
            {"cgroup_root", p.cgroup_root},
            {"host", p.host},
            {"restart_always", p.restart_always},
            {"task_stop_file", p.task_stop_file},
            {"port", p.port}};
  if (!p.nvidia_smi.empty()) j["nvidia_smi"] = p.nvidia_smi;
  if (p.probe) {
    j["probe"] = {{"http_path", p.probe->http_path}, {"period_ms", p.probe->period.count()}};
  }
  return j.dump(2) + "\n";
}

absl::StatusOr<TaskPlan> PlanFromJson(const std::string& text) {
  return Parse<TaskPlan>(text, "task plan", [](const json& j) {
    TaskPlan p;
    p.workload_id = j.at("workload_id").get<std::string>();
    p.task.role = j.at("role").get<std::string>();
    p.task.index = j.at("index").get<int>();
    p.argv = j.at("argv").get<std::vector<std::string>>();
    p.env = j.at("env").get<std::map<std::string, std::string>>();
    p.working_dir = j.at("working_dir").get<std::string>();
    p.log_file = j.at("log_file").get<std::string>();
    p.stop_file = j.at("stop_file").get<std::string>();
    p.max_restarts = j.at("max_restarts").get<int>();
    p.cpu_millis = j.at("cpu_millis").get<int64_t>();
    p.memory_bytes = j.at("memory_bytes").get<int64_t>();
    p.cgroup_root = j.at("cgroup_root").get<std::string>();
    p.host = j.at("host").get<std::string>();
    p.restart_always = j.value("restart_always", false);
    p.task_stop_file = j.value("task_stop_file", "");
    p.port = j.value("port", 0);
    p.nvidia_smi = j.value("nvidia_smi", "");
    if (j.contains("probe")) {
      p.probe =
          ReadinessProbe{j["probe"].at("http_path").get<std::string>(),
                         std::chrono::milliseconds(j["probe"].at("period_ms").get<int64_t>())};
    }
    if (p.argv.empty()) throw std::invalid_argument("empty argv");
    return p;
  });
}

std::string ToJson(const SupervisorRecord& r) {
  json j = {{"supervisor", IdentityToJson(r.supervisor)},
            {"attempt", r.attempt},
            {"child_pid", r.child_pid},
            {"started_us", r.started_us},
            {"attempt_started_us", r.attempt_started_us},
            {"cgroup", r.cgroup},
            {"note", r.note},
            {"port", r.port},
            {"restarting", r.restarting}};
  return j.dump(2) + "\n";
}

absl::StatusOr<SupervisorRecord> SupervisorRecordFromJson(const std::string& text) {
  return Parse<SupervisorRecord>(text, "supervisor record", [](const json& j) {
    SupervisorRecord r;
    r.supervisor = IdentityFromJson(j.at("supervisor"));
    r.attempt = j.at("attempt").get<int>();
    r.child_pid = j.at("child_pid").get<pid_t>();
    r.started_us = j.at("started_us").get<int64_t>();
    r.attempt_started_us = j.at("attempt_started_us").get<int64_t>();
    r.cgroup = j.at("cgroup").get<std::string>();
    r.note = j.at("note").get<std::string>();
    r.port = j.value("port", 0);
    r.restarting = j.value("restarting", "");
    return r;
  });
}

std::string ToJson(const Readiness& r) {
  return json{{"attempt", r.attempt}, {"ready", r.ready}, {"message", r.message}}.dump();
}

absl::StatusOr<Readiness> ReadinessFromJson(const std::string& text) {
  return Parse<Readiness>(text, "readiness", [](const json& j) {
    Readiness r;
    r.attempt = j.at("attempt").get<int>();
    r.ready = j.at("ready").get<bool>();
    r.message = j.at("message").get<std::string>();
    return r;
  });
}

std::string ToJson(const TaskOutcome& o) {
  json j = {{"phase", PhaseName(o.phase)},
            {"exit_code", o.exit_code ? json(*o.exit_code) : json(nullptr)},
            {"signal", o.signal ? json(*o.signal) : json(nullptr)},
            {"attempt", o.attempt},
            {"started_us", o.started_us},
            {"finished_us", o.finished_us},
            {"host", o.host},
            {"message", o.message}};
  if (o.usage) j["usage"] = UsageJson(*o.usage);
  return j.dump(2) + "\n";
}

namespace {

// The lines of a CSV answer, each split on commas and trimmed.
std::vector<std::vector<std::string>> CsvRows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipWhitespace())) {
    std::vector<std::string> row;
    for (absl::string_view cell : absl::StrSplit(line, ',')) {
      row.emplace_back(absl::StripAsciiWhitespace(cell));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

// Runs argv (no shell) and returns its stdout, or nullopt when it fails, exits non-zero or takes
// longer than `timeout` (then it is killed).
std::optional<std::string> RunForOutput(const std::vector<std::string>& argv,
                                        std::chrono::milliseconds timeout) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return std::nullopt;
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    sigset_t none;  // the supervisor blocks SIGTERM, SIGINT and SIGCHLD: not for this program
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(fds[1], 1);
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 2);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return std::nullopt;
  }
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buffer[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = ready == 0;
      break;
    }
    ssize_t n = ::read(fds[0], buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<size_t>(n));
    if (out.size() > (1 << 20)) {
      timed_out = true;  // not what nvidia-smi says
      break;
    }
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
  return out;
}

}  // namespace

std::string ToJson(const TaskUsage& u) { return UsageJson(u).dump(); }

absl::StatusOr<TaskUsage> UsageFromJson(const std::string& text) {
  return Parse<TaskUsage>(text, "task usage", [](const json& j) { return UsageOfJson(j); });
}

GpuUsage ParseGpuUsage(const std::string& apps, const std::string& gpus,
                       const std::vector<pid_t>& pids, const std::vector<std::string>& devices) {
  GpuUsage g;
  for (const auto& row : CsvRows(apps)) {
    int64_t pid = 0, mib = 0;
    if (row.size() < 2 || !absl::SimpleAtoi(row[0], &pid) || !absl::SimpleAtoi(row[1], &mib)) {
      continue;
    }
    if (std::find(pids.begin(), pids.end(), static_cast<pid_t>(pid)) != pids.end()) {
      g.memory_bytes += mib * 1024 * 1024;
    }
  }
  double sum = 0;
  int counted = 0;
  for (const auto& row : CsvRows(gpus)) {
    double percent = 0;
    if (row.size() < 3 || !absl::SimpleAtod(row[2], &percent)) continue;
    if (std::find_if(devices.begin(), devices.end(), [&](const std::string& d) {
          return d == row[0] || d == row[1];
        }) == devices.end()) {
      continue;
    }
    sum += percent;
    ++counted;
  }
  if (counted > 0) g.utilization = sum / counted;
  g.max_memory_bytes = g.memory_bytes;
  return g;
}

std::optional<GpuUsage> SampleGpuUsage(const std::string& path, const std::vector<pid_t>& pids,
                                       const std::vector<std::string>& devices) {
  constexpr std::chrono::seconds kTimeout{5};
  auto apps = RunForOutput(
      {path, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"}, kTimeout);
  if (!apps) return std::nullopt;
  auto gpus = RunForOutput(
      {path, "--query-gpu=index,uuid,utilization.gpu", "--format=csv,noheader,nounits"}, kTimeout);
  if (!gpus) return std::nullopt;
  return ParseGpuUsage(*apps, *gpus, pids, devices);
}

TaskUsage SampleGroupUsage(pid_t session, pid_t pgrp, std::vector<pid_t>* pids) {
  TaskUsage u;
  static const int64_t ticks = ::sysconf(_SC_CLK_TCK);
  static const int64_t page = ::sysconf(_SC_PAGESIZE);
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return u;
  while (dirent* e = ::readdir(proc)) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(e->d_name, &pid)) continue;
    auto text = ReadSmallFile(absl::StrCat("/proc/", pid, "/stat"));
    if (!text.ok()) continue;
    // Fields after the parenthesised command: state(3) ppid pgrp session ... utime(14)
    // stime(15) ... rss(24), counted from 1.
    const size_t close = text->rfind(')');
    if (close == std::string::npos) continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::string_view(*text).substr(close + 2), ' ', absl::SkipEmpty());
    if (f.size() < 22) continue;
    int64_t group = 0, sid = 0, utime = 0, stime = 0, rss = 0;
    if (!absl::SimpleAtoi(f[2], &group) || !absl::SimpleAtoi(f[3], &sid) || group != pgrp ||
        sid != session) {
      continue;
    }
    if (absl::SimpleAtoi(f[11], &utime) && absl::SimpleAtoi(f[12], &stime) && ticks > 0) {
      u.cpu_micros += (utime + stime) * 1000000 / ticks;
    }
    if (absl::SimpleAtoi(f[21], &rss)) u.rss_bytes += rss * page;
    if (pids != nullptr) pids->push_back(pid);
  }
  ::closedir(proc);
  u.max_rss_bytes = u.rss_bytes;
  return u;
}

absl::StatusOr<TaskOutcome> OutcomeFromJson(const std::string& text) {
  return Parse<TaskOutcome>(text, "task status", [](const json& j) {
    TaskOutcome o;
    o.phase = PhaseFromName(j.at("phase").get<std::string>());
    if (!IsFinal(o.phase)) throw std::invalid_argument("a recorded status must be final");
    if (!j.at("exit_code").is_null()) o.exit_code = j.at("exit_code").get<int>();
    if (!j.at("signal").is_null()) o.signal = j.at("signal").get<int>();
    o.attempt = j.at("attempt").get<int>();
    o.started_us = j.at("started_us").get<int64_t>();
    o.finished_us = j.at("finished_us").get<int64_t>();
    o.host = j.at("host").get<std::string>();
    o.message = j.at("message").get<std::string>();
    if (j.contains("usage")) o.usage = UsageOfJson(j["usage"]);
    return o;
  });
}

std::string ToJson(const StopRequest& s) {
  return json{{"grace_ms", s.grace_ms}, {"requested_us", s.requested_us}}.dump(2) + "\n";
}

absl::StatusOr<StopRequest> StopRequestFromJson(const std::string& text) {
  return Parse<StopRequest>(text, "stop request", [](const json& j) {
    StopRequest s;
    s.grace_ms = j.at("grace_ms").get<int64_t>();
    s.requested_us = j.at("requested_us").get<int64_t>();
    return s;
  });
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content, int mode) {
  // Unique per writer: two threads (or a backend and a supervisor) may replace the same file.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot create", tmp);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = Errno("cannot write", tmp);
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    absl::Status st = Errno("cannot write", tmp);
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = Errno("cannot rename onto", path);
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) return absl::NotFoundError(path);
    return Errno("cannot open", path);
  }
  std::string out;
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status st = Errno("cannot read", path);
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::optional<ProcStat> ReadProcStat(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  auto text = ReadSmallFile(absl::StrCat("/proc/", pid, "/stat"));
  if (!text.ok()) return std::nullopt;
  // The command name is parenthesised and may itself hold ')' or spaces: fields follow the last
  // ')'. Field 3 is the state, field 22 the start time.
  size_t close = text->rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(text->substr(close + 1));
  ProcStat st;
  std::string skip;
  fields >> st.state >> st.ppid >> st.pgrp >> st.session;
  for (int field = 7; field < 22 && fields; ++field) fields >> skip;
  fields >> st.start_ticks;
  if (!fields) return std::nullopt;
  return st;
}

std::string BootId() {
  auto text = ReadSmallFile("/proc/sys/kernel/random/boot_id");
  if (!text.ok()) return "";
  std::string id = *text;
  while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
  return id;
}

absl::StatusOr<ProcessIdentity> IdentityOf(pid_t pid) {
  auto st = ReadProcStat(pid);
  if (!st) return absl::NotFoundError(absl::StrCat("no process ", pid));
  return ProcessIdentity{pid, st->start_ticks, BootId()};
}

bool IsAlive(const ProcessIdentity& identity) {
  if (identity.pid <= 0 || identity.boot_id != BootId()) return false;
  auto st = ReadProcStat(identity.pid);
  return st && st->start_ticks == identity.start_ticks && st->state != 'Z' && st->state != 'X';
}

int KillGroupInSession(pid_t session, pid_t pgrp) {
  if (session <= 0 || pgrp <= 0) return 0;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return 0;
  int found = 0;
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    auto st = ReadProcStat(static_cast<pid_t>(pid));
    if (st && st->session == session && st->pgrp == pgrp && st->state != 'Z') ++found;
  }
  ::closedir(proc);
  // One killpg rather than a kill per process: it also reaches what was forked during the scan.
  if (found > 0) ::killpg(pgrp, SIGKILL);
  return found;
}

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string DescribeWaitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return absl::StrCat("exit code ", WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    const char* abbrev = ::sigabbrev_np(sig);
    return abbrev != nullptr ? absl::StrCat("killed by signal ", sig, " (SIG", abbrev, ")")
                             : absl::StrCat("killed by signal ", sig);
  }
  return absl::StrCat("wait status ", wait_status);
}

}  // namespace submarine::compute::local
