#include "gateway/core/gcc.hpp"

#include <algorithm>
#include <array>
#include <string>

#include "gateway/core/mcs.hpp"

namespace enclave::gateway {
namespace {

constexpr std::string_view kClient = "client data blocks";
constexpr std::string_view kServer = "server data blocks";
constexpr std::size_t kBlockHeaderSize = 4;  // type u16le + length u16le
constexpr std::size_t kMaxBlocks = 32;
constexpr std::size_t kMaxMonitors = 16;

// TS_UD_CS_CORE field offsets inside the block's data (after the header), 2.2.1.3.2.
constexpr std::size_t kCoreRequiredSize = 128;  // version .. imeFileName
constexpr std::size_t kCoreEarlyCapabilityFlags = 140;
constexpr std::size_t kCoreServerSelectedProtocol = 208;
constexpr std::size_t kCoreEncodedSize = 212;  // through serverSelectedProtocol
constexpr std::size_t kChannelDefSize = 12;    // name[8] + options u32

struct Block {
  std::uint16_t type = 0;
  ByteSpan data;           // without the header
  std::size_t offset = 0;  // of data[0], relative to the decoder's base
};

bool is_known_block(std::uint16_t type) {
  switch (type) {
    case kCsCore:
    case kCsSecurity:
    case kCsNet:
    case kCsCluster:
    case kCsMonitor:
    case kCsMcsMsgChannel:
    case kCsMultitransport:
    case kScCore:
    case kScSecurity:
    case kScNet:
    case kScMcsMsgChannel:
    case kScMultitransport:
      return true;
    default:
      return false;
  }
}

// Splits blocks into type/length/data, checking each length.
PduResult<std::vector<Block>> split_blocks(ByteSpan blocks, std::size_t base,
                                           std::string_view pdu) {
  std::vector<Block> out;
  PduReader r(blocks, pdu);
  while (!r.empty()) {
    if (out.size() == kMaxBlocks) return fail(too_large(pdu, "blocks", kMaxBlocks + 1, kMaxBlocks));
    auto type = r.u16le("block type");
    if (!type) return error_of(type);
    auto length = r.u16le("block length");
    if (!length) return error_of(length);
    if (*length < kBlockHeaderSize)
      return fail(invalid_field(pdu, "block length", "shorter than the block header"));
    const std::size_t at = r.position();
    auto data = r.take(*length - kBlockHeaderSize, "block data");
    if (!data) return error_of(data);
    for (const Block& b : out) {
      if (b.type == *type && is_known_block(*type))
        return fail(invalid_field(pdu, "block type", "repeated block"));
    }
    out.push_back(Block{*type, *data, base + at});
  }
  return out;
}

std::string block_name(std::uint16_t type) {
  switch (type) {
    case kCsCore:
      return "CS_CORE";
    case kCsSecurity:
      return "CS_SECURITY";
    case kCsNet:
      return "CS_NET";
    case kCsCluster:
      return "CS_CLUSTER";
    case kCsMonitor:
      return "CS_MONITOR";
    case kCsMcsMsgChannel:
      return "CS_MCS_MSGCHANNEL";
    case kCsMultitransport:
      return "CS_MULTITRANSPORT";
    case kScCore:
      return "SC_CORE";
    case kScSecurity:
      return "SC_SECURITY";
    case kScNet:
      return "SC_NET";
    case kScMcsMsgChannel:
      return "SC_MCS_MSGCHANNEL";
    case kScMultitransport:
      return "SC_MULTITRANSPORT";
    default:
      return "data block";
  }
}

std::uint32_t le32(ByteSpan b, std::size_t at) {
  return static_cast<std::uint32_t>(b[at]) | (static_cast<std::uint32_t>(b[at + 1]) << 8) |
         (static_cast<std::uint32_t>(b[at + 2]) << 16) |
         (static_cast<std::uint32_t>(b[at + 3]) << 24);
}
std::uint16_t le16(ByteSpan b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8));
}

PduResult<void> need(const Block& b, std::size_t size, std::string_view field) {
  if (b.data.size() < size)
    return fail(not_enough_bytes(block_name(b.type), field, b.data.size(), size));
  return {};
}

void write_block_header(PduWriter& w, std::uint16_t type, std::size_t data_size) {
  w.u16le(type);
  w.u16le(static_cast<std::uint16_t>(kBlockHeaderSize + data_size));
}

PduResult<void> check_offset(const Bytes& pdu, std::size_t offset, std::size_t size,
                             std::string_view field) {
  if (offset > pdu.size() || pdu.size() - offset < size)
    return fail(invalid_field("MCS Connect-Initial", field, "offset outside the PDU"));
  return {};
}

}  // namespace

// ---- client ----

PduResult<ClientConnectData> decode_client_data_blocks(ByteSpan blocks, std::size_t base_offset) {
  auto split = split_blocks(blocks, base_offset, kClient);
  if (!split) return error_of(split);
  ClientConnectData d;
  bool core = false;
  for (const Block& b : *split) {
    d.block_types.push_back(b.type);
    const std::string name = block_name(b.type);
    switch (b.type) {
      case kCsCore: {
        if (auto ok = need(b, kCoreRequiredSize, "fixed part"); !ok) return error_of(ok);
        core = true;
        d.version = le32(b.data, 0);
        d.desktop_width = le16(b.data, 4);
        d.desktop_height = le16(b.data, 6);
        if (b.data.size() >= kCoreEarlyCapabilityFlags + 2) {
          d.early_capability_flags = le16(b.data, kCoreEarlyCapabilityFlags);
          d.early_capability_flags_offset = b.offset + kCoreEarlyCapabilityFlags;
        }
        if (b.data.size() >= kCoreServerSelectedProtocol + 4)
          d.server_selected_protocol = le32(b.data, kCoreServerSelectedProtocol);
        break;
      }
      case kCsSecurity:
        if (auto ok = need(b, 8, "encryptionMethods"); !ok) return error_of(ok);
        d.encryption_methods = le32(b.data, 0);
        d.ext_encryption_methods = le32(b.data, 4);
        break;
      case kCsNet: {
        if (auto ok = need(b, 4, "channelCount"); !ok) return error_of(ok);
        const std::uint32_t count = le32(b.data, 0);
        if (count > kMaxStaticChannels)
          return fail(too_large(name, "channelCount", count, kMaxStaticChannels));
        if (auto ok = need(b, 4 + count * kChannelDefSize, "channelDefArray"); !ok)
          return error_of(ok);
        for (std::size_t i = 0; i < count; ++i) {
          const std::size_t at = 4 + i * kChannelDefSize;
          ByteSpan raw = b.data.subspan(at, kChannelNameSize);
          auto nul = std::find(raw.begin(), raw.end(), std::uint8_t{0});
          if (nul == raw.end())
            return fail(invalid_field(name, "CHANNEL_DEF.name", "not null-terminated"));
          ClientChannel c;
          c.name.assign(raw.begin(), nul);
          c.options = le32(b.data, at + kChannelNameSize);
          c.index = i;
          c.name_offset = b.offset + at;
          d.channels.push_back(std::move(c));
        }
        break;
      }
      case kCsCluster:
        if (auto ok = need(b, 4, "Flags"); !ok) return error_of(ok);
        d.cluster_flags = le32(b.data, 0);
        d.cluster_flags_offset = b.offset;
        break;
      case kCsMonitor: {
        if (auto ok = need(b, 8, "monitorCount"); !ok) return error_of(ok);
        const std::uint32_t count = le32(b.data, 4);
        if (count > kMaxMonitors) return fail(too_large(name, "monitorCount", count, kMaxMonitors));
        if (auto ok = need(b, 8 + 20 * static_cast<std::size_t>(count), "monitorDefArray"); !ok)
          return error_of(ok);
        d.monitor_count = count;
        break;
      }
      case kCsMcsMsgChannel:
        if (auto ok = need(b, 4, "flags"); !ok) return error_of(ok);
        d.message_channel_flags = le32(b.data, 0);
        break;
      case kCsMultitransport:
        if (auto ok = need(b, 4, "flags"); !ok) return error_of(ok);
        d.multitransport_flags = le32(b.data, 0);
        d.multitransport_flags_offset = b.offset;
        break;
      default:
        break;  // opaque: CS_MONITOR_EX and anything newer
    }
  }
  if (!core) return fail(invalid_field(kClient, "CS_CORE", "missing"));
  return d;
}

PduResult<ClientConnectData> decode_client_connect_initial(ByteSpan tpkt) {
  auto ci = decode_connect_initial(tpkt);
  if (!ci) return error_of(ci);
  return decode_client_data_blocks(ci->blocks, ci->blocks_offset);
}

PduResult<Bytes> encode_client_data_blocks(const ClientConnectData& data) {
  Bytes out;
  PduWriter w(out);
  // CS_CORE: the RDP 10 field set through serverSelectedProtocol.
  write_block_header(w, kCsCore, kCoreEncodedSize);
  w.u32le(data.version);
  w.u16le(data.desktop_width);
  w.u16le(data.desktop_height);
  w.u16le(0xCA01);      // colorDepth RNS_UD_COLOR_8BPP
  w.u16le(0xAA03);      // SASSequence RNS_UD_SAS_DEL
  w.u32le(0x00000409);  // keyboardLayout en-US
  w.u32le(2600);        // clientBuild
  Bytes client_name = utf8_to_utf16le("enclave");
  client_name.resize(32, 0);
  w.put(client_name);
  w.u32le(4);                            // keyboardType IBM enhanced
  w.u32le(0);                            // keyboardSubType
  w.u32le(12);                           // keyboardFunctionKey
  for (int i = 0; i < 64; ++i) w.u8(0);  // imeFileName
  w.u16le(0xCA01);                       // postBeta2ColorDepth
  w.u16le(1);                            // clientProductId
  w.u32le(0);                            // serialNumber
  w.u16le(24);                           // highColorDepth
  w.u16le(0x000F);                       // supportedColorDepths 24/16/15/32
  w.u16le(data.early_capability_flags.value_or(0x0001));
  for (int i = 0; i < 64; ++i) w.u8(0);  // clientDigProductId
  w.u8(0);                               // connectionType
  w.u8(0);                               // pad1octet
  w.u32le(data.server_selected_protocol.value_or(0x00000001));
  if (data.encryption_methods) {
    write_block_header(w, kCsSecurity, 8);
    w.u32le(*data.encryption_methods);
    w.u32le(data.ext_encryption_methods.value_or(0));
  }
  if (!data.channels.empty()) {
    if (data.channels.size() > kMaxStaticChannels)
      return fail(too_large(kClient, "channelCount", data.channels.size(), kMaxStaticChannels));
    write_block_header(w, kCsNet, 4 + data.channels.size() * kChannelDefSize);
    w.u32le(static_cast<std::uint32_t>(data.channels.size()));
    for (const ClientChannel& c : data.channels) {
      if (c.name.size() >= kChannelNameSize || c.name.find('\0') != std::string::npos)
        return fail(invalid_field(kClient, "CHANNEL_DEF.name", "longer than 7 bytes or has NUL"));
      Bytes name(c.name.begin(), c.name.end());
      name.resize(kChannelNameSize, 0);
      w.put(name);
      w.u32le(c.options);
    }
  }
  if (data.cluster_flags) {
    write_block_header(w, kCsCluster, 8);
    w.u32le(*data.cluster_flags);
    w.u32le(0);  // RedirectedSessionID
  }
  if (data.message_channel_flags) {
    write_block_header(w, kCsMcsMsgChannel, 4);
    w.u32le(*data.message_channel_flags);
  }
  if (data.multitransport_flags) {
    write_block_header(w, kCsMultitransport, 4);
    w.u32le(*data.multitransport_flags);
  }
  return out;
}

PduResult<void> rename_channel_in_place(Bytes& pdu, const ClientChannel& channel,
                                        std::string_view new_name) {
  if (new_name.empty() || new_name.size() >= kChannelNameSize ||
      new_name.find('\0') != std::string_view::npos)
    return fail(invalid_field("CS_NET", "CHANNEL_DEF.name", "new name not 1 to 7 bytes"));
  if (auto ok = check_offset(pdu, channel.name_offset, kChannelNameSize, "CHANNEL_DEF.name"); !ok)
    return ok;
  auto at = pdu.begin() + static_cast<std::ptrdiff_t>(channel.name_offset);
  // The bytes must still be the name this channel was decoded with.
  if (channel.name.size() >= kChannelNameSize ||
      !std::equal(channel.name.begin(), channel.name.end(), at,
                  [](char c, std::uint8_t b) { return static_cast<std::uint8_t>(c) == b; }) ||
      at[static_cast<std::ptrdiff_t>(channel.name.size())] != 0)
    return fail(invalid_field("CS_NET", "CHANNEL_DEF.name", "PDU does not hold this channel"));
  std::fill(at, at + kChannelNameSize, std::uint8_t{0});
  std::copy(new_name.begin(), new_name.end(), at);
  return {};
}

PduResult<void> clear_cluster_redirection(Bytes& pdu, ClientConnectData& data) {
  if (!data.cluster_flags || !data.cluster_flags_offset) return {};
  if (auto ok = check_offset(pdu, *data.cluster_flags_offset, 4, "CS_CLUSTER.Flags"); !ok)
    return ok;
  const std::uint32_t flags = *data.cluster_flags & ~kClusterRedirectionSupported;
  for (std::size_t i = 0; i < 4; ++i)
    pdu[*data.cluster_flags_offset + i] = static_cast<std::uint8_t>(flags >> (8 * i));
  data.cluster_flags = flags;
  return {};
}

PduResult<void> clear_multitransport(Bytes& pdu, ClientConnectData& data) {
  if (!data.multitransport_flags || !data.multitransport_flags_offset) return {};
  if (auto ok = check_offset(pdu, *data.multitransport_flags_offset, 4, "CS_MULTITRANSPORT.flags");
      !ok)
    return ok;
  std::fill_n(pdu.begin() + static_cast<std::ptrdiff_t>(*data.multitransport_flags_offset), 4,
              std::uint8_t{0});
  data.multitransport_flags = 0;
  return {};
}

// ---- server ----

PduResult<ServerConnectData> decode_server_data_blocks(ByteSpan blocks, std::size_t base_offset) {
  auto split = split_blocks(blocks, base_offset, kServer);
  if (!split) return error_of(split);
  ServerConnectData d;
  bool core = false, security = false, net = false;
  for (const Block& b : *split) {
    d.block_types.push_back(b.type);
    const std::string name = block_name(b.type);
    switch (b.type) {
      case kScCore:
        if (auto ok = need(b, 4, "version"); !ok) return error_of(ok);
        core = true;
        d.version = le32(b.data, 0);
        if (b.data.size() >= 8) d.client_requested_protocols = le32(b.data, 4);
        if (b.data.size() >= 12) d.early_capability_flags = le32(b.data, 8);
        break;
      case kScSecurity: {
        if (auto ok = need(b, 8, "encryptionLevel"); !ok) return error_of(ok);
        security = true;
        d.encryption_method = le32(b.data, 0);
        d.encryption_level = le32(b.data, 4);
        if (b.data.size() > 8) {
          if (auto ok = need(b, 16, "serverCertLen"); !ok) return error_of(ok);
          const std::size_t random_len = le32(b.data, 8);
          const std::size_t cert_len = le32(b.data, 12);
          if (random_len > b.data.size() || cert_len > b.data.size() ||
              16 + random_len + cert_len > b.data.size())
            return fail(
                not_enough_bytes(name, "serverCertificate", b.data.size(),
                                 16 + std::min<std::size_t>(random_len + cert_len, 0xFFFFFFFF)));
        }
        break;
      }
      case kScNet: {
        if (auto ok = need(b, 4, "channelCount"); !ok) return error_of(ok);
        net = true;
        d.io_channel_id = le16(b.data, 0);
        const std::uint16_t count = le16(b.data, 2);
        if (count > kMaxStaticChannels)
          return fail(too_large(name, "channelCount", count, kMaxStaticChannels));
        if (auto ok = need(b, 4 + 2 * static_cast<std::size_t>(count), "channelIdArray"); !ok)
          return error_of(ok);
        d.channel_ids.clear();
        for (std::size_t i = 0; i < count; ++i) d.channel_ids.push_back(le16(b.data, 4 + 2 * i));
        break;
      }
      case kScMcsMsgChannel:
        if (auto ok = need(b, 2, "MCSChannelID"); !ok) return error_of(ok);
        d.message_channel_id = le16(b.data, 0);
        break;
      case kScMultitransport:
        if (auto ok = need(b, 4, "flags"); !ok) return error_of(ok);
        d.multitransport_flags = le32(b.data, 0);
        d.multitransport_flags_offset = b.offset;
        break;
      default:
        break;
    }
  }
  if (!core) return fail(invalid_field(kServer, "SC_CORE", "missing"));
  if (!security) return fail(invalid_field(kServer, "SC_SECURITY", "missing"));
  if (!net) return fail(invalid_field(kServer, "SC_NET", "missing"));
  return d;
}

PduResult<ServerConnectData> decode_server_connect_response(ByteSpan tpkt) {
  auto cr = decode_connect_response(tpkt);
  if (!cr) return error_of(cr);
  return decode_server_data_blocks(cr->blocks, cr->blocks_offset);
}

PduResult<Bytes> encode_server_data_blocks(const ServerConnectData& data) {
  if (data.encryption_method != kEncryptionMethodNone ||
      data.encryption_level != kEncryptionLevelNone)
    return fail(invalid_field(kServer, "SC_SECURITY", "only TLS (method and level 0) encodable"));
  if (data.channel_ids.size() > kMaxStaticChannels)
    return fail(too_large(kServer, "channelCount", data.channel_ids.size(), kMaxStaticChannels));
  Bytes out;
  PduWriter w(out);
  const bool with_protocols = data.client_requested_protocols || data.early_capability_flags;
  write_block_header(w, kScCore, data.early_capability_flags ? 12 : with_protocols ? 8 : 4);
  w.u32le(data.version);
  if (with_protocols) w.u32le(data.client_requested_protocols.value_or(0));
  if (data.early_capability_flags) w.u32le(*data.early_capability_flags);
  const bool pad = data.channel_ids.size() % 2 == 1;
  write_block_header(w, kScNet, 4 + 2 * data.channel_ids.size() + (pad ? 2 : 0));
  w.u16le(data.io_channel_id);
  w.u16le(static_cast<std::uint16_t>(data.channel_ids.size()));
  for (std::uint16_t id : data.channel_ids) w.u16le(id);
  if (pad) w.u16le(0);
  write_block_header(w, kScSecurity, 8);
  w.u32le(data.encryption_method);
  w.u32le(data.encryption_level);
  if (data.message_channel_id) {
    write_block_header(w, kScMcsMsgChannel, 2);
    w.u16le(*data.message_channel_id);
  }
  if (data.multitransport_flags) {
    write_block_header(w, kScMultitransport, 4);
    w.u32le(*data.multitransport_flags);
  }
  return out;
}

}  // namespace enclave::gateway
