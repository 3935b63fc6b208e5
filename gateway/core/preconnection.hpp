// The RDP Preconnection PDU (MS-RDPEPC 2.2.1): the first bytes a client sends, before X.224.
// The thin client's xfreerdp sends a V2 PDU with `/pcb:<ticket>`; the gateway redeems the
// blob as a one-time ticket and refuses anything else.
//
// Wire format, all little-endian (MS-RDPEPC 2.2.1.1 and 2.2.1.2):
//   cbSize   u32  size of the whole PDU in bytes
//   Flags    u32  unused, MUST be 0 (not enforced: MS-RDPEPC says the server ignores it)
//   Version  u32  1 (RDP_PRECONNECTION_PDU_V1) or 2 (RDP_PRECONNECTION_PDU_V2)
//   Id       u32
// V2 adds:
//   cchPCB   u16  characters in wszPCB including the null terminator (0: no string)
//   wszPCB   cchPCB UTF-16LE code units, the last one 0 (xfreerdp 2.x sends two NULs:
//            NUL padding after the string is accepted)
// cbSize is 16 for V1 and 18 + 2 * cchPCB for V2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/bytes.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

inline constexpr std::uint32_t kPreconnectionVersion1 = 1;
inline constexpr std::uint32_t kPreconnectionVersion2 = 2;
// The largest preconnection PDU accepted: cbSize above it is refused before anything is
// buffered or allocated (kTooLarge). Same value as relay.hpp's kMaxPreconnectionSize.
inline constexpr std::size_t kPreconnectionMaxBytes = 4096;
inline constexpr std::size_t kPreconnectionV1Size = 16;       // cbSize + Flags + Version + Id
inline constexpr std::size_t kPreconnectionV2FixedSize = 18;  // V1 + cchPCB

struct PreconnectionPdu {
  std::uint32_t flags = 0;
  std::uint32_t version = kPreconnectionVersion2;
  std::uint32_t id = 0;
  // V2 only: wszPCB as UTF-8, without the null terminator. Empty in V1. A V2 PDU with
  // cchPCB = 0 and one with cchPCB = 1 (just the terminator) both decode to "", which
  // encodes as cchPCB = 0 (what xfreerdp sends for /pcid without /pcb).
  std::string blob;

  bool operator==(const PreconnectionPdu&) const = default;
};

struct DecodedPreconnection {
  PreconnectionPdu pdu;
  std::size_t size = 0;  // cbSize: the bytes of the buffer the PDU took
};

// Decodes the preconnection PDU at the start of `buffered` (more bytes may follow: the X.224
// Connection Request). Returns nullopt while the PDU is incomplete (fewer than 16 bytes, or
// fewer than cbSize). The V2 string ends at its first NUL. Errors: Version not 1 or 2
// (kInvalidField "Version"); cbSize above kPreconnectionMaxBytes (kTooLarge, decided as soon as the
// first 4 bytes are in); cbSize not 16 for V1 or not 18 + 2 * cchPCB for V2 (kInvalidField
// "cbSize"); wszPCB not ending in NUL, a non-NUL after the first NUL, or not valid UTF-16
// (kInvalidField "wszPCB").
PduResult<std::optional<DecodedPreconnection>> decode_preconnection(ByteSpan buffered);

// Encodes a V1 (blob must be empty) or V2 PDU. Errors: another version, a blob in V1, a
// blob with a NUL character, or a PDU larger than kPreconnectionMaxBytes.
PduResult<Bytes> encode_preconnection(const PreconnectionPdu& pdu);

}  // namespace enclave::gateway
