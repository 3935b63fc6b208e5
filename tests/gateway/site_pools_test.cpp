// The gateway's table of approved site pools and revoked devices (what login connections are
// admitted against, before any TLS work).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "gateway/service/site_pools.hpp"

namespace enclave::gateway {
namespace {

using boost::asio::ip::make_address;
using ::testing::HasSubstr;

nlohmann::json reply() {
  return {{"version", 7},
          {"sites",
           {{{"site", "tokyo-1"},
             {"ike_identity", "tokyo-1.sites.enclave"},
             {"pools", {"10.8.0.0/24", "2001:db8:5::/64"}}},
            {{"site", "sendai-2"},
             {"ike_identity", "sendai-2.sites.enclave"},
             {"pools", {"10.9.4.0/22"}}}}},
          {"revoked_certificates", {"AB01"}}};
}

TEST(SitePools, NothingIsAdmittedBeforeTheFirstTable) {
  SitePools pools;
  EXPECT_FALSE(pools.loaded());
  EXPECT_FALSE(pools.site_for(make_address("10.8.0.5")));
  EXPECT_EQ(pools.version(), -1);
}

TEST(SitePools, AddressesFindTheirSite) {
  SitePools pools;
  ASSERT_TRUE(pools.update(reply()));
  EXPECT_EQ(pools.version(), 7);
  EXPECT_EQ(pools.site_for(make_address("10.8.0.5"))->site, "tokyo-1");
  EXPECT_EQ(pools.site_for(make_address("10.8.0.255"))->ike_identity, "tokyo-1.sites.enclave");
  EXPECT_FALSE(pools.site_for(make_address("10.8.1.0")));
  EXPECT_EQ(pools.site_for(make_address("10.9.7.255"))->site, "sendai-2");  // a /22
  EXPECT_FALSE(pools.site_for(make_address("10.9.8.0")));
  EXPECT_EQ(pools.site_for(make_address("2001:db8:5::42"))->site, "tokyo-1");
  EXPECT_FALSE(pools.site_for(make_address("2001:db8:6::42")));
  // An IPv4 client on a dual-stack socket.
  EXPECT_EQ(pools.site_for(make_address("::ffff:10.8.0.5"))->site, "tokyo-1");
  EXPECT_FALSE(pools.site_for(make_address("192.0.2.1")));
}

TEST(SitePools, RevokedCertificatesAreKnownWhateverTheirCase) {
  SitePools pools;
  ASSERT_TRUE(pools.update(reply()));
  EXPECT_TRUE(pools.revoked("ab01"));
  EXPECT_FALSE(pools.revoked("ab02"));
}

TEST(SitePools, AMalformedTableChangesNothing) {
  SitePools pools;
  ASSERT_TRUE(pools.update(reply()));
  auto bad = reply();
  bad["sites"][0]["pools"][0] = "10.8.0.1/24";  // host bits set: a typo, not the /24
  auto r = pools.update(bad);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("site tokyo-1"));
  EXPECT_THAT(r.error().message, HasSubstr("10.8.0.1/24"));
  EXPECT_FALSE(pools.update({{"sites", nlohmann::json::array()}}));  // no version
  EXPECT_EQ(pools.version(), 7);
  EXPECT_TRUE(pools.site_for(make_address("10.8.0.5")));
  // A table without sites admits nobody.
  ASSERT_TRUE(pools.update({{"version", 8}, {"sites", nlohmann::json::array()}}));
  EXPECT_FALSE(pools.site_for(make_address("10.8.0.5")));
}

}  // namespace
}  // namespace enclave::gateway
