#pragma once
// A bounded PostgreSQL connection pool (libpqxx 6.4). Connections are opened lazily up to
// `size`, get `search_path` set to the service's schema, TimeZone set to UTC and DateStyle to
// ISO (so timestamptz values read back as db::Timestamp whatever the server, database or role
// defaults are) and the caller's statements prepared, and are replaced when found broken.
// Acquire waits at most until a deadline, then UNAVAILABLE. Transact() runs a function in one
// transaction whose statement_timeout follows the call's deadline and turns every libpqxx
// exception into a Status. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/db/statement.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::db {

using Deadline = std::chrono::system_clock::time_point;
// No deadline: the pool's default statement timeout applies.
inline constexpr Deadline kNoDeadline = Deadline::max();

// Builds a libpq connection string from the config (password read from password_file).
absl::StatusOr<std::string> ConnInfo(const submarine::config::v1::DatabaseConfig& config);

// A PostgreSQL text[] literal of `items`, to pass as ONE parameter value (e.g. `= ANY($1)`),
// never to splice into SQL: every element is double-quoted with '"' and '\\' escaped, so any
// text round-trips.
std::string TextArray(const std::vector<std::string>& items);

// Maps a libpqxx / std exception to a Status (unique_violation → ALREADY_EXISTS, serialization
// failure / deadlock → ABORTED, broken connection → UNAVAILABLE, query cancelled by
// statement_timeout → DEADLINE_EXCEEDED, anything else → INTERNAL). Call inside a catch block.
// The exception's text is logged (logger "db", with the thread's request id), never returned:
// every message is fixed text naming no SQL, table, constraint or address, and INTERNAL is
// ConcealedInternal(log::CurrentRequestId()) ("internal error; see the service log for request
// <id>"), so what a store lets through is safe to answer to a client.
absl::Status StatusFromCurrentException();

class ConnectionPool {
 public:
  struct Options {
    std::string conninfo;
    std::string schema;  // search_path; empty keeps the default
    size_t size = 8;
    std::chrono::milliseconds acquire_timeout{2000};
    std::chrono::milliseconds statement_timeout{10000};  // when the call has no deadline
    // Named statements prepared on every new connection (statement.h). Not owned; they live
    // for the program (static sets).
    std::vector<const StatementSet*> statements;
    // Called on every new connection after the statements are registered.
    std::function<void(pqxx::connection&)> on_connect;
  };

  // Connects once to check the database is reachable, retrying until `connect_retry` elapses.
  static absl::StatusOr<std::unique_ptr<ConnectionPool>> Create(
      Options options, std::chrono::milliseconds connect_retry = std::chrono::milliseconds(0));
  ~ConnectionPool();

  // A connection on loan; returned to the pool on destruction.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& operator*() { return *conn_; }
    pqxx::connection* operator->() { return conn_.get(); }
    // The connection is unusable; it is closed instead of being returned.
    void MarkBroken() { broken_ = true; }

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, std::unique_ptr<pqxx::connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    ConnectionPool* pool_;
    std::unique_ptr<pqxx::connection> conn_;
    bool broken_ = false;
  };

  // Waits for a connection until min(deadline, now + acquire_timeout). UNAVAILABLE if none
  // became free or a new one could not be opened.
  absl::StatusOr<Lease> Acquire(Deadline deadline = kNoDeadline);

  // Runs `fn` in a read-committed transaction; commits if it returns OK, rolls back otherwise.
  // Serialization failures and deadlocks are retried up to 3 times, and a connection lost before
  // COMMIT once on a fresh connection, so `fn` must only touch the database (it may run again).
  // A connection lost during COMMIT is UNAVAILABLE: the outcome is unknown. Never throws.
  absl::Status Transact(Deadline deadline, const std::function<absl::Status(pqxx::work&)>& fn);

  // Runs a read of ONE statement (or several that need no common snapshot) in autocommit mode:
  // one round trip instead of BEGIN/statement/COMMIT. Used for Get and List. A call deadline
  // tighter than the pool's statement timeout falls back to Transact. Never throws.
  absl::Status Read(Deadline deadline,
                    const std::function<absl::Status(pqxx::transaction_base&)>& fn);

  const Options& options() const { return options_; }
  // Connections currently open (idle + leased).
  size_t OpenConnections() const;

 private:
  explicit ConnectionPool(Options options) : options_(std::move(options)) {}
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Open();
  void Return(std::unique_ptr<pqxx::connection> conn, bool broken);

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<pqxx::connection>> idle_;
  size_t open_ = 0;
};

// What a service's DatabaseConfig asks of its pool: the connection string (ConnInfo), the
// schema (required: INVALID_ARGUMENT naming database.schema), size (default 8), the acquire and
// statement timeouts, and how long to retry the first connection (connect_retry_ms, default
// 30 s) while PostgreSQL is still starting.
struct PoolSettings {
  ConnectionPool::Options options;
  std::chrono::milliseconds connect_retry{30000};
};
absl::StatusOr<PoolSettings> PoolSettingsFrom(const submarine::config::v1::DatabaseConfig& config);

}  // namespace submarine::db
