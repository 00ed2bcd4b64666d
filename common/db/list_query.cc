#include "common/db/list_query.h"

#include "absl/strings/str_cat.h"
#include "common/db/pool.h"
#include "common/db/statement.h"

namespace submarine::db {

ListQuery::ListQuery(std::string select, std::vector<std::string> params)
    : sql_(std::move(select)), params_(std::move(params)) {}

std::string ListQuery::Param(std::string value) {
  params_.push_back(std::move(value));
  return absl::StrCat("$", params_.size());
}

void ListQuery::Where(const std::string& clause) { absl::StrAppend(&sql_, " AND ", clause); }

void ListQuery::OnlyIds(const std::string& column, const std::vector<std::string>& values) {
  Where(absl::StrCat(column, " = ANY(", Param(TextArray(values)), "::text[])"));
}

void ListQuery::Compare(const std::string& column, bool equal, const std::string& value) {
  Where(absl::StrCat(column, equal ? " = " : " IS DISTINCT FROM ", Param(value)));
}

void ListQuery::Prefix(const std::string& column, const std::string& prefix) {
  std::string pattern;
  for (char c : prefix) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  Where(absl::StrCat(column, " LIKE ", Param(pattern + "%")));
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

}  // namespace submarine::db
