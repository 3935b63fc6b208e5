// RFC 9162 Merkle tree: published known-answer vectors, the Tree and CompactRange against the
// RFC's recursive definitions, every good proof failing under every corruption, and pruned
// trees answering exactly like whole ones.
#include "audit/core/merkle.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <random>
#include <string_view>

namespace enclave::audit::merkle {
namespace {

using ::testing::HasSubstr;
using Kind = ProofError::Kind;

Hash h(std::string_view hex) {
  auto bytes = hex_decode(hex);
  EXPECT_TRUE(bytes.has_value()) << hex;
  auto hash = hash_from_bytes(bytes.value_or(Bytes{}));
  EXPECT_TRUE(hash.has_value()) << hex;
  return hash.value_or(Hash{});
}

// RFC 6962 reference vectors as published in transparency-dev/merkle (testonly/constants.go,
// testonly/reference_test.go, proof/verify_test.go, rfc6962/rfc6962_test.go), which carries
// them over from google/trillian merkle/testonly. RFC 9162 hashing is the same as RFC 6962's.
constexpr std::string_view kLeafInputs[] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};
constexpr std::string_view kEmptyRoot =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
// Roots of the trees of the first 1..8 leaf inputs.
constexpr std::string_view kRoots[] = {
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
// Every perfect subtree of the 8-leaf tree, by level then index (NodeHashes()).
const std::vector<std::vector<std::string_view>> kNodeHashes = {
    {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"},
    {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"},
    {"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"},
    {"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"},
};
// The compact range of each size 0..8 as (level, index) into kNodeHashes (CompactTrees()).
const std::vector<std::vector<std::pair<int, int>>> kCompactRanges = {
    {},       {{0, 0}},         {{1, 0}},         {{1, 0}, {0, 2}},
    {{2, 0}}, {{2, 0}, {0, 4}}, {{2, 0}, {1, 2}}, {{2, 0}, {1, 2}, {0, 6}},
    {{3, 0}},
};

struct InclusionVector {
  std::uint64_t index;
  std::uint64_t size;
  std::vector<std::string_view> proof;
};
// verify_test.go inclusionProofs (its 1-based leaf numbers made 0-based) and
// reference_test.go TestRefInclusionProof.
const std::vector<InclusionVector> kInclusionVectors = {
    {0, 1, {}},
    {0, 2, {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"}},
    {1, 2, {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"}},
    {2, 3, {"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"}},
    {1,
     5,
     {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {0,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {5,
     8,
     {"bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

struct ConsistencyVector {
  std::uint64_t size1;
  std::uint64_t size2;
  std::vector<std::string_view> proof;
};
// verify_test.go consistencyProofs.
const std::vector<ConsistencyVector> kConsistencyVectors = {
    {1, 1, {}},
    {1,
     8,
     {"96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"}},
    {6,
     8,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
    {2,
     5,
     {"5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"}},
    {6,
     7,
     {"0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"}},
};

std::vector<Hash> hashes(const std::vector<std::string_view>& hex) {
  std::vector<Hash> out;
  for (auto x : hex) out.push_back(h(x));
  return out;
}

std::vector<Hash> vector_leaf_hashes() {
  std::vector<Hash> out;
  for (auto input : kLeafInputs) out.push_back(leaf_hash(*hex_decode(input)));
  return out;
}

// Distinct leaf hashes for generated trees.
std::vector<Hash> numbered_leaves(std::uint64_t n) {
  std::vector<Hash> out;
  out.reserve(n);
  for (std::uint64_t i = 0; i < n; ++i) out.push_back(leaf_hash(as_bytes(std::to_string(i))));
  return out;
}

Tree tree_of(std::span<const Hash> leaves) {
  Tree tree;
  for (const Hash& leaf : leaves) tree.append(leaf);
  return tree;
}

// RFC 9162 section 2.1.3.1 PATH(m, D[n]), written as the RFC states it.
std::vector<Hash> ref_path(std::uint64_t m, std::span<const Hash> d) {
  if (d.size() == 1) return {};
  const std::size_t k = std::bit_floor(d.size() - 1);
  std::vector<Hash> out;
  if (m < k) {
    out = ref_path(m, d.first(k));
    out.push_back(root_of(d.subspan(k)));
  } else {
    out = ref_path(m - k, d.subspan(k));
    out.push_back(root_of(d.first(k)));
  }
  return out;
}

// RFC 9162 section 2.1.4.1 SUBPROOF(m, D[n], b).
std::vector<Hash> ref_subproof(std::uint64_t m, std::span<const Hash> d, bool b) {
  if (m == d.size()) return b ? std::vector<Hash>{} : std::vector<Hash>{root_of(d)};
  const std::size_t k = std::bit_floor(d.size() - 1);
  std::vector<Hash> out;
  if (m <= k) {
    out = ref_subproof(m, d.first(k), b);
    out.push_back(root_of(d.subspan(k)));
  } else {
    out = ref_subproof(m - k, d.subspan(k), false);
    out.push_back(root_of(d.first(k)));
  }
  return out;
}

std::vector<Hash> ref_consistency(std::uint64_t m, std::span<const Hash> d) {
  if (m == 0 || m == d.size()) return {};
  return ref_subproof(m, d, true);
}

Hash flip(Hash hash, unsigned bit) {
  hash[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
  return hash;
}

// verify_test.go sha256SomeHash: a well-formed hash that is no node of any tree here.
const Hash& some_hash() {
  static const Hash hash = h("abacaba000000000000000000000000000000000000000000060061e00123456");
  return hash;
}

template <class R>
std::string outcome(const R& r) {
  return r ? std::string("verified") : r.error().describe();
}

// transparency-dev/merkle proof/verify_test.go corruptInclusionProof, with every bit of
// every proof hash flipped when all_bits, else a few bits per hash.
void expect_inclusion_corruptions_fail(std::uint64_t index, std::uint64_t size, const Hash& leaf,
                                       const std::vector<Hash>& proof, const Hash& root,
                                       bool all_bits) {
  SCOPED_TRACE("inclusion " + std::to_string(index) + " in " + std::to_string(size));
  ASSERT_TRUE(verify_inclusion(index, size, leaf, proof, root));
  struct Probe {
    std::string what;
    std::uint64_t index;
    std::uint64_t size;
    Hash leaf;
    std::vector<Hash> proof;
    Hash root;
  };
  std::vector<Probe> probes = {
      {"index - 1", index - 1, size, leaf, proof, root},
      {"index + 1", index + 1, size, leaf, proof, root},
      {"index ^ 2", index ^ 2, size, leaf, proof, root},
      {"size * 2", index, size * 2, leaf, proof, root},
      {"size / 2", index, size / 2, leaf, proof, root},
      {"wrong leaf", index, size, flip(leaf, 0), proof, root},
      {"empty root", index, size, leaf, proof, empty_root()},
      {"other root", index, size, leaf, proof, some_hash()},
  };
  auto padded = proof;
  padded.push_back(root);
  probes.push_back({"trailing root", index, size, leaf, padded, root});
  auto preceded = proof;
  preceded.insert(preceded.begin(), root);
  probes.push_back({"preceding root", index, size, leaf, preceded, root});
  if (!proof.empty()) {
    probes.push_back({"truncated", index, size, leaf, {proof.begin(), proof.end() - 1}, root});
    probes.push_back({"first removed", index, size, leaf, {proof.begin() + 1, proof.end()}, root});
    probes.push_back({"empty proof", index, size, leaf, {}, root});
  }
  if (proof.size() > 1) {
    auto inserted = proof;
    inserted.insert(inserted.begin() + 1, some_hash());
    inserted.erase(inserted.end() - 1);
    probes.push_back({"inserted, last dropped", index, size, leaf, inserted, root});
  }
  for (std::size_t i = 0; i < proof.size(); ++i) {
    for (unsigned b = 0; b < 256; ++b) {
      if (!all_bits && b % 51 != i % 51) continue;
      auto wrong = proof;
      wrong[i] = flip(wrong[i], b);
      probes.push_back({"proof[" + std::to_string(i) + "] bit " + std::to_string(b), index, size,
                        leaf, wrong, root});
    }
  }
  for (const auto& p : probes) {
    EXPECT_FALSE(verify_inclusion(p.index, p.size, p.leaf, p.proof, p.root)) << p.what;
  }
}

// transparency-dev/merkle proof/verify_test.go corruptConsistencyProof; for non-trivial
// proofs only, as there.
void expect_consistency_corruptions_fail(std::uint64_t size1, std::uint64_t size2,
                                         const std::vector<Hash>& proof, const Hash& root1,
                                         const Hash& root2, bool all_bits) {
  SCOPED_TRACE("consistency " + std::to_string(size1) + " to " + std::to_string(size2));
  ASSERT_TRUE(verify_consistency(size1, size2, proof, root1, root2));
  ASSERT_FALSE(proof.empty());
  struct Probe {
    std::string what;
    std::uint64_t size1;
    std::uint64_t size2;
    std::vector<Hash> proof;
    Hash root1;
    Hash root2;
  };
  std::vector<Probe> probes = {
      {"size1 - 1", size1 - 1, size2, proof, root1, root2},
      {"size1 + 1", size1 + 1, size2, proof, root1, root2},
      {"size1 ^ 2", size1 ^ 2, size2, proof, root1, root2},
      {"size2 * 2", size1, size2 * 2, proof, root1, root2},
      {"size2 / 2", size1, size2 / 2, proof, root1, root2},
      {"wrong root1", size1, size2, proof, flip(root1, 9), root2},
      {"wrong root2", size1, size2, proof, root1, flip(root2, 9)},
      {"swapped roots", size1, size2, proof, root2, root1},
      {"empty proof", size1, size2, {}, root1, root2},
      {"truncated", size1, size2, {proof.begin(), proof.end() - 1}, root1, root2},
  };
  for (const Hash& extra : {root1, root2, some_hash()}) {
    auto padded = proof;
    padded.push_back(extra);
    probes.push_back({"trailing hash", size1, size2, padded, root1, root2});
  }
  for (const Hash& extra : {root1, root2, proof[0]}) {
    auto preceded = proof;
    preceded.insert(preceded.begin(), extra);
    probes.push_back({"preceding hash", size1, size2, preceded, root1, root2});
  }
  for (std::size_t i = 0; i < proof.size(); ++i) {
    for (unsigned b = 0; b < 256; ++b) {
      if (!all_bits && b % 51 != i % 51) continue;
      auto wrong = proof;
      wrong[i] = flip(wrong[i], b);
      probes.push_back({"proof[" + std::to_string(i) + "] bit " + std::to_string(b), size1, size2,
                        wrong, root1, root2});
    }
  }
  for (const auto& p : probes) {
    EXPECT_FALSE(verify_consistency(p.size1, p.size2, p.proof, p.root1, p.root2)) << p.what;
  }
}

TEST(MerkleHash, KnownAnswers) {
  EXPECT_EQ(empty_root(), h(kEmptyRoot));
  // rfc6962_test.go: the empty leaf's hash differs from the empty tree's root.
  EXPECT_EQ(leaf_hash({}), h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"));
  EXPECT_EQ(leaf_hash(as_bytes("L123456")),
            h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"));
  const auto leaves = vector_leaf_hashes();
  for (std::size_t i = 0; i < leaves.size(); ++i) EXPECT_EQ(leaves[i], h(kNodeHashes[0][i])) << i;
  for (std::size_t level = 1; level < kNodeHashes.size(); ++level) {
    for (std::size_t i = 0; i < kNodeHashes[level].size(); ++i) {
      EXPECT_EQ(node_hash(h(kNodeHashes[level - 1][2 * i]), h(kNodeHashes[level - 1][2 * i + 1])),
                h(kNodeHashes[level][i]))
          << level << "/" << i;
    }
  }
}

TEST(MerkleHash, HashBytesAndHex) {
  const Bytes bytes(32, 0xab);
  ASSERT_TRUE(hash_from_bytes(bytes));
  std::string want;
  for (int i = 0; i < 32; ++i) want += "ab";
  EXPECT_EQ(hash_hex(*hash_from_bytes(bytes)), want);
  EXPECT_FALSE(hash_from_bytes(Bytes(31, 0)));
  EXPECT_FALSE(hash_from_bytes(Bytes(33, 0)));
  EXPECT_FALSE(hash_from_bytes({}));
  EXPECT_EQ(hash_hex(h(kEmptyRoot)), kEmptyRoot);
}

TEST(MerkleVectors, RootsForZeroToEightLeaves) {
  const auto leaves = vector_leaf_hashes();
  Tree tree;
  CompactRange range;
  EXPECT_EQ(root_of({}), h(kEmptyRoot));
  EXPECT_EQ(tree.root(), h(kEmptyRoot));
  EXPECT_EQ(range.root(), h(kEmptyRoot));
  for (std::size_t n = 1; n <= leaves.size(); ++n) {
    tree.append(leaves[n - 1]);
    range.append(leaves[n - 1]);
    const Hash want = h(kRoots[n - 1]);
    EXPECT_EQ(root_of(std::span(leaves).first(n)), want) << n;
    EXPECT_EQ(tree.root(), want) << n;
    EXPECT_EQ(range.root(), want) << n;
  }
  for (std::size_t n = 0; n <= leaves.size(); ++n) {
    auto root = tree.root(n);
    ASSERT_TRUE(root) << n;
    EXPECT_EQ(*root, n == 0 ? h(kEmptyRoot) : h(kRoots[n - 1])) << n;
  }
}

TEST(MerkleVectors, CompactRangesHoldThePublishedNodes) {
  const auto leaves = vector_leaf_hashes();
  const Tree tree = tree_of(leaves);
  CompactRange range;
  for (std::size_t n = 0; n <= leaves.size(); ++n) {
    std::vector<Hash> want;
    for (auto [level, index] : kCompactRanges[n]) want.push_back(h(kNodeHashes[level][index]));
    EXPECT_EQ(range.nodes(), want) << n;
    EXPECT_EQ(range.size(), n);
    auto from_tree = tree.compact_range(n);
    ASSERT_TRUE(from_tree) << n;
    EXPECT_EQ(*from_tree, range) << n;
    if (n < leaves.size()) range.append(leaves[n]);
  }
}

TEST(MerkleVectors, InclusionProofsVerifyAndAreGenerated) {
  const auto leaves = vector_leaf_hashes();
  const Tree tree = tree_of(leaves);
  for (const auto& v : kInclusionVectors) {
    SCOPED_TRACE(std::to_string(v.index) + " in " + std::to_string(v.size));
    const auto proof = hashes(v.proof);
    const Hash root = h(kRoots[v.size - 1]);
    auto calculated = root_from_inclusion_proof(v.index, v.size, leaves[v.index], proof);
    ASSERT_TRUE(calculated) << calculated.error().describe();
    EXPECT_EQ(*calculated, root);
    EXPECT_TRUE(verify_inclusion(v.index, v.size, leaves[v.index], proof, root));
    auto generated = tree.inclusion_proof(v.index, v.size);
    ASSERT_TRUE(generated) << generated.error().describe();
    EXPECT_EQ(*generated, proof);
    EXPECT_EQ(ref_path(v.index, std::span(leaves).first(v.size)), proof);
    expect_inclusion_corruptions_fail(v.index, v.size, leaves[v.index], proof, root, true);
  }
}

TEST(MerkleVectors, ConsistencyProofsVerifyAndAreGenerated) {
  const auto leaves = vector_leaf_hashes();
  const Tree tree = tree_of(leaves);
  for (const auto& v : kConsistencyVectors) {
    SCOPED_TRACE(std::to_string(v.size1) + " to " + std::to_string(v.size2));
    const auto proof = hashes(v.proof);
    const Hash root1 = h(kRoots[v.size1 - 1]);
    const Hash root2 = h(kRoots[v.size2 - 1]);
    auto verified = verify_consistency(v.size1, v.size2, proof, root1, root2);
    EXPECT_TRUE(verified) << outcome(verified);
    auto generated = tree.consistency_proof(v.size1, v.size2);
    ASSERT_TRUE(generated) << generated.error().describe();
    EXPECT_EQ(*generated, proof);
    EXPECT_EQ(ref_consistency(v.size1, std::span(leaves).first(v.size2)), proof);
    if (!proof.empty())
      expect_consistency_corruptions_fail(v.size1, v.size2, proof, root1, root2, true);
  }
}

TEST(MerkleVerify, InclusionPreconditions) {
  const Hash leaf = leaf_hash(as_bytes("data"));
  // A one-leaf tree's root is its leaf hash and the proof is empty.
  EXPECT_TRUE(verify_inclusion(0, 1, leaf, {}, leaf));
  auto other = verify_inclusion(0, 1, leaf, {}, some_hash());
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().kind, Kind::kRootMismatch);
  EXPECT_EQ(other.error().expected, some_hash());
  EXPECT_EQ(other.error().calculated, leaf);
  EXPECT_THAT(other.error().describe(), HasSubstr(hash_hex(some_hash())));
  EXPECT_THAT(other.error().describe(), HasSubstr(hash_hex(leaf)));

  for (auto [index, size] : {std::pair<std::uint64_t, std::uint64_t>{0, 0},
                             {1, 0},
                             {1, 1},
                             {2, 1},
                             {~std::uint64_t{0}, ~std::uint64_t{0}}}) {
    auto r = verify_inclusion(index, size, leaf, {}, leaf);
    ASSERT_FALSE(r) << index << "/" << size;
    EXPECT_EQ(r.error().kind, Kind::kIndexOutOfRange);
  }
  // A proof of the wrong length is refused whatever it holds.
  const std::vector<Hash> long_proof(65, leaf);
  auto too_long = root_from_inclusion_proof(3, 8, leaf, long_proof);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().kind, Kind::kWrongProofSize);
  // The largest tree: the last leaf has no inner siblings and 63 left siblings on the border.
  const std::uint64_t max = ~std::uint64_t{0};
  const std::vector<Hash> border(63, leaf);
  EXPECT_TRUE(root_from_inclusion_proof(max - 1, max, leaf, border));
  EXPECT_TRUE(root_from_inclusion_proof(0, max, leaf, std::vector<Hash>(64, leaf)));
}

TEST(MerkleVerify, ConsistencyEdgeCases) {
  const Hash a = leaf_hash(as_bytes("a"));
  const Hash b = leaf_hash(as_bytes("b"));
  const Hash empty = empty_root();
  auto kind_of = [](const Result<void, ProofError>& r) { return r.error().kind; };

  EXPECT_TRUE(verify_consistency(0, 0, {}, empty, empty));
  EXPECT_TRUE(verify_consistency(0, 5, {}, empty, b));  // anything extends the empty tree
  EXPECT_TRUE(verify_consistency(3, 3, {}, a, a));

  auto r = verify_consistency(0, 5, {}, a, b);  // an empty tree's root is fixed
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kRootMismatch);
  r = verify_consistency(0, 0, {}, empty, a);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kRootMismatch);
  r = verify_consistency(3, 3, {}, a, b);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kRootMismatch);
  EXPECT_EQ(r.error().expected, b);
  EXPECT_EQ(r.error().calculated, a);
  r = verify_consistency(3, 3, std::vector<Hash>{a}, a, a);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kWrongProofSize);
  r = verify_consistency(0, 4, std::vector<Hash>{empty}, empty, a);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kWrongProofSize);
  r = verify_consistency(1, 2, {}, a, b);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kWrongProofSize);
  for (auto [s1, s2] : {std::pair<std::uint64_t, std::uint64_t>{1, 0}, {2, 1}, {9, 8}}) {
    r = verify_consistency(s1, s2, {}, a, a);
    ASSERT_FALSE(r);
    EXPECT_EQ(kind_of(r), Kind::kSizeOutOfRange);
  }
  r = verify_consistency(3, 9, std::vector<Hash>(200, a), a, b);
  ASSERT_FALSE(r);
  EXPECT_EQ(kind_of(r), Kind::kWrongProofSize);
}

TEST(MerkleTree, RootsMatchTheReferenceAtEverySize) {
  constexpr std::uint64_t kMax = 300;
  const auto leaves = numbered_leaves(kMax);
  std::vector<Hash> reference;
  for (std::uint64_t n = 0; n <= kMax; ++n)
    reference.push_back(root_of(std::span(leaves).first(n)));
  Tree tree;
  for (std::uint64_t n = 1; n <= kMax; ++n) {
    tree.append(leaves[n - 1]);
    ASSERT_EQ(tree.size(), n);
    EXPECT_EQ(tree.root(), reference[n]) << n;
    for (std::uint64_t k = 0; k <= n; ++k) {
      auto root = tree.root(k);
      ASSERT_TRUE(root) << k << " of " << n;
      EXPECT_EQ(*root, reference[k]) << k << " of " << n;
    }
  }
}

TEST(MerkleTree, EveryInclusionProofMatchesTheRfcAndVerifies) {
  constexpr std::uint64_t kMax = 64;
  const auto leaves = numbered_leaves(kMax);
  const Tree tree = tree_of(leaves);
  for (std::uint64_t size = 1; size <= kMax; ++size) {
    const auto prefix = std::span(leaves).first(size);
    const Hash root = root_of(prefix);
    for (std::uint64_t index = 0; index < size; ++index) {
      auto proof = tree.inclusion_proof(index, size);
      ASSERT_TRUE(proof) << index << " in " << size;
      EXPECT_EQ(*proof, ref_path(index, prefix)) << index << " in " << size;
      auto verified = verify_inclusion(index, size, leaves[index], *proof, root);
      EXPECT_TRUE(verified) << index << " in " << size << ": " << outcome(verified);
    }
  }
}

TEST(MerkleTree, EveryConsistencyProofMatchesTheRfcAndVerifies) {
  constexpr std::uint64_t kMax = 64;
  const auto leaves = numbered_leaves(kMax);
  const Tree tree = tree_of(leaves);
  for (std::uint64_t size2 = 0; size2 <= kMax; ++size2) {
    const Hash root2 = root_of(std::span(leaves).first(size2));
    for (std::uint64_t size1 = 0; size1 <= size2; ++size1) {
      auto proof = tree.consistency_proof(size1, size2);
      ASSERT_TRUE(proof) << size1 << " to " << size2;
      EXPECT_EQ(*proof, ref_consistency(size1, std::span(leaves).first(size2)))
          << size1 << " to " << size2;
      const Hash root1 = root_of(std::span(leaves).first(size1));
      auto verified = verify_consistency(size1, size2, *proof, root1, root2);
      EXPECT_TRUE(verified) << size1 << " to " << size2 << ": " << outcome(verified);
    }
  }
}

TEST(MerkleTree, CorruptedGeneratedProofsFail) {
  constexpr std::uint64_t kMax = 40;
  const auto leaves = numbered_leaves(kMax);
  const Tree tree = tree_of(leaves);
  for (std::uint64_t size = 1; size <= kMax; ++size) {
    const Hash root = tree.root(size).value();
    for (std::uint64_t index = 0; index < size; ++index) {
      expect_inclusion_corruptions_fail(index, size, leaves[index],
                                        tree.inclusion_proof(index, size).value(), root, false);
    }
    for (std::uint64_t size1 = 1; size1 < size; ++size1) {
      expect_consistency_corruptions_fail(size1, size, tree.consistency_proof(size1, size).value(),
                                          tree.root(size1).value(), root, false);
    }
  }
}

TEST(MerkleTree, RequestsOutsideTheTreeFail) {
  const auto leaves = numbered_leaves(10);
  const Tree tree = tree_of(leaves);
  auto expect_kind = [](const auto& r, Kind kind) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, kind) << r.error().describe();
  };
  expect_kind(tree.root(11), Kind::kSizeOutOfRange);
  expect_kind(tree.inclusion_proof(10, 10), Kind::kIndexOutOfRange);
  expect_kind(tree.inclusion_proof(0, 0), Kind::kIndexOutOfRange);
  expect_kind(tree.inclusion_proof(3, 11), Kind::kSizeOutOfRange);
  expect_kind(tree.consistency_proof(5, 4), Kind::kSizeOutOfRange);
  expect_kind(tree.consistency_proof(5, 11), Kind::kSizeOutOfRange);
  expect_kind(tree.compact_range(11), Kind::kSizeOutOfRange);
  expect_kind(Tree{}.inclusion_proof(0, 0), Kind::kIndexOutOfRange);
  EXPECT_EQ(Tree{}.root(), empty_root());
}

TEST(MerkleTree, LargeTreeProofsVerify) {
  constexpr std::uint64_t kSize = 100'003;
  const auto leaves = numbered_leaves(kSize);
  const Tree tree = tree_of(leaves);
  ASSERT_EQ(tree.root(), root_of(leaves));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 300; ++i) {
    const std::uint64_t size = 1 + rng() % kSize;
    const std::uint64_t index = rng() % size;
    const Hash root = tree.root(size).value();
    auto proof = tree.inclusion_proof(index, size);
    ASSERT_TRUE(proof);
    EXPECT_TRUE(verify_inclusion(index, size, leaves[index], *proof, root)) << index << "/" << size;
    const std::uint64_t size1 = rng() % (size + 1);
    auto consistency = tree.consistency_proof(size1, size);
    ASSERT_TRUE(consistency);
    EXPECT_TRUE(verify_consistency(size1, size, *consistency, tree.root(size1).value(), root))
        << size1 << " to " << size;
  }
}

// A pruned tree must answer every request at or after its prefix exactly as the whole tree
// does, at every size it grows through, and refuse everything before it.
void expect_pruned_tree_matches(const Tree& whole, std::span<const Hash> leaves,
                                std::uint64_t prefix, std::uint64_t total) {
  SCOPED_TRACE("prefix " + std::to_string(prefix));
  Tree pruned = Tree::from_prefix(whole.compact_range(prefix).value());
  ASSERT_EQ(pruned.size(), prefix);
  ASSERT_EQ(pruned.prefix_size(), prefix);
  for (std::uint64_t size = prefix;; ++size) {
    SCOPED_TRACE("size " + std::to_string(size));
    ASSERT_EQ(pruned.root(), whole.root(size).value());
    ASSERT_EQ(pruned.compact_range(size).value(), whole.compact_range(size).value());
    for (std::uint64_t index = prefix; index < size; ++index) {
      ASSERT_EQ(pruned.inclusion_proof(index, size).value(),
                whole.inclusion_proof(index, size).value())
          << index;
    }
    for (std::uint64_t size1 = prefix; size1 <= size; ++size1) {
      ASSERT_EQ(pruned.consistency_proof(size1, size).value(),
                whole.consistency_proof(size1, size).value())
          << size1;
    }
    if (size == total) break;
    pruned.append(leaves[size]);
  }
  // The finished tree answers for every earlier size too.
  for (std::uint64_t size = prefix; size <= total; ++size) {
    ASSERT_EQ(pruned.root(size).value(), whole.root(size).value()) << size;
    for (std::uint64_t index = prefix; index < size; index += 3) {
      ASSERT_EQ(pruned.inclusion_proof(index, size).value(),
                whole.inclusion_proof(index, size).value())
          << index << " in " << size;
    }
    for (std::uint64_t size1 = prefix; size1 <= size; size1 += 3) {
      ASSERT_EQ(pruned.consistency_proof(size1, size).value(),
                whole.consistency_proof(size1, size).value())
          << size1 << " to " << size;
    }
  }
  auto expect_pruned = [](const auto& r) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, Kind::kPrunedRange) << r.error().describe();
  };
  for (std::uint64_t below = 0; below < prefix; ++below) {
    expect_pruned(pruned.root(below));
    expect_pruned(pruned.compact_range(below));
    expect_pruned(pruned.inclusion_proof(below, total));
    expect_pruned(pruned.inclusion_proof(below, prefix));
    if (below > 0) expect_pruned(pruned.consistency_proof(below, total));
  }
}

TEST(MerkleTree, PrunedTreesAnswerLikeWholeOnes) {
  constexpr std::uint64_t kTotal = 70;
  const auto leaves = numbered_leaves(kTotal);
  const Tree whole = tree_of(leaves);
  for (std::uint64_t prefix = 0; prefix <= kTotal; ++prefix) {
    expect_pruned_tree_matches(whole, leaves, prefix, kTotal);
  }
}

TEST(MerkleTree, PrunedTreesAtLargePrefixes) {
  constexpr std::uint64_t kTotal = 4'200;
  const auto leaves = numbered_leaves(kTotal);
  const Tree whole = tree_of(leaves);
  for (std::uint64_t prefix : {1023, 1024, 1025, 2047, 3000, 4095, 4096, 4097, 4141}) {
    SCOPED_TRACE(prefix);
    Tree pruned = Tree::from_prefix(whole.compact_range(prefix).value());
    for (std::uint64_t i = prefix; i < kTotal; ++i) pruned.append(leaves[i]);
    ASSERT_EQ(pruned.root(), whole.root());
    std::mt19937_64 rng(prefix);
    for (int i = 0; i < 200; ++i) {
      const std::uint64_t size = prefix + 1 + rng() % (kTotal - prefix);
      const std::uint64_t index = prefix + rng() % (size - prefix);
      const std::uint64_t size1 = prefix + rng() % (size - prefix + 1);
      ASSERT_EQ(pruned.inclusion_proof(index, size).value(),
                whole.inclusion_proof(index, size).value());
      ASSERT_EQ(pruned.consistency_proof(size1, size).value(),
                whole.consistency_proof(size1, size).value());
      ASSERT_EQ(pruned.root(size).value(), whole.root(size).value());
    }
  }
}

TEST(MerkleCompactRange, RootMatchesTheReferenceAtEverySize) {
  constexpr std::uint64_t kMax = 300;
  const auto leaves = numbered_leaves(kMax);
  CompactRange range;
  EXPECT_EQ(range.root(), empty_root());
  for (std::uint64_t n = 1; n <= kMax; ++n) {
    range.append(leaves[n - 1]);
    ASSERT_EQ(range.size(), n);
    ASSERT_EQ(range.nodes().size(), static_cast<std::size_t>(std::popcount(n)));
    EXPECT_EQ(range.root(), root_of(std::span(leaves).first(n))) << n;
  }
}

TEST(MerkleCompactRange, FromNodesChecksTheNodeCount) {
  const auto leaves = numbered_leaves(13);  // 0b1101: three nodes
  CompactRange grown;
  for (const Hash& leaf : leaves) grown.append(leaf);
  ASSERT_EQ(grown.nodes().size(), 3u);

  EXPECT_FALSE(CompactRange::from_nodes(13, {}));
  EXPECT_FALSE(CompactRange::from_nodes(13, {grown.nodes()[0], grown.nodes()[1]}));
  auto four = grown.nodes();
  four.push_back(four.back());
  EXPECT_FALSE(CompactRange::from_nodes(13, four));
  EXPECT_FALSE(CompactRange::from_nodes(0, {leaves[0]}));
  ASSERT_TRUE(CompactRange::from_nodes(0, {}));
  EXPECT_EQ(*CompactRange::from_nodes(0, {}), CompactRange{});

  auto restored = CompactRange::from_nodes(13, grown.nodes());
  ASSERT_TRUE(restored);
  EXPECT_EQ(*restored, grown);
  // A restored range goes on exactly like the one it was saved from.
  const auto more = numbered_leaves(40);
  for (std::size_t i = 13; i < more.size(); ++i) {
    restored->append(more[i]);
    grown.append(more[i]);
    ASSERT_EQ(*restored, grown);
  }
  EXPECT_EQ(restored->root(), root_of(more));
}

}  // namespace
}  // namespace enclave::audit::merkle
