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
}  // namespace submarine
