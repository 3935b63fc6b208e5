#include "audit/core/merkle.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace enclave::audit::merkle {

namespace {

constexpr std::uint8_t kLeafPrefix = 0x00;
constexpr std::uint8_t kNodePrefix = 0x01;

// A hash function that cannot hash has no useful answer to give; returning a made-up digest
// would corrupt the log, so the process stops.
[[noreturn]] void sha256_unavailable(const char* step) {
  std::fprintf(stderr, "merkle: OpenSSL SHA-256 %s failed\n", step);
  std::abort();
}

// Fetched once: OpenSSL 3's one-shot SHA256() fetches the algorithm on every call, which
// costs about three times the hash of a 65-byte node on this hardware.
const EVP_MD* sha256_md() {
  static const std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)> md(
      EVP_MD_fetch(nullptr, "SHA256", nullptr), &EVP_MD_free);
  if (!md) sha256_unavailable("fetch");
  return md.get();
}

// One context per thread, re-initialised per hash, so hashing allocates nothing.
EVP_MD_CTX* thread_context() {
  thread_local const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                                 &EVP_MD_CTX_free);
  if (!ctx) sha256_unavailable("context allocation");
  return ctx.get();
}

Hash sha256(ByteSpan first, ByteSpan second) {
  EVP_MD_CTX* ctx = thread_context();
  Hash out;
  unsigned int length = 0;
  if (EVP_DigestInit_ex2(ctx, sha256_md(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, first.data(), first.size()) != 1 ||
      (!second.empty() && EVP_DigestUpdate(ctx, second.data(), second.size()) != 1) ||
      EVP_DigestFinal_ex(ctx, out.data(), &length) != 1 || length != out.size()) {
    sha256_unavailable("digest");
  }
  return out;
}

std::uint64_t bit(unsigned h) {
  return std::uint64_t{1} << h;
}

// x >> n, also for n == 64 (the paths of leaves 0 and 2^64 - 2 only join at the root).
std::uint64_t shift_right(std::uint64_t x, unsigned n) {
  return n < 64 ? x >> n : 0;
}

// Lengths of the two parts of the inclusion proof of node `index` in a tree whose last node
// on the same level is `last`: `inner` siblings below the level where the paths to `index`
// and `last` join, then `border` left siblings along the tree's right border above it.
struct ProofShape {
  unsigned inner;
  unsigned border;
};
ProofShape proof_shape(std::uint64_t index, std::uint64_t last) {
  const auto inner = static_cast<unsigned>(std::bit_width(index ^ last));
  return {inner, static_cast<unsigned>(std::popcount(shift_right(index, inner)))};
}

// Folds proof hashes into `seed` for the inner part: each sibling goes on the side that
// `index`'s bit at that level says.
Hash chain_inner(Hash seed, std::span<const Hash> proof, std::uint64_t index) {
  for (std::size_t i = 0; i < proof.size(); ++i) {
    seed = ((index >> i) & 1) ? node_hash(proof[i], seed) : node_hash(seed, proof[i]);
  }
  return seed;
}

// Like chain_inner but only with the left siblings: the hash of the same subtree as it was
// before the right siblings existed (the older tree of a consistency proof).
Hash chain_inner_left(Hash seed, std::span<const Hash> proof, std::uint64_t index) {
  for (std::size_t i = 0; i < proof.size(); ++i) {
    if ((index >> i) & 1) seed = node_hash(proof[i], seed);
  }
  return seed;
}

// Above the join level every proof hash is a left sibling on the right border.
Hash chain_border(Hash seed, std::span<const Hash> proof) {
  for (const Hash& h : proof) seed = node_hash(h, seed);
  return seed;
}

Unexpected<ProofError> proof_error(ProofError::Kind kind, std::string message) {
  return fail(ProofError{kind, std::move(message), std::nullopt, std::nullopt});
}

Unexpected<ProofError> root_mismatch(std::string message, const Hash& expected,
                                     const Hash& calculated) {
  return fail(
      ProofError{ProofError::Kind::kRootMismatch, std::move(message), expected, calculated});
}

const char* kind_name(ProofError::Kind kind) {
  switch (kind) {
    case ProofError::Kind::kIndexOutOfRange:
      return "index out of range";
    case ProofError::Kind::kSizeOutOfRange:
      return "size out of range";
    case ProofError::Kind::kWrongProofSize:
      return "wrong proof size";
    case ProofError::Kind::kRootMismatch:
      return "root mismatch";
    case ProofError::Kind::kPrunedRange:
      return "pruned range";
  }
  return "unknown proof error";
}

Unexpected<ProofError> wrong_proof_size(std::size_t got, std::size_t want) {
  return proof_error(ProofError::Kind::kWrongProofSize,
                     "proof has " + std::to_string(got) + " hashes, want " + std::to_string(want));
}

Unexpected<ProofError> index_not_below(std::uint64_t index, std::uint64_t size) {
  return proof_error(
      ProofError::Kind::kIndexOutOfRange,
      "leaf index " + std::to_string(index) + " is not below tree size " + std::to_string(size));
}

Unexpected<ProofError> beyond_tree(std::uint64_t size, std::uint64_t tree_size) {
  return proof_error(
      ProofError::Kind::kSizeOutOfRange,
      "size " + std::to_string(size) + " is beyond the tree's " + std::to_string(tree_size));
}

// `what` names the leaf or size asked for.
Unexpected<ProofError> pruned(const std::string& what, std::uint64_t prefix_size) {
  return proof_error(ProofError::Kind::kPrunedRange,
                     what + " is inside the archived prefix of " + std::to_string(prefix_size));
}

// Level-h index of the first perfect node a tree pruned at `prefix` holds: the prefix's
// compact-range node when bit h of prefix is set, else the node that starts at or straddles
// the prefix's end. Nodes to its left lie inside the archived prefix.
std::uint64_t first_held(std::uint64_t prefix, unsigned h) {
  return (prefix >> h) & ~std::uint64_t{1};
}

// Read access to a Tree's perfect-subtree hashes. Callers check the request against the
// tree's size and prefix first; every node they then ask for is held.
struct PerfectNodes {
  const std::vector<std::vector<Hash>>& levels;
  const std::vector<std::uint64_t>& level_base;

  const Hash& at(unsigned h, std::uint64_t index) const {
    assert(h < levels.size() && index >= level_base[h] && index - level_base[h] < levels[h].size());
    return levels[h][index - level_base[h]];
  }

  // MTH(D[end - length : end]) where the range is a subtree of the RFC 9162 tree (its start
  // is a multiple of bit_ceil(length)): its perfect nodes, one per set bit of length, folded
  // right to left. length > 0.
  Hash range_root(std::uint64_t end, std::uint64_t length) const {
    auto h = static_cast<unsigned>(std::countr_zero(length));
    Hash acc = at(h, (end >> h) - 1);
    end -= bit(h);
    length -= bit(h);
    while (length != 0) {
      h = static_cast<unsigned>(std::countr_zero(length));
      acc = node_hash(at(h, (end >> h) - 1), acc);
      end -= bit(h);
      length -= bit(h);
    }
    return acc;
  }

  // RFC 9162 PATH for the perfect node (level, index) in the tree of `size` leaves (the
  // SUBPROOF tail when the node is the older tree's last perfect subtree), bottom-up. Only
  // the top inner sibling can be a partial subtree; it is folded from its perfect nodes.
  std::vector<Hash> path(unsigned level, std::uint64_t index, std::uint64_t size) const {
    const auto [inner, border] = proof_shape(index, (size - 1) >> level);
    std::vector<Hash> proof;
    proof.reserve(inner + border);
    for (unsigned i = 0; i < inner; ++i) {
      const unsigned h = level + i;
      const std::uint64_t node = index >> i;
      if (node & 1) {
        proof.push_back(at(h, node - 1));
      } else {
        const std::uint64_t begin = (node + 1) << h;
        const std::uint64_t length = std::min(bit(h), size - begin);
        proof.push_back(range_root(begin + length, length));
      }
    }
    unsigned h = level + inner;
    for (std::uint64_t node = shift_right(index, inner); node != 0; node >>= 1, ++h) {
      if (node & 1) proof.push_back(at(h, node - 1));
    }
    return proof;
  }
};

}  // namespace

Hash leaf_hash(ByteSpan leaf) {
  return sha256(ByteSpan(&kLeafPrefix, 1), leaf);
}

Hash node_hash(const Hash& left, const Hash& right) {
  // One update of the whole 65-byte input is measurably cheaper than three.
  std::array<std::uint8_t, 1 + 2 * sizeof(Hash)> input;
  input[0] = kNodePrefix;
  std::memcpy(input.data() + 1, left.data(), left.size());
  std::memcpy(input.data() + 1 + left.size(), right.data(), right.size());
  return sha256(input, {});
}

Hash empty_root() {
  return sha256({}, {});
}

Hash root_of(std::span<const Hash> leaf_hashes) {
  if (leaf_hashes.empty()) return empty_root();
  if (leaf_hashes.size() == 1) return leaf_hashes[0];
  const std::size_t split = std::bit_floor(leaf_hashes.size() - 1);
  return node_hash(root_of(leaf_hashes.first(split)), root_of(leaf_hashes.subspan(split)));
}

std::optional<Hash> hash_from_bytes(ByteSpan bytes) {
  Hash h;
  if (bytes.size() != h.size()) return std::nullopt;
  std::copy(bytes.begin(), bytes.end(), h.begin());
  return h;
}

std::string hash_hex(const Hash& h) {
  return hex_encode(h);
}

std::string ProofError::describe() const {
  std::string out = std::string(kind_name(kind)) + ": " + message;
  if (expected) out += "; expected root " + hash_hex(*expected);
  if (calculated) out += "; calculated root " + hash_hex(*calculated);
  return out;
}

Result<Hash, ProofError> root_from_inclusion_proof(std::uint64_t index, std::uint64_t size,
                                                   const Hash& leaf, std::span<const Hash> proof) {
  if (index >= size) {
    return index_not_below(index, size);
  }
  const auto [inner, border] = proof_shape(index, size - 1);
  if (proof.size() != inner + border) {
    return wrong_proof_size(proof.size(), inner + border);
  }
  return chain_border(chain_inner(leaf, proof.first(inner), index), proof.subspan(inner));
}

Result<void, ProofError> verify_inclusion(std::uint64_t index, std::uint64_t size, const Hash& leaf,
                                          std::span<const Hash> proof, const Hash& root) {
  auto calculated = root_from_inclusion_proof(index, size, leaf, proof);
  if (!calculated) return error_of(calculated);
  if (*calculated != root) {
    return root_mismatch(
        "inclusion proof of leaf " + std::to_string(index) + " leads to another root", root,
        *calculated);
  }
  return {};
}

Result<void, ProofError> verify_consistency(std::uint64_t size1, std::uint64_t size2,
                                            std::span<const Hash> proof, const Hash& root1,
                                            const Hash& root2) {
  if (size1 > size2) {
    return proof_error(
        ProofError::Kind::kSizeOutOfRange,
        "size1 " + std::to_string(size1) + " is beyond size2 " + std::to_string(size2));
  }
  if (size1 == 0 || size1 == size2) {
    if (!proof.empty()) {
      return wrong_proof_size(proof.size(), 0);
    }
    // Trivially consistent, but the roots given must still be the right ones.
    if (size1 == 0 && root1 != empty_root()) {
      return root_mismatch("root1 of the empty tree is not the empty root", root1, empty_root());
    }
    if (size1 == size2 && root2 != root1) {
      return root_mismatch("equal sizes with different roots", root2, root1);
    }
    return {};
  }

  // The proof is the older tree's last perfect subtree (left out when that subtree is the
  // whole older tree, whose root the verifier has), then that subtree's inclusion path in
  // the newer tree.
  const auto shift = static_cast<unsigned>(std::countr_zero(size1));
  const std::uint64_t index = (size1 - 1) >> shift;
  const auto [inner, border] = proof_shape(index, (size2 - 1) >> shift);
  const std::size_t start = index == 0 ? 0 : 1;
  if (proof.size() != start + inner + border) {
    return wrong_proof_size(proof.size(), start + inner + border);
  }
  const Hash& seed = start == 0 ? root1 : proof[0];
  const auto path = proof.subspan(start);

  const Hash calculated1 =
      chain_border(chain_inner_left(seed, path.first(inner), index), path.subspan(inner));
  if (calculated1 != root1) {
    return root_mismatch("consistency proof leads to another root1", root1, calculated1);
  }
  const Hash calculated2 =
      chain_border(chain_inner(seed, path.first(inner), index), path.subspan(inner));
  if (calculated2 != root2) {
    return root_mismatch("consistency proof leads to another root2", root2, calculated2);
  }
  return {};
}

std::optional<CompactRange> CompactRange::from_nodes(std::uint64_t size, std::vector<Hash> nodes) {
  if (nodes.size() != static_cast<std::size_t>(std::popcount(size))) return std::nullopt;
  CompactRange range;
  range.size_ = size;
  range.nodes_ = std::move(nodes);
  return range;
}

void CompactRange::append(const Hash& leaf_hash) {
  nodes_.push_back(leaf_hash);
  // Each trailing one bit of the old size is a node of the new leaf's height to merge with.
  for (std::uint64_t s = size_; s & 1; s >>= 1) {
    const Hash right = nodes_.back();
    nodes_.pop_back();
    nodes_.back() = node_hash(nodes_.back(), right);
  }
  ++size_;
}

Hash CompactRange::root() const {
  if (nodes_.empty()) return empty_root();
  Hash acc = nodes_.back();
  for (auto it = nodes_.rbegin() + 1; it != nodes_.rend(); ++it) acc = node_hash(*it, acc);
  return acc;
}

Tree Tree::from_prefix(const CompactRange& prefix) {
  Tree tree;
  tree.size_ = tree.prefix_size_ = prefix.size();
  const auto levels = static_cast<unsigned>(std::bit_width(prefix.size()));
  tree.levels_.resize(levels);
  tree.level_base_.resize(levels);
  // nodes() runs from the highest level down.
  std::size_t next = prefix.nodes().size();
  for (unsigned h = 0; h < levels; ++h) {
    tree.level_base_[h] = first_held(prefix.size(), h);
    if (prefix.size() & bit(h)) tree.levels_[h].push_back(prefix.nodes()[--next]);
  }
  return tree;
}

void Tree::append(const Hash& leaf_hash) {
  Hash hash = leaf_hash;
  std::uint64_t index = size_;
  // INVARIANT: levels_[h] holds every node from level_base_[h] up to the last complete one,
  // so the new node at level h goes at the end and its left sibling (when it is a right
  // child) is held: either completed earlier or the prefix's compact-range node.
  for (unsigned h = 0;; ++h, index >>= 1) {
    if (h == levels_.size()) {
      levels_.emplace_back();
      level_base_.push_back(first_held(prefix_size_, h));
    }
    std::vector<Hash>& level = levels_[h];
    assert(index - level_base_[h] == level.size());
    level.push_back(hash);
    if ((index & 1) == 0) break;
    hash = node_hash(level[level.size() - 2], hash);
  }
  ++size_;
}

Result<Hash, ProofError> Tree::root(std::uint64_t size) const {
  if (size > size_) {
    return beyond_tree(size, size_);
  }
  if (size < prefix_size_) {
    return pruned("size " + std::to_string(size), prefix_size_);
  }
  if (size == 0) return empty_root();
  return PerfectNodes{levels_, level_base_}.range_root(size, size);
}

Hash Tree::root() const {
  return root(size_).value();
}

Result<std::vector<Hash>, ProofError> Tree::inclusion_proof(std::uint64_t index,
                                                            std::uint64_t size) const {
  if (index >= size) {
    return index_not_below(index, size);
  }
  if (size > size_) {
    return beyond_tree(size, size_);
  }
  if (index < prefix_size_) {
    return pruned("leaf " + std::to_string(index), prefix_size_);
  }
  return PerfectNodes{levels_, level_base_}.path(0, index, size);
}

Result<std::vector<Hash>, ProofError> Tree::consistency_proof(std::uint64_t size1,
                                                              std::uint64_t size2) const {
  if (size1 > size2 || size2 > size_) {
    return proof_error(ProofError::Kind::kSizeOutOfRange,
                       "sizes " + std::to_string(size1) + " and " + std::to_string(size2) +
                           " are not ordered within the tree's " + std::to_string(size_));
  }
  if (size1 == 0 || size1 == size2) return std::vector<Hash>{};
  if (size1 < prefix_size_) {
    return pruned("size " + std::to_string(size1), prefix_size_);
  }
  // SUBPROOF(size1, D[size2], true) of RFC 9162 section 2.1.4.1: the older tree's last
  // perfect subtree, unless it is the whole older tree, then its path in the newer tree.
  const PerfectNodes nodes{levels_, level_base_};
  const auto level = static_cast<unsigned>(std::countr_zero(size1));
  const std::uint64_t index = (size1 - 1) >> level;
  std::vector<Hash> path = nodes.path(level, index, size2);
  if (index == 0) return path;
  std::vector<Hash> proof;
  proof.reserve(1 + path.size());
  proof.push_back(nodes.at(level, index));
  proof.insert(proof.end(), path.begin(), path.end());
  return proof;
}

Result<CompactRange, ProofError> Tree::compact_range(std::uint64_t size) const {
  if (size > size_) {
    return beyond_tree(size, size_);
  }
  if (size < prefix_size_) {
    return pruned("size " + std::to_string(size), prefix_size_);
  }
  const PerfectNodes nodes{levels_, level_base_};
  std::vector<Hash> range;
  range.reserve(static_cast<std::size_t>(std::popcount(size)));
  std::uint64_t begin = 0;
  for (unsigned h = static_cast<unsigned>(std::bit_width(size)); h-- > 0;) {
    if (size & bit(h)) {
      range.push_back(nodes.at(h, begin >> h));
      begin += bit(h);
    }
  }
  return *CompactRange::from_nodes(size, std::move(range));
}

}  // namespace enclave::audit::merkle
