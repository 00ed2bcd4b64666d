#include "common/api/list_request.h"

#include <gtest/gtest.h>

#include "common/status/status.h"

namespace submarine::api {
namespace {

TEST(PageToken, RoundTripsAndIsBoundToItsQuery) {
  submarine::common::v1::PageToken t;
  t.set_after_id(42);
  t.mutable_after_time()->set_seconds(1700000000);
  t.set_query_hash(QueryHash({"projects/default", "", ""}));
  std::string enc = EncodePageToken(t);
  auto back = DecodePageToken(enc, t.query_hash());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->after_id(), 42);
  auto other = DecodePageToken(enc, QueryHash({"projects/default", "name = x", ""}));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DecodePageToken("!!not base64!!", 1).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PageSize, DefaultsClampsAndRejectsNegative) {
  EXPECT_EQ(*EffectivePageSize(0, 50, 1000), 50);
  EXPECT_EQ(*EffectivePageSize(5000, 50, 1000), 1000);
  EXPECT_EQ(*EffectivePageSize(7, 50, 1000), 7);
  EXPECT_EQ(EffectivePageSize(-1, 50, 1000).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TakePage, KeepsOnePageAndResumesAfterItsLastRow) {
  const uint64_t hash = QueryHash({"things"});
  auto resume = [](int row, submarine::common::v1::PageToken* next) { next->set_after_id(row); };
  std::vector<int> kept;
  auto add = [&](int row) { kept.push_back(row); };
  // Three rows read with LIMIT 2 + 1: two are kept, the token resumes after the second.
  std::string token = TakePage(std::vector<int>{10, 20, 30}, 2, hash, add, resume);
  EXPECT_EQ(kept, (std::vector<int>{10, 20}));
  auto decoded = DecodePageToken(token, hash);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->after_id(), 20);
  // No more rows than a page: the last page, no token.
  kept.clear();
  EXPECT_EQ(TakePage(std::vector<int>{10, 20}, 2, hash, add, resume), "");
  EXPECT_EQ(kept, (std::vector<int>{10, 20}));
  kept.clear();
  EXPECT_EQ(TakePage(std::vector<int>{}, 2, hash, add, resume), "");
  EXPECT_TRUE(kept.empty());
}

TEST(OrderBy, AcceptsAllowedFieldsOnly) {
  EXPECT_TRUE(ParseOrderBy("create_time desc", {"create_time"}, "create_time")->descending);
  EXPECT_FALSE(ParseOrderBy("", {"create_time"}, "create_time")->descending);
  EXPECT_FALSE(ParseOrderBy("image", {"create_time"}, "create_time").ok());
  EXPECT_FALSE(ParseOrderBy("create_time sideways", {"create_time"}, "create_time").ok());
}

}  // namespace
}  // namespace submarine::api
