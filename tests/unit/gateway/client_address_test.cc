// Unit tests (no network) of CIDR blocks (common/net/cidr.h) and of who a request is accounted to
// by the gateway's per-client limits (gateway/client_address.h).

#include "gateway/client_address.h"

#include <gtest/gtest.h>

#include "common/net/cidr.h"

namespace submarine::gateway {
namespace {

using net::CidrBlock;
using net::IpAddress;

IpAddress Ip(const std::string& text) {
  auto ip = IpAddress::Parse(text);
  EXPECT_TRUE(ip.has_value()) << text;
  return ip.value_or(IpAddress());
}

std::vector<CidrBlock> Blocks(const std::vector<std::string>& texts) {
  std::vector<CidrBlock> blocks;
  for (const auto& t : texts) {
    auto b = CidrBlock::Parse(t);
    EXPECT_TRUE(b.ok()) << t << ": " << b.status();
    if (b.ok()) blocks.push_back(*b);
  }
  return blocks;
}

TEST(IpAddressTest, ParsesBothFamiliesAndPrintsThemCanonically) {
  EXPECT_EQ(Ip("10.1.2.3").ToString(), "10.1.2.3");
  EXPECT_TRUE(Ip("10.1.2.3").is_v4());
  EXPECT_EQ(Ip("2001:0db8:0000::0007").ToString(), "2001:db8::7");
  EXPECT_FALSE(Ip("::1").is_v4());
  // An IPv4-mapped IPv6 address is the IPv4 address.
  EXPECT_EQ(Ip("::ffff:10.1.2.3"), Ip("10.1.2.3"));
  EXPECT_EQ(Ip("::ffff:10.1.2.3").ToString(), "10.1.2.3");
  for (const char* bad : {"", "10.1.2", "10.1.2.256", "1.2.3.4:80", "[::1]", "fe80::1%eth0",
                          "localhost", " 10.1.2.3", "10.1.2.3/8"}) {
    EXPECT_FALSE(IpAddress::Parse(bad).has_value()) << bad;
  }
}

TEST(CidrBlockTest, ContainsExactlyItsAddresses) {
  auto blocks = Blocks({"10.0.0.0/8", "192.168.1.0/24", "127.0.0.1/32", "172.16.0.0/12"});
  auto in = [&](const std::string& ip) { return net::AnyContains(blocks, Ip(ip)); };
  EXPECT_TRUE(in("10.255.1.2"));
  EXPECT_TRUE(in("192.168.1.77"));
  EXPECT_FALSE(in("192.168.2.1"));
  EXPECT_TRUE(in("127.0.0.1"));
  EXPECT_FALSE(in("127.0.0.2"));
  EXPECT_TRUE(in("172.31.255.255"));
  EXPECT_FALSE(in("172.32.0.0"));
  EXPECT_FALSE(in("11.0.0.1"));
  EXPECT_TRUE(in("::ffff:10.9.9.9"));
  EXPECT_FALSE(in("::1"));

  auto v6 = Blocks({"fd00::/8", "2001:db8::/32"});
  EXPECT_TRUE(net::AnyContains(v6, Ip("fd12:3456::1")));
  EXPECT_TRUE(net::AnyContains(v6, Ip("2001:db8:ffff::1")));
  EXPECT_FALSE(net::AnyContains(v6, Ip("2001:db9::1")));
  EXPECT_FALSE(net::AnyContains(v6, Ip("10.0.0.1")));  // an IPv6 block holds no IPv4 address

  EXPECT_TRUE(net::AnyContains(Blocks({"0.0.0.0/0"}), Ip("203.0.113.9")));
  EXPECT_FALSE(net::AnyContains(Blocks({"0.0.0.0/0"}), Ip("2001:db8::1")));
  EXPECT_TRUE(net::AnyContains(Blocks({"::/0"}), Ip("2001:db8::1")));
  EXPECT_TRUE(net::AnyContains(Blocks({"10.1.2.3"}), Ip("10.1.2.3")));
  EXPECT_FALSE(net::AnyContains(Blocks({"10.1.2.3"}), Ip("10.1.2.4")));
  EXPECT_EQ(Blocks({"10.0.0.0/8"})[0].ToString(), "10.0.0.0/8");
  EXPECT_EQ(Blocks({"fd00::/8"})[0].ToString(), "fd00::/8");
}

TEST(CidrBlockTest, RefusesWhatIsNotABlockQuotingIt) {
  for (const char* bad :
       {"", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/8 ",
        "10.0.0.1/8", "fd00::1/8", "ten/8", "10.0.0.0/0008"}) {
    auto b = CidrBlock::Parse(bad);
    EXPECT_FALSE(b.ok()) << bad;
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_NE(CidrBlock::Parse("10.0.0.1/8").status().message().find("10.0.0.1/8"),
            absl::string_view::npos);
}

TEST(ClientAddressTest, AnUntrustedPeerIsTheClientWhateverItForwards) {
  auto trusted = Blocks({"10.0.0.0/8"});
  EXPECT_EQ(ClientAddress(Ip("203.0.113.5"), "198.51.100.1", trusted), "203.0.113.5");
  EXPECT_EQ(ClientAddress(Ip("203.0.113.5"), "", {}), "203.0.113.5");
  EXPECT_EQ(ClientAddress(Ip("::ffff:203.0.113.5"), "", {}), "203.0.113.5");
}

TEST(ClientAddressTest, ATrustedProxysClientIsTheRightMostUntrustedAddress) {
  auto trusted = Blocks({"10.0.0.0/8", "127.0.0.1/32"});
  const IpAddress proxy = Ip("10.0.0.9");
  struct Case {
    std::string forwarded_for;
    std::string client;
  };
  for (const auto& c : std::vector<Case>{
           {"198.51.100.7", "198.51.100.7"},
           {"1.1.1.1, 198.51.100.7", "198.51.100.7"},   // the left is the client's own claim
           {"198.51.100.7, 10.2.2.2", "198.51.100.7"},  // trusted hops are skipped
           {"198.51.100.7,10.2.2.2,127.0.0.1", "198.51.100.7"},
           {" 198.51.100.7 ,\t10.2.2.2 ", "198.51.100.7"},
           {"198.51.100.7:4711", "198.51.100.7"},
           {"[2001:db8::7]:443, 10.1.1.1", "2001:db8::7"},
           {"2001:db8::7", "2001:db8::7"},
           {"10.3.3.3, 10.2.2.2", "10.3.3.3"},  // all trusted: the left-most
           {"", "10.0.0.9"},                    // none: the proxy itself
           {",,", "10.0.0.9"},
           {"unknown, 10.2.2.2", "unknown"},  // not an address: as written
       }) {
    EXPECT_EQ(ClientAddress(proxy, c.forwarded_for, trusted), c.client) << c.forwarded_for;
  }
  std::string junk(500, 'x');
  EXPECT_LE(ClientAddress(proxy, junk, trusted).size(), 67u);  // 64 bytes and "..."
}

}  // namespace
}  // namespace submarine::gateway
