// Rounding as the alternative to suppression: controlled rounding keeps the table additive
// with every cell next to its true value; where none exists, inner cells round and margins
// are recomputed.
#include <gtest/gtest.h>

#include <random>

#include "exitcontrol/lp/rounding.hpp"
#include "tests/exitcontrol/table_fixtures.hpp"

namespace enclave::exitcontrol::lp {
namespace {

// An r x c frequency table with row, column and grand totals.
Table grid(const std::vector<std::vector<double>>& inner) {
  std::vector<std::string> rows, cols;
  for (std::size_t i = 0; i < inner.size(); ++i) rows.push_back("r" + std::to_string(i));
  for (std::size_t j = 0; j < inner[0].size(); ++j) cols.push_back("c" + std::to_string(j));
  return testing::cross_table(
      {testing::flat_dimension("row", rows), testing::flat_dimension("col", cols)},
      [&](std::span<const std::uint32_t> at) { return inner[at[0]][at[1]]; }, "grid.csv");
}

Profile with_base(double base) {
  Profile p;
  p.name = "test";
  p.rounding_base = base;
  return p;
}

void expect_additive(const Table& t, const std::vector<double>& values) {
  for (const auto& e : t.equations()) {
    double sum = 0;
    for (auto part : e.parts) sum += values[part];
    EXPECT_NEAR(values[e.total], sum, 1e-9) << t.label(e.total);
  }
}

TEST(Rounding, ControlledRoundingKeepsTheTableAdditiveAndAdjacent) {
  auto t = grid({{3, 12, 27}, {8, 41, 6}, {14, 2, 33}});
  auto r = round_table(t, with_base(5));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_TRUE(r->controlled);
  EXPECT_TRUE(r->proven_optimal);
  for (std::size_t c = 0; c < t.size(); ++c) {
    EXPECT_NEAR(std::fmod(r->values[c], 5), 0, 1e-9) << t.label(c);
    EXPECT_LT(std::abs(r->values[c] - t.value[c]), 5) << t.label(c);
  }
  expect_additive(t, r->values);
  EXPECT_GT(r->cells_changed, 0u);
  EXPECT_LT(r->max_deviation, 5);
}

TEST(Rounding, RandomTwoDimensionalTablesAlwaysHaveAControlledRounding) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const int rows = 2 + static_cast<int>(rng() % 5), cols = 2 + static_cast<int>(rng() % 5);
    std::vector<std::vector<double>> inner(rows, std::vector<double>(cols));
    for (auto& row : inner) {
      for (auto& v : row) v = static_cast<double>(rng() % 60);
    }
    auto t = grid(inner);
    auto r = round_table(t, with_base(10));
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_TRUE(r->controlled) << "trial " << trial;
    expect_additive(t, r->values);
    for (std::size_t c = 0; c < t.size(); ++c) {
      EXPECT_LT(std::abs(r->values[c] - t.value[c]), 10);
    }
  }
}

TEST(Rounding, MultiplesStayAsTheyAre) {
  auto t = grid({{10, 20}, {30, 0}});
  auto r = round_table(t, with_base(5));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->cells_changed, 0u);
  for (std::size_t c = 0; c < t.size(); ++c) EXPECT_EQ(r->values[c], t.value[c]);
}

TEST(Rounding, AMissingCellFallsBackToInnerRoundingWithRecomputedMargins) {
  auto t = grid({{3, 12}, {8, 41}});
  const auto unknown = testing::cell_at(t, {"r0", "c0"});
  t.value[unknown] = kMissing;  // no MILP over an incomplete table
  auto r = round_table(t, with_base(5));
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_FALSE(r->controlled);
  EXPECT_EQ(r->values[testing::cell_at(t, {"r1", "c1"})], 40);  // 41 to the nearest multiple
  // 8 is under the threshold: 5 or 10 at random; the margin is recomputed from it.
  const double small = r->values[testing::cell_at(t, {"r1", "c0"})];
  EXPECT_TRUE(small == 5 || small == 10) << small;
  EXPECT_EQ(r->values[testing::cell_at(t, {"r1", "Total"})], small + 40);
  EXPECT_TRUE(is_missing(r->values[unknown]));  // stays unknown
  EXPECT_TRUE(is_missing(r->values[testing::cell_at(t, {"Total", "Total"})]));
  EXPECT_NE(rounding_summary(*r).find("margins recomputed"), std::string::npos);
}

TEST(Rounding, RefusesWithoutABaseAndOnNegativeValues) {
  auto t = grid({{3, 12}, {8, 41}});
  Profile none;
  none.name = "acro-default";
  auto r = round_table(t, none);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("rounding_base"), std::string::npos);
  t.value[1] = -4;
  auto n = round_table(t, with_base(5));
  ASSERT_FALSE(n);
  EXPECT_NE(n.error().message.find("non-negative"), std::string::npos);
}

TEST(Rounding, SmallCellsGoUpOrDownAtRandomNotToTheNearerMultiple) {
  // 2 x 100 small cells of 2 with base 5: to the nearer multiple every one would be 0. Random
  // rounding sends about 40% up. One cell missing forces the inner-cell rounding.
  std::vector<std::vector<double>> inner(2, std::vector<double>(100, 2));
  auto t = grid(inner);
  t.value[testing::cell_at(t, {"r0", "c0"})] = kMissing;
  auto r = round_table(t, with_base(5));
  ASSERT_TRUE(r) << r.error().describe();
  int up = 0, small = 0;
  for (std::size_t c = 0; c < t.size(); ++c) {
    if (t.is_margin(c) || is_missing(t.value[c])) continue;
    ++small;
    up += r->values[c] == 5;
  }
  EXPECT_GT(up, small * 20 / 100) << up << " of " << small;
  EXPECT_LT(up, small * 60 / 100) << up << " of " << small;
}

}  // namespace
}  // namespace enclave::exitcontrol::lp
