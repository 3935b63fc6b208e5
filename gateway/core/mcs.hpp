// T.125 MCS PDUs as RDP uses them, inside TPKT + X.224 Data (MS-RDPBCGR 2.2.1.3 to 2.2.1.9,
// 2.2.8.1.1.1.1 and 2.2.9.1.1.1).
//
// (a) The connect PDUs are BER-encoded (T.125 section 11.1, X.690):
//   Connect-Initial  [APPLICATION 101] = 7F 65, Connect-Response [APPLICATION 102] = 7F 66.
//   Their userData OCTET STRING holds a T.124 GCC Conference Create Request / Response in
//   ALIGNED PER (T.124 section 8.7, MS-RDPBCGR 2.2.1.3 and 2.2.1.4), whose own userData is one
//   H.221 non-standard item, key "Duca" (client) or "McDn" (server), carrying the RDP data
//   blocks that gcc.hpp decodes. The decoders here return those blocks as a span of the
//   input and their offset in it, so the relay can patch the blocks in place.
// (b) The domain PDUs are ALIGNED PER (T.125 section 7 / 11.2): the first byte is the
//   DomainMCSPDU choice index << 2 (its low 2 bits belong to the PDU), then the PDU fields.
//   UserId values (initiator) are sent minus 1001 (MCS_BASE_CHANNEL_ID).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "common/bytes.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

// ---- (a) Connect-Initial / Connect-Response ----

// DomainParameters (T.125 section 11.1): eight INTEGERs. The values mstsc and FreeRDP send
// as targetParameters are the defaults here.
struct DomainParameters {
  std::uint32_t max_channel_ids = 34;
  std::uint32_t max_user_ids = 2;
  std::uint32_t max_token_ids = 0;
  std::uint32_t num_priorities = 1;
  std::uint32_t min_throughput = 0;
  std::uint32_t max_height = 1;
  std::uint32_t max_mcspdu_size = 65535;
  std::uint32_t protocol_version = 2;
  bool operator==(const DomainParameters&) const = default;
};

// MCS Connect-Initial (T.125 11.1; MS-RDPBCGR 2.2.1.3): callingDomainSelector and
// calledDomainSelector OCTET STRINGs (both "\x01" in RDP; at most 16 bytes accepted),
// upwardFlag BOOLEAN, target/minimum/maximum DomainParameters, userData OCTET STRING with
// the GCC Conference Create Request: ConnectData { t124Identifier object 0.0.20.124.0.1,
// connectPDU { conferenceCreateRequest, selection 0x08 (userData only), conferenceName "1",
// terminationMethod 0, one userData set: h221NonStandard "Duca", value = client blocks } }.
struct ConnectInitial {
  Bytes calling_domain_selector{0x01};
  Bytes called_domain_selector{0x01};
  bool upward_flag = true;
  DomainParameters target{};
  DomainParameters minimum{1, 1, 1, 1, 0, 1, 1056, 2};
  DomainParameters maximum{65535, 64535, 65535, 1, 0, 1, 65535, 2};
  bool operator==(const ConnectInitial&) const = default;
};

struct DecodedConnectInitial {
  ConnectInitial fields;
  ByteSpan blocks;                // the client data blocks (MS-RDPBCGR 2.2.1.3.1 onwards)
  std::size_t blocks_offset = 0;  // of blocks inside the decoded TPKT PDU
};

// Decodes one complete TPKT PDU carrying an X.224 Data TPDU and a Connect-Initial. BER
// lengths in short and long (0x81, 0x82, 0x83, 0x84) forms are accepted; INTEGERs of 1 to 4
// bytes are read unsigned (mstsc sends 65535 as 02 02 FF FF). Errors name the BER element
// or PER field ("Connect-Initial tag", "userData length", "t124Identifier", "H.221 key",
// ...); every nested length must fit inside its parent and the GCC user data must end
// exactly where the BER octet string ends.
PduResult<DecodedConnectInitial> decode_connect_initial(ByteSpan tpkt);
// A complete TPKT + X.224 Data PDU. kTooLarge if it would not fit a TPKT PDU.
PduResult<Bytes> encode_connect_initial(const ConnectInitial& fields, ByteSpan blocks);

// MCS Connect-Response (T.125 11.1; MS-RDPBCGR 2.2.1.4): result ENUMERATED (0 =
// rt-successful), calledConnectId INTEGER, domainParameters, userData OCTET STRING with the
// GCC Conference Create Response: ConnectData { t124Identifier, connectPDU {
// conferenceCreateResponse, nodeID (UserID, integer16 + 1001), tag INTEGER, result 0,
// one userData set: h221NonStandard "McDn", value = server blocks } }. Windows and FreeRDP
// servers write the connectPDU length as 0x2A whatever its size (MS-RDPBCGR 4.1.4): decoders
// ignore that length in both PDUs and the response encoder writes 0x2A too.
struct ConnectResponse {
  std::uint8_t result = 0;
  std::uint32_t called_connect_id = 0;
  DomainParameters domain{34, 3, 0, 1, 0, 1, 65528, 2};
  std::uint16_t gcc_node_id = 1002;  // the UserID, as a value (31219 = 0x79F3 in FreeRDP)
  std::uint32_t gcc_tag = 1;
  std::uint8_t gcc_result = 0;
  bool operator==(const ConnectResponse&) const = default;
};

struct DecodedConnectResponse {
  ConnectResponse fields;
  ByteSpan blocks;                // the server data blocks (MS-RDPBCGR 2.2.1.4.1 onwards)
  std::size_t blocks_offset = 0;  // of blocks inside the decoded TPKT PDU
};

// Decodes one complete TPKT PDU carrying an X.224 Data TPDU and a Connect-Response. A
// result other than 0 decodes (the caller decides); checks as for decode_connect_initial.
PduResult<DecodedConnectResponse> decode_connect_response(ByteSpan tpkt);
// A complete TPKT + X.224 Data PDU. kTooLarge if it would not fit a TPKT PDU.
PduResult<Bytes> encode_connect_response(const ConnectResponse& fields, ByteSpan blocks);

// ---- (b) domain PDUs ----

// DomainMCSPDU choice indices (T.125 section 11.2) that RDP uses.
enum class DomainPduType : std::uint8_t {
  kErectDomainRequest = 1,
  kDisconnectProviderUltimatum = 8,
  kAttachUserRequest = 10,
  kAttachUserConfirm = 11,
  kChannelJoinRequest = 14,
  kChannelJoinConfirm = 15,
  kSendDataRequest = 25,     // client to server
  kSendDataIndication = 26,  // server to client
};
const char* domain_pdu_name(DomainPduType type);

inline constexpr std::uint16_t kMcsBaseChannelId = 1001;  // UserIds are sent minus this
// Disconnect Provider Ultimatum reasons (T.125 Reason).
inline constexpr std::uint8_t kReasonDomainDisconnected = 0;
inline constexpr std::uint8_t kReasonProviderInitiated = 1;
inline constexpr std::uint8_t kReasonTokenPurged = 2;
inline constexpr std::uint8_t kReasonUserRequested = 3;
inline constexpr std::uint8_t kReasonChannelPurged = 4;
// dataPriority high (1 << 6) + segmentation begin|end (0x30): what RDP peers send.
inline constexpr std::uint8_t kSendDataFlagsDefault = 0x70;

// One decoded domain PDU. Only the fields of `type` are meaningful (others stay default):
//   kErectDomainRequest (04 | subHeight | subInterval, PER INTEGERs):  sub_height,
//     sub_interval.
//   kDisconnectProviderUltimatum (21 80 for reason 3: the 3-bit reason spans both bytes):
//     reason.
//   kAttachUserRequest (28): nothing.
//   kAttachUserConfirm (2C|2E, result u8, [initiator]): result, initiator if bit 0x02.
//   kChannelJoinRequest (38, initiator, channelId u16be): initiator, channel_id.
//   kChannelJoinConfirm (3C|3E, result, initiator, requested u16be, [channelId]): result,
//     initiator, channel_id (requested), joined_channel_id if bit 0x02.
//   kSendDataRequest / kSendDataIndication (64 / 68, initiator, channelId u16be,
//     dataPriority|segmentation u8, PER length (1 byte, or 2 with 0x80), userData):
//     initiator, channel_id, data_flags, user_data and user_data_offset.
// `initiator` is the UserId value (the wire value + 1001).
struct DomainPdu {
  DomainPduType type = DomainPduType::kSendDataRequest;
  std::uint32_t sub_height = 0;
  std::uint32_t sub_interval = 0;
  std::uint8_t reason = 0;
  std::uint8_t result = 0;
  std::optional<std::uint16_t> initiator;  // always set for join and send data PDUs
  std::uint16_t channel_id = 0;
  std::optional<std::uint16_t> joined_channel_id;
  std::uint8_t data_flags = kSendDataFlagsDefault;
  ByteSpan user_data;                // a span of the decoded input
  std::size_t user_data_offset = 0;  // offset of user_data in the decoded input
};

// Decodes the MCS bytes of an X.224 Data TPDU (the payload decode_data_tpdu returns);
// user_data_offset is relative to `mcs`. The 2-byte PER length is read as 15 bits, as
// FreeRDP writes it. Errors: an unknown or unsupported choice (kUnexpectedMessage naming the
// choice index), "reason" > 4, userData not ending exactly at the end of `mcs` ("trailing bytes"
// or kNotEnoughBytes), and trailing bytes after any other PDU.
PduResult<DomainPdu> decode_domain_pdu(ByteSpan mcs);
// As decode_domain_pdu on one complete TPKT + X.224 Data PDU; user_data_offset is relative
// to `tpkt` (so tpkt[user_data_offset] is the first user data byte).
PduResult<DomainPdu> decode_domain_pdu_in_tpkt(ByteSpan tpkt);

// The MCS bytes of `pdu` (no TPKT/X.224). Send data uses the 1-byte PER length below 0x80
// and the 2-byte form up to 0x7FFF (kTooLarge above). initiator must be set (and >= 1001)
// where the PDU requires it, else kInvalidField.
PduResult<Bytes> encode_domain_pdu(const DomainPdu& pdu);

struct SendDataHeader {
  bool indication = false;         // false: Send Data Request (client to server); true: Indication
  std::uint16_t initiator = 1007;  // UserId value (>= 1001)
  std::uint16_t channel_id = 1003;
  std::uint8_t data_flags = kSendDataFlagsDefault;
};

// A COMPLETE TPKT + X.224 Data + MCS Send Data Request/Indication PDU carrying user_data,
// for rebuilding a PDU whose user data changed length. kTooLarge above what a TPKT PDU or the
// 2-byte PER length can carry; kInvalidField for an initiator below 1001.
PduResult<Bytes> encode_send_data(const SendDataHeader& header, ByteSpan user_data);

// A complete TPKT + X.224 Data + MCS Disconnect Provider Ultimatum (T.125 11.2, MS-RDPBCGR
// 2.2.2.3) with `reason` (0..4; kReasonUserRequested for a clean end: 03 00 00 09 02 F0 80
// 21 80). Reasons above 4 are clamped to kReasonUserRequested.
Bytes encode_disconnect_provider_ultimatum(std::uint8_t reason = kReasonUserRequested);

}  // namespace enclave::gateway
