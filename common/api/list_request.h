#pragma once
// Shared pieces of AIP-132/158/160 List methods: page sizes, opaque keyset page tokens bound to
// their query, and order_by. The filter language is in filter.h (parser) and
// filter_compiler.h (its compilation against the fields a store declares).
// Errors are INVALID_ARGUMENT naming the field ("page_size", "page_token", "order_by").

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "submarine/common/v1/pagination.pb.h"

namespace submarine::api {

// page_size 0 → default; negative → INVALID_ARGUMENT; above max → max.
absl::StatusOr<int> EffectivePageSize(int page_size, int default_size, int max_size);

// Stable 64-bit FNV-1a of the parts (separated), to bind a token to (parent, filter, order_by).
uint64_t QueryHash(const std::vector<std::string>& parts);

std::string EncodePageToken(const submarine::common::v1::PageToken& token);
// Empty token → default PageToken. INVALID_ARGUMENT (reason INVALID_PAGE_TOKEN) if malformed or
// issued for another query.
absl::StatusOr<submarine::common::v1::PageToken> DecodePageToken(const std::string& token,
                                                                 uint64_t query_hash);

// One keyset page of `rows`, read with LIMIT page_size + 1 in the query's order: `add(row)` is
// called for each of the first page_size rows, and the answer is the response's next_page_token:
// "" when the query returned no more rows than that (the last page), otherwise a token bound to
// `query_hash` whose position `resume_after(last_row_of_the_page, &token)` fills in (after_id,
// and after_time when the order has one).
template <typename Row, typename Add, typename ResumeAfter>
std::string TakePage(const std::vector<Row>& rows, int page_size, uint64_t query_hash, Add add,
                     ResumeAfter resume_after) {
  size_t kept = std::min(rows.size(), static_cast<size_t>(std::max(page_size, 0)));
  for (size_t i = 0; i < kept; ++i) add(rows[i]);
  if (rows.size() <= kept || kept == 0) return "";
  submarine::common::v1::PageToken next;
  resume_after(rows[kept - 1], &next);
  next.set_query_hash(query_hash);
  return EncodePageToken(next);
}

// order_by "field [asc|desc]"; `allowed` lists the sortable fields; empty → (default, false).
struct OrderBy {
  std::string field;
  bool descending = false;
};
absl::StatusOr<OrderBy> ParseOrderBy(const std::string& order_by,
                                     const std::vector<std::string>& allowed,
                                     const std::string& default_field);

}  // namespace submarine::api
