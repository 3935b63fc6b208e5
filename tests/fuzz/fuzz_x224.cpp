// TPKT / fast-path frame splitter and the X.224 Connection Request, Connection Confirm and
// Data TPDU decoders, all on the same bytes. Oracles: frames never claim less than their
// header; decode, encode, decode agree; a decoded PDU's proper prefixes fail with
// kNotEnoughBytes.
#include <cstdint>
#include <cstdlib>

#include "gateway/core/x224.hpp"

using namespace enclave;
using namespace enclave::gateway;

namespace {

template <class Decode>
void check_prefixes(ByteSpan pdu, Decode decode) {
  for (std::size_t n :
       {std::size_t{0}, std::size_t{3}, std::size_t{4}, pdu.size() / 2, pdu.size() - 1}) {
    if (n >= pdu.size()) continue;
    auto r = decode(pdu.first(n));
    if (r || r.error().kind != PduError::Kind::kNotEnoughBytes) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(data, size);
  // Split the whole input into frames as the relay would.
  ByteSpan rest = in;
  while (!rest.empty()) {
    auto f = split_frame(rest);
    if (!f) {
      (void)f.error().describe();
      break;
    }
    if (!f->has_value()) break;
    const Frame frame = **f;
    if (frame.size < frame.header_size || frame.header_size < 2) __builtin_trap();
    if (frame.kind == FrameKind::kTpkt && frame.size < kTpktMinSize) __builtin_trap();
    if (frame.size > rest.size()) break;
    const ByteSpan pdu = rest.first(frame.size);
    rest = rest.subspan(frame.size);
    if (frame.kind != FrameKind::kTpkt) continue;
    (void)x224_tpdu_code(pdu);
    if (auto payload = decode_data_tpdu(pdu)) {
      auto again = encode_data_tpdu(*payload);
      if (!again || !std::equal(again->begin(), again->end(), pdu.begin(), pdu.end()))
        __builtin_trap();
    }
  }

  if (auto cr = decode_connection_request(in)) {
    auto bytes = encode_connection_request(*cr);
    if (!bytes) __builtin_trap();
    auto again = decode_connection_request(*bytes);
    if (!again || !(*again == *cr)) __builtin_trap();
    check_prefixes(in, decode_connection_request);
  }
  if (auto cc = decode_connection_confirm(in)) {
    if (cc->response && cc->failure_code) __builtin_trap();
    auto bytes = encode_connection_confirm(*cc);
    if (!bytes) __builtin_trap();
    auto again = decode_connection_confirm(*bytes);
    if (!again || !(*again == *cc)) __builtin_trap();
    check_prefixes(in, decode_connection_confirm);
  }
  return 0;
}
