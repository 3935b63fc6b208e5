// Leaf decoder and the JSON event validator. Oracles: a decoded leaf encodes back to the same
// bytes; an accepted JSON event encodes to a leaf that decodes to the same event.
#include <cstdint>
#include <cstdlib>

#include "audit/core/event.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace enclave::audit;
  enclave::ByteSpan input(data, size);
  if (auto e = decode_leaf(input)) {
    if (encode_leaf(*e) != enclave::Bytes(input.begin(), input.end())) __builtin_trap();
  }
  auto json = nlohmann::json::parse(input.begin(), input.end(), nullptr, false);
  if (!json.is_discarded()) {
    if (auto e = event_from_json(json)) {
      auto back = decode_leaf(encode_leaf(*e));
      if (!back || !(*back == *e)) __builtin_trap();
      (void)event_to_json(*e, 0).dump();
    }
  }
  (void)parse_time_us(enclave::as_chars(input));
  return 0;
}
