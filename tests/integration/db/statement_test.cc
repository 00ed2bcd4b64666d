// db::Statement, db::StatementSet and db::Timestamp against a real throwaway PostgreSQL whose
// database default TimeZone is NOT UTC: what a store writes as db::Timestamp is the instant
// PostgreSQL stores, and what it reads back is the instant it wrote.
#include "common/db/statement.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/db/pool.h"
#include "tests/support/test_postgres.h"

namespace submarine::db {
namespace {

using submarine::testing::TestPostgres;

constexpr Statement kInsert{"test.ts_insert", "INSERT INTO ts (k, at) VALUES ($1, $2)"};
constexpr Statement kRead{"test.ts_read", "SELECT at FROM ts WHERE k = $1"};
// PostgreSQL's own reading of the stored instant, independent of the traits under test.
constexpr Statement kEpochMicros{
    "test.ts_epoch_micros",
    "SELECT (EXTRACT(EPOCH FROM at) * 1000000)::bigint FROM ts WHERE k = $1"};
constexpr Statement kIsNull{"test.ts_is_null", "SELECT at IS NULL FROM ts WHERE k = $1"};
constexpr Statement kEcho{"test.ts_echo", "SELECT $1::timestamptz"};
constexpr Statement kTimeZone{"test.ts_time_zone", "SELECT current_setting('TimeZone')"};
constexpr Statement kDateStyle{"test.ts_date_style", "SELECT current_setting('DateStyle')"};

const StatementSet& TestStatements() {
  static const auto* set =
      new StatementSet{kInsert, kRead, kEpochMicros, kIsNull, kEcho, kTimeZone, kDateStyle};
  return *set;
}

// Asia/Kolkata: +05:30 today, +05:21:10 (Madras time) in 1900, LMT +05:53:28 before 1854.
constexpr char kServerZone[] = "Asia/Kolkata";

int64_t MicrosOf(absl::CivilSecond civil, int64_t extra_micros = 0) {
  return absl::ToUnixMicros(absl::FromCivil(civil, absl::UTCTimeZone())) + extra_micros;
}

// Instants a store may meet, each stored under its index as key.
const std::vector<int64_t>& Instants() {
  static const auto* v = new std::vector<int64_t>{
      0,                                                              // the epoch itself
      1,                                                              // one microsecond after
      -1,                                                             // one microsecond before
      MicrosOf(absl::CivilSecond(2026, 11, 30, 13, 27, 11), 123456),  // microsecond precision
      MicrosOf(absl::CivilSecond(2026, 3, 29, 1, 0, 0), 999999),      // sub-second
      MicrosOf(absl::CivilSecond(1969, 7, 20, 20, 17, 40), 7),        // before 1970
      MicrosOf(absl::CivilSecond(1900, 1, 1, 0, 0, 0), 1),            // non-whole-minute offset era
      MicrosOf(absl::CivilSecond(1800, 6, 15, 12, 0, 0), 500000),     // LMT era
      MicrosOf(absl::CivilSecond(1, 1, 1, 0, 0, 0)),                  // first instant of AD
      MicrosOf(absl::CivilSecond(999, 12, 31, 23, 59, 59), 1),        // three-digit year
      MicrosOf(absl::CivilSecond(9999, 12, 31, 23, 59, 59), 999999),  // last four-digit instant
      MicrosOf(absl::CivilSecond(10000, 1, 1, 0, 0, 0)),              // far future: five digits
      MicrosOf(absl::CivilSecond(294246, 6, 1, 0, 0, 0), 654321),     // far future
  };
  return *v;
}

class TimestampTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& pg = TestPostgres::Get();
    db_ = pg.CreateDatabase("ts");
    {
      pqxx::connection admin(pg.ConnInfo(db_));
      pqxx::nontransaction tx(admin);
      tx.exec("ALTER DATABASE " + tx.quote_name(db_) + " SET timezone = '" + kServerZone + "'");
      tx.exec("CREATE TABLE ts (k INT PRIMARY KEY, at TIMESTAMPTZ)");
    }
    ConnectionPool::Options o;
    o.conninfo = pg.ConnInfo(db_);
    o.size = 2;
    o.statements = {&TestStatements()};
    auto pool = ConnectionPool::Create(o);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
  }

  // A plain session with the database's defaults (no pool, so TimeZone stays kServerZone).
  std::unique_ptr<pqxx::connection> ServerDefaultSession() const {
    auto conn = std::make_unique<pqxx::connection>(TestPostgres::Get().ConnInfo(db_));
    Prepare(*conn, TestStatements());
    return conn;
  }

  std::string db_;
  std::unique_ptr<ConnectionPool> pool_;
};

TEST_F(TimestampTest, TheDatabaseDefaultTimeZoneIsNotUtcButThePoolSessionIs) {
  auto conn = ServerDefaultSession();
  pqxx::nontransaction tx(*conn);
  EXPECT_EQ(Exec(tx, kTimeZone)[0][0].as<std::string>(), kServerZone);
  std::string pooled;
  ASSERT_TRUE(pool_
                  ->Read(kNoDeadline,
                         [&](pqxx::transaction_base& tx) {
                           pooled = Exec(tx, kTimeZone)[0][0].as<std::string>();
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_EQ(pooled, "UTC");
}

TEST_F(TimestampTest, WrittenInstantIsStoredAndReadBackToTheMicrosecond) {
  const auto& instants = Instants();
  ASSERT_TRUE(pool_
                  ->Transact(kNoDeadline,
                             [&](pqxx::work& tx) {
                               for (size_t i = 0; i < instants.size(); ++i) {
                                 Exec(tx, kInsert, static_cast<int>(i), Timestamp{instants[i]});
                               }
                               return absl::OkStatus();
                             })
                  .ok());
  for (size_t i = 0; i < instants.size(); ++i) {
    SCOPED_TRACE(FormatTimestamp(Timestamp{instants[i]}));
    int64_t stored = 0;
    Timestamp back;
    ASSERT_TRUE(pool_
                    ->Read(kNoDeadline,
                           [&](pqxx::transaction_base& tx) {
                             stored =
                                 Exec(tx, kEpochMicros, static_cast<int>(i))[0][0].as<int64_t>();
                             back = Exec(tx, kRead, static_cast<int>(i))[0][0].as<Timestamp>();
                             return absl::OkStatus();
                           })
                    .ok());
    EXPECT_EQ(stored, instants[i]) << "PostgreSQL stored another instant";
    EXPECT_EQ(back.micros, instants[i]) << "read back another instant";
  }
}

// The pool sets UTC, but the traits must not depend on it: PostgreSQL's output in the server's
// own zone (offsets +05:30, +05:21:10, +05:53:28) denotes the same instants.
TEST_F(TimestampTest, ASessionInTheServerDefaultZoneReadsTheSameInstants) {
  const auto& instants = Instants();
  auto conn = ServerDefaultSession();
  {
    pqxx::work tx(*conn);
    for (size_t i = 0; i < instants.size(); ++i) {
      Exec(tx, kInsert, static_cast<int>(i), Timestamp{instants[i]});
    }
    tx.commit();
  }
  pqxx::nontransaction tx(*conn);
  for (size_t i = 0; i < instants.size(); ++i) {
    SCOPED_TRACE(FormatTimestamp(Timestamp{instants[i]}));
    EXPECT_EQ(Exec(tx, kEpochMicros, static_cast<int>(i))[0][0].as<int64_t>(), instants[i]);
    EXPECT_EQ(Exec(tx, kRead, static_cast<int>(i))[0][0].as<Timestamp>().micros, instants[i]);
  }
  // And the pool reads what that session wrote.
  for (size_t i = 0; i < instants.size(); ++i) {
    Timestamp back;
    ASSERT_TRUE(pool_
                    ->Read(kNoDeadline,
                           [&](pqxx::transaction_base& ptx) {
                             back = Exec(ptx, kRead, static_cast<int>(i))[0][0].as<Timestamp>();
                             return absl::OkStatus();
                           })
                    .ok());
    EXPECT_EQ(back.micros, instants[i]) << FormatTimestamp(Timestamp{instants[i]});
  }
}

TEST_F(TimestampTest, OptionalWritesNullAndReadsItBack) {
  const Timestamp when{MicrosOf(absl::CivilSecond(2030, 1, 2, 3, 4, 5), 678901)};
  ASSERT_TRUE(pool_
                  ->Transact(kNoDeadline,
                             [&](pqxx::work& tx) {
                               Exec(tx, kInsert, 1, std::optional<Timestamp>());
                               Exec(tx, kInsert, 2, std::optional<Timestamp>(when));
                               return absl::OkStatus();
                             })
                  .ok());
  bool null1 = false, null2 = true;
  std::optional<Timestamp> back1 = when, back2;
  ASSERT_TRUE(pool_
                  ->Read(kNoDeadline,
                         [&](pqxx::transaction_base& tx) {
                           null1 = Exec(tx, kIsNull, 1)[0][0].as<bool>();
                           null2 = Exec(tx, kIsNull, 2)[0][0].as<bool>();
                           back1 = Exec(tx, kRead, 1)[0][0].as<std::optional<Timestamp>>();
                           back2 = Exec(tx, kRead, 2)[0][0].as<std::optional<Timestamp>>();
                           return absl::OkStatus();
                         })
                  .ok());
  EXPECT_TRUE(null1);
  EXPECT_FALSE(null2);
  EXPECT_EQ(back1, std::nullopt);
  EXPECT_EQ(back2, when);
  // A NULL read as a plain Timestamp is an error, never a silent epoch.
  auto st = pool_->Read(kNoDeadline, [&](pqxx::transaction_base& tx) {
    Exec(tx, kRead, 1)[0][0].as<Timestamp>();
    return absl::OkStatus();
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
}

TEST_F(TimestampTest, ValuesWithoutAnInstantAreErrorsNotEpochs) {
  for (const char* text : {"infinity", "-infinity"}) {
    SCOPED_TRACE(text);
    auto st = pool_->Read(kNoDeadline, [&](pqxx::transaction_base& tx) {
      Exec(tx, kEcho, text)[0][0].as<Timestamp>();
      return absl::OkStatus();
    });
    EXPECT_EQ(st.code(), absl::StatusCode::kInternal) << st;
  }
}

// PostgreSQL counts 1 BC, 2 BC, ... where absl counts years 0, -1, ...: an instant before
// 0001-01-01 is refused rather than stored as another one.
TEST_F(TimestampTest, InstantsBeforeYearOneAreRefusedNotShifted) {
  for (int64_t year : {0, -1, -4713}) {
    const Timestamp when{MicrosOf(absl::CivilSecond(year, 6, 1, 0, 0, 0))};
    SCOPED_TRACE(FormatTimestamp(when));
    std::optional<Timestamp> back;
    auto st = pool_->Read(kNoDeadline, [&](pqxx::transaction_base& tx) {
      back = Exec(tx, kEcho, when)[0][0].as<Timestamp>();
      return absl::OkStatus();
    });
    EXPECT_FALSE(st.ok()) << (back ? FormatTimestamp(*back) : "");
  }
}

TEST(ParseTimestamp, AcceptsPostgresAndRfc3339AndRejectsTheRest) {
  const int64_t t = MicrosOf(absl::CivilSecond(2026, 11, 30, 13, 27, 11), 123456);
  EXPECT_EQ(ParseTimestamp("2026-11-30 13:27:11.123456+00"), Timestamp{t});
  EXPECT_EQ(ParseTimestamp("2026-11-30 18:57:11.123456+05:30"), Timestamp{t});
  EXPECT_EQ(ParseTimestamp("2026-11-30 10:27:11.123456-03"), Timestamp{t});
  EXPECT_EQ(ParseTimestamp("2026-11-30T13:27:11.123456Z"), Timestamp{t});
  EXPECT_EQ(ParseTimestamp("2026-11-30 13:27:11+00"), Timestamp{t - 123456});
  EXPECT_EQ(ParseTimestamp(FormatTimestamp(Timestamp{t})), Timestamp{t});
  EXPECT_EQ(FormatTimestamp(Timestamp{t}), "2026-11-30T13:27:11.123456Z");
  for (const char* bad : {"", " ", "Z", "+00", "infinity", "-infinity", "2026-11-30",
                          "2026-11-30 13:27:11", "0001-01-01 00:00:00+00 BC", "yesterday"}) {
    EXPECT_EQ(ParseTimestamp(bad), std::nullopt) << '"' << bad << '"';
  }
}

// A database (or role, or postgresql.conf) whose DateStyle is not ISO prints timestamptz as
// "30/11/2026 13:27:11.123456 UTC"; the pool's sessions set ISO, so stores read the same instants.
TEST(TimestampDateStyle, APoolSessionReadsTimestampsWhateverTheDatabaseDateStyle) {
  auto& pg = TestPostgres::Get();
  const std::string db = pg.CreateDatabase("datestyle");
  {
    pqxx::connection admin(pg.ConnInfo(db));
    pqxx::nontransaction tx(admin);
    tx.exec("ALTER DATABASE " + tx.quote_name(db) + " SET DateStyle = 'SQL, DMY'");
  }
  const Timestamp when{MicrosOf(absl::CivilSecond(2026, 11, 30, 13, 27, 11), 123456)};
  {
    // The database default is in effect for a plain session: what the pool must override.
    pqxx::connection plain(pg.ConnInfo(db));
    Prepare(plain, TestStatements());
    pqxx::nontransaction tx(plain);
    ASSERT_EQ(Exec(tx, kDateStyle)[0][0].as<std::string>(), "SQL, DMY");
    EXPECT_EQ(ParseTimestamp(Exec(tx, kEcho, when)[0][0].as<std::string>()), std::nullopt)
        << "SQL-style output is not what db::Timestamp reads";
  }
  ConnectionPool::Options o;
  o.conninfo = pg.ConnInfo(db);
  o.size = 1;
  o.statements = {&TestStatements()};
  auto pool = ConnectionPool::Create(o);
  ASSERT_TRUE(pool.ok()) << pool.status();
  std::string style;
  Timestamp back;
  absl::Status st = (*pool)->Read(kNoDeadline, [&](pqxx::transaction_base& tx) {
    style = Exec(tx, kDateStyle)[0][0].as<std::string>();
    back = Exec(tx, kEcho, when)[0][0].as<Timestamp>();
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(style.substr(0, 3), "ISO") << style;
  EXPECT_EQ(back, when) << FormatTimestamp(back);
}

TEST(StatementSet, IsPreparedOnEveryPooledConnection) {
  auto& pg = TestPostgres::Get();
  ConnectionPool::Options o;
  o.conninfo = pg.ConnInfo(pg.CreateDatabase("stmt"));
  o.size = 2;
  o.statements = {&TestStatements()};
  auto pool = ConnectionPool::Create(o);
  ASSERT_TRUE(pool.ok()) << pool.status();
  auto a = (*pool)->Acquire();
  auto b = (*pool)->Acquire();  // a second, new connection
  ASSERT_TRUE(a.ok() && b.ok());
  const Timestamp when{MicrosOf(absl::CivilSecond(2001, 2, 3, 4, 5, 6), 7)};
  for (auto* lease : {&*a, &*b}) {
    pqxx::nontransaction tx(**lease);
    EXPECT_EQ(Exec(tx, kEcho, when)[0][0].as<Timestamp>(), when);
  }
}

}  // namespace
}  // namespace submarine::db
