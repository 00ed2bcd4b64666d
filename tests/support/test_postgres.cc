#include "tests/support/test_postgres.h"

#include <pqxx/pqxx>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/status/status.h"
#include "common/util/clock.h"

namespace submarine::testing {
namespace fs = std::filesystem;

bool WriteTestPgState(const std::string& path, const std::string& socket_dir, int port) {
  nlohmann::json j = {{"socket_dir", socket_dir}, {"port", port}};
  return config::WriteFileAtomic(path, j.dump()).ok();
}

bool ReadTestPgState(const std::string& path, std::string* socket_dir, int* port) {
  auto text = config::ReadFile(path);
  if (!text.ok()) return false;
  try {
    auto j = nlohmann::json::parse(*text);
    *socket_dir = j.at("socket_dir").get<std::string>();
    *port = j.at("port").get<int>();
    return true;
  } catch (...) {
    return false;
  }
}

TestPostgres& TestPostgres::Get() {
  static TestPostgres* instance = [] {
    auto* pg = new TestPostgres();
    const char* state = std::getenv("SUBMARINE_TEST_PG");
    if (state != nullptr && ReadTestPgState(state, &pg->socket_dir_, &pg->port_)) return pg;
    // Run by hand: a private cluster for this process, removed at exit.
    std::string dir = (fs::temp_directory_path() /
                       absl::StrCat("submarine-testpg-", IdGenerator::Secure().RandomHex(6)))
                          .string();
    db::PostgresCluster::Options opts;
    opts.dir = dir;
    opts.durable = false;
    pg->owned_ = std::make_unique<db::PostgresCluster>(opts);
    auto st = pg->owned_->InitIfNeeded();
    if (st.ok()) st = pg->owned_->Start();
    if (!st.ok()) {
      std::cerr << "cannot start a throwaway PostgreSQL: " << st.message() << "\n";
      std::abort();
    }
    pg->owned_dir_ = dir;
    pg->socket_dir_ = pg->owned_->socket_dir();
    pg->port_ = pg->owned_->port();
    std::atexit([] {
      auto& self = TestPostgres::Get();
      if (self.owned_) {
        (void)self.owned_->Stop();
        std::error_code ec;
        fs::remove_all(self.owned_dir_, ec);
      }
    });
    return pg;
  }();
  return *instance;
}

std::string TestPostgres::ConnInfo(const std::string& dbname) const {
  return absl::StrCat("host=", socket_dir_, " port=", port_, " user=postgres dbname=", dbname);
}

std::string TestPostgres::CreateDatabase(const std::string& prefix) {
  std::string name = absl::StrCat(prefix, "_", IdGenerator::Secure().RandomHex(6));
  pqxx::connection conn(ConnInfo());
  pqxx::nontransaction tx(conn);
  tx.exec("CREATE DATABASE " + tx.quote_name(name));
  return name;
}

submarine::config::v1::DatabaseConfig TestPostgres::ServiceDatabase(
    const std::string& dbname, const std::string& schema) const {
  submarine::config::v1::DatabaseConfig c;
  c.set_host(socket_dir_);
  c.set_port(static_cast<uint32_t>(port_));
  c.set_dbname(dbname);
  c.set_user("postgres");
  c.set_schema(schema);
  return c;
}

}  // namespace submarine::testing
