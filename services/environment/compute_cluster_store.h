#pragma once
// ComputeClusterStore owns every SQL statement of compute clusters (table compute_clusters of
// migrations/0004_compute_clusters.sql): named statements with $n parameters only; list filters
// are compiled against FilterFields (api::CompileFilter), never from user text. Methods run
// inside the caller's transaction; libpqxx exceptions propagate to ConnectionPool::Transact.

#include <chrono>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/api/filter_compiler.h"
#include "common/db/list_query.h"
#include "common/db/statement.h"
#include "submarine/environment/v1/compute_cluster.pb.h"

namespace submarine::environment {

struct StoredComputeCluster {
  int64_t id = 0;
  v1::ComputeCluster cluster;
};

struct ComputeClusterQuery {
  db::WhereExpr filter;
  // Keyset cursor: items strictly after (after_time, after_id) by creation time.
  std::optional<std::pair<std::chrono::system_clock::time_point, int64_t>> after;
  int limit = 50;
};

class ComputeClusterStore {
 public:
  static const db::StatementSet& Statements();

  static std::optional<StoredComputeCluster> Find(pqxx::transaction_base& tx,
                                                  const std::string& cluster_id, bool for_update);
  // Throws pqxx::unique_violation if the id exists.
  static int64_t Insert(pqxx::work& tx, const std::string& cluster_id,
                        const v1::ComputeCluster& cluster);
  static void Update(pqxx::work& tx, int64_t id, const v1::ComputeCluster& cluster);
  static void Delete(pqxx::work& tx, int64_t id);
  // name (the id or the full name), display_name, kind, labels.<key>, create_time, update_time.
  static api::FilterFields FilterFields();
  static std::vector<StoredComputeCluster> List(pqxx::transaction_base& tx,
                                                const ComputeClusterQuery& query);
};

}  // namespace submarine::environment
