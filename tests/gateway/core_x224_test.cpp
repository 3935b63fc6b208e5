// TPKT, fast-path framing and the X.224 connection PDUs, on the bytes xfreerdp and
// freerdp-shadow-cli exchanged (tests/gateway/core_golden_vectors.hpp).
#include <gtest/gtest.h>

#include "gateway/core/x224.hpp"
#include "tests/gateway/core_golden_vectors.hpp"

namespace enclave::gateway {
namespace {

Bytes hex(std::string_view h) {
  return hex_decode(h).value();
}

// Every proper prefix of a complete TPKT PDU fails with kNotEnoughBytes, whatever decoder.
template <class Decode>
void expect_truncations_fail(const Bytes& pdu, Decode decode) {
  for (std::size_t n = 0; n < pdu.size(); ++n) {
    auto r = decode(ByteSpan(pdu).first(n));
    ASSERT_FALSE(r) << "prefix " << n;
    EXPECT_EQ(r.error().kind, PduError::Kind::kNotEnoughBytes)
        << "prefix " << n << ": " << r.error().describe();
  }
}

TEST(Tpkt, SplitFrameTpktAndFastPath) {
  Bytes stream = hex(golden::kChannelJoinRequest);
  const Bytes fp1 = hex(golden::kFastPathInput1);
  const Bytes fp2 = hex(golden::kFastPathInput2);
  stream.insert(stream.end(), fp1.begin(), fp1.end());
  stream.insert(stream.end(), fp2.begin(), fp2.end());

  std::vector<Frame> frames;
  ByteSpan rest = stream;
  while (!rest.empty()) {
    auto f = split_frame(rest);
    ASSERT_TRUE(f) << f.error().describe();
    ASSERT_TRUE(f->has_value());
    frames.push_back(**f);
    rest = rest.subspan((*f)->size);
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].kind, FrameKind::kTpkt);
  EXPECT_EQ(frames[0].size, 12u);
  EXPECT_EQ(frames[1].kind, FrameKind::kFastPath);
  EXPECT_EQ(frames[1].size, 8u);
  EXPECT_EQ(frames[1].header_size, 3u);
  EXPECT_EQ(frames[2].size, 10u);
}

TEST(Tpkt, SplitFrameWaitsForHeader) {
  EXPECT_FALSE(split_frame(Bytes{}).value().has_value());
  EXPECT_FALSE(split_frame(Bytes{0x03}).value().has_value());
  EXPECT_FALSE(split_frame(Bytes{0x03, 0x00, 0x00}).value().has_value());
  EXPECT_EQ(split_frame(Bytes{0x03, 0x00, 0x00, 0x0C}).value()->size, 12u);
  EXPECT_FALSE(split_frame(Bytes{0x0C}).value().has_value());
  EXPECT_FALSE(split_frame(Bytes{0x0C, 0x80}).value().has_value());
  EXPECT_EQ(split_frame(Bytes{0x0C, 0x80, 0x08}).value()->size, 8u);
  // One-byte fast-path length, and the largest two-byte one.
  EXPECT_EQ(split_frame(Bytes{0x00, 0x05}).value()->size, 5u);
  EXPECT_EQ(split_frame(Bytes{0x00, 0xFF, 0xFF}).value()->size, 0x7FFFu);
  // A real 8611-byte fast-path update from freerdp-shadow-cli.
  auto big = split_frame(Bytes{0x00, 0xA1, 0xA3});
  EXPECT_EQ(big.value()->size, 8611u);
}

TEST(Tpkt, SplitFrameRejectsGarbage) {
  for (std::uint8_t first : {0x01, 0x02, 0x07, 0x41, 0xFF}) {
    auto f = split_frame(Bytes{first, 0x00, 0x00, 0x20});
    ASSERT_FALSE(f) << int(first);
    EXPECT_EQ(f.error().field, "action");
  }
  EXPECT_EQ(split_frame(Bytes{0x03, 0x01}).error().field, "reserved");
  EXPECT_EQ(split_frame(Bytes{0x03, 0x00, 0x00, 0x06}).error().field, "length");
  EXPECT_EQ(split_frame(Bytes{0x00, 0x01}).error().field, "length");
  EXPECT_EQ(split_frame(Bytes{0x00, 0x80, 0x02}).error().field, "length");
  EXPECT_FALSE(tpkt_frame_size(Bytes{0x0C, 0x80, 0x08}));  // fast-path where TPKT required
}

TEST(Tpkt, PayloadAndEncode) {
  const Bytes pdu = hex(golden::kAttachUserRequest);
  auto p = tpkt_payload(pdu);
  ASSERT_TRUE(p);
  EXPECT_EQ(hex_encode(*p), "02f08028");
  EXPECT_EQ(encode_tpkt(*p).value(), pdu);
  Bytes longer = pdu;
  longer.push_back(0);
  EXPECT_EQ(tpkt_payload(longer).error().kind, PduError::Kind::kInvalidField);
  expect_truncations_fail(pdu, tpkt_payload);
  EXPECT_EQ(encode_tpkt(Bytes(kTpktMaxSize - 4, 0)).value().size(), kTpktMaxSize);
  EXPECT_EQ(encode_tpkt(Bytes(kTpktMaxSize - 3, 0)).error().kind, PduError::Kind::kTooLarge);
}

TEST(Tpkt, TpduCodes) {
  EXPECT_EQ(x224_tpdu_code(hex(golden::kConnectionRequestTls)).value(), kX224ConnectionRequest);
  EXPECT_EQ(x224_tpdu_code(hex(golden::kConnectionConfirmSsl)).value(), kX224ConnectionConfirm);
  EXPECT_EQ(x224_tpdu_code(hex(golden::kConnectInitial)).value(), kX224Data);
  EXPECT_EQ(x224_tpdu_code(hex("0300000b06800000000000")).value(), kX224DisconnectRequest);
  EXPECT_FALSE(x224_tpdu_code(hex("03000007050000")));  // LI 5 but 2 bytes follow
}

TEST(ConnectionRequest, DecodesXfreerdpTls) {
  const Bytes pdu = hex(golden::kConnectionRequestTls);
  auto cr = decode_connection_request(pdu);
  ASSERT_TRUE(cr) << cr.error().describe();
  EXPECT_EQ(cr->cookie, "Cookie: mstshash=alice");
  ASSERT_TRUE(cr->negotiation);
  EXPECT_EQ(cr->negotiation->flags, 0);
  EXPECT_EQ(cr->negotiation->requested_protocols, kProtocolSsl);
  EXPECT_FALSE(cr->correlation);
  EXPECT_EQ(encode_connection_request(*cr).value(), pdu);
}

TEST(ConnectionRequest, DecodesDefaultAndLegacy) {
  auto def = decode_connection_request(hex(golden::kConnectionRequestDefault));
  ASSERT_TRUE(def);
  EXPECT_EQ(def->negotiation->requested_protocols, kProtocolSsl | kProtocolHybrid);
  const Bytes rdp = hex(golden::kConnectionRequestRdp);
  auto legacy = decode_connection_request(rdp);
  ASSERT_TRUE(legacy);
  EXPECT_TRUE(legacy->cookie);
  EXPECT_FALSE(legacy->negotiation);
  EXPECT_EQ(encode_connection_request(*legacy).value(), rdp);
}

TEST(ConnectionRequest, GatewayRequestRoundTripsWithCorrelationInfo) {
  ConnectionRequest req;
  req.negotiation = NegotiationRequest{kNegReqCorrelationInfoPresent, kProtocolSsl};
  CorrelationInfo info;
  for (std::size_t i = 0; i < info.id.size(); ++i) info.id[i] = static_cast<std::uint8_t>(i + 1);
  req.correlation = info;
  auto bytes = encode_connection_request(req);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->size(), 4u + 7u + 8u + 36u);
  auto back = decode_connection_request(*bytes);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, req);
  expect_truncations_fail(*bytes, decode_connection_request);

  ConnectionRequest bare;  // no cookie, no negotiation: 11 bytes
  auto b = encode_connection_request(bare);
  EXPECT_EQ(hex_encode(b.value()), "0300000b06e00000000000");
  EXPECT_EQ(decode_connection_request(*b).value(), bare);
}

TEST(ConnectionRequest, EveryTruncationFails) {
  expect_truncations_fail(hex(golden::kConnectionRequestTls), decode_connection_request);
}

TEST(ConnectionRequest, RejectsBadFields) {
  auto field_of = [](std::string_view h) {
    auto r = decode_connection_request(hex_decode(h).value());
    EXPECT_FALSE(r) << h;
    return r ? std::string("ok") : r.error().field;
  };
  // LI one too small / too large.
  EXPECT_EQ(field_of("0300000b05e00000000000"), "LI");
  EXPECT_EQ(field_of("0300000b07e00000000000"), "LI");
  EXPECT_EQ(field_of("0300000b06d00000000000"), "CR-CDT");
  EXPECT_EQ(field_of("0300000b06e00001000000"), "DST-REF");
  EXPECT_EQ(field_of("0300000b06e00000000001"), "CLASS-OPTION");
  // A Connection Request whose variable part is `tail`.
  auto with_tail = [](std::string_view tail) {
    Bytes x{0, 0xE0, 0, 0, 0, 0, 0};
    x.insert(x.end(), tail.begin(), tail.end());
    x[0] = static_cast<std::uint8_t>(x.size() - 1);
    return encode_tpkt(x).value();
  };
  auto cookie_field = [](const Bytes& b) {
    auto r = decode_connection_request(b);
    return r ? std::string("ok") : r.error().field;
  };
  EXPECT_EQ(cookie_field(with_tail("Cookie: a")), "cookie");         // no CRLF
  EXPECT_EQ(cookie_field(with_tail("Cookie: a\rb\r\n")), "cookie");  // lone CR
  EXPECT_EQ(cookie_field(with_tail("Cookie: a\nb\r\n")), "cookie");  // lone LF
  EXPECT_EQ(cookie_field(with_tail("Cookie: msts=3640205228.15629.0000\r\n")), "ok");
  // RDP_NEG_REQ with length 9.
  EXPECT_EQ(field_of("030000130ee00000000000"
                     "0100090001000000"),
            "RDP_NEG_REQ.length");
  // Unknown structure type.
  EXPECT_EQ(field_of("030000130ee00000000000"
                     "0200080001000000"),
            "type");
  // Trailing byte after RDP_NEG_REQ.
  EXPECT_EQ(field_of("030000140fe00000000000"
                     "010008000100000000"),
            "type");
  // Correlation info with length 35.
  Bytes bad =
      encode_connection_request({0, 0, std::nullopt, NegotiationRequest{8, 1}, CorrelationInfo{}})
          .value();
  bad[4 + 7 + 8 + 2] = 35;
  EXPECT_EQ(decode_connection_request(bad).error().field, "RDP_NEG_CORRELATION_INFO.length");
  EXPECT_FALSE(encode_connection_request({0, 0, std::string("a\r\nb"), {}, {}}));
}

TEST(ConnectionConfirm, DecodesShadowServerConfirms) {
  const Bytes ssl = hex(golden::kConnectionConfirmSsl);
  auto cc = decode_connection_confirm(ssl);
  ASSERT_TRUE(cc) << cc.error().describe();
  ASSERT_TRUE(cc->response);
  EXPECT_EQ(cc->response->selected_protocol, kProtocolSsl);
  EXPECT_EQ(cc->response->flags,
            kNegRspExtendedClientDataSupported | kNegRspDynvcGfxProtocolSupported);
  EXPECT_FALSE(cc->failure_code);
  EXPECT_EQ(encode_connection_confirm(*cc).value(), ssl);

  auto rdp = decode_connection_confirm(hex(golden::kConnectionConfirmRdp));
  ASSERT_TRUE(rdp && rdp->response);
  EXPECT_EQ(rdp->response->selected_protocol, kProtocolRdp);

  const Bytes failure = hex(golden::kConnectionConfirmFailure);
  auto f = decode_connection_confirm(failure);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->response);
  EXPECT_EQ(f->failure_code, kSslRequiredByServer);
  EXPECT_EQ(encode_connection_confirm(*f).value(), failure);
}

TEST(ConnectionConfirm, LegacyWithoutNegotiationAndErrors) {
  ConnectionConfirm legacy;
  auto bytes = encode_connection_confirm(legacy);
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->size(), 11u);
  EXPECT_EQ(decode_connection_confirm(*bytes).value(), legacy);

  ConnectionConfirm both;
  both.response = NegotiationResponse{};
  both.failure_code = kSslNotAllowedByServer;
  EXPECT_FALSE(encode_connection_confirm(both));

  expect_truncations_fail(hex(golden::kConnectionConfirmSsl), decode_connection_confirm);
  expect_truncations_fail(hex(golden::kConnectionConfirmFailure), decode_connection_confirm);
  EXPECT_EQ(decode_connection_confirm(hex("030000130ed000000000000403080001000000")).error().field,
            "type");
  EXPECT_EQ(decode_connection_confirm(hex("030000130ed000000000000203070001000000")).error().field,
            "length");
  EXPECT_EQ(
      decode_connection_confirm(hex("030000140fd00000000000020308000100000000")).error().field,
      "trailing bytes");
  EXPECT_EQ(decode_connection_confirm(hex(golden::kConnectionRequestTls)).error().field, "CC-CDT");
  // A Connection Request is not a confirm, and vice versa.
  EXPECT_FALSE(decode_connection_request(hex(golden::kConnectionConfirmSsl)));
}

TEST(DataTpdu, DecodeEncode) {
  const Bytes pdu = hex(golden::kChannelJoinRequest);
  auto payload = decode_data_tpdu(pdu);
  ASSERT_TRUE(payload);
  EXPECT_EQ(hex_encode(*payload), "38000803eb");
  EXPECT_EQ(payload->data(), pdu.data() + kDataPayloadOffset);
  EXPECT_EQ(encode_data_tpdu(*payload).value(), pdu);
  expect_truncations_fail(pdu, decode_data_tpdu);

  EXPECT_EQ(decode_data_tpdu(hex("0300000803f08028")).error().field, "LI");
  EXPECT_EQ(decode_data_tpdu(hex("0300000802e08028")).error().field, "DT");
  EXPECT_EQ(decode_data_tpdu(hex("0300000802f00028")).error().field, "EOT");
  EXPECT_TRUE(decode_data_tpdu(hex("0300000702f080")).value().empty());

  EXPECT_EQ(encode_data_tpdu(Bytes(kMaxDataPayload, 0)).value().size(), kTpktMaxSize);
  EXPECT_EQ(encode_data_tpdu(Bytes(kMaxDataPayload + 1, 0)).error().kind,
            PduError::Kind::kTooLarge);
}

}  // namespace
}  // namespace enclave::gateway
