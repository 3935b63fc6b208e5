// Sidecar parser. Oracle: whatever parse_meta accepts, validate_meta accepts too (the checks
// applied to metadata from CLI flags agree with those of the sidecar).
#include <cstdint>
#include <string_view>

#include "exitcontrol/core/meta.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace enclave::exitcontrol;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto meta = parse_meta(text, "fuzz.meta.toml");
  if (meta) {
    if (!validate_meta(*meta)) __builtin_trap();
    for (const auto& [key, where] : meta->where) {
      if (meta->locate(key) != where) __builtin_trap();
    }
  }
  return 0;
}
