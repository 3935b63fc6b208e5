// MCS domain PDUs, Connect-Initial / Connect-Response and the GCC data blocks inside them,
// all on the same bytes (as a TPKT PDU and as raw MCS / raw blocks). Oracles: decode,
// encode, decode agree; offsets the relay patches lie inside the PDU and point at what was
// decoded; in-place edits keep the PDU decodable with the same length.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "gateway/core/x224.hpp"

using namespace enclave;
using namespace enclave::gateway;

namespace {

bool same(ByteSpan a, ByteSpan b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

bool same_pdu(const DomainPdu& a, const DomainPdu& b) {
  return a.type == b.type && a.sub_height == b.sub_height && a.sub_interval == b.sub_interval &&
         a.reason == b.reason && a.result == b.result && a.initiator == b.initiator &&
         a.channel_id == b.channel_id && a.joined_channel_id == b.joined_channel_id &&
         a.data_flags == b.data_flags && same(a.user_data, b.user_data);
}

void check_domain(ByteSpan mcs) {
  auto pdu = decode_domain_pdu(mcs);
  if (!pdu) return;
  if (pdu->user_data_offset + pdu->user_data.size() > mcs.size()) __builtin_trap();
  if (!pdu->user_data.empty() && pdu->user_data.data() != mcs.data() + pdu->user_data_offset)
    __builtin_trap();
  auto bytes = encode_domain_pdu(*pdu);
  if (!bytes) __builtin_trap();
  auto again = decode_domain_pdu(*bytes);
  if (!again || !same_pdu(*pdu, *again)) __builtin_trap();
}

void check_client_blocks(ByteSpan pdu_bytes, ByteSpan blocks, std::size_t offset) {
  auto d = decode_client_data_blocks(blocks, offset);
  if (!d) return;
  for (const ClientChannel& c : d->channels) {
    if (c.name.size() > 7 || c.name_offset + 8 > offset + blocks.size()) __builtin_trap();
  }
  // Re-encoded fields decode the same.
  auto enc = encode_client_data_blocks(*d);
  if (!enc) __builtin_trap();
  {
    auto again = decode_client_data_blocks(*enc);
    if (!again || again->channels.size() != d->channels.size() ||
        again->cluster_flags != d->cluster_flags ||
        again->multitransport_flags != d->multitransport_flags ||
        again->desktop_width != d->desktop_width)
      __builtin_trap();
    for (std::size_t i = 0; i < d->channels.size(); ++i) {
      if (again->channels[i].name != d->channels[i].name ||
          again->channels[i].options != d->channels[i].options)
        __builtin_trap();
    }
  }
  if (pdu_bytes.empty()) return;
  // Rename every channel and clear the flags in place: same length, still decodable.
  Bytes edited(pdu_bytes.begin(), pdu_bytes.end());
  ClientConnectData data = *d;
  for (const ClientChannel& c : data.channels) {
    if (auto ok = rename_channel_in_place(edited, c, "_denied"); !ok) {
      fprintf(stderr, "%s name=[%s] off=%zu\n", ok.error().describe().c_str(), c.name.c_str(),
              c.name_offset);
      __builtin_trap();
    }
  }
  if (!clear_cluster_redirection(edited, data) || !clear_multitransport(edited, data))
    __builtin_trap();
  auto after = decode_client_connect_initial(edited);
  if (!after || edited.size() != pdu_bytes.size() || after->channels.size() != d->channels.size())
    __builtin_trap();
  for (const ClientChannel& c : after->channels) {
    if (c.name != "_denied") __builtin_trap();
  }
  if (after->cluster_flags && (*after->cluster_flags & kClusterRedirectionSupported))
    __builtin_trap();
  if (after->multitransport_flags && *after->multitransport_flags != 0) __builtin_trap();
}

void check_server_blocks(ByteSpan blocks) {
  auto d = decode_server_data_blocks(blocks);
  if (!d) return;
  if (d->channel_ids.size() > kMaxStaticChannels) __builtin_trap();
  if (d->encryption_method != 0 || d->encryption_level != 0) return;
  auto enc = encode_server_data_blocks(*d);
  if (!enc) __builtin_trap();
  auto again = decode_server_data_blocks(*enc);
  if (!again || again->io_channel_id != d->io_channel_id || again->channel_ids != d->channel_ids ||
      again->message_channel_id != d->message_channel_id ||
      again->multitransport_flags != d->multitransport_flags || again->version != d->version)
    __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(data, size);
  check_domain(in);
  if (auto mcs = decode_data_tpdu(in)) {
    check_domain(*mcs);
    auto pdu = decode_domain_pdu_in_tpkt(in);
    if (pdu && pdu->user_data_offset + pdu->user_data.size() > in.size()) __builtin_trap();
  }

  if (auto ci = decode_connect_initial(in)) {
    if (ci->blocks_offset + ci->blocks.size() != in.size()) __builtin_trap();
    auto bytes = encode_connect_initial(ci->fields, ci->blocks);
    if (bytes) {
      auto again = decode_connect_initial(*bytes);
      if (!again || !(again->fields == ci->fields) || !same(again->blocks, ci->blocks))
        __builtin_trap();
    } else if (bytes.error().kind != PduError::Kind::kTooLarge) {
      __builtin_trap();
    }
    check_client_blocks(in, ci->blocks, ci->blocks_offset);
  }
  if (auto cr = decode_connect_response(in)) {
    if (cr->blocks_offset + cr->blocks.size() != in.size()) __builtin_trap();
    auto bytes = encode_connect_response(cr->fields, cr->blocks);
    if (bytes) {
      auto again = decode_connect_response(*bytes);
      if (!again || !(again->fields == cr->fields) || !same(again->blocks, cr->blocks))
        __builtin_trap();
    } else if (bytes.error().kind != PduError::Kind::kTooLarge) {
      __builtin_trap();
    }
    check_server_blocks(cr->blocks);
  }
  // The block decoders on the raw bytes too.
  check_client_blocks({}, in, 0);
  check_server_blocks(in);
  return 0;
}
