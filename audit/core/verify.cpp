#include "audit/core/verify.hpp"

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

#include "audit/core/event.hpp"

namespace enclave::audit::verify {

namespace {

using merkle::Hash;

struct HashKey {
  std::size_t operator()(const Hash& h) const {
    std::size_t v;
    std::memcpy(&v, h.data(), sizeof v);
    return v;
  }
};

std::string short_hash(const Hash& h) {
  return merkle::hash_hex(h).substr(0, 16);
}

std::string describe_row(const Input& in, std::uint64_t db_index) {
  return in.describe ? in.describe(db_index) : "row " + std::to_string(db_index);
}

struct Genuine {
  Hash root;
  std::vector<const SignedCheckpoint*> copies;
  bool conflicting = false;
};

// The genuine checkpoints by size, with findings for the ones that are not.
std::map<std::uint64_t, Genuine> open_checkpoints(const Input& in, Report& report) {
  std::map<std::uint64_t, Genuine> by_size;
  // The database and every off-box copy hold the same notes: check each text once.
  std::map<std::string_view, Result<note::Checkpoint, note::NoteError>> checked;
  for (const auto& c : in.checkpoints) {
    auto at = checked.find(c.note);
    if (at == checked.end()) {
      at = checked.emplace(c.note, note::open_checkpoint(as_bytes(c.note), *in.key, in.origin))
               .first;
    }
    const auto& opened = at->second;
    if (!opened) {
      report.findings.push_back({FindingKind::kBadCheckpoint, std::nullopt, std::nullopt,
                                 c.where + ": " + opened.error().describe()});
      continue;
    }
    auto [it, fresh] = by_size.try_emplace(opened->size, Genuine{opened->root, {}, false});
    if (!fresh && it->second.root != opened->root) it->second.conflicting = true;
    it->second.copies.push_back(&c);
  }
  for (auto it = by_size.begin(); it != by_size.end();) {
    auto& g = it->second;
    if (g.conflicting) {
      std::string where;
      for (const auto* c : g.copies) where += (where.empty() ? "" : ", ") + c->where;
      report.findings.push_back({FindingKind::kConflictingCheckpoints, it->first, std::nullopt,
                                 "genuine checkpoints of size " + std::to_string(it->first) +
                                     " disagree on the root (" + where +
                                     "): the signing key was misused or stolen"});
      it = by_size.erase(it);
      continue;
    }
    bool in_database = std::any_of(g.copies.begin(), g.copies.end(),
                                   [](const SignedCheckpoint* c) { return c->in_database; });
    if (!in_database) {
      report.findings.push_back({FindingKind::kCheckpointMissing, it->first, std::nullopt,
                                 "checkpoint of size " + std::to_string(it->first) + " (" +
                                     g.copies.front()->where + ") is missing from the database"});
    }
    ++it;
  }
  return by_size;
}

// The longest prefix of an off-box copy whose leaves reproduce every genuine checkpoint they
// reach; a copy that contradicts one is reported and trusted only up to the last it matched.
std::uint64_t verified_length(const std::string& name, const offbox::Copy& copy,
                              const std::map<std::uint64_t, Genuine>& genuine, Report& report) {
  merkle::CompactRange range;
  std::uint64_t verified = 0;
  for (const auto& [size, g] : genuine) {
    if (size > copy.leaf_hashes.size()) break;
    while (range.size() < size) range.append(copy.leaf_hashes[range.size()]);
    if (range.root() != g.root) {
      report.findings.push_back(
          {FindingKind::kOffboxMismatch, size, std::nullopt,
           "off-box copy " + name + ": its leaves do not reproduce the checkpoint of size " +
               std::to_string(size) + "; trusted only up to entry " + std::to_string(verified)});
      break;
    }
    verified = size;
  }
  return verified;
}

// Names each difference between the trusted leaves T[first, sealed) and the live entries.
// Rows at or past `sealed` in the last gap are the unsealed tail, not insertions.
class EntryDiff {
 public:
  EntryDiff(std::span<const Hash> trusted, std::uint64_t first, std::uint64_t sealed,
            const Input& in, Report& report)
      : t_(trusted), first_(first), sealed_(sealed), in_(in), a_(in.entries), report_(report) {}

  // The largest db index holding a sealed entry (after renumbering it may lie past `sealed`).
  std::uint64_t last_sealed_row() const { return last_sealed_row_; }

  void run() {
    // The common case is an intact log: walk the shared prefix without building any index.
    std::size_t k = 0;
    while (k < a_.size() && first_ + k < sealed_ && a_[k].index == first_ + k &&
           a_[k].content_hash == t_[first_ + k]) {
      ++k;
    }
    if (k > 0) last_sealed_row_ = a_[k - 1].index;
    if (first_ + k == sealed_) return;
    place_entries(k);
    auto anchors = longest_increasing_run(k);
    walk_gaps(k, anchors);
  }

 private:
  static constexpr std::uint64_t kAbsent = ~std::uint64_t{0};

  // pos_[a]: the T position matched to A entry a (kAbsent when its hash is not in T).
  void place_entries(std::size_t from) {
    std::unordered_map<Hash, std::vector<std::uint64_t>, HashKey> positions;
    for (std::uint64_t t = sealed_; t-- > first_ + from;) positions[t_[t]].push_back(t);
    pos_.assign(a_.size(), kAbsent);
    for (std::size_t a = from; a < a_.size(); ++a) {
      auto it = positions.find(a_[a].content_hash);
      if (it == positions.end() || it->second.empty()) continue;
      pos_[a] = it->second.back();  // duplicates of one hash are consumed in order
      it->second.pop_back();
      last_sealed_row_ = std::max(last_sealed_row_, a_[a].index);
    }
    moved_to_.clear();
  }

  // The entries (A indexes) that stay in order: a longest strictly increasing run of pos_.
  std::vector<std::size_t> longest_increasing_run(std::size_t from) {
    std::vector<std::size_t> tails;  // tails[l]: A index ending the best run of length l+1
    std::vector<std::size_t> prev(a_.size(), SIZE_MAX);
    for (std::size_t a = from; a < a_.size(); ++a) {
      if (pos_[a] == kAbsent) continue;
      auto it = std::lower_bound(tails.begin(), tails.end(), pos_[a],
                                 [&](std::size_t x, std::uint64_t p) { return pos_[x] < p; });
      if (it != tails.begin()) prev[a] = *(it - 1);
      if (it == tails.end()) {
        tails.push_back(a);
      } else {
        *it = a;
      }
    }
    std::vector<std::size_t> run;
    for (std::size_t a = tails.empty() ? SIZE_MAX : tails.back(); a != SIZE_MAX; a = prev[a]) {
      run.push_back(a);
    }
    std::reverse(run.begin(), run.end());
    std::vector<bool> anchored(a_.size(), false);
    for (auto a : run) anchored[a] = true;
    for (std::size_t a = from; a < a_.size(); ++a) {
      if (pos_[a] != kAbsent && !anchored[a]) moved_to_[pos_[a]] = a;
    }
    return run;
  }

  void walk_gaps(std::size_t from, const std::vector<std::size_t>& anchors) {
    std::uint64_t t_prev = first_ + from;  // first T position of the current gap
    std::size_t a_prev = from;             // first A index of the current gap
    for (auto a : anchors) {
      gap(t_prev, pos_[a], a_prev, a, false);
      t_prev = pos_[a] + 1;
      a_prev = a + 1;
    }
    gap(t_prev, sealed_, a_prev, a_.size(), true);
  }

  // T positions [t0, t1) and A indexes [a0, a1) lie between two intact anchors.
  void gap(std::uint64_t t0, std::uint64_t t1, std::size_t a0, std::size_t a1, bool last) {
    std::vector<std::uint64_t> missing;
    for (auto t = t0; t < t1; ++t) {
      if (auto m = moved_to_.find(t); m != moved_to_.end()) {
        const Entry& e = a_[m->second];
        add(FindingKind::kReordered, t, e.index,
            "sealed entry " + std::to_string(t) + " now sits at " + std::to_string(e.index) + ": " +
                describe_row(in_, e.index));
      } else {
        missing.push_back(t);
      }
    }
    std::size_t paired = 0;
    for (auto a = a0; a < a1; ++a) {
      const Entry& e = a_[a];
      if (pos_[a] != kAbsent) continue;          // intact or reported as moved
      if (last && e.index >= sealed_) continue;  // the unsealed tail
      if (paired < missing.size()) {
        auto t = missing[paired++];
        std::string how = e.stored_hash == t_[t]
                              ? " (edited in place: the row's stored hash is the sealed one)"
                              : "";
        add(FindingKind::kModified, t, e.index,
            "sealed entry " + std::to_string(t) + " now reads: " + describe_row(in_, e.index) +
                how);
      } else {
        add(FindingKind::kInserted, std::nullopt, e.index,
            "row " + std::to_string(e.index) + " was never sealed: " + describe_row(in_, e.index));
      }
    }
    for (; paired < missing.size(); ++paired) {
      auto t = missing[paired];
      add(FindingKind::kDeleted, t, std::nullopt,
          "sealed entry " + std::to_string(t) + " is gone (its leaf hash was " + short_hash(t_[t]) +
              "...)");
    }
  }

  void add(FindingKind kind, std::optional<std::uint64_t> t, std::optional<std::uint64_t> db,
           std::string detail) {
    report_.findings.push_back({kind, t, db, std::move(detail)});
  }

  std::span<const Hash> t_;
  std::uint64_t first_, sealed_;
  const Input& in_;
  const std::vector<Entry>& a_;
  Report& report_;
  std::vector<std::uint64_t> pos_;
  std::uint64_t last_sealed_row_ = 0;
  std::unordered_map<std::uint64_t, std::size_t> moved_to_;  // T position -> A index
};

// Recomputes the roots that `base` (the leaves before `from`, already judged) and the live
// entries from `from` on give at each genuine size past `from`, and reports the first range
// that no longer matches (every later checkpoint then fails with it).
void check_ranges(const Input& in, const std::map<std::uint64_t, Genuine>& genuine,
                  merkle::CompactRange range, Report& report) {
  const std::uint64_t from = range.size();
  auto next = std::lower_bound(in.entries.begin(), in.entries.end(), from,
                               [](const Entry& e, std::uint64_t i) { return e.index < i; });
  std::uint64_t last_good = from;
  for (auto it = genuine.upper_bound(from); it != genuine.end(); ++it) {
    const auto& [size, g] = *it;
    while (range.size() < size && next != in.entries.end()) range.append((next++)->content_hash);
    if (range.size() == size && range.root() == g.root) {
      last_good = size;
      continue;
    }
    auto later = static_cast<std::size_t>(std::distance(it, genuine.end())) - 1;
    report.findings.push_back(
        {FindingKind::kRangeMismatch, last_good, std::nullopt,
         "entries " + std::to_string(last_good) + " to " + std::to_string(size - 1) +
             " do not reproduce the checkpoint of size " + std::to_string(size) +
             (later ? " (and " + std::to_string(later) + " later checkpoints fail with it)" : "") +
             "; an off-box copy would name the entries"});
    return;
  }
}

// Without a trusted leaf sequence, the database still betrays in-place edits (content that no
// longer matches the hash stored at append) and plain deletions (holes in the index).
void check_rows_alone(const Input& in, std::uint64_t first, std::uint64_t sealed, Report& report) {
  std::uint64_t expected = first;
  for (const auto& e : in.entries) {
    if (e.index < first) continue;
    if (e.index >= sealed) break;
    for (; expected < e.index; ++expected) {
      report.findings.push_back({FindingKind::kDeleted, expected, std::nullopt,
                                 "sealed entry " + std::to_string(expected) + " is gone"});
    }
    expected = e.index + 1;
    if (e.content_hash != e.stored_hash) {
      report.findings.push_back(
          {FindingKind::kModified, e.index, e.index,
           "sealed entry " + std::to_string(e.index) +
               " no longer matches the hash stored when it was appended; it now reads: " +
               describe_row(in, e.index)});
    }
  }
}

// The rows past the sealed ones: `from` is the first row index that holds no sealed entry.
void check_tail(const Input& in, std::uint64_t sealed, std::uint64_t from, Report& report) {
  std::uint64_t expected = from;
  for (const auto& e : in.entries) {
    if (e.index < from) continue;
    if (report.unsealed == 0) report.oldest_unsealed_time_us = e.time_us;
    ++report.unsealed;
    report.oldest_unsealed_time_us = std::min(report.oldest_unsealed_time_us, e.time_us);
    if (e.index != expected) {
      report.findings.push_back({FindingKind::kGap, expected, e.index,
                                 "unsealed entries " + std::to_string(expected) + " to " +
                                     std::to_string(e.index - 1) + " are missing"});
    }
    expected = e.index + 1;
  }
  if (report.unsealed > 0 && in.now_us - report.oldest_unsealed_time_us > in.seal_interval_us) {
    report.findings.push_back(
        {FindingKind::kLateTail, sealed, std::nullopt,
         std::to_string(report.unsealed) + " entries from " + std::to_string(sealed) +
             " are unsealed; the oldest, from " + format_time_us(report.oldest_unsealed_time_us) +
             ", should have been sealed by now (the daemon stopped without sealing, or rows were "
             "added behind its back)"});
  }
}

}  // namespace

const char* finding_name(FindingKind kind) {
  switch (kind) {
    case FindingKind::kModified:
      return "modified";
    case FindingKind::kDeleted:
      return "deleted";
    case FindingKind::kInserted:
      return "inserted";
    case FindingKind::kReordered:
      return "reordered";
    case FindingKind::kHashAltered:
      return "hash-altered";
    case FindingKind::kRangeMismatch:
      return "range-mismatch";
    case FindingKind::kBadCheckpoint:
      return "bad-checkpoint";
    case FindingKind::kConflictingCheckpoints:
      return "conflicting-checkpoints";
    case FindingKind::kCheckpointMissing:
      return "checkpoint-missing";
    case FindingKind::kOffboxMismatch:
      return "offbox-mismatch";
    case FindingKind::kArchiveMismatch:
      return "archive-mismatch";
    case FindingKind::kGap:
      return "gap";
    case FindingKind::kLateTail:
      return "late-tail";
  }
  return "unknown";
}

Report run(const Input& in) {
  Report report;
  const std::uint64_t prefix = in.archived_prefix ? in.archived_prefix->size() : 0;
  report.archived = prefix;
  report.live_entries = in.entries.size();

  auto genuine = open_checkpoints(in, report);
  report.genuine_checkpoints = 0;
  for (const auto& [size, g] : genuine) report.genuine_checkpoints += g.copies.size();
  const std::uint64_t sealed = genuine.empty() ? prefix : std::max(prefix, genuine.rbegin()->first);
  if (!genuine.empty()) {
    const auto& [size, g] = *genuine.rbegin();
    report.latest = note::Checkpoint{in.origin, size, g.root, {}};
    report.latest_where = g.copies.front()->where;
    report.latest_time_us = g.copies.front()->time_us;
  }

  // The trusted leaf sequence: the off-box copy that reproduces the most genuine checkpoints.
  const offbox::Copy* trusted = nullptr;
  std::uint64_t trusted_length = 0;
  for (const auto& [name, copy] : in.offbox) {
    auto length = verified_length(name, copy, genuine, report);
    if (length > trusted_length) {
      trusted = &copy;
      trusted_length = length;
    }
  }
  std::span<const Hash> trusted_leaves;
  if (trusted) trusted_leaves = std::span(trusted->leaf_hashes).first(trusted_length);
  if (prefix > 0 && trusted_length >= prefix) {
    merkle::CompactRange archived;
    for (const auto& h : trusted_leaves.first(prefix)) archived.append(h);
    if (archived != *in.archived_prefix) {
      report.findings.push_back({FindingKind::kArchiveMismatch, prefix, std::nullopt,
                                 "the database's record of the archived entries 0 to " +
                                     std::to_string(prefix - 1) +
                                     " does not match the sealed leaves"});
    }
  }

  // Entries before named_until are judged one by one against the trusted leaves; the rest of
  // the sealed range by the rows' own stored hashes and by the checkpoints' roots.
  std::uint64_t named_until = prefix;
  merkle::CompactRange judged = in.archived_prefix.value_or(merkle::CompactRange{});
  std::uint64_t tail_from = sealed;
  if (trusted_length > prefix) {
    report.entry_level = true;
    EntryDiff diff(trusted_leaves, prefix, trusted_length, in, report);
    diff.run();
    if (trusted_length == sealed) tail_from = std::max(sealed, diff.last_sealed_row() + 1);
    named_until = trusted_length;
    for (const auto& e : in.entries) {
      if (e.index >= prefix && e.index < trusted_length && e.stored_hash != e.content_hash &&
          e.content_hash == trusted_leaves[e.index]) {
        report.findings.push_back({FindingKind::kHashAltered, e.index, e.index,
                                   "row " + std::to_string(e.index) +
                                       " is as sealed, but its stored leaf hash was overwritten"});
      }
    }
    while (judged.size() < trusted_length) judged.append(trusted_leaves[judged.size()]);
  }
  if (sealed > named_until) {
    check_rows_alone(in, named_until, sealed, report);
    check_ranges(in, genuine, std::move(judged), report);
  }
  check_tail(in, sealed, tail_from, report);
  return report;
}

}  // namespace enclave::audit::verify
