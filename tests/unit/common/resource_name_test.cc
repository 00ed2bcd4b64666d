// Unit tests (no network) of common/api/resource_name.h: the google.api.http path-template
// parser and matcher the gateway routes by, and the resource-name patterns services parse and
// build names with.

#include "common/api/resource_name.h"

#include "common/api/names.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

PathTemplate MustParse(const std::string& text) {
  auto t = PathTemplate::Parse(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return t.ok() ? *t : PathTemplate();
}

std::string FieldOf(const absl::Status& status) {
  google::rpc::ErrorInfo info;
  if (!GetErrorInfo(status, &info)) return "<no ErrorInfo>";
  auto it = info.metadata().find("field");
  return it == info.metadata().end() ? "<no field>" : it->second;
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

// Expand with the values of `values` (a field path it does not hold: the empty string).
absl::StatusOr<std::string> ExpandWith(const PathTemplate& t, const PathBindings& values) {
  return t.Expand([&values](const std::string& field_path) {
    for (const auto& [field, value] : values) {
      if (field == field_path) return value;
    }
    return std::string();
  });
}

TEST(PathTemplateTest, ExpandFillsTheVariablesPercentEncoded) {
  struct Case {
    const char* tmpl;
    PathBindings values;
    const char* path;
  };
  const Case cases[] = {
      {"/v1/{name=projects/*/environments/*}",
       {{"name", "projects/my project/environments/\xC3\xA9"}},
       "/v1/projects/my%20project/environments/%C3%A9"},
      {"/v1/{environment.name=projects/*/environments/*}",
       {{"environment.name", "projects/p/environments/e"}},
       "/v1/projects/p/environments/e"},
      {"/v1/{name=users/*}:setPassword", {{"name", "users/alice"}}, "/v1/users/alice:setPassword"},
      {"/v1/{team=teams/*}/members/{user=users/*}",
       {{"team", "teams/ml"}, {"user", "users/bob"}},
       "/v1/teams/ml/members/users/bob"},
      // One `*` segment: encoded whole, so a '/' cannot move the value into another route.
      {"/api/v1/environment/{name}", {{"name", "a/b:c%"}}, "/api/v1/environment/a%2Fb%3Ac%25"},
      {"/v1/{name=projects/*/artifacts/**}",
       {{"name", "projects/p/artifacts/a/b c.txt"}},
       "/v1/projects/p/artifacts/a/b%20c.txt"},
      {"/v1/{name=projects/*/artifacts/**}",
       {{"name", "projects/p/artifacts"}},
       "/v1/projects/p/artifacts"},
      {"/v1/{path=**}/meta", {{"path", "a/b"}}, "/v1/a/b/meta"},
      {"/v1/users:me", {}, "/v1/users:me"},
  };
  for (const Case& c : cases) {
    PathTemplate t = MustParse(c.tmpl);
    auto path = ExpandWith(t, c.values);
    ASSERT_TRUE(path.ok()) << c.tmpl << ": " << path.status();
    EXPECT_EQ(*path, c.path) << c.tmpl;
    // What the gateway reads back is what was filled in.
    PathBindings read;
    ASSERT_TRUE(t.Match(*path, &read)) << *path;
    EXPECT_EQ(read, c.values) << *path;
  }
}

TEST(PathTemplateTest, ExpandRefusesAValueOfAnotherShapeNamingItsField) {
  PathTemplate t = MustParse("/v1/{environment.name=projects/*/environments/*}:start");
  for (const char* bad : {"", "projects/p", "projects/p/environments", "projects/p/environments/",
                          "projects//environments/e", "projects/p/models/m",
                          "projects/p/environments/e/x", "/projects/p/environments/e"}) {
    auto path = ExpandWith(t, {{"environment.name", bad}});
    ASSERT_FALSE(path.ok()) << bad << " gave " << *path;
    EXPECT_EQ(path.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(path.status()), "environment.name") << bad;
    EXPECT_EQ(path.status().message(),
              absl::StrCat("environment.name: \"", bad,
                           "\" is not of the form projects/*/environments/*"));
  }

  auto empty = ExpandWith(MustParse("/api/v1/environment/{name}"), {{"name", ""}});
  EXPECT_EQ(empty.status().message(), "name: \"\" is not of the form *");

  // Only a short prefix of a long value is quoted, control characters escaped.
  std::string long_value = "users/a\nb/" + std::string(5000, 'x');
  auto refused = ExpandWith(MustParse("/v1/{name=users/*}"), {{"name", long_value}});
  ASSERT_FALSE(refused.ok());
  EXPECT_LT(refused.status().message().size(), 200u) << refused.status();
  EXPECT_FALSE(absl::StrContains(refused.status().message(), "\n")) << refused.status();

  // A wildcard outside any variable has no value to take: the template cannot be expanded.
  auto bare = ExpandWith(MustParse("/v1/*/items/{item}"), {{"item", "i"}});
  EXPECT_EQ(bare.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(bare.status()), "path_template");
}

// ---- ResourcePattern

constexpr char kEnvironmentPattern[] = "projects/{project}/environments/{environment}";
constexpr char kExpected[] = R"(expected "projects/{project}/environments/{environment}")";

ResourcePattern MustParsePattern(const std::string& text) {
  auto p = ResourcePattern::Parse(text);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status();
  return p.ok() ? *p : ResourcePattern();
}

TEST(ResourcePatternTest, MatchesANameIntoItsVariables) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  EXPECT_EQ(pattern.text(), kEnvironmentPattern);
  EXPECT_EQ(pattern.variables(), (std::vector<std::string>{"project", "environment"}));

  auto name = pattern.Match("projects/p-1/environments/env.x", "name");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->text(), "projects/p-1/environments/env.x");
  EXPECT_EQ(name->Get("project"), "p-1");
  EXPECT_EQ(name->Get("environment"), "env.x");
  EXPECT_EQ(name->Get("experiment"), "");
  EXPECT_EQ(name->bindings(), (PathBindings{{"project", "p-1"}, {"environment", "env.x"}}));
}

TEST(ResourcePatternTest, ComparesNamesAsWrittenWithoutPercentDecoding) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  // The gateway's templates decode; a name in a request is taken as it is, so an escape can
  // neither spell a literal nor smuggle a '/' into a variable.
  EXPECT_FALSE(pattern.Match("%70rojects/p/environments/e", "name").ok());
  auto escaped = pattern.Match("projects/p/environments/a%2Fb", "name");
  ASSERT_TRUE(escaped.ok()) << escaped.status();
  EXPECT_EQ(escaped->Get("environment"), "a%2Fb");
}

TEST(ResourcePatternTest, AMismatchNamesTheFieldAndTheExpectedShape) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  for (const char* bad :
       {"", "projects", "projects/p", "projects/p/environments", "projects/p/environments/",
        "projects//environments/e", "projects/p/models/m", "projects/p/environments/e/x",
        "projects/p/environments/e/", "/projects/p/environments/e", "Projects/p/environments/e"}) {
    auto r = pattern.Match(bad, "environment.name");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(r.status()), "environment.name") << bad;
    EXPECT_EQ(r.status().message(),
              absl::StrCat("environment.name: ", kExpected, ", got \"", bad, "\""));
  }
  // A resource name has no custom verb: ':' is an ordinary character of a segment (for the
  // id validators to refuse).
  auto with_colon = pattern.Match("projects/p/environments/e:start", "name");
  ASSERT_TRUE(with_colon.ok()) << with_colon.status();
  EXPECT_EQ(with_colon->Get("environment"), "e:start");
}

TEST(ResourcePatternTest, InvalidUtf8IsRefusedAndNeverEchoedRaw) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  for (const std::string& bad : {std::string("projects/p/environments/\xC0\x80"),
                                 std::string("projects/p/environments/e\xFF"),
                                 std::string("projects/\xED\xA0\x80/environments/e")}) {
    auto r = pattern.Match(bad, "name");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(FieldOf(r.status()), "name");
    std::string message(r.status().message());
    EXPECT_TRUE(absl::StartsWith(message, "name: not valid UTF-8, ")) << message;
    EXPECT_NE(message.find(kExpected), std::string::npos) << message;
    EXPECT_TRUE(IsValidUtf8(message)) << message;
  }
  // Control characters are quoted escaped, so an error cannot forge a log line.
  auto r = pattern.Match("projects/p\nforged", "name");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(std::string(r.status().message()).find('\n'), std::string::npos);
  EXPECT_NE(std::string(r.status().message()).find("p\\nforged"), std::string::npos);
}

TEST(ResourcePatternTest, OverLongNamesAreRefusedQuotingOnlyAPrefix) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  const std::string prefix = "projects/p/environments/";
  std::string longest = prefix + std::string(kMaxResourceNameBytes - prefix.size(), 'e');
  ASSERT_EQ(longest.size(), kMaxResourceNameBytes);
  EXPECT_TRUE(pattern.Match(longest, "name").ok());

  for (size_t size : {kMaxResourceNameBytes + 1, size_t{1} << 20}) {
    std::string name = prefix + std::string(size - prefix.size(), 'e');
    auto r = pattern.Match(name, "name");
    ASSERT_FALSE(r.ok()) << size;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    std::string message(r.status().message());
    EXPECT_TRUE(absl::StartsWith(message, "name: longer than 1024 bytes, ")) << message;
    EXPECT_NE(message.find(kExpected), std::string::npos);
    EXPECT_LT(message.size(), 250u) << message;
    EXPECT_NE(message.find("\"projects/p/environments/eee"), std::string::npos) << message;
    EXPECT_TRUE(absl::EndsWith(message, "...\"")) << message;
  }
}

TEST(ResourcePatternTest, FormatBuildsWhatMatchReads) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  auto name = pattern.Format({{"environment", "e"}, {"project", "p"}});
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(*name, "projects/p/environments/e");
  for (const char* text : {"projects/p/environments/e", "projects/a.b/environments/x_y-z"}) {
    auto matched = pattern.Match(text, "name");
    ASSERT_TRUE(matched.ok()) << text;
    auto formatted = pattern.Format(matched->bindings());
    ASSERT_TRUE(formatted.ok()) << formatted.status();
    EXPECT_EQ(*formatted, text);
  }
}

TEST(ResourcePatternTest, FormatRefusesValuesThatWouldNameSomethingElse) {
  auto pattern = MustParsePattern(kEnvironmentPattern);
  struct Case {
    PathBindings values;
    std::string field;
    std::string problem;
  };
  for (const Case& c : std::vector<Case>{
           {{{"project", "p"}}, "environment", "is missing"},
           {{{"project", "p"}, {"environment", "e"}, {"model", "m"}}, "model", "not a variable"},
           {{{"project", "p"}, {"project", "q"}, {"environment", "e"}}, "project", "bound twice"},
           {{{"project", ""}, {"environment", "e"}}, "project", "non-empty path segment"},
           {{{"project", "p"}, {"environment", "e/models/m"}},
            "environment",
            "non-empty path segment"},
       }) {
    auto r = pattern.Format(c.values);
    ASSERT_FALSE(r.ok()) << c.field << " " << c.problem << " gave " << *r;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(FieldOf(r.status()), c.field) << r.status();
    EXPECT_NE(std::string(r.status().message()).find(c.problem), std::string::npos) << r.status();
  }
}

TEST(ResourcePatternTest, ParseAcceptsOnlyLiteralsAndSingleSegmentVariables) {
  MustParsePattern("projects/{project}");
  MustParsePattern("users/{user}");
  MustParsePattern("projects/{project}/roleBindings/{role_binding}");
  for (const char* bad :
       {"", "/projects/{project}", "projects/{project}/", "projects", "projects/*/envs/{e}",
        "projects/{project=**}", "projects/{project=*/x/*}", "projects/{a.b}",
        "projects/{project}:start", "projects/%70/{x}", "projects/{p}/x/{p}", "pro jects/{p}",
        "projects//{p}", "projects/{p}{q}"}) {
    auto p = ResourcePattern::Parse(bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(p.status()), "resource_pattern") << bad;
  }
}

TEST(CanonicalClusterNameTest, TakesAnIdOrAFullNameAndKeepsEmptyAsUnset) {
  EXPECT_EQ(*CanonicalClusterName("gpu-a", "f"), "computeClusters/gpu-a");
  EXPECT_EQ(*CanonicalClusterName("computeClusters/gpu-a", "f"), "computeClusters/gpu-a");
  EXPECT_EQ(*CanonicalClusterName("", "f"), "");
  for (const char* bad : {"No Such", "computeClusters/", "computeClusters/a/b", "-x"}) {
    auto st = CanonicalClusterName(bad, "project.default_compute_cluster");
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(st.status()), "project.default_compute_cluster") << bad;
  }
}

}  // namespace
}  // namespace submarine::api
