// Sealed archive files: a closed range of the audit log, moved out of the live database by
// `enclavectl audit archive`. The file carries everything needed to check it alone: the
// compact range of the entries before it, its entries exactly as stored, and the signed
// checkpoint at its end, whose root the prefix and the entries must reproduce.
//
// Format: UTF-8 JSON Lines.
//   {"type":"archive","version":1,"origin":"...","first":F,"end":E,"created":"<RFC 3339>"}
//   {"type":"prefix","nodes":["<base64>", ...]}         compact range of entries [0, F)
//   {"type":"event","index":I,"leaf":"<base64>"}        one per entry F .. E-1, in order: the
//                                                       exact leaf bytes (event.hpp)
//   {"type":"checkpoint","note":"<signed note>"}        the checkpoint of size E
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "audit/core/event.hpp"
#include "audit/core/jsonl.hpp"
#include "audit/core/merkle.hpp"
#include "audit/core/note.hpp"
#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::audit::archive {

struct Archive {
  std::string origin;
  std::uint64_t first = 0;
  std::uint64_t end = 0;
  std::int64_t created_us = 0;
  merkle::CompactRange prefix;  // of [0, first)
  std::vector<Event> events;    // entries first .. end-1
  std::string checkpoint_note;
};

using ParseError = jsonl::LineError;

Result<Archive, ParseError> parse(ByteSpan text);

std::string format_header(const Archive& archive);  // header and prefix lines
std::string format_event(std::uint64_t index, const Event& event);
std::string format_checkpoint(std::string_view note);

// Checks the archive against its own checkpoint: the signature, the origin, the size (= end)
// and the root rebuilt from the prefix and the entries. Returns the compact range at `end`,
// which the next archive's prefix (or the live log) must equal.
Result<merkle::CompactRange, std::string> check(const Archive& archive,
                                                const note::Verifier& verifier);

}  // namespace enclave::audit::archive
