#include "gateway/core/client_info.hpp"

#include <gtest/gtest.h>

#include <string>

namespace enclave::gateway {
namespace {

using Kind = PduError::Kind;

void u16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void u32(Bytes& b, std::uint32_t v) {
  u16(b, static_cast<std::uint16_t>(v));
  u16(b, static_cast<std::uint16_t>(v >> 16));
}
// ASCII to UTF-16LE with the 2-byte terminator.
void wstr(Bytes& b, std::string_view s) {
  for (char c : s) u16(b, static_cast<std::uint8_t>(c));
  u16(b, 0);
}

constexpr std::uint32_t kFreeRdpFlags = 0x00000001 | 0x00000002 | 0x00000010 | 0x00000020 |
                                        0x00000100 | 0x00010000;  // as xfreerdp sends them

// A Client Info PDU's user data written field by field from MS-RDPBCGR 2.2.1.11.1.1.
Bytes sample(std::uint16_t sec_flags = kSecInfoPkt, std::uint32_t flags = kFreeRdpFlags) {
  Bytes b;
  u16(b, sec_flags);
  u16(b, 0);           // flagsHi
  u32(b, 0x00000409);  // CodePage
  u32(b, flags);
  u16(b, 2 * 4);  // cbDomain "CORP"
  u16(b, 2 * 7);  // cbUserName "analyst"
  u16(b, 2 * 6);  // cbPassword "typed!"
  u16(b, 0);      // cbAlternateShell
  u16(b, 2 * 5);  // cbWorkingDir "C:\\tm"
  wstr(b, "CORP");
  wstr(b, "analyst");
  wstr(b, "typed!");
  wstr(b, "");
  wstr(b, "C:\\tm");
  // TS_EXTENDED_INFO_PACKET start: clientAddressFamily AF_INET, cbClientAddress 2, "\0\0".
  u16(b, 0x0002);
  u16(b, 2);
  u16(b, 0);
  return b;
}

TEST(ClientInfo, DecodesEveryField) {
  auto info = decode_client_info(sample());
  ASSERT_TRUE(info.has_value()) << info.error().describe();
  EXPECT_EQ(info->security_flags, kSecInfoPkt);
  EXPECT_EQ(info->code_page, 0x409u);
  EXPECT_EQ(info->flags, kFreeRdpFlags);
  EXPECT_EQ(info->domain, "CORP");
  EXPECT_EQ(info->user_name, "analyst");
  EXPECT_EQ(info->password, "typed!");
  EXPECT_EQ(info->alternate_shell, "");
  EXPECT_EQ(info->working_dir, "C:\\tm");
  EXPECT_EQ(info->extra_info, (Bytes{0x02, 0x00, 0x02, 0x00, 0x00, 0x00}));
}

TEST(ClientInfo, EncodeOfDecodeIsTheInput) {
  const Bytes in = sample();
  auto info = decode_client_info(in);
  ASSERT_TRUE(info.has_value());
  auto out = encode_client_info(*info);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, in);
}

TEST(ClientInfo, RewriteReplacesCredentialsAndKeepsTheRest) {
  auto rewritten = rewrite_client_info(sample(kSecInfoPkt, kFreeRdpFlags | kInfoPasswordIsScPin),
                                       "DESKTOPS", "svc-7f3a", "Ünïcode-pässwörd");
  ASSERT_TRUE(rewritten.has_value()) << rewritten.error().describe();
  auto info = decode_client_info(*rewritten);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->domain, "DESKTOPS");
  EXPECT_EQ(info->user_name, "svc-7f3a");
  EXPECT_EQ(info->password, "Ünïcode-pässwörd");
  EXPECT_EQ(info->flags, kFreeRdpFlags | kInfoAutologon);
  EXPECT_EQ(info->code_page, 0x409u);
  EXPECT_EQ(info->working_dir, "C:\\tm");
  EXPECT_EQ(info->extra_info, (Bytes{0x02, 0x00, 0x02, 0x00, 0x00, 0x00}));
  // cbPassword counts the UTF-16 bytes without the terminator.
  const Bytes& b = *rewritten;
  EXPECT_EQ(b[4 + 8 + 4] | (b[4 + 8 + 5] << 8), 2 * 16);
}

TEST(ClientInfo, RewriteWithEmptyDomain) {
  auto rewritten = rewrite_client_info(sample(), "", "u", "p");
  ASSERT_TRUE(rewritten.has_value());
  auto info = decode_client_info(*rewritten);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->domain, "");
  EXPECT_EQ(info->user_name, "u");
}

TEST(ClientInfo, LegacyEncryptionIsRefused) {
  auto info = decode_client_info(sample(kSecInfoPkt | kSecEncrypt));
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().field, "flags");
  EXPECT_NE(info.error().reason.find("SEC_ENCRYPT"), std::string::npos);
  EXPECT_FALSE(rewrite_client_info(sample(kSecInfoPkt | kSecEncrypt), "d", "u", "p").has_value());
}

TEST(ClientInfo, MissingInfoFlagIsRefused) {
  EXPECT_FALSE(decode_client_info(sample(0)).has_value());
  EXPECT_FALSE(decode_client_info(sample(kSecLicensePkt)).has_value());
}

TEST(ClientInfo, EveryTruncationFailsCleanly) {
  const Bytes in = sample();
  // Up to the end of WorkingDir's terminator everything is required; the extra info is not.
  const std::size_t required = in.size() - 6;
  for (std::size_t n = 0; n < required; ++n) {
    Bytes prefix(in.begin(), in.begin() + static_cast<long>(n));
    auto info = decode_client_info(prefix);
    ASSERT_FALSE(info.has_value()) << n;
    EXPECT_EQ(info.error().kind, Kind::kNotEnoughBytes) << n;
  }
  for (std::size_t n = required; n <= in.size(); ++n) {
    Bytes prefix(in.begin(), in.begin() + static_cast<long>(n));
    EXPECT_TRUE(decode_client_info(prefix).has_value()) << n;
  }
}

TEST(ClientInfo, OddUnicodeLengthFails) {
  Bytes b = sample();
  b[4 + 8] = 7;  // cbDomain
  auto info = decode_client_info(b);
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().field, "Domain");
}

TEST(ClientInfo, OverlongStringFails) {
  Bytes b = sample();
  b[4 + 8 + 2] = 0x02;  // cbUserName = 0x0202 = 514
  b[4 + 8 + 3] = 0x02;
  auto info = decode_client_info(b);
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().kind, Kind::kTooLarge);
}

TEST(ClientInfo, MissingTerminatorFails) {
  Bytes b = sample();
  b[4 + 18 + 8] = 'X';  // the first byte of Domain's terminator
  auto info = decode_client_info(b);
  ASSERT_FALSE(info.has_value());
  EXPECT_EQ(info.error().reason, "not null-terminated");
}

TEST(ClientInfo, UnpairedSurrogateFails) {
  Bytes b = sample();
  b[4 + 18] = 0x00;  // Domain's first code unit: 0xD800
  b[4 + 18 + 1] = 0xD8;
  EXPECT_FALSE(decode_client_info(b).has_value());
}

TEST(ClientInfo, AnsiStringsDecodeButAreNotRewritten) {
  Bytes b;
  u16(b, kSecInfoPkt);
  u16(b, 0);
  u32(b, 0);
  u32(b, kInfoMouse);  // no INFO_UNICODE
  for (std::uint16_t cb : {1, 2, 0, 0, 0}) u16(b, cb);
  for (std::string_view s : {"D", "ab", "", "", ""}) {
    b.insert(b.end(), s.begin(), s.end());
    b.push_back(0);
  }
  auto info = decode_client_info(b);
  ASSERT_TRUE(info.has_value()) << info.error().describe();
  EXPECT_EQ(info->domain, "D");
  EXPECT_EQ(info->user_name, "ab");
  EXPECT_TRUE(info->extra_info.empty());
  auto again = encode_client_info(*info);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, b);
  EXPECT_FALSE(rewrite_client_info(b, "d", "u", "p").has_value());
}

TEST(ClientInfo, EncodeRefusesStringsOver512Bytes) {
  ClientInfo info;
  info.user_name = std::string(256, 'a');
  EXPECT_TRUE(encode_client_info(info).has_value());
  info.user_name = std::string(257, 'a');
  auto out = encode_client_info(info);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().kind, Kind::kTooLarge);
  EXPECT_FALSE(rewrite_client_info(sample(), "d", std::string(300, 'u'), "p").has_value());
}

TEST(ClientInfo, WipeStringEmptiesIt) {
  std::string s = "a secret longer than the small-string buffer";
  wipe_string(s);
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace enclave::gateway
