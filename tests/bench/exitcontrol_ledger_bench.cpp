// Re-audit of a new table against 100 earlier releases of the same project and population
// (target: at most 10 s). The population: 47 prefectures x 10 age bands x 2 sexes of claims
// counts, about 6% of them small. Earlier releases cut it four ways in turn: prefecture x age,
// prefecture x sex for a band of ages ([filter]), age x sex for a group of prefectures, and
// prefecture for one sex; each release hides its cells under 10. The candidate is the full
// prefecture x age x sex table with its small cells hidden.
// - Differencing: audit_differencing alone (pairs plus the LP over 940 combinations).
// - LedgerAndDifferencing: reading the 100 releases back from the SQLite ledger first, as
//   `check --project` does.
#include <benchmark/benchmark.h>

#include <filesystem>
#include <random>

#include "exitcontrol/service/differencing.hpp"
#include "exitcontrol/service/ledger.hpp"

namespace enclave::exitcontrol {
namespace {

constexpr int kPrefectures = 47, kAges = 10, kSexes = 2, kReleases = 100;

struct Population {
  std::vector<double> count;  // [p][a][s]
  double at(int p, int a, int s) const { return count[(p * kAges + a) * kSexes + s]; }
};

Population make_population() {
  std::mt19937 rng(100);
  std::uniform_real_distribution<double> unit(0, 1);
  std::lognormal_distribution<double> large(4.5, 0.9);
  Population pop;
  for (int i = 0; i < kPrefectures * kAges * kSexes; ++i) {
    pop.count.push_back(unit(rng) < 0.06 ? 1 + std::floor(unit(rng) * 9)
                                         : 10 + std::floor(large(rng)));
  }
  return pop;
}

ReleasedTable::Dim flat(const std::string& name, const char* prefix, int n) {
  ReleasedTable::Dim d{name, {"Total"}, {-1}};
  for (int i = 0; i < n; ++i) {
    d.categories.push_back(prefix + std::to_string(i));
    d.parent.push_back(0);
  }
  return d;
}

// A release over the dimensions shown (with margins), restricted by filter; cells under 10
// hidden. in(p, a, s) says whether a population cell is counted.
ReleasedTable release(const Population& pop, const std::string& name, std::vector<int> shown,
                      std::map<std::string, std::vector<std::string>> filter,
                      const std::function<bool(int, int, int)>& in, bool keep_values) {
  static const ReleasedTable::Dim all[] = {flat("prefecture", "P", kPrefectures),
                                           flat("age", "A", kAges), flat("sex", "S", kSexes)};
  static const int sizes[] = {kPrefectures, kAges, kSexes};
  ReleasedTable t;
  t.name = name;
  t.population = "claims-fy2023";
  t.measure = "count";
  t.total_label = "Total";
  for (int d : shown) t.dims.push_back(all[d]);
  t.filter = std::move(filter);
  std::vector<int> at(shown.size(), 0);  // 0 = Total, i + 1 = category i
  for (;;) {
    double v = 0;
    for (int p = 0; p < kPrefectures; ++p) {
      for (int a = 0; a < kAges; ++a) {
        for (int s = 0; s < kSexes; ++s) {
          const int idx[] = {p, a, s};
          bool match = in(p, a, s);
          for (std::size_t k = 0; k < shown.size() && match; ++k) {
            match = at[k] == 0 || at[k] - 1 == idx[shown[k]];
          }
          if (match) v += pop.at(p, a, s);
        }
      }
    }
    for (int x : at) t.coords.push_back(static_cast<std::uint32_t>(x));
    t.published.push_back(v < 10 ? kMissing : v);
    t.contributors.push_back(v);
    t.value.push_back(keep_values ? v : kMissing);
    std::size_t k = 0;
    while (k < at.size() && ++at[k] > sizes[shown[k]]) at[k++] = 0;
    if (k == at.size()) break;
  }
  return t;
}

struct Fixture {
  ReleasedTable candidate;
  std::vector<ReleasedTable> earlier;
};

const Fixture& fixture() {
  static const Fixture f = [] {
    const Population pop = make_population();
    Fixture f;
    auto any = [](int, int, int) { return true; };
    for (int i = 0; i < kReleases; ++i) {
      const std::string name = "release-" + std::to_string(i) + ".csv";
      switch (i % 4) {
        case 0:
          f.earlier.push_back(release(pop, name, {0, 1}, {}, any, false));
          break;
        case 1: {  // prefecture x sex for ages [lo, lo + 3)
          const int lo = (i / 4) % (kAges - 3);
          std::vector<std::string> ages;
          for (int a = lo; a < lo + 3; ++a) ages.push_back("A" + std::to_string(a));
          f.earlier.push_back(release(
              pop, name, {0, 2}, {{"age", ages}},
              [lo](int, int a, int) { return a >= lo && a < lo + 3; }, false));
          break;
        }
        case 2: {  // age x sex for five prefectures
          const int first = (i * 7) % (kPrefectures - 5);
          std::vector<std::string> prefectures;
          for (int p = first; p < first + 5; ++p) prefectures.push_back("P" + std::to_string(p));
          f.earlier.push_back(release(
              pop, name, {1, 2}, {{"prefecture", prefectures}},
              [first](int p, int, int) { return p >= first && p < first + 5; }, false));
          break;
        }
        default: {  // prefecture for one sex
          const int sex = (i / 4) % 2;
          f.earlier.push_back(release(
              pop, name, {0}, {{"sex", {"S" + std::to_string(sex)}}},
              [sex](int, int, int s) { return s == sex; }, false));
        }
      }
    }
    f.candidate = release(pop, "candidate.csv", {0, 1, 2}, {}, any, true);
    return f;
  }();
  return f;
}

Profile profile() {
  Profile p;
  p.threshold = 10;
  p.zeros = ZerosPolicy::kAllowed;
  return p;
}

void count(benchmark::State& state, const DifferencingReport& r) {
  state.counters["releases"] = static_cast<double>(r.releases);
  state.counters["candidate_cells"] = static_cast<double>(fixture().candidate.size());
  state.counters["pairs"] = static_cast<double>(r.pairs);
  state.counters["lp_targets"] = static_cast<double>(r.lp_targets);
  state.counters["findings"] = static_cast<double>(r.findings.size());
}

void BM_Differencing(benchmark::State& state) {
  const auto& f = fixture();
  for (auto _ : state) {
    auto r = audit_differencing(f.candidate, f.earlier, profile());
    if (!r) {
      state.SkipWithError(r.error().describe().c_str());
      return;
    }
    count(state, *r);
  }
}
BENCHMARK(BM_Differencing)->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3);

void BM_DifferencingThreads(benchmark::State& state) {
  const auto& f = fixture();
  DifferencingOptions options;
  options.lp.threads = static_cast<unsigned>(state.range(0));
  for (auto _ : state) {
    auto r = audit_differencing(f.candidate, f.earlier, profile(), options);
    if (!r) {
      state.SkipWithError(r.error().describe().c_str());
      return;
    }
    count(state, *r);
  }
}
BENCHMARK(BM_DifferencingThreads)
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1)
    ->UseRealTime();

void BM_LedgerAndDifferencing(benchmark::State& state) {
  const auto& f = fixture();
  const auto path = std::filesystem::temp_directory_path() / "exitcontrol_ledger_bench.db";
  std::filesystem::remove(path);
  {
    auto ledger = Ledger::open(path);
    if (!ledger) {
      state.SkipWithError(ledger.error().describe().c_str());
      return;
    }
    for (std::size_t i = 0; i < f.earlier.size(); ++i) {
      (void)ledger->record("P-1", f.earlier[i],
                           std::string(63, '0') + std::to_string(i % 10) + std::to_string(i), "");
    }
  }
  for (auto _ : state) {
    auto ledger = Ledger::open(path);
    auto earlier = ledger->comparable("P-1", "claims-fy2023", "count");
    if (!earlier) {
      state.SkipWithError(earlier.error().describe().c_str());
      return;
    }
    auto r = audit_differencing(f.candidate, *earlier, profile());
    if (!r) {
      state.SkipWithError(r.error().describe().c_str());
      return;
    }
    count(state, *r);
  }
  std::filesystem::remove(path);
}
BENCHMARK(BM_LedgerAndDifferencing)->Unit(benchmark::kMillisecond)->Iterations(1)->Repetitions(3);

}  // namespace
}  // namespace enclave::exitcontrol

BENCHMARK_MAIN();
