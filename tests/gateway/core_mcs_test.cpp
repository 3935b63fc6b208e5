// T.125 MCS connect PDUs (BER + T.124 PER) and domain PDUs (PER), on xfreerdp /
// freerdp-shadow-cli bytes (tests/gateway/core_golden_vectors.hpp).
#include <gtest/gtest.h>

#include "gateway/core/mcs.hpp"
#include "gateway/core/x224.hpp"
#include "tests/gateway/core_golden_vectors.hpp"

namespace enclave::gateway {
namespace {

Bytes hex(std::string_view h) {
  return hex_decode(h).value();
}

TEST(ConnectInitial, DecodesXfreerdpAndRoundTripsExactly) {
  const Bytes pdu = hex(golden::kConnectInitial);
  auto ci = decode_connect_initial(pdu);
  ASSERT_TRUE(ci) << ci.error().describe();
  EXPECT_EQ(ci->fields.calling_domain_selector, Bytes{0x01});
  EXPECT_EQ(ci->fields.called_domain_selector, Bytes{0x01});
  EXPECT_TRUE(ci->fields.upward_flag);
  EXPECT_EQ(ci->fields.target, (DomainParameters{34, 2, 0, 1, 0, 1, 65535, 2}));
  EXPECT_EQ(ci->fields.minimum, (DomainParameters{1, 1, 1, 1, 0, 1, 1056, 2}));
  EXPECT_EQ(ci->fields.maximum, (DomainParameters{65535, 64535, 65535, 1, 0, 1, 65535, 2}));
  EXPECT_EQ(ci->blocks.size(), 0x14Au);
  EXPECT_EQ(ci->blocks_offset + ci->blocks.size(), pdu.size());
  EXPECT_EQ(ci->blocks.data(), pdu.data() + ci->blocks_offset);
  EXPECT_EQ(pdu[ci->blocks_offset], 0x01);  // CS_CORE type 0xC001, little-endian
  EXPECT_EQ(pdu[ci->blocks_offset + 1], 0xC0);
  auto again = encode_connect_initial(ci->fields, ci->blocks);
  ASSERT_TRUE(again);
  EXPECT_EQ(hex_encode(*again), hex_encode(pdu));
}

TEST(ConnectInitial, EveryTruncationFails) {
  const Bytes pdu = hex(golden::kConnectInitial);
  for (std::size_t n = 0; n < pdu.size(); ++n) {
    auto r = decode_connect_initial(ByteSpan(pdu).first(n));
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().kind, PduError::Kind::kNotEnoughBytes) << n << r.error().describe();
  }
  // Truncated inside a well-formed TPKT: every nested length now overruns its parent.
  auto mcs = decode_data_tpdu(pdu).value();
  for (std::size_t n = 0; n < mcs.size(); ++n) {
    auto r = decode_connect_initial(encode_data_tpdu(mcs.first(n)).value());
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().kind, PduError::Kind::kNotEnoughBytes) << n << r.error().describe();
  }
}

// Rewrites the BER length of the Connect-Initial application tag (at MCS offset 2) in
// another form and rebuilds the TPKT.
Bytes with_app_length(const Bytes& pdu, const Bytes& length_bytes) {
  auto mcs = decode_data_tpdu(pdu).value();
  Bytes out{mcs[0], mcs[1]};
  out.insert(out.end(), length_bytes.begin(), length_bytes.end());
  out.insert(out.end(), mcs.begin() + 5, mcs.end());  // golden uses 82 01 C7
  return encode_data_tpdu(out).value();
}

TEST(ConnectInitial, BerLengthForms) {
  const Bytes pdu = hex(golden::kConnectInitial);
  const auto content = decode_data_tpdu(pdu).value().size() - 5;
  ASSERT_EQ(content, 0x1C7u);
  for (const Bytes& form : {Bytes{0x82, 0x01, 0xC7}, Bytes{0x83, 0x00, 0x01, 0xC7},
                            Bytes{0x84, 0x00, 0x00, 0x01, 0xC7}}) {
    auto r = decode_connect_initial(with_app_length(pdu, form));
    ASSERT_TRUE(r) << hex_encode(form) << r.error().describe();
    EXPECT_EQ(r->fields.target.max_channel_ids, 34u);
  }
  EXPECT_EQ(decode_connect_initial(with_app_length(pdu, {0x80})).error().kind,
            PduError::Kind::kInvalidField);  // indefinite
  EXPECT_EQ(decode_connect_initial(with_app_length(pdu, {0x85, 0, 0, 0, 0x01, 0xC7})).error().kind,
            PduError::Kind::kInvalidField);  // more than 4 length bytes
  EXPECT_EQ(decode_connect_initial(with_app_length(pdu, {0x82, 0x01, 0xC8})).error().kind,
            PduError::Kind::kNotEnoughBytes);  // one past the end
  EXPECT_EQ(
      decode_connect_initial(with_app_length(pdu, {0x84, 0xFF, 0xFF, 0xFF, 0xFF})).error().kind,
      PduError::Kind::kNotEnoughBytes);  // 4 GiB: refused before anything is read
  EXPECT_EQ(decode_connect_initial(with_app_length(pdu, {0x82, 0x01, 0xC6})).error().field,
            "Connect-Initial length");  // one short: a trailing byte
}

TEST(ConnectInitial, SmallBlocksUseShortForms) {
  const Bytes blocks{0x01, 0xC0, 0x04, 0x00};
  ConnectInitial fields;
  auto pdu = encode_connect_initial(fields, blocks);
  ASSERT_TRUE(pdu);
  auto back = decode_connect_initial(*pdu);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->fields, fields);
  EXPECT_EQ(Bytes(back->blocks.begin(), back->blocks.end()), blocks);
  // Wrong key or OID is refused.
  Bytes bad = *pdu;
  const std::size_t key = back->blocks_offset - 5;  // 'D' of "Duca" after the 1-byte length
  ASSERT_EQ(bad[key], 'D');
  bad[key] = 'X';
  EXPECT_EQ(decode_connect_initial(bad).error().field, "H.221 key");
  EXPECT_FALSE(decode_connect_response(*pdu));  // not a Connect-Response
}

TEST(ConnectInitial, TooLargeToEncode) {
  auto r = encode_connect_initial({}, Bytes(0x8000, 0));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, PduError::Kind::kTooLarge);
}

TEST(ConnectResponse, DecodesShadowServerAndRoundTripsExactly) {
  const Bytes pdu = hex(golden::kConnectResponse);
  auto cr = decode_connect_response(pdu);
  ASSERT_TRUE(cr) << cr.error().describe();
  EXPECT_EQ(cr->fields.result, 0);
  EXPECT_EQ(cr->fields.called_connect_id, 0u);
  EXPECT_EQ(cr->fields.domain, (DomainParameters{34, 3, 0, 1, 0, 1, 65528, 2}));
  EXPECT_EQ(cr->fields.gcc_node_id, 0x79F3);
  EXPECT_EQ(cr->fields.gcc_tag, 1u);
  EXPECT_EQ(cr->blocks.size(), 0x32u);
  EXPECT_EQ(cr->blocks_offset + cr->blocks.size(), pdu.size());
  EXPECT_EQ(hex_encode(encode_connect_response(cr->fields, cr->blocks).value()), hex_encode(pdu));
  for (std::size_t n = 0; n < pdu.size(); ++n) {
    auto r = decode_connect_response(ByteSpan(pdu).first(n));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, PduError::Kind::kNotEnoughBytes) << n;
  }
  auto mcs = decode_data_tpdu(pdu).value();
  for (std::size_t n = 0; n < mcs.size(); ++n) {
    auto r = decode_connect_response(encode_data_tpdu(mcs.first(n)).value());
    ASSERT_FALSE(r) << n;
    EXPECT_EQ(r.error().kind, PduError::Kind::kNotEnoughBytes) << n << r.error().describe();
  }
  EXPECT_FALSE(decode_connect_initial(pdu));
}

TEST(ConnectResponse, FieldsRoundTrip) {
  ConnectResponse f;
  f.result = 0;
  f.called_connect_id = 0x12345678;
  f.gcc_node_id = 1001;
  f.gcc_tag = 0x10000;
  const Bytes blocks(300, 0xAB);
  auto back = decode_connect_response(encode_connect_response(f, blocks).value());
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->fields, f);
  EXPECT_EQ(back->blocks.size(), 300u);
  f.gcc_node_id = 1000;
  EXPECT_FALSE(encode_connect_response(f, blocks));
}

DomainPdu domain(std::string_view golden_hex) {
  auto r = decode_domain_pdu_in_tpkt(hex_decode(golden_hex).value());
  EXPECT_TRUE(r) << golden_hex << ": " << r.error().describe();
  return r ? *r : DomainPdu{};
}

TEST(DomainPdu, DecodesConnectionSequence) {
  auto erect = domain(golden::kErectDomainRequest);
  EXPECT_EQ(erect.type, DomainPduType::kErectDomainRequest);
  EXPECT_EQ(erect.sub_height, 0u);
  auto attach = domain(golden::kAttachUserRequest);
  EXPECT_EQ(attach.type, DomainPduType::kAttachUserRequest);
  auto confirm = domain(golden::kAttachUserConfirm);
  EXPECT_EQ(confirm.type, DomainPduType::kAttachUserConfirm);
  EXPECT_EQ(confirm.result, 0);
  EXPECT_EQ(confirm.initiator, 1009);
  auto join = domain(golden::kChannelJoinRequest);
  EXPECT_EQ(join.type, DomainPduType::kChannelJoinRequest);
  EXPECT_EQ(join.initiator, 1009);
  EXPECT_EQ(join.channel_id, 1003);
  auto joined = domain(golden::kChannelJoinConfirm);
  EXPECT_EQ(joined.type, DomainPduType::kChannelJoinConfirm);
  EXPECT_EQ(joined.channel_id, 1003);
  EXPECT_EQ(joined.joined_channel_id, 1003);
  // Each re-encodes to the same bytes.
  for (auto g :
       {golden::kErectDomainRequest, golden::kAttachUserRequest, golden::kAttachUserConfirm,
        golden::kChannelJoinRequest, golden::kChannelJoinConfirm}) {
    const Bytes pdu = hex(g);
    auto mcs = encode_domain_pdu(decode_domain_pdu_in_tpkt(pdu).value());
    ASSERT_TRUE(mcs);
    EXPECT_EQ(encode_data_tpdu(*mcs).value(), pdu) << g;
  }
}

TEST(DomainPdu, SendDataOffsetsAndRebuild) {
  const Bytes pdu = hex(golden::kSendDataRequestIo);
  auto sd = decode_domain_pdu_in_tpkt(pdu);
  ASSERT_TRUE(sd) << sd.error().describe();
  EXPECT_EQ(sd->type, DomainPduType::kSendDataRequest);
  EXPECT_EQ(sd->initiator, 1009);
  EXPECT_EQ(sd->channel_id, 1003);
  EXPECT_EQ(sd->data_flags, 0x70);
  EXPECT_EQ(sd->user_data.size(), 0x16u);
  EXPECT_EQ(sd->user_data_offset, 15u);  // 7 + choice + initiator + channel + flags + 2 length
  EXPECT_EQ(sd->user_data.data(), pdu.data() + sd->user_data_offset);
  // The raw decoder's offset is relative to the MCS bytes.
  auto raw = decode_domain_pdu(decode_data_tpdu(pdu).value());
  EXPECT_EQ(raw.value().user_data_offset, 8u);

  // Rebuilt with the same user data: FreeRDP's 2-byte length becomes the 1-byte form.
  auto rebuilt = encode_send_data({false, 1009, 1003, 0x70}, sd->user_data);
  ASSERT_TRUE(rebuilt);
  EXPECT_EQ(rebuilt->size(), pdu.size() - 1);
  auto again = decode_domain_pdu_in_tpkt(*rebuilt);
  ASSERT_TRUE(again);
  EXPECT_TRUE(std::equal(again->user_data.begin(), again->user_data.end(), sd->user_data.begin(),
                         sd->user_data.end()));
  // Longer user data switches to the 2-byte form.
  const Bytes big(0x1234, 0x5A);
  auto b = encode_send_data({true, 1002, 1004, 0x70}, big);
  ASSERT_TRUE(b);
  auto bd = decode_domain_pdu_in_tpkt(*b);
  ASSERT_TRUE(bd);
  EXPECT_EQ(bd->type, DomainPduType::kSendDataIndication);
  EXPECT_EQ(bd->user_data.size(), big.size());
  EXPECT_EQ((*b)[13], 0x92);
  EXPECT_EQ((*b)[14], 0x34);
  EXPECT_FALSE(encode_send_data({}, Bytes(0x8000, 0)));
  EXPECT_FALSE(encode_send_data({false, 1000, 1003, 0x70}, big));

  auto ind = domain(golden::kSendDataIndicationDrdynvc);
  EXPECT_EQ(ind.type, DomainPduType::kSendDataIndication);
  EXPECT_EQ(ind.channel_id, 1007);
}

TEST(DomainPdu, TruncationsAndBadLengths) {
  for (auto g : {golden::kSendDataRequestIo, golden::kChannelJoinConfirm,
                 golden::kErectDomainRequest, golden::kAttachUserConfirm}) {
    const Bytes pdu = hex(g);
    for (std::size_t n = 0; n < pdu.size(); ++n) {
      auto r = decode_domain_pdu_in_tpkt(ByteSpan(pdu).first(n));
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().kind, PduError::Kind::kNotEnoughBytes) << g << " " << n;
    }
  }
  // Send data whose PER length says one more / one less than what follows.
  EXPECT_EQ(decode_domain_pdu(hex("64000803eb700341424344")).error().field, "length");
  EXPECT_EQ(decode_domain_pdu(hex("64000803eb7005414243")).error().kind,
            PduError::Kind::kNotEnoughBytes);
  EXPECT_EQ(decode_domain_pdu(hex("64000803eb70ffff41")).error().kind,
            PduError::Kind::kNotEnoughBytes);                 // 0x7FFF bytes claimed
  EXPECT_TRUE(decode_domain_pdu(hex("64000803eb7000")));      // empty user data
  EXPECT_TRUE(decode_domain_pdu(hex("64000803eb70800141")));  // 2-byte form of 1
  // Trailing bytes after fixed-size PDUs, unknown choices, bad reason.
  EXPECT_EQ(decode_domain_pdu(hex("2800")).error().field, "trailing bytes");
  EXPECT_EQ(decode_domain_pdu(hex("38000803eb00")).error().field, "trailing bytes");
  EXPECT_EQ(decode_domain_pdu(hex("3000")).error().kind, PduError::Kind::kUnexpectedMessage);
  EXPECT_EQ(decode_domain_pdu(hex("2280")).error().field, "reason");  // reason 5
  EXPECT_EQ(decode_domain_pdu(hex("2181")).error().field, "reason");  // padding bit
  EXPECT_EQ(decode_domain_pdu(hex("65000803eb7000")).error().field, "choice");
  EXPECT_EQ(decode_domain_pdu(hex("0405000100")).error().field, "subHeight");
  EXPECT_EQ(decode_domain_pdu(hex("ffff")).error().kind, PduError::Kind::kUnexpectedMessage);
  EXPECT_EQ(decode_domain_pdu(hex("38fc1803eb")).error().field, "initiator");  // > 65535
}

TEST(DomainPdu, DisconnectProviderUltimatum) {
  const Bytes dpu = encode_disconnect_provider_ultimatum();
  EXPECT_EQ(hex_encode(dpu), "0300000902f0802180");
  auto d = decode_domain_pdu_in_tpkt(dpu);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->type, DomainPduType::kDisconnectProviderUltimatum);
  EXPECT_EQ(d->reason, kReasonUserRequested);
  for (std::uint8_t reason = 0; reason <= kReasonChannelPurged; ++reason) {
    auto r = decode_domain_pdu_in_tpkt(encode_disconnect_provider_ultimatum(reason));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->reason, reason);
  }
  EXPECT_EQ(encode_disconnect_provider_ultimatum(9), dpu);
  EXPECT_STREQ(domain_pdu_name(DomainPduType::kDisconnectProviderUltimatum),
               "Disconnect Provider Ultimatum");
}

TEST(DomainPdu, EncodeChecksInitiator) {
  DomainPdu join;
  join.type = DomainPduType::kChannelJoinRequest;
  EXPECT_FALSE(encode_domain_pdu(join));
  join.initiator = 1000;
  EXPECT_FALSE(encode_domain_pdu(join));
  join.initiator = 1001;
  join.channel_id = 1004;
  EXPECT_EQ(hex_encode(encode_domain_pdu(join).value()), "38000003ec");
  DomainPdu confirm;
  confirm.type = DomainPduType::kAttachUserConfirm;
  confirm.result = 1;
  EXPECT_EQ(hex_encode(encode_domain_pdu(confirm).value()), "2c01");
  EXPECT_FALSE(decode_domain_pdu(hex("2c01")).value().initiator);
  DomainPdu erect;
  erect.type = DomainPduType::kErectDomainRequest;
  erect.sub_height = 0x10000;
  erect.sub_interval = 0x100;
  auto e = decode_domain_pdu(encode_domain_pdu(erect).value());
  EXPECT_EQ(e.value().sub_height, 0x10000u);
  EXPECT_EQ(e.value().sub_interval, 0x100u);
}

}  // namespace
}  // namespace enclave::gateway
