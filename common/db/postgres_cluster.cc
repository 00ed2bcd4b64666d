#include "common/db/postgres_cluster.h"

#include <dirent.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/net/address.h"
#include "common/status/status.h"
#include "common/util/wait.h"

namespace submarine::db {
namespace fs = std::filesystem;

namespace {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

absl::StatusOr<std::string> Capture(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return Internal("popen failed");
  std::string out;
  char buf[512];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) return Internal(absl::StrCat("command failed (", rc, "): ", cmd));
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

bool RunningAsRoot() { return ::geteuid() == 0; }

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The last `max_bytes` of `text` from `offset` on, starting at a line boundary when cut.
std::string TailFrom(const std::string& text, size_t offset, size_t max_bytes) {
  if (offset > text.size()) offset = 0;  // the file was replaced
  std::string out = text.substr(offset);
  if (out.size() > max_bytes) {
    out = out.substr(out.size() - max_bytes);
    if (auto nl = out.find('\n'); nl != std::string::npos) out = out.substr(nl + 1);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

size_t FileSize(const std::string& path) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  return ec ? 0 : static_cast<size_t>(size);
}

// What postmaster.pid records (PostgreSQL's miscinit.c: pid, data directory, start time, port,
// socket directory, listen address, "shmem key  shmem id", status), as far as we need it.
struct LockFile {
  pid_t pid = 0;
  int port = 0;
  long shm_key = 0;
  long shm_id = -1;  // -1: the postmaster died before it created its segment
};

bool ReadLockFile(const std::string& path, LockFile* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  if (lines.empty()) return false;
  out->pid = static_cast<pid_t>(std::atol(lines[0].c_str()));
  if (lines.size() > 3) out->port = std::atoi(lines[3].c_str());
  if (lines.size() > 6) {
    std::istringstream shm(lines[6]);
    long key = 0, id = -1;
    if (shm >> key >> id) {
      out->shm_key = key;
      out->shm_id = id;
    }
  }
  return true;
}

bool Zombie(pid_t pid) {
  std::string stat = ReadText(absl::StrCat("/proc/", pid, "/stat"));
  auto close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() || stat[close + 2] == 'Z' ||
         stat[close + 2] == 'X';
}

std::string Comm(pid_t pid) {
  std::string comm = ReadText(absl::StrCat("/proc/", pid, "/comm"));
  while (!comm.empty() && comm.back() == '\n') comm.pop_back();
  return comm;
}

// Whether `pid` is a live PostgreSQL process working in `data_dir` (a postmaster chdirs into its
// data directory and is started with -D naming it).
bool IsPostgresOf(pid_t pid, const std::string& data_dir) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  if (Zombie(pid) || Comm(pid) != "postgres") return false;
  std::error_code ec;
  fs::path cwd = fs::read_symlink(absl::StrCat("/proc/", pid, "/cwd"), ec);
  if (!ec) {
    fs::path dir = fs::weakly_canonical(data_dir, ec);
    return !ec && cwd == dir;
  }
  std::string cmdline = ReadText(absl::StrCat("/proc/", pid, "/cmdline"));
  for (char& c : cmdline) {
    if (c == '\0') c = ' ';
  }
  return cmdline.find(absl::StrCat(" ", data_dir, " ")) != std::string::npos;
}

// Whether a process is still attached to the System V segment PostgreSQL recorded (what the
// postmaster itself checks before it starts: "pre-existing shared memory block is still in use").
// A segment that is gone, or now someone else's (another key), holds nothing back.
bool SegmentInUse(long key, long shm_id) {
  if (shm_id < 0) return false;
  struct shmid_ds ds {};
  if (::shmctl(static_cast<int>(shm_id), IPC_STAT, &ds) != 0) return false;
  if (static_cast<long>(ds.shm_perm.__key) != key) return false;
  return ds.shm_nattch > 0;
}

// PostgreSQL processes that map the segment `shm_id` (its id is the inode in /proc/<pid>/maps).
std::vector<pid_t> PostgresProcessesAttachedTo(long shm_id) {
  std::vector<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  const std::string inode = absl::StrCat(" ", shm_id, " ");
  while (dirent* entry = ::readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(entry->d_name, &end, 10);
    if (end == entry->d_name || *end != '\0') continue;
    if (Comm(static_cast<pid_t>(pid)) != "postgres") continue;
    std::ifstream maps(absl::StrCat("/proc/", pid, "/maps"));
    for (std::string line; std::getline(maps, line);) {
      if (line.find("/SYSV") != std::string::npos && line.find(inode) != std::string::npos) {
        found.push_back(static_cast<pid_t>(pid));
        break;
      }
    }
  }
  ::closedir(proc);
  return found;
}

std::shared_ptr<spdlog::logger> Log() { return log::Get("postgres"); }

}  // namespace

PostgresCluster::PostgresCluster(Options options) : options_(std::move(options)) {}

absl::StatusOr<std::string> PostgresCluster::BinDir() {
  auto dir = Capture("pg_config --bindir 2>/dev/null");
  if (dir.ok() && fs::exists(*dir + "/initdb")) return *dir;
  std::string best;
  if (fs::exists("/usr/lib/postgresql")) {
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql")) {
      if (fs::exists(e.path() / "bin" / "initdb") && e.path().string() > best) {
        best = e.path().string();
      }
    }
  }
  if (best.empty()) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "POSTGRES_NOT_INSTALLED",
                     "PostgreSQL server binaries not found; run deploy/install-deps.sh");
  }
  return best + "/bin";
}

absl::Status PostgresCluster::RunTool(const std::string& tool, const std::string& args) const {
  SUBMARINE_ASSIGN_OR_RETURN(std::string bin, BinDir());
  std::string cmd = absl::StrCat(bin, "/", tool, " ", args);
  if (RunningAsRoot()) cmd = absl::StrCat("runuser -u postgres -- ", cmd);
  // This run's output only: an error must not quote an earlier tool's (initdb's transcript
  // after every failed start, as it once did).
  std::string output = absl::StrCat(options_.dir, "/", tool, ".log");
  cmd = absl::StrCat(cmd, " >", ShellQuote(output), " 2>&1");
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    return Internal(absl::StrCat(tool, " failed (exit ", WEXITSTATUS(rc),
                                 "): ", TailFrom(ReadText(output), 0, 1500)));
  }
  return absl::OkStatus();
}

absl::Status PostgresCluster::InitIfNeeded() {
  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return Internal(absl::StrCat("cannot create ", options_.dir, ": ", ec.message()));
  fs::create_directories(socket_dir(), ec);
  if (RunningAsRoot()) {
    // The server runs as `postgres`: it must own the directory and reach it.
    std::string chown = absl::StrCat("chown -R postgres:postgres ", ShellQuote(options_.dir));
    if (std::system(chown.c_str()) != 0) return Internal("chown of the data directory failed");
    std::string probe =
        absl::StrCat("runuser -u postgres -- test -w ", ShellQuote(options_.dir));
    if (std::system(probe.c_str()) != 0) {
      return MakeError(absl::StatusCode::kFailedPrecondition, "DATA_DIR_UNREACHABLE",
                       absl::StrCat("the postgres user cannot reach ", options_.dir,
                                    " (a parent directory is private); choose a --data-dir "
                                    "outside /root, e.g. /var/lib/submarine"),
                       {{"dataDir", options_.dir}});
    }
  }
  ::chmod(options_.dir.c_str(), 0700);
  if (fs::exists(data_dir() + "/PG_VERSION")) return absl::OkStatus();
  std::string args = absl::StrCat("-D ", ShellQuote(data_dir()), " -U ", options_.superuser,
                                  " -E UTF8 --locale=C --auth-local=trust",
                                  " --auth-host=scram-sha-256");
  if (!options_.durable) args += " --no-sync";
  return RunTool("initdb", args);
}

absl::Status PostgresCluster::Start() {
  if (Running()) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "POSTGRES_RUNNING",
        absl::StrCat("PostgreSQL already runs in ", data_dir(), " (pid ", PostmasterPid(), ")"),
        {{"dataDir", data_dir()}});
  }
  SUBMARINE_RETURN_IF_ERROR(ClearStaleLock());
  if (options_.port == 0) {
    SUBMARINE_ASSIGN_OR_RETURN(options_.port, net::PickFreePort());
  }
  std::string opts = absl::StrCat("-p ", options_.port, " -k ", socket_dir(),
                                  " -c listen_addresses=127.0.0.1 -c max_connections=200");
  if (!options_.durable) opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  std::string args = absl::StrCat("-D ", ShellQuote(data_dir()), " -l ", ShellQuote(server_log()),
                                  " -o ", ShellQuote(opts), " -w -t 60 start");
  const size_t log_offset = FileSize(server_log());
  absl::Status started = RunTool("pg_ctl", args);
  if (started.ok()) return started;
  // pg_ctl only says "could not start server; examine the log output": the reason is what the
  // server logged during this attempt.
  std::string logged = TailFrom(ReadText(server_log()), log_offset, 1500);
  return Internal(absl::StrCat("PostgreSQL did not start on port ", options_.port, ": ",
                               logged.empty() ? Message(started) : logged));
}

pid_t PostgresCluster::PostmasterPid() const {
  LockFile lock;
  return ReadLockFile(data_dir() + "/postmaster.pid", &lock) ? lock.pid : 0;
}

bool PostgresCluster::Running() const { return IsPostgresOf(PostmasterPid(), data_dir()); }

absl::Status PostgresCluster::ClearStaleLock(std::chrono::milliseconds grace) {
  const std::string pid_file = data_dir() + "/postmaster.pid";
  LockFile lock;
  if (!ReadLockFile(pid_file, &lock)) return absl::OkStatus();
  if (IsPostgresOf(lock.pid, data_dir())) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "POSTGRES_RUNNING",
        absl::StrCat("PostgreSQL already runs in ", data_dir(), " (pid ", lock.pid, ")"),
        {{"dataDir", data_dir()}});
  }
  auto in_use = [&lock] { return SegmentInUse(lock.shm_key, lock.shm_id); };
  if (in_use()) {
    Log()->info("postmaster {} is gone; waiting for its backends to exit", lock.pid);
    if (!WaitUntil([&] { return !in_use(); }, grace)) {
      std::vector<pid_t> left = PostgresProcessesAttachedTo(lock.shm_id);
      std::string pids;
      for (pid_t pid : left) absl::StrAppend(&pids, pids.empty() ? "" : ", ", pid);
      Log()->warn("backends of the dead postmaster {} still run after {} ms; killing {}", lock.pid,
                  grace.count(), pids);
      for (pid_t pid : left) ::kill(pid, SIGKILL);
      if (!WaitUntil([&] { return !in_use(); }, std::chrono::seconds(5))) {
        return absl::DeadlineExceededError(
            absl::StrCat("the shared memory of the dead postmaster ", lock.pid, " of ", data_dir(),
                         " is still in use (processes ", pids, "); stop them and retry"));
      }
    }
  }
  // PostgreSQL would accept a lock file whose pid is dead, but not one whose pid was given to
  // another process since; this one is known to be stale.
  std::error_code ec;
  fs::remove(pid_file, ec);
  if (ec) return Internal(absl::StrCat("cannot remove ", pid_file, ": ", ec.message()));
  if (lock.port > 0) {
    const std::string socket_lock = absl::StrCat(socket_dir(), "/.s.PGSQL.", lock.port, ".lock");
    LockFile socket;
    if (ReadLockFile(socket_lock, &socket) && socket.pid == lock.pid) fs::remove(socket_lock, ec);
  }
  Log()->info("removed the lock file of the dead postmaster {}", lock.pid);
  return absl::OkStatus();
}

absl::Status PostgresCluster::Stop() {
  if (!Running()) return absl::OkStatus();
  return RunTool("pg_ctl", absl::StrCat("-D ", ShellQuote(data_dir()), " -m fast -w -t 60 stop"));
}

std::string PostgresCluster::SuperuserConnInfo(const std::string& dbname) const {
  return absl::StrCat("host=", socket_dir(), " port=", options_.port, " user=", options_.superuser,
                      " dbname=", dbname);
}

}  // namespace submarine::db
