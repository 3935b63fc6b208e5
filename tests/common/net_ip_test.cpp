// IPv4 and IPv6 addresses and CIDR networks (common/net): parsing, the canonical text, the
// IPv4-mapped folding, containment and overlap, and every kind of bad input as a typed error.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "common/net/ip.hpp"

namespace enclave::net {
namespace {

IpAddress ip(std::string_view text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text << ": " << (a ? "" : a.error().describe());
  return a ? *a : IpAddress{};
}

IpNetwork net(std::string_view text) {
  auto n = IpNetwork::parse(text);
  EXPECT_TRUE(n) << text << ": " << (n ? "" : n.error().describe());
  return n ? *n : IpNetwork{};
}

IpError::Kind error_kind(std::string_view text) {
  auto n = IpNetwork::parse(text);
  EXPECT_FALSE(n) << text << " parsed as " << (n ? n->text() : "");
  return n ? IpError::Kind::kNotAnAddress : n.error().kind;
}

TEST(IpAddresses, CanonicalAndV4Mapped) {
  EXPECT_EQ(ip("192.0.2.7").text(), "192.0.2.7");
  EXPECT_EQ(ip("2001:DB8:0:0::1").text(), "2001:db8::1");
  EXPECT_EQ(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
  EXPECT_TRUE(ip("::ffff:192.0.2.7").is_v4());
  EXPECT_FALSE(IpAddress::parse("192.0.2.256"));
  EXPECT_FALSE(IpAddress::parse("192.0.2.7/32"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_FALSE(IpAddress::parse("host.example"));
}

TEST(IpNetworks, ParseAndContainIpv4) {
  const IpNetwork pool = net("10.8.0.0/24");
  EXPECT_EQ(pool.text(), "10.8.0.0/24");
  EXPECT_TRUE(pool.contains(ip("10.8.0.0")));
  EXPECT_TRUE(pool.contains(ip("10.8.0.255")));
  EXPECT_TRUE(pool.contains(ip("::ffff:10.8.0.9")));
  EXPECT_FALSE(pool.contains(ip("10.8.1.0")));
  EXPECT_FALSE(pool.contains(ip("10.7.255.255")));
  EXPECT_FALSE(pool.contains(ip("::a08:9"))) << "no match across families";
  // Prefixes that do not fall on a byte boundary.
  const IpNetwork odd = net("10.8.0.64/27");
  EXPECT_TRUE(odd.contains(ip("10.8.0.95")));
  EXPECT_FALSE(odd.contains(ip("10.8.0.96")));
  EXPECT_FALSE(odd.contains(ip("10.8.0.63")));
  // The extremes: one host, and everything.
  EXPECT_TRUE(net("192.0.2.7/32").contains(ip("192.0.2.7")));
  EXPECT_FALSE(net("192.0.2.7/32").contains(ip("192.0.2.6")));
  EXPECT_TRUE(net("0.0.0.0/0").contains(ip("203.0.113.1")));
}

TEST(IpNetworks, ParseAndContainIpv6) {
  const IpNetwork pool = net("2001:DB8:5::/64");
  EXPECT_EQ(pool.text(), "2001:db8:5::/64");
  EXPECT_TRUE(pool.contains(ip("2001:db8:5::1")));
  EXPECT_TRUE(pool.contains(ip("2001:db8:5:0:ffff:ffff:ffff:ffff")));
  EXPECT_FALSE(pool.contains(ip("2001:db8:5:1::")));
  EXPECT_FALSE(pool.contains(ip("10.8.0.1")));
  EXPECT_TRUE(net("2001:db8::1/128").contains(ip("2001:db8::1")));
  EXPECT_FALSE(net("2001:db8::1/128").contains(ip("2001:db8::2")));
  EXPECT_TRUE(net("2001:db8::/33").contains(ip("2001:db8:7fff::1")));
  EXPECT_FALSE(net("2001:db8::/33").contains(ip("2001:db8:8000::1")));
  EXPECT_TRUE(net("::/0").contains(ip("2001:db8::1")));
}

TEST(IpNetworks, BadInputIsATypedErrorNamingTheText) {
  using K = IpError::Kind;
  EXPECT_EQ(error_kind("10.8.0.0"), K::kNoPrefix);
  EXPECT_EQ(error_kind(""), K::kNoPrefix);
  EXPECT_EQ(error_kind("/24"), K::kBadAddress);
  EXPECT_EQ(error_kind("10.8.0/24"), K::kBadAddress);
  EXPECT_EQ(error_kind("10.8.0.0.0/24"), K::kBadAddress);
  EXPECT_EQ(error_kind("example.com/24"), K::kBadAddress);
  EXPECT_EQ(error_kind("::ffff:10.8.0.0/120"), K::kBadAddress);
  EXPECT_EQ(error_kind("10.8.0.0/33"), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.0/"), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.0/024"), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.0/+24"), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.0/-1"), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.0/24 "), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.0/24/8"), K::kBadPrefix);
  EXPECT_EQ(error_kind("2001:db8::/129"), K::kBadPrefix);
  EXPECT_EQ(error_kind("10.8.0.1/24"), K::kHostBitsSet);
  EXPECT_EQ(error_kind("10.8.0.128/24"), K::kHostBitsSet);
  EXPECT_EQ(error_kind("10.8.0.65/26"), K::kHostBitsSet);
  EXPECT_EQ(error_kind("2001:db8::1/64"), K::kHostBitsSet);
  EXPECT_EQ(error_kind("0.0.0.1/0"), K::kHostBitsSet);
  auto bad = IpNetwork::parse("10.8.0.1/24");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().describe(),
            "\"10.8.0.1/24\": bits beyond the prefix are set (write the network's first "
            "address)");
  auto long_text = IpNetwork::parse(std::string(300, '1'));
  ASSERT_FALSE(long_text);
  EXPECT_EQ(long_text.error().text.size(), 64u) << "an error quotes at most 64 bytes";
}

TEST(IpNetworks, Overlaps) {
  EXPECT_TRUE(net("10.8.0.0/24").overlaps(net("10.8.0.128/25")));
  EXPECT_TRUE(net("10.8.0.128/25").overlaps(net("10.8.0.0/16")));
  EXPECT_FALSE(net("10.8.0.0/25").overlaps(net("10.8.0.128/25")));
  EXPECT_FALSE(net("10.8.0.0/24").overlaps(net("2001:db8::/32")));
  EXPECT_TRUE(net("2001:db8::/32").overlaps(net("2001:db8:5::/64")));
}

TEST(IpAddresses, RefusesWhatIsNotExactlyAnAddress) {
  // inet_pton reads a C string: text after a NUL must not be ignored.
  for (std::string_view bad :
       {std::string_view("192.0.2.7\0junk", 14), std::string_view("192.0.2.7 "),
        std::string_view(" 192.0.2.7"), std::string_view("fe80::1%eth0"),
        std::string_view("192.0.2"), std::string_view("192.0.2.07"),
        std::string_view("1111:2222:3333:4444:5555:6666:7777:8888:9999"),
        std::string_view("0000:0000:0000:0000:0000:ffff:255.255.255.2555")}) {
    auto a = IpAddress::parse(bad);
    ASSERT_FALSE(a) << bad;
    EXPECT_EQ(a.error().kind, IpError::Kind::kNotAnAddress);
  }
  // The longest spelling there is still parses.
  EXPECT_EQ(ip("0000:0000:0000:0000:0000:ffff:255.255.255.255").text(), "255.255.255.255");
  auto bad = IpAddress::parse("10.0.0.300");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().describe(), "\"10.0.0.300\" is not an IP address");
}

TEST(IpAddresses, ErrorsShowNoControlCharacters) {
  auto bad = IpAddress::parse("10.0.0.1\nforged log line");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().text, "10.0.0.1?forged log line");
  auto nul = IpNetwork::parse(std::string_view("10.8.0.0\0/24", 12));
  ASSERT_FALSE(nul);
  EXPECT_EQ(nul.error().kind, IpError::Kind::kBadAddress);
  EXPECT_EQ(nul.error().text, "10.8.0.0?/24");
}

TEST(IpAddresses, FromSocketBytes) {
  EXPECT_EQ(IpAddress::from_v4_bytes({192, 0, 2, 7}), ip("192.0.2.7"));
  const IpAddress mapped =
      IpAddress::from_v6_bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7});
  EXPECT_TRUE(mapped.is_v4()) << "a dual-stack socket's IPv4 client";
  EXPECT_EQ(mapped, ip("192.0.2.7"));
  const IpAddress v6 =
      IpAddress::from_v6_bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  EXPECT_EQ(v6.family(), IpAddress::Family::kV6);
  EXPECT_EQ(v6, ip("2001:db8::1"));
  EXPECT_EQ(v6.bytes().size(), 16u);
  EXPECT_EQ(mapped.bytes().size(), 4u);
  // IPv4-compatible (::a.b.c.d, deprecated) is not IPv4-mapped: it stays IPv6.
  EXPECT_FALSE(ip("::192.0.2.7").is_v4());
  EXPECT_NE(ip("::192.0.2.7"), ip("192.0.2.7"));
}

TEST(IpAddresses, OrderIpv4FirstThenByBytes) {
  std::vector<IpAddress> sorted = {ip("2001:db8::1"), ip("10.0.0.2"), ip("::"), ip("10.0.0.10"),
                                   ip("::ffff:9.255.255.255")};
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::string> texts;
  for (const auto& a : sorted) texts.push_back(a.text());
  EXPECT_EQ(texts, (std::vector<std::string>{"9.255.255.255", "10.0.0.2", "10.0.0.10",
                                             "::", "2001:db8::1"}));
  EXPECT_TRUE(ip("10.0.0.1") < ip("10.0.0.2"));
  EXPECT_TRUE(ip("2001:db8::1") == ip("2001:DB8:0::1"));
}

}  // namespace
}  // namespace enclave::net
