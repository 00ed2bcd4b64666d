#pragma once
// A PostgreSQL cluster this process owns: initdb into a directory, start on a chosen port with
// the unix socket inside the directory, stop, and start again after a crash. Used by the embedded
// local stack and by tests (throwaway clusters). When run as root, every PostgreSQL binary runs as
// the unprivileged `postgres` user (runuser), which must be able to reach the directory.
//
// Files under `dir`: pgdata/ (the cluster), run/ (the socket), postgres.log (the server's log),
// and one <tool>.log per PostgreSQL tool holding the output of its last run (initdb.log,
// pg_ctl.log). Errors quote only what the failing step itself wrote.
//
// Not thread-safe: one owner drives a cluster.

#include <sys/types.h>

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::db {

class PostgresCluster {
 public:
  struct Options {
    std::string dir;            // holds pgdata/, run/ (socket) and postgres.log
    int port = 0;               // 0: pick a free port at Start()
    bool durable = true;        // false: fsync off (tests only)
    std::string superuser = "postgres";
  };
  explicit PostgresCluster(Options options);

  // Finds the PostgreSQL server binaries (pg_config --bindir, then /usr/lib/postgresql/*/bin).
  static absl::StatusOr<std::string> BinDir();

  // Runs initdb unless dir/pgdata already holds a cluster (PG_VERSION exists): an existing
  // cluster is never initialised again, and nothing is logged for it. Local connections over the
  // socket are trusted (the socket directory is private to the owner); TCP needs a password
  // (scram). If initdb fails, the status quotes the end of its output (initdb.log), once.
  absl::Status InitIfNeeded();

  // Starts the server and waits until it accepts connections. A postmaster.pid left by a
  // postmaster that died without removing it (kill -9, OOM killer) is cleared first
  // (ClearStaleLock), so a restart after a crash succeeds on its first attempt.
  // FAILED_PRECONDITION if the server already runs; otherwise, when the server does not come up,
  // INTERNAL quoting what it logged during this attempt (the tail of postgres.log since the start).
  absl::Status Start();

  // Fast shutdown; waits for the server to exit. No-op if not running.
  absl::Status Stop();

  // True if the postmaster named in dir/pgdata/postmaster.pid is alive and is a PostgreSQL
  // process of this data directory (not some other process that was given its pid since).
  bool Running() const;

  // The pid recorded in dir/pgdata/postmaster.pid; 0 if there is no such file.
  pid_t PostmasterPid() const;

  // Clears what a postmaster that died leaves behind, so that PostgreSQL can start again: if
  // postmaster.pid names no running postmaster of this data directory, waits until no process is
  // attached to the shared memory segment the file records (the dead postmaster's backends exit
  // once they notice it is gone; PostgreSQL refuses to start while any is attached), polling with
  // a deadline of `grace`; SIGKILLs the PostgreSQL processes still attached after that and waits
  // up to 5 s more; then removes postmaster.pid and the socket's lock file. OK if there was
  // nothing to clear; FAILED_PRECONDITION if the postmaster runs; DEADLINE_EXCEEDED (naming the
  // pids) if the segment is still attached at the end.
  absl::Status ClearStaleLock(std::chrono::milliseconds grace = std::chrono::seconds(10));

  int port() const { return options_.port; }
  std::string socket_dir() const { return options_.dir + "/run"; }
  std::string data_dir() const { return options_.dir + "/pgdata"; }
  std::string server_log() const { return options_.dir + "/postgres.log"; }
  // libpq connection string for the superuser over the unix socket.
  std::string SuperuserConnInfo(const std::string& dbname = "postgres") const;

 private:
  // Runs a PostgreSQL tool with its output in dir/<tool>.log (replacing the previous run's);
  // INTERNAL quoting the end of that output if it fails.
  absl::Status RunTool(const std::string& tool, const std::string& args) const;
  Options options_;
};

}  // namespace submarine::db
