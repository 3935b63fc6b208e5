// Release bundles as a recipient gets them (possibly tampered): the ustar reader, the manifest
// parser and the bundle verifier. Oracles: an accepted archive, written again by TarWriter,
// reads back to the same members; an accepted manifest, serialised canonically, parses back
// equal and serialises to the same bytes.
#include <cstdint>

#include "exitcontrol/release/bundle.hpp"

namespace {

using namespace enclave;
using namespace enclave::exitcontrol::release;

void check_manifest(ByteSpan bytes) {
  auto m = parse_manifest(bytes);
  if (!m) return;
  auto json = manifest_json(*m);
  if (!json) __builtin_trap();
  auto back = parse_manifest(as_bytes(*json));
  if (!back || !(*back == *m) || manifest_json(*back).value() != *json) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan input(data, size);
  check_manifest(input);
  auto entries = read_tar(input);
  if (entries) {
    Bytes again;
    TarWriter tar([&again](ByteSpan piece) -> Status {
      again.insert(again.end(), piece.begin(), piece.end());
      return {};
    });
    for (const auto& e : *entries) {
      if (!tar.add({e.name, e.size, e.mtime}, e.data)) __builtin_trap();
      if (e.name == kManifestMember) check_manifest(e.data);
    }
    if (!tar.finish()) __builtin_trap();
    auto back = read_tar(again);
    if (!back || back->size() != entries->size()) __builtin_trap();
    for (std::size_t i = 0; i < back->size(); ++i) {
      const auto& a = (*entries)[i];
      const auto& b = (*back)[i];
      if (a.name != b.name || a.mtime != b.mtime ||
          !std::equal(a.data.begin(), a.data.end(), b.data.begin(), b.data.end())) {
        __builtin_trap();
      }
    }
  }
  static const Bytes kKey(32, 0x11);
  (void)verify_bundle(input, kKey);
  // Under the key the bundle itself names, the checks past the signature are reached too.
  if (entries) {
    for (const auto& e : *entries) {
      if (e.name != kPublicKeyMember || e.data.size() < 64) continue;
      if (auto key = hex_decode(as_chars(e.data.first(64)))) (void)verify_bundle(input, *key);
    }
  }
  return 0;
}
