#include "common/compute/task_supervisor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/compute/task_files.h"

namespace submarine::compute::local {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

constexpr std::chrono::milliseconds kDefaultGrace = std::chrono::seconds(10);
constexpr std::chrono::seconds kUsagePeriod{2};
constexpr char kDefaultPath[] = "/usr/local/bin:/usr/bin:/bin";
constexpr int64_t kCpuPeriodMicros = 100000;
constexpr int64_t kMinCpuQuotaMicros = 1000;  // the kernel refuses less in cpu.max
// A service replica that exits is started again after a back-off that doubles from the first to
// the last value for each exit in a row, and starts over once an attempt ran kSteadyRun.
constexpr std::chrono::milliseconds kFirstBackoff{100};
constexpr std::chrono::milliseconds kMaxBackoff{10000};
constexpr std::chrono::seconds kSteadyRun{10};
constexpr std::chrono::milliseconds kMaxProbeTimeout{1000};

std::string Join(const std::string& dir, const std::string& name) {
  return absl::StrCat(dir, "/", name);
}

absl::Status WriteControlFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::UnavailableError(absl::StrCat(path, ": ", std::strerror(errno)));
  ssize_t n = ::write(fd, value.data(), value.size());
  int saved = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return absl::UnavailableError(absl::StrCat("writing \"", value, "\" to ", path, ": ",
                                               std::strerror(n < 0 ? saved : EIO)));
  }
  return absl::OkStatus();
}

// argv[0] as execve wants it: a path containing '/' as is, else the first executable regular
// file of that name on `path_list` (the task's PATH, not the supervisor's). Unresolved names are
// returned unchanged, so that execve fails with ENOENT and says so in the log.
std::string FindExecutable(const std::string& name, const std::string& path_list) {
  if (name.find('/') != std::string::npos) return name;
  for (absl::string_view dir : absl::StrSplit(path_list, ':')) {
    std::string candidate = absl::StrCat(dir.empty() ? "." : dir, "/", name);
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return name;
}

// Probes a service replica on 127.0.0.1:`port`: "" when it is ready — it accepts a connection
// and, with an http_path, answers GET with 2xx or 3xx — else why not. Takes at most `timeout`.
std::string ProbeReplica(int port, const std::string& http_path,
                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left_ms = [&] {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<int64_t>(0, left.count()));
  };
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::StrCat("socket: ", std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string where = absl::StrCat("127.0.0.1:", port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return absl::StrCat(where, ": ", std::strerror(errno));
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, left_ms()) <= 0) return absl::StrCat(where, ": no answer to connect");
    int error = 0;
    socklen_t len = sizeof error;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) return absl::StrCat(where, ": ", std::strerror(error));
  }
  if (http_path.empty()) return "";
  const std::string request = absl::StrCat("GET ", http_path, " HTTP/1.1\r\nHost: ", where,
                                           "\r\nConnection: close\r\n\r\n");
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    return absl::StrCat("GET ", http_path, ": ", std::strerror(errno));
  }
  std::string head;
  while (head.find("\r\n") == std::string::npos && head.size() < 512) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left_ms()) <= 0) {
      return absl::StrCat("GET ", http_path, ": no answer within ", timeout.count(), " ms");
    }
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    head.append(buf, static_cast<size_t>(n));
  }
  // "HTTP/1.1 200 OK"
  const std::string status_line = head.substr(0, head.find("\r\n"));
  std::vector<absl::string_view> words = absl::StrSplit(status_line, ' ');
  int code = 0;
  if (words.size() < 2 || !absl::StartsWith(words[0], "HTTP/") ||
      !absl::SimpleAtoi(words[1], &code)) {
    return absl::StrCat("GET ", http_path, ": not an HTTP answer");
  }
  if (code < 200 || code >= 400) return absl::StrCat("GET ", http_path, ": HTTP ", code);
  return "";
}

class TaskSupervisor {
 public:
  TaskSupervisor(std::string dir, int ready_fd) : dir_(std::move(dir)), ready_fd_(ready_fd) {}

  int Run() {
    lock_fd_ = ::open(Join(dir_, kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0) return Abandon("cannot open the task lock");
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      Ready("busy");  // another supervisor owns this task
      return 0;
    }
    if (FileExists(Join(dir_, kStatusFile))) {
      Ready("done");
      return 0;
    }
    auto text = ReadSmallFile(Join(dir_, kPlanFile));
    absl::StatusOr<TaskPlan> plan =
        text.ok() ? PlanFromJson(*text) : absl::StatusOr<TaskPlan>(text.status());
    if (!plan.ok()) {
      TaskOutcome outcome;
      outcome.message =
          absl::StrCat("the task supervisor cannot read its plan: ", plan.status().message());
      return Finish(outcome);
    }
    plan_ = *std::move(plan);
    auto self = IdentityOf(::getpid());
    if (!self.ok()) return Abandon("cannot read its own /proc entry");
    record_.supervisor = *self;
    record_.note = SetUpCgroup();
    record_.cgroup = cgroup_;
    record_.port = plan_.port;
    return Finish(RunAttempts());
  }

 private:
  // Runs attempts until one succeeds, the restarts are used up, or a stop arrives.
  TaskOutcome RunAttempts() {
    TaskOutcome outcome;
    int first = 1;  // a service replica started again after its supervisor vanished counts on
    if (auto done = ReadSmallFile(Join(dir_, kAttemptsFile)); done.ok()) {
      int n = 0;
      if (absl::SimpleAtoi(*done, &n) && n > 0) first = n + 1;
    }
    for (int attempt = first;; ++attempt) {
      outcome = TaskOutcome{};
      outcome.attempt = attempt;
      outcome.started_us = record_.started_us;
      if (StopRequested()) {
        outcome.phase = Phase::kKilled;
        outcome.message = attempt == first
                              ? "stopped on request before it started"
                              : absl::StrCat("stopped on request before attempt ", attempt);
        return outcome;
      }
      const int64_t now = NowMicros();
      if (record_.started_us == 0) record_.started_us = now;
      outcome.started_us = record_.started_us;
      auto child = StartChild(attempt);
      if (!child.ok()) {
        outcome.message = std::string(child.status().message());
        return outcome;
      }
      record_.attempt = attempt;
      record_.child_pid = *child;
      record_.attempt_started_us = now;
      record_.restarting.clear();
      if (plan_.port > 0) {
        // Ready at once without a probe; with one, not before it passed in this attempt.
        SetReadiness(!plan_.probe, plan_.probe ? "not probed yet" : "");
        next_probe_ = std::chrono::steady_clock::now() +
                      (plan_.probe ? plan_.probe->period : std::chrono::milliseconds(0));
      }
      // Without its record the backend could not signal nor adopt the task: a supervisor that
      // cannot write it must not run a task nobody can see.
      absl::Status recorded = WriteFileAtomically(Join(dir_, kSupervisorFile), ToJson(record_));
      if (!recorded.ok()) {
        ::killpg(*child, SIGKILL);
        Reap(*child);
        outcome.message =
            absl::StrCat("the task supervisor cannot record the task: ", recorded.message());
        return outcome;
      }
      Ready("ready");
      // A Stop that found no record to signal left its marker before this record existed.
      if (StopRequested()) BeginStop();
      const int wait_status = Wait(*child);
      outcome.finished_us = NowMicros();
      if (WIFEXITED(wait_status)) outcome.exit_code = WEXITSTATUS(wait_status);
      if (WIFSIGNALED(wait_status)) outcome.signal = WTERMSIG(wait_status);
      if (stopping_) {
        if (stop_requested_) {
          outcome.phase = Phase::kKilled;
          outcome.message = forced_ ? absl::StrCat("stopped on request; killed after the ",
                                                   grace_.count(), " ms grace period")
                                    : "stopped on request";
        } else {
          outcome.message = absl::StrCat(
              "the task supervisor was terminated without a stop request; the task ended with ",
              DescribeWaitStatus(wait_status));
        }
        return outcome;
      }
      if (plan_.restart_always) {
        if (!WaitToRestart(outcome, wait_status)) return outcome;
        continue;
      }
      if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0) {
        outcome.phase = Phase::kSucceeded;
        return outcome;
      }
      outcome.message = absl::StrCat(DescribeWaitStatus(wait_status), OutOfMemoryNote());
      if (attempt > plan_.max_restarts) return outcome;
    }
  }

  // A service replica's attempt ended on its own: records why and when the next one starts and
  // waits the back-off. False when a signal ended the wait; `outcome` then says how.
  bool WaitToRestart(TaskOutcome& outcome, int wait_status) {
    const auto ran = std::chrono::microseconds(outcome.finished_us - record_.attempt_started_us);
    exits_in_a_row_ = ran >= kSteadyRun ? 1 : exits_in_a_row_ + 1;
    const auto backoff =
        std::min(kMaxBackoff, kFirstBackoff * (int64_t{1} << std::min(exits_in_a_row_ - 1, 10)));
    SetReadiness(false, "not running");
    record_.restarting =
        absl::StrCat("attempt ", record_.attempt, " ended with ", DescribeWaitStatus(wait_status),
                     OutOfMemoryNote(), "; starting again in ", backoff.count(), " ms");
    (void)WriteFileAtomically(Join(dir_, kSupervisorFile), ToJson(record_));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    const auto until = std::chrono::steady_clock::now() + backoff;
    while (true) {
      auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) return true;
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
      timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
      int sig = ::sigtimedwait(&set, nullptr, &ts);
      if (sig == SIGTERM || sig == SIGINT) {
        outcome.finished_us = NowMicros();
        if (StopRequested()) {
          outcome.phase = Phase::kKilled;
          outcome.message = "stopped on request";
        } else {
          outcome.message = "the task supervisor was terminated without a stop request";
        }
        return false;
      }
    }
  }

  // Probes a service replica when its period came; ready.json changes with the verdict.
  void ProbeIfDue() {
    if (!plan_.probe || stopping_ || std::chrono::steady_clock::now() < next_probe_) return;
    const std::string why = ProbeReplica(plan_.port, plan_.probe->http_path,
                                         std::min(plan_.probe->period, kMaxProbeTimeout));
    SetReadiness(why.empty(), why);
    next_probe_ = std::chrono::steady_clock::now() + plan_.probe->period;
  }

  void SetReadiness(bool ready, const std::string& message) {
    Readiness r{record_.attempt, ready, message};
    if (readiness_ && readiness_->attempt == r.attempt && readiness_->ready == r.ready &&
        readiness_->message == r.message) {
      return;
    }
    if (WriteFileAtomically(Join(dir_, kReadyFile), ToJson(r)).ok()) readiness_ = r;
  }

  // Forks the attempt's process: its own group, killed with the supervisor, output in the log.
  absl::StatusOr<pid_t> StartChild(int attempt) {
    std::map<std::string, std::string> env = plan_.env;
    env["SUBMARINE_TASK_ATTEMPT"] = absl::StrCat(attempt);
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env) env_strings.push_back(absl::StrCat(k, "=", v));
    std::vector<char*> envp;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = plan_.argv;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    auto path = env.find("PATH");
    const std::string program =
        FindExecutable(args[0], path != env.end() ? path->second : kDefaultPath);
    const std::string cgroup_procs = cgroup_.empty() ? "" : Join(cgroup_, "cgroup.procs");

    int log_fd = ::open(plan_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot open the task log ", plan_.log_file, ": ", std::strerror(errno)));
    }
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    const pid_t self = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      int saved = errno;
      ::close(log_fd);
      if (null_fd >= 0) ::close(null_fd);
      return absl::UnavailableError(
          absl::StrCat("cannot start the task: fork: ", std::strerror(saved)));
    }
    if (pid == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != self) ::_exit(128 + SIGKILL);  // the supervisor died already
      if (!cgroup_procs.empty()) (void)WriteControlFile(cgroup_procs, "0");
      if (null_fd >= 0) ::dup2(null_fd, 0);
      ::dup2(log_fd, 1);
      ::dup2(log_fd, 2);
      ::close_range(3, ~0U, 0);
      for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      if (::chdir(plan_.working_dir.c_str()) != 0) {
        ChildFailed("cannot enter the working directory ", plan_.working_dir);
      }
      ::execve(program.c_str(), argv.data(), envp.data());
      ChildFailed("cannot run ", args[0]);
    }
    ::setpgid(pid, pid);  // also in the parent, so the group exists before anyone signals it
    ::close(log_fd);
    if (null_fd >= 0) ::close(null_fd);
    return pid;
  }

  // In the forked child: says why into the log (its stderr) and exits 127, as a shell does.
  [[noreturn]] static void ChildFailed(const char* what, const std::string& name) {
    const std::string line =
        absl::StrCat("submarine-task-supervisor: ", what, name, ": ", std::strerror(errno), "\n");
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
    ::_exit(127);
  }

  // Waits for the child to exit while handling stop signals; then kills what is left in its
  // group (before reaping, so that the group id cannot have been reused) and reaps it.
  int Wait(pid_t child) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    while (true) {
      siginfo_t info{};
      if (::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == child) {
        break;
      }
      int sig;
      if (kill_at_) {
        auto left = std::max(*kill_at_ - std::chrono::steady_clock::now(),
                             std::chrono::steady_clock::duration::zero());
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
        timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        sig = ::sigtimedwait(&set, nullptr, &ts);
      } else {
        // Wakes every period to sample what the task's processes use (system metrics), and to
        // probe a service replica.
        const auto now = std::chrono::steady_clock::now();
        if (now >= next_usage_) {
          SampleUsage(child);
          next_usage_ = now + kUsagePeriod;
        }
        ProbeIfDue();
        auto wake = next_usage_;
        if (plan_.probe) wake = std::min(wake, next_probe_);
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::max(wake - std::chrono::steady_clock::now(),
                               std::chrono::steady_clock::duration(std::chrono::milliseconds(1))))
                      .count();
        timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
        sig = ::sigtimedwait(&set, nullptr, &ts);
      }
      if (sig == SIGTERM || sig == SIGINT) BeginStop();
      if (kill_at_ && std::chrono::steady_clock::now() >= *kill_at_) {
        ::killpg(child, SIGKILL);
        forced_ = true;
        kill_at_.reset();
      }
    }
    ::killpg(child, SIGKILL);
    return Reap(child);
  }

  static int Reap(pid_t child) {
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  }

  // SIGTERM to the group now, SIGKILL after the grace period (once, whatever arrives next).
  void BeginStop() {
    if (stopping_ || record_.child_pid <= 0) return;
    stopping_ = true;
    stop_requested_ = StopRequested();
    grace_ = kDefaultGrace;
    // This replica's own marker (scaled down) first, then the workload's.
    auto text = plan_.task_stop_file.empty() ? ReadSmallFile(plan_.stop_file)
                                             : ReadSmallFile(plan_.task_stop_file);
    if (!text.ok()) text = ReadSmallFile(plan_.stop_file);
    if (text.ok()) {
      if (auto stop = StopRequestFromJson(*text); stop.ok()) {
        grace_ = std::chrono::milliseconds(std::max<int64_t>(0, stop->grace_ms));
      }
    }
    ::killpg(record_.child_pid, SIGTERM);
    kill_at_ = std::chrono::steady_clock::now() + grace_;
  }

  bool StopRequested() const {
    return FileExists(plan_.stop_file) ||
           (!plan_.task_stop_file.empty() && FileExists(plan_.task_stop_file));
  }

  // Creates the task's cgroup when limits are asked for; returns what the status should say
  // when they cannot be enforced.
  std::string SetUpCgroup() {
    if (plan_.cpu_millis <= 0 && plan_.memory_bytes <= 0) return "";
    auto refused = [](const std::string& why) {
      return absl::StrCat("limits not enforced: ", why);
    };
    if (plan_.cgroup_root.empty()) return refused("cgroups are disabled");
    auto controllers = ReadSmallFile(Join(plan_.cgroup_root, "cgroup.controllers"));
    if (!controllers.ok()) {
      return refused(absl::StrCat(plan_.cgroup_root, " is not a cgroup v2 hierarchy"));
    }
    std::vector<std::string> wanted;
    if (plan_.cpu_millis > 0) wanted.push_back("cpu");
    if (plan_.memory_bytes > 0) wanted.push_back("memory");
    std::vector<std::string> offered = absl::StrSplit(*controllers, absl::ByAnyChar(" \n"));
    std::string enable;
    for (const auto& c : wanted) {
      if (std::find(offered.begin(), offered.end(), c) == offered.end()) {
        return refused(
            absl::StrCat("cgroup controller ", c, " is not available in ", plan_.cgroup_root));
      }
      absl::StrAppend(&enable, enable.empty() ? "+" : " +", c);
    }
    const std::string parent = Join(plan_.cgroup_root, "submarine");
    const std::string leaf =
        Join(parent, absl::StrCat(plan_.workload_id, ".", plan_.task.role, "-", plan_.task.index));
    absl::Status st = WriteControlFile(Join(plan_.cgroup_root, "cgroup.subtree_control"), enable);
    if (st.ok() && ::mkdir(parent.c_str(), 0755) != 0 && errno != EEXIST) {
      st = absl::UnavailableError(absl::StrCat("mkdir ", parent, ": ", std::strerror(errno)));
    }
    if (st.ok()) st = WriteControlFile(Join(parent, "cgroup.subtree_control"), enable);
    if (st.ok() && ::mkdir(leaf.c_str(), 0755) != 0 && errno != EEXIST) {
      st = absl::UnavailableError(absl::StrCat("mkdir ", leaf, ": ", std::strerror(errno)));
    }
    if (st.ok() && plan_.memory_bytes > 0) {
      st = WriteControlFile(Join(leaf, "memory.max"), absl::StrCat(plan_.memory_bytes));
    }
    if (st.ok() && plan_.cpu_millis > 0) {
      const int64_t quota =
          std::max(kMinCpuQuotaMicros, plan_.cpu_millis * kCpuPeriodMicros / 1000);
      st = WriteControlFile(Join(leaf, "cpu.max"), absl::StrCat(quota, " ", kCpuPeriodMicros));
    }
    if (!st.ok()) {
      ::rmdir(leaf.c_str());
      return refused(std::string(st.message()));
    }
    cgroup_ = leaf;
    return "";
  }

  // " (out of memory: ...)" when the kernel's OOM killer ended something in the task's cgroup.
  std::string OutOfMemoryNote() const {
    if (cgroup_.empty()) return "";
    auto events = ReadSmallFile(Join(cgroup_, "memory.events"));
    if (!events.ok()) return "";
    for (absl::string_view line : absl::StrSplit(*events, '\n')) {
      int64_t kills = 0;
      if (absl::ConsumePrefix(&line, "oom_kill ") && absl::SimpleAtoi(line, &kills) && kills > 0) {
        return absl::StrCat(" (out of memory: the limit is ", plan_.memory_bytes, " bytes)");
      }
    }
    return "";
  }

  // What the task's process group uses now, into usage.json (max resident size kept); with
  // GPUs, what nvidia-smi says of its processes and GPUs (a call of tens of milliseconds).
  void SampleUsage(pid_t child) {
    std::vector<pid_t> pids;
    TaskUsage u = SampleGroupUsage(::getsid(0), child, &pids);
    max_rss_ = std::max(max_rss_, u.rss_bytes);
    u.max_rss_bytes = max_rss_;
    auto devices = plan_.env.find("CUDA_VISIBLE_DEVICES");
    if (!plan_.nvidia_smi.empty() && devices != plan_.env.end() && !devices->second.empty()) {
      if (auto gpu = SampleGpuUsage(plan_.nvidia_smi, pids,
                                    absl::StrSplit(devices->second, ',', absl::SkipEmpty()))) {
        if (!gpu_) gpu_ = GpuUsage{};
        gpu_->max_memory_bytes = std::max(gpu_->max_memory_bytes, gpu->memory_bytes);
        gpu_->utilization = gpu->utilization;
        gpu->max_memory_bytes = gpu_->max_memory_bytes;
        u.gpu = gpu;
      }
    }
    (void)WriteFileAtomically(Join(dir_, kUsageFile), ToJson(u));
  }

  int Finish(TaskOutcome outcome) {
    outcome.host = plan_.host;
    rusage children{};
    if (outcome.started_us > 0 && ::getrusage(RUSAGE_CHILDREN, &children) == 0) {
      TaskUsage u;
      u.cpu_micros = (children.ru_utime.tv_sec + children.ru_stime.tv_sec) * 1000000LL +
                     children.ru_utime.tv_usec + children.ru_stime.tv_usec;
      u.max_rss_bytes = std::max<int64_t>(max_rss_, children.ru_maxrss * 1024LL);
      u.gpu = gpu_;  // memory 0: it ended
      outcome.usage = u;
    }
    if (outcome.finished_us == 0) outcome.finished_us = NowMicros();
    if (!record_.note.empty()) {
      outcome.message = outcome.message.empty() ? record_.note
                                                : absl::StrCat(outcome.message, "; ", record_.note);
    }
    absl::Status written = WriteFileAtomically(Join(dir_, kStatusFile), ToJson(outcome));
    if (!cgroup_.empty()) ::rmdir(cgroup_.c_str());  // empty by now, unless something lingers
    Ready("done");
    return written.ok() ? 0 : 1;
  }

  // Exits without a verdict, telling the launcher why (it reports the launch as failed).
  int Abandon(const char* why) {
    Ready(absl::StrCat("error: ", why, ": ", std::strerror(errno)));
    return 1;
  }

  void Ready(const std::string& word) {
    if (ready_fd_ < 0) return;
    const std::string line = absl::StrCat(word, "\n");
    ssize_t ignored = ::write(ready_fd_, line.data(), line.size());
    (void)ignored;
    ::close(ready_fd_);
    ready_fd_ = -1;
  }

  const std::string dir_;
  int ready_fd_;
  int lock_fd_ = -1;  // held (flock) until the process exits
  TaskPlan plan_;
  SupervisorRecord record_;
  std::string cgroup_;
  bool stopping_ = false;
  bool stop_requested_ = false;  // the stop came through the workload's stop marker
  int64_t max_rss_ = 0;          // the largest resident size sampled
  std::optional<GpuUsage> gpu_;  // the most GPU memory seen and the last utilization
  bool forced_ = false;
  std::chrono::milliseconds grace_{0};
  std::optional<SteadyTime> kill_at_;
  SteadyTime next_usage_ = std::chrono::steady_clock::now() + kUsagePeriod;
  SteadyTime next_probe_;
  int exits_in_a_row_ = 0;              // a service replica's exits since it last ran steadily
  std::optional<Readiness> readiness_;  // what ready.json says
};

}  // namespace

absl::StatusOr<SupervisorArgs> ParseSupervisorArgs(int argc, char** argv) {
  SupervisorArgs args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--detach") {
      args.detach = true;
    } else if ((flag == "--task-dir" || flag == "--ready-fd") && i + 1 < argc) {
      const std::string value = argv[++i];
      if (flag == "--task-dir") {
        args.task_dir = value;
      } else if (!absl::SimpleAtoi(value, &args.ready_fd) || args.ready_fd < 0) {
        return absl::InvalidArgumentError(absl::StrCat("--ready-fd: not a descriptor: ", value));
      }
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown or incomplete argument ", flag));
    }
  }
  if (args.task_dir.empty()) return absl::InvalidArgumentError("--task-dir is required");
  return args;
}

int RunTaskSupervisor(const SupervisorArgs& args) {
  if (args.detach) {
    pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid > 0) ::_exit(0);
  }
  ::setsid();  // fails harmlessly when the launcher made this process a session leader already
  ::signal(SIGHUP, SIG_IGN);
  ::signal(SIGPIPE, SIG_IGN);  // the launcher may have stopped listening on the ready fd
  // Signals are taken synchronously (sigtimedwait) and never lost: block them before anything.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  if (args.ready_fd >= 0) ::fcntl(args.ready_fd, F_SETFD, FD_CLOEXEC);
  return TaskSupervisor(args.task_dir, args.ready_fd).Run();
}

}  // namespace submarine::compute::local
