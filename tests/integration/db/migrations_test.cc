// Migrations against a real throwaway PostgreSQL.
#include "common/db/migrations.h"

#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <thread>

#include "common/status/status.h"
#include "tests/support/test_postgres.h"

namespace submarine::db {
namespace {

using submarine::testing::TestPostgres;

std::vector<Migration> Series() {
  return {{1, "0001_items.sql", "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, v TEXT);"},
          {2, "0002_index.sql", "CREATE INDEX items_v ON items (v);"}};
}

TEST(Migrations, ApplyOnceThenNoOp) {
  auto& pg = TestPostgres::Get();
  std::string db = pg.CreateDatabase("mig");
  pqxx::connection conn(pg.ConnInfo(db));
  int applied = -1;
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "svc", Series(), &applied).ok());
  EXPECT_EQ(applied, 2);
  {
    pqxx::work tx(conn);
    tx.exec("INSERT INTO svc.items (v) VALUES ('kept')");
    tx.commit();
  }
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "svc", Series(), &applied).ok());
  EXPECT_EQ(applied, 0);
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.items")[0][0].as<int>(), 1);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.schema_migrations")[0][0].as<int>(), 2);
}

TEST(Migrations, AddedMigrationIsAppliedAlone) {
  auto& pg = TestPostgres::Get();
  pqxx::connection conn(pg.ConnInfo(pg.CreateDatabase("mig")));
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "svc", Series()).ok());
  auto more = Series();
  more.push_back({3, "0003_col.sql", "ALTER TABLE items ADD COLUMN w INT;"});
  int applied = 0;
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "svc", more, &applied).ok());
  EXPECT_EQ(applied, 1);
}

TEST(Migrations, EditedAppliedMigrationIsRefused) {
  auto& pg = TestPostgres::Get();
  pqxx::connection conn(pg.ConnInfo(pg.CreateDatabase("mig")));
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "svc", Series()).ok());
  auto edited = Series();
  edited[0].sql = "CREATE TABLE items (id BIGSERIAL PRIMARY KEY, v TEXT, extra INT);";
  edited.push_back({3, "0003_col.sql", "ALTER TABLE items ADD COLUMN w INT;"});
  auto st = ApplyMigrations(conn, "svc", "svc", edited);
  ASSERT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_NE(Message(st).find("0001_items.sql"), std::string::npos) << st;
  EXPECT_NE(Message(st).find("edited"), std::string::npos) << st;
  // Nothing after the refusal was applied.
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.schema_migrations")[0][0].as<int>(), 2);
}

TEST(Migrations, FailingMigrationRollsBackAndReportsIt) {
  auto& pg = TestPostgres::Get();
  pqxx::connection conn(pg.ConnInfo(pg.CreateDatabase("mig")));
  auto bad = Series();
  bad.push_back({3, "0003_bad.sql", "ALTER TABLE nope ADD COLUMN w INT;"});
  auto st = ApplyMigrations(conn, "svc", "svc", bad);
  EXPECT_FALSE(st.ok());
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.schema_migrations")[0][0].as<int>(), 2);
}

TEST(Migrations, ComponentsInOneSchemaAreIndependent) {
  auto& pg = TestPostgres::Get();
  pqxx::connection conn(pg.ConnInfo(pg.CreateDatabase("mig")));
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "svc", Series()).ok());
  std::vector<Migration> other = {{1, "0001_other.sql", "CREATE TABLE other (id INT);"}};
  int applied = 0;
  ASSERT_TRUE(ApplyMigrations(conn, "svc", "events", other, &applied).ok());
  EXPECT_EQ(applied, 1);
}

TEST(Migrations, MigrateSchemaAppliesEverySeriesFromTheServiceConfig) {
  auto& pg = TestPostgres::Get();
  submarine::config::v1::DatabaseConfig config;
  config.set_host(pg.socket_dir());
  config.set_port(pg.port());
  config.set_dbname(pg.CreateDatabase("mig"));
  config.set_user("postgres");
  config.set_schema("svc");
  config.set_pool_size(3);
  auto settings = PoolSettingsFrom(config);
  ASSERT_TRUE(settings.ok()) << settings.status();
  EXPECT_EQ(settings->options.schema, "svc");
  EXPECT_EQ(settings->options.size, 3u);
  EXPECT_EQ(settings->connect_retry, std::chrono::milliseconds(30000));  // the default
  // The hook prepares statements on tables that do not exist yet: MigrateSchema must not run it.
  settings->options.on_connect = [](pqxx::connection& c) {
    c.prepare("count_items", "SELECT count(*) FROM items");
  };
  std::vector<Migration> other = {{1, "0001_other.sql", "CREATE TABLE other (id INT);"}};
  ASSERT_TRUE(MigrateSchema(*settings, {{"events", other}, {"svc", Series()}}).ok());
  pqxx::connection conn(pg.ConnInfo(config.dbname()));
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.schema_migrations")[0][0].as<int>(), 3);
  EXPECT_EQ(tx.exec("SELECT count(*) FROM svc.items")[0][0].as<int>(), 0);
}

TEST(Migrations, PoolSettingsNeedASchema) {
  submarine::config::v1::DatabaseConfig config;
  config.set_host("/nonexistent");
  auto settings = PoolSettingsFrom(config);
  ASSERT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(settings.status().message().find("database.schema"), std::string::npos)
      << settings.status();
}

TEST(Migrations, ConcurrentRunnersApplyEachMigrationOnce) {
  auto& pg = TestPostgres::Get();
  std::string db = pg.CreateDatabase("mig");
  std::vector<std::thread> threads;
  std::atomic<int> total{0}, failures{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      pqxx::connection conn(pg.ConnInfo(db));
      int applied = 0;
      if (!ApplyMigrations(conn, "svc", "svc", Series(), &applied).ok()) ++failures;
      total += applied;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(total, 2);
}

}  // namespace
}  // namespace submarine::db
