#include "common/db/postgres_cluster.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/log/log.h"
#include "common/net/address.h"
#include "common/status/status.h"

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
  std::string log = options_.dir + "/postgres-tools.log";
  cmd = absl::StrCat(cmd, " >>", ShellQuote(log), " 2>&1");
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    std::ifstream in(log);
    std::string tail, line;
    while (std::getline(in, line)) tail = tail.size() > 2000 ? line : tail + line + "\n";
    return Internal(absl::StrCat(tool, " failed (exit ", WEXITSTATUS(rc), "): ", tail));
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
  if (options_.port == 0) {
    SUBMARINE_ASSIGN_OR_RETURN(options_.port, net::PickFreePort());
  }
  std::string opts = absl::StrCat("-p ", options_.port, " -k ", socket_dir(),
                                  " -c listen_addresses=127.0.0.1 -c max_connections=200");
  if (!options_.durable) opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off";
  std::string args = absl::StrCat("-D ", ShellQuote(data_dir()), " -l ",
                                  ShellQuote(options_.dir + "/postgres.log"), " -o ",
                                  ShellQuote(opts), " -w -t 60 start");
  return RunTool("pg_ctl", args);
}

bool PostgresCluster::Running() const {
  auto bin = BinDir();
  if (!bin.ok()) return false;
  std::string cmd = absl::StrCat(*bin, "/pg_ctl -D ", ShellQuote(data_dir()), " status");
  if (RunningAsRoot()) cmd = "runuser -u postgres -- " + cmd;
  return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
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
