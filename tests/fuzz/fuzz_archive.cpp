// The archive file parser (bytes from disk, possibly tampered). Oracle: an accepted archive,
// written out again, parses to the same range, prefix, entries and note.
#include <cstdint>

#include "audit/core/archive.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace enclave::audit;
  auto a = archive::parse(enclave::ByteSpan(data, size));
  if (!a) return 0;
  std::string again = archive::format_header(*a);
  for (std::size_t i = 0; i < a->events.size(); ++i) {
    again += archive::format_event(a->first + i, a->events[i]);
  }
  again += archive::format_checkpoint(a->checkpoint_note);
  auto back = archive::parse(enclave::as_bytes(again));
  if (!back || back->first != a->first || back->end != a->end || !(back->prefix == a->prefix) ||
      back->events != a->events || back->checkpoint_note != a->checkpoint_note) {
    __builtin_trap();
  }
  return 0;
}
