// The attacker's LP bounds and the audit of suppressed cells within one table: the classic
// differencing cases (a lone suppressed cell in a row with a total, two in a row, a
// prefecture behind a regional subtotal, patterns that are safe in 2-D but not in 3-D), zero
// cells, recomputed totals, published tables, and bad input.
#include "exitcontrol/lp/attacker.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "exitcontrol/lp/glpk_session.hpp"
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

// ---- bounds() on hand-made systems ----

LinearSystem two_plus_three() {
  // x0 + x1 = 5 and x2 + x3 = 3, all >= 0: two independent blocks; x4 in [1, 2] in no row.
  LinearSystem s;
  for (int i = 0; i < 4; ++i) s.add_variable(0, kInfinity);
  s.add_variable(1, 2);
  s.rows.push_back({{{0, 1}, {1, 1}}, 5});
  s.rows.push_back({{{2, 1}, {3, 1}}, 3});
  return s;
}

TEST(Bounds, SingleVariablesAndCombinationsMatchHandValues) {
  auto s = two_plus_three();
  std::vector<std::vector<Term>> targets = {
      {{0, 1}},           // [0, 5]
      {{0, 1}, {1, 1}},   // exactly 5
      {{0, 1}, {1, -1}},  // [-5, 5]
      {{0, 1}, {2, 1}},   // spans both blocks: [0, 8]
      {{4, 2}, {0, -1}},  // 2*x4 - x0: [2 - 5, 4 - 0]
      {{3, 1}},           // [0, 3]
      {},                 // the empty combination is 0
  };
  auto r = bounds(s, targets);
  ASSERT_TRUE(r) << r.error().describe();
  std::vector<std::pair<double, double>> want = {{0, 5},  {5, 5}, {-5, 5}, {0, 8},
                                                 {-3, 4}, {0, 3}, {0, 0}};
  ASSERT_EQ(r->size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ((*r)[i].lo, want[i].first) << "target " << i;
    EXPECT_EQ((*r)[i].hi, want[i].second) << "target " << i;
  }
}

TEST(Bounds, RepeatedTermsAreSummed) {
  LinearSystem s;
  s.add_variable(0, kInfinity);
  s.add_variable(0, kInfinity);
  s.rows.push_back({{{0, 1}, {0, 1}, {1, 1}}, 4});  // 2 x0 + x1 = 4
  auto r = bounds(s, std::vector<std::vector<Term>>{{{0, 1}}, {{1, 0.5}, {1, 0.5}}});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)[0].lo, 0);
  EXPECT_EQ((*r)[0].hi, 2);
  EXPECT_EQ((*r)[1].hi, 4);
}

TEST(Bounds, UnboundedDirectionsAreInfinite) {
  LinearSystem s;
  s.add_variable(0, kInfinity);
  s.add_variable(0, kInfinity);
  s.add_variable(-kInfinity, kInfinity);
  s.rows.push_back({{{0, 1}, {1, -1}}, 0});  // x0 = x1, nothing caps them
  s.rows.push_back({{{2, 1}, {0, 1}}, 0});   // x2 = -x0
  auto r = bounds(s, std::vector<std::vector<Term>>{{{0, 1}}, {{2, 1}}});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)[0].lo, 0);
  EXPECT_EQ((*r)[0].hi, kInfinity);
  EXPECT_EQ((*r)[1].lo, -kInfinity);
  EXPECT_EQ((*r)[1].hi, 0);
}

TEST(Bounds, InfeasibleSystemIsInvalidArgumentNamingTheRow) {
  LinearSystem s;
  s.add_variable(0, kInfinity);
  s.add_variable(0, kInfinity);
  s.rows.push_back({{{0, 1}, {1, 1}}, -1});
  BoundsOptions options;
  options.describe_row = [](std::size_t row) { return "relation #" + std::to_string(row); };
  auto r = bounds(s, std::vector<std::vector<Term>>{{{0, 1}}}, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(r.error().message, HasSubstr("contradict"));
  EXPECT_THAT(r.error().message, HasSubstr("relation #0"));
}

TEST(Bounds, RowWithoutUnknownsMustBalance) {
  LinearSystem s;
  s.add_variable(0, 1);
  s.rows.push_back({{{0, 0.0}}, 2});
  auto r = bounds(s, std::vector<std::vector<Term>>{{{0, 1}}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(r.error().message, HasSubstr("off by 2"));
}

TEST(Bounds, MalformedSystemsAreRefusedBeforeGlpkSeesThem) {
  auto base = two_plus_three();
  {
    auto s = base;
    s.rows[0].terms.push_back({9, 1});
    auto r = bounds(s, {});
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("uses variable 9 of 5"));
  }
  {
    auto s = base;
    s.lower[1] = 3;
    s.upper[1] = 2;
    auto r = bounds(s, {});
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("variable 1 has bounds"));
  }
  {
    auto s = base;
    s.rows[1].terms[0].coef = std::nan("");
    EXPECT_FALSE(bounds(s, {}));
  }
  {
    auto s = base;
    s.rows[1].rhs = kInfinity;
    EXPECT_FALSE(bounds(s, {}));
  }
  {
    auto s = base;
    s.upper.pop_back();
    EXPECT_FALSE(bounds(s, {}));
  }
  auto r = bounds(base, std::vector<std::vector<Term>>{{{5, 1}}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(r.error().message, HasSubstr("target 0"));
}

TEST(Bounds, ReportsProgressAndHonoursTheTimeLimit) {
  auto s = two_plus_three();
  std::vector<std::vector<Term>> targets = {{{0, 1}}, {{2, 1}}, {{3, 1}}};
  std::vector<std::pair<std::size_t, std::size_t>> seen;
  BoundsOptions options;
  options.progress = [&](std::size_t done, std::size_t all) { seen.emplace_back(done, all); };
  ASSERT_TRUE(bounds(s, targets, options));
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.back(), (std::pair<std::size_t, std::size_t>{3, 3}));

  options.time_limit_s = 0;
  auto r = bounds(s, targets, options);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kTimeout);
}

TEST(GlpkSession, AnErrorInsideGlpkIsCaughtNotFatal) {
  glpk::Problem doomed;
  glp_prob* p = doomed.get();
  ASSERT_NE(p, nullptr);
  // Column 7 does not exist: GLPK would print and abort() without the hook.
  bool ok = glpk::guarded([&] { glp_set_col_bnds(p, 7, GLP_LO, 0, 0); });
  EXPECT_FALSE(ok);
  EXPECT_FALSE(doomed.alive());
  // GLPK works again afterwards.
  auto r = bounds(two_plus_three(), std::vector<std::vector<Term>>{{{0, 1}}});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)[0].hi, 5);
}

// An independent oracle: every bound by its own LP from scratch (GLPK's presolver on), with
// none of bounds()' shortcuts (blocks, propagation, visited vertices, batches, threads).
std::vector<Interval> oracle(const LinearSystem& s, const std::vector<std::vector<Term>>& targets) {
  std::vector<Interval> out;
  for (const auto& target : targets) {
    Interval iv;
    for (int sense : {GLP_MIN, GLP_MAX}) {
      glp_prob* p = glp_create_prob();
      glp_term_out(GLP_OFF);
      glp_add_cols(p, static_cast<int>(s.lower.size()));
      for (std::size_t v = 0; v < s.lower.size(); ++v) {
        bool lo = std::isfinite(s.lower[v]), hi = std::isfinite(s.upper[v]);
        glp_set_col_bnds(p, static_cast<int>(v + 1),
                         lo && hi ? GLP_DB
                         : lo     ? GLP_LO
                         : hi     ? GLP_UP
                                  : GLP_FR,
                         lo ? s.lower[v] : 0, hi ? s.upper[v] : 0);
      }
      glp_add_rows(p, static_cast<int>(s.rows.size()));
      for (std::size_t r = 0; r < s.rows.size(); ++r) {
        std::vector<int> ind{0};
        std::vector<double> val{0};
        for (const auto& t : s.rows[r].terms) {
          ind.push_back(static_cast<int>(t.var + 1));
          val.push_back(t.coef);
        }
        glp_set_mat_row(p, static_cast<int>(r + 1), static_cast<int>(ind.size() - 1), ind.data(),
                        val.data());
        glp_set_row_bnds(p, static_cast<int>(r + 1), GLP_FX, s.rows[r].rhs, s.rows[r].rhs);
      }
      for (const auto& t : target) glp_set_obj_coef(p, static_cast<int>(t.var + 1), t.coef);
      glp_set_obj_dir(p, sense);
      glp_smcp parm;
      glp_init_smcp(&parm);
      parm.msg_lev = GLP_MSG_OFF;
      parm.presolve = GLP_ON;
      int ret = glp_simplex(p, &parm);
      double v =
          ret == GLP_ENODFS ? (sense == GLP_MIN ? -kInfinity : kInfinity) : glp_get_obj_val(p);
      EXPECT_TRUE(ret == 0 || ret == GLP_ENODFS) << "oracle GLPK code " << ret;
      (sense == GLP_MIN ? iv.lo : iv.hi) = v;
      glp_delete_prob(p);
    }
    out.push_back(iv);
  }
  return out;
}

// A 3-D table (12 x 10 x 6 leaves with every margin) with a quarter of its cells hidden at
// random and a cube of eight: one large connected block, as the attacker sees it.
struct HiddenTable {
  Table table;
  std::vector<std::uint8_t> hidden;
  AttackerSystem sys;
  std::vector<std::vector<Term>> targets;
};

HiddenTable hidden_3d(std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> value(0, 60);
  std::bernoulli_distribution hide(0.25);
  auto leaves = [](const char* name, int n) {
    std::vector<std::string> labels;
    for (int i = 1; i <= n; ++i) labels.push_back(std::to_string(i));
    return flat_dimension(name, labels);
  };
  HiddenTable h;
  h.table = cross_table({leaves("a", 12), leaves("b", 10), leaves("c", 6)},
                        [&](std::span<const std::uint32_t>) { return double(value(rng)); });
  h.hidden.assign(h.table.size(), 0);
  for (auto& x : h.hidden) x = hide(rng);
  for (std::uint32_t i = 0; i < 2; ++i) {  // and a cube at the first two leaves of each
    for (std::uint32_t j = 0; j < 2; ++j) {
      for (std::uint32_t k = 0; k < 2; ++k) {
        h.hidden[*h.table.find(std::vector<std::uint32_t>{i, j, k})] = 1;
      }
    }
  }
  h.sys = *attacker_system(h.table, h.hidden, true);
  for (std::uint32_t v = 0; v < h.sys.cell_of_var.size(); ++v) h.targets.push_back({{v, 1}});
  h.targets.push_back({{0, 1}, {1, -1}, {2, 2}});  // a combination, as differencing asks
  return h;
}

TEST(Bounds, LargeBlocksMatchAnIndependentLpPerBoundWithAnyNumberOfThreads) {
  auto h = hidden_3d(7);
  ASSERT_GT(h.sys.cell_of_var.size(), 220u);  // past the size at which threads split a block
  auto want = oracle(h.sys.system, h.targets);
  for (unsigned threads : {1u, 2u, 3u}) {
    BoundsOptions options;
    options.threads = threads;
    auto got = bounds(h.sys.system, h.targets, options);
    ASSERT_TRUE(got) << got.error().describe();
    for (std::size_t k = 0; k < want.size(); ++k) {
      EXPECT_NEAR((*got)[k].lo, want[k].lo, 1e-6)
          << "target " << k << ", " << threads << " threads";
      EXPECT_NEAR((*got)[k].hi, want[k].hi, 1e-6)
          << "target " << k << ", " << threads << " threads";
    }
  }
}

// ---- the audit of one table ----

Profile default_profile() {
  return Profile{};  // 10% both sides, at least 1; margins as published
}

// 3 x 3 inner cells with row and column totals:
//        c1  c2  c3 | Total
//   r1    3   8  20 |  31
//   r2   12   4  30 |  46
//   r3    7  15  11 |  33
//   Total 22 27  61 | 110
Table small_2d() {
  const double v[3][3] = {{3, 8, 20}, {12, 4, 30}, {7, 15, 11}};
  return cross_table(
      {flat_dimension("row", {"r1", "r2", "r3"}), flat_dimension("col", {"c1", "c2", "c3"})},
      [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
}

const CellAudit& audit_of(const std::vector<CellAudit>& audits, std::uint32_t cell) {
  for (const auto& a : audits) {
    if (a.cell == cell) return a;
  }
  ADD_FAILURE() << "no audit for cell " << cell;
  return audits.front();
}

TEST(Audit, LoneSuppressedCellInARowWithATotalIsExact) {
  auto t = small_2d();
  auto cell = cell_at(t, {"r1", "c1"});
  auto r = audit_suppression(t, mask_of(t, {cell}), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->size(), 1u);
  const auto& a = (*r)[0];
  EXPECT_EQ(a.cell, cell);
  EXPECT_EQ(a.value, 3);
  EXPECT_EQ(a.lo, 3);
  EXPECT_EQ(a.hi, 3);
  EXPECT_TRUE(a.exact);
  EXPECT_FALSE(a.is_protected);
}

TEST(Audit, TwoSuppressedCellsInOneRowOnlyAreRecoveredFromColumnTotals) {
  auto t = small_2d();
  auto a = cell_at(t, {"r1", "c1"}), b = cell_at(t, {"r1", "c2"});
  auto r = audit_suppression(t, mask_of(t, {a, b}), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE(audit_of(*r, a).exact);
  EXPECT_EQ(audit_of(*r, a).lo, 3);
  EXPECT_TRUE(audit_of(*r, b).exact);
  EXPECT_EQ(audit_of(*r, b).hi, 8);
}

TEST(Audit, RectangleGivesHandComputedIntervals) {
  // x11 = 3 + t, x12 = 8 - t, x21 = 12 - t, x22 = 4 + t with every cell >= 0: t in [-3, 8].
  auto t = small_2d();
  auto c11 = cell_at(t, {"r1", "c1"}), c12 = cell_at(t, {"r1", "c2"});
  auto c21 = cell_at(t, {"r2", "c1"}), c22 = cell_at(t, {"r2", "c2"});
  auto r = audit_suppression(t, mask_of(t, {c11, c12, c21, c22}), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  struct Want {
    std::uint32_t cell;
    double lo, hi;
  };
  for (auto w : {Want{c11, 0, 11}, Want{c12, 0, 11}, Want{c21, 4, 15}, Want{c22, 1, 12}}) {
    const auto& a = audit_of(*r, w.cell);
    EXPECT_EQ(a.lo, w.lo) << t.label(w.cell);
    EXPECT_EQ(a.hi, w.hi) << t.label(w.cell);
    EXPECT_FALSE(a.exact);
    EXPECT_TRUE(a.is_protected) << t.label(w.cell);
  }
  // The cell of value 3 needs 1 on each side (10% of 3 is below the minimum of 1).
  EXPECT_EQ(audit_of(*r, c11).need_hi, 1);
  EXPECT_EQ(audit_of(*r, c11).need_lo, 1);
}

TEST(Audit, ProtectionLevelsFollowTheProfile) {
  Profile p;
  p.upper_protection_percent = 20;
  p.lower_protection_percent = 50;
  p.protection_min = 2;
  auto big = required_protection(40, p);
  EXPECT_EQ(big.upper, 8);
  EXPECT_EQ(big.lower, 20);
  auto small = required_protection(1, p);
  EXPECT_EQ(small.upper, 2);
  EXPECT_EQ(small.lower, 1);  // capped at the value: a count cannot go below 0
  auto zero = required_protection(0, p);
  EXPECT_EQ(zero.upper, 2);
  EXPECT_EQ(zero.lower, 0);
  auto signed_cell = required_protection(-40, p, /*non_negative=*/false);
  EXPECT_EQ(signed_cell.upper, 8);
  EXPECT_EQ(signed_cell.lower, 20);
}

TEST(Audit, ZeroCellNeedsOnlyTheUpperSideAndBlocksItsPartner) {
  // x11 = 5 + t, x12 = 0 - t, x21 = 7 - t, x22 = 9 + t: the zero cell forces t <= 0, so the
  // 5 can only be pushed down: [0, 5], not protected upwards. The zero cell itself reaches
  // [0, 5] and needs only hi >= 1.
  const double v[2][2] = {{5, 0}, {7, 9}};
  auto t = cross_table({flat_dimension("row", {"r1", "r2"}), flat_dimension("col", {"c1", "c2"})},
                       [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
  auto c11 = cell_at(t, {"r1", "c1"}), c12 = cell_at(t, {"r1", "c2"});
  auto c21 = cell_at(t, {"r2", "c1"}), c22 = cell_at(t, {"r2", "c2"});
  auto r = audit_suppression(t, mask_of(t, {c11, c12, c21, c22}), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  const auto& five = audit_of(*r, c11);
  EXPECT_EQ(five.lo, 0);
  EXPECT_EQ(five.hi, 5);
  EXPECT_FALSE(five.is_protected);
  const auto& zero = audit_of(*r, c12);
  EXPECT_EQ(zero.lo, 0);
  EXPECT_EQ(zero.hi, 5);
  EXPECT_EQ(zero.need_lo, 0);
  EXPECT_TRUE(zero.is_protected);
  EXPECT_EQ(audit_of(*r, c21).lo, 7);
  EXPECT_EQ(audit_of(*r, c21).hi, 12);
}

// Region: Total > Tohoku (Aomori, Iwate, Miyagi), Kanto (Tokyo, Chiba); by sex.
Table regions_by_sex(bool with_subtotals) {
  const double v[5][2] = {{4, 3}, {60, 55}, {120, 130}, {900, 950}, {300, 310}};
  std::vector<std::string> prefectures = {"Aomori", "Iwate", "Miyagi", "Tokyo", "Chiba"};
  auto region = with_subtotals
                    ? grouped_dimension("region", {{"Tohoku", {"Aomori", "Iwate", "Miyagi"}},
                                                   {"Kanto", {"Tokyo", "Chiba"}}})
                    : flat_dimension("region", prefectures);
  return cross_table({region, flat_dimension("sex", {"M", "F"})},
                     [&](std::span<const std::uint32_t> c) {
                       const auto& label = region.categories[c[0]];
                       std::size_t i = 0;
                       while (prefectures[i] != label) ++i;
                       return v[i][c[1]];
                     });
}

TEST(Audit, PrefectureIsRecoveredFromTheRegionalSubtotal) {
  // Aomori and Tokyo suppressed for both sexes. Without subtotals the two prefectures hide
  // each other within the national total; the Tohoku subtotal gives Aomori away exactly.
  for (bool with_subtotals : {false, true}) {
    auto t = regions_by_sex(with_subtotals);
    std::vector<std::uint32_t> hidden = {cell_at(t, {"Aomori", "M"}), cell_at(t, {"Aomori", "F"}),
                                         cell_at(t, {"Tokyo", "M"}), cell_at(t, {"Tokyo", "F"})};
    auto r = audit_suppression(t, mask_of(t, hidden), default_profile());
    ASSERT_TRUE(r) << r.error().describe();
    const auto& aomori_m = audit_of(*r, hidden[0]);
    EXPECT_EQ(aomori_m.value, 4);
    if (with_subtotals) {
      EXPECT_TRUE(aomori_m.exact);
      EXPECT_EQ(aomori_m.lo, 4);
      EXPECT_FALSE(aomori_m.is_protected);
    } else {
      // Aomori M = 4 + t, Tokyo M = 900 - t, Aomori F = 3 - t, Tokyo F = 950 + t: t in [-4, 3].
      EXPECT_FALSE(aomori_m.exact);
      EXPECT_EQ(aomori_m.lo, 0);
      EXPECT_EQ(aomori_m.hi, 7);
      EXPECT_TRUE(aomori_m.is_protected);
    }
  }
}

Table cube_3d() {
  // 3 x 3 x 2 inner cells with every margin (lines, planes, grand total).
  return cross_table({flat_dimension("a", {"a1", "a2", "a3"}),
                      flat_dimension("b", {"b1", "b2", "b3"}), flat_dimension("c", {"c1", "c2"})},
                     [](std::span<const std::uint32_t> c) {
                       return static_cast<double>(2 + 5 * c[0] + 3 * c[1] + 7 * c[2]);
                     });
}

TEST(Audit, RectangleSafeIn2DIsExactIn3D) {
  auto t = cube_3d();
  std::vector<std::uint32_t> square = {
      cell_at(t, {"a1", "b1", "c1"}), cell_at(t, {"a1", "b2", "c1"}),
      cell_at(t, {"a2", "b1", "c1"}), cell_at(t, {"a2", "b2", "c1"})};
  auto r = audit_suppression(t, mask_of(t, square), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  for (const auto& a : *r) {
    EXPECT_TRUE(a.exact) << t.label(a.cell);  // each is alone on its line along c
  }
}

TEST(Audit, CubeOfEightCellsIn3DHasTheAlternatingFreedom) {
  auto t = cube_3d();
  // x = a + s t with s = (-1)^(i+j+k); every line through the cube holds two of its cells.
  std::vector<std::uint32_t> cube;
  std::vector<double> value, sign;
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) {
      for (int k = 0; k < 2; ++k) {
        auto cell = cell_at(t, {"a" + std::to_string(i + 1), "b" + std::to_string(j + 1),
                                "c" + std::to_string(k + 1)});
        cube.push_back(cell);
        value.push_back(t.value[cell]);
        sign.push_back((i + j + k) % 2 == 0 ? 1 : -1);
      }
    }
  }
  double t_lo = -kInfinity, t_hi = kInfinity;
  for (std::size_t n = 0; n < cube.size(); ++n) {
    if (sign[n] > 0) {
      t_lo = std::max(t_lo, -value[n]);
    } else {
      t_hi = std::min(t_hi, value[n]);
    }
  }
  auto r = audit_suppression(t, mask_of(t, cube), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  for (std::size_t n = 0; n < cube.size(); ++n) {
    const auto& a = audit_of(*r, cube[n]);
    double lo = value[n] + (sign[n] > 0 ? t_lo : -t_hi);
    double hi = value[n] + (sign[n] > 0 ? t_hi : -t_lo);
    EXPECT_EQ(a.lo, lo) << t.label(cube[n]);
    EXPECT_EQ(a.hi, hi) << t.label(cube[n]);
  }
}

TEST(Audit, SuppressedMarginsAreUnknownsToo) {
  // Hiding r1's cells and its total: the column totals still pin r1 (r2 and r3 are
  // published), so hiding the total does not help.
  auto t = small_2d();
  std::vector<std::uint32_t> hidden = {cell_at(t, {"r1", "c1"}), cell_at(t, {"r1", "c2"}),
                                       cell_at(t, {"r1", "Total"})};
  auto r = audit_suppression(t, mask_of(t, hidden), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  for (const auto& a : *r) EXPECT_TRUE(a.exact) << t.label(a.cell);
}

TEST(Audit, RecomputedTotalsLeaveNothingToSubtract) {
  auto t = small_2d();
  auto cell = cell_at(t, {"r1", "c1"});
  auto p = default_profile();
  p.totals = TotalsPolicy::kRecompute;
  auto r = audit_suppression(t, mask_of(t, {cell}), p);
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)[0].lo, 0);
  EXPECT_EQ((*r)[0].hi, kInfinity);
  EXPECT_TRUE((*r)[0].is_protected);

  // A suppressed margin under kRecompute is still bounded below by its published parts.
  auto total = cell_at(t, {"r1", "Total"});
  auto r2 = audit_suppression(t, mask_of(t, {cell, total}), p);
  ASSERT_TRUE(r2) << r2.error().describe();
  EXPECT_EQ(audit_of(*r2, total).lo, 8 + 20);
  EXPECT_EQ(audit_of(*r2, total).hi, kInfinity);
  // The hidden part is worth 3, short of the 3.1 (10% of 31) the total needs below.
  EXPECT_FALSE(audit_of(*r2, total).is_protected);
}

TEST(Audit, SignedTablesHaveNoFloor) {
  auto t = small_2d();
  std::vector<std::uint32_t> rect = {cell_at(t, {"r1", "c1"}), cell_at(t, {"r1", "c2"}),
                                     cell_at(t, {"r2", "c1"}), cell_at(t, {"r2", "c2"})};
  AuditOptions options;
  options.non_negative = false;
  auto r = audit_suppression(t, mask_of(t, rect), default_profile(), options);
  ASSERT_TRUE(r) << r.error().describe();
  for (const auto& a : *r) {
    EXPECT_EQ(a.lo, -kInfinity);
    EXPECT_EQ(a.hi, kInfinity);
  }
}

TEST(Audit, BadInputIsRefusedWithTheTableAndCellNamed) {
  auto t = small_2d();
  auto cell = cell_at(t, {"r1", "c1"});
  {
    std::vector<std::uint8_t> short_mask(3, 1);
    auto r = audit_suppression(t, short_mask, default_profile());
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("fixture.csv"));
    EXPECT_THAT(r.error().message, HasSubstr("3 entries for 16 cells"));
  }
  {
    auto u = t;
    u.value[cell] = kMissing;
    auto r = audit_suppression(u, mask_of(u, {cell}), default_profile());
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("row=r1, col=c1"));
  }
  {
    auto u = t;
    u.value[cell] = -3;
    auto r = audit_suppression(u, mask_of(u, {cell}), default_profile());
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("negative"));
  }
  {
    // The row total disagrees with its cells by more than the hidden cells can absorb.
    auto u = t;
    u.value[cell_at(u, {"r1", "Total"})] = 5;
    auto r = audit_suppression(u, mask_of(u, {cell_at(u, {"r1", "c1"}), cell_at(u, {"r1", "c2"})}),
                               default_profile());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
    EXPECT_THAT(r.error().message, HasSubstr("contradict"));
    EXPECT_THAT(r.error().message, HasSubstr("fixture.csv"));
  }
  {
    Table unindexed;
    unindexed.name = "raw.csv";
    unindexed.dims = t.dims;
    for (std::size_t c = 0; c < t.size(); ++c) unindexed.add_cell(t.coord(c));
    unindexed.value = t.value;
    auto r = audit_suppression(unindexed, mask_of(t, {cell}), default_profile());
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("index is not built"));
  }
}

// ---- the audit of a table published by someone else ----

TEST(AuditPublished, FlagsExactNarrowAndSmallIntervals) {
  // x11 = 4 + t, x12 = 1 - t, x21 = 6 - t, x22 = 0 + t: t in [0, 1].
  const double v[2][3] = {{4, 1, 50}, {6, 0, 70}};
  auto t =
      cross_table({flat_dimension("row", {"r1", "r2"}), flat_dimension("col", {"c1", "c2", "c3"})},
                  [&](std::span<const std::uint32_t> c) { return v[c[0]][c[1]]; });
  auto c11 = cell_at(t, {"r1", "c1"}), c12 = cell_at(t, {"r1", "c2"});
  auto c21 = cell_at(t, {"r2", "c1"}), c22 = cell_at(t, {"r2", "c2"});
  auto lone = cell_at(t, {"r1", "c3"});
  std::vector<std::uint32_t> hidden = {c11, c12, c21, c22};
  for (auto c : hidden) t.value[c] = kMissing;  // as the marker reads: value unknown
  auto r = audit_published(t, mask_of(t, hidden), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  ASSERT_EQ(r->size(), 4u);
  auto find = [&](std::uint32_t cell) {
    for (const auto& a : *r) {
      if (a.cell == cell) return a;
    }
    ADD_FAILURE();
    return PublishedCellAudit{};
  };
  // [4, 5]: a true 4 would need 5 above, a true 5 would need 4 below; none fits.
  EXPECT_EQ(find(c11).lo, 4);
  EXPECT_EQ(find(c11).hi, 5);
  EXPECT_FALSE(find(c11).protectable);
  EXPECT_TRUE(find(c11).known_small);
  // [0, 1]: a true zero with 1 above is protected.
  EXPECT_EQ(find(c22).hi, 1);
  EXPECT_TRUE(find(c22).protectable);
  EXPECT_FALSE(find(c22).exact);
  // [5, 6] for the 6: too narrow as well.
  EXPECT_FALSE(find(c21).protectable);

  // One more cell hidden alone in its column: exact.
  t.value[lone] = kMissing;
  auto r2 = audit_published(t, mask_of(t, {c11, c12, c21, c22, lone}), default_profile());
  ASSERT_TRUE(r2) << r2.error().describe();
  const auto& last = r2->back();
  EXPECT_EQ(last.cell, lone);
  EXPECT_TRUE(last.exact);
  EXPECT_EQ(last.lo, 50);
  EXPECT_FALSE(last.protectable);
  EXPECT_FALSE(last.known_small);
}

TEST(AuditPublished, WideIntervalsAreProtectable) {
  auto t = small_2d();
  std::vector<std::uint32_t> rect = {cell_at(t, {"r1", "c1"}), cell_at(t, {"r1", "c2"}),
                                     cell_at(t, {"r2", "c1"}), cell_at(t, {"r2", "c2"})};
  for (auto c : rect) t.value[c] = kMissing;
  auto r = audit_published(t, mask_of(t, rect), default_profile());
  ASSERT_TRUE(r) << r.error().describe();
  for (const auto& a : *r) {
    EXPECT_TRUE(a.protectable) << t.label(a.cell) << " [" << a.lo << ", " << a.hi << "]";
    EXPECT_FALSE(a.exact);
  }
  for (const auto& a : *r) {
    if (a.cell == rect[2]) {
      EXPECT_FALSE(a.known_small);  // r2,c1 reaches [4, 15]
    }
  }
}

}  // namespace
}  // namespace enclave::exitcontrol::lp
