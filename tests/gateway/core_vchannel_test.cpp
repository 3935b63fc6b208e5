#include "gateway/core/vchannel.hpp"

#include <gtest/gtest.h>

#include <string>

namespace enclave::gateway {
namespace {

using Kind = PduError::Kind;

Bytes bytes_of(std::initializer_list<int> v) {
  Bytes b;
  for (int x : v) b.push_back(static_cast<std::uint8_t>(x));
  return b;
}

Bytes with_name(Bytes head, std::string_view name) {
  head.insert(head.end(), name.begin(), name.end());
  head.push_back(0);
  return head;
}

// ---- CHANNEL_PDU_HEADER ----

TEST(ChannelPdu, DecodesHeaderAndData) {
  const Bytes in = bytes_of({0x05, 0, 0, 0, 0x03, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'});
  auto pdu = decode_channel_pdu(in);
  ASSERT_TRUE(pdu.has_value());
  EXPECT_EQ(pdu->length, 5u);
  EXPECT_EQ(pdu->flags, kChannelFlagFirst | kChannelFlagLast);
  EXPECT_TRUE(pdu->first());
  EXPECT_TRUE(pdu->last());
  EXPECT_FALSE(pdu->compressed());
  EXPECT_EQ(as_chars(pdu->data), "hello");
  Bytes out;
  encode_channel_pdu(pdu->length, pdu->flags, pdu->data, out);
  EXPECT_EQ(out, in);
}

TEST(ChannelPdu, ShortHeaderFails) {
  for (std::size_t n = 0; n < kChannelPduHeaderSize; ++n) {
    Bytes in(n, 0);
    auto pdu = decode_channel_pdu(in);
    ASSERT_FALSE(pdu.has_value());
    EXPECT_EQ(pdu.error().kind, Kind::kNotEnoughBytes);
  }
}

TEST(ChannelPdu, FirstChunkLongerThanTheMessageFails) {
  EXPECT_FALSE(decode_channel_pdu(bytes_of({2, 0, 0, 0, 1, 0, 0, 0, 'a', 'b', 'c'})).has_value());
  // A middle chunk carries no such bound; a compressed first chunk is not measured.
  EXPECT_TRUE(decode_channel_pdu(bytes_of({2, 0, 0, 0, 0, 0, 0, 0, 'a', 'b', 'c'})).has_value());
  EXPECT_TRUE(decode_channel_pdu(bytes_of({2, 0, 0, 0, 1, 0, 0x20, 0, 'a', 'b', 'c'})).has_value());
}

// ---- drdynvc ----

TEST(Dynvc, CreateRequestFromTheServer) {
  auto pdu = decode_dynvc(with_name(bytes_of({0x10, 0x03}), "URBDRC"), DynvcFrom::kServer);
  ASSERT_TRUE(pdu.has_value()) << pdu.error().describe();
  EXPECT_EQ(pdu->cmd, DynvcCmd::kCreate);
  EXPECT_EQ(pdu->cb_id, 0);
  EXPECT_EQ(pdu->channel_id, 3u);
  EXPECT_EQ(pdu->channel_name, "URBDRC");

  // cbId 1 (2-byte id) and Pri 2.
  auto wide =
      decode_dynvc(with_name(bytes_of({0x19, 0x02, 0x01}), "Microsoft::Windows::RDS::Graphics"),
                   DynvcFrom::kServer);
  ASSERT_TRUE(wide.has_value());
  EXPECT_EQ(wide->channel_id, 0x0102u);
  EXPECT_EQ(wide->sp, 2);
  EXPECT_EQ(wide->channel_name, "Microsoft::Windows::RDS::Graphics");

  // cbId 2 (4-byte id).
  auto four =
      decode_dynvc(with_name(bytes_of({0x12, 0x04, 0x03, 0x02, 0x01}), "x"), DynvcFrom::kServer);
  ASSERT_TRUE(four.has_value());
  EXPECT_EQ(four->channel_id, 0x01020304u);
}

TEST(Dynvc, CreateRequestNameMustBeTerminated) {
  auto pdu = decode_dynvc(bytes_of({0x10, 0x03, 'U', 'R', 'B'}), DynvcFrom::kServer);
  ASSERT_FALSE(pdu.has_value());
  EXPECT_EQ(pdu.error().field, "ChannelName");
  EXPECT_FALSE(decode_dynvc(bytes_of({0x10, 0x03}), DynvcFrom::kServer).has_value());
  Bytes huge = bytes_of({0x10, 0x03});
  huge.resize(huge.size() + kMaxDynvcChannelName + 10, 'A');
  huge.push_back(0);
  auto big = decode_dynvc(huge, DynvcFrom::kServer);
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().kind, Kind::kTooLarge);
}

TEST(Dynvc, CreateResponseFromTheClient) {
  auto pdu = decode_dynvc(bytes_of({0x10, 0x07, 0x22, 0x00, 0x00, 0xC0}), DynvcFrom::kClient);
  ASSERT_TRUE(pdu.has_value());
  EXPECT_EQ(pdu->channel_id, 7u);
  EXPECT_EQ(pdu->creation_status, kStatusAccessDenied);
  EXPECT_FALSE(decode_dynvc(bytes_of({0x10, 0x07, 0x00, 0x00}), DynvcFrom::kClient).has_value());
}

TEST(Dynvc, EncodersForTheRefusal) {
  EXPECT_EQ(encode_dynvc_create_response(3, kStatusAccessDenied),
            bytes_of({0x10, 0x03, 0x22, 0x00, 0x00, 0xC0}));
  EXPECT_EQ(encode_dynvc_create_response(0x1234, kStatusAccessDenied),
            bytes_of({0x11, 0x34, 0x12, 0x22, 0x00, 0x00, 0xC0}));
  EXPECT_EQ(encode_dynvc_create_response(0x12345, 0),
            bytes_of({0x12, 0x45, 0x23, 0x01, 0x00, 0, 0, 0, 0}));
  EXPECT_EQ(encode_dynvc_close(5), bytes_of({0x40, 0x05}));
  EXPECT_EQ(encode_dynvc_close(0x300), bytes_of({0x41, 0x00, 0x03}));
}

TEST(Dynvc, DataFirstDataAndClose) {
  // DATA_FIRST, Sp 1 (2-byte Length), cbId 0.
  const Bytes first_in = bytes_of({0x24, 0x09, 0x10, 0x00, 'a', 'b'});
  auto first = decode_dynvc(first_in, DynvcFrom::kClient);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->cmd, DynvcCmd::kDataFirst);
  EXPECT_EQ(first->channel_id, 9u);
  EXPECT_EQ(first->length, 16u);
  EXPECT_EQ(as_chars(first->data), "ab");

  const Bytes data_in = bytes_of({0x30, 0x09, 'x', 'y', 'z'});
  auto data = decode_dynvc(data_in, DynvcFrom::kServer);
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(data->cmd, DynvcCmd::kData);
  EXPECT_EQ(as_chars(data->data), "xyz");

  auto close = decode_dynvc(bytes_of({0x40, 0x09}), DynvcFrom::kServer);
  ASSERT_TRUE(close.has_value());
  EXPECT_EQ(close->cmd, DynvcCmd::kClose);
  EXPECT_EQ(close->channel_id, 9u);
}

TEST(Dynvc, DataFirstLengthBelowItsDataFails) {
  EXPECT_FALSE(
      decode_dynvc(bytes_of({0x20, 0x09, 0x01, 'a', 'b'}), DynvcFrom::kServer).has_value());
  // Compressed data may be longer than the uncompressed length: not checked.
  EXPECT_TRUE(decode_dynvc(bytes_of({0x60, 0x09, 0x01, 'a', 'b'}), DynvcFrom::kServer).has_value());
}

TEST(Dynvc, Capabilities) {
  auto v1 = decode_dynvc(bytes_of({0x50, 0x00, 0x01, 0x00}), DynvcFrom::kServer);
  ASSERT_TRUE(v1.has_value());
  EXPECT_EQ(v1->version, 1);
  auto v2 =
      decode_dynvc(bytes_of({0x50, 0x00, 0x02, 0x00, 1, 0, 2, 0, 3, 0, 4, 0}), DynvcFrom::kServer);
  ASSERT_TRUE(v2.has_value());
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(v2->priority_charges, (std::array<std::uint16_t, 4>{1, 2, 3, 4}));
  EXPECT_FALSE(
      decode_dynvc(bytes_of({0x50, 0x00, 0x02, 0x00, 1, 0}), DynvcFrom::kServer).has_value());
  // The client's response (mstsc sets the unused bits: 0x5C).
  auto rsp = decode_dynvc(bytes_of({0x5C, 0x00, 0x03, 0x00}), DynvcFrom::kClient);
  ASSERT_TRUE(rsp.has_value());
  EXPECT_EQ(rsp->version, 3);
  EXPECT_EQ(encode_dynvc(*rsp, DynvcFrom::kClient), bytes_of({0x5C, 0x00, 0x03, 0x00}));
}

TEST(Dynvc, InvalidHeaders) {
  // cbId 3.
  EXPECT_FALSE(decode_dynvc(bytes_of({0x33, 1, 2, 3, 4, 5}), DynvcFrom::kServer).has_value());
  // Unknown commands.
  EXPECT_FALSE(decode_dynvc(bytes_of({0x00, 0x01}), DynvcFrom::kServer).has_value());
  EXPECT_FALSE(decode_dynvc(bytes_of({0xA0, 0x01}), DynvcFrom::kServer).has_value());
  EXPECT_FALSE(decode_dynvc(bytes_of({0xF0, 0x01}), DynvcFrom::kServer).has_value());
  // DATA_FIRST with Sp 3.
  EXPECT_FALSE(decode_dynvc(bytes_of({0x2C, 0x01, 1, 2, 3, 4}), DynvcFrom::kServer).has_value());
  // Empty, and ids cut short.
  EXPECT_FALSE(decode_dynvc({}, DynvcFrom::kServer).has_value());
  EXPECT_FALSE(decode_dynvc(bytes_of({0x31, 0x01}), DynvcFrom::kServer).has_value());
  EXPECT_FALSE(decode_dynvc(bytes_of({0x42, 0x01, 0x02, 0x03}), DynvcFrom::kServer).has_value());
}

TEST(Dynvc, EncodeOfDecodeIsTheInputForCanonicalMessages) {
  const std::vector<std::pair<Bytes, DynvcFrom>> cases = {
      {with_name(bytes_of({0x10, 0x03}), "URBDRC"), DynvcFrom::kServer},
      {with_name(bytes_of({0x15, 0x02, 0x01}), "Microsoft::Windows::RDS::Graphics"),
       DynvcFrom::kServer},
      {bytes_of({0x10, 0x07, 0x22, 0x00, 0x00, 0xC0}), DynvcFrom::kClient},
      {bytes_of({0x24, 0x09, 0x10, 0x00, 'a', 'b'}), DynvcFrom::kClient},
      {bytes_of({0x28, 0x09, 0x10, 0x00, 0x00, 0x00, 'a'}), DynvcFrom::kServer},
      {bytes_of({0x32, 0x09, 0, 0, 0, 'x'}), DynvcFrom::kServer},
      {bytes_of({0x40, 0x09}), DynvcFrom::kClient},
      {bytes_of({0x50, 0x00, 0x03, 0x00, 1, 0, 2, 0, 3, 0, 4, 0}), DynvcFrom::kServer},
      {bytes_of({0x70, 0x09, 0xE0, 0x04}), DynvcFrom::kServer},
      {bytes_of({0x80, 0x00, 0x08, 0, 0, 0, 1, 0, 0, 0}), DynvcFrom::kServer},
      {bytes_of({0x90, 0x00, 0, 0, 0, 0}), DynvcFrom::kClient},
  };
  for (const auto& [in, from] : cases) {
    auto pdu = decode_dynvc(in, from);
    ASSERT_TRUE(pdu.has_value()) << hex_encode(in) << ": " << pdu.error().describe();
    EXPECT_EQ(encode_dynvc(*pdu, from), in) << hex_encode(in);
  }
}

}  // namespace
}  // namespace enclave::gateway
