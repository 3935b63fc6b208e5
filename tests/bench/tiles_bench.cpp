// Proofs from the tiled node store of a million-entry log held in memory: the hashing and
// planning cost of a proof with the store's own cost left out (the SQLite-backed figures are
// measured separately). The target is well under 1 ms per proof.
#include <benchmark/benchmark.h>

#include <map>
#include <random>

#include "audit/core/tiles.hpp"

namespace enclave::audit::tiles {
namespace {

using merkle::Hash;

constexpr std::uint64_t kMillion = 1'000'000;

// The leaves and the nodes a TileWriter emitted for them; counts the reads and hashes served.
class MemoryStore : public NodeReader {
 public:
  explicit MemoryStore(std::uint64_t size) {
    leaves_.reserve(size);
    for (std::uint64_t i = 0; i < size; ++i) {
      leaves_.push_back(merkle::leaf_hash(as_bytes(std::to_string(i))));
    }
    for (const StoredNode& node : writer_.append(leaves_)) levels_[node.level].push_back(node.hash);
  }

  Expected<std::vector<Hash>> leaves(std::uint64_t first, std::uint64_t count) override {
    return read(leaves_, first, count);
  }
  Expected<std::vector<Hash>> nodes(int level, std::uint64_t first, std::uint64_t count) override {
    return read(levels_[level], first, count);
  }

  const TileWriter& writer() const { return writer_; }
  const std::vector<Hash>& leaf_hashes() const { return leaves_; }

  std::uint64_t calls = 0;
  std::uint64_t items = 0;

 private:
  Expected<std::vector<Hash>> read(const std::vector<Hash>& rows, std::uint64_t first,
                                   std::uint64_t count) {
    ++calls;
    items += count;
    if (first + count > rows.size()) return fail(Errc::kNotFound, "beyond the log");
    return std::vector<Hash>(rows.begin() + static_cast<std::ptrdiff_t>(first),
                             rows.begin() + static_cast<std::ptrdiff_t>(first + count));
  }

  TileWriter writer_;
  std::vector<Hash> leaves_;
  std::map<int, std::vector<Hash>> levels_;
};

MemoryStore& million_store() {
  static MemoryStore store(kMillion);
  return store;
}

// (index or size1, size) pairs spread over the whole log, drawn before timing.
std::vector<std::pair<std::uint64_t, std::uint64_t>> random_requests(std::size_t count) {
  std::mt19937_64 rng(1);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t size = 1 + rng() % kMillion;
    out.emplace_back(rng() % size, size);
  }
  return out;
}

void report_reads(benchmark::State& state, const MemoryStore& store, std::uint64_t calls_before,
                  std::uint64_t items_before) {
  const auto n = static_cast<double>(state.iterations());
  state.counters["reads"] = static_cast<double>(store.calls - calls_before) / n;
  state.counters["hashes_read"] = static_cast<double>(store.items - items_before) / n;
}

// Any leaf at any earlier size: the right edge of that size is read too.
void BM_TiledInclusionProofMillion(benchmark::State& state) {
  MemoryStore& store = million_store();
  const auto requests = random_requests(4096);
  const std::uint64_t calls = store.calls;
  const std::uint64_t items = store.items;
  std::size_t next = 0;
  for (auto _ : state) {
    const auto [index, size] = requests[next++ % requests.size()];
    auto proof = inclusion_proof(store, index, size);
    if (!proof) state.SkipWithError(proof.error().describe().c_str());
    benchmark::DoNotOptimize(proof);
  }
  report_reads(state, store, calls, items);
}
BENCHMARK(BM_TiledInclusionProofMillion)->Unit(benchmark::kMicrosecond);

// Any leaf at the log's size, with the writer's compact range as the tip.
void BM_TiledInclusionProofMillionAtTip(benchmark::State& state) {
  MemoryStore& store = million_store();
  const merkle::CompactRange tip = store.writer().compact_range();
  const auto requests = random_requests(4096);
  const std::uint64_t calls = store.calls;
  const std::uint64_t items = store.items;
  std::size_t next = 0;
  for (auto _ : state) {
    auto proof =
        inclusion_proof(store, requests[next++ % requests.size()].first, kMillion, {.tip = &tip});
    if (!proof) state.SkipWithError(proof.error().describe().c_str());
    benchmark::DoNotOptimize(proof);
  }
  report_reads(state, store, calls, items);
}
BENCHMARK(BM_TiledInclusionProofMillionAtTip)->Unit(benchmark::kMicrosecond);

void BM_TiledConsistencyProofMillion(benchmark::State& state) {
  MemoryStore& store = million_store();
  const auto requests = random_requests(4096);
  const std::uint64_t calls = store.calls;
  const std::uint64_t items = store.items;
  std::size_t next = 0;
  for (auto _ : state) {
    const auto [size1, size2] = requests[next++ % requests.size()];
    auto proof = consistency_proof(store, size1, size2);
    if (!proof) state.SkipWithError(proof.error().describe().c_str());
    benchmark::DoNotOptimize(proof);
  }
  report_reads(state, store, calls, items);
}
BENCHMARK(BM_TiledConsistencyProofMillion)->Unit(benchmark::kMicrosecond);

void BM_TiledConsistencyProofMillionAtTip(benchmark::State& state) {
  MemoryStore& store = million_store();
  const merkle::CompactRange tip = store.writer().compact_range();
  const auto requests = random_requests(4096);
  const std::uint64_t calls = store.calls;
  const std::uint64_t items = store.items;
  std::size_t next = 0;
  for (auto _ : state) {
    auto proof =
        consistency_proof(store, requests[next++ % requests.size()].first, kMillion, {.tip = &tip});
    if (!proof) state.SkipWithError(proof.error().describe().c_str());
    benchmark::DoNotOptimize(proof);
  }
  report_reads(state, store, calls, items);
}
BENCHMARK(BM_TiledConsistencyProofMillionAtTip)->Unit(benchmark::kMicrosecond);

void BM_TiledRootMillion(benchmark::State& state) {
  MemoryStore& store = million_store();
  const auto requests = random_requests(4096);
  const std::uint64_t calls = store.calls;
  const std::uint64_t items = store.items;
  std::size_t next = 0;
  for (auto _ : state) {
    auto hash = root(store, requests[next++ % requests.size()].second);
    if (!hash) state.SkipWithError(hash.error().describe().c_str());
    benchmark::DoNotOptimize(hash);
  }
  report_reads(state, store, calls, items);
}
BENCHMARK(BM_TiledRootMillion)->Unit(benchmark::kMicrosecond);

// What the writer adds to each append: CompactRange's merges plus the emitted nodes.
void BM_TileWriterAppend(benchmark::State& state) {
  const auto& leaves = million_store().leaf_hashes();
  TileWriter writer;
  std::size_t next = 0;
  std::size_t emitted = 0;
  for (auto _ : state) {
    emitted += writer.append(std::span(&leaves[next], 1)).size();
    if (++next == leaves.size()) {
      state.PauseTiming();
      writer = TileWriter{};
      next = 0;
      state.ResumeTiming();
    }
  }
  benchmark::DoNotOptimize(emitted);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}
BENCHMARK(BM_TileWriterAppend);

}  // namespace
}  // namespace enclave::audit::tiles

BENCHMARK_MAIN();
