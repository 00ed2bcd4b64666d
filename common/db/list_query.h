#pragma once
// The one way a store builds a List query (AIP-132 keyset pagination over filters): fixed SQL
// fragments chosen by the store, every value a $n parameter — user text never becomes SQL.
//
//   db::ListQuery q("SELECT id, body FROM environments WHERE project = $1", {project});
//   q.Where(absl::StrCat("image = ", q.Param(image)));
//   q.Where(filter);                                    // a WhereExpr, e.g. api::CompileFilter's
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

// A boolean SQL condition held as fixed fragments and values. The values become $n parameters
// only when the condition is added to a ListQuery (which numbers them after its own), so a
// condition can be built, tested and combined before the query exists. Fragments are the
// builder's fixed text; a value is never spliced into the SQL.
class WhereExpr {
 public:
  // Appends fixed SQL text.
  WhereExpr& Sql(std::string fixed);
  // Appends a placeholder for `value`.
  WhereExpr& Value(std::string value);
  // No condition at all (ListQuery::Where adds nothing).
  bool empty() const { return pieces_.empty(); }

  // The SQL text with placeholders numbered after the values already in `params`, to which this
  // condition's values are appended in order.
  std::string Render(std::vector<std::string>* params) const;

 private:
  struct Piece {
    std::string text;
    bool is_value = false;
  };
  std::vector<Piece> pieces_;
};

class ListQuery {
 public:
  // `select` ends in a WHERE clause whose placeholders are $1..$N for `params`.
  ListQuery(std::string select, std::vector<std::string> params);

  // Adds a parameter; returns its placeholder ("$n").
  std::string Param(std::string value);
  // Appends " AND <clause>" (a fixed fragment with placeholders from Param).
  void Where(const std::string& clause);
  // Appends " AND (<condition>)", its values as parameters; nothing when `condition` is empty.
  void Where(const WhereExpr& condition);
  // `column` equals one of `values`.
  void OnlyIds(const std::string& column, const std::vector<std::string>& values);
  // Rows strictly after (time, id) in the order Run uses.
  void After(const std::string& time_column, const std::string& id_column,
             std::chrono::system_clock::time_point time, int64_t id, bool descending);

  // Orders by (time_column, id_column), ascending or descending, and takes `limit` rows.
  pqxx::result Run(pqxx::transaction_base& tx, const std::string& time_column,
                   const std::string& id_column, bool descending, int limit);
  // Orders by one unique column (e.g. a sequence number the select's WHERE resumes after).
  pqxx::result Run(pqxx::transaction_base& tx, const std::string& unique_column, bool descending,
                   int limit);

  // The statement so far and its parameters (what Run sends, before ORDER BY and LIMIT).
  const std::string& sql() const { return sql_; }
  const std::vector<std::string>& params() const { return params_; }

 private:
  std::string sql_;
  std::vector<std::string> params_;
};

// `text` as a LIKE pattern matching the values that start with it: %, _ and \ escaped (\ is
// PostgreSQL's default LIKE escape), then %.
std::string LikePrefixPattern(const std::string& text);

}  // namespace submarine::db
