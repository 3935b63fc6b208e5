// The audit store at the scale the targets name: a log of 1,000,000 events over a year
// (500 users, 20 sites), sealed every 1,000 entries, with its off-box copy. Built once under
// $TMPDIR/enclave-bench-1m and reused.
//   BM_VerifyFull          what `enclave-audit verify` does: read every row, rebuild every
//                          leaf, check every checkpoint and the off-box copy   (target <= 3 s)
//   BM_QueryUserThreeMonths one user's events over three months             (target <= 200 ms)
//   BM_InclusionProofFromStore one entry's proof against the latest checkpoint, read from the
//                          stored tree nodes, as `enclave-audit prove` does   (target <= 1 ms)
#include <benchmark/benchmark.h>

#include <filesystem>
#include <fstream>

#include "audit/core/note.hpp"
#include "audit/core/offbox.hpp"
#include "audit/service/log_store.hpp"
#include "audit/service/verify_input.hpp"

namespace {

using namespace enclave;
using namespace enclave::audit;

constexpr std::uint64_t kEntries = 1'000'000;
constexpr std::uint64_t kSealEvery = 1000;
constexpr std::int64_t kYearStartUs = 1'735'689'600'000'000;  // 2025-01-01
constexpr std::int64_t kSpacingUs = 365LL * 86400 * 1'000'000 / kEntries;
constexpr char kOrigin[] = "bench.example/audit";

struct Fixture {
  std::filesystem::path dir;
  std::filesystem::path database, offbox;
  std::string verifier_key;
};

Event event_at(std::uint64_t i) {
  Event e;
  e.time_us = kYearStartUs + static_cast<std::int64_t>(i) * kSpacingUs;
  e.source = "enclave:enclave-gatewayd";
  e.actor = "user" + std::to_string(i * 7919 % 500);
  e.site = "site-" + std::to_string(i % 20);
  e.device = "tc-" + std::to_string(i % 300);
  e.session = "s-" + std::to_string(i / 40);
  e.type = i % 4 ? "session.activity" : "login.attempt";
  e.outcome = i % 10 ? "success" : "failure";
  e.object = "compartment/ndb-shared";
  e.details = R"({"bytes":)" + std::to_string(i * 31 % 100000) + "}";
  return e;
}

const Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.dir = std::filesystem::temp_directory_path() / "enclave-bench-1m-v4";
    f.database = f.dir / "audit.db";
    f.offbox = f.dir / "audit.offbox";
    auto key_file = f.dir / "verifier.key";
    if (std::filesystem::exists(key_file)) {
      std::ifstream(key_file) >> f.verifier_key;
      return f;
    }
    std::filesystem::remove_all(f.dir);
    std::filesystem::create_directories(f.dir);
    auto signer = note::Signer::generate(kOrigin).value();
    store::OpenOptions options;
    options.sync = store::Sync::kNormal;  // building the fixture, not measuring appends
    auto store = LogStore::open(f.database, options).value();
    std::ofstream offbox(f.offbox, std::ios::binary);
    tiles::TileWriter tree;
    std::vector<Event> batch;
    for (std::uint64_t first = 0; first < kEntries; first += kSealEvery) {
      batch.clear();
      for (std::uint64_t i = first; i < first + kSealEvery; ++i) batch.push_back(event_at(i));
      auto hashes = leaf_hashes(batch);
      auto nodes = tree.append(hashes);
      if (!store.append(first, batch, hashes, nodes)) std::abort();
      note::Checkpoint cp{kOrigin, tree.size(), tree.root(), {}};
      auto text = note::format_note(signer.sign_note(note::format_checkpoint(cp)));
      auto time = batch.back().time_us;
      (void)store.add_checkpoint({cp.size, time, text});
      offbox << offbox::format_leaves(first, hashes) << offbox::format_checkpoint(time, text);
    }
    (void)store.database().exec("PRAGMA wal_checkpoint(TRUNCATE)");
    f.verifier_key = signer.verifier_key();
    std::ofstream(key_file) << f.verifier_key;
    return f;
  }();
  return f;
}

void BM_VerifyFull(benchmark::State& state) {
  const auto& f = fixture();
  auto key = note::Verifier::parse(f.verifier_key).value();
  store::OpenOptions options;
  options.access = store::Access::kReadOnly;
  options.create = false;
  for (auto _ : state) {
    auto store = LogStore::open(f.database, options).value();
    std::filesystem::path copies[] = {f.offbox};
    auto material = load_verify_material(store, key, copies).value();
    material.input.now_us = kYearStartUs + 400LL * 86400 * 1'000'000;
    material.input.seal_interval_us = 10'000'000;
    auto report = verify::run(material.input);
    if (!report.clean() || !report.entry_level || report.live_entries != kEntries) {
      state.SkipWithError("the fixture did not verify");
    }
  }
  state.counters["entries"] = static_cast<double>(kEntries);
}
BENCHMARK(BM_VerifyFull)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_QueryUserThreeMonths(benchmark::State& state) {
  const auto& f = fixture();
  store::OpenOptions options;
  options.access = store::Access::kReadOnly;
  options.create = false;
  auto store = LogStore::open(f.database, options).value();
  Query q;
  q.since_us = kYearStartUs + 90LL * 86400 * 1'000'000;  // April to June
  q.until_us = *q.since_us + 91LL * 86400 * 1'000'000;
  std::size_t found = 0;
  int user = 0;
  for (auto _ : state) {
    q.actor = "user" + std::to_string(user++ % 500);
    auto events = store.query(q).value();
    found = events.size();
    benchmark::DoNotOptimize(events);
  }
  state.counters["events_per_query"] = static_cast<double>(found);
}
BENCHMARK(BM_QueryUserThreeMonths)->Unit(benchmark::kMillisecond);

void BM_InclusionProofFromStore(benchmark::State& state) {
  const auto& f = fixture();
  auto key = note::Verifier::parse(f.verifier_key).value();
  store::OpenOptions options;
  options.access = store::Access::kReadOnly;
  options.create = false;
  auto store = LogStore::open(f.database, options).value();
  auto latest = store.latest_checkpoint().value().value();
  auto seal = note::open_checkpoint(as_bytes(latest.note), key, kOrigin).value();
  StoreNodeReader reader(store);
  std::uint64_t index = 12345;
  for (auto _ : state) {
    index = (index * 6364136223846793005ULL + 1442695040888963407ULL) % seal.size;
    auto row = store.get(index).value().value();
    auto proof = tiles::inclusion_proof(reader, index, seal.size).value();
    if (!merkle::verify_inclusion(index, seal.size, merkle::leaf_hash(encode_leaf(row.event)),
                                  proof, seal.root)) {
      state.SkipWithError("a proof did not verify");
    }
  }
}
BENCHMARK(BM_InclusionProofFromStore)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
