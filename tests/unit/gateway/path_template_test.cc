// Unit tests (no network) of the gateway's use of path templates: OpenAPI paths, the route table
// and request building. The template parser and matcher are tested with common/api
// (tests/unit/common/resource_name_test.cc).

#include <gtest/gtest.h>

#include "gateway/openapi.h"
#include "gateway/route_table.h"
#include "gateway/transcoder.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::gateway {
namespace {

api::PathTemplate MustParse(const std::string& text) {
  auto t = api::PathTemplate::Parse(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return t.ok() ? *t : api::PathTemplate();
}

TEST(OpenApiTest, PathsExpandPatterns) {
  EXPECT_EQ(OpenApiPath(MustParse("/v1/{name=projects/*/environments/*}")),
            "/v1/projects/{project}/environments/{environment}");
  EXPECT_EQ(OpenApiPath(MustParse("/api/v1/environment/{name}")), "/api/v1/environment/{name}");
  EXPECT_EQ(OpenApiPath(MustParse("/v1/{parent=projects/*}/policies:check")),
            "/v1/projects/{project}/policies:check");
}

TEST(RouteTableTest, DerivesRoutesFromHttpOptions) {
  auto table = RouteTable::Build({"submarine.environment.v1.EnvironmentService",
                                  "submarine.environment.v1.SubmarineEnvironmentApi"});
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->routes().size(), 10u);

  RouteTable::Match m;
  std::vector<std::string> allowed;
  ASSERT_EQ(table->Find("PATCH", "/v1/projects/p/environments/e", &m, &allowed),
            RouteTable::Outcome::kMatched);
  EXPECT_EQ(m.route->grpc_method, "/submarine.environment.v1.EnvironmentService/UpdateEnvironment");
  EXPECT_EQ(m.route->body, "environment");
  EXPECT_EQ(m.bindings[0].first, "environment.name");

  EXPECT_EQ(table->Find("PUT", "/v1/projects/p/environments/e", &m, &allowed),
            RouteTable::Outcome::kMethodNotAllowed);
  EXPECT_EQ(allowed.size(), 3u);
  EXPECT_EQ(table->Find("GET", "/v9/x", &m, &allowed), RouteTable::Outcome::kNotFound);

  ASSERT_EQ(table->Find("GET", "/api/v1/environment/x", &m, &allowed),
            RouteTable::Outcome::kMatched);
  EXPECT_EQ(m.route->face, submarine::common::v1::REST_FACE_SUBMARINE_V1);

  EXPECT_FALSE(RouteTable::Build({"no.such.Service"}).ok());
}

// A route with no body over UpdateEnvironment, so nested, repeated and well-known-type fields can
// come from the query string.
Route QueryRoute() {
  Route r;
  r.http_method = "GET";
  r.path = MustParse("/t/{environment.name=projects/*/environments/*}");
  r.method = google::protobuf::DescriptorPool::generated_pool()->FindMethodByName(
      "submarine.environment.v1.EnvironmentService.UpdateEnvironment");
  r.path_fields.push_back(*ResolveFieldPath(r.method->input_type(), "environment.name"));
  r.label = "GET /t";
  return r;
}

TEST(TranscoderTest, QueryParametersCoverNestedRepeatedAndWellKnownFields) {
  Route route = QueryRoute();
  api::PathBindings b;
  ASSERT_TRUE(route.path.Match("/t/projects/p/environments/e", &b));
  submarine::environment::v1::UpdateEnvironmentRequest req;
  auto st = BuildRequest(route, b,
                         "environment.kernelSpec.channels=a&environment.kernel_spec.channels=b"
                         "&updateMask=image,kernelSpec.name&environment.name=ignored"
                         "&environment.createTime=2024-01-02T03:04:05Z&requestId=r%2B1",
                         "", "", &req);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(req.environment().name(), "projects/p/environments/e");
  ASSERT_EQ(req.environment().kernel_spec().channels_size(), 2);
  EXPECT_EQ(req.environment().kernel_spec().channels(1), "b");
  ASSERT_EQ(req.update_mask().paths_size(), 2);
  EXPECT_EQ(req.update_mask().paths(1), "kernel_spec.name");
  EXPECT_EQ(req.environment().create_time().seconds(), 1704164645);
  EXPECT_EQ(req.request_id(), "r+1");

  submarine::environment::v1::UpdateEnvironmentRequest bad;
  st = BuildRequest(route, b, "environment.createTime=yesterday", "", "", &bad);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("environment.createTime"), std::string::npos) << st;
  st = BuildRequest(route, b, "environment.labels=x", "", "", &bad);
  EXPECT_FALSE(st.ok());
}

TEST(TranscoderTest, ScalarConversionErrorsNameTheParameter) {
  auto table = RouteTable::Build({"submarine.environment.v1.EnvironmentService"});
  ASSERT_TRUE(table.ok());
  RouteTable::Match m;
  ASSERT_EQ(table->Find("GET", "/v1/projects/p/environments", &m, nullptr),
            RouteTable::Outcome::kMatched);
  submarine::environment::v1::ListEnvironmentsRequest req;
  EXPECT_TRUE(BuildRequest(*m.route, m.bindings, "page_size=7", "", "", &req).ok());
  EXPECT_EQ(req.page_size(), 7);
  auto st = BuildRequest(*m.route, m.bindings, "pageSize=99999999999", "", "", &req);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(std::string(st.message()).find("pageSize"), std::string::npos);
}

}  // namespace
}  // namespace submarine::gateway
