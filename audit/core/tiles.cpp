#include "audit/core/tiles.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <utility>

namespace enclave::audit::tiles {

namespace {

using merkle::CompactRange;
using merkle::Hash;
using merkle::node_hash;

constexpr auto kBandHeight = static_cast<unsigned>(kTileHeight);

std::uint64_t bit(unsigned h) {
  return std::uint64_t{1} << h;
}

// x >> n, also for n == 64 (the paths of leaves 0 and 2^64 - 2 only join at the root).
std::uint64_t shift_right(std::uint64_t x, unsigned n) {
  return n < 64 ? x >> n : 0;
}

// The perfect subtree of height `level` that covers leaves [index * 2^level, (index + 1) *
// 2^level). Every NodeId formed here is complete in the tree asked about, so its end fits.
struct NodeId {
  unsigned level;
  std::uint64_t index;

  std::uint64_t begin() const { return index << level; }
  std::uint64_t end() const { return (index + 1) << level; }
  NodeId left() const { return {level - 1, index * 2}; }
  NodeId right() const { return {level - 1, index * 2 + 1}; }
};

// Stored hashes [first, first + count) of one level (0: the leaves).
struct StoredRange {
  unsigned level;
  std::uint64_t first;
  std::uint64_t count;

  std::uint64_t end() const { return first + count; }
};

// Lengths of the two parts of the inclusion proof of node `index` in a tree whose last node on
// the same level is `last` (as in merkle.cpp): `inner` siblings below the level where the paths
// to `index` and `last` join, then `border` left siblings along the right border above it.
struct ProofShape {
  unsigned inner;
  unsigned border;
};
ProofShape proof_shape(std::uint64_t index, std::uint64_t last) {
  const auto inner = static_cast<unsigned>(std::bit_width(index ^ last));
  return {inner, static_cast<unsigned>(std::popcount(shift_right(index, inner)))};
}

Unexpected<TileError> tile_error(TileError::Kind kind, std::string message) {
  return fail(TileError{kind, std::move(message), std::nullopt});
}

Unexpected<TileError> pruned(const std::string& what, std::uint64_t prefix_size) {
  return tile_error(TileError::Kind::kPrunedRange,
                    what + " is inside the archived prefix of " + std::to_string(prefix_size));
}

// The hash of n when it is one of range's nodes: bit n.level of the size is set and n is the
// node that bit stands for.
const Hash* compact_node(const CompactRange* range, NodeId n) {
  if (range == nullptr) return nullptr;
  const std::uint64_t above = range->size() >> n.level;
  if ((above & 1) == 0 || n.index != above - 1) return nullptr;
  return &range->nodes()[static_cast<std::size_t>(std::popcount(above >> 1))];
}

// MTH of a power-of-two run of hashes of one level: the perfect subtree above them.
Hash fold_perfect(std::span<const Hash> run) {
  if (run.size() == 1) return run[0];
  const std::size_t half = run.size() / 2;
  return node_hash(fold_perfect(run.first(half)), fold_perfect(run.subspan(half)));
}

// Proof hashes (or a root) as the perfect subtrees each one folds, left to right.
class Plan {
 public:
  void add_node(NodeId n) {
    pieces_.push_back(n);
    ends_.push_back(pieces_.size());
  }

  // MTH(D[begin : begin + length]) where the range is a subtree of the RFC 9162 tree (begin is
  // a multiple of bit_ceil(length)): one perfect piece per set bit of length. length > 0.
  void add_range(std::uint64_t begin, std::uint64_t length) {
    for (auto h = static_cast<unsigned>(std::bit_width(length)); h-- > 0;) {
      if (length & bit(h)) {
        pieces_.push_back({h, begin >> h});
        begin += bit(h);
      }
    }
    ends_.push_back(pieces_.size());
  }

  // RFC 9162 PATH for the perfect node (level, index) in the tree of `size` leaves, bottom-up,
  // as merkle.cpp's PerfectNodes::path: only the top inner sibling can be a partial subtree.
  void add_path(unsigned level, std::uint64_t index, std::uint64_t size) {
    const auto [inner, border] = proof_shape(index, (size - 1) >> level);
    for (unsigned i = 0; i < inner; ++i) {
      const unsigned h = level + i;
      const std::uint64_t node = index >> i;
      if (node & 1) {
        add_node({h, node - 1});
      } else {
        const std::uint64_t begin = (node + 1) << h;
        add_range(begin, std::min(bit(h), size - begin));
      }
    }
    unsigned h = level + inner;
    for (std::uint64_t node = shift_right(index, inner); node != 0; node >>= 1, ++h) {
      if (node & 1) add_node({h, node - 1});
    }
  }

  const std::vector<NodeId>& pieces() const { return pieces_; }

  // Each element folded from its pieces right to left.
  template <class HashOf>
  std::vector<Hash> evaluate(const HashOf& hash_of) const {
    std::vector<Hash> out;
    out.reserve(ends_.size());
    std::size_t begin = 0;
    for (const std::size_t end : ends_) {
      Hash acc = hash_of(pieces_[end - 1]);
      for (std::size_t i = end - 1; i-- > begin;) acc = node_hash(hash_of(pieces_[i]), acc);
      out.push_back(acc);
      begin = end;
    }
    return out;
  }

 private:
  std::vector<NodeId> pieces_;
  std::vector<std::size_t> ends_;  // pieces_[ends_[i-1] : ends_[i]] make element i
};

// Turns perfect nodes into hashes in three steps: plan() every node (what must be read),
// fetch() (the reads, merged per level), then hash() each.
class Resolver {
 public:
  Resolver(NodeReader& reader, const KnownRanges& known)
      : reader_(reader),
        known_(known),
        prefix_size_(known.prefix != nullptr ? known.prefix->size() : 0) {}

  Result<void, TileError> plan(NodeId n) {
    if (known(n) != nullptr) return {};
    if (n.begin() < prefix_size_) {
      // A node inside the prefix that is not one of its compact-range nodes is gone; one that
      // straddles the prefix's end is its compact-range nodes and stored hashes after it.
      if (n.level == 0 || n.end() <= prefix_size_) {
        return pruned("subtree " + std::to_string(n.level) + "/" + std::to_string(n.index),
                      prefix_size_);
      }
      if (auto left = plan(n.left()); !left) return left;
      return plan(n.right());
    }
    wanted_.push_back(stored_range(n));
    return {};
  }

  Result<void, TileError> fetch() {
    std::sort(wanted_.begin(), wanted_.end(), [](const StoredRange& a, const StoredRange& b) {
      return std::pair(a.level, a.first) < std::pair(b.level, b.first);
    });
    std::vector<StoredRange> merged;
    for (const StoredRange& range : wanted_) {
      if (!merged.empty() && merged.back().level == range.level &&
          std::max(merged.back().end(), range.end()) - merged.back().first <= kTileWidth) {
        merged.back().count = std::max(merged.back().end(), range.end()) - merged.back().first;
      } else {
        merged.push_back(range);
      }
    }
    for (const StoredRange& range : merged) {
      auto hashes = range.level == 0
                        ? reader_.leaves(range.first, range.count)
                        : reader_.nodes(static_cast<int>(range.level), range.first, range.count);
      const std::string what = "level " + std::to_string(range.level) + " [" +
                               std::to_string(range.first) + ", " + std::to_string(range.end()) +
                               ")";
      if (!hashes) {
        return fail(
            TileError{TileError::Kind::kReadFailed, "reading " + what + " failed", hashes.error()});
      }
      if (hashes->size() != range.count) {
        return tile_error(
            TileError::Kind::kReadFailed,
            "reading " + what + " returned " + std::to_string(hashes->size()) + " hashes");
      }
      reads_.push_back({range, std::move(*hashes)});
    }
    return {};
  }

  // n was planned and fetched.
  Hash hash(NodeId n) const {
    if (const Hash* h = known(n)) return *h;
    if (n.begin() < prefix_size_) return node_hash(hash(n.left()), hash(n.right()));
    return fold_perfect(stored(stored_range(n)));
  }

 private:
  const Hash* known(NodeId n) const {
    if (const Hash* h = compact_node(known_.prefix, n)) return h;
    return compact_node(known_.tip, n);
  }

  // The stored hashes n folds: its descendants on the stored level at or below it.
  static StoredRange stored_range(NodeId n) {
    const unsigned base = n.level - n.level % kBandHeight;
    return {base, n.index << (n.level - base), bit(n.level - base)};
  }

  std::span<const Hash> stored(const StoredRange& range) const {
    for (const Read& read : reads_) {
      if (read.range.level == range.level && read.range.first <= range.first &&
          range.end() <= read.range.end()) {
        return std::span<const Hash>(read.hashes)
            .subspan(static_cast<std::size_t>(range.first - read.range.first),
                     static_cast<std::size_t>(range.count));
      }
    }
    assert(false && "stored range was not planned");
    return {};
  }

  struct Read {
    StoredRange range;
    std::vector<Hash> hashes;
  };

  NodeReader& reader_;
  KnownRanges known_;
  std::uint64_t prefix_size_;
  std::vector<StoredRange> wanted_;
  std::vector<Read> reads_;
};

Result<std::vector<Hash>, TileError> evaluate(NodeReader& reader, const KnownRanges& known,
                                              const Plan& plan) {
  Resolver resolver(reader, known);
  for (const NodeId& n : plan.pieces()) {
    if (auto planned = resolver.plan(n); !planned) return error_of(planned);
  }
  if (auto fetched = resolver.fetch(); !fetched) return error_of(fetched);
  return plan.evaluate([&](NodeId n) { return resolver.hash(n); });
}

std::uint64_t prefix_size(const KnownRanges& known) {
  return known.prefix != nullptr ? known.prefix->size() : 0;
}

bool beyond_tip(std::uint64_t size, const KnownRanges& known) {
  return known.tip != nullptr && size > known.tip->size();
}

Unexpected<TileError> beyond_log(std::uint64_t size, const KnownRanges& known) {
  return tile_error(
      TileError::Kind::kSizeOutOfRange,
      "size " + std::to_string(size) + " is beyond the log's " + std::to_string(known.tip->size()));
}

// The checks merkle::Tree::root makes, with the tip as the tree's size.
Result<void, TileError> check_size(std::uint64_t size, const KnownRanges& known) {
  if (beyond_tip(size, known)) return beyond_log(size, known);
  if (size < prefix_size(known)) {
    return pruned("size " + std::to_string(size), prefix_size(known));
  }
  return {};
}

const char* kind_name(TileError::Kind kind) {
  switch (kind) {
    case TileError::Kind::kIndexOutOfRange:
      return "index out of range";
    case TileError::Kind::kSizeOutOfRange:
      return "size out of range";
    case TileError::Kind::kPrunedRange:
      return "pruned range";
    case TileError::Kind::kReadFailed:
      return "read failed";
  }
  return "unknown tile error";
}

}  // namespace

std::string TileError::describe() const {
  std::string out = std::string(kind_name(kind)) + ": " + message;
  if (cause) out += " (" + cause->describe() + ")";
  return out;
}

Result<Hash, TileError> root(NodeReader& reader, std::uint64_t size, const KnownRanges& known) {
  if (auto checked = check_size(size, known); !checked) return error_of(checked);
  if (size == 0) return merkle::empty_root();
  Plan plan;
  plan.add_range(0, size);
  auto hashes = evaluate(reader, known, plan);
  if (!hashes) return error_of(hashes);
  return hashes->front();
}

Result<CompactRange, TileError> compact_range(NodeReader& reader, std::uint64_t size,
                                              const KnownRanges& known) {
  if (auto checked = check_size(size, known); !checked) return error_of(checked);
  Plan plan;
  std::uint64_t begin = 0;
  for (auto h = static_cast<unsigned>(std::bit_width(size)); h-- > 0;) {
    if (size & bit(h)) {
      plan.add_node({h, begin >> h});
      begin += bit(h);
    }
  }
  auto nodes = evaluate(reader, known, plan);
  if (!nodes) return error_of(nodes);
  return *CompactRange::from_nodes(size, std::move(*nodes));
}

Result<std::vector<Hash>, TileError> inclusion_proof(NodeReader& reader, std::uint64_t index,
                                                     std::uint64_t size, const KnownRanges& known) {
  if (index >= size) {
    return tile_error(
        TileError::Kind::kIndexOutOfRange,
        "leaf index " + std::to_string(index) + " is not below tree size " + std::to_string(size));
  }
  if (beyond_tip(size, known)) return beyond_log(size, known);
  if (index < prefix_size(known)) {
    return pruned("leaf " + std::to_string(index), prefix_size(known));
  }
  Plan plan;
  plan.add_path(0, index, size);
  return evaluate(reader, known, plan);
}

Result<std::vector<Hash>, TileError> consistency_proof(NodeReader& reader, std::uint64_t size1,
                                                       std::uint64_t size2,
                                                       const KnownRanges& known) {
  if (size1 > size2 || beyond_tip(size2, known)) {
    return tile_error(TileError::Kind::kSizeOutOfRange, "sizes " + std::to_string(size1) + " and " +
                                                            std::to_string(size2) +
                                                            " are not ordered within the log");
  }
  if (size1 == 0 || size1 == size2) return std::vector<Hash>{};
  if (size1 < prefix_size(known)) {
    return pruned("size " + std::to_string(size1), prefix_size(known));
  }
  // SUBPROOF(size1, D[size2], true) of RFC 9162 section 2.1.4.1: the older tree's last perfect
  // subtree, unless it is the whole older tree, then its path in the newer tree.
  const auto level = static_cast<unsigned>(std::countr_zero(size1));
  const std::uint64_t index = (size1 - 1) >> level;
  Plan plan;
  if (index != 0) plan.add_node({level, index});
  plan.add_path(level, index, size2);
  return evaluate(reader, known, plan);
}

TileWriter::TileWriter(const CompactRange& range) : size_(range.size()), nodes_(range.nodes()) {}

Result<TileWriter, TileError> TileWriter::resume(NodeReader& reader, std::uint64_t size,
                                                 const KnownRanges& known) {
  auto range = tiles::compact_range(reader, size, known);
  if (!range) return error_of(range);
  return TileWriter(*range);
}

std::vector<StoredNode> TileWriter::append(std::span<const Hash> leaf_hashes) {
  std::vector<StoredNode> completed;
  for (const Hash& leaf : leaf_hashes) {
    nodes_.push_back(leaf);
    // As CompactRange::append: each trailing one bit of the old size is a merge, and the merge
    // to height h completes the node of height h that ends at the new size.
    unsigned h = 0;
    for (std::uint64_t s = size_; s & 1; s >>= 1) {
      const Hash right = nodes_.back();
      nodes_.pop_back();
      nodes_.back() = node_hash(nodes_.back(), right);
      if (++h % kBandHeight == 0) {
        completed.push_back({static_cast<int>(h), ((size_ + 1) >> h) - 1, nodes_.back()});
      }
    }
    ++size_;
  }
  return completed;
}

CompactRange TileWriter::compact_range() const {
  return *CompactRange::from_nodes(size_, nodes_);
}

Hash TileWriter::root() const {
  return compact_range().root();
}

}  // namespace enclave::audit::tiles
