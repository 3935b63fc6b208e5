// RFC 9162 roots and proofs for a log too large to hold in memory, computed from a store of
// perfect-subtree hashes laid out like C2SP tlog-tiles (c2sp.org/tlog-tiles). Besides the leaf
// hashes (level 0), the store keeps the hash of every complete perfect subtree whose height is
// a positive multiple of 8: level L index k covers leaves [k * 2^L, (k + 1) * 2^L). A perfect
// subtree of height h is then the fold of 2^(h mod 8) stored hashes of level h - h mod 8, and
// the proof hashes within one band of 8 heights all lie in one tile of 256 stored hashes, so a
// proof reads about one tile per band (plus the right edge of the tree, see KnownRanges).
// Pure code: the store is behind NodeReader. Proofs are exactly merkle::Tree's.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "audit/core/merkle.hpp"
#include "common/result.hpp"

namespace enclave::audit::tiles {

inline constexpr int kTileHeight = 8;             // stored levels are multiples of this
inline constexpr std::uint64_t kTileWidth = 256;  // 2^kTileHeight: the most one read asks for

// A complete perfect subtree the store keeps: level is a positive multiple of kTileHeight.
struct StoredNode {
  int level;
  std::uint64_t index;
  merkle::Hash hash;

  bool operator==(const StoredNode&) const = default;
};

// Range reads of the store, each meant to be one query. A read asks for 1..kTileWidth items
// and must return exactly that many hashes, in index order, or fail (e.g. kNotFound for rows
// that do not exist or were archived); the prover checks the count.
class NodeReader {
 public:
  virtual ~NodeReader() = default;
  // Leaf hashes [first, first + count).
  virtual Expected<std::vector<merkle::Hash>> leaves(std::uint64_t first, std::uint64_t count) = 0;
  // Stored hashes of `level` (a positive multiple of kTileHeight), indexes [first, first + count).
  virtual Expected<std::vector<merkle::Hash>> nodes(int level, std::uint64_t first,
                                                    std::uint64_t count) = 0;
};

struct TileError {
  enum class Kind {
    kIndexOutOfRange,  // index >= size
    kSizeOutOfRange,   // size1 > size2, or a size beyond KnownRanges::tip
    kPrunedRange,      // a leaf or size inside the archived prefix
    kReadFailed,       // the reader failed or returned the wrong number of hashes
  };
  Kind kind;
  std::string message;
  std::optional<Error> cause;  // kReadFailed: the reader's own error, when it gave one

  std::string describe() const;
};

// Compact ranges the caller already holds; their nodes are used instead of reads.
// - prefix: the archived prefix [0, P) (merkle::Tree::from_prefix's). Leaves and stored nodes
//   that cover any leaf below P are never read, so the archiver may delete them along with the
//   leaf rows; stored nodes straddling P that a writer emits later are correct but unused.
//   Sizes and leaves below P are kPrunedRange.
// - tip: the compact range at the log's size N (TileWriter::compact_range()). Sizes beyond N
//   are kSizeOutOfRange. Without it the prover cannot know the log's size: a size beyond it
//   shows up as the reader's failure (kReadFailed). For proofs at size N it saves the reads of
//   the tree's right edge, at most one per band below the top.
// The pointers are only used during the call.
struct KnownRanges {
  const merkle::CompactRange* prefix = nullptr;
  const merkle::CompactRange* tip = nullptr;
};

// Reads: at most one per band whose bits of size are not all zero.
Result<merkle::Hash, TileError> root(NodeReader& reader, std::uint64_t size,
                                     const KnownRanges& known = {});
Result<merkle::CompactRange, TileError> compact_range(NodeReader& reader, std::uint64_t size,
                                                      const KnownRanges& known = {});
// Reads: one tile per band of the path, plus the right edge of each band below the band where
// the path meets the right border (none with a tip at `size`); each read is at most 256
// hashes. Ranges of one level that fit in 256 hashes together are read at once.
Result<std::vector<merkle::Hash>, TileError> inclusion_proof(NodeReader& reader,
                                                             std::uint64_t index,
                                                             std::uint64_t size,
                                                             const KnownRanges& known = {});
Result<std::vector<merkle::Hash>, TileError> consistency_proof(NodeReader& reader,
                                                               std::uint64_t size1,
                                                               std::uint64_t size2,
                                                               const KnownRanges& known = {});

// Follows the log's leaf hashes and reports the stored nodes they complete, for the writer to
// insert in the same transaction as the leaves. Holds only a compact range (O(log n) hashes);
// appending costs what merkle::CompactRange::append costs.
class TileWriter {
 public:
  TileWriter() = default;
  // Continues a log of range.size() leaves, e.g. from an archived prefix or the daemon's own
  // compact range; nodes completed before that size are not reported again.
  explicit TileWriter(const merkle::CompactRange& range);
  // Continues a log of `size` leaves from its store (one read per band, see compact_range).
  static Result<TileWriter, TileError> resume(NodeReader& reader, std::uint64_t size,
                                              const KnownRanges& known = {});

  // Appends leaf hashes in order. Returns the nodes they complete in the order they complete:
  // by index within each level, and each level-L node before the level-(L+8) node above it.
  std::vector<StoredNode> append(std::span<const merkle::Hash> leaf_hashes);

  std::uint64_t size() const { return size_; }
  merkle::CompactRange compact_range() const;
  merkle::Hash root() const;

 private:
  std::uint64_t size_ = 0;
  std::vector<merkle::Hash> nodes_;  // as merkle::CompactRange::nodes(): largest first
};

}  // namespace enclave::audit::tiles
