// The verifier's judgement, without I/O: given what the database holds (entries, stored leaf
// hashes, checkpoints, an archived prefix) and what was copied off the box (leaf hashes and
// checkpoints), decide which signed checkpoints are genuine, what sequence of entries they
// sealed, and name every entry that was modified, deleted, inserted or reordered since.
//
// How entries are named. The off-box copy holds the leaf hash of every sealed entry; once its
// leaves reproduce the signed roots it is the trusted sequence T. The database's entries, in
// index order, are the actual sequence A. Entries of A found at their place in T (a longest
// increasing run of T-positions, as in patience diff) are intact; a T entry found elsewhere
// in A was reordered; between two intact anchors, T entries absent from A and A entries
// absent from T pair up as modified, and the rest are deleted or inserted. Without an
// off-box copy the database's own checkpoints still bound each difference to a range.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "audit/core/merkle.hpp"
#include "audit/core/note.hpp"
#include "audit/core/offbox.hpp"

namespace enclave::audit::verify {

// One database row as the verifier sees it.
struct Entry {
  std::uint64_t index = 0;      // the row's idx column
  merkle::Hash content_hash{};  // leaf hash recomputed from the row's columns
  merkle::Hash stored_hash{};   // the leaf_hash column written at append
  std::int64_t time_us = 0;
};

struct SignedCheckpoint {
  std::string where;  // "database checkpoint 12" or "off-box copy /x/y line 40"
  std::string note;
  std::int64_t time_us = 0;
  bool in_database = false;
};

struct Input {
  const note::Verifier* key = nullptr;
  std::string origin;
  std::optional<merkle::CompactRange> archived_prefix;  // leaves before the live entries
  std::vector<Entry> entries;                           // sorted by index
  std::vector<SignedCheckpoint> checkpoints;            // database and off-box, any order
  // Each off-box copy and the name to report it by; may be empty.
  std::vector<std::pair<std::string, offbox::Copy>> offbox;
  // What row db_index says, for people reading findings ("login.attempt by alice at site-a:
  // success"); called only for rows named in a finding. May be empty.
  std::function<std::string(std::uint64_t db_index)> describe;
  std::int64_t now_us = 0;
  std::int64_t seal_interval_us = 0;  // entries older than this past the last seal are late
};

enum class FindingKind {
  kModified,       // a sealed entry's content differs from what was sealed
  kDeleted,        // a sealed entry is missing
  kInserted,       // an entry sealed by no checkpoint sits among sealed entries
  kReordered,      // a sealed entry sits at another position
  kHashAltered,    // a row's stored leaf hash was changed; its content is as sealed
  kRangeMismatch,  // entries in a range differ from a checkpoint (no off-box copy to name them)
  kBadCheckpoint,  // a checkpoint that does not verify (forged, corrupt, wrong key)
  kConflictingCheckpoints,  // two genuine checkpoints of one size with different roots
  kCheckpointMissing,       // a genuine checkpoint in one copy is absent from the database
  kOffboxMismatch,          // an off-box copy's leaves do not reproduce a genuine checkpoint
  kArchiveMismatch,         // the archived prefix does not match the sealed leaves
  kGap,                     // an index missing among unsealed entries
  kLateTail,                // unsealed entries older than the sealing interval allows
};

const char* finding_name(FindingKind kind);

struct Finding {
  FindingKind kind;
  std::optional<std::uint64_t> index;     // position in the sealed log (T), when known
  std::optional<std::uint64_t> db_index;  // the database row's idx, when there is one
  std::string detail;
};

struct Report {
  std::optional<note::Checkpoint> latest;  // the largest genuine checkpoint
  std::string latest_where;
  std::int64_t latest_time_us = 0;
  std::size_t genuine_checkpoints = 0;
  std::uint64_t archived = 0;      // entries before the live range
  std::uint64_t live_entries = 0;  // rows in the database
  std::uint64_t unsealed = 0;      // rows after the latest checkpoint
  std::int64_t oldest_unsealed_time_us = 0;
  bool entry_level = false;  // an off-box copy named entries (else ranges only)
  std::vector<Finding> findings;

  bool clean() const { return findings.empty(); }
};

Report run(const Input& input);

}  // namespace enclave::audit::verify
