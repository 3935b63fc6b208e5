// The RDP data blocks carried in the GCC user data of MCS Connect-Initial (client to server,
// MS-RDPBCGR 2.2.1.3.1 onwards) and Connect-Response (server to client, 2.2.1.4.1 onwards).
// Each block: type u16le, length u16le (including this 4-byte header), then its fields,
// all little-endian.
//
// The relay does not re-encode the client's Connect-Initial: it renames disallowed static
// channels and clears flags IN PLACE (no length changes), using the byte offsets the client
// decoder reports relative to the TPKT PDU it was given. From the server's Connect-Response
// it learns the channel ids the host assigned (in the client's channel order).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

// Block types (MS-RDPBCGR 2.2.1.3.1 User Data Header).
inline constexpr std::uint16_t kCsCore = 0xC001;
inline constexpr std::uint16_t kCsSecurity = 0xC002;
inline constexpr std::uint16_t kCsNet = 0xC003;
inline constexpr std::uint16_t kCsCluster = 0xC004;
inline constexpr std::uint16_t kCsMonitor = 0xC005;
inline constexpr std::uint16_t kCsMcsMsgChannel = 0xC006;
inline constexpr std::uint16_t kCsMonitorEx = 0xC008;
inline constexpr std::uint16_t kCsMultitransport = 0xC00A;
inline constexpr std::uint16_t kScCore = 0x0C01;
inline constexpr std::uint16_t kScSecurity = 0x0C02;
inline constexpr std::uint16_t kScNet = 0x0C03;
inline constexpr std::uint16_t kScMcsMsgChannel = 0x0C04;
inline constexpr std::uint16_t kScMultitransport = 0x0C08;

// CS_NET / SC_NET hold at most this many static channels (CHANNEL_MAX_COUNT, 2.2.1.3.4).
inline constexpr std::size_t kMaxStaticChannels = 31;
inline constexpr std::size_t kChannelNameSize = 8;  // CHANNEL_DEF.name: 7 ANSI chars + NUL
// CS_CLUSTER flags (2.2.1.3.5).
inline constexpr std::uint32_t kClusterRedirectionSupported = 0x00000001;
inline constexpr std::uint32_t kClusterRedirectedSessionIdValid = 0x00000002;
inline constexpr std::uint32_t kClusterRedirectedSmartcard = 0x00000040;
// SC_SECURITY encryptionMethod / encryptionLevel meaning "no legacy RDP encryption": both
// must be 0 when TLS protects the connection (2.2.1.4.3).
inline constexpr std::uint32_t kEncryptionMethodNone = 0;
inline constexpr std::uint32_t kEncryptionLevelNone = 0;

// One CHANNEL_DEF of CS_NET (2.2.1.3.4.1): name[8] ANSI null-terminated, options u32le.
struct ClientChannel {
  std::string name;  // the bytes before the first NUL (at most 7)
  std::uint32_t options = 0;
  std::size_t index = 0;        // position in CS_NET: the host assigns ids in this order
  std::size_t name_offset = 0;  // of name[0] in the PDU the decoder was given
  bool operator==(const ClientChannel&) const = default;
};

// What the relay needs from the client data blocks. Offsets are relative to the span given
// to the decoder (the TPKT PDU for decode_client_connect_initial).
struct ClientConnectData {
  // CS_CORE (2.2.1.3.2), required: version, desktopWidth, desktopHeight; the optional fields
  // below are present when the block is long enough to hold them.
  std::uint32_t version = 0x00080004;  // RDP 5.0 onwards; 0x0008000C = RDP 10.7
  std::uint16_t desktop_width = 1024;
  std::uint16_t desktop_height = 768;
  std::optional<std::uint16_t> early_capability_flags;
  std::optional<std::size_t> early_capability_flags_offset;
  std::optional<std::uint32_t> server_selected_protocol;
  // CS_SECURITY (2.2.1.3.3).
  std::optional<std::uint32_t> encryption_methods;
  std::optional<std::uint32_t> ext_encryption_methods;
  // CS_NET (2.2.1.3.4): the static channels in order; empty when the block is absent.
  std::vector<ClientChannel> channels;
  // CS_CLUSTER (2.2.1.3.5).
  std::optional<std::uint32_t> cluster_flags;
  std::optional<std::size_t> cluster_flags_offset;
  // CS_MCS_MSGCHANNEL (2.2.1.3.7).
  std::optional<std::uint32_t> message_channel_flags;
  // CS_MULTITRANSPORT (2.2.1.3.8).
  std::optional<std::uint32_t> multitransport_flags;
  std::optional<std::size_t> multitransport_flags_offset;
  // CS_MONITOR (2.2.1.3.6): monitorCount (at most 16).
  std::optional<std::uint32_t> monitor_count;
  // Every block's type in order, including the ones kept opaque (CS_MONITOR_EX, ...).
  std::vector<std::uint16_t> block_types;
};

// Decodes client data blocks (the `blocks` of decode_connect_initial); offsets are
// `base_offset` + position in blocks. Errors: a block length below 4 or past the end, a
// known block shorter than its fixed part, CS_CORE missing, a block type repeated,
// channelCount above 31 or longer than the block, a channel name without a NUL in its 8
// bytes, monitorCount above 16, more than 32 blocks.
PduResult<ClientConnectData> decode_client_data_blocks(ByteSpan blocks,
                                                       std::size_t base_offset = 0);
// Decodes one complete TPKT PDU with the client's MCS Connect-Initial (mcs.hpp) and its
// data blocks; offsets are relative to `tpkt`.
PduResult<ClientConnectData> decode_client_connect_initial(ByteSpan tpkt);

// Writes client data blocks from `data` (offsets and block_types are ignored): CS_CORE of
// 216 bytes (RDP 10 field set with serverSelectedProtocol; earlyCapabilityFlags default
// 0x0001 and serverSelectedProtocol default PROTOCOL_SSL when unset), CS_SECURITY if
// encryption_methods is set, CS_NET if there are channels (names must be <= 7 bytes without
// NUL), CS_CLUSTER, CS_MCS_MSGCHANNEL and CS_MULTITRANSPORT if set. For tests and tools:
// decode(encode(x)) gives x's fields back.
PduResult<Bytes> encode_client_data_blocks(const ClientConnectData& data);

// Overwrites the 8-byte name of `channel` in `pdu` (the bytes the channel was decoded from)
// with new_name null-padded to 8 bytes. new_name: 1 to 7 bytes, no NUL. Errors if the name
// does not fit or the offset is outside pdu (a ClientChannel from another PDU).
PduResult<void> rename_channel_in_place(Bytes& pdu, const ClientChannel& channel,
                                        std::string_view new_name);
// Clears REDIRECTION_SUPPORTED in CS_CLUSTER flags in place (and in `data`), so the host
// never sends a Server Redirection PDU expecting the client to follow it. No-op when the
// client sent no CS_CLUSTER. Errors if the offset is outside pdu.
PduResult<void> clear_cluster_redirection(Bytes& pdu, ClientConnectData& data);
// Sets CS_MULTITRANSPORT flags to 0 in place (and in `data`): the client then offers no UDP
// side channel the gateway could not see. No-op when absent. Errors if outside pdu.
PduResult<void> clear_multitransport(Bytes& pdu, ClientConnectData& data);

// What the relay needs from the server data blocks.
struct ServerConnectData {
  // SC_CORE (2.2.1.4.2), required: version; clientRequestedProtocols and
  // earlyCapabilityFlags when the block holds them.
  std::uint32_t version = 0x00080004;
  std::optional<std::uint32_t> client_requested_protocols;
  std::optional<std::uint32_t> early_capability_flags;
  // SC_SECURITY (2.2.1.4.3), required: with TLS both are 0 (the relay refuses anything
  // else). With legacy encryption the server random and certificate follow; they are
  // length-checked and skipped.
  std::uint32_t encryption_method = kEncryptionMethodNone;
  std::uint32_t encryption_level = kEncryptionLevelNone;
  // SC_NET (2.2.1.4.4), required: the I/O channel and one id per client channel, in the
  // client's CS_NET order (0 for a channel the server did not create).
  std::uint16_t io_channel_id = 1003;
  std::vector<std::uint16_t> channel_ids;
  // SC_MCS_MSGCHANNEL (2.2.1.4.5).
  std::optional<std::uint16_t> message_channel_id;
  // SC_MULTITRANSPORT (2.2.1.4.6).
  std::optional<std::uint32_t> multitransport_flags;
  std::optional<std::size_t> multitransport_flags_offset;
  std::vector<std::uint16_t> block_types;
};

// Decodes server data blocks (the `blocks` of decode_connect_response); offsets are
// base_offset + position. Errors: bad block lengths, SC_CORE / SC_SECURITY / SC_NET missing,
// a repeated block, channelCount above 31 or past the block, serverRandomLen /
// serverCertLen past the block, more than 32 blocks.
PduResult<ServerConnectData> decode_server_data_blocks(ByteSpan blocks,
                                                       std::size_t base_offset = 0);
// Decodes one complete TPKT PDU with the server's MCS Connect-Response and its data blocks.
PduResult<ServerConnectData> decode_server_connect_response(ByteSpan tpkt);

// Writes server data blocks in the order FreeRDP and Windows servers use: SC_CORE (12 bytes of
// fields with early_capability_flags, 8 with only client_requested_protocols, else 4), SC_NET
// (padded to a multiple of 4 bytes), SC_SECURITY (8 bytes: only method and level 0 are
// encodable, else kInvalidField), then SC_MCS_MSGCHANNEL and SC_MULTITRANSPORT if set.
PduResult<Bytes> encode_server_data_blocks(const ServerConnectData& data);

}  // namespace enclave::gateway
