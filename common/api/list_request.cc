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
