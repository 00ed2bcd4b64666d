#pragma once
// EnvironmentStore owns every SQL statement of the environment service: named statements
// (Statements(), prepared on every pooled connection) with $n parameters only; list filters are
// compiled against the columns FilterFields declares (api::CompileFilter), never from user
// text. Every method runs inside the caller's transaction; libpqxx exceptions propagate to
// ConnectionPool::Transact, which turns them into statuses.

#include <pqxx/pqxx>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "common/api/filter_compiler.h"
#include "common/db/list_query.h"
#include "common/db/statement.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::environment {

struct ListQuery {
  std::string project;
  // The compiled filter (api::CompileFilter over FilterFields(project)).
  db::WhereExpr filter;
  // When set, only these environment ids (the caller's visible set from the permission service).
  std::optional<std::vector<std::string>> only_ids;
  bool descending = false;
  // Keyset cursor: items strictly after (after_time, after_id) in the list order.
  std::optional<std::pair<std::chrono::system_clock::time_point, int64_t>> after;
  int limit = 50;
};

struct StoredEnvironment {
  int64_t id = 0;
  submarine::environment::v1::Environment environment;
};

class EnvironmentStore {
 public:
  // The statements, for ConnectionPool::Options::statements.
  static const db::StatementSet& Statements();

  static std::optional<StoredEnvironment> Find(pqxx::transaction_base& tx,
                                               const std::string& project,
                                               const std::string& environment_id,
                                               bool for_update);
  // Inserts; throws pqxx::unique_violation if (project, environment_id) exists.
  static int64_t Insert(pqxx::work& tx, const std::string& project,
                        const std::string& environment_id,
                        const submarine::environment::v1::Environment& env);
  static void Update(pqxx::work& tx, int64_t id, const submarine::environment::v1::Environment& env);
  static void Delete(pqxx::work& tx, int64_t id);
  // What List filters may name: name (the id, or the full name in `project`), display_name,
  // image, labels.<key>, create_time, update_time.
  static api::FilterFields FilterFields(const std::string& project);
  static std::vector<StoredEnvironment> List(pqxx::transaction_base& tx, const ListQuery& query);
  // How many environments `project` holds.
  static int64_t CountInProject(pqxx::transaction_base& tx, const std::string& project);

  // Next value of the uid counter.
  static int64_t NextUidCounter(pqxx::work& tx);

  // One-time markers (e.g. "builtin_seeded"). MarkOnce returns false if already marked.
  static bool MarkOnce(pqxx::work& tx, const std::string& key);
};

}  // namespace submarine::environment
