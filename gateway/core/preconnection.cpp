#include "gateway/core/preconnection.hpp"

#include <string>

namespace enclave::gateway {
namespace {

constexpr std::string_view kPdu = "Preconnection PDU";

std::uint32_t peek_u32le(ByteSpan b) {
  return static_cast<std::uint32_t>(b[0]) | (static_cast<std::uint32_t>(b[1]) << 8) |
         (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 24);
}

}  // namespace

PduResult<std::optional<DecodedPreconnection>> decode_preconnection(ByteSpan buffered) {
  using Out = std::optional<DecodedPreconnection>;
  // cbSize comes first: refuse an oversized PDU before waiting for (or buffering) it.
  if (buffered.size() >= 4) {
    const std::uint32_t cb_size = peek_u32le(buffered);
    if (cb_size > kPreconnectionMaxBytes)
      return fail(too_large(kPdu, "cbSize", cb_size, kPreconnectionMaxBytes));
    if (cb_size < kPreconnectionV1Size)
      return fail(invalid_field(kPdu, "cbSize", "smaller than the V1 PDU (16 bytes)"));
  }
  if (buffered.size() < kPreconnectionV1Size) return Out{};

  PduReader r(buffered, kPdu);
  const std::uint32_t cb_size = r.u32le("cbSize").value();
  DecodedPreconnection d;
  d.pdu.flags = r.u32le("Flags").value();
  d.pdu.version = r.u32le("Version").value();
  d.pdu.id = r.u32le("Id").value();
  if (d.pdu.version == kPreconnectionVersion1) {
    if (cb_size != kPreconnectionV1Size)
      return fail(invalid_field(kPdu, "cbSize", "must be 16 for version 1"));
    d.size = kPreconnectionV1Size;
    return Out{std::move(d)};
  }
  if (d.pdu.version != kPreconnectionVersion2)
    return fail(invalid_field(kPdu, "Version", "must be 1 or 2"));
  if (cb_size < kPreconnectionV2FixedSize)
    return fail(invalid_field(kPdu, "cbSize", "smaller than the V2 fixed part (18 bytes)"));
  if (buffered.size() < kPreconnectionV2FixedSize) return Out{};
  const std::uint16_t cch = r.u16le("cchPCB").value();
  if (cb_size != kPreconnectionV2FixedSize + 2 * static_cast<std::size_t>(cch))
    return fail(invalid_field(kPdu, "cbSize", "must be 18 + 2 * cchPCB"));
  if (buffered.size() < cb_size) return Out{};
  d.size = cb_size;
  if (cch == 0) return Out{std::move(d)};
  ByteSpan wsz = r.take(2 * static_cast<std::size_t>(cch), "wszPCB").value();
  if (wsz[wsz.size() - 2] != 0 || wsz[wsz.size() - 1] != 0)
    return fail(invalid_field(kPdu, "wszPCB", "not null-terminated"));
  // The string ends at the first NUL; xfreerdp 2.x sends two (it counts the terminator
  // twice), so NUL padding after it is accepted, anything else is not.
  std::size_t end = 0;
  while (end < wsz.size() && (wsz[end] != 0 || wsz[end + 1] != 0)) end += 2;
  for (std::size_t i = end; i < wsz.size(); ++i) {
    if (wsz[i] != 0) return fail(invalid_field(kPdu, "wszPCB", "characters after a NUL"));
  }
  ByteSpan text = wsz.first(end);
  auto blob = utf16le_to_utf8(text, kPdu, "wszPCB");
  if (!blob) return error_of(blob);
  d.pdu.blob = std::move(blob).value();
  return Out{std::move(d)};
}

PduResult<Bytes> encode_preconnection(const PreconnectionPdu& pdu) {
  if (pdu.version != kPreconnectionVersion1 && pdu.version != kPreconnectionVersion2)
    return fail(invalid_field(kPdu, "Version", "must be 1 or 2"));
  if (pdu.blob.find('\0') != std::string::npos)
    return fail(invalid_field(kPdu, "wszPCB", "contains NUL"));
  Bytes out;
  PduWriter w(out);
  if (pdu.version == kPreconnectionVersion1) {
    if (!pdu.blob.empty()) return fail(invalid_field(kPdu, "wszPCB", "version 1 has no blob"));
    w.u32le(kPreconnectionV1Size);
    w.u32le(pdu.flags);
    w.u32le(pdu.version);
    w.u32le(pdu.id);
    return out;
  }
  Bytes wsz;
  if (!pdu.blob.empty()) {  // an empty blob is cchPCB = 0, as xfreerdp sends /pcid alone
    wsz = utf8_to_utf16le(pdu.blob);
    wsz.push_back(0);
    wsz.push_back(0);
  }
  const std::size_t size = kPreconnectionV2FixedSize + wsz.size();
  if (size > kPreconnectionMaxBytes)
    return fail(too_large(kPdu, "cbSize", size, kPreconnectionMaxBytes));
  w.u32le(static_cast<std::uint32_t>(size));
  w.u32le(pdu.flags);
  w.u32le(pdu.version);
  w.u32le(pdu.id);
  w.u16le(static_cast<std::uint16_t>(wsz.size() / 2));
  w.put(wsz);
  return out;
}

}  // namespace enclave::gateway
