#include "common/status/status.h"

#include <gtest/gtest.h>

namespace submarine {
namespace {

TEST(Status, ErrorInfoSurvivesTheGrpcEdge) {
  absl::Status st = InvalidField("environment.image", "is required");
  grpc::Status g = ToGrpcStatus(st, "environment.submarine.io");
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::Status details;
  ASSERT_TRUE(DecodeStatusDetails(g, &details));
  ASSERT_EQ(details.details_size(), 1);
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "INVALID_FIELD");
  EXPECT_EQ(info.domain(), "environment.submarine.io");
  EXPECT_EQ(info.metadata().at("field"), "environment.image");

  absl::Status back = FromGrpcStatus(g);
  EXPECT_EQ(back.code(), absl::StatusCode::kInvalidArgument);
  google::rpc::ErrorInfo info2;
  ASSERT_TRUE(GetErrorInfo(back, &info2));
  EXPECT_EQ(info2.reason(), "INVALID_FIELD");
}

TEST(Status, StatusWithoutErrorInfoGetsOneFromItsCode) {
  grpc::Status g = ToGrpcStatus(absl::NotFoundError("gone"), "d");
  google::rpc::Status details;
  ASSERT_TRUE(DecodeStatusDetails(g, &details));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_EQ(info.reason(), "RESOURCE_NOT_FOUND");
}

TEST(Status, HttpMappingFollowsAip193) {
  EXPECT_EQ(HttpStatusForCode(3), 400);
  EXPECT_EQ(HttpStatusForCode(5), 404);
  EXPECT_EQ(HttpStatusForCode(6), 409);
  EXPECT_EQ(HttpStatusForCode(10), 409);
  EXPECT_EQ(HttpStatusForCode(7), 403);
  EXPECT_EQ(HttpStatusForCode(8), 429);
  EXPECT_EQ(HttpStatusForCode(14), 503);
  EXPECT_EQ(HttpStatusForCode(4), 504);
  EXPECT_EQ(HttpStatusForCode(2), 500);
  EXPECT_STREQ(CodeName(5), "NOT_FOUND");
}

}  // namespace
TEST(Status, QuoteInputCutsEscapesAndRepairs) {
  EXPECT_EQ(QuoteInput("plain"), "plain");
  EXPECT_EQ(QuoteInput(std::string(100, 'a'), 10), "aaaaaaaaaa...");
  EXPECT_EQ(QuoteInput("line\nforged"), "line\\nforged");
  EXPECT_EQ(QuoteInput(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(QuoteInput("\xC0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong NUL
  // A multi-byte character is never cut in half.
  EXPECT_EQ(QuoteInput("ab\xC3\xA9", 3), "ab...");
  EXPECT_TRUE(IsValidUtf8("caf\xC3\xA9"));
  EXPECT_FALSE(IsValidUtf8("\xFF\xFE"));
  EXPECT_FALSE(IsValidUtf8("\xED\xA0\x80"));  // a surrogate
}

TEST(Status, TheGrpcEdgeBoundsMessagesAndMetadata) {
  std::string huge(4000, 'x');
  grpc::Status g = ToGrpcStatus(
      MakeError(absl::StatusCode::kInvalidArgument, "INVALID_FIELD", "order_by: " + huge,
                {{"value", huge + "\xFF"}}),
      "d");
  EXPECT_LE(g.error_message().size(), kMaxErrorMessageBytes + 3);
  google::rpc::Status details;
  ASSERT_TRUE(DecodeStatusDetails(g, &details));
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(details.details(0).UnpackTo(&info));
  EXPECT_LE(info.metadata().at("value").size(), kMaxErrorMetadataBytes + 3);
  EXPECT_TRUE(IsValidUtf8(info.metadata().at("value")));
}

TEST(Status, ConcealedInternalNamesTheLogAndTheRequestOnly) {
  absl::Status st = ConcealedInternal("req-9", "gateway");
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_EQ(Message(st), "internal error; see the gateway log for request req-9");
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetErrorInfo(st, &info));
  EXPECT_EQ(info.reason(), "INTERNAL_ERROR");
  EXPECT_EQ(info.metadata().at("requestId"), "req-9");
  // An id is quoted like any input: it cannot forge a line or inflate the message.
  absl::Status forged = ConcealedInternal("id\nforged line" + std::string(500, 'x'));
  EXPECT_EQ(Message(forged).find('\n'), std::string::npos) << Message(forged);
  EXPECT_LT(Message(forged).size(), 200u);
  EXPECT_EQ(Message(ConcealedInternal("")), "internal error; see the service log");
}

}  // namespace submarine
