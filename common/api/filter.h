#pragma once
// The filter language of every List and Search (AIP-160's, with MLflow's search syntax as far as
// it overlaps): parsed here into a FilterExpr, type-checked and compiled into SQL conditions
// with $n parameters by api::CompileFilter (filter_compiler.h) against the fields a store
// declares. The text of a filter never reaches SQL.
//
//   filter     := [ or ]
//   or         := and { OR and }
//   and        := not { AND not }
//   not        := NOT not | primary                     NOT binds tighter than AND, AND than OR
//   primary    := "(" or ")" | comparison
//   comparison := field op value
//               | field [NOT] IN "(" value { "," value } ")"
//   op         := "=" | "!=" | "<" | "<=" | ">" | ">=" | ":"
//   field      := segment { "." segment }                state, labels.team, params.`my key`
//   segment    := identifier | "`" text "`"              identifier: [A-Za-z_][A-Za-z0-9_-]*
//                                                        (after a dot it may start with a digit)
//   value      := "text" | 'text' | bare-word
//
// - Keywords (AND, OR, NOT, IN) are case-insensitive and reserved where a field may stand;
//   backquote a field segment to use one as a name.
// - Quoted text takes the escapes \" \' \\ \` \n \t \r and \* (a literal star). A bare word runs
//   to the next space, parenthesis, comma or quote: a number (-1, 0.5, 1e-3), a timestamp
//   (2026-01-01T00:00:00Z), true, RUNNING, x/y:1.
// - A value ending in an unescaped `*` is a prefix match (name = "bulk-*"); `*` alone is "any
//   value", and `field:*` means the field (a label, a metric) is present.
// - Bounded: at most kMaxFilterBytes of valid UTF-8 without control characters, kMaxFilterNodes
//   comparisons, IN values and operators, and kMaxFilterDepth nested parentheses or NOTs.
// - Errors are INVALID_ARGUMENT, reason INVALID_FILTER, metadata {field: "filter", position},
//   the message naming the field and the 1-based character position:
//   `filter: expected a value after ">=" at position 17`.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace submarine::api {

inline constexpr size_t kMaxFilterBytes = 4096;
inline constexpr int kMaxFilterNodes = 100;
inline constexpr int kMaxFilterDepth = 32;

enum class FilterOp { kEq, kNe, kLt, kLe, kGt, kGe, kHas, kIn, kNotIn };
// The operator as written: "=", "!=", "<", "<=", ">", ">=", ":", "IN", "NOT IN".
const char* FilterOpText(FilterOp op);

struct FilterValue {
  enum class Kind { kString, kWord, kNumber };  // quoted, bare, bare and numeric
  Kind kind = Kind::kWord;
  std::string text;     // escapes resolved, without the wildcard `*`
  bool prefix = false;  // ended in an unescaped `*`: values starting with `text`
  int position = 0;     // 1-based character position of the literal
};

struct FilterExpr {
  enum class Kind { kAnd, kOr, kNot, kCompare };
  Kind kind = Kind::kAnd;
  // kAnd, kOr: two or more operands (an AND without operands matches everything: the empty
  // filter); kNot: one.
  std::vector<FilterExpr> children;
  // kCompare: the field path (segments, backquotes removed), the operator and its value (one,
  // or the list of IN / NOT IN).
  std::vector<std::string> field;
  FilterOp op = FilterOp::kEq;
  std::vector<FilterValue> values;
  int position = 0;  // 1-based character position where the comparison (or operator) starts

  // The field as written without backquotes ("labels.team").
  std::string FieldName() const;
  bool MatchesEverything() const { return kind == Kind::kAnd && children.empty(); }
};

// Parses `filter`; blank → an expression that matches everything.
absl::StatusOr<FilterExpr> ParseFilter(const std::string& filter);

// A canonical, fully parenthesised rendering, e.g. `(OR (AND a = "1" NOT b = "2") c IN ("3"))`,
// for tests and logs.
std::string DebugString(const FilterExpr& expr);

// The INVALID_ARGUMENT status of a bad filter: "filter: <what> at position <position>", then
// "; <hint>" when there is one.
absl::Status FilterError(int position, const std::string& what, const std::string& hint = "");

}  // namespace submarine::api
