// Static virtual channel chunk header and drdynvc message decoders. The first byte chooses
// the direction (server or client); the rest is a channel chunk whose data is decoded as a
// drdynvc message. Oracles: decode, encode, decode again gives the same fields, and the
// chunk header encodes back to the input.
#include <cstdint>
#include <cstdlib>

#include "gateway/core/vchannel.hpp"

using namespace enclave;
using namespace enclave::gateway;

namespace {

bool same(const DynvcPdu& a, const DynvcPdu& b) {
  const ByteSpan da = a.data, db = b.data;
  return a.cmd == b.cmd && a.cb_id == b.cb_id && a.sp == b.sp && a.channel_id == b.channel_id &&
         a.channel_name == b.channel_name && a.creation_status == b.creation_status &&
         a.length == b.length && a.version == b.version &&
         a.priority_charges == b.priority_charges && a.pad == b.pad &&
         Bytes(da.begin(), da.end()) == Bytes(db.begin(), db.end());
}

void check_dynvc(ByteSpan data, DynvcFrom from) {
  auto pdu = decode_dynvc(data, from);
  if (!pdu) {
    (void)pdu.error().describe();
    return;
  }
  const Bytes encoded = encode_dynvc(*pdu, from);
  if (encoded.size() > data.size()) __builtin_trap();  // never longer than what it came from
  auto again = decode_dynvc(encoded, from);
  if (!again || !same(*pdu, *again)) __builtin_trap();
  if (encode_dynvc(*again, from) != encoded) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const DynvcFrom from = (data[0] & 1) != 0 ? DynvcFrom::kClient : DynvcFrom::kServer;
  const ByteSpan rest(data + 1, size - 1);

  check_dynvc(rest, from);

  auto chunk = decode_channel_pdu(rest);
  if (!chunk) return 0;
  Bytes encoded;
  encode_channel_pdu(chunk->length, chunk->flags, chunk->data, encoded);
  if (encoded != Bytes(rest.begin(), rest.end())) __builtin_trap();
  if (chunk->first() && !chunk->compressed()) check_dynvc(chunk->data, from);

  // The refusal encoders always decode back to what they were given.
  auto response =
      encode_dynvc_create_response(chunk->length, static_cast<std::int32_t>(chunk->flags));
  auto r = decode_dynvc(response, DynvcFrom::kClient);
  if (!r || r->cmd != DynvcCmd::kCreate || r->channel_id != chunk->length ||
      r->creation_status != static_cast<std::int32_t>(chunk->flags)) {
    __builtin_trap();
  }
  const Bytes close_bytes = encode_dynvc_close(chunk->flags);
  auto close = decode_dynvc(close_bytes, DynvcFrom::kServer);
  if (!close || close->cmd != DynvcCmd::kClose || close->channel_id != chunk->flags) {
    __builtin_trap();
  }
  return 0;
}
