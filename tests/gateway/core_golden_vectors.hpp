// Golden RDP byte vectors for the gateway/core tests, as hex. Captured on loopback from
// xfreerdp 2.11 (client) talking to freerdp-shadow-cli 2.11 (server) through a capture proxy
// that logged the plaintext PDUs and terminated TLS on both legs to log the PDUs inside it:
//   xfreerdp /v:127.0.0.1:PORT /pcb:ticket-ABC123 /sec:tls /cert:ignore /u:alice /p:x
//            /size:800x600 +clipboard /drive:tmp,/tmp /sound
// (channels rdpdr, rdpsnd, cliprdr, drdynvc). Other variants: /pcid:42 alone, /sec:rdp, and
// a server started with -sec-tls -sec-rdp (NLA only) answering a TLS-only client.
#pragma once

#include <string_view>

namespace enclave::gateway::golden {

// RDP_PRECONNECTION_PDU_V2, Id 0, blob "ticket-ABC123"; cchPCB 15 (xfreerdp 2.x counts
// the terminator twice, so two NULs follow the string).
inline constexpr std::string_view kPcbTicket =
    "300000000000000002000000000000000f007400690063006b00650074002d00410042004300310032003300"
    "00000000";

// RDP_PRECONNECTION_PDU_V2 from /pcid:42 without /pcb: cchPCB 0.
inline constexpr std::string_view kPcbIdOnly = "1200000000000000020000002a0000000000";

// X.224 Connection Request: cookie "Cookie: mstshash=alice", RDP_NEG_REQ PROTOCOL_SSL.
inline constexpr std::string_view kConnectionRequestTls =
    "0300002b26e00000000000436f6f6b69653a206d737473686173683d616c6963650d0a0100080001000000";

// X.224 Connection Request without /sec: requestedProtocols SSL | HYBRID.
inline constexpr std::string_view kConnectionRequestDefault =
    "0300002b26e00000000000436f6f6b69653a206d737473686173683d616c6963650d0a0100080003000000";

// X.224 Connection Request with /sec:rdp: cookie only, no RDP_NEG_REQ.
inline constexpr std::string_view kConnectionRequestRdp =
    "030000231ee00000000000436f6f6b69653a206d737473686173683d616c6963650d0a";

// X.224 Connection Confirm: RDP_NEG_RSP flags 0x03, selectedProtocol PROTOCOL_SSL.
inline constexpr std::string_view kConnectionConfirmSsl = "030000130ed000000000000203080001000000";

// X.224 Connection Confirm: RDP_NEG_RSP flags 0x03, selectedProtocol PROTOCOL_RDP.
inline constexpr std::string_view kConnectionConfirmRdp = "030000130ed000000000000203080000000000";

// X.224 Connection Confirm: RDP_NEG_FAILURE SSL_REQUIRED_BY_SERVER (NLA-only server).
inline constexpr std::string_view kConnectionConfirmFailure =
    "030000130ed000000000000300080001000000";

// MCS Connect-Initial (inside TLS): 800x600, RDP 10.7 (0x0008000C), CS_CORE, CS_CLUSTER
// (flags 0x0D), CS_SECURITY, CS_NET (rdpdr, rdpsnd, cliprdr, drdynvc), CS_MCS_MSGCHANNEL,
// CS_MULTITRANSPORT (flags 0).
inline constexpr std::string_view kConnectInitial =
    "030001d302f0807f658201c70401010401010101ff301a020122020102020100020101020100020101020300"
    "ffff0201023019020101020101020101020101020100020101020204200201023020020300ffff020300fc17"
    "020300ffff020101020100020101020300ffff02010204820161000500147c00018158000800100001c00044"
    "756361814a01c0ea000c0008002003580201ca03aa09040000bb47000076006d000000000000000000000000"
    "000000000000000000000000000000000004000000000000000c000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "000000000001ca01000000000018000f00e30500000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000700010000"
    "0000000000000000000000000000000000000004c00c000d0000000000000002c00c00000000000000000003"
    "c03800040000007264706472000000000080c0726470736e640000000000c0636c6970726472000000a0c064"
    "7264796e766300000080c006c00800000000000ac0080000000000";

// MCS Connect-Response: SC_CORE (0x0008000C, requested SSL), SC_NET (I/O 1003; 1004..1007),
// SC_SECURITY (0, 0), SC_MCS_MSGCHANNEL 1008.
inline constexpr std::string_view kConnectResponse =
    "0300007602f0807f666c0a0100020100301a020122020103020100020101020100020101020300fff8020102"
    "0448000500147c00012a14760a01010001c0004d63446e32010c10000c0008000100000000000000030c1000"
    "eb030400ec03ed03ee03ef03020c0c000000000000000000040c0600f003";

// MCS Erect Domain Request (subHeight 0, subInterval 0).
inline constexpr std::string_view kErectDomainRequest = "0300000c02f0800401000100";

// MCS Attach User Request.
inline constexpr std::string_view kAttachUserRequest = "0300000802f08028";

// MCS Attach User Confirm: result 0, initiator 1009.
inline constexpr std::string_view kAttachUserConfirm = "0300000b02f0802e000008";

// MCS Channel Join Request: initiator 1009, channel 1003.
inline constexpr std::string_view kChannelJoinRequest = "0300000c02f08038000803eb";

// MCS Channel Join Confirm: result 0, initiator 1009, requested 1003, channel 1003.
inline constexpr std::string_view kChannelJoinConfirm = "0300000f02f0803e00000803eb03eb";

// MCS Send Data Request, initiator 1009, channel 1003, 2-byte PER length 0x8016
// (a Synchronize PDU).
inline constexpr std::string_view kSendDataRequestIo =
    "0300002502f08064000803eb70801616001700f103f1030100000104001f0000000100f103";

// MCS Send Data Indication on channel 1007 (drdynvc): a Create Request for
// Microsoft::Windows::RDS::Graphics.
inline constexpr std::string_view kSendDataIndicationDrdynvc =
    "0300003b02f08068000803ef70802c240000000300000010024d6963726f736f66743a3a57696e646f77733a"
    "3a5244533a3a477261706869637300";

// Fast-path input PDUs (client to server), 2-byte length form.
inline constexpr std::string_view kFastPathInput1 = "0c8008010f60010f";

inline constexpr std::string_view kFastPathInput2 = "04800a20000800028001";

}  // namespace enclave::gateway::golden
