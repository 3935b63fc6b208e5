#include "gateway/core/channel_policy.hpp"

#include <gtest/gtest.h>

namespace enclave::gateway {
namespace {

TEST(ChannelPolicy, DisplayOnlyAllowsDrdynvcAndTheGraphicsChannelsOnly) {
  const ChannelPolicy p = ChannelPolicy::display_only();
  EXPECT_TRUE(p.allows_static("drdynvc"));
  for (const char* name : {"cliprdr", "rdpdr", "rdpsnd", "rail", "encomsp", "remdesk", ""}) {
    EXPECT_FALSE(p.allows_static(name)) << name;
  }
  EXPECT_TRUE(p.allows_dynamic("Microsoft::Windows::RDS::Graphics"));
  EXPECT_TRUE(p.allows_dynamic("Microsoft::Windows::RDS::DisplayControl"));
  for (const char* name : {"URBDRC", "AUDIO_INPUT", "RDCamera_Device_Enumerator",
                           "FileRedirectorChannel", "Microsoft::Windows::RDS::Input", ""}) {
    EXPECT_FALSE(p.allows_dynamic(name)) << name;
  }
}

TEST(ChannelPolicy, StaticNamesCompareCaseInsensitively) {
  ChannelPolicy p;
  p.static_allowed = {"rdpsnd", "DrDynVc"};
  EXPECT_TRUE(p.allows_static("RDPSND"));
  EXPECT_TRUE(p.allows_static("rdpSnd"));
  EXPECT_TRUE(p.allows_static("drdynvc"));
  EXPECT_TRUE(p.allows_static("DRDYNVC"));
  EXPECT_FALSE(p.allows_static("rdpsnd "));
  EXPECT_FALSE(p.allows_static("rdpsn"));
  EXPECT_FALSE(p.allows_static(std::string_view("rdpsnd\0x", 8)));
}

TEST(ChannelPolicy, DynamicNamesCompareExactly) {
  ChannelPolicy p;
  p.dynamic_allowed = {"Microsoft::Windows::RDS::Graphics"};
  EXPECT_TRUE(p.allows_dynamic("Microsoft::Windows::RDS::Graphics"));
  EXPECT_FALSE(p.allows_dynamic("microsoft::windows::rds::graphics"));
  EXPECT_FALSE(p.allows_dynamic("Microsoft::Windows::RDS::Graphics "));
  EXPECT_FALSE(p.allows_dynamic("Microsoft::Windows::RDS::Graphic"));
}

TEST(ChannelPolicy, EmptyPolicyDeniesEverything) {
  const ChannelPolicy p;
  EXPECT_FALSE(p.allows_static("drdynvc"));
  EXPECT_FALSE(p.allows_dynamic("Microsoft::Windows::RDS::Graphics"));
}

}  // namespace
}  // namespace enclave::gateway
