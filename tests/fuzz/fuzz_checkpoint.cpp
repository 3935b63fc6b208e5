// Fuzz target for the signed-note and checkpoint parsers (audit/core/note.hpp), fed the whole
// input as a signed note, as a bare checkpoint body, and through open_checkpoint.
// Oracles: an accepted note formats back to exactly its input and parses again to an equal
// Note; an accepted checkpoint body formats back to exactly its input; a checkpoint that
// opens is the parse of the note's body.
#include <cstddef>
#include <cstdint>

#include "audit/core/note.hpp"

namespace {

using enclave::as_bytes;
using enclave::as_chars;
using enclave::ByteSpan;
namespace note = enclave::audit::note;

// The public key that signed the valid_* seeds under corpus/checkpoint/ (the private key was
// discarded), so that mutations of them reach signature verification.
constexpr std::string_view kCorpusKey =
    "audit.example/fuzz+1de336fe+AS+iB54NG++O6+E4G0l6gKY9LvI2Wqnhov8aG2NXmIIN";
constexpr std::string_view kCorpusOrigin = "audit.example/fuzz";

void check_checkpoint(std::string_view body) {
  auto checkpoint = note::parse_checkpoint(body);
  if (checkpoint && note::format_checkpoint(*checkpoint) != body) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const note::Verifier verifier = note::Verifier::parse(kCorpusKey).value();
  ByteSpan input(data, size);
  check_checkpoint(as_chars(input));

  auto parsed = note::parse_note(input);
  if (!parsed) return 0;
  auto text = note::format_note(*parsed);
  if (text != as_chars(input)) __builtin_trap();
  auto again = note::parse_note(as_bytes(text));
  if (!again || !(*again == *parsed)) __builtin_trap();
  check_checkpoint(parsed->body);

  auto opened = note::open_checkpoint(input, verifier, kCorpusOrigin);
  if (opened) {
    auto checkpoint = note::parse_checkpoint(parsed->body);
    if (!checkpoint || !(*checkpoint == *opened)) __builtin_trap();
  }
  return 0;
}
