// The connection pool and leader lock against a real throwaway PostgreSQL.
#include "common/db/pool.h"

#include <gtest/gtest.h>

#include "common/db/leader.h"
#include "common/status/status.h"
#include "tests/support/test_postgres.h"

namespace submarine::db {
namespace {

using submarine::testing::TestPostgres;

std::unique_ptr<ConnectionPool> MakePool(const std::string& db, size_t size) {
  ConnectionPool::Options o;
  o.conninfo = TestPostgres::Get().ConnInfo(db);
  o.size = size;
  o.acquire_timeout = std::chrono::milliseconds(200);
  auto pool = ConnectionPool::Create(o);
  EXPECT_TRUE(pool.ok()) << pool.status();
  return std::move(*pool);
}

TEST(Pool, AcquireTimesOutWhenExhausted) {
  auto pool = MakePool(TestPostgres::Get().CreateDatabase("pool"), 2);
  auto a = pool->Acquire();
  auto b = pool->Acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = pool->Acquire();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(pool->OpenConnections(), 2u);
}

TEST(Pool, TextArrayRoundTripsAnyTextAsOneParameter) {
  auto pool = MakePool(TestPostgres::Get().CreateDatabase("pool"), 1);
  const std::vector<std::string> items = {"plain",         "with \"quotes\"",     "back\\slash",
                                          "comma,brace}{", "' OR '1'='1",         "",
                                          "NULL",          "unicode \u00e9\u4e2d"};
  std::vector<std::string> back;
  ASSERT_TRUE(pool->Read(kNoDeadline,
                         [&](pqxx::transaction_base& tx) {
                           for (const auto& row : tx.exec_params(
                                    "SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) "
                                    "ORDER BY n",
                                    TextArray(items))) {
                             back.push_back(row[0].as<std::string>());
                           }
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_EQ(back, items);
  EXPECT_EQ(TextArray({}), "{}");
}

TEST(Pool, TransactionErrorsBecomeStatuses) {
  auto pool = MakePool(TestPostgres::Get().CreateDatabase("pool"), 2);
  ASSERT_TRUE(pool->Transact(kNoDeadline, [](pqxx::work& tx) {
                     tx.exec("CREATE TABLE t (k TEXT PRIMARY KEY)");
                     tx.exec("INSERT INTO t VALUES ('a')");
                     return absl::OkStatus();
                   }).ok());
  auto dup = pool->Transact(kNoDeadline, [](pqxx::work& tx) {
    tx.exec("INSERT INTO t VALUES ('a')");
    return absl::OkStatus();
  });
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  // A status returned by the function rolls the transaction back.
  auto rolled = pool->Transact(kNoDeadline, [](pqxx::work& tx) {
    tx.exec("INSERT INTO t VALUES ('b')");
    return absl::FailedPreconditionError("changed my mind");
  });
  EXPECT_EQ(rolled.code(), absl::StatusCode::kFailedPrecondition);
  int count = -1;
  ASSERT_TRUE(pool->Transact(kNoDeadline, [&](pqxx::work& tx) {
                     count = tx.exec("SELECT count(*) FROM t")[0][0].as<int>();
                     return absl::OkStatus();
                   }).ok());
  EXPECT_EQ(count, 1);
}

TEST(Pool, StatementTimeoutFollowsTheDeadline) {
  auto pool = MakePool(TestPostgres::Get().CreateDatabase("pool"), 1);
  auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(300);
  auto st = pool->Transact(deadline, [](pqxx::work& tx) {
    tx.exec("SELECT pg_sleep(5)");
    return absl::OkStatus();
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  // The connection is still usable afterwards.
  EXPECT_TRUE(pool->Transact(kNoDeadline, [](pqxx::work& tx) {
                     tx.exec("SELECT 1");
                     return absl::OkStatus();
                   }).ok());
}

TEST(Pool, BrokenConnectionIsReplaced) {
  std::string db = TestPostgres::Get().CreateDatabase("pool");
  auto pool = MakePool(db, 1);
  int pid = 0;
  ASSERT_TRUE(pool->Transact(kNoDeadline, [&](pqxx::work& tx) {
                     pid = tx.exec("SELECT pg_backend_pid()")[0][0].as<int>();
                     return absl::OkStatus();
                   }).ok());
  {
    pqxx::connection admin(TestPostgres::Get().ConnInfo(db));
    pqxx::nontransaction tx(admin);
    tx.exec_params("SELECT pg_terminate_backend($1)", pid);
  }
  int pid2 = 0;
  auto st = pool->Transact(kNoDeadline, [&](pqxx::work& tx) {
    pid2 = tx.exec("SELECT pg_backend_pid()")[0][0].as<int>();
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_NE(pid, pid2);
}

TEST(Leader, OnlyOneHolderAndTakeoverAfterRelease) {
  std::string conninfo = TestPostgres::Get().ConnInfo(TestPostgres::Get().CreateDatabase("lead"));
  LeaderLock a(conninfo, "test.loop"), b(conninfo, "test.loop");
  EXPECT_TRUE(a.TryLead());
  EXPECT_FALSE(b.TryLead());
  EXPECT_TRUE(a.TryLead());  // still leading
  a.Release();
  EXPECT_TRUE(b.TryLead());
  EXPECT_FALSE(a.TryLead());
}

}  // namespace
}  // namespace submarine::db
