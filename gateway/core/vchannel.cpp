#include "gateway/core/vchannel.hpp"

#include <algorithm>
#include <cstring>

namespace enclave::gateway {

namespace {

constexpr std::string_view kChannelPdu = "CHANNEL_PDU_HEADER";
constexpr std::string_view kDynvc = "drdynvc PDU";

// Pad (1) + Version (2)
constexpr std::size_t kCapsFixedSize = 1 + 2;
// PriorityCharge0..3 (2 each)
constexpr std::size_t kPriorityChargesSize = 4 * 2;

PduResult<std::uint32_t> read_sized(PduReader& r, std::uint8_t code, std::string_view field) {
  switch (code) {
    case 0: {
      auto v = r.u8(field);
      if (!v) return error_of(v);
      return std::uint32_t{*v};
    }
    case 1: {
      auto v = r.u16le(field);
      if (!v) return error_of(v);
      return std::uint32_t{*v};
    }
    case 2:
      return r.u32le(field);
    default:
      return fail(invalid_field(kDynvc, field, "size code 3 is invalid"));
  }
}

void write_sized(PduWriter& w, std::uint8_t code, std::uint32_t v) {
  switch (code) {
    case 0:
      w.u8(static_cast<std::uint8_t>(v));
      break;
    case 1:
      w.u16le(static_cast<std::uint16_t>(v));
      break;
    default:
      w.u32le(v);
      break;
  }
}

bool has_channel_id(DynvcCmd cmd) {
  switch (cmd) {
    case DynvcCmd::kCreate:
    case DynvcCmd::kDataFirst:
    case DynvcCmd::kData:
    case DynvcCmd::kClose:
    case DynvcCmd::kDataFirstCompressed:
    case DynvcCmd::kDataCompressed:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::uint8_t dynvc_size_code(std::uint32_t v) {
  if (v <= 0xFF) return 0;
  if (v <= 0xFFFF) return 1;
  return 2;
}

PduResult<ChannelPdu> decode_channel_pdu(ByteSpan user_data) {
  PduReader r(user_data, kChannelPdu);
  if (auto ok = r.ensure(kChannelPduHeaderSize, "header"); !ok) return error_of(ok);
  ChannelPdu pdu;
  pdu.length = r.u32le("length").value();
  pdu.flags = r.u32le("flags").value();
  pdu.data = r.rest();
  if (pdu.first() && !pdu.compressed() && pdu.data.size() > pdu.length) {
    return fail(invalid_field(kChannelPdu, "length", "first chunk longer than the message"));
  }
  return pdu;
}

void encode_channel_pdu(std::uint32_t length, std::uint32_t flags, ByteSpan data, Bytes& out) {
  PduWriter w(out);
  w.u32le(length);
  w.u32le(flags);
  w.put(data);
}

PduResult<DynvcPdu> decode_dynvc(ByteSpan data, DynvcFrom from) {
  PduReader r(data, kDynvc);
  auto header = r.u8("header");
  if (!header) return error_of(header);
  DynvcPdu pdu;
  pdu.cb_id = *header & 0x03;
  pdu.sp = (*header >> 2) & 0x03;
  const std::uint8_t cmd = *header >> 4;
  if (cmd < 0x01 || cmd > 0x09) return fail(invalid_field(kDynvc, "Cmd", "unknown command"));
  pdu.cmd = static_cast<DynvcCmd>(cmd);

  if (has_channel_id(pdu.cmd)) {
    auto id = read_sized(r, pdu.cb_id, "ChannelId");
    if (!id) return error_of(id);
    pdu.channel_id = *id;
  }
  switch (pdu.cmd) {
    case DynvcCmd::kCreate:
      if (from == DynvcFrom::kServer) {
        const ByteSpan rest = r.rest();
        const std::size_t scan = std::min(rest.size(), kMaxDynvcChannelName + 1);
        const auto* end = static_cast<const std::uint8_t*>(std::memchr(rest.data(), 0, scan));
        if (rest.empty() || end == nullptr) {
          if (rest.size() > kMaxDynvcChannelName) {
            return fail(too_large(kDynvc, "ChannelName", rest.size(), kMaxDynvcChannelName));
          }
          return fail(invalid_field(kDynvc, "ChannelName", "not null-terminated"));
        }
        const auto n = static_cast<std::size_t>(end - rest.data());
        pdu.channel_name.assign(as_chars(rest.first(n)));
        // Anything after the terminator is not part of the request; it is not kept.
        if (auto ok = r.skip(n + 1, "ChannelName"); !ok) return error_of(ok);
      } else {
        auto status = r.u32le("CreationStatus");
        if (!status) return error_of(status);
        pdu.creation_status = static_cast<std::int32_t>(*status);
      }
      break;
    case DynvcCmd::kDataFirst:
    case DynvcCmd::kDataFirstCompressed: {
      auto length = read_sized(r, pdu.sp, "Length");
      if (!length) return error_of(length);
      pdu.length = *length;
      pdu.data = r.rest();
      if (pdu.cmd == DynvcCmd::kDataFirst && pdu.data.size() > pdu.length) {
        return fail(invalid_field(kDynvc, "Length", "below the data of this PDU"));
      }
      break;
    }
    case DynvcCmd::kData:
    case DynvcCmd::kDataCompressed:
      pdu.data = r.rest();
      break;
    case DynvcCmd::kClose:
      break;
    case DynvcCmd::kCapability: {
      if (auto ok = r.ensure(kCapsFixedSize, "Version"); !ok) return error_of(ok);
      pdu.pad = r.u8("Pad").value();
      pdu.version = r.u16le("Version").value();
      if (from == DynvcFrom::kServer && pdu.version >= 2) {
        if (auto ok = r.ensure(kPriorityChargesSize, "PriorityCharge"); !ok) return error_of(ok);
        for (auto& charge : pdu.priority_charges) charge = r.u16le("PriorityCharge").value();
      }
      break;
    }
    case DynvcCmd::kSoftSyncRequest:
    case DynvcCmd::kSoftSyncResponse: {
      auto pad = r.u8("Pad");
      if (!pad) return error_of(pad);
      pdu.pad = *pad;
      pdu.data = r.rest();
      break;
    }
  }
  return pdu;
}

Bytes encode_dynvc(const DynvcPdu& pdu, DynvcFrom from) {
  Bytes out;
  PduWriter w(out);
  std::uint8_t cb_id = pdu.cb_id;
  std::uint8_t sp = pdu.sp;
  // Commands without a ChannelId keep cbId as sent (MS-RDPEDYC says 0; mstsc sets bits).
  if (has_channel_id(pdu.cmd)) {
    cb_id = std::min<std::uint8_t>(std::max(cb_id, dynvc_size_code(pdu.channel_id)), 2);
  }
  cb_id &= 0x03;
  sp &= 0x03;
  const bool data_first =
      pdu.cmd == DynvcCmd::kDataFirst || pdu.cmd == DynvcCmd::kDataFirstCompressed;
  if (data_first) sp = std::min<std::uint8_t>(std::max(sp, dynvc_size_code(pdu.length)), 2);
  w.u8(static_cast<std::uint8_t>((static_cast<std::uint8_t>(pdu.cmd) << 4) | (sp << 2) | cb_id));
  if (has_channel_id(pdu.cmd)) write_sized(w, cb_id, pdu.channel_id);
  switch (pdu.cmd) {
    case DynvcCmd::kCreate:
      if (from == DynvcFrom::kServer) {
        // The name ends at its first null, as a receiver reads it.
        const std::string_view name(pdu.channel_name.c_str());
        w.put(as_bytes(name));
        w.u8(0);
      } else {
        w.u32le(static_cast<std::uint32_t>(pdu.creation_status));
      }
      break;
    case DynvcCmd::kDataFirst:
    case DynvcCmd::kDataFirstCompressed:
      write_sized(w, sp, pdu.length);
      w.put(pdu.data);
      break;
    case DynvcCmd::kData:
    case DynvcCmd::kDataCompressed:
      w.put(pdu.data);
      break;
    case DynvcCmd::kClose:
      break;
    case DynvcCmd::kCapability:
      w.u8(pdu.pad);
      w.u16le(pdu.version);
      if (from == DynvcFrom::kServer && pdu.version >= 2) {
        for (auto charge : pdu.priority_charges) w.u16le(charge);
      }
      break;
    case DynvcCmd::kSoftSyncRequest:
    case DynvcCmd::kSoftSyncResponse:
      w.u8(pdu.pad);
      w.put(pdu.data);
      break;
  }
  return out;
}

Bytes encode_dynvc_create_response(std::uint32_t channel_id, std::int32_t status) {
  DynvcPdu pdu;
  pdu.cmd = DynvcCmd::kCreate;
  pdu.channel_id = channel_id;
  pdu.creation_status = status;
  return encode_dynvc(pdu, DynvcFrom::kClient);
}

Bytes encode_dynvc_close(std::uint32_t channel_id) {
  DynvcPdu pdu;
  pdu.cmd = DynvcCmd::kClose;
  pdu.channel_id = channel_id;
  return encode_dynvc(pdu, DynvcFrom::kClient);
}

}  // namespace enclave::gateway
