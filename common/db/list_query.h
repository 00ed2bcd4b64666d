#pragma once
// The one way a store builds a List query (AIP-132 keyset pagination over filters): fixed SQL
// fragments chosen by the store, every value a $n parameter — user text never becomes SQL.
//
//   db::ListQuery q("SELECT id, body FROM environments WHERE project = $1", {project});
//   q.Where(absl::StrCat("image = ", q.Param(image)));
//   q.OnlyIds("environment_id", visible_ids);          // the caller's visible set
//   q.After("create_time", "id", after_time, after_id, descending);
//   pqxx::result rows = q.Run(tx, "create_time", "id", descending, limit);

#include <chrono>
#include <cstdint>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace submarine::db {

class ListQuery {
 public:
  // `select` ends in a WHERE clause whose placeholders are $1..$N for `params`.
  ListQuery(std::string select, std::vector<std::string> params);

  // Adds a parameter; returns its placeholder ("$n").
  std::string Param(std::string value);
  // Appends " AND <clause>" (a fixed fragment with placeholders from Param).
  void Where(const std::string& clause);
  // `column` equals one of `values`.
  void OnlyIds(const std::string& column, const std::vector<std::string>& values);
  // `column` compared with `op` ("=" or "!=", NULL-safe) to `value`.
  void Compare(const std::string& column, bool equal, const std::string& value);
  // `column` starts with `prefix` (LIKE, with the pattern characters escaped).
  void Prefix(const std::string& column, const std::string& prefix);
  // Rows strictly after (time, id) in the order Run uses.
  void After(const std::string& time_column, const std::string& id_column,
             std::chrono::system_clock::time_point time, int64_t id, bool descending);

  // Orders by (time_column, id_column), ascending or descending, and takes `limit` rows.
  pqxx::result Run(pqxx::transaction_base& tx, const std::string& time_column,
                   const std::string& id_column, bool descending, int limit);

 private:
  std::string sql_;
  std::vector<std::string> params_;
};

}  // namespace submarine::db
