#pragma once
// A PostgreSQL cluster this process owns: initdb into a directory, start on a chosen port with
// the unix socket inside the directory, stop. Used by the embedded local stack and by tests
// (throwaway clusters). When run as root, every PostgreSQL binary runs as the unprivileged
// `postgres` user (runuser), which must be able to reach the directory.

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

  // Runs initdb unless dir/pgdata already holds a cluster. Local connections over the socket
  // are trusted (the socket directory is private to the owner); TCP needs a password (scram).
  absl::Status InitIfNeeded();
  // Starts the server and waits until it accepts connections.
  absl::Status Start();
  // Fast shutdown; waits for the server to exit. No-op if not running.
  absl::Status Stop();
  // True if the postmaster of dir/pgdata is running.
  bool Running() const;

  int port() const { return options_.port; }
  std::string socket_dir() const { return options_.dir + "/run"; }
  std::string data_dir() const { return options_.dir + "/pgdata"; }
  // libpq connection string for the superuser over the unix socket.
  std::string SuperuserConnInfo(const std::string& dbname = "postgres") const;

 private:
  absl::Status RunTool(const std::string& tool, const std::string& args) const;
  Options options_;
};

}  // namespace submarine::db
