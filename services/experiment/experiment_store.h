#pragma once
// ExperimentStore owns every SQL statement of the experiment service: named statements
// (Statements(), prepared on every pooled connection) with $n parameters only; list filters are
// compiled against the columns FilterFields declares (api::CompileFilter), never from user
// text. Every method runs inside the caller's transaction; libpqxx exceptions propagate to
// ConnectionPool::Transact, which turns them into statuses.

#include <chrono>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "common/api/filter_compiler.h"
#include "common/db/list_query.h"
#include "common/db/statement.h"
#include "submarine/experiment/v1/experiment.pb.h"

namespace submarine::experiment {

struct ListQuery {
  std::string project;
  // The compiled filter (api::CompileFilter over FilterFields()).
  db::WhereExpr filter;
  // When set, only these experiment ids (the caller's visible set from the permission service).
  std::optional<std::vector<std::string>> only_ids;
  bool descending = true;
  // Keyset cursor: items strictly after (after_time, after_id) in the list order.
  std::optional<std::pair<std::chrono::system_clock::time_point, int64_t>> after;
  int limit = 50;
};

// A stored experiment with the controller's columns.
struct StoredExperiment {
  int64_t id = 0;
  std::string project;
  std::string experiment_id;
  v1::Experiment experiment;
  std::optional<std::string> stop_reason;  // a stop was asked for, and why
  std::optional<std::string> lease;        // the quota lease held
  std::optional<std::string> workload_id;  // the workload of the current attempt
};

class ExperimentStore {
 public:
  static const db::StatementSet& Statements();

  static std::optional<StoredExperiment> Find(pqxx::transaction_base& tx,
                                              const std::string& project,
                                              const std::string& experiment_id, bool for_update);
  // By internal id, locked (the controller re-reads a row before changing it).
  static std::optional<StoredExperiment> Lock(pqxx::work& tx, int64_t id);
  // Inserts; throws pqxx::unique_violation if (project, experiment_id) exists.
  static int64_t Insert(pqxx::work& tx, const std::string& project,
                        const std::string& experiment_id, const v1::Experiment& experiment);
  // Writes the resource and its derived columns (state, labels, etag, update_time).
  static void Save(pqxx::work& tx, const StoredExperiment& stored);
  static void Delete(pqxx::work& tx, int64_t id);
  // What List filters may name: name (the id, or the full name in `project`), state (ordered as
  // the State enum: PENDING < ACCEPTED < CREATED < RUNNING < SUCCEEDED < FAILED < KILLED), owner
  // ("users/alice"), framework, priority, labels.<key>, create_time, update_time.
  static api::FilterFields FilterFields(const std::string& project);
  static std::vector<StoredExperiment> List(pqxx::transaction_base& tx, const ListQuery& query);
  // Every experiment not in a final state, in admission order (priority, then age).
  static std::vector<StoredExperiment> Unfinished(pqxx::transaction_base& tx);
  // The same rows (same order) without their bodies: enough to tell whether a copy is current.
  struct Version {
    int64_t id = 0;
    std::string etag;
    std::optional<std::string> stop_reason;
    std::optional<std::string> lease;
    std::optional<std::string> workload_id;
    // Whether `s` is this row as stored now.
    bool Matches(const StoredExperiment& s) const {
      return s.id == id && s.experiment.etag() == etag && s.stop_reason == stop_reason &&
             s.lease == lease && s.workload_id == workload_id;
    }
  };
  static std::vector<Version> UnfinishedVersions(pqxx::transaction_base& tx);
  static std::vector<StoredExperiment> ByIds(pqxx::transaction_base& tx,
                                             const std::vector<int64_t>& ids);
  // Which of `uids` are stored experiments.
  static std::vector<std::string> KnownUids(pqxx::transaction_base& tx,
                                            const std::vector<std::string>& uids);
  static int64_t CountInProject(pqxx::transaction_base& tx, const std::string& project);
  static int64_t NextIdCounter(pqxx::work& tx);
};

}  // namespace submarine::experiment
