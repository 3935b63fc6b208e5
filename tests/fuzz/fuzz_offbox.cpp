// The off-box copy parser (bytes from another machine's disk). Oracle: an accepted copy,
// written out again, parses to the same leaves and checkpoints.
#include <cstdint>

#include "audit/core/offbox.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace enclave::audit;
  auto copy = offbox::parse(enclave::ByteSpan(data, size));
  if (!copy) return 0;
  std::string again =
      offbox::format_leaves(0, copy->leaf_hashes.size() > offbox::kMaxHashesPerRecord
                                   ? std::span(copy->leaf_hashes).first(0)
                                   : std::span(copy->leaf_hashes));
  for (const auto& c : copy->checkpoints) again += offbox::format_checkpoint(c.time_us, c.note);
  auto back = offbox::parse(enclave::as_bytes(again));
  if (!back) __builtin_trap();
  if (copy->leaf_hashes.size() <= offbox::kMaxHashesPerRecord &&
      back->leaf_hashes != copy->leaf_hashes) {
    __builtin_trap();
  }
  if (back->checkpoints.size() != copy->checkpoints.size()) __builtin_trap();
  for (std::size_t i = 0; i < back->checkpoints.size(); ++i) {
    if (back->checkpoints[i].note != copy->checkpoints[i].note) __builtin_trap();
  }
  return 0;
}
