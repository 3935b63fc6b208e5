// The Client Info PDU (MS-RDPBCGR 2.2.1.11): the client's logon data, where the relay puts the
// session's desktop credentials so that the analyst never types or sees them.
//
// This is the MCS user data of the client's SendDataRequest on the I/O channel:
//   TS_SECURITY_HEADER (2.2.8.1.1.2.1): flags u16le (SEC_INFO_PKT), flagsHi u16le
//   TS_INFO_PACKET (2.2.1.11.1.1):
//     CodePage u32le, flags u32le, cbDomain, cbUserName, cbPassword, cbAlternateShell,
//     cbWorkingDir (u16le each: the bytes of the string without its terminator), then the five
//     strings, each followed by a null terminator (2 bytes with INFO_UNICODE, else 1), then
//     the optional TS_EXTENDED_INFO_PACKET, kept verbatim.
// Legacy RDP encryption (SEC_ENCRYPT) is refused: the gateway allows TLS only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

// TS_SECURITY_HEADER flags (MS-RDPBCGR 2.2.8.1.1.2.1).
inline constexpr std::uint16_t kSecExchangePkt = 0x0001;
inline constexpr std::uint16_t kSecTransportReq = 0x0002;
inline constexpr std::uint16_t kSecTransportRsp = 0x0004;
inline constexpr std::uint16_t kSecEncrypt = 0x0008;
inline constexpr std::uint16_t kSecResetSeqno = 0x0010;
inline constexpr std::uint16_t kSecIgnoreSeqno = 0x0020;
inline constexpr std::uint16_t kSecInfoPkt = 0x0040;
inline constexpr std::uint16_t kSecLicensePkt = 0x0080;
inline constexpr std::uint16_t kSecRedirectionPkt = 0x0400;
inline constexpr std::uint16_t kSecAutodetectReq = 0x1000;
inline constexpr std::uint16_t kSecAutodetectRsp = 0x2000;

// TS_INFO_PACKET flags (MS-RDPBCGR 2.2.1.11.1.1).
inline constexpr std::uint32_t kInfoMouse = 0x00000001;
inline constexpr std::uint32_t kInfoAutologon = 0x00000008;
inline constexpr std::uint32_t kInfoUnicode = 0x00000010;
inline constexpr std::uint32_t kInfoCompression = 0x00000080;
inline constexpr std::uint32_t kInfoPasswordIsScPin = 0x00040000;

// The most bytes of character data a TS_INFO_PACKET string may carry (FreeRDP's bound; the
// spec's 512 bytes include the terminator).
inline constexpr std::size_t kMaxInfoStringBytes = 512;

struct ClientInfo {
  std::uint16_t security_flags = kSecInfoPkt;  // TS_SECURITY_HEADER flags
  std::uint16_t security_flags_hi = 0;
  std::uint32_t code_page = 0;
  std::uint32_t flags = kInfoMouse | kInfoUnicode;
  // UTF-8 when flags has INFO_UNICODE; otherwise the ANSI bytes as sent.
  std::string domain;
  std::string user_name;
  std::string password;
  std::string alternate_shell;
  std::string working_dir;
  Bytes extra_info;  // TS_EXTENDED_INFO_PACKET, verbatim (may be empty)

  ClientInfo() = default;
  ClientInfo(const ClientInfo&) = default;
  ClientInfo(ClientInfo&&) = default;
  ClientInfo& operator=(const ClientInfo&) = default;
  ClientInfo& operator=(ClientInfo&&) = default;
  ~ClientInfo();  // wipes password
};

// Decodes the user data of a Client Info SendDataRequest (security header included). Fails on
// SEC_ENCRYPT, a missing SEC_INFO_PKT, an odd UTF-16 length, a string over 512 bytes, a
// missing or non-null terminator, or an unpaired surrogate.
PduResult<ClientInfo> decode_client_info(ByteSpan user_data);

// The user data for info: security header and TS_INFO_PACKET, lengths from the strings.
// Fails if a string is over 512 bytes once encoded.
PduResult<Bytes> encode_client_info(const ClientInfo& info);

// Replaces domain, user name and password in a Client Info PDU's user data, sets
// INFO_AUTOLOGON (and clears INFO_PASSWORD_IS_SC_PIN: the password is no smart-card PIN),
// keeps every other field. Requires INFO_UNICODE. Temporary copies of either password are
// wiped; the returned bytes hold the new password and are the caller's to wipe.
PduResult<Bytes> rewrite_client_info(ByteSpan user_data, std::string_view domain,
                                     std::string_view user_name, std::string_view password);

// Wipes a string's whole buffer (not only its size) and leaves it empty.
void wipe_string(std::string& s);

}  // namespace enclave::gateway
