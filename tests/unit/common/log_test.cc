#include "common/log/log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace submarine::log {
namespace {

std::vector<std::string> LinesOf(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string TempLog(const char* name) {
  return std::string(::testing::TempDir()) + "/" + name + "-" + std::to_string(::getpid()) + ".log";
}

// A value a caller sent (a label key, an update mask) may hold newlines, NULs and bytes that are
// not UTF-8; logged, it must stay on its one line and forge nothing.
const std::string kHostile = std::string("key\n2026-01-01T00:00:00Z I fake [access] [-] admin ok") +
                             std::string(1, '\0') + "x\r\x1b[31m\xC0\x80";

TEST(Log, TextLinesEscapeControlCharactersAndRepairUtf8) {
  std::string path = TempLog("text");
  config::v1::LogConfig config;
  config.set_file(path);
  config.set_format("text");
  Init(config, "logtest");
  Get("test")->info("label {}", kHostile);
  Get("test")->info("second");
  spdlog::shutdown();
  auto lines = LinesOf(path);
  ASSERT_EQ(lines.size(), 2u) << "a logged value forged a line";
  EXPECT_NE(lines[0].find("key\\n2026-01-01"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find("\\x00x\\r\\x1B[31m\xEF\xBF\xBD\xEF\xBF\xBD"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("second"), std::string::npos);
}

TEST(Log, JsonLinesStayValidJson) {
  std::string path = TempLog("json");
  config::v1::LogConfig config;
  config.set_file(path);
  config.set_format("json");
  Init(config, "logtest");
  Get("test")->warn("label {}", kHostile);
  spdlog::shutdown();
  auto lines = LinesOf(path);
  ASSERT_EQ(lines.size(), 1u);
  auto parsed = nlohmann::json::parse(lines[0]);  // throws on invalid JSON or UTF-8
  EXPECT_EQ(parsed.at("level"), "warning");
  EXPECT_NE(parsed.at("msg").get<std::string>().find("key\n2026"), std::string::npos);
}

}  // namespace
}  // namespace submarine::log
