// k-anonymity and l-diversity of a row-level extract: 1.2 million admissions with 9
// quasi-identifiers and one sensitive attribute (target: at most 1 s; anchor: ARX's Flash
// needed 1.38 s on the 1.19M-row IHIS set). The extract is generated in memory as CSV bytes
// before timing, with skewed, dependent columns shaped like Japanese claims data:
//   age           0-105, single years, mostly older patients
//   sex           M/F, 0.2% missing
//   prefecture    47 codes, population-like Zipf weights
//   municipality  5-digit codes, 15-80 per prefecture (about 1,700 in all), Zipf within each
//   year          admission year 2015-2023, rising
//   insurer       6 types; late-elderly insurance from 75 on
//   mdc           18 major diagnostic categories, Zipf
//   ward          12 ward types, Zipf
//   discharge     5 outcomes, mostly home; deaths rise with age
//   icd10         sensitive: about 1,500 three-character codes, Zipf
//   cost          yen, log-normal (median about 270,000): the value for the tabulate bench
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "exitcontrol/core/kanon.hpp"
#include "exitcontrol/core/tabulate.hpp"

namespace enclave::exitcontrol {
namespace {

constexpr std::size_t kRows = 1'200'000;

// Zipf(s) weights over n outcomes.
std::discrete_distribution<int> zipf(int n, double s) {
  std::vector<double> w(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) w[static_cast<std::size_t>(i)] = 1.0 / std::pow(i + 1, s);
  return {w.begin(), w.end()};
}

// 0-99 as two digits.
std::string two_digits(int v) {
  return {static_cast<char>('0' + v / 10 % 10), static_cast<char>('0' + v % 10)};
}

const std::string& extract_bytes() {
  static const std::string bytes = [] {
    std::mt19937_64 rng(20240501);
    // Prefecture codes in a shuffled population order, each with its municipalities.
    std::vector<int> prefecture_rank(47);
    for (int i = 0; i < 47; ++i) prefecture_rank[static_cast<std::size_t>(i)] = i + 1;
    std::shuffle(prefecture_rank.begin(), prefecture_rank.end(), rng);
    auto prefecture = zipf(47, 0.9);
    std::vector<std::discrete_distribution<int>> municipality;
    for (int p = 0; p < 47; ++p)
      municipality.push_back(zipf(15 + static_cast<int>(rng() % 66), 1.1));
    std::normal_distribution<double> adult_age(68, 16);
    std::uniform_int_distribution<int> child_age(0, 19);
    std::discrete_distribution<int> year({8, 8.5, 9, 9.5, 10, 9, 9.5, 10.5, 11});
    std::discrete_distribution<int> insurer_young({30, 35, 25, 8, 0, 2});
    std::discrete_distribution<int> insurer_old({3, 1, 1, 1, 90, 4});
    const char* const insurers[] = {"kokuho", "kyokai", "kumiai", "kyosai", "koki", "seiho"};
    auto mdc = zipf(18, 0.8);
    auto ward = zipf(12, 1.2);
    const char* const wards[] = {"general",   "surgical",  "icu",     "hcu", "rehab", "psych",
                                 "pediatric", "maternity", "palliat", "ccu", "scu",   "nicu"};
    const char* const discharges[] = {"home", "transfer", "facility", "death", "other"};
    auto icd10 = zipf(1500, 1.0);
    std::lognormal_distribution<double> cost(12.5, 1.0);  // yen; median about 270,000

    std::string out =
        "age,sex,prefecture,municipality,year,insurer,mdc,ward,discharge,icd10,cost\n";
    out.reserve(kRows * 64);
    for (std::size_t r = 0; r < kRows; ++r) {
      const int age =
          rng() % 10 == 0 ? child_age(rng) : std::clamp(static_cast<int>(adult_age(rng)), 20, 105);
      const int pref = prefecture_rank[static_cast<std::size_t>(prefecture(rng))];
      const int muni = 100 + municipality[static_cast<std::size_t>(pref - 1)](rng) * 2;
      const double death_odds = age < 60 ? 0.01 : 0.02 + (age - 60) * 0.003;
      const double u = std::uniform_real_distribution<double>(0, 1)(rng);
      const int discharge = u < death_odds ? 3 : u < 0.8 ? 0 : u < 0.9 ? 1 : u < 0.97 ? 2 : 4;
      out += std::to_string(age);
      out += rng() % 500 == 0 ? "," : (rng() % 2 ? ",M" : ",F");
      out += ',' + two_digits(pref);
      out += ',' + two_digits(pref) + std::to_string(muni);
      out += ',' + std::to_string(2015 + year(rng));
      out += ',';
      out += insurers[age >= 75 ? insurer_old(rng) : insurer_young(rng)];
      out += ",MDC" + two_digits(mdc(rng) + 1);
      out += ',';
      out += wards[ward(rng)];
      out += ',';
      out += discharges[discharge];
      const int code = icd10(rng);
      out += ',';
      out += static_cast<char>('A' + code / 100 % 26);
      out += two_digits(code % 100);
      out += ',' + std::to_string(static_cast<long>(cost(rng)));
      out += '\n';
    }
    return out;
  }();
  return bytes;
}

const ExtractColumns kColumns{
    {"age", "sex", "prefecture", "municipality", "year", "insurer", "mdc", "ward", "discharge"},
    {"icd10"}};

KAnonOptions bench_options(const benchmark::State& state) {
  KAnonOptions o;  // k = 10, l = 2: the acro-default profile
  o.threads = static_cast<unsigned>(state.range(0));
  return o;
}

void report_counters(benchmark::State& state, const KAnonReport& report) {
  state.counters["classes"] = static_cast<double>(report.classes);
  state.counters["classes_below_k"] = static_cast<double>(report.classes_below_k);
  state.counters["classes_below_l"] = static_cast<double>(report.classes_below_l);
  state.counters["rows_suppressed"] = static_cast<double>(report.suppressed_records.size());
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}

// (a) The check on an already parsed document.
void BM_KAnonymityParsed(benchmark::State& state) {
  const std::string& bytes = extract_bytes();
  auto rows = csv::parse(bytes);
  if (!rows) {
    state.SkipWithError(rows.error().describe("bench.csv").c_str());
    return;
  }
  const KAnonOptions o = bench_options(state);
  KAnonReport last;
  for (auto _ : state) {
    auto report = check_k_anonymity(rows.value(), "bench.csv", kColumns, o);
    if (!report) {
      state.SkipWithError(report.error().describe().c_str());
      return;
    }
    last = std::move(report).value();
  }
  report_counters(state, last);
}
BENCHMARK(BM_KAnonymityParsed)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// (b) Parse and check, end to end from the CSV bytes.
void BM_ParseAndKAnonymity(benchmark::State& state) {
  const std::string& bytes = extract_bytes();
  const KAnonOptions o = bench_options(state);
  KAnonReport last;
  for (auto _ : state) {
    auto report = parse_and_check_k_anonymity(bytes, "bench.csv", kColumns, o);
    if (!report) {
      state.SkipWithError(report.error().describe().c_str());
      return;
    }
    last = std::move(report).value();
  }
  report_counters(state, last);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes.size()));
}
BENCHMARK(BM_ParseAndKAnonymity)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// Writing the safe version (record suppression). With k = 1 nothing is removed, so every
// record is copied: the upper bound of this step.
void BM_RecordSuppressionCopy(benchmark::State& state) {
  const std::string& bytes = extract_bytes();
  auto rows = csv::parse(bytes);
  KAnonOptions keep_all;
  keep_all.k = 1;
  keep_all.l = 1;
  auto report = rows ? check_k_anonymity(rows.value(), "bench.csv", kColumns, keep_all)
                     : Expected<KAnonReport>(fail(Errc::kInvalidArgument, "parse failed"));
  if (!report) {
    state.SkipWithError(report.error().describe().c_str());
    return;
  }
  for (auto _ : state) {
    SuppressedExtract safe = suppress_failing_classes(rows.value(), report.value());
    benchmark::DoNotOptimize(safe.csv.data());
    state.counters["rows_kept"] = static_cast<double>(safe.rows_kept);
  }
}
BENCHMARK(BM_RecordSuppressionCopy)->Unit(benchmark::kMillisecond)->UseRealTime();

// Source mode on the same rows: the sum of cost by prefecture x year x diagnostic category
// with every margin (48 x 10 x 19 = 9,120 cells), contributors, the largest two
// contributions, and distinct municipalities per cell standing in for institutions.
void BM_TabulateSum3D(benchmark::State& state) {
  const std::string& bytes = extract_bytes();
  auto rows = csv::parse(bytes);
  if (!rows) {
    state.SkipWithError(rows.error().describe("bench.csv").c_str());
    return;
  }
  TabulateSpec spec;
  spec.dimensions = {"prefecture", "year", "mdc"};
  spec.statistic = Statistic::kSum;
  spec.value_column = "cost";
  spec.institution_column = "municipality";
  for (auto _ : state) {
    auto t = tabulate(rows.value(), "bench.csv", spec);
    if (!t) {
      state.SkipWithError(t.error().describe().c_str());
      return;
    }
    state.counters["cells"] = static_cast<double>(t->table.size());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
}
BENCHMARK(BM_TabulateSum3D)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace enclave::exitcontrol

BENCHMARK_MAIN();
