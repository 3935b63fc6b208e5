// PduReader / PduWriter bounds and byte order, error descriptions, UTF-16LE conversion.
#include <gtest/gtest.h>

#include "gateway/core/pdu.hpp"

namespace enclave::gateway {
namespace {

TEST(PduReader, ReadsBothByteOrders) {
  const Bytes data{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D};
  PduReader r(data, "test");
  EXPECT_EQ(r.u8("a").value(), 0x01);
  EXPECT_EQ(r.u16le("b").value(), 0x0302);
  EXPECT_EQ(r.u16be("c").value(), 0x0405);
  EXPECT_EQ(r.u32le("d").value(), 0x09080706u);
  EXPECT_EQ(r.u32be("e").value(), 0x0A0B0C0Du);
  EXPECT_TRUE(r.empty());
  EXPECT_EQ(r.position(), 13u);
}

TEST(PduReader, FailedReadLeavesCursorAndNamesField) {
  const Bytes data{0x01, 0x02, 0x03};
  PduReader r(data, "Some PDU");
  ASSERT_TRUE(r.skip(1, "x"));
  auto v = r.u32le("length");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().kind, PduError::Kind::kNotEnoughBytes);
  EXPECT_EQ(v.error().pdu, "Some PDU");
  EXPECT_EQ(v.error().field, "length");
  EXPECT_EQ(v.error().received, 2u);
  EXPECT_EQ(v.error().expected, 4u);
  EXPECT_EQ(r.position(), 1u);
  EXPECT_FALSE(r.u32be("x"));
  EXPECT_FALSE(r.take(3, "x"));
  EXPECT_FALSE(r.skip(3, "x"));
  EXPECT_FALSE(r.ensure(3, "x"));
  EXPECT_TRUE(r.ensure(2, "x"));
  auto t = r.take(2, "x");
  ASSERT_TRUE(t);
  EXPECT_EQ((*t)[1], 0x03);
  EXPECT_FALSE(r.u8("x"));
  EXPECT_FALSE(r.u16le("x"));
  EXPECT_FALSE(r.u16be("x"));
  EXPECT_TRUE(r.rest().empty());
}

TEST(PduWriter, WritesAndPatches) {
  Bytes out;
  PduWriter w(out);
  w.u8(0xAA);
  w.u16le(0x0102);
  w.u16be(0x0304);
  w.u32le(0x05060708);
  w.u32be(0x090A0B0C);
  w.patch_u16be(1, 0xBEEF);
  w.patch_u16be(out.size() - 1, 0x1111);  // out of range: ignored
  EXPECT_EQ(w.size(), 13u);
  EXPECT_EQ(hex_encode(out), "aabeef030408070605090a0b0c");
}

TEST(PduError, DescribeNamesPduAndField) {
  EXPECT_EQ(not_enough_bytes("TPKT", "length", 3, 7).describe(),
            "TPKT length: not enough bytes (received 3, expected 7)");
  EXPECT_EQ(invalid_field("X.224", "LI", "must be 2").describe(), "X.224 LI: invalid: must be 2");
  EXPECT_EQ(too_large("P", "cbSize", 5000, 4096).describe(),
            "P cbSize: too large (5000 > limit 4096)");
  EXPECT_EQ(unexpected_message("MCS", "choice 9").describe(), "MCS: unexpected message: choice 9");
}

TEST(Utf16, RoundTripsBmpAndAstral) {
  const std::string text = "ticket-\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // é € 😀
  Bytes u16 = utf8_to_utf16le(text);
  EXPECT_EQ(u16.size(), (7 + 1 + 1 + 2) * 2u);
  auto back = utf16le_to_utf8(u16, "p", "f");
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, text);
}

TEST(Utf16, RejectsUnpairedSurrogatesAndOddLength) {
  EXPECT_FALSE(utf16le_to_utf8(Bytes{0x00, 0xD8}, "p", "f"));              // lone high
  EXPECT_FALSE(utf16le_to_utf8(Bytes{0x00, 0xD8, 0x41, 0x00}, "p", "f"));  // high + 'A'
  EXPECT_FALSE(utf16le_to_utf8(Bytes{0x00, 0xDC}, "p", "f"));              // lone low
  auto odd = utf16le_to_utf8(Bytes{0x41, 0x00, 0x42}, "p", "wsz");
  ASSERT_FALSE(odd);
  EXPECT_EQ(odd.error().field, "wsz");
  EXPECT_EQ(utf16le_to_utf8(Bytes{}, "p", "f").value(), "");
}

TEST(Utf16, InvalidUtf8BecomesReplacementCharacter) {
  Bytes u16 = utf8_to_utf16le(
      "a\xFF"
      "b");
  EXPECT_EQ(hex_encode(u16), "6100fdff6200");
}

}  // namespace
}  // namespace enclave::gateway
