#pragma once
// Schema migrations: numbered SQL files beside each service (migrations/NNNN_name.sql), embedded
// into the binary at build time. ApplyMigrations() applies the missing ones in order, each in its
// own transaction with its bookkeeping row, under a per-schema advisory lock so concurrent
// replicas do not race. A migration that was applied and later edited (checksum mismatch) is
// refused with FAILED_PRECONDITION naming the file; nothing is applied then.

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/db/pool.h"

namespace submarine::db {

struct Migration {
  int version;
  std::string name;  // file name, e.g. "0001_init.sql"
  std::string sql;
};

// `component` separates independent migration series in one schema (e.g. "environment" for the
// service's own tables, "events" for common/events' outbox and inbox). Reports how many
// migrations were applied through `applied` (may be null).
absl::Status ApplyMigrations(pqxx::connection& conn, const std::string& schema,
                             const std::string& component,
                             const std::vector<Migration>& migrations, int* applied = nullptr);

// One component's migrations, for MigrateSchema.
struct MigrationSeries {
  std::string component;
  std::vector<Migration> migrations;
};

// A service's start-up migrations: opens one connection with `settings` (without its on_connect
// hook, since the tables it prepares statements for may not exist yet, retrying the first
// connection for settings.connect_retry) and applies each series in order to settings' schema.
absl::Status MigrateSchema(const PoolSettings& settings,
                           const std::vector<MigrationSeries>& series);

// SHA-256 of the text, lower-case hex.
std::string Sha256Hex(const std::string& text);

}  // namespace submarine::db
