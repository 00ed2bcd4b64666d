#pragma once
// Named SQL statements: the one way every store talks to PostgreSQL.
//
// A store declares each statement once, as a constant `db::Statement{name, sql}` with `$n`
// parameters (never text spliced in), lists them in its StatementSet, and runs them by name with
// db::Exec. The pool prepares every set it was given on every connection it opens
// (ConnectionPool::Options::statements); libpqxx sends the PREPARE lazily, on a statement's first
// use on that connection. Names are "<component>.<what>" so sets of different components never
// clash.
//
// Timestamps cross the boundary as db::Timestamp (microseconds since the Unix epoch), bound to
// timestamptz parameters and read from timestamptz columns through the libpqxx string traits
// below; pools set every session to UTC and DateStyle ISO, so `row[i].as<db::Timestamp>()` reads
// what was written.
// A nullable column is read with `row[i].as<std::optional<db::Timestamp>>()` and written from
// std::optional<db::Timestamp> (std::nullopt is NULL). (Debian's libpqxx 6.4 does not define
// PQXX_HAVE_OPTIONAL, so `field::get<T>()` without its second template argument does not compile.)
// Instants from 0001-01-01 AD to year 294246 round-trip exactly; earlier ones (BC) are refused by
// PostgreSQL when written and by ParseTimestamp when read.

#include <google/protobuf/timestamp.pb.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

namespace submarine::db {

struct Statement {
  const char* name;
  const char* sql;
};

// The statements of one store or component.
using StatementSet = std::vector<Statement>;

// Registers every statement of `set` on `conn` (ConnectionPool does this on each connection).
void Prepare(pqxx::connection_base& conn, const StatementSet& set);

// Runs a prepared statement with its parameters in the caller's transaction; libpqxx
// exceptions propagate (ConnectionPool::Transact turns them into statuses).
template <typename... Args>
pqxx::result Exec(pqxx::transaction_base& tx, const Statement& statement, Args&&... args) {
  return tx.exec_prepared(statement.name, std::forward<Args>(args)...);
}

// A point in time at the database boundary, microsecond precision.
struct Timestamp {
  int64_t micros = 0;  // since 1970-01-01T00:00:00Z

  static Timestamp FromProto(const google::protobuf::Timestamp& ts);
  static Timestamp FromTimePoint(std::chrono::system_clock::time_point t);
  google::protobuf::Timestamp ToProto() const;
  std::chrono::system_clock::time_point ToTimePoint() const;
  bool operator==(const Timestamp&) const = default;
};

// RFC 3339 in UTC with microseconds, "2026-11-30T13:27:11.123456Z" (what is sent); the year has
// at least four digits ("0999-...", "10000-...").
std::string FormatTimestamp(Timestamp t);
// PostgreSQL's ISO output of a timestamptz ("2026-11-30 13:27:11.123456+00", any offset, optional
// fraction) or RFC 3339; std::nullopt if it is neither (infinity, BC dates).
std::optional<Timestamp> ParseTimestamp(const std::string& text);

}  // namespace submarine::db

namespace pqxx {

template <>
struct string_traits<submarine::db::Timestamp> {
  static constexpr const char* name() noexcept { return "submarine::db::Timestamp"; }
  static constexpr bool has_null() noexcept { return false; }
  static bool is_null(const submarine::db::Timestamp&) { return false; }
  [[noreturn]] static submarine::db::Timestamp null() { internal::throw_null_conversion(name()); }
  static void from_string(const char str[], submarine::db::Timestamp& out);
  static std::string to_string(const submarine::db::Timestamp& t) {
    return submarine::db::FormatTimestamp(t);
  }
};

template <>
struct string_traits<std::optional<submarine::db::Timestamp>> {
  static constexpr const char* name() noexcept { return "std::optional<submarine::db::Timestamp>"; }
  static constexpr bool has_null() noexcept { return true; }
  static bool is_null(const std::optional<submarine::db::Timestamp>& t) { return !t.has_value(); }
  static std::optional<submarine::db::Timestamp> null() { return std::nullopt; }
  static void from_string(const char str[], std::optional<submarine::db::Timestamp>& out) {
    submarine::db::Timestamp t;
    string_traits<submarine::db::Timestamp>::from_string(str, t);
    out = t;
  }
  static std::string to_string(const std::optional<submarine::db::Timestamp>& t) {
    return submarine::db::FormatTimestamp(*t);
  }
};

}  // namespace pqxx
