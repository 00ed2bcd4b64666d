#pragma once
// Compiles a filter (filter.h) into a SQL condition against the fields a store declares. The
// store owns the SQL: each field names a column or a fixed expression, its type and what it
// allows; the compiler checks every comparison against its field and emits fixed fragments with
// every value a parameter (db::WhereExpr), so the filter's text never reaches SQL.
//
//   const api::FilterFields& Fields() {                    // in the store
//     static const auto* fields = new api::FilterFields{
//         {.name = "state", .type = api::FilterType::kEnum, .sql = "state",
//          .values = {"PENDING", "RUNNING", "SUCCEEDED"}, .ordered = true},
//         {.name = "priority", .type = api::FilterType::kInt, .sql = "priority"},
//         {.name = "create_time", .type = api::FilterType::kTimestamp, .sql = "create_time"},
//         {.name = "labels.", .type = api::FilterType::kLabels, .sql = "labels"},
//         {.name = "metrics.", .type = api::FilterType::kDouble,
//          .sql = "(SELECT value FROM latest_metrics m WHERE m.run = runs.id AND m.key = {key})",
//          .nullable = true},
//     };
//     return *fields;
//   }
//   SUBMARINE_ASSIGN_OR_RETURN(db::WhereExpr where, api::CompileFilter(req.filter(), Fields()));
//   query.Where(where);                                      // a db::ListQuery
//
// What each type accepts (a value may be quoted or bare; it must parse as the type):
//   kString     = != < <= > >= IN, prefix (`= "ab*"`, `!= "ab*"`)     text
//   kInt        = != < <= > >= IN                                       64-bit integer
//   kDouble     = != < <= > >= IN                                       finite number
//   kTimestamp  = != < <= > >= IN            RFC 3339 (2026-01-01T00:00:00Z, +02:00) or a date
//   kEnum       = != IN, and < <= > >= when `ordered` (earlier/later in `values`); one of
//               `values`, case-insensitive, bound as written in `values`
//   kBool       = !=                                                    true | false
//   kLabels     a JSONB object of strings (`sql` is the column) keyed by the rest of the path:
//               labels.k = "v" (uses the GIN index: labels @> {"k":"v"}), != , prefix, IN,
//               labels.k:* (has the key), labels:"k" (the same)
// `:*` (present) also applies to a `nullable` field. Every comparison is two-valued: a missing
// key or a NULL is "not equal" and compares false, so NOT (x = v) is exactly x != v.
// Errors are INVALID_ARGUMENT naming `filter` and the position (filter.h), e.g.
// `filter: unknown field "colour" at position 1; filterable: name, image, labels.<key>`.

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/api/filter.h"
#include "common/db/list_query.h"

namespace submarine::api {

enum class FilterType { kString, kInt, kDouble, kTimestamp, kEnum, kBool, kLabels };

struct FilterField {
  // The field as filters name it ("display_name"), or for a keyed family the prefix with its
  // dot ("labels.", "metrics."): the rest of the path is the key ("labels.team" → "team";
  // "params.`my key`" → "my key").
  std::string name;
  FilterType type = FilterType::kString;
  // A column or a fixed SQL expression of the row. For a keyed family, "{key}" in it stands for
  // the key's placeholder (a text parameter); for kLabels, the JSONB column.
  std::string sql;
  // kEnum: the allowed values, in order when `ordered`.
  std::vector<std::string> values;
  bool ordered = false;
  // The expression may be NULL (a keyed subquery that finds nothing): `:*` tests presence.
  bool nullable = false;
  // When not empty, the only operators allowed (a subset of what `type` allows).
  std::vector<FilterOp> ops;
  // Other names of the same field (e.g. "displayName").
  std::vector<std::string> aliases;
  // Rewrites a text value before it is bound, e.g. a resource name to its id.
  std::function<std::string(const std::string&)> normalize;
};

using FilterFields = std::vector<FilterField>;

// What every resource table filters alike: `labels.<key>` (a jsonb column `labels`) and the
// create_time / update_time columns (createTime / updateTime in REST spelling). Appended to
// `fields`, which is returned.
FilterFields WithResourceFields(FilterFields fields);

// The condition `filter` means over `fields`, parenthesised; empty for a filter that matches
// everything. Errors: an unknown field (naming the filterable ones), an operator its field does
// not take, a value that is not of its type (an enum's listing the allowed values).
absl::StatusOr<db::WhereExpr> CompileFilter(const FilterExpr& filter, const FilterFields& fields);
// ParseFilter, then the above.
absl::StatusOr<db::WhereExpr> CompileFilter(const std::string& filter, const FilterFields& fields);

}  // namespace submarine::api
