#include "common/api/filter_compiler.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/api/names.h"
#include "common/db/pool.h"
#include "common/db/statement.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

using Kind = FilterExpr::Kind;

constexpr char kKeyMarker[] = "{key}";

// A comparison's field, found among the declared ones.
struct Target {
  const FilterField* field = nullptr;
  std::string shown;   // the field as written, quoted for messages
  bool keyed = false;  // one key of a family ("labels.team")
  std::string key;     // when keyed
  bool whole = false;  // the family itself (kLabels: labels:"team")
};

bool IsKeyed(const FilterField& f) { return absl::EndsWith(f.name, "."); }

const char* Cast(FilterType t) {
  switch (t) {
    case FilterType::kInt:
      return "::bigint";
    case FilterType::kDouble:
      return "::double precision";
    case FilterType::kTimestamp:
      return "::timestamptz";
    case FilterType::kBool:
      return "::boolean";
    case FilterType::kString:
    case FilterType::kEnum:
    case FilterType::kLabels:
      break;
  }
  return "::text";
}

std::vector<FilterOp> AllowedOps(const FilterField& f) {
  using enum FilterOp;
  std::vector<FilterOp> ops;
  switch (f.type) {
    case FilterType::kString:
    case FilterType::kInt:
    case FilterType::kDouble:
    case FilterType::kTimestamp:
      ops = {kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn};
      break;
    case FilterType::kEnum:
      ops = f.ordered ? std::vector<FilterOp>{kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn}
                      : std::vector<FilterOp>{kEq, kNe, kIn, kNotIn};
      break;
    case FilterType::kBool:
      ops = {kEq, kNe};
      break;
    case FilterType::kLabels:
      ops = {kEq, kNe, kIn, kNotIn, kHas};
      break;
  }
  if (f.nullable && f.type != FilterType::kLabels) ops.push_back(kHas);
  if (!f.ops.empty()) {
    std::erase_if(
        ops, [&](FilterOp op) { return std::find(f.ops.begin(), f.ops.end(), op) == f.ops.end(); });
  }
  return ops;
}

std::string Filterable(const FilterFields& fields) {
  std::vector<std::string> names;
  for (const auto& f : fields) names.push_back(IsKeyed(f) ? f.name + "<key>" : f.name);
  return absl::StrCat("filterable: ", absl::StrJoin(names, ", "));
}

absl::StatusOr<Target> Resolve(const FilterExpr& e, const FilterFields& fields) {
  const std::string dotted = e.FieldName();
  Target t;
  t.shown = Quoted(dotted);
  for (const auto& f : fields) {
    if (IsKeyed(f)) {
      std::vector<std::string> family = absl::StrSplit(f.name.substr(0, f.name.size() - 1), '.');
      if (e.field.size() < family.size() ||
          !std::equal(family.begin(), family.end(), e.field.begin())) {
        continue;
      }
      t.field = &f;
      if (e.field.size() == family.size()) {
        if (f.type != FilterType::kLabels || e.op != FilterOp::kHas) {
          return FilterError(e.position, absl::StrCat(t.shown, " needs a key"),
                             absl::StrCat("e.g. ", f.name, "name"));
        }
        t.whole = true;
        return t;
      }
      t.keyed = true;
      t.key = absl::StrJoin(e.field.begin() + family.size(), e.field.end(), ".");
      if (f.type != FilterType::kLabels && !absl::StrContains(f.sql, kKeyMarker)) {
        return Internal(absl::StrCat("filter field ", f.name, " declares no ", kKeyMarker));
      }
      return t;
    }
    bool match = dotted == f.name;
    for (const auto& alias : f.aliases) match = match || dotted == alias;
    if (match) {
      t.field = &f;
      return t;
    }
  }
  return FilterError(e.position, absl::StrCat("cannot filter on ", t.shown), Filterable(fields));
}

std::string TypeName(const FilterField& f) {
  switch (f.type) {
    case FilterType::kString:
    case FilterType::kLabels:
      return "text";
    case FilterType::kInt:
      return "an integer";
    case FilterType::kDouble:
      return "a number";
    case FilterType::kTimestamp:
      return "an RFC 3339 time (2026-01-31T12:00:00Z) or a date (2026-01-31)";
    case FilterType::kEnum:
      return absl::StrCat("one of ", absl::StrJoin(f.values, ", "));
    case FilterType::kBool:
      return "true or false";
  }
  return "";
}

std::optional<absl::Time> ParseTime(const std::string& text) {
  absl::Time t;
  std::string error;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &error) &&
      !absl::ParseTime("%Y-%m-%d", text, absl::UTCTimeZone(), &t, &error)) {
    return std::nullopt;
  }
  // PostgreSQL's range is wider; four-digit years keep every value printable and comparable.
  static const absl::Time kFirst = absl::FromCivil(absl::CivilDay(1, 1, 1), absl::UTCTimeZone());
  static const absl::Time kEnd = absl::FromCivil(absl::CivilDay(10000, 1, 1), absl::UTCTimeZone());
  if (t < kFirst || t >= kEnd) return std::nullopt;
  return t;
}

class Compiler {
 public:
  explicit Compiler(const FilterFields& fields) : fields_(fields) {}

  absl::Status Emit(const FilterExpr& e, db::WhereExpr* w) {
    switch (e.kind) {
      case Kind::kAnd:
      case Kind::kOr: {
        if (e.children.empty()) {
          w->Sql("TRUE");
          return absl::OkStatus();
        }
        w->Sql("(");
        for (size_t i = 0; i < e.children.size(); ++i) {
          if (i) w->Sql(e.kind == Kind::kAnd ? " AND " : " OR ");
          SUBMARINE_RETURN_IF_ERROR(Emit(e.children[i], w));
        }
        w->Sql(")");
        return absl::OkStatus();
      }
      case Kind::kNot:
        w->Sql("NOT ");
        return Emit(e.children.at(0), w);
      case Kind::kCompare:
        return Comparison(e, w);
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Comparison(const FilterExpr& e, db::WhereExpr* w) {
    SUBMARINE_ASSIGN_OR_RETURN(Target t, Resolve(e, fields_));
    const FilterField& f = *t.field;
    auto ops = AllowedOps(f);
    if (std::find(ops.begin(), ops.end(), e.op) == ops.end()) {
      std::vector<std::string> names;
      for (FilterOp op : ops) names.push_back(FilterOpText(op));
      return FilterError(e.position,
                         absl::StrCat("\"", FilterOpText(e.op), "\" does not apply to ", t.shown),
                         absl::StrCat("it takes ", absl::StrJoin(names, ", ")));
    }
    switch (e.op) {
      case FilterOp::kHas:
        return Has(e, t, w);
      case FilterOp::kIn:
      case FilterOp::kNotIn:
        return In(e, t, w);
      case FilterOp::kEq:
      case FilterOp::kNe:
        return Equal(e.op == FilterOp::kEq, e.values.at(0), t, w);
      default:
        return Order(e, t, w);
    }
  }

  // `field:*` (present); for a label family also `labels:"key"`.
  absl::Status Has(const FilterExpr& e, const Target& t, db::WhereExpr* w) {
    const FilterValue& v = e.values.at(0);
    if (t.whole) {
      if (v.prefix) {
        return FilterError(v.position, "expected a key",
                           absl::StrCat("e.g. ", t.shown, ":\"team\""));
      }
      w->Sql(absl::StrCat("(", t.field->sql, " ? ")).Value(v.text).Sql("::text)");
      return absl::OkStatus();
    }
    if (!v.prefix || !v.text.empty()) {
      return FilterError(v.position, absl::StrCat("\":\" takes * (", t.shown, " is present)"),
                         "compare values with =");
    }
    Present(t, w);
    return absl::OkStatus();
  }

  void Present(const Target& t, db::WhereExpr* w) {
    if (t.field->type == FilterType::kLabels) {
      w->Sql(absl::StrCat("(", t.field->sql, " ? ")).Value(t.key).Sql("::text)");
    } else {
      w->Sql("(");
      Operand(t, w);
      w->Sql(" IS NOT NULL)");
    }
  }

  absl::Status Equal(bool equal, const FilterValue& v, const Target& t, db::WhereExpr* w) {
    const FilterField& f = *t.field;
    if (!equal) w->Sql("NOT ");
    if (v.prefix && v.text.empty()) {
      Present(t, w);  // "any value"
      return absl::OkStatus();
    }
    SUBMARINE_ASSIGN_OR_RETURN(std::string value, Bind(v, t));
    if (v.prefix) {
      Guarded(t, w, [&] {
        Operand(t, w);
        w->Sql(" LIKE ").Value(db::LikePrefixPattern(value));
      });
      return absl::OkStatus();
    }
    if (f.type == FilterType::kLabels) {
      // Containment, which the GIN index on the column answers.
      w->Sql(absl::StrCat("(", f.sql, " @> jsonb_build_object("))
          .Value(t.key)
          .Sql("::text, ")
          .Value(value)
          .Sql("::text))");
      return absl::OkStatus();
    }
    Guarded(t, w, [&] {
      Operand(t, w);
      w->Sql(" = ").Value(value).Sql(Cast(f.type));
    });
    return absl::OkStatus();
  }

  absl::Status Order(const FilterExpr& e, const Target& t, db::WhereExpr* w) {
    const FilterField& f = *t.field;
    const FilterValue& v = e.values.at(0);
    SUBMARINE_ASSIGN_OR_RETURN(std::string value, Bind(v, t));
    if (f.type == FilterType::kEnum) {
      // Before or after `value` in the declared order.
      size_t at = std::find(f.values.begin(), f.values.end(), value) - f.values.begin();
      size_t from = e.op == FilterOp::kGt ? at + 1 : e.op == FilterOp::kGe ? at : 0;
      size_t to = e.op == FilterOp::kLt ? at : e.op == FilterOp::kLe ? at + 1 : f.values.size();
      std::vector<std::string> subset(f.values.begin() + from, f.values.begin() + to);
      AnyOf(t, subset, w);
      return absl::OkStatus();
    }
    const char* op = FilterOpText(e.op);
    Guarded(t, w, [&] {
      Operand(t, w);
      w->Sql(absl::StrCat(" ", op, " ")).Value(value).Sql(Cast(f.type));
    });
    return absl::OkStatus();
  }

  absl::Status In(const FilterExpr& e, const Target& t, db::WhereExpr* w) {
    if (e.op == FilterOp::kNotIn) w->Sql("NOT ");
    bool any_prefix = false;
    for (const auto& v : e.values) any_prefix = any_prefix || v.prefix;
    if (any_prefix) {
      // Prefixes do not fit an array: one comparison each.
      w->Sql("(");
      for (size_t i = 0; i < e.values.size(); ++i) {
        if (i) w->Sql(" OR ");
        SUBMARINE_RETURN_IF_ERROR(Equal(true, e.values[i], t, w));
      }
      w->Sql(")");
      return absl::OkStatus();
    }
    std::vector<std::string> values;
    for (const auto& v : e.values) {
      SUBMARINE_ASSIGN_OR_RETURN(std::string value, Bind(v, t));
      values.push_back(std::move(value));
    }
    AnyOf(t, values, w);
    return absl::OkStatus();
  }

  // The operand equals one of `values` (FALSE for none).
  void AnyOf(const Target& t, const std::vector<std::string>& values, db::WhereExpr* w) {
    if (values.empty()) {
      w->Sql("FALSE");
      return;
    }
    Guarded(t, w, [&] {
      Operand(t, w);
      w->Sql(" = ANY(").Value(db::TextArray(values)).Sql(absl::StrCat(Cast(t.field->type), "[])"));
    });
  }

  // `emit`'s comparison, made two-valued when the operand may be NULL (a missing key): NULL
  // compares false, so NOT of it is true.
  template <typename F>
  void Guarded(const Target& t, db::WhereExpr* w, F emit) {
    bool nullable = t.field->nullable || t.field->type == FilterType::kLabels;
    w->Sql(nullable ? "COALESCE(" : "(");
    emit();
    w->Sql(nullable ? ", FALSE)" : ")");
  }

  // The field's value in the row.
  void Operand(const Target& t, db::WhereExpr* w) {
    const FilterField& f = *t.field;
    if (f.type == FilterType::kLabels) {
      w->Sql(absl::StrCat("(", f.sql, " ->> ")).Value(t.key).Sql("::text)");
      return;
    }
    if (!t.keyed) {
      w->Sql(f.sql);
      return;
    }
    std::vector<std::string> parts = absl::StrSplit(f.sql, kKeyMarker);
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i) w->Value(t.key).Sql("::text");
      w->Sql(parts[i]);
    }
  }

  // The parameter text of `v` for the field, or an error naming what the field takes.
  absl::StatusOr<std::string> Bind(const FilterValue& v, const Target& t) {
    const FilterField& f = *t.field;
    auto wrong = [&](const std::string& hint) {
      return FilterError(v.position,
                         absl::StrCat(t.shown, " takes ", TypeName(f), ", not ", Quoted(v.text),
                                      v.prefix ? "*" : ""),
                         hint);
    };
    if (v.prefix && f.type != FilterType::kString && f.type != FilterType::kLabels) {
      return wrong("a trailing * (prefix) applies to text only");
    }
    switch (f.type) {
      case FilterType::kString:
      case FilterType::kLabels:
        return f.normalize ? f.normalize(v.text) : v.text;
      case FilterType::kInt: {
        int64_t n;
        if (!absl::SimpleAtoi(v.text, &n)) return wrong("");
        return absl::StrCat(n);
      }
      case FilterType::kDouble: {
        double d;
        if (!absl::SimpleAtod(v.text, &d) || !std::isfinite(d)) return wrong("");
        return absl::StrFormat("%.17g", d);
      }
      case FilterType::kTimestamp: {
        auto time = ParseTime(v.text);
        if (!time) return wrong("");
        return db::FormatTimestamp(db::Timestamp{absl::ToUnixMicros(*time)});
      }
      case FilterType::kEnum:
        for (const auto& allowed : f.values) {
          if (absl::EqualsIgnoreCase(allowed, v.text)) return allowed;
        }
        return FilterError(v.position,
                           absl::StrCat("unknown value ", Quoted(v.text), " for ", t.shown),
                           absl::StrCat("use ", absl::StrJoin(f.values, ", ")));
      case FilterType::kBool:
        if (absl::EqualsIgnoreCase(v.text, "true")) return std::string("true");
        if (absl::EqualsIgnoreCase(v.text, "false")) return std::string("false");
        return wrong("");
    }
    return wrong("");
  }

  const FilterFields& fields_;
};

}  // namespace

absl::StatusOr<db::WhereExpr> CompileFilter(const FilterExpr& filter, const FilterFields& fields) {
  db::WhereExpr where;
  if (filter.MatchesEverything()) return where;
  SUBMARINE_RETURN_IF_ERROR(Compiler(fields).Emit(filter, &where));
  return where;
}

absl::StatusOr<db::WhereExpr> CompileFilter(const std::string& filter, const FilterFields& fields) {
  SUBMARINE_ASSIGN_OR_RETURN(FilterExpr parsed, ParseFilter(filter));
  return CompileFilter(parsed, fields);
}

FilterFields WithResourceFields(FilterFields fields) {
  fields.push_back({.name = "labels.", .type = FilterType::kLabels, .sql = "labels"});
  fields.push_back({.name = "create_time",
                    .type = FilterType::kTimestamp,
                    .sql = "create_time",
                    .aliases = {"createTime"}});
  fields.push_back({.name = "update_time",
                    .type = FilterType::kTimestamp,
                    .sql = "update_time",
                    .aliases = {"updateTime"}});
  return fields;
}

}  // namespace submarine::api
