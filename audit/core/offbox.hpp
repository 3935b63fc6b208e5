// The off-box copy: what enclave-auditd writes outside the database at every checkpoint, so
// that a rewrite of the whole database (rows, stored hashes and checkpoints together) is still
// caught, and the verifier can name each changed entry rather than only a changed range.
//
// Format: UTF-8 JSON Lines, appended only, each line ending in '\n':
//   {"type":"leaves","first":N,"hashes":"<base64 of the 32-byte leaf hashes, concatenated>"}
//       the leaf hashes of entries N, N+1, ...; records are contiguous from entry 0
//   {"type":"checkpoint","time":"<RFC 3339>","note":"<signed checkpoint note>"}
//       written after the leaves it seals
// A crash can leave a last line without its '\n': that torn line is reported, not fatal.
// Every other defect is an error naming the line. The signatures are not checked here (no key
// at this layer): the verifier opens each note with the log's verifier key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "audit/core/jsonl.hpp"
#include "audit/core/merkle.hpp"
#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::audit::offbox {

inline constexpr std::size_t kMaxHashesPerRecord = 16384;

struct CheckpointRecord {
  std::size_t line = 0;  // 1-based line in the file
  std::int64_t time_us = 0;
  std::string note;  // the signed note text, unverified

  bool operator==(const CheckpointRecord&) const = default;
};

struct Copy {
  std::vector<merkle::Hash> leaf_hashes;  // entries 0..n-1
  std::vector<CheckpointRecord> checkpoints;
  bool torn_tail = false;  // the last line was cut short (crash while writing)
};

using ParseError = jsonl::LineError;

Result<Copy, ParseError> parse(ByteSpan text);

// One leaves record (first .. first + hashes.size() - 1); hashes.size() <= kMaxHashesPerRecord.
std::string format_leaves(std::uint64_t first, std::span<const merkle::Hash> hashes);
std::string format_checkpoint(std::int64_t time_us, std::string_view note);

}  // namespace enclave::audit::offbox
