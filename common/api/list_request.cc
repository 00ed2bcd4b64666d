#include "common/api/list_request.h"

#include <cctype>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::api {

absl::StatusOr<int> EffectivePageSize(int page_size, int default_size, int max_size) {
  if (page_size < 0) return InvalidField("page_size", "must not be negative");
  if (page_size == 0) return default_size;
  return std::min(page_size, max_size);
}

uint64_t QueryHash(const std::vector<std::string>& parts) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& p : parts) {
    for (unsigned char c : p) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string EncodePageToken(const submarine::common::v1::PageToken& token) {
  return absl::WebSafeBase64Escape(token.SerializeAsString());
}

absl::StatusOr<submarine::common::v1::PageToken> DecodePageToken(const std::string& token,
                                                                 uint64_t query_hash) {
  submarine::common::v1::PageToken out;
  if (token.empty()) return out;
  std::string raw;
  if (token.size() > 1024 || !absl::WebSafeBase64Unescape(token, &raw) ||
      !out.ParseFromString(raw)) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_PAGE_TOKEN",
                     "page_token: malformed page token", {{"field", "page_token"}});
  }
  if (out.query_hash() != query_hash) {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_PAGE_TOKEN",
                     "page_token: the token was issued for a different parent, filter or order_by",
                     {{"field", "page_token"}});
  }
  return out;
}

namespace {

class Lexer {
 public:
  explicit Lexer(const std::string& s) : s_(s) {}
  void SkipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool AtEnd() {
    SkipSpace();
    return i_ >= s_.size();
  }
  size_t pos() const { return i_; }
  absl::StatusOr<std::string> Field() {
    SkipSpace();
    size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' ||
                              s_[i_] == '.' || s_[i_] == '-')) {
      ++i_;
    }
    if (start == i_) return Error("expected a field name");
    return s_.substr(start, i_ - start);
  }
  absl::StatusOr<std::string> Op() {
    SkipSpace();
    if (s_.compare(i_, 2, "!=") == 0) {
      i_ += 2;
      return std::string("!=");
    }
    if (i_ < s_.size() && (s_[i_] == '=' || s_[i_] == ':')) return std::string(1, s_[i_++]);
    return Error("expected =, != or :");
  }
  absl::StatusOr<std::pair<std::string, bool>> Value() {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == '"') {
      ++i_;
      std::string v;
      while (i_ < s_.size() && s_[i_] != '"') {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
        v += s_[i_++];
      }
      if (i_ >= s_.size()) return Error("unterminated string");
      ++i_;
      return std::make_pair(v, true);
    }
    size_t start = i_;
    while (i_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[i_])) && s_[i_] != '"') {
      ++i_;
    }
    if (start == i_) return Error("expected a value");
    return std::make_pair(s_.substr(start, i_ - start), false);
  }
  bool Keyword(const char* kw) {
    SkipSpace();
    size_t n = std::strlen(kw);
    if (s_.compare(i_, n, kw) == 0 &&
        (i_ + n == s_.size() || std::isspace(static_cast<unsigned char>(s_[i_ + n])))) {
      i_ += n;
      return true;
    }
    return false;
  }
  absl::Status Error(const std::string& what) const {
    return MakeError(absl::StatusCode::kInvalidArgument, "INVALID_FILTER",
                     absl::StrCat("filter: ", what, " at position ", i_),
                     {{"field", "filter"}, {"position", absl::StrCat(i_)}});
  }

 private:
  const std::string& s_;
  size_t i_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<FilterComparison>> ParseFilter(const std::string& filter) {
  std::vector<FilterComparison> out;
  if (filter.size() > 2048) return InvalidField("filter", "longer than 2048 characters");
  Lexer lex(filter);
  if (lex.AtEnd()) return out;
  for (;;) {
    FilterComparison c;
    SUBMARINE_ASSIGN_OR_RETURN(c.field, lex.Field());
    SUBMARINE_ASSIGN_OR_RETURN(c.op, lex.Op());
    SUBMARINE_ASSIGN_OR_RETURN(auto value, lex.Value());
    c.value = value.first;
    c.quoted = value.second;
    out.push_back(std::move(c));
    if (lex.AtEnd()) break;
    if (!lex.Keyword("AND")) return lex.Error("expected AND (OR is not supported)");
    if (out.size() >= 16) return InvalidField("filter", "more than 16 terms");
  }
  return out;
}

absl::StatusOr<OrderBy> ParseOrderBy(const std::string& order_by,
                                     const std::vector<std::string>& allowed,
                                     const std::string& default_field) {
  OrderBy out{default_field, false};
  std::vector<std::string> words;
  std::string w;
  for (char c : order_by) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!w.empty()) words.push_back(std::move(w)), w.clear();
    } else {
      w += c;
    }
  }
  if (!w.empty()) words.push_back(w);
  if (words.empty()) return out;
  if (words.size() > 2 || (words.size() == 2 && words[1] != "asc" && words[1] != "desc")) {
    return InvalidField("order_by", "expected \"<field> [asc|desc]\"");
  }
  std::string field = words[0];
  if (field == "createTime") field = "create_time";
  bool known = false;
  for (const auto& a : allowed) known = known || a == field;
  if (!known) {
    std::string list;
    for (const auto& a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", a);
    return InvalidField("order_by", absl::StrCat("cannot sort by \"", words[0], "\"; sortable: ",
                                                 list));
  }
  out.field = field;
  out.descending = words.size() == 2 && words[1] == "desc";
  return out;
}

}  // namespace submarine::api
