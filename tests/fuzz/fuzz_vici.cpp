// strongSwan's VICI protocol (gateway/core/vici.hpp) as charon's socket delivers it: a stream
// of segments. Oracles: the splitter stays inside its input and consumes header plus packet;
// every packet and message that decodes re-encodes to the same bytes (the encoding is
// canonical) and decodes again to the same tree; ike_sa_holds runs on every decoded message.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "gateway/core/vici.hpp"

namespace {

using namespace enclave;
using namespace enclave::gateway::vici;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void check_message(ByteSpan bytes) {
  auto message = decode_message(bytes);
  if (!message) {
    (void)message.error().describe();
    return;
  }
  auto encoded = encode_message(*message);
  check(encoded.has_value());
  check(*encoded == Bytes(bytes.begin(), bytes.end()));
  auto again = decode_message(*encoded);
  check(again.has_value() && *again == *message);
  if (auto address = parse_ip_address("10.123.0.1")) {
    (void)ike_sa_holds(*message, "site-a.enclave.test", *address);
  }
}

void check_packet(ByteSpan bytes) {
  auto packet = decode_packet(bytes);
  if (!packet) {
    (void)packet.error().describe();
    return;
  }
  auto encoded = encode_packet(*packet);
  check(encoded.has_value());
  check(encoded->size() == kLengthSize + bytes.size());
  check(std::equal(bytes.begin(), bytes.end(), encoded->begin() + kLengthSize));
  auto segment = next_segment(*encoded);
  check(segment.has_value() && segment->has_value() && (*segment)->consumed == encoded->size());
  auto again = decode_packet((*segment)->packet);
  check(again.has_value() && *again == *packet);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan rest(data, size);
  for (;;) {
    auto segment = next_segment(rest);
    if (!segment || !segment->has_value()) break;
    const Segment& s = **segment;
    check(s.consumed == kLengthSize + s.packet.size() && s.consumed <= rest.size());
    check(s.packet.data() == rest.data() + kLengthSize);
    check_packet(s.packet);
    rest = rest.subspan(s.consumed);
  }
  // The raw input as a message too, so the message decoder sees bytes no packet frames.
  check_message(ByteSpan(data, size));
  return 0;
}
