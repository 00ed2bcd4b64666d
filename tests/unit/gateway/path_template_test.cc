// Unit tests (no network) of the path-template matcher, the route table and request building.

#include "gateway/path_template.h"

#include <gtest/gtest.h>

#include "gateway/openapi.h"
#include "gateway/route_table.h"
#include "gateway/transcoder.h"
#include "submarine/environment/v1/environment.pb.h"

namespace submarine::gateway {
namespace {

PathTemplate MustParse(const std::string& text) {
  auto t = PathTemplate::Parse(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return t.ok() ? *t : PathTemplate();
}

TEST(PathTemplateTest, ParsesTheGrammar) {
  auto t = MustParse("/v1/{environment.name=projects/*/environments/*}:start");
  EXPECT_EQ(t.verb(), "start");
  ASSERT_EQ(t.variables().size(), 1u);
  EXPECT_EQ(t.variables()[0].field_path, "environment.name");
  EXPECT_EQ(t.segments().size(), 5u);
  EXPECT_EQ(t.Specificity(), 4);  // v1, projects, environments + verb

  for (const char* bad : {"", "v1/x", "/v1/{name", "/v1/{name=a/{b}}", "/v1//x", "/v1/{}",
                          "/v1/{a.}", "/v1/x:", "/v1/{a}/{a}"}) {
    EXPECT_FALSE(PathTemplate::Parse(bad).ok()) << bad;
  }
}

TEST(PathTemplateTest, MatchesSingleVariables) {
  auto t = MustParse("/api/v1/environment/{name}");
  PathBindings b;
  ASSERT_TRUE(t.Match("/api/v1/environment/my%20env", &b));
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0], std::make_pair(std::string("name"), std::string("my env")));
  b.clear();
  ASSERT_TRUE(t.Match("/api/v1/environment/a%2Fb", &b));  // one segment: fully decoded
  EXPECT_EQ(b[0].second, "a/b");
  EXPECT_FALSE(t.Match("/api/v1/environment", &b));
  EXPECT_FALSE(t.Match("/api/v1/environment/", &b));
  EXPECT_FALSE(t.Match("/api/v1/environment/a/b", &b));
  EXPECT_FALSE(t.Match("api/v1/environment/a", &b));
}

TEST(PathTemplateTest, MatchesResourceNamePatterns) {
  auto t = MustParse("/v1/{name=projects/*/environments/*}");
  PathBindings b;
  ASSERT_TRUE(t.Match("/v1/projects/default/environments/x", &b));
  EXPECT_EQ(b[0].first, "name");
  EXPECT_EQ(b[0].second, "projects/default/environments/x");
  b.clear();
  ASSERT_TRUE(t.Match("/v1/projects/p/environments/a%2Fb", &b));  // multi-segment keeps %2F
  EXPECT_EQ(b[0].second, "projects/p/environments/a%2Fb");
  EXPECT_FALSE(t.Match("/v1/projects/p/models/x", &b));
  EXPECT_FALSE(t.Match("/v1/projects/p/environments", &b));
  EXPECT_FALSE(t.Match("/v1/projects/p/environments/x/y", &b));
}

TEST(PathTemplateTest, MatchesDoubleWildcardsAndVerbs) {
  auto files = MustParse("/v1/{name=projects/*/artifacts/**}");
  PathBindings b;
  ASSERT_TRUE(files.Match("/v1/projects/p/artifacts/a/b/c.txt", &b));
  EXPECT_EQ(b[0].second, "projects/p/artifacts/a/b/c.txt");
  b.clear();
  ASSERT_TRUE(files.Match("/v1/projects/p/artifacts", &b));  // ** may match nothing
  EXPECT_EQ(b[0].second, "projects/p/artifacts");

  auto middle = MustParse("/v1/{path=**}/meta");
  b.clear();
  ASSERT_TRUE(middle.Match("/v1/a/b/meta", &b));
  EXPECT_EQ(b[0].second, "a/b");

  auto verb = MustParse("/v1/{name=projects/*/experiments/*}:cancel");
  b.clear();
  ASSERT_TRUE(verb.Match("/v1/projects/p/experiments/e:cancel", &b));
  EXPECT_EQ(b[0].second, "projects/p/experiments/e");
  EXPECT_FALSE(verb.Match("/v1/projects/p/experiments/e", &b));
  EXPECT_FALSE(verb.Match("/v1/projects/p/experiments/e:start", &b));

  auto two = MustParse("/v1/projects/{project}/items/{item}");
  b.clear();
  ASSERT_TRUE(two.Match("/v1/projects/p1/items/i1", &b));
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].second, "p1");
  EXPECT_EQ(b[1].second, "i1");
}

TEST(PathTemplateTest, OpenApiPathsExpandPatterns) {
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
  PathBindings b;
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
