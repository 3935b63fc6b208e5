// Fuzzes the login API's codecs (common/login/messages.hpp), which read bytes from the kiosk's
// network connection. Oracles: every request and response that parses survives encode then
// parse unchanged; an enrol_print's print and a create_session's compartment are within their
// limits (what the gateway forwards to the registry unchecked); the frame decoder yields the same
// payloads and errors however the bytes are split, every payload is exactly what its frame held,
// and a frame error is final.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/login/assertion.hpp"
#include "common/login/messages.hpp"

namespace {

using namespace enclave;
using namespace enclave::login;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

bool is_compartment_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
}

void check_request_round_trip(ByteSpan payload) {
  auto request = parse_request(payload);
  if (!request) return;
  if (const auto* enrol = std::get_if<EnrolPrint>(&*request)) {
    check(!enrol->print.empty() && enrol->print.size() <= kMaxPrintBytes);
  }
  if (const auto* create = std::get_if<CreateSession>(&*request); create && create->compartment) {
    check(is_compartment_name(*create->compartment));
  }
  std::string encoded = encode_request(*request);
  auto again = parse_request(as_bytes(encoded));
  check(again.has_value());
  check(*again == *request);
  check(encode_request(*again) == encoded);
}

void check_response_round_trip(ByteSpan payload) {
  auto response = parse_response(payload);
  if (!response) return;
  std::string encoded = encode_response(*response);
  auto again = parse_response(as_bytes(encoded));
  check(again.has_value());
  check(*again == *response);
  check(encode_response(*again) == encoded);
}

// What a decoder yields: each payload, then the error that ended the stream (if any).
struct Decoded {
  std::vector<std::string> payloads;
  std::optional<FormatError::Kind> error;
  std::size_t buffered = 0;
};

Decoded decode(ByteSpan input, std::size_t chunk) {
  FrameDecoder decoder;
  Decoded out;
  std::size_t fed = 0;
  while (!out.error) {
    auto next = decoder.next_payload();
    if (!next) {
      out.error = next.error().kind;
      check(*out.error == FormatError::Kind::kFrameTooLarge ||
            *out.error == FormatError::Kind::kEmptyFrame);
      // Final: more bytes do not bring the stream back.
      decoder.feed(input.subspan(fed));
      auto again = decoder.next_payload();
      check(!again.has_value() && again.error().kind == *out.error);
      break;
    }
    if (next->has_value()) {
      check(!(*next)->empty() && (*next)->size() <= kMaxMessageBytes);
      out.payloads.push_back(std::move(**next));
      continue;
    }
    if (fed == input.size()) break;
    std::size_t n = std::min(chunk, input.size() - fed);
    decoder.feed(input.subspan(fed, n));
    fed += n;
  }
  out.buffered = decoder.buffered();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan input(data, size);
  check_request_round_trip(input);
  check_response_round_trip(input);

  Decoded whole = decode(input, input.size() + 1);
  // Every payload, framed again, rebuilds the input's prefix it came from.
  Bytes reframed;
  for (const std::string& payload : whole.payloads) {
    auto frame = frame_payload(payload);
    check(frame.has_value());
    reframed.insert(reframed.end(), frame->begin(), frame->end());
    check_request_round_trip(as_bytes(payload));
    check_response_round_trip(as_bytes(payload));
  }
  check(reframed.size() <= input.size());
  check(std::equal(reframed.begin(), reframed.end(), input.begin()));
  if (!whole.error) check(reframed.size() + whole.buffered == input.size());

  // Split differently, the same stream.
  std::size_t chunk = size > 0 ? 1 + data[0] % 17 : 1;
  Decoded split = decode(input, chunk);
  check(split.payloads == whole.payloads);
  check(split.error == whole.error);
  return 0;
}
