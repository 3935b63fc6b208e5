// Secondary suppression: the heuristic and the MILP protect every primary cell against the
// attacker LP (checked by an audit written here from the table's relations, not by the
// engine's own audit), the MILP is optimal where all patterns can be enumerated, and random
// 2-D and 3-D tables are protected after `suggest`.
#include "exitcontrol/lp/suppress.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "exitcontrol/lp/linear_system.hpp"
#include "tests/exitcontrol/table_fixtures.hpp"

namespace enclave::exitcontrol::lp {
namespace {

using testing::cell_at;
using testing::cross_table;
using testing::flat_dimension;
using testing::grouped_dimension;
using ::testing::HasSubstr;
using testing::mask_of;

// The attacker's intervals of the suppressed cells, from the table's relations with every
// margin published: an independent re-audit through bounds().
std::vector<Interval> reaudit(const Table& t, const std::vector<std::uint8_t>& suppressed) {
  LinearSystem s;
  std::vector<std::uint32_t> var(t.size(), 0);
  std::vector<std::vector<Term>> targets;
  for (std::size_t c = 0; c < t.size(); ++c) {
    if (!suppressed[c]) continue;
    var[c] = s.add_variable(0, kInfinity);
    targets.push_back({Term{var[c], 1}});
  }
  for (const auto& eq : t.equations()) {
    LinearSystem::Row row{{}, 0};
    std::vector<std::pair<std::uint32_t, double>> cells = {{eq.total, 1.0}};
    for (auto p : eq.parts) cells.emplace_back(p, -1.0);
    for (auto [c, coef] : cells) {
      if (suppressed[c]) {
        row.terms.push_back({var[c], coef});
      } else {
        row.rhs -= coef * t.value[c];
      }
    }
    if (!row.terms.empty()) s.rows.push_back(row);
  }
  auto r = bounds(s, targets);
  EXPECT_TRUE(r) << r.error().describe();
  return r ? *r : std::vector<Interval>{};
}

// Every primary cell is protected per the profile; returns the first one that is not.
std::optional<std::uint32_t> first_unprotected(const Table& t,
                                               const std::vector<std::uint8_t>& primary,
                                               const std::vector<std::uint8_t>& suppressed,
                                               const Profile& p) {
  auto intervals = reaudit(t, suppressed);
  std::size_t k = 0;
  for (std::uint32_t c = 0; c < t.size(); ++c) {
    if (!suppressed[c]) continue;
    const auto& iv = intervals[k++];
    if (!primary[c]) continue;
    double a = t.value[c];
    double up = std::max(p.upper_protection_percent / 100 * a, p.protection_min);
    double down = std::min(a, std::max(p.lower_protection_percent / 100 * a, p.protection_min));
    if (iv.hi < a + up - 1e-6 || iv.lo > a - down + 1e-6) return c;
  }
  return std::nullopt;
}

double value_cost(const Table& t, const std::vector<std::uint32_t>& cells) {
  double c = 0;
  for (auto cell : cells) c += t.value[cell];
  return c;
}

Table small_2d() {
  const double v[3][3] = {{3, 8, 20}, {12, 40, 30}, {17, 15, 11}};
  return cross_table(
      {flat_dimension("row", {"r1", "r2", "r3"}), flat_dimension("col", {"c1", "c2", "c3"})},
      [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
}

TEST(Suggest, OneSmallCellGetsTheCheapestRectangle) {
  auto t = small_2d();
  auto primary = mask_of(t, {cell_at(t, {"r1", "c1"})});
  Profile p;
  auto r = suggest_suppression(t, primary, p);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->primary, std::vector<std::uint32_t>{cell_at(t, {"r1", "c1"})});
  // The rectangles through the 3 cost 40 (8, 17, 15), 48, 60 and 62; the heuristic's
  // witness LP finds the cheapest.
  EXPECT_EQ(r->cost, 40);
  EXPECT_EQ(r->secondary.size(), 3u);
  EXPECT_FALSE(first_unprotected(t, primary, r->suppressed, p));
  EXPECT_TRUE(r->cleanup_complete);
  EXPECT_EQ(r->cost, value_cost(t, r->secondary));
  ASSERT_EQ(r->audit.size(), 4u);
  for (const auto& a : r->audit) EXPECT_FALSE(a.exact) << t.label(a.cell);
}

TEST(Suggest, MilpProvesTheCheapestRectangle) {
  auto t = small_2d();
  auto primary = mask_of(t, {cell_at(t, {"r1", "c1"})});
  Profile p;
  SuppressOptions options;
  options.method = SuppressionMethod::kMilp;
  auto r = suggest_suppression(t, primary, p, options);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_TRUE(r->milp);
  EXPECT_TRUE(r->proven_optimal);
  EXPECT_TRUE(r->milp->proven_optimal);
  EXPECT_FALSE(r->milp->time_limit_hit);
  // r1,c2 = 8, r3,c1 = 17, r3,c2 = 15: 40 is the cheapest rectangle.
  EXPECT_EQ(r->cost, 40);
  EXPECT_EQ(r->milp->cost, 40);
  EXPECT_EQ(r->milp->lower_bound, 40);
  EXPECT_LE(r->cost, r->heuristic_cost);
  EXPECT_THAT(r->secondary,
              ::testing::UnorderedElementsAre(cell_at(t, {"r1", "c2"}), cell_at(t, {"r3", "c1"}),
                                              cell_at(t, {"r3", "c2"})));
  EXPECT_FALSE(first_unprotected(t, primary, r->suppressed, p));
}

TEST(Suggest, MilpMatchesExhaustiveSearch) {
  // 2 x 3 inner cells with margins (12 cells), two primaries: every pattern of the other ten
  // cells is audited here and the cheapest protected one must be the MILP's.
  const double v[2][3] = {{2, 14, 9}, {25, 4, 31}};
  auto t =
      cross_table({flat_dimension("row", {"r1", "r2"}), flat_dimension("col", {"c1", "c2", "c3"})},
                  [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
  std::vector<std::uint32_t> primaries = {cell_at(t, {"r1", "c1"}), cell_at(t, {"r2", "c2"})};
  auto primary = mask_of(t, primaries);
  Profile p;
  std::vector<std::uint32_t> others;
  for (std::uint32_t c = 0; c < t.size(); ++c) {
    if (!primary[c]) others.push_back(c);
  }
  double best = kInfinity;
  for (std::uint32_t bits = 0; bits < (1u << others.size()); ++bits) {
    auto s = primary;
    double cost = 0;
    for (std::size_t k = 0; k < others.size(); ++k) {
      if (bits >> k & 1) {
        s[others[k]] = 1;
        cost += t.value[others[k]];
      }
    }
    if (cost >= best) continue;
    if (!first_unprotected(t, primary, s, p)) best = cost;
  }
  SuppressOptions options;
  options.method = SuppressionMethod::kMilp;
  auto r = suggest_suppression(t, primary, p, options);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->proven_optimal);
  EXPECT_EQ(r->cost, best);
  EXPECT_FALSE(first_unprotected(t, primary, r->suppressed, p));
}

TEST(Suggest, PrefectureBehindASubtotalIsProtectedWithinItsRegion) {
  // Aomori M is small. The Tohoku subtotal would give it away if only Aomori were hidden.
  const double v[5][2] = {{4, 30}, {60, 55}, {120, 130}, {900, 950}, {300, 310}};
  std::vector<std::string> prefectures = {"Aomori", "Iwate", "Miyagi", "Tokyo", "Chiba"};
  auto region = grouped_dimension(
      "region", {{"Tohoku", {"Aomori", "Iwate", "Miyagi"}}, {"Kanto", {"Tokyo", "Chiba"}}});
  auto t = cross_table({region, flat_dimension("sex", {"M", "F"})},
                       [&](std::span<const std::uint32_t> c) {
                         std::size_t i = 0;
                         while (prefectures[i] != region.categories[c[0]]) ++i;
                         return v[i][c[1]];
                       });
  auto primary = mask_of(t, {cell_at(t, {"Aomori", "M"})});
  Profile p;
  for (auto method : {SuppressionMethod::kHeuristic, SuppressionMethod::kMilp}) {
    SuppressOptions options;
    options.method = method;
    auto r = suggest_suppression(t, primary, p, options);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_FALSE(first_unprotected(t, primary, r->suppressed, p))
        << suppression_method_name(method);
    // The cheapest partners are in Tohoku: Aomori F (30), Iwate M and F (60 + 55).
    EXPECT_EQ(r->cost, 145) << suppression_method_name(method);
  }
}

TEST(Suggest, ThreeDimensionalTableNeedsMoreThanARectangle) {
  auto t = cross_table({flat_dimension("a", {"a1", "a2", "a3"}),
                        flat_dimension("b", {"b1", "b2", "b3"}), flat_dimension("c", {"c1", "c2"})},
                       [](std::span<const std::uint32_t> c) {
                         if (c[0] == 0 && c[1] == 0 && c[2] == 0) return 3.0;
                         return static_cast<double>(20 + 5 * c[0] + 3 * c[1] + 7 * c[2]);
                       });
  auto small = cell_at(t, {"a1", "b1", "c1"});
  auto primary = mask_of(t, {small});
  Profile p;
  auto r = suggest_suppression(t, primary, p);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_FALSE(first_unprotected(t, primary, r->suppressed, p));
  // In three dimensions every line through a hidden cell needs a second hidden cell: the
  // smallest such pattern is a 2 x 2 x 2 cube (7 more cells).
  EXPECT_GE(r->secondary.size(), 7u);
}

TEST(Suggest, FourDimensionsWithAHierarchyAreProtected) {
  // region (with subtotals) x sex x age x year: 4 dimensions, 3 x 3 x 4 x 3 = 108 cells with
  // margins, two small cells, one of them behind the Tohoku subtotal.
  auto region =
      grouped_dimension("region", {{"Tohoku", {"Aomori", "Iwate"}}, {"Kanto", {"Tokyo"}}});
  auto t = cross_table(
      {region, flat_dimension("sex", {"M", "F"}), flat_dimension("age", {"young", "middle", "old"}),
       flat_dimension("year", {"2022", "2023"})},
      [](std::span<const std::uint32_t> c) {
        if (c[1] == 0 && c[2] == 0 && c[3] == 0 && c[0] == 2) return 2.0;
        if (c[1] == 1 && c[2] == 2 && c[3] == 1 && c[0] == 5) return 6.0;
        return static_cast<double>(15 + 3 * c[0] + 5 * c[1] + 2 * c[2] + c[3]);
      });
  std::vector<std::uint32_t> primaries;
  for (std::uint32_t c = 0; c < t.size(); ++c) {
    if (t.value[c] < 10) primaries.push_back(c);
  }
  // Tokyo is Kanto's only prefecture: its small cell makes the Kanto subtotal small too.
  ASSERT_EQ(primaries.size(), 3u);
  auto primary = mask_of(t, primaries);
  Profile p;
  p.milp_time_limit_s = 3;  // the pattern must be safe whether or not the MILP proves it minimal
  for (auto method : {SuppressionMethod::kHeuristic, SuppressionMethod::kMilp}) {
    SuppressOptions options;
    options.method = method;
    auto r = suggest_suppression(t, primary, p, options);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_FALSE(first_unprotected(t, primary, r->suppressed, p))
        << suppression_method_name(method);
    // In four dimensions every line through a hidden cell needs a partner: at least a
    // 2 x 2 x 2 x 2 block (15 more cells) around each small cell.
    EXPECT_GE(r->secondary.size(), 15u) << suppression_method_name(method);
  }
}

TEST(Suggest, ZeroPrimaryNeedsOnlyTheUpperSide) {
  const double v[2][2] = {{0, 50}, {60, 70}};
  auto t = cross_table({flat_dimension("row", {"r1", "r2"}), flat_dimension("col", {"c1", "c2"})},
                       [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
  auto zero = cell_at(t, {"r1", "c1"});
  Profile p;
  auto r = suggest_suppression(t, mask_of(t, {zero}), p);
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_FALSE(r->audit.empty());
  const auto& a = r->audit.front();
  EXPECT_EQ(a.cell, zero);
  EXPECT_EQ(a.need_lo, 0);
  EXPECT_EQ(a.need_hi, 1);
  EXPECT_GE(a.hi, 1);
  EXPECT_TRUE(a.is_protected);
}

TEST(Suggest, RecomputedTotalsNeedNoSecondarySuppression) {
  auto t = small_2d();
  auto small = cell_at(t, {"r1", "c1"});
  Profile p;
  p.totals = TotalsPolicy::kRecompute;
  auto r = suggest_suppression(t, mask_of(t, {small}), p);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->secondary.empty());
  EXPECT_EQ(r->cost, 0);
  ASSERT_EQ(r->audit.size(), 1u);
  EXPECT_EQ(r->audit[0].hi, kInfinity);
  EXPECT_TRUE(r->audit[0].is_protected);

  // What gets published: margins are sums of the published inner cells only.
  auto published = published_values(t, r->suppressed, p.totals);
  EXPECT_TRUE(is_missing(published[small]));
  EXPECT_EQ(published[cell_at(t, {"r1", "Total"})], 8 + 20);
  EXPECT_EQ(published[cell_at(t, {"Total", "c1"})], 12 + 17);
  EXPECT_EQ(published[cell_at(t, {"Total", "Total"})], 156 - 3);
  // The published table is additive with the hidden cell counted as nothing, so subtracting
  // recovers nothing about it.
  for (const auto& eq : t.equations()) {
    double sum = 0;
    for (auto part : eq.parts) sum += is_missing(published[part]) ? 0 : published[part];
    EXPECT_EQ(published[eq.total], sum) << t.label(eq.total);
  }
  // As published, the suppressed values are simply absent.
  auto as_published = published_values(t, r->suppressed, TotalsPolicy::kAsPublished);
  EXPECT_TRUE(is_missing(as_published[small]));
  EXPECT_EQ(as_published[cell_at(t, {"r1", "Total"})], 31);
}

TEST(Suggest, SuppressedMarginUnderRecomputeGetsAHiddenPart) {
  // A small row total (3 = 1 + 2 + 0) under kRecompute: with every part published the true
  // total is their sum, exactly. Hiding the 1 leaves the total in [2, inf).
  const double v[2][3] = {{1, 2, 0}, {40, 50, 60}};
  auto t =
      cross_table({flat_dimension("row", {"r1", "r2"}), flat_dimension("col", {"c1", "c2", "c3"})},
                  [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
  auto total = cell_at(t, {"r1", "Total"});
  Profile p;
  p.totals = TotalsPolicy::kRecompute;
  auto r = suggest_suppression(t, mask_of(t, {total}), p);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->secondary, std::vector<std::uint32_t>{cell_at(t, {"r1", "c1"})});
  ASSERT_EQ(r->audit.size(), 2u);
  const auto& a = r->audit.back();
  EXPECT_EQ(a.cell, total);
  EXPECT_EQ(a.lo, 2);
  EXPECT_TRUE(a.is_protected);
}

TEST(Suggest, CellCountCostPrefersFewerCells) {
  // Counting cells, every rectangle through the 3 costs 3.
  auto t = small_2d();
  auto primary = mask_of(t, {cell_at(t, {"r1", "c1"})});
  Profile p;
  SuppressOptions options;
  options.cost = SuppressionCost::kCellCount;
  options.method = SuppressionMethod::kMilp;
  auto r = suggest_suppression(t, primary, p, options);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->cost, 3);
  EXPECT_EQ(r->secondary.size(), 3u);
  EXPECT_TRUE(r->proven_optimal);
}

TEST(Suggest, BadInputIsRefused) {
  auto t = small_2d();
  Profile p;
  {
    auto r = suggest_suppression(t, std::vector<std::uint8_t>(2, 0), p);
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("2 entries for 16 cells"));
  }
  {
    auto u = t;
    u.value[cell_at(u, {"r2", "Total"})] += 1;
    auto r = suggest_suppression(u, mask_of(u, {cell_at(u, {"r1", "c1"})}), p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_THAT(r.error().message, HasSubstr("row=r2, col=Total"));
    EXPECT_THAT(r.error().message, HasSubstr("additive"));
  }
  {
    auto u = t;
    u.value[cell_at(u, {"r3", "c3"})] = kMissing;
    auto r = suggest_suppression(u, mask_of(u, {cell_at(u, {"r1", "c1"})}), p);
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("row=r3, col=c3"));
  }
  {
    SuppressOptions options;
    options.time_limit_s = 0;
    auto r = suggest_suppression(t, mask_of(t, {cell_at(t, {"r1", "c1"})}), p, options);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kTimeout);
  }
}

TEST(Suggest, NoPrimaryCellsNothingToDo) {
  auto t = small_2d();
  auto r = suggest_suppression(t, std::vector<std::uint8_t>(t.size(), 0), Profile{});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->secondary.empty());
  EXPECT_TRUE(r->audit.empty());
}

// ---- the property test ----

struct RandomTable {
  Table table;
  std::vector<std::uint8_t> primary;
};

RandomTable random_table(std::mt19937& rng, bool three_d) {
  std::uniform_int_distribution<int> size2(2, 7), size3a(2, 4), size3c(2, 3);
  std::vector<std::size_t> sizes =
      three_d ? std::vector<std::size_t>{std::size_t(size3a(rng)), std::size_t(size3a(rng)),
                                         std::size_t(size3c(rng))}
              : std::vector<std::size_t>{std::size_t(size2(rng)), std::size_t(size2(rng))};
  std::vector<Dimension> dims;
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    std::vector<std::string> leaves;
    for (std::size_t i = 0; i < sizes[d]; ++i)
      leaves.push_back("d" + std::to_string(d) + "_" + std::to_string(i));
    dims.push_back(flat_dimension("dim" + std::to_string(d), leaves));
  }
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<int> small(1, 9), large(10, 120);
  auto t = cross_table(dims, [&](std::span<const std::uint32_t>) {
    double u = unit(rng);
    return static_cast<double>(u < 0.06 ? 0 : u < 0.22 ? small(rng) : large(rng));
  });
  std::vector<std::uint8_t> primary(t.size(), 0);
  for (std::size_t c = 0; c < t.size(); ++c) {
    primary[c] = !t.is_margin(c) && t.value[c] > 0 && t.value[c] < 10;
  }
  return {std::move(t), std::move(primary)};
}

TEST(SuggestProperty, RandomTablesAreProtectedAndTheMilpIsNoWorse) {
  std::mt19937 rng(20240611);
  Profile p;
  p.milp_time_limit_s = 20;
  int proven = 0, tables_with_primaries = 0;
  for (int n = 0; n < 50; ++n) {
    auto [t, primary] = random_table(rng, n % 2 == 1);
    SCOPED_TRACE("table " + std::to_string(n) + " (" + std::to_string(t.size()) + " cells)");
    SuppressOptions heuristic;
    auto h = suggest_suppression(t, primary, p, heuristic);
    ASSERT_TRUE(h) << h.error().describe();
    SuppressOptions exact;
    exact.method = SuppressionMethod::kMilp;
    auto m = suggest_suppression(t, primary, p, exact);
    ASSERT_TRUE(m) << m.error().describe();

    for (const auto* r : {&*h, &*m}) {
      for (std::size_t c = 0; c < t.size(); ++c) {
        if (primary[c]) {
          ASSERT_TRUE(r->suppressed[c]);
        }
      }
      auto bad = first_unprotected(t, primary, r->suppressed, p);
      EXPECT_FALSE(bad) << suppression_method_name(r->method) << ": " << t.label(*bad);
      // The engine's own audit agrees with the independent one.
      auto independent = reaudit(t, r->suppressed);
      ASSERT_EQ(independent.size(), r->audit.size());
      for (std::size_t k = 0; k < independent.size(); ++k) {
        EXPECT_NEAR(independent[k].lo, r->audit[k].lo, 1e-6);
        if (std::isfinite(independent[k].hi)) {
          EXPECT_NEAR(independent[k].hi, r->audit[k].hi, 1e-6);
        } else {
          EXPECT_EQ(r->audit[k].hi, kInfinity);
        }
      }
    }
    EXPECT_LE(m->cost, h->cost + 1e-9);
    ASSERT_TRUE(m->milp);
    EXPECT_LE(m->milp->lower_bound, m->cost + 1e-9);
    if (m->proven_optimal) ++proven;
    // Minimality of the heuristic: publishing any single secondary cell again breaks it.
    if (h->cleanup_complete) {
      for (auto cell : h->secondary) {
        auto fewer = h->suppressed;
        fewer[cell] = 0;
        EXPECT_TRUE(first_unprotected(t, primary, fewer, p)) << "unneeded " << t.label(cell);
      }
    }
    tables_with_primaries += h->primary.empty() ? 0 : 1;
  }
  EXPECT_GT(tables_with_primaries, 40);
  // Small tables: the MILP should finish well within its limit nearly always.
  EXPECT_GE(proven, 45);
}

}  // namespace
}  // namespace enclave::exitcontrol::lp
