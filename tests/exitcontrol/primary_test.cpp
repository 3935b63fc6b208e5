#include "exitcontrol/core/primary.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <numeric>
#include <random>

namespace enclave::exitcontrol {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

Profile shipped(const std::string& name, std::optional<std::string> tier = std::nullopt) {
  auto p = load_profile(std::filesystem::path(ENCLAVE_SOURCE_DIR) / "policies", name, tier);
  EXPECT_TRUE(p.has_value()) << p.error().describe();
  return p.has_value() ? *p : Profile{};
}

// A region x age table with "Total" margins in both dimensions; leaves[r][a] are the inner
// cells, margins are their sums. Cell order: row-major over ("Total", r0, r1, ...) x
// ("Total", a0, a1, ...).
Table two_way(const std::vector<std::vector<double>>& leaves,
              TableKind kind = TableKind::kFrequency) {
  Table t;
  t.name = "test.csv";
  t.kind = kind;
  t.dims.resize(2);
  t.dims[0].name = "region";
  t.dims[1].name = "age";
  const std::size_t rows = leaves.size(), cols = leaves[0].size();
  auto total_r = t.dims[0].intern("Total");
  for (std::size_t r = 0; r < rows; ++r) {
    t.dims[0].set_parent(t.dims[0].intern("r" + std::to_string(r)), total_r);
  }
  auto total_a = t.dims[1].intern("Total");
  for (std::size_t a = 0; a < cols; ++a) {
    t.dims[1].set_parent(t.dims[1].intern("a" + std::to_string(a)), total_a);
  }
  for (std::uint32_t r = 0; r <= rows; ++r) {
    for (std::uint32_t a = 0; a <= cols; ++a) {
      std::uint32_t c[2] = {r, a};
      auto cell = t.add_cell(c);
      double v = 0;
      for (std::size_t i = 0; i < rows; ++i) {
        for (std::size_t j = 0; j < cols; ++j) {
          if ((r == 0 || r == i + 1) && (a == 0 || a == j + 1)) v += leaves[i][j];
        }
      }
      t.value[cell] = v;
    }
  }
  EXPECT_FALSE(t.build_index().has_value());
  return t;
}

// A one-dimensional table without margins.
Table one_way(const std::vector<double>& values, TableKind kind = TableKind::kFrequency) {
  Table t;
  t.name = "list.csv";
  t.kind = kind;
  t.dims.resize(1);
  t.dims[0].name = "drug";
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint32_t c[1] = {t.dims[0].intern("d" + std::to_string(i))};
    t.value[t.add_cell(c)] = values[i];
  }
  EXPECT_FALSE(t.build_index().has_value());
  return t;
}

std::uint32_t cell_of(const Table& t, std::uint32_t r, std::uint32_t a) {
  std::uint32_t c[2] = {r, a};
  auto cell = t.find(c);
  EXPECT_TRUE(cell.has_value());
  return static_cast<std::uint32_t>(cell.value_or(0));
}

std::vector<CellFinding> findings_for(const PrimaryResult& r, const std::string& rule) {
  std::vector<CellFinding> out;
  for (const auto& f : r.findings) {
    if (f.rule == rule) out.push_back(f);
  }
  return out;
}

const TableMeta kNoMeta{};

// The NDB profile wants institution and insurer counts per cell (without them the table goes
// to review); tests of other NDB rules give every cell plenty.
Table with_ndb_counts(Table t) {
  std::fill(t.institutions.begin(), t.institutions.end(), 10);
  std::fill(t.insurers.begin(), t.insurers.end(), 10);
  return t;
}

// --- threshold -----------------------------------------------------------------------------

TEST(Threshold, CountBelowTenFailsAndIsSuppressedTenPasses) {
  Table t = two_way({{9, 10}, {10, 10}});
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  auto found = findings_for(r, rules::kThreshold);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].cell, cell_of(t, 1, 1));
  EXPECT_EQ(found[0].outcome, Outcome::kFail);
  EXPECT_EQ(found[0].reason, "count 9 is below the threshold 10");
  EXPECT_EQ(r.suppress[cell_of(t, 1, 1)], 1);
  EXPECT_EQ(r.suppress[cell_of(t, 1, 2)], 0);
  EXPECT_EQ(r.cell_outcome[cell_of(t, 1, 1)], Outcome::kFail);
  EXPECT_EQ(r.cell_outcome[cell_of(t, 2, 2)], Outcome::kPass);
  EXPECT_EQ(r.outcome, Outcome::kFail);
  EXPECT_EQ(r.counts_per_rule.at(rules::kThreshold), 1u);
}

TEST(Threshold, MarginsAreCellsToo) {
  // The row margin of r0 is 3 + 4 = 7.
  Table t = two_way({{3, 4}, {20, 30}});
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  EXPECT_EQ(r.cell_outcome[cell_of(t, 1, 0)], Outcome::kFail);
  EXPECT_EQ(r.suppress[cell_of(t, 1, 0)], 1);
  EXPECT_EQ(r.cell_outcome[cell_of(t, 0, 0)], Outcome::kPass);
}

TEST(Threshold, NoPassingCellIsEverFlagged) {
  Table t = with_ndb_counts(two_way({{10, 11, 12}, {13, 14, 15}}));
  for (const char* profile : {"acro-default", "ndb"}) {
    auto r = check_primary(t, kNoMeta, shipped(profile));
    EXPECT_EQ(r.outcome, Outcome::kPass) << profile;
    EXPECT_THAT(r.findings, IsEmpty()) << profile;
    EXPECT_TRUE(r.counts_per_rule.empty()) << profile;
  }
}

TEST(Threshold, TierOverrideRaisesTheThreshold) {
  Table t = with_ndb_counts(one_way({15, 25}));
  EXPECT_EQ(check_primary(t, kNoMeta, shipped("ndb")).outcome, Outcome::kPass);
  auto r = check_primary(t, kNoMeta, shipped("ndb", "restricted"));
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].cell, 0u);
  EXPECT_EQ(r.findings[0].reason, "count 15 is below the threshold 20");
}

TEST(Threshold, MagnitudeTablesCountContributors) {
  Table t = one_way({5000, 6000, 7000}, TableKind::kMagnitude);
  t.contributors = {3, 12, kMissing};
  t.top1 = {1000, 1000, 1000};
  t.top2 = {900, 900, 900};
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  auto found = findings_for(r, rules::kThreshold);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].cell, 0u);
  EXPECT_EQ(found[0].outcome, Outcome::kFail);
  EXPECT_EQ(found[0].reason, "contributor count 3 is below the threshold 10");
  EXPECT_EQ(found[1].cell, 2u);
  EXPECT_EQ(found[1].outcome, Outcome::kReview);
  EXPECT_THAT(found[1].reason, HasSubstr("contributor count not given"));
  EXPECT_EQ(r.suppress[2], 0);
}

// --- zeros ---------------------------------------------------------------------------------

TEST(Zeros, AcroDefaultFailsZerosNdbAllowsThem) {
  Table t = with_ndb_counts(two_way({{0, 12}, {15, 20}}));
  auto acro = check_primary(t, kNoMeta, shipped("acro-default"));
  auto zeros = findings_for(acro, rules::kZeros);
  ASSERT_EQ(zeros.size(), 1u);
  EXPECT_EQ(zeros[0].cell, cell_of(t, 1, 1));
  EXPECT_EQ(zeros[0].outcome, Outcome::kFail);
  EXPECT_EQ(acro.suppress[cell_of(t, 1, 1)], 1);
  EXPECT_THAT(findings_for(acro, rules::kThreshold), IsEmpty());

  auto ndb = check_primary(t, kNoMeta, shipped("ndb"));
  EXPECT_EQ(ndb.outcome, Outcome::kPass);
  EXPECT_THAT(ndb.findings, IsEmpty());
}

TEST(Zeros, ReviewPolicySendsZerosToReviewWithoutSuppressing) {
  Profile p = shipped("acro-default");
  p.zeros = ZerosPolicy::kReview;
  Table t = one_way({0, 10});
  auto r = check_primary(t, kNoMeta, p);
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].rule, rules::kZeros);
  EXPECT_EQ(r.findings[0].outcome, Outcome::kReview);
  EXPECT_EQ(r.suppress[0], 0);
  EXPECT_EQ(r.outcome, Outcome::kReview);
}

TEST(Zeros, NdbFailsOneToNinePatients) {
  std::vector<double> values(11);
  std::iota(values.begin(), values.end(), 0);  // 0..10
  auto r = check_primary(one_way(values), kNoMeta, shipped("ndb"));
  for (std::uint32_t cell = 0; cell <= 10; ++cell) {
    Outcome expected = cell >= 1 && cell <= 9 ? Outcome::kFail : Outcome::kPass;
    EXPECT_EQ(r.cell_outcome[cell], expected) << "count " << cell;
  }
}

// --- negative and missing ------------------------------------------------------------------

TEST(Negative, NegativeValuesGoToReview) {
  Table t = one_way({-3, 12}, TableKind::kMagnitude);
  t.contributors = {15, 15};
  t.top1 = {1, 1};
  t.top2 = {1, 1};
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  auto found = findings_for(r, rules::kNegative);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].cell, 0u);
  EXPECT_EQ(found[0].outcome, Outcome::kReview);
  EXPECT_EQ(found[0].reason, "negative value -3");
  EXPECT_EQ(r.cell_outcome[1], Outcome::kPass);

  Profile off = shipped("acro-default");
  off.negatives_to_review = false;
  EXPECT_THAT(findings_for(check_primary(t, kNoMeta, off), rules::kNegative), IsEmpty());
}

TEST(Missing, MissingValuesGoToReviewOrAreTreatedAsSuppressed) {
  Table t = one_way({kMissing, 12});
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].rule, rules::kMissing);
  EXPECT_EQ(r.findings[0].outcome, Outcome::kReview);
  EXPECT_EQ(r.suppress[0], 0);

  Profile off = shipped("acro-default");
  off.missing_to_review = false;
  auto hidden = check_primary(t, kNoMeta, off);
  ASSERT_EQ(hidden.findings.size(), 1u);
  EXPECT_EQ(hidden.findings[0].outcome, Outcome::kFail);
  EXPECT_EQ(hidden.suppress[0], 1);
}

// --- totals --------------------------------------------------------------------------------

TEST(Totals, ConsistentMarginsPass) {
  Table t = two_way({{10, 20, 30}, {40, 50, 60}});
  EXPECT_THAT(findings_for(check_primary(t, kNoMeta, shipped("acro-default")), rules::kTotals),
              IsEmpty());
}

TEST(Totals, AMismatchFailsTheTotalNamingSumAndDifference) {
  Table t = two_way({{10, 20}, {30, 40}});
  t.value[cell_of(t, 1, 0)] = 32;  // r0's margin; its parts are 10 and 20
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  auto found = findings_for(r, rules::kTotals);
  ASSERT_EQ(found.size(), 2u);  // over age (its own row) and as a part of Total over region
  EXPECT_EQ(found[0].cell, cell_of(t, 0, 0));
  EXPECT_EQ(found[0].reason,
            "total 100 differs from the sum of its 2 parts over region (102) by -2");
  EXPECT_EQ(found[1].cell, cell_of(t, 1, 0));
  EXPECT_EQ(found[1].outcome, Outcome::kFail);
  EXPECT_EQ(found[1].reason, "total 32 differs from the sum of its 2 parts over age (30) by 2");
  EXPECT_EQ(r.suppress[cell_of(t, 1, 0)], 0);  // a data error, not a disclosure
  EXPECT_EQ(r.outcome, Outcome::kFail);
}

TEST(Totals, ToleranceAndSwitch) {
  Table t = two_way({{10, 20}, {30, 40}});
  t.value[cell_of(t, 1, 0)] = 32;
  t.value[cell_of(t, 0, 0)] = 102;
  Profile loose = shipped("acro-default");
  loose.totals_tolerance = 2;
  EXPECT_THAT(findings_for(check_primary(t, kNoMeta, loose), rules::kTotals), IsEmpty());
  loose.totals_tolerance = 1.5;
  EXPECT_EQ(findings_for(check_primary(t, kNoMeta, loose), rules::kTotals).size(), 2u);
  Profile off = shipped("acro-default");
  off.check_totals = false;
  EXPECT_THAT(findings_for(check_primary(t, kNoMeta, off), rules::kTotals), IsEmpty());
}

TEST(Totals, DecimalRoundingIsNotAMismatch) {
  Table t = two_way({{0.1, 0.2}, {0.3, 0.4}}, TableKind::kMagnitude);
  std::fill(t.contributors.begin(), t.contributors.end(), 50);
  std::fill(t.top1.begin(), t.top1.end(), 0.001);
  std::fill(t.top2.begin(), t.top2.end(), 0.001);
  t.value[cell_of(t, 1, 0)] = 0.3;  // 0.1 + 0.2 != 0.3 in binary floating point
  EXPECT_THAT(findings_for(check_primary(t, kNoMeta, shipped("acro-default")), rules::kTotals),
              IsEmpty());
}

TEST(Totals, WithoutTheIndexTheTableFailsClosed) {
  Table t;
  t.kind = TableKind::kFrequency;
  t.dims.resize(1);
  t.dims[0].name = "x";
  auto total = t.dims[0].intern("Total");
  auto a = t.dims[0].intern("a");
  t.dims[0].set_parent(a, total);
  std::uint32_t c0[1] = {total}, c1[1] = {a};
  t.value[t.add_cell(c0)] = 50;
  t.value[t.add_cell(c1)] = 40;  // wrong, but build_index() was not run
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  ASSERT_EQ(r.table_findings.size(), 1u);
  EXPECT_EQ(r.table_findings[0].rule, rules::kTotals);
  EXPECT_EQ(r.table_findings[0].outcome, Outcome::kFail);
}

// --- dominance -----------------------------------------------------------------------------

Table magnitude_cells(const std::vector<std::array<double, 4>>& cells) {  // total, n, top1, top2
  std::vector<double> totals;
  for (const auto& c : cells) totals.push_back(c[0]);
  Table t = one_way(totals, TableKind::kMagnitude);
  for (std::size_t i = 0; i < cells.size(); ++i) {
    t.contributors[i] = cells[i][1];
    t.top1[i] = cells[i][2];
    t.top2[i] = cells[i][3];
  }
  return t;
}

TEST(Dominance, NkRuleFailsWhenTheLargestTwoExceedNinetyPercent) {
  Table t = magnitude_cells({{100, 20, 85, 6}, {100, 20, 50, 30}});
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  auto nk = findings_for(r, rules::kNkRule);
  ASSERT_EQ(nk.size(), 1u);
  EXPECT_EQ(nk[0].cell, 0u);
  EXPECT_EQ(nk[0].reason, "the largest 2 contributions are 91% of the cell total (limit 90%)");
  EXPECT_EQ(r.suppress[0], 1);
  EXPECT_THAT(findings_for(r, rules::kPRatio), IsEmpty());  // rest 9 >= 10% of 85
  EXPECT_EQ(r.cell_outcome[1], Outcome::kPass);
}

TEST(Dominance, NkRuleWithNOneUsesTheLargestAlone) {
  Profile p = shipped("acro-default");
  p.nk_n = 1;
  p.nk_k = 0.5;
  Table t = magnitude_cells({{100, 20, 51, 40}, {100, 20, 50, 45}});
  auto nk = findings_for(check_primary(t, kNoMeta, p), rules::kNkRule);
  ASSERT_EQ(nk.size(), 1u);
  EXPECT_EQ(nk[0].cell, 0u);
  EXPECT_THAT(nk[0].reason, HasSubstr("the largest 1 contribution is 51%"));
}

TEST(Dominance, PRatioFailsWhenTheRestIsUnderPOfTheLargest) {
  Profile p = shipped("acro-default");
  p.nk_k = 0.99;  // so that only the p% rule speaks
  Table t = magnitude_cells({{100, 20, 50, 46}, {100, 20, 50, 45}});
  auto r = check_primary(t, kNoMeta, p);
  auto pr = findings_for(r, rules::kPRatio);
  ASSERT_EQ(pr.size(), 1u);
  EXPECT_EQ(pr[0].cell, 0u);
  EXPECT_EQ(pr[0].reason,
            "total minus the largest two contributions (4) is less than 10% of the largest (50)");
  EXPECT_EQ(r.suppress[0], 1);
  EXPECT_EQ(r.cell_outcome[1], Outcome::kPass);  // rest 5 is not less than 5
}

TEST(Dominance, ZeroTotalFollowsTheZerosPolicyAsInAcro) {
  Table t = with_ndb_counts(magnitude_cells({{0, 12, 0, 0}}));
  auto acro = findings_for(check_primary(t, kNoMeta, shipped("acro-default")), rules::kPRatio);
  ASSERT_EQ(acro.size(), 1u);
  EXPECT_EQ(acro[0].outcome, Outcome::kFail);
  EXPECT_THAT(acro[0].reason, HasSubstr("the cell total is 0"));
  EXPECT_EQ(check_primary(t, kNoMeta, shipped("ndb")).outcome, Outcome::kPass);
}

TEST(Dominance, MissingLargestContributionsGoToReview) {
  Table t = magnitude_cells({{100, 20, kMissing, kMissing}, {100, 20, 40, kMissing}});
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  auto d = findings_for(r, rules::kDominance);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].outcome, Outcome::kReview);
  EXPECT_THAT(d[0].reason, HasSubstr("largest two contributions are not given"));
  EXPECT_EQ(r.outcome, Outcome::kReview);
  EXPECT_EQ(r.suppress[0], 0);
}

TEST(Dominance, InconsistentLargestContributionsGoToReview) {
  Table t = magnitude_cells({{100, 20, 30, 40}, {100, 20, 0, 0}});
  auto d = findings_for(check_primary(t, kNoMeta, shipped("acro-default")), rules::kDominance);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].reason,
            "the largest contributions are inconsistent (largest 30, second 40, total 100)");
  EXPECT_EQ(d[1].cell, 1u);
}

TEST(Dominance, FrequencyTablesHaveNoDominanceRules) {
  Table t = one_way({100});
  t.top1 = {99};
  t.top2 = {1};
  EXPECT_EQ(check_primary(t, kNoMeta, shipped("acro-default")).outcome, Outcome::kPass);
}

// ACRO's agg_nk and agg_p_percent over the full list of contributions, written from its
// source; our rules see only the total and the largest two and must agree on every cell.
bool acro_nk_fails(std::vector<double> v, int n, double k) {
  double total = std::accumulate(v.begin(), v.end(), 0.0);
  if (total <= 0) return false;
  std::sort(v.rbegin(), v.rend());
  double top = 0;
  for (int i = 0; i < n && i < static_cast<int>(v.size()); ++i) top += v[i];
  return top / total > k;
}
bool acro_p_fails(std::vector<double> v, double p, bool zeros_are_disclosive) {
  double total = std::accumulate(v.begin(), v.end(), 0.0);
  if (total <= 0 || v.size() <= 1) return zeros_are_disclosive;
  std::sort(v.rbegin(), v.rend());
  return (total - v[0] - v[1]) / v[0] < p;
}

TEST(Dominance, AgreesWithAcrosFormulasOnRandomCells) {
  std::mt19937 rng(20240603);
  std::uniform_int_distribution<int> count(1, 25);
  std::lognormal_distribution<double> size(3, 1.5);
  std::vector<std::vector<double>> contributions(2000);
  std::vector<double> totals;
  for (auto& c : contributions) {
    c.resize(count(rng));
    for (auto& x : c) x = std::round(size(rng));
    totals.push_back(std::accumulate(c.begin(), c.end(), 0.0));
  }
  Table t = one_way(totals, TableKind::kMagnitude);
  for (std::size_t i = 0; i < contributions.size(); ++i) {
    auto sorted = contributions[i];
    std::sort(sorted.rbegin(), sorted.rend());
    t.contributors[i] = static_cast<double>(sorted.size());
    t.top1[i] = sorted[0];
    t.top2[i] = sorted.size() > 1 ? sorted[1] : 0;
  }
  for (int n : {1, 2}) {
    Profile p = shipped("acro-default");
    p.nk_n = n;
    auto r = check_primary(t, kNoMeta, p);
    std::vector<bool> nk(t.size()), pr(t.size());
    for (const auto& f : r.findings) {
      if (f.rule == rules::kNkRule) nk[f.cell] = true;
      if (f.rule == rules::kPRatio) pr[f.cell] = true;
    }
    std::size_t nk_fails = 0, p_fails = 0;
    for (std::uint32_t i = 0; i < t.size(); ++i) {
      EXPECT_EQ(nk[i], acro_nk_fails(contributions[i], n, p.nk_k)) << "cell " << i;
      EXPECT_EQ(pr[i], acro_p_fails(contributions[i], p.p_ratio, true)) << "cell " << i;
      nk_fails += nk[i];
      p_fails += pr[i];
    }
    // Both outcomes occur, so the agreement is not vacuous.
    EXPECT_GT(nk_fails, 50u);
    EXPECT_LT(nk_fails, t.size() - 50);
    EXPECT_GT(p_fails, 50u);
  }
}

// --- degrees of freedom --------------------------------------------------------------------

TEST(Dof, ModelsNeedTenResidualDegreesOfFreedom) {
  Table model;
  model.kind = TableKind::kModel;
  TableMeta meta;
  meta.kind = TableKind::kModel;
  meta.residual_dof = 9;
  auto r = check_primary(model, meta, shipped("acro-default"));
  ASSERT_EQ(r.table_findings.size(), 1u);
  EXPECT_EQ(r.table_findings[0].rule, rules::kDof);
  EXPECT_EQ(r.table_findings[0].outcome, Outcome::kFail);
  EXPECT_EQ(r.table_findings[0].reason, "residual degrees of freedom 9 are fewer than 10");
  EXPECT_EQ(r.outcome, Outcome::kFail);

  meta.residual_dof = 10;
  EXPECT_EQ(check_primary(model, meta, shipped("acro-default")).outcome, Outcome::kPass);

  meta.residual_dof.reset();
  auto unknown = check_primary(model, meta, shipped("acro-default"));
  ASSERT_EQ(unknown.table_findings.size(), 1u);
  EXPECT_EQ(unknown.table_findings[0].outcome, Outcome::kReview);
}

// --- NDB -----------------------------------------------------------------------------------

TEST(NdbUnits, OralAndTopicalNeedAThousandUnitsInjectionsFourHundred) {
  Table t = one_way({999, 1000, 399, 400, 0});
  TableMeta meta;
  meta.route = "oral";
  auto oral = check_primary(t, meta, shipped("ndb"));
  std::vector<Outcome> expected = {Outcome::kFail, Outcome::kPass, Outcome::kFail, Outcome::kFail,
                                   Outcome::kPass};
  EXPECT_EQ(oral.cell_outcome, expected);
  auto units = findings_for(oral, rules::kNdbUnits);
  ASSERT_EQ(units.size(), 3u);
  EXPECT_EQ(units[0].reason,
            "999 units, route oral: fewer than 1000 where the patient count is unknown");
  EXPECT_EQ(oral.suppress[0], 1);
  EXPECT_THAT(findings_for(oral, rules::kThreshold), IsEmpty());  // units are not patients

  meta.route = "topical";
  EXPECT_EQ(check_primary(t, meta, shipped("ndb")).cell_outcome, expected);

  meta.route = "injection";
  expected = {Outcome::kPass, Outcome::kPass, Outcome::kFail, Outcome::kPass, Outcome::kPass};
  EXPECT_EQ(check_primary(t, meta, shipped("ndb")).cell_outcome, expected);
}

TEST(NdbUnits, KnownPatientCountsUseTheThresholdInstead) {
  Table t = one_way({50, 5000});
  t.contributors = {12, 5};
  TableMeta meta;
  meta.route = "injection";
  meta.contributors_column = "patients";
  auto r = check_primary(t, meta, shipped("ndb"));
  EXPECT_THAT(findings_for(r, rules::kNdbUnits), IsEmpty());
  auto threshold = findings_for(r, rules::kThreshold);
  ASSERT_EQ(threshold.size(), 1u);
  EXPECT_EQ(threshold[0].cell, 1u);
  EXPECT_EQ(threshold[0].reason, "contributor count 5 is below the threshold 10");
}

TEST(NdbUnits, ContributorsWithoutADeclaredColumnAreNotPatients) {
  // The loader fills a frequency table's contributors with its value: here, units.
  Table t = one_way({999, 1200});
  t.contributors = t.value;
  TableMeta meta;
  meta.route = "oral";
  auto r = check_primary(t, meta, shipped("ndb"));
  auto units = findings_for(r, rules::kNdbUnits);
  ASSERT_EQ(units.size(), 1u);
  EXPECT_EQ(units[0].cell, 0u);
  EXPECT_THAT(findings_for(r, rules::kThreshold), IsEmpty());
}

TEST(NdbUnits, AcroDefaultHasNoUnitsRuleAndUnknownRoutesGoToReview) {
  Table t = with_ndb_counts(one_way({999}));
  TableMeta meta;
  meta.route = "oral";
  EXPECT_EQ(check_primary(t, meta, shipped("acro-default")).outcome, Outcome::kPass);
  meta.route = "inhaled";
  auto r = check_primary(t, meta, shipped("ndb"));
  ASSERT_EQ(r.table_findings.size(), 1u);
  EXPECT_EQ(r.table_findings[0].rule, rules::kNdbUnits);
  EXPECT_EQ(r.table_findings[0].outcome, Outcome::kReview);
  EXPECT_THAT(r.table_findings[0].reason, HasSubstr("\"inhaled\""));
}

TEST(NdbInstitutions, FewerThanThreeInstitutionsOrInsurersGoToReview) {
  Table t = one_way({20, 30, 40});
  t.institutions = {2, 3, kMissing};
  t.insurers = {5, 1, 9};
  auto r = check_primary(t, kNoMeta, shipped("ndb"));
  auto inst = findings_for(r, rules::kNdbInstitutions);
  ASSERT_EQ(inst.size(), 2u);
  EXPECT_EQ(inst[0].cell, 0u);
  EXPECT_EQ(inst[0].reason, "2 institutions, fewer than 3");
  EXPECT_EQ(inst[1].cell, 2u);
  EXPECT_EQ(inst[1].reason, "number of institutions not given");
  auto ins = findings_for(r, rules::kNdbInsurers);
  ASSERT_EQ(ins.size(), 1u);
  EXPECT_EQ(ins[0].cell, 1u);
  EXPECT_EQ(r.outcome, Outcome::kReview);
  EXPECT_EQ(std::count(r.suppress.begin(), r.suppress.end(), 1), 0);

  EXPECT_EQ(check_primary(t, kNoMeta, shipped("acro-default")).outcome, Outcome::kPass);
}

TEST(NdbInstitutions, ATableWithoutTheCountsGoesToReviewOnce) {
  Table t = one_way({20, 30});
  t.insurers = {4, 4};
  auto r = check_primary(t, kNoMeta, shipped("ndb"));
  EXPECT_THAT(r.findings, IsEmpty());
  ASSERT_EQ(r.table_findings.size(), 1u);
  EXPECT_EQ(r.table_findings[0].rule, rules::kNdbInstitutions);
  EXPECT_THAT(r.table_findings[0].reason, HasSubstr("does not give the number of institutions"));
}

TEST(GeographicFloor, FinerThanPrefectureFailsTheTable) {
  Table t = with_ndb_counts(one_way({100, 200}));
  t.dims[0].geography = "municipality";
  auto r = check_primary(t, kNoMeta, shipped("ndb"));
  ASSERT_EQ(r.table_findings.size(), 1u);
  EXPECT_EQ(r.table_findings[0].rule, rules::kGeographicFloor);
  EXPECT_EQ(r.table_findings[0].outcome, Outcome::kFail);
  EXPECT_EQ(r.table_findings[0].reason,
            "dimension drug is at municipality level, finer than prefecture, the finest level "
            "this profile publishes");
  EXPECT_EQ(r.outcome, Outcome::kFail);
  EXPECT_EQ(check_primary(t, kNoMeta, shipped("acro-default")).outcome, Outcome::kPass);

  for (const char* ok : {"nation", "region", "prefecture"}) {
    t.dims[0].geography = ok;
    EXPECT_EQ(check_primary(t, kNoMeta, shipped("ndb")).outcome, Outcome::kPass) << ok;
  }
}

TEST(GeographicFloor, TheSidecarsDeclarationCountsAndUnknownLevelsGoToReview) {
  Table t = with_ndb_counts(one_way({100}));
  TableMeta meta;
  meta.dimensions.push_back(DimensionMeta{"drug", {}, "secondary_medical_area"});
  EXPECT_EQ(check_primary(t, meta, shipped("ndb")).outcome, Outcome::kFail);
  meta.dimensions[0].geography = "ward";
  auto r = check_primary(t, meta, shipped("ndb"));
  ASSERT_EQ(r.table_findings.size(), 1u);
  EXPECT_EQ(r.table_findings[0].outcome, Outcome::kReview);
  EXPECT_THAT(r.table_findings[0].reason, HasSubstr("\"ward\""));
}

// --- the driver ----------------------------------------------------------------------------

TEST(CheckPrimary, OutcomeIsTheWorstAndCountsAreKeptPerRule) {
  Table t = one_way({5, -20, kMissing, 50, 0});
  auto r = check_primary(t, kNoMeta, shipped("acro-default"));
  EXPECT_EQ(r.outcome, Outcome::kFail);
  std::vector<Outcome> expected = {Outcome::kFail, Outcome::kFail, Outcome::kReview, Outcome::kPass,
                                   Outcome::kFail};
  EXPECT_EQ(r.cell_outcome, expected);  // -20: negative (review) and below threshold (fail)
  EXPECT_EQ(r.counts_per_rule.at(rules::kThreshold), 2u);
  EXPECT_EQ(r.counts_per_rule.at(rules::kNegative), 1u);
  EXPECT_EQ(r.counts_per_rule.at(rules::kMissing), 1u);
  EXPECT_EQ(r.counts_per_rule.at(rules::kZeros), 1u);
  EXPECT_EQ(r.findings.size(), 5u);
}

TEST(CheckPrimary, ExtractsHaveNoCellRulesHere) {
  Table t = one_way({1, 2});
  t.kind = TableKind::kExtract;
  EXPECT_EQ(check_primary(t, kNoMeta, shipped("acro-default")).outcome, Outcome::kPass);
}

TEST(FormatNumber, IntegersPlainOthersShortest) {
  EXPECT_EQ(format_number(1000000), "1000000");
  EXPECT_EQ(format_number(-3), "-3");
  EXPECT_EQ(format_number(0.25), "0.25");
  EXPECT_EQ(format_number(kMissing), "missing");
}

}  // namespace
}  // namespace enclave::exitcontrol
