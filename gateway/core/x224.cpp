#include "gateway/core/x224.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace enclave::gateway {
namespace {

constexpr std::string_view kTpkt = "TPKT";
constexpr std::string_view kFastPath = "fast-path PDU";
constexpr std::string_view kCr = "X.224 Connection Request";
constexpr std::string_view kCc = "X.224 Connection Confirm";
constexpr std::string_view kDt = "X.224 Data";
constexpr std::string_view kCookiePrefix = "Cookie: ";
constexpr std::size_t kNegStructSize = 8;
constexpr std::size_t kCorrelationInfoSize = 36;
// LI(1) + code(1) + DST-REF(2) + SRC-REF(2) + CLASS(1): the fixed part of CR and CC.
constexpr std::size_t kConnectionFixedSize = 7;

// The X.224 bytes of one TPKT PDU after checking the LI covers exactly the rest.
PduResult<ByteSpan> x224_of(ByteSpan tpkt, std::string_view pdu) {
  auto payload = tpkt_payload(tpkt);
  if (!payload) {
    PduError e = payload.error();
    e.pdu = std::string(pdu) + " " + e.pdu;
    return fail(std::move(e));
  }
  ByteSpan x = *payload;
  if (x.empty()) return fail(not_enough_bytes(pdu, "LI", 0, 1));
  if (static_cast<std::size_t>(x[0]) + 1 != x.size())
    return fail(invalid_field(pdu, "LI", "must equal the TPKT length - 5"));
  return x;
}

void write_tpkt_header(PduWriter& w, std::size_t total) {
  w.u8(kTpktVersion);
  w.u8(0);
  w.u16be(static_cast<std::uint16_t>(total));
}

}  // namespace

PduResult<std::optional<Frame>> split_frame(ByteSpan buffered) {
  using Out = std::optional<Frame>;
  if (buffered.empty()) return Out{};
  const std::uint8_t first = buffered[0];
  if (first == kTpktVersion) {
    auto size = tpkt_frame_size(buffered);
    if (!size) return error_of(size);
    if (!*size) return Out{};
    return Out{Frame{FrameKind::kTpkt, **size, kTpktHeaderSize}};
  }
  if ((first & kFastPathActionMask) != kFastPathActionFastPath)
    return fail(invalid_field(kFastPath, "action", "neither TPKT (0x03) nor fast-path"));
  if (buffered.size() < 2) return Out{};
  std::size_t length = buffered[1];
  std::size_t header = 2;
  if (length & 0x80) {
    if (buffered.size() < 3) return Out{};
    length = ((length & 0x7F) << 8) | buffered[2];
    header = 3;
  }
  if (length < header)
    return fail(invalid_field(kFastPath, "length", "shorter than the fast-path header"));
  return Out{Frame{FrameKind::kFastPath, length, header}};
}

PduResult<std::optional<std::size_t>> tpkt_frame_size(ByteSpan buffered) {
  using Out = std::optional<std::size_t>;
  if (!buffered.empty() && buffered[0] != kTpktVersion)
    return fail(invalid_field(kTpkt, "version", "must be 3"));
  if (buffered.size() >= 2 && buffered[1] != 0)
    return fail(invalid_field(kTpkt, "reserved", "must be 0"));
  if (buffered.size() < kTpktHeaderSize) return Out{};
  const std::size_t length = (static_cast<std::size_t>(buffered[2]) << 8) | buffered[3];
  if (length < kTpktMinSize)
    return fail(invalid_field(kTpkt, "length", "shorter than TPKT + X.224 header (7)"));
  return Out{length};
}

PduResult<ByteSpan> tpkt_payload(ByteSpan tpkt) {
  auto size = tpkt_frame_size(tpkt);
  if (!size) return error_of(size);
  if (!*size) return fail(not_enough_bytes(kTpkt, "header", tpkt.size(), kTpktHeaderSize));
  if (tpkt.size() < **size) return fail(not_enough_bytes(kTpkt, "length", tpkt.size(), **size));
  if (tpkt.size() > **size)
    return fail(invalid_field(kTpkt, "length", "shorter than the bytes given (trailing bytes)"));
  return tpkt.subspan(kTpktHeaderSize);
}

PduResult<Bytes> encode_tpkt(ByteSpan payload) {
  const std::size_t total = kTpktHeaderSize + payload.size();
  if (total > kTpktMaxSize) return fail(too_large(kTpkt, "length", total, kTpktMaxSize));
  Bytes out;
  out.reserve(total);
  PduWriter w(out);
  write_tpkt_header(w, total);
  w.put(payload);
  return out;
}

PduResult<std::uint8_t> x224_tpdu_code(ByteSpan tpkt) {
  constexpr std::string_view kTpdu = "X.224 TPDU";
  auto payload = tpkt_payload(tpkt);
  if (!payload) return error_of(payload);
  // LI counts the TPDU header after itself; a Data TPDU's user data follows the header.
  if (payload->size() < 2) return fail(not_enough_bytes(kTpdu, "code", payload->size(), 2));
  if (static_cast<std::size_t>((*payload)[0]) + 1 > payload->size())
    return fail(not_enough_bytes(kTpdu, "LI", payload->size(), (*payload)[0] + 1u));
  if ((*payload)[0] == 0) return fail(invalid_field(kTpdu, "LI", "must be at least 1"));
  return static_cast<std::uint8_t>((*payload)[1] & 0xF0);
}

// ---- Connection Request ----

PduResult<ConnectionRequest> decode_connection_request(ByteSpan tpkt) {
  auto x = x224_of(tpkt, kCr);
  if (!x) return error_of(x);
  PduReader r(*x, kCr);
  if (auto ok = r.ensure(kConnectionFixedSize, "fixed part"); !ok) return error_of(ok);
  (void)r.u8("LI");
  if (r.u8("CR-CDT").value() != kX224ConnectionRequest)
    return fail(invalid_field(kCr, "CR-CDT", "not a Connection Request (0xE0)"));
  if (r.u16be("DST-REF").value() != 0) return fail(invalid_field(kCr, "DST-REF", "must be 0"));
  ConnectionRequest req;
  req.src_ref = r.u16be("SRC-REF").value();
  req.class_option = r.u8("CLASS-OPTION").value();
  if (req.class_option != 0) return fail(invalid_field(kCr, "CLASS-OPTION", "must be 0"));

  ByteSpan rest = r.rest();
  if (rest.size() >= kCookiePrefix.size() &&
      std::equal(kCookiePrefix.begin(), kCookiePrefix.end(), rest.begin())) {
    std::string_view text = as_chars(rest);
    const std::size_t crlf = text.find("\r\n");
    if (crlf == std::string_view::npos)
      return fail(invalid_field(kCr, "cookie", "not terminated by CRLF"));
    std::string_view line = text.substr(0, crlf);
    if (line.find_first_of("\r\n") != std::string_view::npos)
      return fail(invalid_field(kCr, "cookie", "contains CR or LF"));
    req.cookie = std::string(line);
    (void)r.skip(crlf + 2, "cookie");
  }
  if (!r.empty()) {
    if (r.rest()[0] != kTypeRdpNegReq)
      return fail(invalid_field(kCr, "type", "expected RDP_NEG_REQ (1)"));
    if (auto ok = r.ensure(kNegStructSize, "RDP_NEG_REQ"); !ok) return error_of(ok);
    (void)r.u8("type");
    NegotiationRequest neg;
    neg.flags = r.u8("flags").value();
    if (r.u16le("length").value() != kNegStructSize)
      return fail(invalid_field(kCr, "RDP_NEG_REQ.length", "must be 8"));
    neg.requested_protocols = r.u32le("requestedProtocols").value();
    req.negotiation = neg;
  }
  if (!r.empty()) {
    if (r.rest()[0] != kTypeRdpCorrelationInfo)
      return fail(invalid_field(kCr, "type", "expected RDP_NEG_CORRELATION_INFO (6)"));
    if (auto ok = r.ensure(kCorrelationInfoSize, "RDP_NEG_CORRELATION_INFO"); !ok)
      return error_of(ok);
    (void)r.u8("type");
    if (r.u8("flags").value() != 0)
      return fail(invalid_field(kCr, "RDP_NEG_CORRELATION_INFO.flags", "must be 0"));
    if (r.u16le("length").value() != kCorrelationInfoSize)
      return fail(invalid_field(kCr, "RDP_NEG_CORRELATION_INFO.length", "must be 36"));
    CorrelationInfo info;
    ByteSpan id = r.take(info.id.size(), "correlationId").value();
    std::copy(id.begin(), id.end(), info.id.begin());
    (void)r.skip(16, "reserved");
    req.correlation = info;
  }
  if (!r.empty()) return fail(invalid_field(kCr, "trailing bytes", "after the last structure"));
  return req;
}

PduResult<Bytes> encode_connection_request(const ConnectionRequest& request) {
  Bytes x;
  PduWriter w(x);
  w.u8(0);  // LI, patched below
  w.u8(kX224ConnectionRequest);
  w.u16be(0);
  w.u16be(request.src_ref);
  w.u8(request.class_option);
  if (request.cookie) {
    if (request.cookie->find_first_of("\r\n") != std::string::npos)
      return fail(invalid_field(kCr, "cookie", "contains CR or LF"));
    w.put(as_bytes(*request.cookie));
    w.put(as_bytes("\r\n"));
  }
  if (request.negotiation) {
    w.u8(kTypeRdpNegReq);
    w.u8(request.negotiation->flags);
    w.u16le(kNegStructSize);
    w.u32le(request.negotiation->requested_protocols);
  }
  if (request.correlation) {
    w.u8(kTypeRdpCorrelationInfo);
    w.u8(0);
    w.u16le(kCorrelationInfoSize);
    w.put(request.correlation->id);
    for (int i = 0; i < 16; ++i) w.u8(0);
  }
  if (x.size() - 1 > 0xFE) return fail(too_large(kCr, "LI", x.size() - 1, 0xFE));
  x[0] = static_cast<std::uint8_t>(x.size() - 1);
  return encode_tpkt(x);
}

// ---- Connection Confirm ----

PduResult<ConnectionConfirm> decode_connection_confirm(ByteSpan tpkt) {
  auto x = x224_of(tpkt, kCc);
  if (!x) return error_of(x);
  PduReader r(*x, kCc);
  if (auto ok = r.ensure(kConnectionFixedSize, "fixed part"); !ok) return error_of(ok);
  (void)r.u8("LI");
  if (r.u8("CC-CDT").value() != kX224ConnectionConfirm)
    return fail(invalid_field(kCc, "CC-CDT", "not a Connection Confirm (0xD0)"));
  ConnectionConfirm cc;
  cc.dst_ref = r.u16be("DST-REF").value();
  cc.src_ref = r.u16be("SRC-REF").value();
  cc.class_option = r.u8("CLASS-OPTION").value();
  if (r.empty()) return cc;
  if (auto ok = r.ensure(kNegStructSize, "RDP_NEG_RSP"); !ok) return error_of(ok);
  const std::uint8_t type = r.u8("type").value();
  const std::uint8_t flags = r.u8("flags").value();
  if (r.u16le("length").value() != kNegStructSize)
    return fail(invalid_field(kCc, "length", "must be 8"));
  const std::uint32_t value = r.u32le("selectedProtocol").value();
  if (type == kTypeRdpNegRsp) {
    cc.response = NegotiationResponse{flags, value};
  } else if (type == kTypeRdpNegFailure) {
    cc.failure_code = value;
  } else {
    return fail(invalid_field(kCc, "type", "neither RDP_NEG_RSP (2) nor RDP_NEG_FAILURE (3)"));
  }
  if (!r.empty()) return fail(invalid_field(kCc, "trailing bytes", "after the negotiation"));
  return cc;
}

PduResult<Bytes> encode_connection_confirm(const ConnectionConfirm& confirm) {
  if (confirm.response && confirm.failure_code)
    return fail(invalid_field(kCc, "type", "both RDP_NEG_RSP and RDP_NEG_FAILURE set"));
  Bytes x;
  PduWriter w(x);
  w.u8(0);
  w.u8(kX224ConnectionConfirm);
  w.u16be(confirm.dst_ref);
  w.u16be(confirm.src_ref);
  w.u8(confirm.class_option);
  if (confirm.response) {
    w.u8(kTypeRdpNegRsp);
    w.u8(confirm.response->flags);
    w.u16le(kNegStructSize);
    w.u32le(confirm.response->selected_protocol);
  } else if (confirm.failure_code) {
    w.u8(kTypeRdpNegFailure);
    w.u8(0);
    w.u16le(kNegStructSize);
    w.u32le(*confirm.failure_code);
  }
  x[0] = static_cast<std::uint8_t>(x.size() - 1);
  return encode_tpkt(x);
}

// ---- Data ----

PduResult<ByteSpan> decode_data_tpdu(ByteSpan tpkt) {
  auto payload = tpkt_payload(tpkt);
  if (!payload) return error_of(payload);
  PduReader r(*payload, kDt);
  if (auto ok = r.ensure(kX224DataHeaderSize, "header"); !ok) return error_of(ok);
  if (r.u8("LI").value() != kX224DataHeader[0]) return fail(invalid_field(kDt, "LI", "must be 2"));
  if (r.u8("DT").value() != kX224Data)
    return fail(invalid_field(kDt, "DT", "not a Data TPDU (0xF0)"));
  if (r.u8("EOT").value() != kX224DataHeader[2])
    return fail(invalid_field(kDt, "EOT", "must be 0x80 (RDP does not segment)"));
  return r.rest();
}

PduResult<Bytes> encode_data_tpdu(ByteSpan payload) {
  if (payload.size() > kMaxDataPayload)
    return fail(too_large(kDt, "payload", payload.size(), kMaxDataPayload));
  Bytes out;
  out.reserve(kDataPayloadOffset + payload.size());
  PduWriter w(out);
  write_tpkt_header(w, kDataPayloadOffset + payload.size());
  w.put(kX224DataHeader);
  w.put(payload);
  return out;
}

}  // namespace enclave::gateway
