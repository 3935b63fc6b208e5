// The primary disclosure checks on a table of a million cells (target: at most 1 s): a
// region x age x drug table of 100 x 100 x 100 leaves with "Total" margins in every dimension
// (101^3 = 1,030,301 cells), counts drawn so that about a quarter of the leaves are below the
// threshold, margins exact. Timed: check_primary alone on frequency and magnitude versions,
// and load_table (from the CSV bytes in long form) followed by check_primary.
#include <benchmark/benchmark.h>

#include <random>

#include "exitcontrol/core/load.hpp"
#include "exitcontrol/core/primary.hpp"

namespace enclave::exitcontrol {
namespace {

constexpr std::uint32_t kLeaves = 100;
constexpr std::uint32_t kSide = kLeaves + 1;  // category 0 is "Total"

// Leaf counts: a geometric-like spread with many small cells, as in claims tables by
// municipality and age.
std::vector<double> leaf_counts() {
  std::mt19937 rng(7);
  std::lognormal_distribution<double> count(3.0, 1.2);
  std::vector<double> out(std::size_t{kLeaves} * kLeaves * kLeaves);
  for (auto& v : out) v = std::floor(count(rng));
  return out;
}

// The value of every cell (margins included), indexed by (r * kSide + a) * kSide + d.
std::vector<double> all_values() {
  const auto leaves = leaf_counts();
  std::vector<double> v(std::size_t{kSide} * kSide * kSide, 0);
  auto at = [](std::uint32_t r, std::uint32_t a, std::uint32_t d) {
    return (std::size_t{r} * kSide + a) * kSide + d;
  };
  for (std::uint32_t r = 1; r < kSide; ++r) {
    for (std::uint32_t a = 1; a < kSide; ++a) {
      for (std::uint32_t d = 1; d < kSide; ++d) {
        double x = leaves[(std::size_t{r - 1} * kLeaves + (a - 1)) * kLeaves + (d - 1)];
        // Add the leaf to itself and every margin above it.
        for (std::uint32_t rr : {0u, r}) {
          for (std::uint32_t aa : {0u, a}) {
            for (std::uint32_t dd : {0u, d}) v[at(rr, aa, dd)] += x;
          }
        }
      }
    }
  }
  return v;
}

std::string category(std::uint32_t i, const char* prefix) {
  return i == 0 ? std::string("Total") : prefix + std::to_string(i);
}

Table million_cell_table(TableKind kind) {
  const auto values = all_values();
  Table t;
  t.name = "bench.csv";
  t.kind = kind;
  const char* names[3] = {"region", "age", "drug"};
  t.dims.resize(3);
  for (int d = 0; d < 3; ++d) {
    t.dims[d].name = names[d];
    t.dims[d].intern("Total");
    for (std::uint32_t i = 1; i < kSide; ++i) {
      t.dims[d].set_parent(t.dims[d].intern(category(i, "c")), 0);
    }
  }
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> share(0.05, 0.6);
  for (std::uint32_t r = 0; r < kSide; ++r) {
    for (std::uint32_t a = 0; a < kSide; ++a) {
      for (std::uint32_t d = 0; d < kSide; ++d) {
        std::uint32_t c[3] = {r, a, d};
        auto cell = t.add_cell(c);
        double v = values[(std::size_t{r} * kSide + a) * kSide + d];
        t.value[cell] = v;
        t.contributors[cell] = v;
        if (kind == TableKind::kMagnitude) {
          // Magnitude: the same cells as sums of amounts, with the largest two shares.
          t.value[cell] = v * 1000;
          t.top1[cell] = v * 1000 * share(rng);
          t.top2[cell] = t.top1[cell] * share(rng);
        }
      }
    }
  }
  t.build_index();
  return t;
}

const Table& frequency_table() {
  static const Table t = million_cell_table(TableKind::kFrequency);
  return t;
}
const Table& magnitude_table() {
  static const Table t = million_cell_table(TableKind::kMagnitude);
  return t;
}

// The frequency table as a long-form CSV: region,age,drug,count.
const std::string& million_cell_csv() {
  static const std::string csv = [] {
    const auto values = all_values();
    std::string out = "region,age,drug,count\n";
    out.reserve(40u * values.size());
    for (std::uint32_t r = 0; r < kSide; ++r) {
      for (std::uint32_t a = 0; a < kSide; ++a) {
        for (std::uint32_t d = 0; d < kSide; ++d) {
          out += category(r, "r") + "," + category(a, "a") + "," + category(d, "d") + ",";
          out += std::to_string(
              static_cast<std::int64_t>(values[(std::size_t{r} * kSide + a) * kSide + d]));
          out += "\n";
        }
      }
    }
    return out;
  }();
  return csv;
}

TableMeta frequency_meta() {
  TableMeta meta;
  meta.kind = TableKind::kFrequency;
  meta.layout = Layout::kLong;
  for (const char* name : {"region", "age", "drug"}) {
    DimensionMeta d;
    d.name = name;
    meta.dimensions.push_back(d);
  }
  meta.value_column = "count";
  return meta;
}

// acro-default's settings are the built-in defaults.
const Profile kAcroDefault{};

void report(benchmark::State& state, const PrimaryResult& r, std::size_t cells) {
  state.counters["cells"] = static_cast<double>(cells);
  state.counters["findings"] = static_cast<double>(r.findings.size());
  state.counters["fail_cells"] =
      static_cast<double>(std::count(r.cell_outcome.begin(), r.cell_outcome.end(), Outcome::kFail));
}

void BM_CheckPrimaryFrequency(benchmark::State& state) {
  const Table& t = frequency_table();
  PrimaryResult r;
  for (auto _ : state) {
    r = check_primary(t, TableMeta{}, kAcroDefault);
    benchmark::DoNotOptimize(r);
  }
  report(state, r, t.size());
}
BENCHMARK(BM_CheckPrimaryFrequency)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_CheckPrimaryMagnitude(benchmark::State& state) {
  const Table& t = magnitude_table();
  PrimaryResult r;
  for (auto _ : state) {
    r = check_primary(t, TableMeta{}, kAcroDefault);
    benchmark::DoNotOptimize(r);
  }
  report(state, r, t.size());
}
BENCHMARK(BM_CheckPrimaryMagnitude)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_LoadAndCheckFrequency(benchmark::State& state) {
  const std::string& csv = million_cell_csv();
  const TableMeta meta = frequency_meta();
  PrimaryResult r;
  std::size_t cells = 0;
  for (auto _ : state) {
    auto loaded = load_table(csv, meta, "bench.csv");
    if (!loaded) {
      state.SkipWithError(loaded.error().describe().c_str());
      return;
    }
    r = check_primary(loaded->table, loaded->meta, kAcroDefault);
    cells = loaded->table.size();
    benchmark::DoNotOptimize(r);
  }
  report(state, r, cells);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * csv.size()));
}
BENCHMARK(BM_LoadAndCheckFrequency)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace enclave::exitcontrol

BENCHMARK_MAIN();
