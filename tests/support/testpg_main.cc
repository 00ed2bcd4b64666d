// submarine-testpg start|stop STATE_DIR: the ctest fixture that gives a whole test run one
// throwaway PostgreSQL (initdb into STATE_DIR, random free port, fsync off). `start` writes
// STATE_DIR/state.json for the tests; `stop` stops the server and removes STATE_DIR.
#include <filesystem>
#include <iostream>
#include <string>

#include "common/db/postgres_cluster.h"
#include "tests/support/test_postgres.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: submarine-testpg start|stop STATE_DIR\n";
    return 2;
  }
  std::string cmd = argv[1], dir = argv[2];
  submarine::db::PostgresCluster::Options opts;
  opts.dir = dir;
  opts.durable = false;
  if (cmd == "start") {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    submarine::db::PostgresCluster pg(opts);
    auto st = pg.InitIfNeeded();
    if (st.ok()) st = pg.Start();
    if (!st.ok()) {
      std::cerr << "submarine-testpg: " << st.message() << "\n";
      return 1;
    }
    if (!submarine::testing::WriteTestPgState(dir + "/state.json", pg.socket_dir(), pg.port())) {
      std::cerr << "submarine-testpg: cannot write state file\n";
      return 1;
    }
    std::cout << "throwaway PostgreSQL on port " << pg.port() << " (" << dir << ")\n";
    return 0;
  }
  if (cmd == "stop") {
    submarine::db::PostgresCluster pg(opts);
    auto st = pg.Stop();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (!st.ok()) {
      std::cerr << "submarine-testpg: " << st.message() << "\n";
      return 1;
    }
    return 0;
  }
  std::cerr << "usage: submarine-testpg start|stop STATE_DIR\n";
  return 2;
}
