// MS-RDPEPC preconnection PDU: xfreerdp's real bytes, round trips, incremental decoding and
// every way the size fields can lie.
#include <gtest/gtest.h>

#include "gateway/core/preconnection.hpp"
#include "tests/gateway/core_golden_vectors.hpp"

namespace enclave::gateway {
namespace {

Bytes hex(std::string_view h) {
  return hex_decode(h).value();
}

TEST(Preconnection, DecodesXfreerdpTicket) {
  const Bytes pdu = hex(golden::kPcbTicket);
  auto d = decode_preconnection(pdu);
  ASSERT_TRUE(d) << d.error().describe();
  ASSERT_TRUE(d->has_value());
  EXPECT_EQ((*d)->size, 48u);
  EXPECT_EQ((*d)->pdu.version, kPreconnectionVersion2);
  EXPECT_EQ((*d)->pdu.id, 0u);
  EXPECT_EQ((*d)->pdu.blob, "ticket-ABC123");
  // We encode one terminator; decoding that gives the same PDU.
  auto again = encode_preconnection((*d)->pdu);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->size(), 46u);
  auto d2 = decode_preconnection(*again);
  ASSERT_TRUE(d2 && d2->has_value());
  EXPECT_EQ((*d2)->pdu, (*d)->pdu);
}

TEST(Preconnection, DecodesIdOnlyAndRoundTripsExactly) {
  const Bytes pdu = hex(golden::kPcbIdOnly);
  auto d = decode_preconnection(pdu);
  ASSERT_TRUE(d && d->has_value());
  EXPECT_EQ((*d)->pdu.id, 42u);
  EXPECT_EQ((*d)->pdu.blob, "");
  EXPECT_EQ(encode_preconnection((*d)->pdu).value(), pdu);
}

TEST(Preconnection, V1RoundTrip) {
  PreconnectionPdu v1{0, kPreconnectionVersion1, 7, ""};
  auto bytes = encode_preconnection(v1);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(hex_encode(*bytes), "10000000000000000100000007000000");
  auto d = decode_preconnection(*bytes);
  ASSERT_TRUE(d && d->has_value());
  EXPECT_EQ((*d)->pdu, v1);
  EXPECT_EQ((*d)->size, 16u);
}

TEST(Preconnection, FollowingBytesAreNotConsumed) {
  Bytes buffered = hex(golden::kPcbTicket);
  const Bytes cr = hex(golden::kConnectionRequestTls);
  buffered.insert(buffered.end(), cr.begin(), cr.end());
  auto d = decode_preconnection(buffered);
  ASSERT_TRUE(d && d->has_value());
  EXPECT_EQ((*d)->size, 48u);
}

TEST(Preconnection, EveryTruncationWaitsForMore) {
  for (const auto golden : {golden::kPcbTicket, golden::kPcbIdOnly}) {
    const Bytes pdu = hex(golden);
    for (std::size_t n = 0; n < pdu.size(); ++n) {
      auto d = decode_preconnection(ByteSpan(pdu).first(n));
      ASSERT_TRUE(d) << n << ": " << d.error().describe();
      EXPECT_FALSE(d->has_value()) << n;
    }
  }
}

TEST(Preconnection, OversizedCbSizeRefusedFromFirstFourBytes) {
  const Bytes big{0x01, 0x10, 0x00, 0x00};  // 4097
  auto d = decode_preconnection(big);
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error().kind, PduError::Kind::kTooLarge);
  EXPECT_EQ(d.error().field, "cbSize");
  const Bytes huge{0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_FALSE(decode_preconnection(huge));
  const Bytes max{0x00, 0x10, 0x00, 0x00};  // exactly 4096: wait for it
  auto ok = decode_preconnection(max);
  ASSERT_TRUE(ok);
  EXPECT_FALSE(ok->has_value());
}

TEST(Preconnection, RejectsInconsistentFields) {
  auto field_of = [](std::string_view h) {
    auto d = decode_preconnection(hex_decode(h).value());
    EXPECT_FALSE(d) << h;
    return d ? std::string("ok") : d.error().field;
  };
  EXPECT_EQ(field_of("0f000000"), "cbSize");  // below 16
  EXPECT_EQ(field_of("11000000000000000100000007000000"
                     "00"),
            "cbSize");                                                 // V1 not 16
  EXPECT_EQ(field_of("10000000000000000300000007000000"), "Version");  // version 3
  EXPECT_EQ(field_of("10000000000000000200000007000000"), "cbSize");   // V2 of 16
  EXPECT_EQ(field_of("140000000000000002000000000000000200"
                     "4100"),
            "cbSize");  // 20 != 22
  // 'A' without terminator.
  EXPECT_EQ(field_of("140000000000000002000000000000000100"
                     "4100"),
            "wszPCB");
  // 'A' NUL 'B' NUL: a character after the end of the string.
  EXPECT_EQ(field_of("1a0000000000000002000000000000000400"
                     "410000004200"
                     "0000"),
            "wszPCB");
  // Unpaired surrogate.
  EXPECT_EQ(field_of("160000000000000002000000000000000200"
                     "00d80000"),
            "wszPCB");
}

TEST(Preconnection, EncodeRejectsWhatCannotBeSent) {
  EXPECT_FALSE(encode_preconnection({0, 3, 0, ""}));
  EXPECT_FALSE(encode_preconnection({0, kPreconnectionVersion1, 0, "blob"}));
  EXPECT_FALSE(encode_preconnection({0, kPreconnectionVersion2, 0, std::string("a\0b", 3)}));
  auto big = encode_preconnection({0, kPreconnectionVersion2, 0, std::string(2100, 'x')});
  ASSERT_FALSE(big);
  EXPECT_EQ(big.error().kind, PduError::Kind::kTooLarge);
  // The largest blob that fits: 18 + 2 * (2038 + 1) = 4096.
  auto max = encode_preconnection({0, kPreconnectionVersion2, 0, std::string(2038, 'x')});
  ASSERT_TRUE(max);
  EXPECT_EQ(max->size(), 4096u);
  auto d = decode_preconnection(*max);
  ASSERT_TRUE(d && d->has_value());
  EXPECT_EQ((*d)->pdu.blob.size(), 2038u);
}

TEST(Preconnection, NonAsciiTicket) {
  PreconnectionPdu p{0, kPreconnectionVersion2, 1, "t\xC3\xA9st-\xF0\x9F\x98\x80"};
  auto d = decode_preconnection(encode_preconnection(p).value());
  ASSERT_TRUE(d && d->has_value());
  EXPECT_EQ((*d)->pdu, p);
}

}  // namespace
}  // namespace enclave::gateway
