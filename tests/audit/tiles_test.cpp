// Proofs from the tiled node store: the same roots, compact ranges and proofs as merkle::Tree
// across tile boundaries, the TileWriter emitting exactly the complete stored nodes (also when
// resumed), the read budget of a proof in a million-leaf log, pruned prefixes never read, and
// typed errors.
#include "audit/core/tiles.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <map>
#include <memory>
#include <random>
#include <set>

namespace enclave::audit::tiles {
namespace {

using merkle::CompactRange;
using merkle::Hash;
using merkle::Tree;
using Kind = TileError::Kind;

std::vector<Hash> leaves_of(std::uint64_t n) {
  std::vector<Hash> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i)
    out.push_back(merkle::leaf_hash(as_bytes(std::to_string(i))));
  return out;
}

Tree tree_of(std::span<const Hash> leaves) {
  Tree tree;
  for (const Hash& leaf : leaves) tree.append(leaf);
  return tree;
}

// A store over vectors, filled from TileWriter output, that counts what the prover asks for and
// refuses what a real store would not have: rows at or past `visible` (the log's size) and
// anything covering a leaf below `readable_from` (an archived prefix).
class MemoryStore : public NodeReader {
 public:
  void append(std::span<const Hash> leaves) {
    leaves_.insert(leaves_.end(), leaves.begin(), leaves.end());
    for (const StoredNode& node : writer_.append(leaves)) {
      ASSERT_EQ(node.level % kTileHeight, 0);
      ASSERT_GT(node.level, 0);
      auto& level = levels_[node.level];
      ASSERT_EQ(node.index, level.size()) << "level " << node.level << " out of order";
      level.push_back(node.hash);
    }
    visible = leaves_.size();
  }

  Expected<std::vector<Hash>> leaves(std::uint64_t first, std::uint64_t count) override {
    return read(0, leaves_, first, count);
  }

  Expected<std::vector<Hash>> nodes(int level, std::uint64_t first, std::uint64_t count) override {
    if (level <= 0 || level % kTileHeight != 0) {
      ++bad_requests;
      return fail(Errc::kInvalidArgument, "not a stored level");
    }
    return read(level, levels_[level], first, count);
  }

  void reset_counts() { calls = items = 0; }

  const TileWriter& writer() const { return writer_; }

  std::uint64_t visible = 0;
  std::uint64_t readable_from = 0;
  std::uint64_t calls = 0;
  std::uint64_t items = 0;
  std::uint64_t bad_requests = 0;

 private:
  Expected<std::vector<Hash>> read(int level, const std::vector<Hash>& rows, std::uint64_t first,
                                   std::uint64_t count) {
    ++calls;
    items += count;
    if (count == 0 || count > kTileWidth) {
      ++bad_requests;
      return fail(Errc::kInvalidArgument, "read of " + std::to_string(count));
    }
    const auto shift = static_cast<unsigned>(level);
    if ((first << shift) < readable_from) return fail(Errc::kNotFound, "archived");
    if (first + count > (visible >> shift) || first + count > rows.size()) {
      return fail(Errc::kNotFound, "beyond the log");
    }
    return std::vector<Hash>(rows.begin() + static_cast<std::ptrdiff_t>(first),
                             rows.begin() + static_cast<std::ptrdiff_t>(first + count));
  }

  TileWriter writer_;
  std::vector<Hash> leaves_;
  std::map<int, std::vector<Hash>> levels_;
};

// A log, its reference Tree and its tiled store, built once per size.
struct Log {
  explicit Log(std::uint64_t n) : leaves(leaves_of(n)), tree(tree_of(leaves)) {
    store.append(leaves);
  }
  std::vector<Hash> leaves;
  Tree tree;
  MemoryStore store;
};

Log& log_of(std::uint64_t n) {
  static std::map<std::uint64_t, std::unique_ptr<Log>> logs;
  auto& log = logs[n];
  if (!log) log = std::make_unique<Log>(n);
  return *log;
}

// Indexes worth probing below n: the ends, tile boundaries at levels 0 and 8, and random ones.
std::vector<std::uint64_t> probes_below(std::uint64_t n, std::mt19937_64& rng, int random) {
  std::set<std::uint64_t> out;
  for (std::uint64_t base : {std::uint64_t{0}, n / 2, n}) {
    for (std::uint64_t delta = 0; delta < 3; ++delta) {
      if (base + delta < n) out.insert(base + delta);
      if (delta < base && base - delta - 1 < n) out.insert(base - delta - 1);
    }
  }
  for (std::uint64_t boundary : {255, 256, 257, 511, 512, 65535, 65536, 65537}) {
    if (boundary < n) out.insert(boundary);
  }
  for (int i = 0; i < random; ++i) out.insert(rng() % n);
  return {out.begin(), out.end()};
}

void expect_inclusion(MemoryStore& store, const Log& log, std::uint64_t index, std::uint64_t size,
                      const KnownRanges& known = {}) {
  SCOPED_TRACE("inclusion of " + std::to_string(index) + " in " + std::to_string(size));
  auto proof = inclusion_proof(store, index, size, known);
  ASSERT_TRUE(proof) << proof.error().describe();
  EXPECT_EQ(*proof, log.tree.inclusion_proof(index, size).value());
  EXPECT_TRUE(merkle::verify_inclusion(index, size, log.leaves[index], *proof,
                                       log.tree.root(size).value()));
}

void expect_consistency(MemoryStore& store, const Log& log, std::uint64_t size1,
                        std::uint64_t size2, const KnownRanges& known = {}) {
  SCOPED_TRACE("consistency of " + std::to_string(size1) + " and " + std::to_string(size2));
  auto proof = consistency_proof(store, size1, size2, known);
  ASSERT_TRUE(proof) << proof.error().describe();
  EXPECT_EQ(*proof, log.tree.consistency_proof(size1, size2).value());
  EXPECT_TRUE(merkle::verify_consistency(size1, size2, *proof, log.tree.root(size1).value(),
                                         log.tree.root(size2).value()));
}

void expect_root_and_range(MemoryStore& store, const Log& log, std::uint64_t size,
                           const KnownRanges& known = {}) {
  SCOPED_TRACE("root at " + std::to_string(size));
  auto got_root = root(store, size, known);
  ASSERT_TRUE(got_root) << got_root.error().describe();
  EXPECT_EQ(*got_root, log.tree.root(size).value());
  auto range = compact_range(store, size, known);
  ASSERT_TRUE(range) << range.error().describe();
  EXPECT_EQ(*range, log.tree.compact_range(size).value());
}

// Every proof at `size`, as the store holds it, with and without the tip at that size.
void expect_all_at(MemoryStore& store, const Log& log, std::uint64_t size, std::mt19937_64& rng,
                   int random) {
  store.visible = size;
  const CompactRange tip = log.tree.compact_range(size).value();
  expect_root_and_range(store, log, size);
  expect_root_and_range(store, log, size, {.tip = &tip});
  for (std::uint64_t index : probes_below(size, rng, random)) {
    expect_inclusion(store, log, index, size);
    expect_inclusion(store, log, index, size, {.tip = &tip});
    expect_consistency(store, log, index + 1, size);
    expect_consistency(store, log, index, size, {.tip = &tip});
  }
}

TEST(Tiles, EverySizeUpToSixHundredMatchesTree) {
  Log& log = log_of(600);
  MemoryStore& store = log.store;
  std::mt19937_64 rng(1);
  expect_root_and_range(store, log, 0);
  for (std::uint64_t size = 1; size <= 600; ++size) {
    expect_all_at(store, log, size, rng, 6);
    if (HasFailure()) return;
  }
  // Every index of a few sizes around the first level-8 node and the first level-9 subtree.
  for (std::uint64_t size : {255, 256, 257, 511, 512, 513, 600}) {
    store.visible = size;
    for (std::uint64_t index = 0; index < size; ++index) {
      expect_inclusion(store, log, index, size);
      expect_consistency(store, log, index, size);
    }
  }
  EXPECT_EQ(store.bad_requests, 0u);
}

TEST(Tiles, SizesAroundLevelSixteenMatchTree) {
  Log& log = log_of(70000);
  MemoryStore& store = log.store;
  std::mt19937_64 rng(2);
  for (std::uint64_t size : {65535, 65536, 65537, 65791, 65792, 70000}) {
    expect_all_at(store, log, size, rng, 40);
    // Consistency between two sizes that are both inside the probed range.
    for (int i = 0; i < 20; ++i) {
      const std::uint64_t size1 = 1 + rng() % size;
      expect_consistency(store, log, size1, size);
    }
  }
  EXPECT_EQ(store.bad_requests, 0u);
}

TEST(Tiles, MillionLeafLogSpotChecks) {
  Log& log = log_of(1'000'003);
  MemoryStore& store = log.store;
  std::mt19937_64 rng(3);
  expect_all_at(store, log, 1'000'003, rng, 30);
  for (int i = 0; i < 30; ++i) {
    const std::uint64_t size = 1 + rng() % 1'000'003;
    store.visible = size;
    expect_inclusion(store, log, rng() % size, size);
    expect_consistency(store, log, 1 + rng() % size, size);
    expect_root_and_range(store, log, size);
  }
  EXPECT_EQ(store.bad_requests, 0u);
}

// A proof reads about one tile per band: 3 bands (levels 0, 8, 16) in a log of 1,000,003.
// Without the tip the right edge of bands 0 and 8 is one more read each.
TEST(Tiles, ProofsInAMillionLeafLogReadFewHashes) {
  Log& log = log_of(1'000'003);
  MemoryStore& store = log.store;
  const std::uint64_t size = 1'000'003;
  store.visible = size;
  const CompactRange tip = store.writer().compact_range();
  ASSERT_EQ(tip.size(), size);
  std::mt19937_64 rng(4);
  std::vector<std::uint64_t> indexes = probes_below(size, rng, 200);
  struct Budget {
    const char* what;
    KnownRanges known;
    std::uint64_t calls;
    std::uint64_t items;
  };
  for (const Budget& budget :
       {Budget{"no tip", {}, 5, 700}, Budget{"tip", {.tip = &tip}, 3, 530}}) {
    SCOPED_TRACE(budget.what);
    std::uint64_t most_calls = 0;
    std::uint64_t most_items = 0;
    for (std::uint64_t index : indexes) {
      store.reset_counts();
      ASSERT_TRUE(inclusion_proof(store, index, size, budget.known)) << index;
      EXPECT_LE(store.calls, budget.calls) << index;
      EXPECT_LE(store.items, budget.items) << index;
      most_calls = std::max(most_calls, store.calls);
      most_items = std::max(most_items, store.items);

      store.reset_counts();
      ASSERT_TRUE(consistency_proof(store, index + 1, size, budget.known)) << index;
      EXPECT_LE(store.calls, budget.calls) << index;
      EXPECT_LE(store.items, budget.items) << index;
    }
    // The bounds are close to what the worst probe needs.
    EXPECT_GE(most_calls, budget.calls - 1);
    EXPECT_GE(most_items, budget.items - 50);
  }
  // At any earlier size the right edge can take a whole tile less one at levels 0 and 8:
  // at most 256 + 255 + 256 + 255 + 16 hashes.
  for (int i = 0; i < 200; ++i) {
    const std::uint64_t earlier = 1 + rng() % size;
    store.visible = earlier;
    store.reset_counts();
    ASSERT_TRUE(inclusion_proof(store, rng() % earlier, earlier)) << earlier;
    EXPECT_LE(store.calls, 5u) << earlier;
    EXPECT_LE(store.items, 1038u) << earlier;
  }
  store.visible = size;
  // A root reads the right edge only: one read per band with bits set (all three here), none
  // with the tip.
  store.reset_counts();
  ASSERT_TRUE(root(store, size));
  EXPECT_EQ(store.calls, 3u);
  store.reset_counts();
  ASSERT_TRUE(root(store, size, {.tip = &tip}));
  EXPECT_EQ(store.calls, 0u);
  EXPECT_EQ(store.bad_requests, 0u);
}

// The nodes a batch completes: for each leaf count e it reaches, level L ascending, the node
// ending at e, hashed by the RFC's recursive definition.
std::vector<StoredNode> completed_by(std::span<const Hash> leaves, std::uint64_t old_size,
                                     std::uint64_t new_size) {
  std::vector<StoredNode> out;
  for (std::uint64_t end = old_size + 1; end <= new_size; ++end) {
    for (int level = kTileHeight; (end & ((std::uint64_t{1} << level) - 1)) == 0;
         level += kTileHeight) {
      const std::uint64_t width = std::uint64_t{1} << level;
      out.push_back({level, end / width - 1, merkle::root_of(leaves.subspan(end - width, width))});
    }
  }
  return out;
}

TEST(TileWriter, RandomBatchesEmitExactlyTheCompletedNodes) {
  const std::vector<Hash> leaves = leaves_of(70000);
  std::mt19937_64 rng(5);
  for (int run = 0; run < 3; ++run) {
    TileWriter writer;
    std::uint64_t size = 0;
    while (size < leaves.size()) {
      // Mostly small batches, some of several tiles, some empty.
      const std::uint64_t want = rng() % 4 == 0 ? rng() % 2000 : rng() % 40;
      const std::uint64_t batch = std::min<std::uint64_t>(want, leaves.size() - size);
      const auto emitted = writer.append(std::span(leaves).subspan(size, batch));
      ASSERT_EQ(emitted, completed_by(leaves, size, size + batch)) << size << "+" << batch;
      size += batch;
      ASSERT_EQ(writer.size(), size);
    }
    EXPECT_EQ(writer.root(), merkle::root_of(leaves));
  }
}

TEST(TileWriter, ResumedWriterContinuesLikeAnUninterruptedOne) {
  Log& log = log_of(70000);
  std::mt19937_64 rng(6);
  std::vector<std::uint64_t> resume_at = {0,     1,     255,   256,   257,   65535,
                                          65536, 65537, 65791, 65792, 69999, 70000};
  for (int i = 0; i < 20; ++i) resume_at.push_back(rng() % 70001);
  for (std::uint64_t at : resume_at) {
    SCOPED_TRACE("resumed at " + std::to_string(at));
    MemoryStore store;
    store.append(std::span(log.leaves).first(at));
    store.reset_counts();
    auto resumed = TileWriter::resume(store, at);
    ASSERT_TRUE(resumed) << resumed.error().describe();
    // One read per band with bits of the size set: levels 0, 8 and 16 at most.
    EXPECT_LE(store.calls, 3u);
    EXPECT_EQ(resumed->compact_range(), log.tree.compact_range(at).value());
    const auto rest = std::span(log.leaves).subspan(at);
    EXPECT_EQ(resumed->append(rest), completed_by(log.leaves, at, log.leaves.size()));
    EXPECT_EQ(resumed->root(), log.tree.root());
    // From the compact range alone, as after an archive.
    TileWriter from_range(log.tree.compact_range(at).value());
    EXPECT_EQ(from_range.append(rest), completed_by(log.leaves, at, log.leaves.size()));
  }
}

// Levels 24 and beyond, without 2^24 leaves: a writer started just below 2^24 from a compact
// range of made-up nodes completes level-16 node 255 and level-24 node 0, whose hashes are the
// made-up nodes folded with the new leaves.
TEST(TileWriter, ReachesLevelTwentyFour) {
  const std::uint64_t start = (std::uint64_t{1} << 24) - 300;
  std::vector<Hash> made_up;
  for (int i = 0; i < std::popcount(start); ++i)
    made_up.push_back(merkle::leaf_hash(as_bytes("n" + std::to_string(i))));
  TileWriter writer(CompactRange::from_nodes(start, made_up).value());
  const std::vector<Hash> leaves = leaves_of(600);

  // The same growth seen by plain compact ranges: of the whole tree and of the last
  // level-16 subtree (the made-up nodes below height 16 and the new leaves).
  CompactRange whole = CompactRange::from_nodes(start, made_up).value();
  const std::uint64_t in_last16 = start & 0xffff;
  CompactRange last16 =
      CompactRange::from_nodes(
          in_last16, std::vector<Hash>(made_up.end() - std::popcount(in_last16), made_up.end()))
          .value();
  for (std::size_t i = 0; i < 300; ++i) {
    whole.append(leaves[i]);
    last16.append(leaves[i]);
  }
  ASSERT_EQ(whole.nodes().size(), 1u);
  ASSERT_EQ(last16.nodes().size(), 1u);

  // The last two level-8 nodes below 2^24 (the first made up in part), then level 16 node
  // 255 and level 24 node 0.
  const std::uint64_t in_last8 = start & 0xff;
  CompactRange last8 =
      CompactRange::from_nodes(
          in_last8, std::vector<Hash>(made_up.end() - std::popcount(in_last8), made_up.end()))
          .value();
  for (std::size_t i = 0; i < 256 - in_last8; ++i) last8.append(leaves[i]);
  ASSERT_EQ(last8.nodes().size(), 1u);
  const std::uint64_t tiles16 = std::uint64_t{1} << 16;
  const auto emitted = writer.append(std::span(leaves).first(300));
  ASSERT_EQ(emitted.size(), 4u);
  EXPECT_EQ(emitted[0], (StoredNode{8, tiles16 - 2, last8.nodes()[0]}));
  EXPECT_EQ(emitted[1], (StoredNode{8, tiles16 - 1,
                                    merkle::root_of(std::span(leaves).subspan(300 - 256, 256))}));
  EXPECT_EQ(emitted[2], (StoredNode{16, 255, last16.nodes()[0]}));
  EXPECT_EQ(emitted[3], (StoredNode{24, 0, whole.nodes()[0]}));
  EXPECT_EQ(writer.root(), whole.root());

  // Past 2^24 the next level-8 node is the next 256 leaves.
  const auto next = writer.append(std::span(leaves).subspan(300, 256));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0], (StoredNode{8, std::uint64_t{1} << 16,
                                 merkle::root_of(std::span(leaves).subspan(300, 256))}));
}

// Leaves below P are archived: the store refuses anything covering them, and the prover uses
// the prefix's compact range instead. Every answer for sizes and leaves at or after P is the
// whole tree's.
void expect_pruned_log_answers(Log& log, std::uint64_t prefix, std::mt19937_64& rng, int random) {
  SCOPED_TRACE("prefix " + std::to_string(prefix));
  MemoryStore& store = log.store;
  const std::uint64_t size = log.leaves.size();
  store.visible = size;
  store.readable_from = prefix;
  const CompactRange range = log.tree.compact_range(prefix).value();
  const KnownRanges known{.prefix = &range};
  expect_root_and_range(store, log, prefix, known);
  std::vector<std::uint64_t> sizes = {prefix + 1, size};
  for (int i = 0; i < random; ++i) sizes.push_back(prefix + 1 + rng() % (size - prefix));
  for (std::uint64_t at : sizes) {
    if (at > size) continue;
    store.visible = at;
    expect_root_and_range(store, log, at, known);
    std::vector<std::uint64_t> indexes = {prefix, prefix + 1, at - 1};
    for (int i = 0; i < random; ++i) indexes.push_back(prefix + rng() % (at - prefix));
    for (std::uint64_t index : indexes) {
      if (index >= at) continue;
      expect_inclusion(store, log, index, at, known);
      expect_consistency(store, log, index + 1, at, known);
      if (index > prefix) expect_consistency(store, log, index, at, known);
    }
    auto writer = TileWriter::resume(store, at, known);
    ASSERT_TRUE(writer) << writer.error().describe();
    EXPECT_EQ(writer->root(), log.tree.root(at).value());
  }
  store.visible = size;
  if (prefix > 0) {
    auto below = inclusion_proof(store, prefix - 1, size, known);
    ASSERT_FALSE(below);
    EXPECT_EQ(below.error().kind, Kind::kPrunedRange);
    auto old_root = root(store, prefix - 1, known);
    ASSERT_FALSE(old_root);
    EXPECT_EQ(old_root.error().kind, Kind::kPrunedRange);
  }
  if (prefix > 1) {
    auto old_consistency = consistency_proof(store, prefix - 1, size, known);
    ASSERT_FALSE(old_consistency);
    EXPECT_EQ(old_consistency.error().kind, Kind::kPrunedRange);
  }
  EXPECT_EQ(store.bad_requests, 0u);
  store.readable_from = 0;
}

TEST(Tiles, PrunedPrefixIsNeverReadAndProofsMatch) {
  std::mt19937_64 rng(7);
  Log& small = log_of(600);
  for (std::uint64_t prefix = 0; prefix < 600; prefix += 1 + prefix / 8) {
    expect_pruned_log_answers(small, prefix, rng, 3);
    if (HasFailure()) return;
  }
  for (std::uint64_t prefix : {255, 256, 257, 511, 512, 513, 599}) {
    expect_pruned_log_answers(small, prefix, rng, 3);
  }
  Log& large = log_of(70000);
  for (std::uint64_t prefix : {65535, 65536, 65537, 65791, 65793}) {
    expect_pruned_log_answers(large, prefix, rng, 5);
  }
  Log& million = log_of(1'000'003);
  for (std::uint64_t prefix : {300'001, 524'288, 524'293, 999'999}) {
    expect_pruned_log_answers(million, prefix, rng, 5);
  }
}

TEST(TilesErrors, RequestsOutsideTheLogAreTyped) {
  Log& log = log_of(600);
  MemoryStore& store = log.store;
  store.visible = 600;
  const CompactRange tip = log.tree.compact_range(600).value();
  const KnownRanges with_tip{.tip = &tip};

  auto index_beyond = inclusion_proof(store, 600, 600);
  ASSERT_FALSE(index_beyond);
  EXPECT_EQ(index_beyond.error().kind, Kind::kIndexOutOfRange);
  auto unordered = consistency_proof(store, 10, 9);
  ASSERT_FALSE(unordered);
  EXPECT_EQ(unordered.error().kind, Kind::kSizeOutOfRange);

  // With the tip the prover knows the log's size.
  auto inclusion_beyond = inclusion_proof(store, 5, 601, with_tip);
  ASSERT_FALSE(inclusion_beyond);
  EXPECT_EQ(inclusion_beyond.error().kind, Kind::kSizeOutOfRange);
  auto consistency_beyond = consistency_proof(store, 5, 601, with_tip);
  ASSERT_FALSE(consistency_beyond);
  EXPECT_EQ(consistency_beyond.error().kind, Kind::kSizeOutOfRange);
  auto root_beyond = root(store, 601, with_tip);
  ASSERT_FALSE(root_beyond);
  EXPECT_EQ(root_beyond.error().kind, Kind::kSizeOutOfRange);
  auto range_beyond = compact_range(store, 601, with_tip);
  ASSERT_FALSE(range_beyond);
  EXPECT_EQ(range_beyond.error().kind, Kind::kSizeOutOfRange);

  // Without it the store's refusal comes back, with the store's error as the cause.
  auto unread = inclusion_proof(store, 5, 601);
  ASSERT_FALSE(unread);
  EXPECT_EQ(unread.error().kind, Kind::kReadFailed);
  ASSERT_TRUE(unread.error().cause);
  EXPECT_EQ(unread.error().cause->code, Errc::kNotFound);
  EXPECT_NE(unread.error().describe().find("beyond the log"), std::string::npos);

  // Trivial proofs and the empty tree need no reads.
  store.reset_counts();
  EXPECT_EQ(consistency_proof(store, 0, 600).value(), std::vector<Hash>{});
  EXPECT_EQ(consistency_proof(store, 600, 600).value(), std::vector<Hash>{});
  EXPECT_EQ(root(store, 0).value(), merkle::empty_root());
  EXPECT_EQ(compact_range(store, 0).value(), CompactRange{});
  EXPECT_EQ(store.calls, 0u);
}

// A store that answers with one hash too few.
class ShortReader : public NodeReader {
 public:
  explicit ShortReader(NodeReader& inner) : inner_(inner) {}
  Expected<std::vector<Hash>> leaves(std::uint64_t first, std::uint64_t count) override {
    return shorten(inner_.leaves(first, count));
  }
  Expected<std::vector<Hash>> nodes(int level, std::uint64_t first, std::uint64_t count) override {
    return shorten(inner_.nodes(level, first, count));
  }

 private:
  static Expected<std::vector<Hash>> shorten(Expected<std::vector<Hash>> read) {
    if (read) read->pop_back();
    return read;
  }
  NodeReader& inner_;
};

TEST(TilesErrors, ShortReadsAreReadFailures) {
  Log& log = log_of(600);
  MemoryStore& store = log.store;
  store.visible = 600;
  ShortReader reader(store);
  auto proof = inclusion_proof(reader, 3, 600);
  ASSERT_FALSE(proof);
  EXPECT_EQ(proof.error().kind, Kind::kReadFailed);
  EXPECT_FALSE(proof.error().cause);
  auto resumed = TileWriter::resume(reader, 600);
  ASSERT_FALSE(resumed);
  EXPECT_EQ(resumed.error().kind, Kind::kReadFailed);
}

}  // namespace
}  // namespace enclave::audit::tiles
