// Fuzzes the framing and message codecs of common/ipc/frame.hpp. Oracles: next_frame stays
// inside its input and consumes exactly header plus payload; every message that parses
// survives encode then parse unchanged.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/ipc/frame.hpp"

namespace {

using namespace enclave;
using namespace enclave::ipc;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

void check_request_round_trip(ByteSpan payload) {
  auto request = parse_request(payload);
  if (!request) return;
  std::string encoded = encode_request(*request);
  auto again = parse_request(as_bytes(encoded));
  check(again.has_value());
  check(again->id == request->id);
  check(again->method == request->method);
  check(again->params == request->params);
  check(encode_request(*again) == encoded);
}

void check_response_round_trip(ByteSpan payload) {
  auto response = parse_response(payload);
  if (!response) return;
  std::string encoded = encode_response(*response);
  auto again = parse_response(as_bytes(encoded));
  check(again.has_value());
  check(again->id == response->id);
  check(again->ok == response->ok);
  if (response->ok) {
    check(again->result == response->result);
  } else {
    check(again->code == response->code);
    check(again->message == response->message);
  }
  check(encode_response(*again) == encoded);
}

void check_payload(ByteSpan payload) {
  check_request_round_trip(payload);
  check_response_round_trip(payload);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan input(data, size);
  check_payload(input);

  ByteSpan rest = input;
  for (;;) {
    auto found = next_frame(rest);
    if (!found || !found->has_value()) break;
    const FrameView& frame = **found;
    check(frame.consumed == 4 + frame.payload.size());
    check(frame.consumed <= rest.size());
    check(frame.payload.data() == rest.data() + 4);
    check(!frame.payload.empty() && frame.payload.size() <= kMaxFrame);
    Bytes reframed;
    append_frame(as_chars(frame.payload), reframed);
    check(ByteSpan(reframed).size() == frame.consumed &&
          std::equal(reframed.begin(), reframed.end(), rest.begin()));
    check_payload(frame.payload);
    rest = rest.subspan(frame.consumed);
  }
  return 0;
}
