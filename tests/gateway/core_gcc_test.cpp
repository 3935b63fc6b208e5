// Client and server data blocks inside the MCS connect PDUs: what the relay reads, and the
// in-place edits it makes, on xfreerdp / freerdp-shadow-cli bytes.
#include <gtest/gtest.h>

#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "tests/gateway/core_golden_vectors.hpp"

namespace enclave::gateway {
namespace {

Bytes hex(std::string_view h) {
  return hex_decode(h).value();
}

std::string at(const Bytes& pdu, std::size_t offset, std::size_t n) {
  return std::string(pdu.begin() + static_cast<std::ptrdiff_t>(offset),
                     pdu.begin() + static_cast<std::ptrdiff_t>(offset + n));
}

TEST(ClientBlocks, DecodesXfreerdpConnectInitial) {
  const Bytes pdu = hex(golden::kConnectInitial);
  auto d = decode_client_connect_initial(pdu);
  ASSERT_TRUE(d) << d.error().describe();
  EXPECT_EQ(d->version, 0x0008000Cu);
  EXPECT_EQ(d->desktop_width, 800);
  EXPECT_EQ(d->desktop_height, 600);
  EXPECT_EQ(d->server_selected_protocol, 1u);
  ASSERT_TRUE(d->early_capability_flags_offset);
  EXPECT_EQ(pdu[*d->early_capability_flags_offset], *d->early_capability_flags & 0xFF);
  EXPECT_EQ(d->encryption_methods, 0u);
  ASSERT_EQ(d->channels.size(), 4u);
  const char* names[] = {"rdpdr", "rdpsnd", "cliprdr", "drdynvc"};
  const std::uint32_t options[] = {0xC0800000, 0xC0000000, 0xC0A00000, 0xC0800000};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(d->channels[i].name, names[i]);
    EXPECT_EQ(d->channels[i].options, options[i]);
    EXPECT_EQ(d->channels[i].index, i);
    EXPECT_EQ(at(pdu, d->channels[i].name_offset, d->channels[i].name.size()), names[i]);
  }
  EXPECT_EQ(d->cluster_flags, 0x0Du);
  EXPECT_EQ(pdu[*d->cluster_flags_offset], 0x0D);
  EXPECT_EQ(d->message_channel_flags, 0u);
  EXPECT_EQ(d->multitransport_flags, 0u);
  EXPECT_EQ(d->block_types, (std::vector<std::uint16_t>{kCsCore, kCsCluster, kCsSecurity, kCsNet,
                                                        kCsMcsMsgChannel, kCsMultitransport}));
}

TEST(ClientBlocks, RenameAndClearInPlaceKeepEveryLength) {
  const Bytes original = hex(golden::kConnectInitial);
  Bytes pdu = original;
  auto d = decode_client_connect_initial(pdu).value();
  ASSERT_TRUE(rename_channel_in_place(pdu, d.channels[2], "_xxxxxx"));
  ASSERT_TRUE(rename_channel_in_place(pdu, d.channels[0], "x"));
  ASSERT_TRUE(clear_cluster_redirection(pdu, d));
  EXPECT_EQ(d.cluster_flags, 0x0Cu);
  ASSERT_TRUE(clear_multitransport(pdu, d));
  EXPECT_EQ(pdu.size(), original.size());

  auto again = decode_client_connect_initial(pdu);
  ASSERT_TRUE(again) << again.error().describe();
  EXPECT_EQ(again->channels[0].name, "x");
  EXPECT_EQ(again->channels[1].name, "rdpsnd");
  EXPECT_EQ(again->channels[2].name, "_xxxxxx");
  EXPECT_EQ(again->channels[2].options, 0xC0A00000u);
  EXPECT_EQ(again->cluster_flags, 0x0Cu);
  // Only the two names and one flag byte changed.
  std::size_t changed = 0;
  for (std::size_t i = 0; i < pdu.size(); ++i) changed += pdu[i] != original[i];
  EXPECT_EQ(changed, 7u + 5u + 1u);
  // The old ClientChannel no longer matches the PDU; bad names and offsets are refused.
  EXPECT_FALSE(rename_channel_in_place(pdu, d.channels[2], "abc"));
  EXPECT_FALSE(rename_channel_in_place(pdu, again->channels[1], "12345678"));
  EXPECT_FALSE(rename_channel_in_place(pdu, again->channels[1], ""));
  EXPECT_FALSE(rename_channel_in_place(pdu, again->channels[1], std::string("a\0b", 3)));
  ClientChannel far = again->channels[1];
  far.name_offset = pdu.size() - 4;
  EXPECT_FALSE(rename_channel_in_place(pdu, far, "abc"));
  far.name_offset = static_cast<std::size_t>(-1);
  EXPECT_FALSE(rename_channel_in_place(pdu, far, "abc"));
  ClientConnectData bad = *again;
  bad.cluster_flags_offset = pdu.size();
  EXPECT_FALSE(clear_cluster_redirection(pdu, bad));
  ClientConnectData none;  // no CS_CLUSTER / CS_MULTITRANSPORT: nothing to do
  EXPECT_TRUE(clear_cluster_redirection(pdu, none));
  EXPECT_TRUE(clear_multitransport(pdu, none));
}

TEST(ClientBlocks, EncodeDecodeAgree) {
  ClientConnectData d;
  d.version = 0x00080004;
  d.desktop_width = 1920;
  d.desktop_height = 1080;
  d.early_capability_flags = 0x07C1;
  d.server_selected_protocol = 1;
  d.encryption_methods = 0;
  d.ext_encryption_methods = 0;
  for (const char* name : {"rdpdr", "cliprdr", "drdynvc", "rail"})
    d.channels.push_back({name, 0xC0000000, 0, 0});
  d.cluster_flags = kClusterRedirectionSupported;
  d.message_channel_flags = 0;
  d.multitransport_flags = 0x305;
  auto blocks = encode_client_data_blocks(d);
  ASSERT_TRUE(blocks);
  auto pdu = encode_connect_initial({}, *blocks).value();
  auto back = decode_client_connect_initial(pdu);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->desktop_width, 1920);
  EXPECT_EQ(back->early_capability_flags, 0x07C1);
  EXPECT_EQ(back->server_selected_protocol, 1u);
  ASSERT_EQ(back->channels.size(), 4u);
  EXPECT_EQ(back->channels[3].name, "rail");
  EXPECT_EQ(at(pdu, back->channels[3].name_offset, 4), "rail");
  EXPECT_EQ(back->cluster_flags, 1u);
  EXPECT_EQ(back->multitransport_flags, 0x305u);
  EXPECT_EQ(back->message_channel_flags, 0u);
  EXPECT_EQ(back->encryption_methods, 0u);
  Bytes edit = pdu;
  ASSERT_TRUE(clear_multitransport(edit, *back));
  EXPECT_EQ(decode_client_connect_initial(edit).value().multitransport_flags, 0u);

  d.channels.push_back({"toolong8", 0, 0, 0});
  EXPECT_FALSE(encode_client_data_blocks(d));
  d.channels.assign(32, {"a", 0, 0, 0});
  EXPECT_FALSE(encode_client_data_blocks(d));
}

TEST(ClientBlocks, RenamesNonAsciiNames) {
  // A name with a byte above 0x7F (found by fuzz_mcs: char vs byte comparison).
  ClientConnectData d;
  d.channels.push_back({"rd\xF0snd", 0, 0, 0});
  auto pdu = encode_connect_initial({}, encode_client_data_blocks(d).value()).value();
  auto back = decode_client_connect_initial(pdu).value();
  ASSERT_EQ(back.channels[0].name, "rd\xF0snd");
  ASSERT_TRUE(rename_channel_in_place(pdu, back.channels[0], "_denied"));
  EXPECT_EQ(decode_client_connect_initial(pdu).value().channels[0].name, "_denied");
}

// Client blocks as bytes, for the malformed cases: CS_CORE of 132 bytes plus `more`.
Bytes client_blocks(const Bytes& more) {
  Bytes b{0x01, 0xC0, 0x84, 0x00};
  b.resize(4 + 128, 0);
  b.insert(b.end(), more.begin(), more.end());
  return b;
}

TEST(ClientBlocks, RejectsMalformed) {
  auto err = [](const Bytes& blocks) {
    auto r = decode_client_data_blocks(blocks);
    EXPECT_FALSE(r);
    return r ? PduError{} : r.error();
  };
  EXPECT_TRUE(decode_client_data_blocks(client_blocks({})));
  EXPECT_EQ(err({}).field, "CS_CORE");                       // no CS_CORE
  EXPECT_EQ(err({0x01, 0xC0, 0x08, 0x00, 0, 0, 0, 0}).kind,  // CS_CORE too short
            PduError::Kind::kNotEnoughBytes);
  EXPECT_EQ(err(client_blocks({0x03, 0xC0, 0x03, 0x00})).field, "block length");  // < 4
  EXPECT_EQ(err(client_blocks({0x03, 0xC0, 0x09, 0x00, 0, 0, 0, 0})).kind,        // past the end
            PduError::Kind::kNotEnoughBytes);
  EXPECT_EQ(err(client_blocks({0x03, 0xC0})).kind, PduError::Kind::kNotEnoughBytes);
  // channelCount 32.
  EXPECT_EQ(err(client_blocks({0x03, 0xC0, 0x08, 0x00, 32, 0, 0, 0})).kind,
            PduError::Kind::kTooLarge);
  // channelCount 0xFFFFFFFF: refused before anything is sized by it.
  EXPECT_EQ(err(client_blocks({0x03, 0xC0, 0x08, 0x00, 0xFF, 0xFF, 0xFF, 0xFF})).kind,
            PduError::Kind::kTooLarge);
  // channelCount 1 with no CHANNEL_DEF.
  EXPECT_EQ(err(client_blocks({0x03, 0xC0, 0x08, 0x00, 1, 0, 0, 0})).kind,
            PduError::Kind::kNotEnoughBytes);
  // A name with no NUL in its 8 bytes.
  EXPECT_EQ(err(client_blocks({0x03, 0xC0, 0x14, 0x00, 1,   0,   0, 0, 'a', 'b',
                               'c',  'd',  'e',  'f',  'g', 'h', 0, 0, 0,   0}))
                .field,
            "CHANNEL_DEF.name");
  // CS_NET twice.
  EXPECT_EQ(
      err(client_blocks({0x03, 0xC0, 0x08, 0x00, 0, 0, 0, 0, 0x03, 0xC0, 0x08, 0x00, 0, 0, 0, 0}))
          .field,
      "block type");
  // monitorCount 17.
  EXPECT_EQ(err(client_blocks({0x05, 0xC0, 0x0C, 0x00, 0, 0, 0, 0, 17, 0, 0, 0})).kind,
            PduError::Kind::kTooLarge);
  // Unknown blocks are kept opaque, even repeated.
  auto opaque = decode_client_data_blocks(
      client_blocks({0x08, 0xC0, 0x04, 0x00, 0x08, 0xC0, 0x05, 0x00, 0x00}));
  ASSERT_TRUE(opaque);
  EXPECT_EQ(opaque->block_types.size(), 3u);
  // More than 32 blocks.
  Bytes many;
  for (int i = 0; i < 40; ++i) many.insert(many.end(), {0x99, 0xC0, 0x04, 0x00});
  EXPECT_EQ(err(client_blocks(many)).kind, PduError::Kind::kTooLarge);
}

TEST(ClientBlocks, TruncationsFailOrEndOnABlockBoundary) {
  const Bytes pdu = hex(golden::kConnectInitial);
  auto ci = decode_connect_initial(pdu).value();
  std::size_t boundaries = 0;
  for (std::size_t n = 0; n < ci.blocks.size(); ++n) {
    auto r = decode_client_data_blocks(ci.blocks.first(n));
    if (r) {
      ++boundaries;  // complete blocks up to n, CS_CORE among them
      continue;
    }
    EXPECT_TRUE(r.error().kind == PduError::Kind::kNotEnoughBytes || r.error().field == "CS_CORE")
        << n << ": " << r.error().describe();
  }
  EXPECT_EQ(boundaries, 5u);  // after CS_CORE, CS_CLUSTER, CS_SECURITY, CS_NET, MSGCHANNEL
}

TEST(ServerBlocks, DecodesShadowServerConnectResponse) {
  const Bytes pdu = hex(golden::kConnectResponse);
  auto d = decode_server_connect_response(pdu);
  ASSERT_TRUE(d) << d.error().describe();
  EXPECT_EQ(d->version, 0x0008000Cu);
  EXPECT_EQ(d->client_requested_protocols, 1u);
  EXPECT_EQ(d->early_capability_flags, 0u);
  EXPECT_EQ(d->encryption_method, kEncryptionMethodNone);
  EXPECT_EQ(d->encryption_level, kEncryptionLevelNone);
  EXPECT_EQ(d->io_channel_id, 1003);
  EXPECT_EQ(d->channel_ids, (std::vector<std::uint16_t>{1004, 1005, 1006, 1007}));
  EXPECT_EQ(d->message_channel_id, 1008);
  EXPECT_FALSE(d->multitransport_flags);
  // Encoding the decoded fields gives the same blocks back.
  auto cr = decode_connect_response(pdu).value();
  auto blocks = encode_server_data_blocks(*d);
  ASSERT_TRUE(blocks);
  EXPECT_EQ(hex_encode(*blocks), hex_encode(Bytes(cr.blocks.begin(), cr.blocks.end())));
}

TEST(ServerBlocks, OddChannelCountPaddingAndMultitransport) {
  ServerConnectData d;
  d.channel_ids = {1004, 1005, 0};
  d.multitransport_flags = 0x101;
  auto blocks = encode_server_data_blocks(d).value();
  auto back = decode_server_data_blocks(blocks, 100);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(back->channel_ids, d.channel_ids);
  EXPECT_EQ(back->multitransport_flags, 0x101u);
  EXPECT_EQ(blocks[*back->multitransport_flags_offset - 100], 0x01);
  EXPECT_FALSE(back->client_requested_protocols);
  d.encryption_level = 2;
  EXPECT_FALSE(encode_server_data_blocks(d));
}

TEST(ServerBlocks, LegacyEncryptionIsDecodedAndLengthChecked) {
  // SC_CORE, SC_NET (no channels), SC_SECURITY method 2 level 2 with a 32-byte random and a
  // 4-byte "certificate".
  Bytes b{0x01, 0x0C, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00, 0x03, 0x0C, 0x08, 0x00,
          0xEB, 0x03, 0x00, 0x00, 0x02, 0x0C, 0x38, 0x00, 0x02, 0,    0,    0,
          0x02, 0,    0,    0,    32,   0,    0,    0,    4,    0,    0,    0};
  b.resize(b.size() + 36, 0x11);
  auto d = decode_server_data_blocks(b);
  ASSERT_TRUE(d) << d.error().describe();
  EXPECT_EQ(d->encryption_method, 2u);
  EXPECT_EQ(d->encryption_level, 2u);
  b[32] = 5;  // serverCertLen past the block
  EXPECT_EQ(decode_server_data_blocks(b).error().kind, PduError::Kind::kNotEnoughBytes);
  b[32] = 0xFF;
  b[35] = 0xFF;
  EXPECT_EQ(decode_server_data_blocks(b).error().kind, PduError::Kind::kNotEnoughBytes);
}

TEST(ServerBlocks, RejectsMalformed) {
  auto field = [](const Bytes& b) {
    auto r = decode_server_data_blocks(b);
    EXPECT_FALSE(r);
    return r ? std::string("ok") : r.error().field;
  };
  const Bytes core{0x01, 0x0C, 0x08, 0x00, 0x04, 0x00, 0x08, 0x00};
  const Bytes sec{0x02, 0x0C, 0x0C, 0x00, 0, 0, 0, 0, 0, 0, 0, 0};
  const Bytes net{0x03, 0x0C, 0x08, 0x00, 0xEB, 0x03, 0x00, 0x00};
  auto cat = [](std::initializer_list<Bytes> parts) {
    Bytes out;
    for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
  };
  EXPECT_TRUE(decode_server_data_blocks(cat({core, sec, net})));
  EXPECT_EQ(field(cat({sec, net})), "SC_CORE");
  EXPECT_EQ(field(cat({core, net})), "SC_SECURITY");
  EXPECT_EQ(field(cat({core, sec})), "SC_NET");
  EXPECT_EQ(field(cat({core, sec, net, net})), "block type");
  EXPECT_EQ(field(cat({core, sec, Bytes{0x03, 0x0C, 0x08, 0x00, 0xEB, 0x03, 32, 0x00}})),
            "channelCount");
  EXPECT_EQ(field(cat({core, sec, Bytes{0x03, 0x0C, 0x08, 0x00, 0xEB, 0x03, 2, 0x00}})),
            "channelIdArray");
  EXPECT_EQ(field(cat({core, sec, net, Bytes{0x04, 0x0C, 0x05, 0x00, 0x01}})), "MCSChannelID");
}

}  // namespace
}  // namespace enclave::gateway
