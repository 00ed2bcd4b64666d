#include "common/api/filter_compiler.h"

#include <gtest/gtest.h>

#include "common/status/status.h"

namespace submarine::api {
namespace {

using enum FilterType;

// Fields shaped like the experiment store's, plus tracking's keyed families.
const FilterFields& Fields() {
  static const auto* fields = new FilterFields{
      {.name = "name", .sql = "experiment_id"},
      {.name = "state",
       .type = kEnum,
       .sql = "state",
       .values = {"PENDING", "RUNNING", "SUCCEEDED", "FAILED"},
       .ordered = true},
      {.name = "priority", .type = kInt, .sql = "priority"},
      {.name = "create_time", .type = kTimestamp, .sql = "create_time", .aliases = {"createTime"}},
      {.name = "admin", .type = kBool, .sql = "admin"},
      {.name = "owner",
       .sql = "owner",
       .normalize = [](const std::string& v) { return v.rfind("users/", 0) ? "users/" + v : v; }},
      {.name = "framework", .sql = "framework", .ops = {FilterOp::kEq, FilterOp::kNe}},
      {.name = "labels.", .type = kLabels, .sql = "labels"},
      {.name = "metrics.",
       .type = kDouble,
       .sql = "(SELECT m.value FROM metrics m WHERE m.run = r.id AND m.key = {key})",
       .nullable = true},
      {.name = "params.",
       .sql = "(SELECT p.value FROM params p WHERE p.run = r.id AND p.key = {key})",
       .nullable = true},
  };
  return *fields;
}

struct Compiled {
  std::string sql;
  std::vector<std::string> params;
  std::string error;
};

Compiled Compile(const std::string& filter) {
  Compiled out;
  auto where = CompileFilter(filter, Fields());
  if (!where.ok()) {
    out.error = std::string(where.status().message());
    EXPECT_EQ(where.status().code(), absl::StatusCode::kInvalidArgument) << filter;
    google::rpc::ErrorInfo info;
    EXPECT_TRUE(GetErrorInfo(where.status(), &info));
    EXPECT_EQ(info.metadata().at("field"), "filter");
    return out;
  }
  out.sql = where->Render(&out.params);
  return out;
}

using Params = std::vector<std::string>;

TEST(CompileFilter, EnumsBindTheirCanonicalName) {
  auto c = Compile("state = running");
  EXPECT_EQ(c.sql, "(state = $1::text)");
  EXPECT_EQ(c.params, Params{"RUNNING"});
  c = Compile("state != \"FAILED\"");
  EXPECT_EQ(c.sql, "NOT (state = $1::text)");
  EXPECT_EQ(c.params, Params{"FAILED"});
  c = Compile("state IN (running, \"Failed\")");
  EXPECT_EQ(c.sql, "(state = ANY($1::text[]))");
  EXPECT_EQ(c.params, Params{R"({"RUNNING","FAILED"})"});
}

TEST(CompileFilter, OrderedEnumsCompareByPositionInTheirOrder) {
  auto c = Compile("state < SUCCEEDED");
  EXPECT_EQ(c.sql, "(state = ANY($1::text[]))");
  EXPECT_EQ(c.params, Params{R"({"PENDING","RUNNING"})"});
  EXPECT_EQ(Compile("state >= succeeded").params, Params{R"({"SUCCEEDED","FAILED"})"});
  EXPECT_EQ(Compile("state > RUNNING").params, Params{R"({"SUCCEEDED","FAILED"})"});
  EXPECT_EQ(Compile("state <= PENDING").params, Params{R"({"PENDING"})"});
  c = Compile("state < PENDING");
  EXPECT_EQ(c.sql, "FALSE");
  EXPECT_TRUE(c.params.empty());
}

TEST(CompileFilter, BooleanStructureIsParenthesised) {
  auto c = Compile("(state = RUNNING OR priority > 5) AND NOT owner = alice");
  EXPECT_EQ(c.sql, "(((state = $1::text) OR (priority > $2::bigint)) AND NOT (owner = $3::text))");
  EXPECT_EQ(c.params, (Params{"RUNNING", "5", "users/alice"}));
}

TEST(CompileFilter, NumbersAreCheckedAndBoundCanonically) {
  auto c = Compile("priority >= -5 AND priority <= \"7\" AND priority != 010");
  EXPECT_EQ(c.sql,
            "((priority >= $1::bigint) AND (priority <= $2::bigint) AND NOT (priority = "
            "$3::bigint))");
  EXPECT_EQ(c.params, (Params{"-5", "7", "10"}));
  c = Compile("metrics.accuracy > 0.9 and params.lr = \"0.01\"");
  EXPECT_EQ(c.sql,
            "(COALESCE((SELECT m.value FROM metrics m WHERE m.run = r.id AND m.key = $1::text) > "
            "$2::double precision, FALSE) AND COALESCE((SELECT p.value FROM params p WHERE p.run "
            "= r.id AND p.key = $3::text) = $4::text, FALSE))");
  EXPECT_EQ(c.params, (Params{"accuracy", "0.90000000000000002", "lr", "0.01"}));
  EXPECT_EQ(Compile("metrics.loss < -1.5e-3").params, (Params{"loss", "-0.0015"}));
}

TEST(CompileFilter, TimeRangesBindUtcMicroseconds) {
  auto c = Compile(
      "create_time >= \"2026-01-01T00:00:00Z\" AND createTime < 2026-02-01T01:30:00.5+01:30");
  EXPECT_EQ(c.sql, "((create_time >= $1::timestamptz) AND (create_time < $2::timestamptz))");
  EXPECT_EQ(c.params, (Params{"2026-01-01T00:00:00.000000Z", "2026-02-01T00:00:00.500000Z"}));
  c = Compile("create_time IN (2026-03-04, \"2026-03-05\")");
  EXPECT_EQ(c.sql, "(create_time = ANY($1::timestamptz[]))");
  EXPECT_EQ(c.params, Params{R"({"2026-03-04T00:00:00.000000Z","2026-03-05T00:00:00.000000Z"})"});
}

TEST(CompileFilter, TextPrefixesAreEscapedLikePatterns) {
  auto c = Compile("name = \"bulk-1*\"");
  EXPECT_EQ(c.sql, "(experiment_id LIKE $1)");
  EXPECT_EQ(c.params, Params{"bulk-1%"});
  c = Compile(R"(name = "50%_\\*")");
  EXPECT_EQ(c.params, Params{R"(50\%\_\\%)"});
  c = Compile("name != x*");
  EXPECT_EQ(c.sql, "NOT (experiment_id LIKE $1)");
  c = Compile("name IN (a*, b)");
  EXPECT_EQ(c.sql, "((experiment_id LIKE $1) OR (experiment_id = $2::text))");
  EXPECT_EQ(c.params, (Params{"a%", "b"}));
  c = Compile("name > \"m\"");
  EXPECT_EQ(c.sql, "(experiment_id > $1::text)");
}

TEST(CompileFilter, LabelsUseContainmentAndKeyPresence) {
  auto c = Compile("labels.team = \"vision\"");
  EXPECT_EQ(c.sql, "(labels @> jsonb_build_object($1::text, $2::text))");
  EXPECT_EQ(c.params, (Params{"team", "vision"}));
  c = Compile("labels.team != vision");
  EXPECT_EQ(c.sql, "NOT (labels @> jsonb_build_object($1::text, $2::text))");
  c = Compile("labels.team:*");
  EXPECT_EQ(c.sql, "(labels ? $1::text)");
  EXPECT_EQ(c.params, Params{"team"});
  EXPECT_EQ(Compile("labels:\"team\"").sql, "(labels ? $1::text)");
  EXPECT_EQ(Compile("labels.team = *").sql, "(labels ? $1::text)");
  c = Compile("labels.team = vis*");
  EXPECT_EQ(c.sql, "COALESCE((labels ->> $1::text) LIKE $2, FALSE)");
  EXPECT_EQ(c.params, (Params{"team", "vis%"}));
  c = Compile("labels.team NOT IN (a, b)");
  EXPECT_EQ(c.sql, "NOT COALESCE((labels ->> $1::text) = ANY($2::text[]), FALSE)");
  EXPECT_EQ(c.params, (Params{"team", R"({"a","b"})"}));
  // A key holding dots, backquoted.
  EXPECT_EQ(Compile("labels.`a.b` = x").params, (Params{"a.b", "x"}));
}

TEST(CompileFilter, NullableFieldsTestPresenceAndCompareTwoValued) {
  auto c = Compile("metrics.loss:*");
  EXPECT_EQ(
      c.sql,
      "((SELECT m.value FROM metrics m WHERE m.run = r.id AND m.key = $1::text) IS NOT NULL)");
  c = Compile("NOT metrics.loss < 1");
  EXPECT_EQ(c.sql,
            "NOT COALESCE((SELECT m.value FROM metrics m WHERE m.run = r.id AND m.key = $1::text) "
            "< $2::double precision, FALSE)");
}

TEST(CompileFilter, BooleansAndRestrictedOperators) {
  auto c = Compile("admin = TRUE AND admin != \"false\"");
  EXPECT_EQ(c.sql, "((admin = $1::boolean) AND NOT (admin = $2::boolean))");
  EXPECT_EQ(c.params, (Params{"true", "false"}));
  EXPECT_EQ(Compile("framework = pytorch").sql, "(framework = $1::text)");
}

TEST(CompileFilter, UserTextOnlyEverBecomesAParameter) {
  const std::string hostile = "x'; DROP TABLE experiments; --";
  auto c = Compile("name = \"" + hostile + "\" OR labels.`k'); DROP TABLE x; --` = y");
  EXPECT_EQ(c.sql.find("DROP"), std::string::npos) << c.sql;
  EXPECT_EQ(c.params, (Params{hostile, "k'); DROP TABLE x; --", "y"}));
}

TEST(CompileFilter, EmptyFilterAddsNothingToTheQuery) {
  auto where = CompileFilter("  ", Fields());
  ASSERT_TRUE(where.ok());
  EXPECT_TRUE(where->empty());
  db::ListQuery q("SELECT id FROM experiments WHERE project = $1", {"p"});
  q.Where(*where);
  EXPECT_EQ(q.sql(), "SELECT id FROM experiments WHERE project = $1");
}

TEST(CompileFilter, ListQueryNumbersTheFilterAfterItsOwnParameters) {
  auto where = CompileFilter("state = RUNNING OR labels.team = ml", Fields());
  ASSERT_TRUE(where.ok()) << where.status();
  db::ListQuery q("SELECT id FROM experiments WHERE project = $1", {"p"});
  q.Where(*where);
  q.OnlyIds("experiment_id", {"a"});
  EXPECT_EQ(q.sql(),
            "SELECT id FROM experiments WHERE project = $1 AND (((state = $2::text) OR (labels @> "
            "jsonb_build_object($3::text, $4::text)))) AND experiment_id = ANY($5::text[])");
  EXPECT_EQ(q.params(), (Params{"p", "RUNNING", "team", "ml", R"({"a"})"}));
}

TEST(CompileFilter, TypeErrorsNameTheFieldWhatItTakesAndThePosition) {
  struct Case {
    std::string filter;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"colour = red",
       "filter: cannot filter on \"colour\" at position 1; filterable: name, state, priority, "
       "create_time, admin, owner, framework, labels.<key>, metrics.<key>, params.<key>"},
      {"state = RUNNING OR state = \"RUNNNG\"",
       "filter: unknown value \"RUNNNG\" for \"state\" at position 28; use PENDING, RUNNING, "
       "SUCCEEDED, FAILED"},
      {"labels.team < \"a\"",
       "filter: \"<\" does not apply to \"labels.team\" at position 1; it takes =, !=, IN, NOT IN, "
       ":"},
      {"priority = 1.5", "filter: \"priority\" takes an integer, not \"1.5\" at position 12"},
      {"priority = 99999999999999999999", "\"priority\" takes an integer"},
      {"metrics.x > abc", "filter: \"metrics.x\" takes a number, not \"abc\" at position 13"},
      {"metrics.x > 1e999", "takes a number"},
      {"create_time > yesterday",
       "filter: \"create_time\" takes an RFC 3339 time (2026-01-31T12:00:00Z) or a date "
       "(2026-01-31), not \"yesterday\" at position 15"},
      {"create_time > \"2026-13-01\"", "takes an RFC 3339 time"},
      {"create_time > 10000-01-01T00:00:00Z", "takes an RFC 3339 time"},
      {"admin = yes", "filter: \"admin\" takes true or false, not \"yes\" at position 9"},
      {"state = RUN*", "a trailing * (prefix) applies to text only"},
      {"framework < b", "\"<\" does not apply to \"framework\" at position 1; it takes =, !="},
      {"admin > true", "\">\" does not apply to \"admin\" at position 1; it takes =, !="},
      {"name:*", "filter: \":\" does not apply to \"name\""},
      {"metrics.x:5", "filter: \":\" takes * (\"metrics.x\" is present) at position 11"},
      {"labels = x", "filter: \"labels\" needs a key at position 1"},
      {"labels:*", "filter: expected a key at position 8"},
  };
  for (const auto& c : cases) {
    auto got = Compile(c.filter);
    EXPECT_NE(got.error.find(c.message), std::string::npos)
        << c.filter << " → " << (got.error.empty() ? got.sql : got.error);
  }
}

}  // namespace
}  // namespace submarine::api
