#include "common/compute/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "common/status/status.h"

namespace submarine::compute {
namespace {

int64_t Milli(const std::string& text) {
  auto q = ParseMilliQuantity(text);
  EXPECT_TRUE(q.ok()) << text << ": " << q.status();
  return q.ok() ? *q : -1;
}

int64_t Units(const std::string& text) {
  auto q = ParseQuantity(text);
  EXPECT_TRUE(q.ok()) << text << ": " << q.status();
  return q.ok() ? *q : -1;
}

TEST(Quantity, CpuInMillicores) {
  EXPECT_EQ(Milli("500m"), 500);
  EXPECT_EQ(Milli("1"), 1000);
  EXPECT_EQ(Milli("1.5"), 1500);
  EXPECT_EQ(Milli("0.5"), 500);
  EXPECT_EQ(Milli(".5"), 500);
  EXPECT_EQ(Milli("2."), 2000);
  EXPECT_EQ(Milli("+3"), 3000);
  EXPECT_EQ(Milli("0.1"), 100);  // 0.1 as a double times 1000 is 100.00000000000001
  EXPECT_EQ(Milli("0.3"), 300);
  EXPECT_EQ(Milli("1.005"), 1005);  // 1.005 * 1000 as doubles is 1004.9999999999999
  EXPECT_EQ(Milli("250000u"), 250);
  EXPECT_EQ(Milli("1k"), 1000000);
  EXPECT_EQ(Milli("0"), 0);
  EXPECT_EQ(Milli("0.000"), 0);
  EXPECT_EQ(Milli("007"), 7000);
}

TEST(Quantity, FractionsOfTheUnitRoundUpAsKubernetesDoes) {
  EXPECT_EQ(Milli("0.0001"), 1);
  EXPECT_EQ(Milli("1n"), 1);
  EXPECT_EQ(Milli("1500001n"), 2);
  EXPECT_EQ(Units("0.5"), 1);
  EXPECT_EQ(Units("1e-100"), 1);
  EXPECT_EQ(Units("1.5Ki"), 1536);
  EXPECT_EQ(Units("0.1Ki"), 103);  // 102.4 bytes
}

TEST(Quantity, MemoryInBytes) {
  EXPECT_EQ(Units("2Gi"), int64_t{2} << 30);
  EXPECT_EQ(Units("1Ki"), 1024);
  EXPECT_EQ(Units("3Mi"), 3 * 1024 * 1024);
  EXPECT_EQ(Units("1Ti"), int64_t{1} << 40);
  EXPECT_EQ(Units("1Pi"), int64_t{1} << 50);
  EXPECT_EQ(Units("7Ei"), int64_t{7} << 60);
  EXPECT_EQ(Units("1.5Gi"), int64_t{3} << 29);
  EXPECT_EQ(Units("512M"), 512000000);
  EXPECT_EQ(Units("1k"), 1000);
  EXPECT_EQ(Units("1G"), 1000000000);
  EXPECT_EQ(Units("1T"), 1000000000000);
  EXPECT_EQ(Units("1P"), 1000000000000000);
  EXPECT_EQ(Units("9E"), 9000000000000000000);
  EXPECT_EQ(Units("128974848"), 128974848);
}

TEST(Quantity, DecimalExponents) {
  EXPECT_EQ(Units("1e9"), 1000000000);
  EXPECT_EQ(Units("1E9"), 1000000000);
  EXPECT_EQ(Units("1.5E3"), 1500);
  EXPECT_EQ(Units("129e6"), 129000000);
  EXPECT_EQ(Units("1e+3"), 1000);
  EXPECT_EQ(Units("25e-1"), 3);
  EXPECT_EQ(Milli("25e-1"), 2500);
  EXPECT_EQ(Units("12345678901234567890e-10"), 1234567891);
  // "E" alone is exa; followed by digits it is an exponent.
  EXPECT_EQ(Units("1E"), 1000000000000000000);
}

TEST(Quantity, LimitsOfInt64) {
  EXPECT_EQ(Units("9223372036854775807"), std::numeric_limits<int64_t>::max());
  EXPECT_FALSE(ParseQuantity("9223372036854775808").ok());
  EXPECT_EQ(Units("7.99999999999999999Ei"), 9223372036854775797);  // ceil(2^63 - 11.5)
  EXPECT_FALSE(ParseQuantity("8Ei").ok());
  EXPECT_FALSE(ParseQuantity("1e19").ok());
  EXPECT_FALSE(ParseQuantity("1e9999").ok());
  EXPECT_FALSE(ParseMilliQuantity("9223372036854776").ok());             // 9.2e18 millis and more
  EXPECT_EQ(Units("100000000000000000000000e-5"), 1000000000000000000);  // 23 digits, 1 significant
}

TEST(Quantity, RefusesWhatIsNotAQuantity) {
  for (const char* bad : {"",      "-1",      "-0.5",  "abc", "1Gb",
                          "1gi",   "1 Gi",    " 1",    "1e",  "1e+",
                          "1e1.5", "1e12345", "1.2.3", ".",   "+",
                          "Gi",    "1KiB",    "0x10",  "1,5", "1.23456789012345678901",
                          "1Mi1",  "5m5"}) {
    auto q = ParseQuantity(bad);
    EXPECT_FALSE(q.ok()) << "accepted \"" << bad << "\" as " << *q;
    EXPECT_EQ(q.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  auto q = ParseQuantity("12Gb");
  EXPECT_NE(std::string(q.status().message()).find("\"12Gb\""), std::string::npos) << q.status();
  // Long input is quoted by its prefix only.
  auto long_one = ParseQuantity(std::string(200, '7'));
  EXPECT_LT(long_one.status().message().size(), 150u);
}

TEST(Resources, ParsesEveryKey) {
  auto r = ParseResources("cpu=1,memory=2Gi,nvidia.com/gpu=1", "role.resources");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (Resources{.cpu_millis = 1000, .memory_bytes = int64_t{2} << 30, .gpus = 1}));
  r = ParseResources(" cpu = 500m , gpu=2 ", "f");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, (Resources{.cpu_millis = 500, .memory_bytes = 0, .gpus = 2}));
  r = ParseResources("memory=1e9", "f");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->memory_bytes, 1000000000);
  r = ParseResources("", "f");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, Resources{});
}

void ExpectRefused(const std::string& text, const std::string& mentions) {
  auto r = ParseResources(text, "experiment.spec.worker.resources");
  ASSERT_FALSE(r.ok()) << text;
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string message = Message(r.status());
  EXPECT_EQ(message.rfind("experiment.spec.worker.resources: ", 0), 0u) << message;
  EXPECT_NE(message.find(mentions), std::string::npos) << message;
  google::rpc::ErrorInfo info;
  ASSERT_TRUE(GetErrorInfo(r.status(), &info));
  EXPECT_EQ(info.metadata().at("field"), "experiment.spec.worker.resources");
}

TEST(Resources, ErrorsNameTheFieldAndTheKey) {
  ExpectRefused("cpu=1,disk=10Gi", "disk");
  ExpectRefused("cpu=1,cpu=2", "cpu: given twice");
  ExpectRefused("gpu=1,nvidia.com/gpu=1", "nvidia.com/gpu: given twice");
  ExpectRefused("memory=2GB", "memory: ");
  ExpectRefused("memory=-1Gi", "memory: ");
  ExpectRefused("cpu=", "cpu: ");
  ExpectRefused("gpu=0.5", "gpu: ");
  ExpectRefused("cpu=1,", "is not key=quantity");
  ExpectRefused("cpu", "is not key=quantity");
}

TEST(Resources, FormatReadsBack) {
  EXPECT_EQ(FormatResources({}), "");
  EXPECT_EQ(FormatResources({.cpu_millis = 500, .memory_bytes = int64_t{2} << 30, .gpus = 1}),
            "cpu=500m,memory=2Gi,nvidia.com/gpu=1");
  EXPECT_EQ(FormatResources({.cpu_millis = 2000}), "cpu=2");
  EXPECT_EQ(FormatResources({.memory_bytes = 512000000}), "memory=512M");
  EXPECT_EQ(FormatResources({.memory_bytes = 1536}), "memory=1536");
  EXPECT_EQ(FormatResources({.memory_bytes = 1001}), "memory=1001");
  EXPECT_EQ(FormatResources({.memory_bytes = 1024000}), "memory=1000Ki");
  EXPECT_EQ(FormatResources({.memory_bytes = 1000000}), "memory=1M");
  for (Resources r : {Resources{.cpu_millis = 1, .memory_bytes = 1, .gpus = 8},
                      Resources{.cpu_millis = 123456, .memory_bytes = 3 * 1000 * 1024},
                      Resources{.memory_bytes = std::numeric_limits<int64_t>::max()},
                      Resources{.memory_bytes = int64_t{7} << 60}}) {
    auto back = ParseResources(FormatResources(r), "f");
    ASSERT_TRUE(back.ok()) << FormatResources(r) << ": " << back.status();
    EXPECT_EQ(*back, r) << FormatResources(r);
  }
}

}  // namespace
}  // namespace submarine::compute
