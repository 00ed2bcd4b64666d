#include "common/api/filter.h"

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/status/status.h"

namespace submarine::api {
namespace {

std::string Parsed(const std::string& filter) {
  auto e = ParseFilter(filter);
  if (!e.ok()) return absl::StrCat("error: ", e.status().message());
  return DebugString(*e);
}

// The message of the error `filter` gets, and its position metadata.
std::pair<std::string, std::string> ErrorOf(const std::string& filter) {
  auto e = ParseFilter(filter);
  if (e.ok()) return {"parsed: " + DebugString(*e), ""};
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument) << filter;
  google::rpc::ErrorInfo info;
  EXPECT_TRUE(GetErrorInfo(e.status(), &info)) << filter;
  EXPECT_EQ(info.reason(), "INVALID_FILTER") << filter;
  EXPECT_EQ(info.metadata().at("field"), "filter") << filter;
  std::string position =
      info.metadata().count("position") ? info.metadata().at("position") : std::string();
  return {std::string(e.status().message()), position};
}

TEST(ParseFilter, BlankMatchesEverything) {
  for (const char* blank : {"", "   ", "\n\t "}) {
    auto e = ParseFilter(blank);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_TRUE(e->MatchesEverything());
  }
}

TEST(ParseFilter, NotBindsTighterThanAndAndAndTighterThanOr) {
  EXPECT_EQ(Parsed("a = 1 OR b = 2 AND NOT c = 3"), "(OR a = 1 (AND b = 2 (NOT c = 3)))");
  EXPECT_EQ(Parsed("a = 1 AND b = 2 OR c = 3 AND d = 4"),
            "(OR (AND a = 1 b = 2) (AND c = 3 d = 4))");
  EXPECT_EQ(Parsed("NOT a = 1 AND b = 2"), "(AND (NOT a = 1) b = 2)");
  EXPECT_EQ(Parsed("NOT NOT a = 1"), "(NOT (NOT a = 1))");
}

TEST(ParseFilter, ParenthesesGroup) {
  EXPECT_EQ(Parsed("(a = 1 OR b = 2) AND c = 3"), "(AND (OR a = 1 b = 2) c = 3)");
  EXPECT_EQ(Parsed("NOT (a = 1 OR b = 2)"), "(NOT (OR a = 1 b = 2))");
  EXPECT_EQ(Parsed("((a = 1))"), "a = 1");
  EXPECT_EQ(Parsed("(a=1)AND(b=2)"), "(AND a = 1 b = 2)");
}

TEST(ParseFilter, KeywordsAreCaseInsensitiveWholeWords) {
  EXPECT_EQ(Parsed("a = 1 and b = 2 Or not c in (3)"), "(OR (AND a = 1 b = 2) (NOT c IN (3)))");
  // A field or value that only starts like a keyword is a name.
  EXPECT_EQ(Parsed("order = x AND android = y"), "(AND order = x android = y)");
  EXPECT_EQ(Parsed("notes = y"), "notes = y");
  // After an operator a keyword is a plain word.
  EXPECT_EQ(Parsed("lang = or"), "lang = or");
}

TEST(ParseFilter, EveryOperator) {
  EXPECT_EQ(Parsed("a=1"), "a = 1");
  EXPECT_EQ(Parsed("a!=1"), "a != 1");
  EXPECT_EQ(Parsed("a<1"), "a < 1");
  EXPECT_EQ(Parsed("a<=1"), "a <= 1");
  EXPECT_EQ(Parsed("a>1"), "a > 1");
  EXPECT_EQ(Parsed("a>=1"), "a >= 1");
  EXPECT_EQ(Parsed("labels.k:*"), "labels.k : *");
  EXPECT_EQ(Parsed("a IN (1, \"b\", c)"), "a IN (1, \"b\", c)");
  EXPECT_EQ(Parsed("a not in(1)"), "a NOT IN (1)");
  auto e = ParseFilter("a NOT IN (x,y)");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->op, FilterOp::kNotIn);
  EXPECT_EQ(e->values.size(), 2u);
}

TEST(ParseFilter, NumbersAreBareNumericWords) {
  for (const char* number : {"0", "-1", "10", "0.5", "-1.5e-3", "1e9", "2E+10"}) {
    auto e = ParseFilter(absl::StrCat("x = ", number));
    ASSERT_TRUE(e.ok()) << number;
    EXPECT_EQ(e->values[0].kind, FilterValue::Kind::kNumber) << number;
    EXPECT_EQ(e->values[0].text, number);
  }
  for (const char* word : {"1.", ".5", "1e", "0x10", "1-2", "--1", "1.2.3"}) {
    auto e = ParseFilter(absl::StrCat("x = ", word));
    ASSERT_TRUE(e.ok()) << word;
    EXPECT_EQ(e->values[0].kind, FilterValue::Kind::kWord) << word;
  }
  auto quoted = ParseFilter("x = \"10\"");
  ASSERT_TRUE(quoted.ok());
  EXPECT_EQ(quoted->values[0].kind, FilterValue::Kind::kString);
}

TEST(ParseFilter, QuotedTextAndEscapes) {
  auto e = ParseFilter(R"(a = "say \"hi\" \\ \n\t 'x'")");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->values[0].text, "say \"hi\" \\ \n\t 'x'");
  EXPECT_FALSE(e->values[0].prefix);
  e = ParseFilter(R"(a = 'it\'s "fine"')");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->values[0].text, "it's \"fine\"");
  // Parentheses, commas and keywords inside quotes are text.
  e = ParseFilter(R"(a = "(x, y) OR b = 1")");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->values[0].text, "(x, y) OR b = 1");
}

TEST(ParseFilter, TrailingStarIsAPrefixUnlessEscaped) {
  auto e = ParseFilter(R"(name = "bulk-*" OR name = "a\*" OR name = "a*b" OR name = bulk-*)");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->children.size(), 4u);
  EXPECT_EQ(e->children[0].values[0].text, "bulk-");
  EXPECT_TRUE(e->children[0].values[0].prefix);
  EXPECT_EQ(e->children[1].values[0].text, "a*");
  EXPECT_FALSE(e->children[1].values[0].prefix);
  EXPECT_EQ(e->children[2].values[0].text, "a*b");
  EXPECT_FALSE(e->children[2].values[0].prefix);
  EXPECT_EQ(e->children[3].values[0].text, "bulk-");
  EXPECT_TRUE(e->children[3].values[0].prefix);
  e = ParseFilter("labels.gpu:*");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->values[0].text, "");
  EXPECT_TRUE(e->values[0].prefix);
}

TEST(ParseFilter, TimesAndBareWords) {
  auto e = ParseFilter(
      R"(create_time >= 2026-01-01T00:00:00Z AND create_time < "2026-02-01T00:00:00+01:00" )"
      R"(AND image != x/y:1.2)");
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->children.size(), 3u);
  EXPECT_EQ(e->children[0].values[0].text, "2026-01-01T00:00:00Z");
  EXPECT_EQ(e->children[0].values[0].kind, FilterValue::Kind::kWord);
  EXPECT_EQ(e->children[1].values[0].text, "2026-02-01T00:00:00+01:00");
  EXPECT_EQ(e->children[2].values[0].text, "x/y:1.2");
}

TEST(ParseFilter, DottedAndBackquotedFields) {
  auto e = ParseFilter("metrics.accuracy > 0.9 and params.lr = \"0.01\" and tags.team = vision");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->children[0].field, (std::vector<std::string>{"metrics", "accuracy"}));
  EXPECT_EQ(e->children[1].field, (std::vector<std::string>{"params", "lr"}));
  e = ParseFilter("params.`my key.v2` = 'x' AND metrics.f1-score >= 0.5 AND metrics.1st > 0");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->children[0].field, (std::vector<std::string>{"params", "my key.v2"}));
  EXPECT_EQ(e->children[1].field, (std::vector<std::string>{"metrics", "f1-score"}));
  EXPECT_EQ(e->children[2].field, (std::vector<std::string>{"metrics", "1st"}));
  // A keyword as a name, backquoted.
  e = ParseFilter("`and` = 1");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->FieldName(), "and");
}

TEST(ParseFilter, ErrorsNameTheFilterAndPointAtThePosition) {
  struct Case {
    std::string filter;
    std::string message;
    std::string position;
  };
  const std::vector<Case> cases = {
      {"create_time >= ", "filter: expected a value after \">=\" at position 16", "16"},
      {"a = 1 OR", "filter: expected a field name at position 9", "9"},
      {"a = 1 AND (b = 2",
       "filter: expected AND, OR or \")\" at position 17; the \"(\" at position 11 is not closed",
       "17"},
      {"a = 1)", "filter: unbalanced \")\" at position 6", "6"},
      {"a = \"x", "filter: unterminated quoted text at position 5", "5"},
      {"a = \"\\q\"", "filter: unknown escape", "6"},
      {"a ~ 1", "filter: expected an operator (=, !=, <, <=, >, >=, :, IN) after \"a\"", "3"},
      {"name", "expected an operator", "5"},
      {"a IN 1", "filter: expected \"(\" after IN at position 6", "6"},
      {"a IN ()", "filter: expected a value after \"(\" at position 7", "7"},
      {"a IN (1 2)", "filter: expected \",\" or \")\" in the IN list at position 9", "9"},
      {"a IN (1,)", "filter: expected a value after \",\" at position 9", "9"},
      {"a NOT 1", "filter: expected IN after NOT at position 7", "7"},
      {"labels. = x", "filter: expected a name after \"labels.\" at position 8", "8"},
      {"AND = 1", "filter: expected a field name, found AND at position 1", "1"},
      {"a = 1 b = 2", "filter: expected AND, OR or the end of the filter at position 7", "7"},
      {"1 = 1", "filter: expected a field name at position 1", "1"},
      {"= x", "filter: expected a field name at position 1", "1"},
      {"a = (b)", "filter: expected a value after \"=\" at position 5", "5"},
      {"NOT", "filter: expected a field name at position 4", "4"},
      {"((", "filter: expected a field name at position 3", "3"},
      // Positions count characters, not bytes.
      {"a = \"\xC3\xA9\" OR", "filter: expected a field name at position 11", "11"},
      {"a = \x01", "filter: control character at position 5", "5"},
  };
  for (const auto& c : cases) {
    auto [message, position] = ErrorOf(c.filter);
    EXPECT_NE(message.find(c.message), std::string::npos) << c.filter << " → " << message;
    EXPECT_EQ(position, c.position) << c.filter << " → " << message;
  }
  EXPECT_NE(ErrorOf("a = \"\xFF\"").first.find("not valid UTF-8"), std::string::npos);
}

TEST(ParseFilter, BoundsLengthNodesAndDepth) {
  // Length: 4 KiB.
  std::string at_limit = "a = \"" + std::string(kMaxFilterBytes - 6, 'x') + "\"";
  ASSERT_EQ(at_limit.size(), kMaxFilterBytes);
  EXPECT_TRUE(ParseFilter(at_limit).ok());
  EXPECT_NE(ErrorOf(at_limit + " ").first.find("longer than 4096 bytes"), std::string::npos);

  // Nodes: comparisons, IN values and operators together; 50 terms joined by AND are 99.
  auto terms = [](int n) {
    std::string f = "a = 1";
    for (int i = 1; i < n; ++i) f += " AND a = 1";
    return f;
  };
  EXPECT_TRUE(ParseFilter(terms(50)).ok());
  EXPECT_NE(ErrorOf(terms(51)).first.find("more than 100 comparisons"), std::string::npos);
  std::string in = "a IN (1";
  for (int i = 1; i < 100; ++i) in += ", 1";
  EXPECT_TRUE(ParseFilter(in + ")").ok());
  EXPECT_NE(ErrorOf(in + ", 1)").first.find("more than 100"), std::string::npos);

  // Depth: nested parentheses and NOTs.
  auto nested = [](int depth, const std::string& open, const std::string& close) {
    std::string f;
    for (int i = 0; i < depth; ++i) f += open;
    f += "a = 1";
    for (int i = 0; i < depth; ++i) f += close;
    return f;
  };
  EXPECT_TRUE(ParseFilter(nested(kMaxFilterDepth, "(", ")")).ok());
  EXPECT_NE(ErrorOf(nested(kMaxFilterDepth + 1, "(", ")")).first.find("nested"), std::string::npos);
  EXPECT_TRUE(ParseFilter(nested(kMaxFilterDepth, "NOT ", "")).ok());
  EXPECT_NE(ErrorOf(nested(kMaxFilterDepth + 1, "NOT ", "")).first.find("nested"),
            std::string::npos);
  // A hostile filter stops at the limit instead of recursing through 4 KiB of parentheses.
  auto [message, position] = ErrorOf(std::string(4000, '('));
  EXPECT_NE(message.find("more than 32 nested"), std::string::npos) << message;
  EXPECT_EQ(position, "33");
}

TEST(ParseFilter, ErrorsQuoteAShortPrefixOfLongInput) {
  auto [message, position] = ErrorOf(std::string(3000, 'f') + " ~ 1");
  EXPECT_LT(message.size(), 200u) << message;
  EXPECT_EQ(position, "3002");
}

}  // namespace
}  // namespace submarine::api
