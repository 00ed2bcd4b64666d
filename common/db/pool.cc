#include "common/db/pool.h"

#include <optional>
#include <thread>
#include <typeinfo>

#include "absl/strings/str_cat.h"
#include "common/config/config.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::db {
namespace {

std::string Quote(const std::string& v) {
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

absl::StatusOr<std::string> ConnInfo(const submarine::config::v1::DatabaseConfig& c) {
  std::string info;
  if (!c.host().empty()) absl::StrAppend(&info, "host=", Quote(c.host()), " ");
  if (c.port() != 0) absl::StrAppend(&info, "port=", c.port(), " ");
  if (!c.dbname().empty()) absl::StrAppend(&info, "dbname=", Quote(c.dbname()), " ");
  if (!c.user().empty()) absl::StrAppend(&info, "user=", Quote(c.user()), " ");
  if (!c.password_file().empty()) {
    SUBMARINE_ASSIGN_OR_RETURN(std::string pw, config::ReadSecretFile(c.password_file()));
    absl::StrAppend(&info, "password=", Quote(pw), " ");
  }
  absl::StrAppend(&info, "connect_timeout=5 application_name='submarine'");
  return info;
}

std::string TextArray(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

absl::StatusOr<PoolSettings> PoolSettingsFrom(const submarine::config::v1::DatabaseConfig& c) {
  if (c.schema().empty()) return InvalidField("database.schema", "is required");
  PoolSettings settings;
  SUBMARINE_ASSIGN_OR_RETURN(settings.options.conninfo, ConnInfo(c));
  settings.options.schema = c.schema();
  if (c.pool_size()) settings.options.size = c.pool_size();
  if (c.acquire_timeout_ms()) {
    settings.options.acquire_timeout = std::chrono::milliseconds(c.acquire_timeout_ms());
  }
  if (c.statement_timeout_ms()) {
    settings.options.statement_timeout = std::chrono::milliseconds(c.statement_timeout_ms());
  }
  if (c.connect_retry_ms()) {
    settings.connect_retry = std::chrono::milliseconds(c.connect_retry_ms());
  }
  return settings;
}

absl::Status StatusFromCurrentException() {
  // The exception's text goes to the log only (with the request id the log line carries): it
  // quotes SQL, constraint and table names, server addresses and library internals. The client
  // gets a message that names none of it.
  auto log = log::Get("db");
  const std::string& request_id = log::CurrentRequestId();
  try {
    throw;
  } catch (const pqxx::unique_violation& e) {
    // Stores catch the violations they expect and name the resource; this one was not.
    log->warn("unexpected unique violation: {}", e.what());
    return MakeError(absl::StatusCode::kAlreadyExists, "RESOURCE_ALREADY_EXISTS",
                     "a resource with the same unique key already exists");
  } catch (const pqxx::serialization_failure& e) {
    return MakeError(absl::StatusCode::kAborted, "CONCURRENT_MODIFICATION",
                     "the transaction conflicted with a concurrent one; retry");
  } catch (const pqxx::deadlock_detected& e) {
    return MakeError(absl::StatusCode::kAborted, "CONCURRENT_MODIFICATION",
                     "the transaction deadlocked with a concurrent one; retry");
  } catch (const pqxx::broken_connection& e) {
    log->warn("database connection lost: {}", e.what());
    return Unavailable("the database connection was lost; retry");
  } catch (const pqxx::in_doubt_error& e) {
    log->error("database commit outcome unknown: {}", e.what());
    return Unavailable("the database connection was lost during commit; the outcome is unknown");
  } catch (const pqxx::sql_error& e) {
    if (e.sqlstate() == "57014") {
      return MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                       "the database statement exceeded the call's deadline");
    }
    if (e.sqlstate().rfind("08", 0) == 0 || e.sqlstate() == "57P01") {
      log->warn("database unavailable ({}): {}", e.sqlstate(), e.what());
      return Unavailable("the database is unavailable; retry");
    }
    log->error("database error {}: {} (statement: {})", e.sqlstate(), e.what(), e.query());
    return ConcealedInternal(request_id);
  } catch (const std::exception& e) {
    log->error("{}: {}", typeid(e).name(), e.what());
    return ConcealedInternal(request_id);
  } catch (...) {
    log->error("an exception of a non-standard type");
    return ConcealedInternal(request_id);
  }
}

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(
    Options options, std::chrono::milliseconds connect_retry) {
  std::unique_ptr<ConnectionPool> pool(new ConnectionPool(std::move(options)));
  auto until = std::chrono::steady_clock::now() + connect_retry;
  auto backoff = std::chrono::milliseconds(50);
  for (;;) {
    auto conn = pool->Open();
    if (conn.ok()) {
      std::lock_guard lock(pool->mu_);
      pool->idle_.push_back(std::move(*conn));
      pool->open_ = 1;
      return pool;
    }
    if (std::chrono::steady_clock::now() >= until) return conn.status();
    log::Get("db")->warn("database not reachable yet ({}); retrying",
                         std::string(conn.status().message()));
    std::this_thread::sleep_for(backoff);  // start-up retry backoff, not synchronisation
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
}

ConnectionPool::~ConnectionPool() = default;

absl::StatusOr<std::unique_ptr<pqxx::connection>> ConnectionPool::Open() {
  try {
    auto conn = std::make_unique<pqxx::connection>(options_.conninfo);
    {
      pqxx::nontransaction tx(*conn);
      // UTC and ISO: timestamptz text is "2026-11-30 13:27:11.123456+00" whatever the server's
      // or the role's defaults say (a DateStyle of 'SQL, DMY' would print "30/11/2026 ... UTC",
      // which db::Timestamp cannot read).
      std::string setup =
          absl::StrCat("SET statement_timeout = ", options_.statement_timeout.count(),
                       "; SET TimeZone = 'UTC'; SET DateStyle = 'ISO'");
      if (!options_.schema.empty()) {
        absl::StrAppend(&setup, "; SET search_path TO ", tx.quote_name(options_.schema));
      }
      tx.exec(setup);
    }
    for (const StatementSet* set : options_.statements) Prepare(*conn, *set);
    if (options_.on_connect) options_.on_connect(*conn);
    return conn;
  } catch (...) {
    auto st = StatusFromCurrentException();
    if (st.code() == absl::StatusCode::kInternal) {
      // A failure while preparing a fresh connection is a misconfiguration or an outage;
      // callers retry UNAVAILABLE. (What failed is in the log.)
      return Unavailable("a new database session could not be prepared; see the service log");
    }
    return st;
  }
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire(Deadline deadline) {
  auto wait_until = std::chrono::steady_clock::now() + options_.acquire_timeout;
  if (deadline != kNoDeadline) {
    auto remaining = deadline - std::chrono::system_clock::now();
    wait_until =
        std::min(wait_until, std::chrono::steady_clock::now() +
                                 std::chrono::duration_cast<std::chrono::milliseconds>(remaining));
  }
  std::unique_lock lock(mu_);
  for (;;) {
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    if (open_ < options_.size) {
      ++open_;
      lock.unlock();
      auto conn = Open();
      if (!conn.ok()) {
        lock.lock();
        --open_;
        cv_.notify_one();
        return conn.status();
      }
      return Lease(this, std::move(*conn));
    }
    if (cv_.wait_until(lock, wait_until) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.size) {
      return MakeError(absl::StatusCode::kUnavailable, "DB_POOL_EXHAUSTED",
                       absl::StrCat("no database connection became free within the acquire "
                                    "timeout (pool size ",
                                    options_.size, ")"));
    }
  }
}

void ConnectionPool::Return(std::unique_ptr<pqxx::connection> conn, bool broken) {
  std::lock_guard lock(mu_);
  if (broken || !conn->is_open()) {
    --open_;
  } else {
    idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

size_t ConnectionPool::OpenConnections() const {
  std::lock_guard lock(mu_);
  return open_;
}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), broken_(other.broken_) {}

ConnectionPool::Lease::~Lease() {
  if (conn_) pool_->Return(std::move(conn_), broken_);
}

absl::Status ConnectionPool::Transact(Deadline deadline,
                                      const std::function<absl::Status(pqxx::work&)>& fn) {
  absl::Status last;
  for (int attempt = 0; attempt < 4; ++attempt) {
    auto lease = Acquire(deadline);
    if (!lease.ok()) return lease.status();
    // The session default is the pool's statement timeout; a tighter call deadline lowers it
    // for this transaction only (one extra round trip, paid only when it matters).
    std::optional<std::chrono::milliseconds> tighter;
    if (deadline != kNoDeadline) {
      auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::system_clock::now());
      if (remaining.count() <= 0) {
        return MakeError(absl::StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED",
                         "the call's deadline passed before the database was reached");
      }
      if (remaining < options_.statement_timeout) tighter = remaining;
    }
    bool commit_started = false;
    try {
      pqxx::work tx(**lease);
      if (tighter) tx.exec(absl::StrCat("SET LOCAL statement_timeout = ", tighter->count()));
      absl::Status st = fn(tx);
      if (!st.ok()) {
        tx.abort();
        return st;
      }
      commit_started = true;
      tx.commit();
      return absl::OkStatus();
    } catch (...) {
      last = StatusFromCurrentException();
      if (last.code() == absl::StatusCode::kUnavailable) {
        lease->MarkBroken();
        // Lost before COMMIT: the server rolled the transaction back, so one retry on a fresh
        // connection is safe (typically a pooled connection gone stale). Lost during COMMIT:
        // the outcome is unknown and the caller decides.
        if (!commit_started && attempt == 0) continue;
        return last;
      }
      if (last.code() != absl::StatusCode::kAborted) return last;
    }
  }
  return last;
}

absl::Status ConnectionPool::Read(Deadline deadline,
                                  const std::function<absl::Status(pqxx::transaction_base&)>& fn) {
  if (deadline != kNoDeadline &&
      deadline - std::chrono::system_clock::now() < options_.statement_timeout) {
    return Transact(deadline, [&fn](pqxx::work& tx) { return fn(tx); });
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto lease = Acquire(deadline);
    if (!lease.ok()) return lease.status();
    try {
      pqxx::nontransaction tx(**lease);
      return fn(tx);
    } catch (...) {
      absl::Status st = StatusFromCurrentException();
      if (st.code() != absl::StatusCode::kUnavailable) return st;
      lease->MarkBroken();  // a read is safe to retry once on a fresh connection
      if (attempt == 1) return st;
    }
  }
  return Unavailable("database unavailable");
}

}  // namespace submarine::db
