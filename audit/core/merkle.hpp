// RFC 9162 (Certificate Transparency 2.0, section 2.1) Merkle tree hashing with SHA-256:
// leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right), the empty
// tree's root = SHA-256(""). Inclusion and consistency proofs as in RFC 9162 sections 2.1.3
// and 2.1.4, with verifiers that check their preconditions first and report typed errors.
// Pure code, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::audit::merkle {

using Hash = std::array<std::uint8_t, 32>;

Hash leaf_hash(ByteSpan leaf);
Hash node_hash(const Hash& left, const Hash& right);
Hash empty_root();
// MTH(D[n]) of RFC 9162 section 2.1.1 over already-hashed leaves; the reference definition.
Hash root_of(std::span<const Hash> leaf_hashes);

std::optional<Hash> hash_from_bytes(ByteSpan bytes);  // exactly 32 bytes
std::string hash_hex(const Hash& h);

struct ProofError {
  enum class Kind {
    kIndexOutOfRange,  // index >= size
    kSizeOutOfRange,   // size beyond the tree, or size1 > size2
    kWrongProofSize,   // proof has the wrong number of hashes for (index, size)
    kRootMismatch,     // the proof leads to another root
    kPrunedRange,      // the tree no longer holds the hashes needed (archived prefix)
  };
  Kind kind;
  std::string message;
  std::optional<Hash> expected;    // kRootMismatch: the root given
  std::optional<Hash> calculated;  // kRootMismatch: the root the proof yields

  std::string describe() const;
};

// The root an inclusion proof leads to for leaf `index` in a tree of `size` leaves.
Result<Hash, ProofError> root_from_inclusion_proof(std::uint64_t index, std::uint64_t size,
                                                   const Hash& leaf, std::span<const Hash> proof);
Result<void, ProofError> verify_inclusion(std::uint64_t index, std::uint64_t size, const Hash& leaf,
                                          std::span<const Hash> proof, const Hash& root);
// size1 <= size2; size1 == 0 or size1 == size2 need an empty proof (and equal roots for the
// latter).
Result<void, ProofError> verify_consistency(std::uint64_t size1, std::uint64_t size2,
                                            std::span<const Hash> proof, const Hash& root1,
                                            const Hash& root2);

// The perfect-subtree roots that cover leaves [0, size): one per set bit of size, largest
// (leftmost) first. O(log n) memory; append is amortised O(1) hashing. This is all the audit
// daemon keeps to compute roots, and what an archive leaves behind of the leaves it removed.
class CompactRange {
 public:
  CompactRange() = default;
  // nodes must have exactly popcount(size) entries.
  static std::optional<CompactRange> from_nodes(std::uint64_t size, std::vector<Hash> nodes);

  void append(const Hash& leaf_hash);
  std::uint64_t size() const { return size_; }
  const std::vector<Hash>& nodes() const { return nodes_; }
  Hash root() const;  // empty_root() when size is 0

  bool operator==(const CompactRange&) const = default;

 private:
  std::uint64_t size_ = 0;
  std::vector<Hash> nodes_;
};

// An in-memory tree holding every perfect subtree hash, for roots at any earlier size and
// proofs in O(log n). It may start from a CompactRange (leaves before it archived): roots,
// inclusion proofs and consistency proofs are then available for sizes at or after the
// prefix (kPrunedRange otherwise); RFC 9162 proofs for leaves after the prefix only ever
// need the prefix's compact-range nodes, never hashes inside them.
class Tree {
 public:
  Tree() = default;
  static Tree from_prefix(const CompactRange& prefix);

  void append(const Hash& leaf_hash);
  std::uint64_t size() const { return size_; }
  std::uint64_t prefix_size() const { return prefix_size_; }

  Result<Hash, ProofError> root(std::uint64_t size) const;  // prefix_size <= size <= size()
  Hash root() const;                                        // at size()
  Result<std::vector<Hash>, ProofError> inclusion_proof(std::uint64_t index,
                                                        std::uint64_t size) const;
  Result<std::vector<Hash>, ProofError> consistency_proof(std::uint64_t size1,
                                                          std::uint64_t size2) const;
  // The compact range of [0, size), e.g. to seal an archive; size >= prefix_size.
  Result<CompactRange, ProofError> compact_range(std::uint64_t size) const;

 private:
  // levels_[h][i - level_base_[h]] is the hash of the perfect subtree of height h that
  // covers leaves [i * 2^h, (i + 1) * 2^h).
  std::vector<std::vector<Hash>> levels_;
  std::vector<std::uint64_t> level_base_;
  std::uint64_t size_ = 0;
  std::uint64_t prefix_size_ = 0;
};

}  // namespace enclave::audit::merkle
