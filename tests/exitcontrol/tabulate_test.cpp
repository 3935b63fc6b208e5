#include "exitcontrol/core/tabulate.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "exitcontrol/core/load.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/primary.hpp"
#include "exitcontrol/core/profile.hpp"

namespace enclave::exitcontrol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Owns the bytes a Document points into.
struct Rows {
  std::string bytes;
  csv::Document document;
};

Rows parse_rows(std::string bytes) {
  Rows out{std::move(bytes), {}};
  auto parsed = csv::parse(out.bytes);
  EXPECT_TRUE(parsed.has_value()) << parsed.error().describe("rows.csv");
  out.document = std::move(parsed).value();
  return out;
}

// Admissions: region, sex, cost (yen), patient, hospital, insurer. Record numbers in comments.
const char* const kAdmissions =
    "region,sex,cost,patient,hospital,insurer\n"
    "Miyagi,F,100,p1,h1,i1\n"   // 2
    "Miyagi,F,300,p2,h1,i1\n"   // 3
    "Miyagi,M,50,p3,h2,i2\n"    // 4
    "Aomori,F,20,p4,h3,i1\n"    // 5
    "Aomori,M,,p5,h3,i2\n"      // 6: cost missing
    "Aomori,M,70,p5,h3,i2\n"    // 7
    "Miyagi,F,200,p1,h2,i1\n";  // 8: p1 again

TabulateSpec spec(Statistic statistic, std::string value_column = "") {
  TabulateSpec s;
  s.dimensions = {"region", "sex"};
  s.statistic = statistic;
  s.value_column = std::move(value_column);
  s.output_name = "admissions_by_region_sex.csv";
  return s;
}

// The cell at the given labels.
std::size_t cell(const Table& table, const std::vector<std::string>& labels) {
  std::vector<std::uint32_t> coordinates;
  for (std::size_t d = 0; d < labels.size(); ++d) {
    const auto id = table.dims[d].find(labels[d]);
    EXPECT_TRUE(id.has_value()) << labels[d];
    coordinates.push_back(id.value_or(0));
  }
  const auto found = table.find(coordinates);
  EXPECT_TRUE(found.has_value());
  return found.value_or(0);
}

// Every margin equals the sum of its parts, and there is one equation per margin and
// dimension in which it is a margin.
void expect_margins_add_up(const Table& table, const std::vector<double>& values,
                           std::size_t expected_equations) {
  const auto equations = table.equations();
  EXPECT_EQ(equations.size(), expected_equations);
  for (const auto& eq : equations) {
    double parts = 0;
    for (std::uint32_t p : eq.parts) parts += values[p];
    EXPECT_DOUBLE_EQ(values[eq.total], parts) << table.label(eq.total);
  }
}

TEST(Tabulate, CountsWithFullMargins) {
  const Rows rows = parse_rows(kAdmissions);
  auto t = tabulate(rows.document, "rows.csv", spec(Statistic::kCount));
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const Table& table = t->table;
  EXPECT_EQ(table.kind, TableKind::kFrequency);
  EXPECT_EQ(t->rows, 7u);
  // Categories sorted, the total last, every category under it.
  EXPECT_THAT(table.dims[0].categories, ElementsAre("Aomori", "Miyagi", "Total"));
  EXPECT_THAT(table.dims[1].categories, ElementsAre("F", "M", "Total"));
  EXPECT_THAT(table.dims[0].children[2], ElementsAre(0u, 1u));
  ASSERT_EQ(table.size(), 9u);
  EXPECT_EQ(table.value[cell(table, {"Miyagi", "F"})], 3);
  EXPECT_EQ(table.value[cell(table, {"Miyagi", "M"})], 1);
  EXPECT_EQ(table.value[cell(table, {"Aomori", "F"})], 1);
  EXPECT_EQ(table.value[cell(table, {"Aomori", "M"})], 2);
  EXPECT_EQ(table.value[cell(table, {"Miyagi", "Total"})], 4);
  EXPECT_EQ(table.value[cell(table, {"Total", "M"})], 3);
  EXPECT_EQ(table.value[cell(table, {"Total", "Total"})], 7);
  EXPECT_EQ(table.contributors, table.value);
  EXPECT_TRUE(is_missing(table.top1[0]));
  EXPECT_EQ(t->sums, table.value);
  // 3 equations along region (one per sex and the total column), 3 along sex.
  expect_margins_add_up(table, table.value, 6);
}

TEST(Tabulate, SumsWithTopContributionsAndMissingValuesLeftOut) {
  const Rows rows = parse_rows(kAdmissions);
  auto t = tabulate(rows.document, "rows.csv", spec(Statistic::kSum, "cost"));
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const Table& table = t->table;
  EXPECT_EQ(table.kind, TableKind::kMagnitude);
  EXPECT_EQ(t->missing_values, 1u);
  EXPECT_EQ(t->value_name, "sum_cost");
  const std::size_t miyagi_f = cell(table, {"Miyagi", "F"});
  EXPECT_EQ(table.value[miyagi_f], 600);
  EXPECT_EQ(table.contributors[miyagi_f], 3);
  EXPECT_EQ(table.top1[miyagi_f], 300);
  EXPECT_EQ(table.top2[miyagi_f], 200);
  // One row with a value: the second contribution is 0.
  const std::size_t aomori_m = cell(table, {"Aomori", "M"});
  EXPECT_EQ(table.value[aomori_m], 70);
  EXPECT_EQ(table.contributors[aomori_m], 1);
  EXPECT_EQ(table.top1[aomori_m], 70);
  EXPECT_EQ(table.top2[aomori_m], 0);
  const std::size_t all = cell(table, {"Total", "Total"});
  EXPECT_EQ(table.value[all], 740);
  EXPECT_EQ(table.contributors[all], 6);
  EXPECT_EQ(table.top1[all], 300);
  EXPECT_EQ(table.top2[all], 200);
  expect_margins_add_up(table, table.value, 6);
  expect_margins_add_up(table, table.contributors, 6);
}

TEST(Tabulate, MeansDescribeTheSumBehindThem) {
  const Rows rows = parse_rows(kAdmissions);
  auto t = tabulate(rows.document, "rows.csv", spec(Statistic::kMean, "cost"));
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const Table& table = t->table;
  const std::size_t miyagi_f = cell(table, {"Miyagi", "F"});
  EXPECT_DOUBLE_EQ(table.value[miyagi_f], 200);
  EXPECT_EQ(t->sums[miyagi_f], 600);
  EXPECT_EQ(table.contributors[miyagi_f], 3);
  EXPECT_EQ(table.top1[miyagi_f], 300);
  const std::size_t all = cell(table, {"Total", "Total"});
  EXPECT_DOUBLE_EQ(table.value[all], 740.0 / 6);
  // The sums add up; the means do not have to.
  expect_margins_add_up(table, t->sums, 6);
  EXPECT_EQ(t->value_name, "mean_cost");
}

TEST(Tabulate, MeanOfACellWithoutValuesIsMissing) {
  const Rows rows = parse_rows("ward,los\nA,3\nB,\nB,NA\n");
  TabulateSpec s;
  s.dimensions = {"ward"};
  s.statistic = Statistic::kMean;
  s.value_column = "los";
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  EXPECT_TRUE(is_missing(t->table.value[cell(t->table, {"B"})]));
  EXPECT_EQ(t->table.contributors[cell(t->table, {"B"})], 0);
  EXPECT_EQ(t->missing_values, 2u);
}

TEST(Tabulate, UnitsSumTheirRowsIntoOneContribution) {
  const Rows rows = parse_rows(kAdmissions);
  TabulateSpec s = spec(Statistic::kSum, "cost");
  s.unit_column = "patient";
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const Table& table = t->table;
  // Miyagi/F: p1 contributes 100 + 200, p2 contributes 300.
  const std::size_t miyagi_f = cell(table, {"Miyagi", "F"});
  EXPECT_EQ(table.contributors[miyagi_f], 2);
  EXPECT_EQ(table.top1[miyagi_f], 300);
  EXPECT_EQ(table.top2[miyagi_f], 300);
  // Five patients in all; p5's missing cost leaves its 70 as its contribution.
  const std::size_t all = cell(table, {"Total", "Total"});
  EXPECT_EQ(table.contributors[all], 5);
  EXPECT_EQ(table.top1[all], 300);

  TabulateSpec counting = spec(Statistic::kCount);
  counting.unit_column = "patient";
  auto c = tabulate(rows.document, "rows.csv", counting);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->table.value[cell(c->table, {"Miyagi", "F"})], 3);         // rows
  EXPECT_EQ(c->table.contributors[cell(c->table, {"Miyagi", "F"})], 2);  // patients
  EXPECT_EQ(c->table.contributors[cell(c->table, {"Aomori", "M"})], 1);
  EXPECT_TRUE(c->has_contributors_column);
}

TEST(Tabulate, CountsDistinctInstitutionsAndInsurersPerCell) {
  const Rows rows = parse_rows(kAdmissions);
  TabulateSpec s = spec(Statistic::kCount);
  s.institution_column = "hospital";
  s.insurer_column = "insurer";
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const Table& table = t->table;
  EXPECT_EQ(table.institutions[cell(table, {"Miyagi", "F"})], 2);  // h1, h2
  EXPECT_EQ(table.institutions[cell(table, {"Miyagi", "M"})], 1);  // h2
  // Not additive: h2 is in both Miyagi cells but counts once in their total.
  EXPECT_EQ(table.institutions[cell(table, {"Miyagi", "Total"})], 2);
  EXPECT_EQ(table.institutions[cell(table, {"Total", "Total"})], 3);
  EXPECT_EQ(table.insurers[cell(table, {"Miyagi", "F"})], 1);
  EXPECT_EQ(table.insurers[cell(table, {"Total", "Total"})], 2);
  EXPECT_EQ(table.insurers[cell(table, {"Aomori", "Total"})], 2);
}

TEST(Tabulate, EmptyCombinationsAreZeroCells) {
  const Rows rows = parse_rows("region,sex\nMiyagi,F\nAomori,M\n");
  TabulateSpec s;
  s.dimensions = {"region", "sex"};
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->table.size(), 9u);
  EXPECT_EQ(t->table.value[cell(t->table, {"Miyagi", "M"})], 0);
  expect_margins_add_up(t->table, t->table.value, 6);
}

TEST(Tabulate, HeaderOnlyGivesTheGrandTotalAlone) {
  const Rows rows = parse_rows("region,sex\n");
  TabulateSpec s;
  s.dimensions = {"region", "sex"};
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  ASSERT_EQ(t->table.size(), 1u);
  EXPECT_EQ(t->table.label(0), "region=Total, sex=Total");
  EXPECT_EQ(t->table.value[0], 0);
}

TEST(Tabulate, NumericCategoriesSortAsNumbersAndMissingComesLast) {
  const Rows rows = parse_rows("age,n\n10,1\n9,1\n,1\n100,1\n9,1\n");
  TabulateSpec s;
  s.dimensions = {"age"};
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  EXPECT_THAT(t->table.dims[0].categories, ElementsAre("9", "10", "100", "(missing)", "Total"));
  EXPECT_EQ(t->table.value[cell(t->table, {"9"})], 2);
  EXPECT_EQ(t->table.value[cell(t->table, {"(missing)"})], 1);
}

TEST(Tabulate, ThreeDimensionsHaveAllMarginCombinations) {
  std::string bytes = "a,b,c,v\n";
  for (int i = 0; i < 60; ++i) {
    bytes += "a" + std::to_string(i % 3) + ",b" + std::to_string(i % 4) + ",c" +
             std::to_string(i % 5) + "," + std::to_string(i) + "\n";
  }
  const Rows rows = parse_rows(bytes);
  TabulateSpec s;
  s.dimensions = {"a", "b", "c"};
  s.statistic = Statistic::kSum;
  s.value_column = "v";
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  EXPECT_EQ(t->table.size(), 4u * 5u * 6u);
  EXPECT_EQ(t->table.value[cell(t->table, {"Total", "Total", "Total"})], 59 * 60 / 2);
  // Equations: along a, cells with a = Total (5 * 6); along b, 4 * 6; along c, 4 * 5.
  expect_margins_add_up(t->table, t->table.value, 30 + 24 + 20);
  expect_margins_add_up(t->table, t->table.contributors, 30 + 24 + 20);
  // top1 of a margin is the largest row under it.
  EXPECT_EQ(t->table.top1[cell(t->table, {"a0", "Total", "Total"})], 57);
  EXPECT_EQ(t->table.top2[cell(t->table, {"a0", "Total", "Total"})], 54);
}

TEST(Tabulate, ValueThatIsNotANumberNamesRowAndColumn) {
  const Rows rows = parse_rows("region,sex,cost\nMiyagi,F,100\nMiyagi,M,12a\n");
  auto t = tabulate(rows.document, "out/rows.csv", spec(Statistic::kSum, "cost"));
  ASSERT_FALSE(t.has_value());
  EXPECT_EQ(t.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(t.error().message,
              HasSubstr("out/rows.csv:3:3 (column \"cost\"): expected a number, found \"12a\""));
}

TEST(Tabulate, RefusesBadSpecifications) {
  const Rows rows = parse_rows(kAdmissions);
  auto unknown = tabulate(rows.document, "rows.csv", [] {
    TabulateSpec s = spec(Statistic::kCount);
    s.dimensions = {"region", "age"};
    return s;
  }());
  ASSERT_FALSE(unknown.has_value());
  EXPECT_THAT(unknown.error().message, HasSubstr("no column \"age\""));

  auto count_with_value = tabulate(rows.document, "rows.csv", spec(Statistic::kCount, "cost"));
  ASSERT_FALSE(count_with_value.has_value());
  EXPECT_THAT(count_with_value.error().message, HasSubstr("count takes no value column"));

  auto sum_without_value = tabulate(rows.document, "rows.csv", spec(Statistic::kSum));
  ASSERT_FALSE(sum_without_value.has_value());

  auto twice = tabulate(rows.document, "rows.csv", spec(Statistic::kSum, "sex"));
  ASSERT_FALSE(twice.has_value());
  EXPECT_THAT(twice.error().message, HasSubstr("\"sex\" is named twice"));

  TabulateSpec small = spec(Statistic::kCount);
  small.max_cells = 8;
  auto too_big = tabulate(rows.document, "rows.csv", small);
  ASSERT_FALSE(too_big.has_value());
  EXPECT_THAT(too_big.error().message, HasSubstr("more than 8 cells"));

  TabulateSpec none = spec(Statistic::kCount);
  none.dimensions.clear();
  EXPECT_FALSE(tabulate(rows.document, "rows.csv", none).has_value());
}

TEST(Tabulate, RefusesACategoryEqualToTheTotalLabel) {
  const Rows rows = parse_rows("region,sex\nMiyagi,F\nTotal,M\n");
  auto t = tabulate(rows.document, "rows.csv", spec(Statistic::kCount));
  ASSERT_FALSE(t.has_value());
  EXPECT_THAT(t.error().message, HasSubstr("rows.csv:3:1 (column \"region\")"));
  EXPECT_THAT(t.error().message, HasSubstr("total label"));
}

TEST(Tabulate, StatisticNamesRoundTrip) {
  for (Statistic s : {Statistic::kCount, Statistic::kSum, Statistic::kMean})
    EXPECT_EQ(statistic_from_name(statistic_name(s)), s);
  EXPECT_FALSE(statistic_from_name("median").has_value());
}

TEST(WriteTabulation, LongFormCsvAndSidecar) {
  const Rows rows =
      parse_rows("region,cost,hospital\nMiyagi,100,h1\nMiyagi,250.5,h2\nAomori,20,h1\n");
  TabulateSpec s;
  s.dimensions = {"region"};
  s.statistic = Statistic::kSum;
  s.value_column = "cost";
  s.institution_column = "hospital";
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const TabulatedFiles files = write_tabulation(t.value(), "rows.csv");
  EXPECT_EQ(files.csv,
            "region,sum_cost,contributors,top1,top2,institutions\n"
            "Aomori,20,1,20,0,1\n"
            "Miyagi,350.5,2,250.5,100,2\n"
            "Total,370.5,3,250.5,100,2\n");
  auto meta = parse_meta(files.meta_toml, "tabulated.csv.meta.toml");
  ASSERT_TRUE(meta.has_value()) << meta.error().describe() << "\n" << files.meta_toml;
  EXPECT_EQ(meta->kind, TableKind::kMagnitude);
  EXPECT_EQ(meta->layout, Layout::kLong);
  EXPECT_EQ(meta->value_column, "sum_cost");
  EXPECT_EQ(meta->contributors_column, "contributors");
  EXPECT_EQ(meta->top1_column, "top1");
  EXPECT_EQ(meta->top2_column, "top2");
  EXPECT_EQ(meta->institutions_column, "institutions");
  EXPECT_TRUE(meta->insurers_column.empty());
  ASSERT_EQ(meta->dimensions.size(), 1u);
  EXPECT_EQ(meta->dimensions[0].name, "region");
}

// The written files load back into the same table: the loader sees what tabulate built.
// Equal, or both missing.
bool same(double a, double b) {
  return (is_missing(a) && is_missing(b)) || a == b;
}

void expect_loads_back(const TabulateSpec& s) {
  const Rows rows = parse_rows(kAdmissions);
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const TabulatedFiles files = write_tabulation(t.value(), "rows.csv");
  auto meta = parse_meta(files.meta_toml, "x.csv.meta.toml");
  ASSERT_TRUE(meta.has_value()) << meta.error().describe();
  auto loaded = load_table(files.csv, meta.value(), "x.csv");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().describe() << "\n" << files.csv;
  const Table& original = t->table;
  const Table& reread = loaded->table;
  ASSERT_EQ(reread.size(), original.size());
  for (std::size_t c = 0; c < original.size(); ++c) {
    std::vector<std::string> labels;
    for (std::size_t d = 0; d < original.dims.size(); ++d)
      labels.push_back(original.dims[d].categories[original.coord(c)[d]]);
    const std::size_t r = cell(reread, labels);
    EXPECT_EQ(reread.is_margin(r), original.is_margin(c));
    if (is_missing(original.value[c])) {
      EXPECT_TRUE(is_missing(reread.value[r]));
    } else {
      // A table of means loads as the sums behind them (mean x contributors).
      const double expected = s.statistic == Statistic::kMean ? t->sums[c] : original.value[c];
      EXPECT_NEAR(reread.value[r], expected, 1e-9 * std::abs(expected)) << original.label(c);
    }
    EXPECT_TRUE(same(reread.contributors[r], original.contributors[c])) << original.label(c);
    EXPECT_TRUE(same(reread.top1[r], original.top1[c])) << original.label(c);
    EXPECT_TRUE(same(reread.top2[r], original.top2[c])) << original.label(c);
    EXPECT_TRUE(same(reread.institutions[r], original.institutions[c])) << original.label(c);
    EXPECT_TRUE(same(reread.insurers[r], original.insurers[c])) << original.label(c);
    EXPECT_EQ(reread.origin[r].row, original.origin[c].row);
  }
}

TEST(WriteTabulation, LoadsBackIntoTheSameTable) {
  TabulateSpec counts = spec(Statistic::kCount);
  counts.institution_column = "hospital";
  expect_loads_back(counts);
  TabulateSpec patients = spec(Statistic::kCount);
  patients.unit_column = "patient";
  expect_loads_back(patients);
  expect_loads_back(spec(Statistic::kSum, "cost"));
  TabulateSpec means = spec(Statistic::kMean, "cost");
  means.unit_column = "patient";
  means.insurer_column = "insurer";
  expect_loads_back(means);
}

// Dominance judged on contributions the engine computed itself: one hospital's bill dwarfs
// the other eleven in ward A.
TEST(TabulateThenCheck, PrimaryChecksFlagDominanceOnATabulatedMagnitudeTable) {
  std::string bytes = "ward,cost\n";
  bytes += "A,100000\n";
  for (int i = 0; i < 11; ++i) bytes += "A,100\n";
  for (int i = 0; i < 12; ++i) bytes += "B," + std::to_string(1000 + i) + "\n";
  const Rows rows = parse_rows(bytes);
  TabulateSpec s;
  s.dimensions = {"ward"};
  s.statistic = Statistic::kSum;
  s.value_column = "cost";
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  auto meta = parse_meta(write_tabulation(t.value(), "rows.csv").meta_toml, "m.toml");
  ASSERT_TRUE(meta.has_value()) << meta.error().describe();
  const Profile profile;  // acro-default values: threshold 10, n-k 2/0.9, p 10%
  const PrimaryResult result = check_primary(t->table, meta.value(), profile);

  const std::size_t a = cell(t->table, {"A"});
  const std::size_t b = cell(t->table, {"B"});
  EXPECT_EQ(result.cell_outcome[a], Outcome::kFail);
  EXPECT_EQ(result.suppress[a], 1);
  EXPECT_EQ(result.cell_outcome[b], Outcome::kPass);
  std::vector<std::string> rules_on_a;
  for (const CellFinding& f : result.findings)
    if (f.cell == a) rules_on_a.push_back(f.rule);
  EXPECT_THAT(rules_on_a, ::testing::Contains(std::string(rules::kNkRule)));
  EXPECT_THAT(rules_on_a, ::testing::Contains(std::string(rules::kPRatio)));
  // The margins agree with their parts: no totals finding.
  EXPECT_EQ(result.counts_per_rule.count(rules::kTotals), 0u);
}

// A table of means goes out as means but is checked as the sums behind them: its margins add
// up and dominance is judged against the sum, after the CSV and sidecar round trip.
TEST(TabulateThenCheck, MeansAreCheckedAsTheirSums) {
  std::string bytes = "ward,cost\n";
  bytes += "A,100000\n";
  for (int i = 0; i < 11; ++i) bytes += "A,100\n";
  for (int i = 0; i < 12; ++i) bytes += "B," + std::to_string(1000 + i) + "\n";
  const Rows rows = parse_rows(bytes);
  TabulateSpec s = spec(Statistic::kMean, "cost");
  s.dimensions = {"ward"};
  auto t = tabulate(rows.document, "rows.csv", s);
  ASSERT_TRUE(t.has_value()) << t.error().describe();
  const TabulatedFiles files = write_tabulation(t.value(), "rows.csv");
  auto meta = parse_meta(files.meta_toml, "m.toml");
  ASSERT_TRUE(meta.has_value()) << meta.error().describe();
  EXPECT_TRUE(meta->mean);
  auto loaded = load_table(files.csv, meta.value(), "means.csv");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().describe();
  const PrimaryResult result = check_primary(loaded->table, loaded->meta, Profile{});
  EXPECT_EQ(result.counts_per_rule.count(rules::kTotals), 0u);
  const std::size_t a = cell(loaded->table, {"A"});
  EXPECT_EQ(result.cell_outcome[a], Outcome::kFail);  // one bill dominates ward A's sum
}

}  // namespace
}  // namespace enclave::exitcontrol
