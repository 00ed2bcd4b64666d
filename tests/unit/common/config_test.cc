#include "common/config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>

#include "common/status/status.h"
#include "submarine/config/v1/config.pb.h"

namespace submarine::config {
namespace {

TEST(Config, ParsesYamlIntoTypedMessage) {
  v1::EnvironmentServiceConfig c;
  auto st = ParseConfigText(R"(
common:
  server:
    grpc_listen: 127.0.0.1:0
    shutdown_grace_ms: 2500
  database:
    host: /tmp/x
    port: 5432
    schema: environment
seed_builtin: false
)",
                            &c);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(c.common().server().grpc_listen(), "127.0.0.1:0");
  EXPECT_EQ(c.common().server().shutdown_grace_ms(), 2500u);
  EXPECT_EQ(c.common().database().port(), 5432u);
  EXPECT_TRUE(c.has_seed_builtin());
  EXPECT_FALSE(c.seed_builtin());
}

TEST(Config, RejectsUnknownKeysNamingThem) {
  v1::EnvironmentServiceConfig c;
  auto st = ParseConfigText("common:\n  server:\n    grpc_listn: 127.0.0.1:1\n", &c);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(Message(st).find("grpc_listn"), std::string::npos) << st;
}

TEST(Config, SubstitutesEnvironmentWithDefaults) {
  ::setenv("SUBMARINE_TEST_PORT", "7001", 1);
  auto s = SubstituteEnv("a: ${SUBMARINE_TEST_PORT}\nb: ${SUBMARINE_TEST_UNSET:-x}\n");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, "a: 7001\nb: x\n");
  EXPECT_FALSE(SubstituteEnv("${SUBMARINE_TEST_UNSET}").ok());
  EXPECT_FALSE(SubstituteEnv("${UNTERMINATED").ok());
}

TEST(YamlToJson, ReadsPlainDataOnly) {
  auto j = YamlToJson("name: x\ncount: 3\nflag: true\nquoted: \"3\"\nlist: [a, 1]\nnone: ~\n");
  ASSERT_TRUE(j.ok());
  auto parsed = nlohmann::json::parse(*j);
  EXPECT_EQ(parsed["name"], "x");
  EXPECT_EQ(parsed["count"], 3);
  EXPECT_EQ(parsed["flag"], true);
  EXPECT_EQ(parsed["quoted"], "3");
  EXPECT_EQ(parsed["list"][1], 1);
  EXPECT_TRUE(parsed["none"].is_null());
  // Language-specific tags are not types: the value stays plain data.
  auto tagged = YamlToJson("x: !!python/object:os.system echo\n");
  ASSERT_TRUE(tagged.ok());
  EXPECT_EQ(nlohmann::json::parse(*tagged)["x"], "echo");
  EXPECT_FALSE(YamlToJson("a: [unclosed").ok());
}

TEST(YamlToJson, HostileDocumentsAreRefusedNotFatal) {
  // Out-of-range numbers stay text instead of throwing.
  auto big = YamlToJson("x: 1.0e999\ny: 99999999999999999999999\n");
  ASSERT_TRUE(big.ok()) << big.status();
  auto parsed = nlohmann::json::parse(*big);
  EXPECT_EQ(parsed["x"], "1.0e999");
  EXPECT_EQ(parsed["y"], "99999999999999999999999");
  // A very long plain scalar is just a string.
  auto longs = YamlToJson("x: " + std::string(200000, '7') + "\n");
  ASSERT_TRUE(longs.ok());
  // An alias bomb (each level doubles ten times) is refused, not expanded.
  std::string bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) bomb += (k ? ", " : "") + prev;
    bomb += "]\n";
  }
  auto refused = YamlToJson(bomb);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  // Deep nesting is refused.
  auto deep = YamlToJson(std::string(100, '[') + std::string(100, ']'));
  EXPECT_FALSE(deep.ok());
}

}  // namespace
}  // namespace submarine::config
