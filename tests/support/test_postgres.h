#pragma once
// The throwaway PostgreSQL of a test run. ctest starts one cluster for the whole run through the
// `postgres` fixture (submarine-testpg start/stop) and passes its state file in
// $SUBMARINE_TEST_PG; a test binary run by hand starts a private cluster for its own lifetime.
// Never the system cluster, never a fixed port: initdb into a temp dir, a random free port.
// Each test creates its own database, so tests never see each other's rows.

#include <memory>
#include <string>

#include "common/db/postgres_cluster.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::testing {

class TestPostgres {
 public:
  // The cluster of this run; starts a private one if $SUBMARINE_TEST_PG is unset. Aborts the
  // process with a message if PostgreSQL cannot be started.
  static TestPostgres& Get();

  const std::string& socket_dir() const { return socket_dir_; }
  int port() const { return port_; }
  // Superuser over the unix socket.
  std::string ConnInfo(const std::string& dbname = "postgres") const;
  // Creates a database with a unique name starting with `prefix`; returns its name.
  std::string CreateDatabase(const std::string& prefix);
  // A DatabaseConfig for a service process: superuser over the socket, given db and schema.
  submarine::config::v1::DatabaseConfig ServiceDatabase(const std::string& dbname,
                                                        const std::string& schema) const;

 private:
  TestPostgres() = default;
  std::unique_ptr<db::PostgresCluster> owned_;  // set when this process started the cluster
  std::string owned_dir_;
  std::string socket_dir_;
  int port_ = 0;
  friend struct TestPostgresDeleter;
};

// Writes/reads the state file shared between submarine-testpg and the tests.
bool WriteTestPgState(const std::string& path, const std::string& socket_dir, int port);
bool ReadTestPgState(const std::string& path, std::string* socket_dir, int* port);

}  // namespace submarine::testing
