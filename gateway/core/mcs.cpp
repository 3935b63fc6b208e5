#include "gateway/core/mcs.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include "gateway/core/x224.hpp"

namespace enclave::gateway {
namespace {

constexpr std::string_view kCi = "MCS Connect-Initial";
constexpr std::string_view kCr = "MCS Connect-Response";
constexpr std::string_view kDomain = "MCS domain PDU";

// BER identifiers (X.690 8.1.2): universal class, and [APPLICATION n] constructed in the
// two-byte high-tag-number form (0x7F, n).
constexpr std::uint8_t kBerBoolean = 0x01;
constexpr std::uint8_t kBerInteger = 0x02;
constexpr std::uint8_t kBerOctetString = 0x04;
constexpr std::uint8_t kBerEnumerated = 0x0A;
constexpr std::uint8_t kBerSequence = 0x30;
constexpr std::uint8_t kBerApplication = 0x7F;
constexpr std::uint8_t kAppConnectInitial = 101;
constexpr std::uint8_t kAppConnectResponse = 102;
constexpr std::size_t kMaxDomainSelector = 16;

// T.124 ConnectData.t124Identifier: object 0.0.20.124.0.1 (PER: length 5, then the BER
// sub-identifiers with the first two folded into one byte).
constexpr std::array<std::uint8_t, 6> kT124Oid{0x05, 0x00, 0x14, 0x7C, 0x00, 0x01};
constexpr std::array<std::uint8_t, 4> kH221ClientKey{'D', 'u', 'c', 'a'};
constexpr std::array<std::uint8_t, 4> kH221ServerKey{'M', 'c', 'D', 'n'};
// ConnectGCCPDU choice + ConferenceCreateRequest preamble bits (userData present: 0x08).
constexpr std::uint8_t kGccCreateRequestChoice = 0x00;
constexpr std::uint8_t kGccCreateRequestSelection = 0x08;
constexpr std::uint8_t kGccCreateResponseChoice = 0x14;
constexpr std::uint8_t kH221NonStandardChoice = 0xC0;

// ---- BER (X.690) ----

PduResult<std::size_t> ber_length(PduReader& r, std::string_view field) {
  auto first = r.u8(field);
  if (!first) return error_of(first);
  if (*first < 0x80) return static_cast<std::size_t>(*first);
  const std::size_t n = *first & 0x7F;
  if (n == 0) return fail(invalid_field(r.pdu(), field, "indefinite BER length"));
  if (n > 4) return fail(invalid_field(r.pdu(), field, "BER length of more than 4 bytes"));
  auto bytes = r.take(n, field);
  if (!bytes) return error_of(bytes);
  std::size_t v = 0;
  for (std::uint8_t b : *bytes) v = (v << 8) | b;
  return v;
}

// Reads identifier `tag` and a length, and returns the contents (which must fit).
PduResult<ByteSpan> ber_element(PduReader& r, std::uint8_t tag, std::string_view field) {
  auto t = r.u8(field);
  if (!t) return error_of(t);
  if (*t != tag) return fail(invalid_field(r.pdu(), field, "unexpected BER tag"));
  auto len = ber_length(r, field);
  if (!len) return error_of(len);
  return r.take(*len, field);
}

PduResult<ByteSpan> ber_application(PduReader& r, std::uint8_t number, std::string_view field) {
  auto t = r.u8(field);
  if (!t) return error_of(t);
  auto n = r.u8(field);
  if (!n) return error_of(n);
  if (*t != kBerApplication || *n != number)
    return fail(unexpected_message(r.pdu(), "not this BER application tag"));
  auto len = ber_length(r, field);
  if (!len) return error_of(len);
  return r.take(*len, field);
}

PduResult<std::uint32_t> ber_unsigned(PduReader& r, std::uint8_t tag, std::string_view field) {
  auto content = ber_element(r, tag, field);
  if (!content) return error_of(content);
  if (content->empty() || content->size() > 4)
    return fail(invalid_field(r.pdu(), field, "BER integer of 0 or more than 4 bytes"));
  std::uint32_t v = 0;
  for (std::uint8_t b : *content) v = (v << 8) | b;
  return v;
}

void ber_write_length(PduWriter& w, std::size_t len) {
  if (len < 0x80) {
    w.u8(static_cast<std::uint8_t>(len));
  } else if (len <= 0xFF) {
    w.u8(0x81);
    w.u8(static_cast<std::uint8_t>(len));
  } else {
    // INVARIANT: callers keep len within a TPKT PDU (< 64 KiB).
    w.u8(0x82);
    w.u16be(static_cast<std::uint16_t>(len));
  }
}

void ber_write_element(PduWriter& w, std::uint8_t tag, ByteSpan content) {
  w.u8(tag);
  ber_write_length(w, content.size());
  w.put(content);
}

void ber_write_unsigned(PduWriter& w, std::uint8_t tag, std::uint32_t v) {
  // The lengths FreeRDP uses: the value read back unsigned is the same.
  std::size_t n = v < 0x80 ? 1 : v < 0x8000 ? 2 : v < 0x800000 ? 3 : 4;
  w.u8(tag);
  w.u8(static_cast<std::uint8_t>(n));
  for (std::size_t i = n; i-- > 0;) w.u8(static_cast<std::uint8_t>(v >> (8 * i)));
}

PduResult<DomainParameters> read_domain_parameters(PduReader& r, std::string_view field) {
  auto seq = ber_element(r, kBerSequence, field);
  if (!seq) return error_of(seq);
  PduReader s(*seq, r.pdu());
  std::array<std::uint32_t, 8> v{};
  for (auto& x : v) {
    auto i = ber_unsigned(s, kBerInteger, field);
    if (!i) return error_of(i);
    x = *i;
  }
  if (!s.empty()) return fail(invalid_field(r.pdu(), field, "more than 8 DomainParameters"));
  return DomainParameters{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]};
}

void write_domain_parameters(PduWriter& w, const DomainParameters& p) {
  Bytes seq;
  PduWriter s(seq);
  for (std::uint32_t v : {p.max_channel_ids, p.max_user_ids, p.max_token_ids, p.num_priorities,
                          p.min_throughput, p.max_height, p.max_mcspdu_size, p.protocol_version}) {
    ber_write_unsigned(s, kBerInteger, v);
  }
  ber_write_element(w, kBerSequence, seq);
}

// ---- ALIGNED PER (X.691) as T.124 and T.125 use it ----

// A length determinant: one byte below 0x80, or two bytes with 0x80 set. Read as 15 bits,
// as FreeRDP writes it (length | 0x8000 even above 16 KiB), rather than X.691's 14 bits.
PduResult<std::size_t> per_length(PduReader& r, std::string_view field) {
  auto first = r.u8(field);
  if (!first) return error_of(first);
  if ((*first & 0x80) == 0) return static_cast<std::size_t>(*first);
  auto second = r.u8(field);
  if (!second) return error_of(second);
  return (static_cast<std::size_t>(*first & 0x7F) << 8) | *second;
}

void per_write_length(PduWriter& w, std::size_t len) {
  // INVARIANT: callers check len <= 0x7FFF.
  if (len < 0x80) {
    w.u8(static_cast<std::uint8_t>(len));
  } else {
    w.u16be(static_cast<std::uint16_t>(0x8000 | len));
  }
}

PduResult<void> expect_byte(PduReader& r, std::uint8_t want, std::string_view field,
                            std::string_view reason) {
  auto b = r.u8(field);
  if (!b) return error_of(b);
  if (*b != want) return fail(invalid_field(r.pdu(), field, reason));
  return {};
}

PduResult<void> expect_bytes(PduReader& r, ByteSpan want, std::string_view field,
                             std::string_view reason) {
  auto b = r.take(want.size(), field);
  if (!b) return error_of(b);
  if (!std::equal(b->begin(), b->end(), want.begin()))
    return fail(invalid_field(r.pdu(), field, reason));
  return {};
}

// PER unconstrained INTEGER: a length byte (1..4) and that many bytes, read unsigned.
PduResult<std::uint32_t> per_integer(PduReader& r, std::string_view field) {
  auto len = r.u8(field);
  if (!len) return error_of(len);
  if (*len == 0 || *len > 4)
    return fail(invalid_field(r.pdu(), field, "PER integer of 0 or more than 4 bytes"));
  auto bytes = r.take(*len, field);
  if (!bytes) return error_of(bytes);
  std::uint32_t v = 0;
  for (std::uint8_t b : *bytes) v = (v << 8) | b;
  return v;
}

void per_write_integer(PduWriter& w, std::uint32_t v) {
  std::size_t n = v <= 0xFF ? 1 : v <= 0xFFFF ? 2 : 4;
  w.u8(static_cast<std::uint8_t>(n));
  for (std::size_t i = n; i-- > 0;) w.u8(static_cast<std::uint8_t>(v >> (8 * i)));
}

// ConnectData { t124Identifier, connectPDU length } common to request and response. The
// connectPDU length is read but not trusted: Windows and FreeRDP servers send 0x2A whatever
// the response's size (MS-RDPBCGR 4.1.4), and the BER octet string and the H.221 user data
// length already bound everything that follows.
PduResult<void> read_connect_data_header(PduReader& r) {
  if (auto ok = expect_byte(r, 0x00, "t124Identifier", "key is not an object identifier"); !ok)
    return ok;
  if (auto ok = expect_bytes(r, kT124Oid, "t124Identifier", "not T.124 (0.0.20.124.0.1)"); !ok)
    return ok;
  auto len = per_length(r, "connectPDU length");
  if (!len) return error_of(len);
  return {};
}

// The H.221 key and the user data length; returns the blocks, which must end the PDU.
PduResult<ByteSpan> read_h221_blocks(PduReader& r, ByteSpan key) {
  if (auto ok = expect_byte(r, 0x01, "userData", "not exactly one user data set"); !ok)
    return error_of(ok);
  if (auto ok = expect_byte(r, kH221NonStandardChoice, "userData", "key is not h221NonStandard");
      !ok)
    return error_of(ok);
  if (auto ok = expect_byte(r, 0x00, "H.221 key", "key is not 4 bytes"); !ok) return error_of(ok);
  if (auto ok = expect_bytes(r, key, "H.221 key", "not the RDP key"); !ok) return error_of(ok);
  auto len = per_length(r, "userData length");
  if (!len) return error_of(len);
  if (*len != r.remaining()) {
    if (*len > r.remaining())
      return fail(not_enough_bytes(r.pdu(), "userData", r.remaining(), *len));
    return fail(invalid_field(r.pdu(), "userData length", "trailing bytes after the blocks"));
  }
  return r.take(*len, "userData");
}

void write_h221_blocks(PduWriter& w, ByteSpan key, ByteSpan blocks) {
  w.u8(0x01);
  w.u8(kH221NonStandardChoice);
  w.u8(0x00);
  w.put(key);
  per_write_length(w, blocks.size());
  w.put(blocks);
}

// connect_pdu_length: the value to write, normally connect_pdu.size().
Bytes wrap_connect_data(ByteSpan connect_pdu, std::size_t connect_pdu_length) {
  Bytes out;
  PduWriter w(out);
  w.u8(0x00);
  w.put(kT124Oid);
  per_write_length(w, connect_pdu_length);
  w.put(connect_pdu);
  return out;
}

// The MCS bytes of a TPKT + X.224 Data PDU and their offset in it.
PduResult<ByteSpan> mcs_of(ByteSpan tpkt, std::string_view pdu) {
  auto mcs = decode_data_tpdu(tpkt);
  if (!mcs) {
    PduError e = mcs.error();
    e.pdu = std::string(pdu) + " " + e.pdu;
    return fail(std::move(e));
  }
  return *mcs;
}

// Largest GCC user data PER's 15-bit length can carry; the TPKT limit is checked last.
constexpr std::size_t kMaxBlocks = 0x7FFF - 64;

PduResult<Bytes> finish_connect_pdu(std::uint8_t app, ByteSpan content, std::string_view pdu) {
  Bytes mcs;
  PduWriter w(mcs);
  w.u8(kBerApplication);
  w.u8(app);
  ber_write_length(w, content.size());
  w.put(content);
  auto out = encode_data_tpdu(mcs);
  if (!out) return fail(too_large(pdu, "length", mcs.size(), kMaxDataPayload));
  return out;
}

}  // namespace

// ---- Connect-Initial ----

PduResult<DecodedConnectInitial> decode_connect_initial(ByteSpan tpkt) {
  auto mcs = mcs_of(tpkt, kCi);
  if (!mcs) return error_of(mcs);
  PduReader outer(*mcs, kCi);
  auto body = ber_application(outer, kAppConnectInitial, "Connect-Initial tag");
  if (!body) return error_of(body);
  if (!outer.empty())
    return fail(invalid_field(kCi, "Connect-Initial length", "trailing bytes after the PDU"));

  const std::size_t body_offset = kDataPayloadOffset + (body->data() - mcs->data());
  PduReader r(*body, kCi);
  DecodedConnectInitial d;
  auto calling = ber_element(r, kBerOctetString, "callingDomainSelector");
  if (!calling) return error_of(calling);
  auto called = ber_element(r, kBerOctetString, "calledDomainSelector");
  if (!called) return error_of(called);
  if (calling->size() > kMaxDomainSelector || called->size() > kMaxDomainSelector)
    return fail(too_large(kCi, "domainSelector", std::max(calling->size(), called->size()),
                          kMaxDomainSelector));
  d.fields.calling_domain_selector.assign(calling->begin(), calling->end());
  d.fields.called_domain_selector.assign(called->begin(), called->end());
  auto upward = ber_element(r, kBerBoolean, "upwardFlag");
  if (!upward) return error_of(upward);
  if (upward->size() != 1) return fail(invalid_field(kCi, "upwardFlag", "not one byte"));
  d.fields.upward_flag = (*upward)[0] != 0;
  auto target = read_domain_parameters(r, "targetParameters");
  if (!target) return error_of(target);
  auto minimum = read_domain_parameters(r, "minimumParameters");
  if (!minimum) return error_of(minimum);
  auto maximum = read_domain_parameters(r, "maximumParameters");
  if (!maximum) return error_of(maximum);
  d.fields.target = *target;
  d.fields.minimum = *minimum;
  d.fields.maximum = *maximum;
  auto user = ber_element(r, kBerOctetString, "userData");
  if (!user) return error_of(user);
  if (!r.empty()) return fail(invalid_field(kCi, "userData", "trailing bytes after userData"));

  PduReader g(*user, "GCC Conference Create Request");
  if (auto ok = read_connect_data_header(g); !ok) return error_of(ok);
  if (auto ok =
          expect_byte(g, kGccCreateRequestChoice, "ConnectGCCPDU", "not a conferenceCreateRequest");
      !ok)
    return error_of(ok);
  if (auto ok = expect_byte(g, kGccCreateRequestSelection, "selection",
                            "optional fields other than userData");
      !ok)
    return error_of(ok);
  // conferenceName: a NumericString of at least 1 digit, length - 1 then packed BCD.
  auto name_len = g.u8("conferenceName");
  if (!name_len) return error_of(name_len);
  if (auto ok = g.skip((static_cast<std::size_t>(*name_len) + 2) / 2, "conferenceName"); !ok)
    return error_of(ok);
  if (auto ok = g.skip(1, "terminationMethod"); !ok) return error_of(ok);
  auto blocks = read_h221_blocks(g, kH221ClientKey);
  if (!blocks) return error_of(blocks);
  d.blocks = *blocks;
  d.blocks_offset = body_offset + static_cast<std::size_t>(blocks->data() - body->data());
  return d;
}

PduResult<Bytes> encode_connect_initial(const ConnectInitial& fields, ByteSpan blocks) {
  if (blocks.size() > kMaxBlocks)
    return fail(too_large(kCi, "userData", blocks.size(), kMaxBlocks));
  if (fields.calling_domain_selector.size() > kMaxDomainSelector ||
      fields.called_domain_selector.size() > kMaxDomainSelector)
    return fail(invalid_field(kCi, "domainSelector", "longer than 16 bytes"));
  Bytes gcc;
  PduWriter g(gcc);
  g.u8(kGccCreateRequestChoice);
  g.u8(kGccCreateRequestSelection);
  g.u8(0x00);  // conferenceName "1": length 1 - 1
  g.u8(0x10);  // digit '1' packed in the high nibble
  g.u8(0x00);  // terminationMethod automatic
  write_h221_blocks(g, kH221ClientKey, blocks);
  Bytes user = wrap_connect_data(gcc, gcc.size());

  Bytes body;
  PduWriter w(body);
  ber_write_element(w, kBerOctetString, fields.calling_domain_selector);
  ber_write_element(w, kBerOctetString, fields.called_domain_selector);
  const std::uint8_t upward = fields.upward_flag ? 0xFF : 0x00;
  ber_write_element(w, kBerBoolean, ByteSpan(&upward, 1));
  write_domain_parameters(w, fields.target);
  write_domain_parameters(w, fields.minimum);
  write_domain_parameters(w, fields.maximum);
  ber_write_element(w, kBerOctetString, user);
  return finish_connect_pdu(kAppConnectInitial, body, kCi);
}

// ---- Connect-Response ----

PduResult<DecodedConnectResponse> decode_connect_response(ByteSpan tpkt) {
  auto mcs = mcs_of(tpkt, kCr);
  if (!mcs) return error_of(mcs);
  PduReader outer(*mcs, kCr);
  auto body = ber_application(outer, kAppConnectResponse, "Connect-Response tag");
  if (!body) return error_of(body);
  if (!outer.empty())
    return fail(invalid_field(kCr, "Connect-Response length", "trailing bytes after the PDU"));

  const std::size_t body_offset = kDataPayloadOffset + (body->data() - mcs->data());
  PduReader r(*body, kCr);
  DecodedConnectResponse d;
  auto result = ber_unsigned(r, kBerEnumerated, "result");
  if (!result) return error_of(result);
  if (*result > 0xFF) return fail(invalid_field(kCr, "result", "above 255"));
  d.fields.result = static_cast<std::uint8_t>(*result);
  auto id = ber_unsigned(r, kBerInteger, "calledConnectId");
  if (!id) return error_of(id);
  d.fields.called_connect_id = *id;
  auto domain = read_domain_parameters(r, "domainParameters");
  if (!domain) return error_of(domain);
  d.fields.domain = *domain;
  auto user = ber_element(r, kBerOctetString, "userData");
  if (!user) return error_of(user);
  if (!r.empty()) return fail(invalid_field(kCr, "userData", "trailing bytes after userData"));

  PduReader g(*user, "GCC Conference Create Response");
  if (auto ok = read_connect_data_header(g); !ok) return error_of(ok);
  if (auto ok = expect_byte(g, kGccCreateResponseChoice, "ConnectGCCPDU",
                            "not a conferenceCreateResponse");
      !ok)
    return error_of(ok);
  auto node = g.u16be("nodeID");
  if (!node) return error_of(node);
  if (*node > 0xFFFF - kMcsBaseChannelId)
    return fail(invalid_field(g.pdu(), "nodeID", "above 65535"));
  d.fields.gcc_node_id = static_cast<std::uint16_t>(*node + kMcsBaseChannelId);
  auto tag = per_integer(g, "tag");
  if (!tag) return error_of(tag);
  d.fields.gcc_tag = *tag;
  auto gresult = g.u8("result");
  if (!gresult) return error_of(gresult);
  d.fields.gcc_result = *gresult;
  auto blocks = read_h221_blocks(g, kH221ServerKey);
  if (!blocks) return error_of(blocks);
  d.blocks = *blocks;
  d.blocks_offset = body_offset + static_cast<std::size_t>(blocks->data() - body->data());
  return d;
}

PduResult<Bytes> encode_connect_response(const ConnectResponse& fields, ByteSpan blocks) {
  if (blocks.size() > kMaxBlocks)
    return fail(too_large(kCr, "userData", blocks.size(), kMaxBlocks));
  if (fields.gcc_node_id < kMcsBaseChannelId)
    return fail(invalid_field(kCr, "nodeID", "below 1001"));
  Bytes gcc;
  PduWriter g(gcc);
  g.u8(kGccCreateResponseChoice);
  g.u16be(static_cast<std::uint16_t>(fields.gcc_node_id - kMcsBaseChannelId));
  per_write_integer(g, fields.gcc_tag);
  g.u8(fields.gcc_result);
  write_h221_blocks(g, kH221ServerKey, blocks);
  // The fixed connectPDU length Windows and FreeRDP servers send (MS-RDPBCGR 4.1.4).
  Bytes user = wrap_connect_data(gcc, 0x2A);

  Bytes body;
  PduWriter w(body);
  ber_write_unsigned(w, kBerEnumerated, fields.result);
  ber_write_unsigned(w, kBerInteger, fields.called_connect_id);
  write_domain_parameters(w, fields.domain);
  ber_write_element(w, kBerOctetString, user);
  return finish_connect_pdu(kAppConnectResponse, body, kCr);
}

// ---- domain PDUs ----

const char* domain_pdu_name(DomainPduType type) {
  switch (type) {
    case DomainPduType::kErectDomainRequest:
      return "Erect Domain Request";
    case DomainPduType::kDisconnectProviderUltimatum:
      return "Disconnect Provider Ultimatum";
    case DomainPduType::kAttachUserRequest:
      return "Attach User Request";
    case DomainPduType::kAttachUserConfirm:
      return "Attach User Confirm";
    case DomainPduType::kChannelJoinRequest:
      return "Channel Join Request";
    case DomainPduType::kChannelJoinConfirm:
      return "Channel Join Confirm";
    case DomainPduType::kSendDataRequest:
      return "Send Data Request";
    case DomainPduType::kSendDataIndication:
      return "Send Data Indication";
  }
  return "MCS domain PDU";
}

namespace {

PduResult<std::uint16_t> read_user_id(PduReader& r, std::string_view field) {
  auto v = r.u16be(field);
  if (!v) return error_of(v);
  if (*v > 0xFFFF - kMcsBaseChannelId)
    return fail(invalid_field(r.pdu(), field, "UserId above 65535"));
  return static_cast<std::uint16_t>(*v + kMcsBaseChannelId);
}

PduResult<void> no_trailing(const PduReader& r) {
  if (!r.empty()) return fail(invalid_field(r.pdu(), "trailing bytes", "after the PDU"));
  return {};
}

}  // namespace

PduResult<DomainPdu> decode_domain_pdu(ByteSpan mcs) {
  PduReader r(mcs, kDomain);
  auto first = r.u8("choice");
  if (!first) return error_of(first);
  const std::uint8_t choice = *first >> 2;
  const std::uint8_t low = *first & 0x03;
  DomainPdu pdu;
  pdu.type = static_cast<DomainPduType>(choice);
  PduReader b(r.rest(), domain_pdu_name(pdu.type));
  switch (pdu.type) {
    case DomainPduType::kErectDomainRequest: {
      if (low != 0) return fail(invalid_field(b.pdu(), "choice", "low bits set"));
      auto height = per_integer(b, "subHeight");
      if (!height) return error_of(height);
      auto interval = per_integer(b, "subInterval");
      if (!interval) return error_of(interval);
      pdu.sub_height = *height;
      pdu.sub_interval = *interval;
      break;
    }
    case DomainPduType::kDisconnectProviderUltimatum: {
      auto second = b.u8("reason");
      if (!second) return error_of(second);
      if ((*second & 0x7F) != 0) return fail(invalid_field(b.pdu(), "reason", "padding bits set"));
      pdu.reason = static_cast<std::uint8_t>((low << 1) | (*second >> 7));
      if (pdu.reason > kReasonChannelPurged)
        return fail(invalid_field(b.pdu(), "reason", "above rn-channel-purged (4)"));
      break;
    }
    case DomainPduType::kAttachUserRequest:
      if (low != 0) return fail(invalid_field(b.pdu(), "choice", "low bits set"));
      break;
    case DomainPduType::kAttachUserConfirm: {
      if ((low & 0x01) != 0) return fail(invalid_field(b.pdu(), "choice", "bit 0 set"));
      auto result = b.u8("result");
      if (!result) return error_of(result);
      pdu.result = *result;
      if (low & 0x02) {
        auto initiator = read_user_id(b, "initiator");
        if (!initiator) return error_of(initiator);
        pdu.initiator = *initiator;
      }
      break;
    }
    case DomainPduType::kChannelJoinRequest: {
      if (low != 0) return fail(invalid_field(b.pdu(), "choice", "low bits set"));
      auto initiator = read_user_id(b, "initiator");
      if (!initiator) return error_of(initiator);
      auto channel = b.u16be("channelId");
      if (!channel) return error_of(channel);
      pdu.initiator = *initiator;
      pdu.channel_id = *channel;
      break;
    }
    case DomainPduType::kChannelJoinConfirm: {
      if ((low & 0x01) != 0) return fail(invalid_field(b.pdu(), "choice", "bit 0 set"));
      auto result = b.u8("result");
      if (!result) return error_of(result);
      auto initiator = read_user_id(b, "initiator");
      if (!initiator) return error_of(initiator);
      auto requested = b.u16be("requested");
      if (!requested) return error_of(requested);
      pdu.result = *result;
      pdu.initiator = *initiator;
      pdu.channel_id = *requested;
      if (low & 0x02) {
        auto joined = b.u16be("channelId");
        if (!joined) return error_of(joined);
        pdu.joined_channel_id = *joined;
      }
      break;
    }
    case DomainPduType::kSendDataRequest:
    case DomainPduType::kSendDataIndication: {
      if (low != 0) return fail(invalid_field(b.pdu(), "choice", "low bits set"));
      auto initiator = read_user_id(b, "initiator");
      if (!initiator) return error_of(initiator);
      auto channel = b.u16be("channelId");
      if (!channel) return error_of(channel);
      auto flags = b.u8("dataPriority");
      if (!flags) return error_of(flags);
      auto len = per_length(b, "length");
      if (!len) return error_of(len);
      if (*len < b.remaining())
        return fail(invalid_field(b.pdu(), "length", "trailing bytes after userData"));
      auto data = b.take(*len, "userData");
      if (!data) return error_of(data);
      pdu.initiator = *initiator;
      pdu.channel_id = *channel;
      pdu.data_flags = *flags;
      pdu.user_data = *data;
      pdu.user_data_offset = static_cast<std::size_t>(data->data() - mcs.data());
      break;
    }
    default:
      return fail(unexpected_message(
          kDomain, "DomainMCSPDU choice " + std::to_string(choice) + " is not used by RDP"));
  }
  if (auto ok = no_trailing(b); !ok) return error_of(ok);
  return pdu;
}

PduResult<DomainPdu> decode_domain_pdu_in_tpkt(ByteSpan tpkt) {
  auto mcs = mcs_of(tpkt, kDomain);
  if (!mcs) return error_of(mcs);
  auto pdu = decode_domain_pdu(*mcs);
  if (!pdu) return pdu;
  pdu->user_data_offset += kDataPayloadOffset;
  return pdu;
}

PduResult<Bytes> encode_domain_pdu(const DomainPdu& pdu) {
  Bytes out;
  PduWriter w(out);
  const auto choice = static_cast<std::uint8_t>(static_cast<std::uint8_t>(pdu.type) << 2);
  const char* name = domain_pdu_name(pdu.type);
  auto need_initiator = [&]() -> PduResult<std::uint16_t> {
    if (!pdu.initiator || *pdu.initiator < kMcsBaseChannelId)
      return fail(invalid_field(name, "initiator", "missing or below 1001"));
    return static_cast<std::uint16_t>(*pdu.initiator - kMcsBaseChannelId);
  };
  switch (pdu.type) {
    case DomainPduType::kErectDomainRequest:
      w.u8(choice);
      per_write_integer(w, pdu.sub_height);
      per_write_integer(w, pdu.sub_interval);
      return out;
    case DomainPduType::kDisconnectProviderUltimatum: {
      if (pdu.reason > kReasonChannelPurged)
        return fail(invalid_field(name, "reason", "above rn-channel-purged (4)"));
      w.u8(static_cast<std::uint8_t>(choice | (pdu.reason >> 1)));
      w.u8(static_cast<std::uint8_t>((pdu.reason & 1) << 7));
      return out;
    }
    case DomainPduType::kAttachUserRequest:
      w.u8(choice);
      return out;
    case DomainPduType::kAttachUserConfirm:
      if (pdu.initiator) {
        auto id = need_initiator();
        if (!id) return error_of(id);
        w.u8(choice | 0x02);
        w.u8(pdu.result);
        w.u16be(*id);
      } else {
        w.u8(choice);
        w.u8(pdu.result);
      }
      return out;
    case DomainPduType::kChannelJoinRequest: {
      auto id = need_initiator();
      if (!id) return error_of(id);
      w.u8(choice);
      w.u16be(*id);
      w.u16be(pdu.channel_id);
      return out;
    }
    case DomainPduType::kChannelJoinConfirm: {
      auto id = need_initiator();
      if (!id) return error_of(id);
      w.u8(pdu.joined_channel_id ? choice | 0x02 : choice);
      w.u8(pdu.result);
      w.u16be(*id);
      w.u16be(pdu.channel_id);
      if (pdu.joined_channel_id) w.u16be(*pdu.joined_channel_id);
      return out;
    }
    case DomainPduType::kSendDataRequest:
    case DomainPduType::kSendDataIndication: {
      auto id = need_initiator();
      if (!id) return error_of(id);
      if (pdu.user_data.size() > 0x7FFF)
        return fail(too_large(name, "length", pdu.user_data.size(), 0x7FFF));
      w.u8(choice);
      w.u16be(*id);
      w.u16be(pdu.channel_id);
      w.u8(pdu.data_flags);
      per_write_length(w, pdu.user_data.size());
      w.put(pdu.user_data);
      return out;
    }
  }
  return fail(invalid_field(kDomain, "choice", "not a DomainMCSPDU RDP uses"));
}

PduResult<Bytes> encode_send_data(const SendDataHeader& header, ByteSpan user_data) {
  DomainPdu pdu;
  pdu.type =
      header.indication ? DomainPduType::kSendDataIndication : DomainPduType::kSendDataRequest;
  pdu.initiator = header.initiator;
  pdu.channel_id = header.channel_id;
  pdu.data_flags = header.data_flags;
  pdu.user_data = user_data;
  auto mcs = encode_domain_pdu(pdu);
  if (!mcs) return error_of(mcs);
  return encode_data_tpdu(*mcs);
}

Bytes encode_disconnect_provider_ultimatum(std::uint8_t reason) {
  if (reason > kReasonChannelPurged) reason = kReasonUserRequested;
  const auto choice = static_cast<std::uint8_t>(
      static_cast<std::uint8_t>(DomainPduType::kDisconnectProviderUltimatum) << 2);
  const std::array<std::uint8_t, 2> mcs{static_cast<std::uint8_t>(choice | (reason >> 1)),
                                        static_cast<std::uint8_t>((reason & 1) << 7)};
  auto out = encode_data_tpdu(mcs);
  return std::move(out).value();  // INVARIANT: 2 bytes always fit
}

}  // namespace enclave::gateway
