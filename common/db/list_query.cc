#include "common/db/list_query.h"

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"
#include "common/db/statement.h"

namespace submarine::db {

WhereExpr& WhereExpr::Sql(std::string fixed) {
  pieces_.push_back({std::move(fixed), false});
  return *this;
}

WhereExpr& WhereExpr::Value(std::string value) {
  pieces_.push_back({std::move(value), true});
  return *this;
}

std::string WhereExpr::Render(std::vector<std::string>* params) const {
  std::string sql;
  for (const auto& p : pieces_) {
    if (p.is_value) {
      params->push_back(p.text);
      absl::StrAppend(&sql, "$", params->size());
    } else {
      sql += p.text;
    }
  }
  return sql;
}

std::string LikePrefixPattern(const std::string& text) {
  std::string pattern;
  for (char c : text) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  return pattern + "%";
}

ListQuery::ListQuery(std::string select, std::vector<std::string> params)
    : sql_(std::move(select)), params_(std::move(params)) {}

std::string ListQuery::Param(std::string value) {
  params_.push_back(std::move(value));
  return absl::StrCat("$", params_.size());
}

void ListQuery::Where(const std::string& clause) { absl::StrAppend(&sql_, " AND ", clause); }

void ListQuery::Where(const WhereExpr& condition) {
  if (condition.empty()) return;
  Where(absl::StrCat("(", condition.Render(&params_), ")"));
}

void ListQuery::OnlyIds(const std::string& column, const std::vector<std::string>& values) {
  Where(absl::StrCat(column, " = ANY(", Param(TextArray(values)), "::text[])"));
}

void ListQuery::After(const std::string& time_column, const std::string& id_column,
                      std::chrono::system_clock::time_point time, int64_t id, bool descending) {
  std::string t = Param(FormatTimestamp(Timestamp::FromTimePoint(time)));
  std::string i = Param(absl::StrCat(id));
  Where(absl::StrCat("(", time_column, ", ", id_column, ") ", descending ? "<" : ">", " (", t,
                     "::timestamptz, ", i, "::bigint)"));
}

pqxx::result ListQuery::Run(pqxx::transaction_base& tx, const std::string& time_column,
                            const std::string& id_column, bool descending, int limit) {
  const char* dir = descending ? " DESC" : "";
  std::string sql =
      absl::StrCat(sql_, " ORDER BY ", time_column, dir, ", ", id_column, dir, " LIMIT ", limit);
  return tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params_));
}

pqxx::result ListQuery::Run(pqxx::transaction_base& tx, const std::string& unique_column,
                            bool descending, int limit) {
  std::string sql =
      absl::StrCat(sql_, " ORDER BY ", unique_column, descending ? " DESC" : "", " LIMIT ", limit);
  return tx.exec_params(sql, pqxx::prepare::make_dynamic_params(params_));
}

}  // namespace submarine::db
