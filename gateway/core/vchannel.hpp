// Static virtual channel chunks (MS-RDPBCGR 2.2.6.1) and the drdynvc messages carried inside
// them (MS-RDPEDYC 2.2): what the relay needs to refuse dynamic channels by name.
//
// A static channel message is sent as chunks, each the MCS user data of one SendData PDU:
//   CHANNEL_PDU_HEADER (2.2.6.1.1): length u32le (the whole message, uncompressed),
//   flags u32le (CHANNEL_FLAG_FIRST, CHANNEL_FLAG_LAST, ...), then the chunk's data.
// A drdynvc message begins with one header byte: cbId (bits 0-1), Sp or Pri (bits 2-3), Cmd
// (bits 4-7); the fields after it depend on Cmd and on the direction (a Create from the
// server is a request, from the client a response).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "common/bytes.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

// ---- CHANNEL_PDU_HEADER ----

inline constexpr std::uint32_t kChannelFlagFirst = 0x00000001;
inline constexpr std::uint32_t kChannelFlagLast = 0x00000002;
inline constexpr std::uint32_t kChannelFlagShowProtocol = 0x00000010;
inline constexpr std::uint32_t kChannelFlagSuspend = 0x00000020;
inline constexpr std::uint32_t kChannelFlagResume = 0x00000040;
inline constexpr std::uint32_t kChannelFlagShadowPersistent = 0x00000080;
inline constexpr std::uint32_t kChannelPacketCompressed = 0x00200000;
inline constexpr std::uint32_t kChannelPacketAtFront = 0x00400000;
inline constexpr std::uint32_t kChannelPacketFlushed = 0x00800000;
inline constexpr std::uint32_t kChannelCompressionTypeMask = 0x000F0000;

// length (4) + flags (4)
inline constexpr std::size_t kChannelPduHeaderSize = 4 + 4;

struct ChannelPdu {
  std::uint32_t length = 0;  // total uncompressed length of the whole message
  std::uint32_t flags = 0;
  ByteSpan data;  // this chunk's data (points into the decoded buffer)

  bool first() const { return (flags & kChannelFlagFirst) != 0; }
  bool last() const { return (flags & kChannelFlagLast) != 0; }
  bool compressed() const { return (flags & kChannelPacketCompressed) != 0; }
};

// user_data: the MCS user data of a SendData PDU on a static channel (no security header:
// TLS only). The chunk's data is whatever follows the header; an uncompressed first chunk
// longer than the length it announces is malformed.
PduResult<ChannelPdu> decode_channel_pdu(ByteSpan user_data);
void encode_channel_pdu(std::uint32_t length, std::uint32_t flags, ByteSpan data, Bytes& out);

// ---- drdynvc (MS-RDPEDYC 2.2) ----

enum class DynvcCmd : std::uint8_t {
  kCreate = 0x01,               // 2.2.2.1 request (server) / 2.2.2.2 response (client)
  kDataFirst = 0x02,            // 2.2.3.1
  kData = 0x03,                 // 2.2.3.2
  kClose = 0x04,                // 2.2.4
  kCapability = 0x05,           // 2.2.1.1 request (server) / 2.2.1.2 response (client)
  kDataFirstCompressed = 0x06,  // 2.2.3.3
  kDataCompressed = 0x07,       // 2.2.3.4
  kSoftSyncRequest = 0x08,      // 2.2.5.1 (server)
  kSoftSyncResponse = 0x09,     // 2.2.5.2 (client)
};

enum class DynvcFrom { kServer, kClient };

inline constexpr std::int32_t kStatusAccessDenied = static_cast<std::int32_t>(0xC0000022u);
inline constexpr std::size_t kMaxDynvcChannelName = 256;  // the bytes we accept before '\0'

struct DynvcPdu {
  DynvcCmd cmd = DynvcCmd::kData;
  std::uint8_t cb_id = 0;  // size code of ChannelId: 0, 1, 2 -> 1, 2, 4 bytes
  std::uint8_t sp = 0;     // size code of Length (DATA_FIRST), priority (Create), else as sent
  std::uint32_t channel_id = 0;      // Create, DATA_FIRST, DATA, Close and the compressed forms
  std::string channel_name;          // Create request: the ANSI name without its terminator
  std::int32_t creation_status = 0;  // Create response (HRESULT)
  std::uint32_t length = 0;          // DATA_FIRST(_COMPRESSED): the whole message's length
  std::uint16_t version = 0;         // Capability request and response
  std::array<std::uint16_t, 4> priority_charges{};  // Capability request version 2 and 3
  std::uint8_t pad = 0;  // Capability and soft-sync: the pad byte, as sent
  ByteSpan data;         // data PDUs: the payload; soft-sync: the body after Pad, verbatim
};

// Decodes one drdynvc message (a reassembled message or the first chunk of one: a Create
// Request's name must be terminated inside it). Fails on cbId 3, an unknown Cmd, a Length
// size code of 3, a DATA_FIRST whose Length is below its own data, or a truncated field.
PduResult<DynvcPdu> decode_dynvc(ByteSpan data, DynvcFrom from);
// Encodes pdu as sent in direction `from`; a ChannelId or Length that does not fit its size
// code gets the smallest code that fits.
Bytes encode_dynvc(const DynvcPdu& pdu, DynvcFrom from);

// A client's Create Response refusing channel_id (e.g. with kStatusAccessDenied).
Bytes encode_dynvc_create_response(std::uint32_t channel_id, std::int32_t status);
// A Close for channel_id (either direction: the format is the same).
Bytes encode_dynvc_close(std::uint32_t channel_id);

// The size code (0, 1, 2) of the smallest field that holds v.
std::uint8_t dynvc_size_code(std::uint32_t v);

}  // namespace enclave::gateway
