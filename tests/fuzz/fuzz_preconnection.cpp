// MS-RDPEPC preconnection PDU. Oracles: the decoder never reads past cbSize or past what it
// was given; a decoded PDU re-encodes (unless its blob cannot be: NUL-free by construction)
// and decodes to the same fields; every prefix of a complete PDU asks for more bytes.
#include <cstdint>
#include <cstdlib>

#include "gateway/core/preconnection.hpp"

using namespace enclave;
using namespace enclave::gateway;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(data, size);
  auto d = decode_preconnection(in);
  if (!d) {
    (void)d.error().describe();
    return 0;
  }
  if (!d->has_value()) return 0;
  const DecodedPreconnection& pdu = **d;
  if (pdu.size > size || pdu.size > kPreconnectionMaxBytes || pdu.size < kPreconnectionV1Size)
    __builtin_trap();
  auto bytes = encode_preconnection(pdu.pdu);
  if (!bytes) __builtin_trap();  // anything decoded fits again (one NUL at most as long)
  auto again = decode_preconnection(*bytes);
  if (!again || !again->has_value() || (*again)->pdu != pdu.pdu || (*again)->size != bytes->size())
    __builtin_trap();
  auto prefix = decode_preconnection(in.first(pdu.size - 1));
  if (!prefix || prefix->has_value()) __builtin_trap();
  return 0;
}
