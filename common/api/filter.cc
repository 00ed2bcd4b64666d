#include "common/api/filter.h"

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/api/names.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

bool IsFilterIdentStart(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool IsFilterIdentChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
// Where a bare word ends.
bool EndsBareWord(char c) {
  return IsSpace(c) || c == '(' || c == ')' || c == ',' || c == '"' || c == '\'' || c == '`';
}

// -?digits[.digits][(e|E)[+-]digits]
bool IsNumber(const std::string& s) {
  size_t i = 0;
  auto digits = [&] {
    size_t start = i;
    while (i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i > start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (!digits()) return false;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == s.size();
}

const char* const kKeywords[] = {"AND", "OR", "NOT", "IN"};

bool IsKeyword(const std::string& word) {
  for (const char* k : kKeywords) {
    if (absl::EqualsIgnoreCase(word, k)) return true;
  }
  return false;
}

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  absl::StatusOr<FilterExpr> Parse() {
    if (s_.size() > kMaxFilterBytes) {
      return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_FILTER",
                       absl::StrCat("filter: longer than ", kMaxFilterBytes, " bytes"),
                       {{"field", "filter"}});
    }
    if (!IsValidUtf8(s_)) {
      return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_FILTER",
                       "filter: not valid UTF-8", {{"field", "filter"}});
    }
    for (size_t i = 0; i < s_.size(); ++i) {
      unsigned char c = static_cast<unsigned char>(s_[i]);
      if ((c < 0x20 && !IsSpace(s_[i])) || c == 0x7f) return Error(i, "control character");
    }
    SkipSpace();
    if (i_ >= s_.size()) return FilterExpr{};
    SUBMARINE_ASSIGN_OR_RETURN(FilterExpr e, Or(0));
    SkipSpace();
    if (i_ < s_.size()) {
      return Error(
          i_, s_[i_] == ')' ? "unbalanced \")\"" : "expected AND, OR or the end of the filter");
    }
    return e;
  }

 private:
  absl::StatusOr<FilterExpr> Or(int depth) { return Joined(depth, "OR"); }

  // operand { keyword operand } for OR (operands: AND-joins) and AND (operands: NOT terms).
  absl::StatusOr<FilterExpr> Joined(int depth, const char* keyword) {
    const bool is_or = std::strcmp(keyword, "OR") == 0;
    auto operand = [&]() { return is_or ? Joined(depth, "AND") : Not(depth); };
    SUBMARINE_ASSIGN_OR_RETURN(FilterExpr first, operand());
    size_t at = SkipSpace();
    if (!Keyword(keyword)) return first;
    FilterExpr joined;
    joined.kind = is_or ? FilterExpr::Kind::kOr : FilterExpr::Kind::kAnd;
    joined.position = first.position;
    joined.children.push_back(std::move(first));
    do {
      SUBMARINE_RETURN_IF_ERROR(Count(at));
      SUBMARINE_ASSIGN_OR_RETURN(FilterExpr next, operand());
      joined.children.push_back(std::move(next));
      at = SkipSpace();
    } while (Keyword(keyword));
    return joined;
  }

  absl::StatusOr<FilterExpr> Not(int depth) {
    size_t at = SkipSpace();
    if (!Keyword("NOT")) return Primary(depth);
    SUBMARINE_RETURN_IF_ERROR(Deeper(at, depth));
    SUBMARINE_RETURN_IF_ERROR(Count(at));
    FilterExpr e;
    e.kind = FilterExpr::Kind::kNot;
    e.position = Position(at);
    SUBMARINE_ASSIGN_OR_RETURN(FilterExpr operand, Not(depth + 1));
    e.children.push_back(std::move(operand));
    return e;
  }

  absl::StatusOr<FilterExpr> Primary(int depth) {
    size_t open = SkipSpace();
    if (open >= s_.size() || s_[open] != '(') return Comparison();
    SUBMARINE_RETURN_IF_ERROR(Deeper(open, depth));
    ++i_;
    SUBMARINE_ASSIGN_OR_RETURN(FilterExpr e, Or(depth + 1));
    SkipSpace();
    if (i_ >= s_.size() || s_[i_] != ')') {
      return Error(i_, "expected AND, OR or \")\"",
                   absl::StrCat("the \"(\" at position ", Position(open), " is not closed"));
    }
    ++i_;
    return e;
  }

  absl::StatusOr<FilterExpr> Comparison() {
    size_t start = SkipSpace();
    SUBMARINE_RETURN_IF_ERROR(Count(start));
    FilterExpr e;
    e.kind = FilterExpr::Kind::kCompare;
    e.position = Position(start);
    SUBMARINE_ASSIGN_OR_RETURN(e.field, Field());
    const std::string shown = Quoted(e.FieldName());
    size_t at = SkipSpace();
    if (Keyword("NOT")) {
      SkipSpace();
      if (!Keyword("IN")) return Error(i_, "expected IN after NOT");
      e.op = FilterOp::kNotIn;
    } else if (Keyword("IN")) {
      e.op = FilterOp::kIn;
    } else if (!Symbol(&e.op)) {
      return Error(at,
                   absl::StrCat("expected an operator (=, !=, <, <=, >, >=, :, IN) after ", shown));
    }
    if (e.op != FilterOp::kIn && e.op != FilterOp::kNotIn) {
      SUBMARINE_ASSIGN_OR_RETURN(FilterValue v, Value(FilterOpText(e.op)));
      e.values.push_back(std::move(v));
      return e;
    }
    SkipSpace();
    if (i_ >= s_.size() || s_[i_] != '(') {
      return Error(i_, absl::StrCat("expected \"(\" after ", FilterOpText(e.op)));
    }
    ++i_;
    const char* after = "(";
    for (;;) {
      size_t value_at = SkipSpace();
      if (!e.values.empty()) SUBMARINE_RETURN_IF_ERROR(Count(value_at));
      SUBMARINE_ASSIGN_OR_RETURN(FilterValue v, Value(after));
      e.values.push_back(std::move(v));
      SkipSpace();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        after = ",";
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ')') {
        ++i_;
        return e;
      }
      return Error(i_,
                   absl::StrCat("expected \",\" or \")\" in the ", FilterOpText(e.op), " list"));
    }
  }

  absl::StatusOr<std::vector<std::string>> Field() {
    size_t start = i_;
    std::vector<std::string> path;
    bool quoted_first = false;
    for (;;) {
      size_t seg = i_;
      if (i_ < s_.size() && s_[i_] == '`') {
        SUBMARINE_ASSIGN_OR_RETURN(auto text, QuotedText(nullptr));
        if (text.empty()) return Error(seg, "empty field name");
        if (path.empty()) quoted_first = true;
        path.push_back(std::move(text));
      } else {
        bool ok = i_ < s_.size() &&
                  (path.empty() ? IsFilterIdentStart(s_[i_]) : IsFilterIdentChar(s_[i_]));
        if (!ok) {
          if (path.empty()) return Error(seg, "expected a field name");
          return Error(
              seg, absl::StrCat("expected a name after ", Quoted(s_.substr(start, seg - start))));
        }
        while (i_ < s_.size() && IsFilterIdentChar(s_[i_])) ++i_;
        path.push_back(s_.substr(seg, i_ - seg));
      }
      if (i_ >= s_.size() || s_[i_] != '.') break;
      ++i_;
    }
    if (path.size() == 1 && !quoted_first && IsKeyword(path[0])) {
      return Error(start,
                   absl::StrCat("expected a field name, found ", absl::AsciiStrToUpper(path[0])));
    }
    return path;
  }

  // = != < <= > >= :
  bool Symbol(FilterOp* op) {
    static const std::pair<const char*, FilterOp> kSymbols[] = {
        {"!=", FilterOp::kNe}, {"<=", FilterOp::kLe}, {">=", FilterOp::kGe}, {"<", FilterOp::kLt},
        {">", FilterOp::kGt},  {"=", FilterOp::kEq},  {":", FilterOp::kHas}};
    for (const auto& [text, value] : kSymbols) {
      size_t n = std::strlen(text);
      if (s_.compare(i_, n, text) == 0) {
        i_ += n;
        *op = value;
        return true;
      }
    }
    return false;
  }

  absl::StatusOr<FilterValue> Value(const std::string& after) {
    size_t start = SkipSpace();
    FilterValue v;
    v.position = Position(start);
    if (i_ >= s_.size() || s_[i_] == '(' || s_[i_] == ')' || s_[i_] == ',' || s_[i_] == '`') {
      return Error(start, absl::StrCat("expected a value after \"", after, "\""));
    }
    if (s_[i_] == '"' || s_[i_] == '\'') {
      v.kind = FilterValue::Kind::kString;
      SUBMARINE_ASSIGN_OR_RETURN(v.text, QuotedText(&v.prefix));
      return v;
    }
    while (i_ < s_.size() && !EndsBareWord(s_[i_])) ++i_;
    v.text = s_.substr(start, i_ - start);
    if (v.text.back() == '*') {
      v.prefix = true;
      v.text.pop_back();
    }
    v.kind = !v.prefix && IsNumber(v.text) ? FilterValue::Kind::kNumber : FilterValue::Kind::kWord;
    return v;
  }

  // At an opening quote (" ' or `): the text up to the matching one, escapes resolved. With
  // `prefix`, an unescaped `*` just before the closing quote is taken off and sets *prefix.
  absl::StatusOr<std::string> QuotedText(bool* prefix) {
    size_t start = i_;
    const char quote = s_[i_++];
    std::string text;
    bool wildcard = false;  // the last character was an unescaped *
    for (;;) {
      if (i_ >= s_.size()) return Error(start, "unterminated quoted text");
      char c = s_[i_];
      if (c == quote) {
        ++i_;
        break;
      }
      wildcard = false;
      if (c != '\\') {
        wildcard = c == '*';
        text += c;
        ++i_;
        continue;
      }
      if (i_ + 1 >= s_.size()) return Error(start, "unterminated quoted text");
      switch (s_[i_ + 1]) {
        case '"':
        case '\'':
        case '\\':
        case '`':
        case '*':
          text += s_[i_ + 1];
          break;
        case 'n':
          text += '\n';
          break;
        case 't':
          text += '\t';
          break;
        case 'r':
          text += '\r';
          break;
        default:
          return Error(i_, "unknown escape; use \\\" \\' \\\\ \\` \\n \\t \\r or \\*");
      }
      i_ += 2;
    }
    if (prefix != nullptr && wildcard) {
      *prefix = true;
      text.pop_back();
    }
    return text;
  }

  // Consumes `keyword` (case-insensitive) when it stands at the current position as a word.
  bool Keyword(const char* keyword) {
    size_t n = std::strlen(keyword);
    if (i_ + n > s_.size()) return false;
    for (size_t k = 0; k < n; ++k) {
      if (absl::ascii_toupper(static_cast<unsigned char>(s_[i_ + k])) != keyword[k]) return false;
    }
    if (i_ + n < s_.size() &&
        (IsFilterIdentChar(s_[i_ + n]) || s_[i_ + n] == '.' || s_[i_ + n] == '`'))
      return false;
    i_ += n;
    return true;
  }

  size_t SkipSpace() {
    while (i_ < s_.size() && IsSpace(s_[i_])) ++i_;
    return i_;
  }

  absl::Status Count(size_t at) {
    if (++nodes_ > kMaxFilterNodes) {
      return Error(
          at, absl::StrCat("more than ", kMaxFilterNodes, " comparisons, IN values and operators"));
    }
    return absl::OkStatus();
  }

  absl::Status Deeper(size_t at, int depth) {
    if (depth + 1 > kMaxFilterDepth) {
      return Error(at, absl::StrCat("more than ", kMaxFilterDepth, " nested parentheses or NOTs"));
    }
    return absl::OkStatus();
  }

  // 1-based character (not byte) position of byte `offset`.
  int Position(size_t offset) const {
    int chars = 1;
    for (size_t k = 0; k < offset && k < s_.size(); ++k) {
      if ((static_cast<unsigned char>(s_[k]) & 0xC0) != 0x80) ++chars;
    }
    return chars;
  }

  absl::Status Error(size_t offset, const std::string& what, const std::string& hint = "") const {
    return FilterError(Position(offset), what, hint);
  }

  const std::string& s_;
  size_t i_ = 0;
  int nodes_ = 0;
};

std::string ValueString(const FilterValue& v) {
  std::string out;
  if (v.kind == FilterValue::Kind::kString) {
    out += '"';
    for (char c : v.text) {
      if (c == '"' || c == '\\' || c == '*') out += '\\';
      out += c;
    }
    if (v.prefix) out += '*';
    out += '"';
    return out;
  }
  return absl::StrCat(v.text, v.prefix ? "*" : "");
}

}  // namespace

const char* FilterOpText(FilterOp op) {
  switch (op) {
    case FilterOp::kEq:
      return "=";
    case FilterOp::kNe:
      return "!=";
    case FilterOp::kLt:
      return "<";
    case FilterOp::kLe:
      return "<=";
    case FilterOp::kGt:
      return ">";
    case FilterOp::kGe:
      return ">=";
    case FilterOp::kHas:
      return ":";
    case FilterOp::kIn:
      return "IN";
    case FilterOp::kNotIn:
      return "NOT IN";
  }
  return "?";
}

std::string FilterExpr::FieldName() const { return absl::StrJoin(field, "."); }

absl::StatusOr<FilterExpr> ParseFilter(const std::string& filter) { return Parser(filter).Parse(); }

std::string DebugString(const FilterExpr& e) {
  switch (e.kind) {
    case FilterExpr::Kind::kAnd:
    case FilterExpr::Kind::kOr: {
      std::string out = e.kind == FilterExpr::Kind::kAnd ? "(AND" : "(OR";
      for (const auto& c : e.children) absl::StrAppend(&out, " ", DebugString(c));
      return out + ")";
    }
    case FilterExpr::Kind::kNot:
      return absl::StrCat("(NOT ", DebugString(e.children.at(0)), ")");
    case FilterExpr::Kind::kCompare: {
      std::string out = absl::StrCat(e.FieldName(), " ", FilterOpText(e.op), " ");
      if (e.op != FilterOp::kIn && e.op != FilterOp::kNotIn) {
        return out + ValueString(e.values.at(0));
      }
      std::vector<std::string> values;
      for (const auto& v : e.values) values.push_back(ValueString(v));
      return absl::StrCat(out, "(", absl::StrJoin(values, ", "), ")");
    }
  }
  return "";
}

absl::Status FilterError(int position, const std::string& what, const std::string& hint) {
  return MakeError(
      absl::StatusCode::kInvalidArgument, "INVALID_FILTER",
      absl::StrCat("filter: ", what, " at position ", position, hint.empty() ? "" : "; ", hint),
      {{"field", "filter"}, {"position", absl::StrCat(position)}});
}

}  // namespace submarine::api
