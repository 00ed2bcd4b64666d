#include "common/db/migrations.h"

#include <sodium.h>

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"
#include "common/log/log.h"
#include "common/status/status.h"

namespace submarine::db {

std::string Sha256Hex(const std::string& text) {
  unsigned char hash[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(hash, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
  return hex;
}

absl::Status ApplyMigrations(pqxx::connection& conn, const std::string& schema,
                             const std::string& component, const std::vector<Migration>& migrations,
                             int* applied) {
  if (applied) *applied = 0;
  std::vector<Migration> sorted = migrations;
  std::sort(sorted.begin(), sorted.end(),
            [](const Migration& a, const Migration& b) { return a.version < b.version; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].version == sorted[i - 1].version) {
      return Internal(absl::StrCat("two migrations share version ", sorted[i].version, ": ",
                                   sorted[i - 1].name, " and ", sorted[i].name));
    }
  }
  auto log = log::Get("migrations");
  try {
    const std::string q = conn.quote_name(schema);
    const std::string lock_key = conn.quote("submarine.migrations." + schema);  // per schema
    auto exec = [&conn](const std::string& sql) {
      pqxx::nontransaction t(conn);
      return t.exec(sql);
    };
    // Waiting for another replica's migrations, or a long DDL, must not be cancelled by the
    // connection's statement timeout; the caller's setting is restored afterwards.
    std::string previous_timeout = exec("SHOW statement_timeout")[0][0].as<std::string>();
    exec("SET statement_timeout = 0");
    exec("SELECT pg_advisory_lock(hashtext(" + lock_key + "))");
    struct Unlock {
      pqxx::connection& c;
      std::string key;
      std::string timeout;
      ~Unlock() {
        try {
          pqxx::nontransaction t(c);
          t.exec("SELECT pg_advisory_unlock(hashtext(" + key + "))");
          t.exec("SET statement_timeout = " + t.quote(timeout));
        } catch (...) {
        }
      }
    } unlock{conn, lock_key, previous_timeout};
    // A service role owns its schema but may not create schemas: only create it when missing
    // (CREATE SCHEMA IF NOT EXISTS checks the database privilege even when the schema exists).
    {
      pqxx::nontransaction t(conn);
      if (t.exec_params("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema).empty()) {
        t.exec("CREATE SCHEMA " + q);
      }
    }
    exec("CREATE TABLE IF NOT EXISTS " + q +
         ".schema_migrations (component TEXT NOT NULL, version INT NOT NULL, "
         "name TEXT NOT NULL, checksum TEXT NOT NULL, "
         "applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (component, version))");
    std::map<int, std::pair<std::string, std::string>> done;
    {
      pqxx::nontransaction t(conn);
      for (const auto& row : t.exec_params("SELECT version, name, checksum FROM " + q +
                                               ".schema_migrations WHERE component = $1",
                                           component)) {
        done[row[0].as<int>()] = {row[1].as<std::string>(), row[2].as<std::string>()};
      }
    }
    for (const auto& m : sorted) {
      auto it = done.find(m.version);
      if (it == done.end()) continue;
      if (it->second.second != Sha256Hex(m.sql)) {
        return MakeError(
            absl::StatusCode::kFailedPrecondition, "MIGRATION_EDITED",
            absl::StrCat("migration ", m.name, " (", component, ") of schema ", schema,
                         " was edited after it was applied (recorded checksum ",
                         it->second.second.substr(0, 12), ", file checksum ",
                         Sha256Hex(m.sql).substr(0, 12), "); add a new migration instead"),
            {{"migration", m.name}, {"schema", schema}});
      }
    }
    for (const auto& m : sorted) {
      if (done.count(m.version)) continue;
      pqxx::work tx(conn);
      tx.exec("SET LOCAL search_path TO " + q);
      tx.exec(m.sql);
      tx.exec_params("INSERT INTO " + q +
                         ".schema_migrations (component, version, name, checksum) "
                         "VALUES ($1, $2, $3, $4)",
                     component, m.version, m.name, Sha256Hex(m.sql));
      tx.commit();
      log->info("applied migration {} ({}) to schema {}", m.name, component, schema);
      if (applied) ++*applied;
    }
    return absl::OkStatus();
  } catch (...) {
    return StatusFromCurrentException();
  }
}

absl::Status MigrateSchema(const PoolSettings& settings,
                           const std::vector<MigrationSeries>& series) {
  ConnectionPool::Options options = settings.options;
  options.size = 1;
  options.on_connect = nullptr;
  SUBMARINE_ASSIGN_OR_RETURN(auto pool, ConnectionPool::Create(options, settings.connect_retry));
  SUBMARINE_ASSIGN_OR_RETURN(auto lease, pool->Acquire());
  for (const MigrationSeries& s : series) {
    SUBMARINE_RETURN_IF_ERROR(ApplyMigrations(*lease, options.schema, s.component, s.migrations));
  }
  return absl::OkStatus();
}

}  // namespace submarine::db
