// Merkle tree costs on the audit daemon's hot paths: hashing an event, appending it, and
// serving and checking proofs from a tree of a million entries (the target is at most 1 ms
// per inclusion proof).
#include <benchmark/benchmark.h>

#include <random>

#include "audit/core/merkle.hpp"

namespace enclave::audit::merkle {
namespace {

constexpr std::uint64_t kMillion = 1'000'000;

const std::vector<Hash>& million_leaves() {
  static const std::vector<Hash> leaves = [] {
    std::vector<Hash> out;
    out.reserve(kMillion);
    for (std::uint64_t i = 0; i < kMillion; ++i)
      out.push_back(leaf_hash(as_bytes(std::to_string(i))));
    return out;
  }();
  return leaves;
}

const Tree& million_tree() {
  static const Tree tree = [] {
    Tree t;
    for (const Hash& leaf : million_leaves()) t.append(leaf);
    return t;
  }();
  return tree;
}

// (index, size) pairs spread over the whole tree, drawn before timing.
std::vector<std::pair<std::uint64_t, std::uint64_t>> random_requests(std::size_t count) {
  std::mt19937_64 rng(1);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t size = 1 + rng() % kMillion;
    out.emplace_back(rng() % size, size);
  }
  return out;
}

void BM_LeafHash300Bytes(benchmark::State& state) {
  const Bytes leaf(300, 0x5a);
  for (auto _ : state) benchmark::DoNotOptimize(leaf_hash(leaf));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * leaf.size()));
}
BENCHMARK(BM_LeafHash300Bytes);

void BM_NodeHash(benchmark::State& state) {
  Hash acc = leaf_hash(as_bytes("left"));
  const Hash right = leaf_hash(as_bytes("right"));
  for (auto _ : state) {
    acc = node_hash(acc, right);
    benchmark::DoNotOptimize(acc);
  }
}
BENCHMARK(BM_NodeHash);

void BM_TreeAppend(benchmark::State& state) {
  const auto& leaves = million_leaves();
  Tree tree;
  std::size_t next = 0;
  for (auto _ : state) {
    tree.append(leaves[next]);
    // Restart at a million leaves so the run's memory stays bounded.
    if (++next == leaves.size()) {
      state.PauseTiming();
      tree = Tree{};
      next = 0;
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_TreeAppend);

void BM_CompactRangeAppend(benchmark::State& state) {
  const auto& leaves = million_leaves();
  CompactRange range;
  std::size_t next = 0;
  for (auto _ : state) {
    range.append(leaves[next]);
    if (++next == leaves.size()) next = 0;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_CompactRangeAppend);

void BM_BuildMillionLeafTree(benchmark::State& state) {
  const auto& leaves = million_leaves();
  for (auto _ : state) {
    Tree tree;
    for (const Hash& leaf : leaves) tree.append(leaf);
    benchmark::DoNotOptimize(tree.size());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * leaves.size()));
}
BENCHMARK(BM_BuildMillionLeafTree)->Unit(benchmark::kMillisecond);

void BM_InclusionProofMillion(benchmark::State& state) {
  const Tree& tree = million_tree();
  const auto requests = random_requests(4096);
  std::size_t next = 0;
  for (auto _ : state) {
    const auto [index, size] = requests[next++ % requests.size()];
    auto proof = tree.inclusion_proof(index, size);
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_InclusionProofMillion)->Unit(benchmark::kMicrosecond);

// The last leaf of the full tree: the common "prove the entry just appended" request.
void BM_InclusionProofMillionLastLeaf(benchmark::State& state) {
  const Tree& tree = million_tree();
  for (auto _ : state) {
    auto proof = tree.inclusion_proof(kMillion - 1, kMillion);
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_InclusionProofMillionLastLeaf)->Unit(benchmark::kMicrosecond);

void BM_ConsistencyProofMillion(benchmark::State& state) {
  const Tree& tree = million_tree();
  const auto requests = random_requests(4096);
  std::size_t next = 0;
  for (auto _ : state) {
    const auto [size1, size2] = requests[next++ % requests.size()];
    auto proof = tree.consistency_proof(size1, size2);
    benchmark::DoNotOptimize(proof);
  }
}
BENCHMARK(BM_ConsistencyProofMillion)->Unit(benchmark::kMicrosecond);

void BM_RootAtSizeMillion(benchmark::State& state) {
  const Tree& tree = million_tree();
  const auto requests = random_requests(4096);
  std::size_t next = 0;
  for (auto _ : state) {
    auto root = tree.root(requests[next++ % requests.size()].second);
    benchmark::DoNotOptimize(root);
  }
}
BENCHMARK(BM_RootAtSizeMillion)->Unit(benchmark::kMicrosecond);

void BM_VerifyInclusionMillion(benchmark::State& state) {
  const Tree& tree = million_tree();
  const std::uint64_t index = 123'457;
  const auto proof = tree.inclusion_proof(index, kMillion).value();
  const Hash root = tree.root();
  const Hash leaf = million_leaves()[index];
  for (auto _ : state) {
    auto verified = verify_inclusion(index, kMillion, leaf, proof, root);
    if (!verified) state.SkipWithError("proof did not verify");
    benchmark::DoNotOptimize(verified);
  }
  state.counters["proof_hashes"] = static_cast<double>(proof.size());
}
BENCHMARK(BM_VerifyInclusionMillion)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace enclave::audit::merkle

BENCHMARK_MAIN();
