// TPKT (RFC 1006 / T.123), X.224 (ISO 8073 class 0) and the RDP negotiation structures that
// ride in the X.224 connection PDUs (MS-RDPBCGR 2.2.1.1 and 2.2.1.2), plus the frame
// splitter that tells TPKT (slow-path) from fast-path PDUs in a relayed stream
// (MS-RDPBCGR 2.2.8.1.2 client to server, 2.2.9.1.2 server to client).
//
// Every decoder here takes ONE complete TPKT PDU (as split_frame / complete size found it)
// and checks that the TPKT length equals the span's size. Encoders return complete TPKT PDUs.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/bytes.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

// ---- TPKT (T.123 section 8, RFC 1006 section 6) ----
//   version u8 = 3, reserved u8 = 0, length u16be (the whole PDU including these 4 bytes)
inline constexpr std::uint8_t kTpktVersion = 3;
inline constexpr std::size_t kTpktHeaderSize = 4;
// The smallest TPKT PDU RDP uses: the header plus an X.224 Data TPDU header (3 bytes).
inline constexpr std::size_t kTpktMinSize = 7;
inline constexpr std::size_t kTpktMaxSize = 0xFFFF;

// ---- fast-path (MS-RDPBCGR 2.2.8.1.2 / 2.2.9.1.2) ----
// The first byte's low 2 bits are the action: 0 = FASTPATH_ACTION_FASTPATH (a TPKT PDU starts
// with 0x03, whose low bits are 3 = FASTPATH_ACTION_X224). The length follows in 1 byte, or in
// 2 bytes (big-endian, 15 bits) when the first length byte has 0x80 set; it counts the whole
// PDU including the header byte and the length bytes.
inline constexpr std::uint8_t kFastPathActionMask = 0x03;
inline constexpr std::uint8_t kFastPathActionFastPath = 0x00;

enum class FrameKind { kTpkt, kFastPath };

struct Frame {
  FrameKind kind = FrameKind::kTpkt;
  std::size_t size = 0;         // the whole PDU, header included
  std::size_t header_size = 0;  // TPKT: 4; fast-path: 2 or 3 (action byte + length bytes)
};

// Splits a relayed byte stream: what is the PDU at the start of `buffered` and how long is
// it. nullopt while its header is incomplete (the size is known as soon as the header is in;
// the caller waits for frame.size bytes). Errors: a first byte that is neither 0x03 (TPKT)
// nor a fast-path action (kInvalidField "action"); TPKT version byte 3 with reserved byte not
// 0 (kInvalidField "reserved"); a TPKT length below kTpktMinSize or a fast-path length below
// its header size (kInvalidField "length").
PduResult<std::optional<Frame>> split_frame(ByteSpan buffered);

// The size of the complete TPKT PDU at the start of buffered (only TPKT allowed: before TLS,
// and for PDUs the relay expects to be slow-path). nullopt if the 4-byte header is not in.
PduResult<std::optional<std::size_t>> tpkt_frame_size(ByteSpan buffered);

// The X.224 TPDU inside one complete TPKT PDU: checks version, reserved byte and that the
// length field equals tpkt.size(). The payload starts at offset kTpktHeaderSize.
PduResult<ByteSpan> tpkt_payload(ByteSpan tpkt);

// Prefixes payload with a TPKT header. kTooLarge if the PDU would exceed kTpktMaxSize.
PduResult<Bytes> encode_tpkt(ByteSpan payload);

// ---- X.224 TPDU codes (X.224 section 13, ISO 8073), the high nibble of the second byte ----
inline constexpr std::uint8_t kX224ConnectionRequest = 0xE0;
inline constexpr std::uint8_t kX224ConnectionConfirm = 0xD0;
inline constexpr std::uint8_t kX224DisconnectRequest = 0x80;
inline constexpr std::uint8_t kX224Data = 0xF0;

// The TPDU code (one of the four above, low nibble cleared) of one complete TPKT PDU, for
// dispatch. Errors: not a valid TPKT PDU, or an X.224 length indicator (LI) of 0 or past the
// end (LI counts the TPDU header after itself, not a Data TPDU's user data).
PduResult<std::uint8_t> x224_tpdu_code(ByteSpan tpkt);

// ---- RDP negotiation (MS-RDPBCGR 2.2.1.1.1, 2.2.1.2.1, 2.2.1.2.2) ----
// requestedProtocols / selectedProtocol flags.
inline constexpr std::uint32_t kProtocolRdp = 0x00000000;     // legacy RDP security
inline constexpr std::uint32_t kProtocolSsl = 0x00000001;     // TLS
inline constexpr std::uint32_t kProtocolHybrid = 0x00000002;  // CredSSP (NLA)
inline constexpr std::uint32_t kProtocolRdstls = 0x00000004;
inline constexpr std::uint32_t kProtocolHybridEx = 0x00000008;  // CredSSP + Early User Auth
inline constexpr std::uint32_t kProtocolRdsAad = 0x00000010;

// RDP_NEG_REQ flags.
inline constexpr std::uint8_t kNegReqRestrictedAdminModeRequired = 0x01;
inline constexpr std::uint8_t kNegReqRedirectedAuthenticationModeRequired = 0x02;
inline constexpr std::uint8_t kNegReqCorrelationInfoPresent = 0x08;
// RDP_NEG_RSP flags.
inline constexpr std::uint8_t kNegRspExtendedClientDataSupported = 0x01;
inline constexpr std::uint8_t kNegRspDynvcGfxProtocolSupported = 0x02;
inline constexpr std::uint8_t kNegRspReserved = 0x04;
inline constexpr std::uint8_t kNegRspRestrictedAdminModeSupported = 0x08;
inline constexpr std::uint8_t kNegRspRedirectedAuthenticationModeSupported = 0x10;

// RDP_NEG_FAILURE failureCode values (MS-RDPBCGR 2.2.1.2.2).
inline constexpr std::uint32_t kSslRequiredByServer = 0x00000001;
inline constexpr std::uint32_t kSslNotAllowedByServer = 0x00000002;
inline constexpr std::uint32_t kSslCertNotOnServer = 0x00000003;
inline constexpr std::uint32_t kInconsistentFlags = 0x00000004;
inline constexpr std::uint32_t kHybridRequiredByServer = 0x00000005;
inline constexpr std::uint32_t kSslWithUserAuthRequiredByServer = 0x00000006;

// Type bytes of the negotiation structures.
inline constexpr std::uint8_t kTypeRdpNegReq = 0x01;
inline constexpr std::uint8_t kTypeRdpNegRsp = 0x02;
inline constexpr std::uint8_t kTypeRdpNegFailure = 0x03;
inline constexpr std::uint8_t kTypeRdpCorrelationInfo = 0x06;

// RDP_NEG_REQ (MS-RDPBCGR 2.2.1.1.1): type 1, flags u8, length u16le = 8,
// requestedProtocols u32le.
struct NegotiationRequest {
  std::uint8_t flags = 0;
  std::uint32_t requested_protocols = kProtocolSsl;
  bool operator==(const NegotiationRequest&) const = default;
};

// RDP_NEG_CORRELATION_INFO (MS-RDPBCGR 2.2.1.1.2): type 6, flags 0, length u16le = 36,
// correlationId[16], reserved[16] (zero; not checked on decode, written as zero).
struct CorrelationInfo {
  std::array<std::uint8_t, 16> id{};
  bool operator==(const CorrelationInfo&) const = default;
};

// Client X.224 Connection Request PDU (MS-RDPBCGR 2.2.1.1):
//   tpktHeader(4) | LI u8 | CR-CDT u8 = 0xE0 | DST-REF u16be = 0 | SRC-REF u16be |
//   CLASS-OPTION u8 = 0 | [routingToken or cookie, CRLF-terminated] | [RDP_NEG_REQ] |
//   [RDP_NEG_CORRELATION_INFO]
// LI counts the X.224 bytes after itself, so LI = tpkt length - 5.
struct ConnectionRequest {
  std::uint16_t src_ref = 0;
  std::uint8_t class_option = 0;
  // The routingToken or cookie line without its CRLF, e.g. "Cookie: mstshash=alice". Present
  // when the bytes after the fixed part start with "Cookie: " (as both forms do).
  std::optional<std::string> cookie;
  std::optional<NegotiationRequest> negotiation;
  std::optional<CorrelationInfo> correlation;
  bool operator==(const ConnectionRequest&) const = default;
};

// One complete TPKT PDU. Errors name the field: "LI" (not tpkt length - 5), "CR-CDT" (not a
// Connection Request), "DST-REF" (not 0), "CLASS-OPTION" (not 0), "cookie" (no CRLF before
// the end, or an embedded CR/LF), "RDP_NEG_REQ.length" (not 8), "type" (an unknown structure
// after the cookie), "RDP_NEG_CORRELATION_INFO.length" (not 36), "trailing bytes".
PduResult<ConnectionRequest> decode_connection_request(ByteSpan tpkt);
// A complete TPKT PDU. Errors: a cookie containing CR or LF, or too large.
PduResult<Bytes> encode_connection_request(const ConnectionRequest& request);

// RDP_NEG_RSP (MS-RDPBCGR 2.2.1.2.1): type 2, flags u8, length u16le = 8, selectedProtocol.
struct NegotiationResponse {
  std::uint8_t flags = 0;
  std::uint32_t selected_protocol = kProtocolSsl;
  bool operator==(const NegotiationResponse&) const = default;
};

// Server X.224 Connection Confirm PDU (MS-RDPBCGR 2.2.1.2):
//   tpktHeader(4) | LI u8 | CC-CDT u8 = 0xD0 | DST-REF u16be | SRC-REF u16be |
//   CLASS-OPTION u8 | [RDP_NEG_RSP or RDP_NEG_FAILURE (type 3, flags 0, length 8,
//   failureCode u32le)]
// Neither negotiation structure: the server chose legacy RDP security (PROTOCOL_RDP).
// INVARIANT: at most one of `response` and `failure_code` is set.
struct ConnectionConfirm {
  std::uint16_t dst_ref = 0;
  std::uint16_t src_ref = 0x1234;
  std::uint8_t class_option = 0;
  std::optional<NegotiationResponse> response;
  std::optional<std::uint32_t> failure_code;
  bool operator==(const ConnectionConfirm&) const = default;
};

// One complete TPKT PDU. Errors: "LI", "CC-CDT", "type" (not 2 or 3), "length" (not 8),
// "trailing bytes".
PduResult<ConnectionConfirm> decode_connection_confirm(ByteSpan tpkt);
// A complete TPKT PDU (writes the response if set, else the failure if set). Error if both
// are set.
PduResult<Bytes> encode_connection_confirm(const ConnectionConfirm& confirm);

// ---- X.224 Data TPDU (X.224 section 13.7): LI = 2, DT = 0xF0, EOT = 0x80 ----
inline constexpr std::array<std::uint8_t, 3> kX224DataHeader{0x02, 0xF0, 0x80};
inline constexpr std::size_t kX224DataHeaderSize = 3;
// Offset of the payload (the MCS PDU) inside a TPKT PDU carrying an X.224 Data TPDU.
inline constexpr std::size_t kDataPayloadOffset = kTpktHeaderSize + kX224DataHeaderSize;
// The largest payload one TPKT + X.224 Data PDU can carry.
inline constexpr std::size_t kMaxDataPayload = kTpktMaxSize - kDataPayloadOffset;

// The payload of one complete TPKT PDU carrying an X.224 Data TPDU (always at offset
// kDataPayloadOffset). Errors: not TPKT, "LI" (not 2), "DT" (not 0xF0: another TPDU),
// "EOT" (not 0x80: RDP never segments X.224 data).
PduResult<ByteSpan> decode_data_tpdu(ByteSpan tpkt);
// TPKT + X.224 Data header + payload. kTooLarge if payload exceeds kMaxDataPayload.
PduResult<Bytes> encode_data_tpdu(ByteSpan payload);

}  // namespace enclave::gateway
