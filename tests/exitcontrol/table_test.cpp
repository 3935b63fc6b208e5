#include "exitcontrol/core/table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace enclave::exitcontrol {
namespace {

TEST(TableKind, NamesRoundTrip) {
  for (TableKind kind :
       {TableKind::kFrequency, TableKind::kMagnitude, TableKind::kExtract, TableKind::kModel}) {
    EXPECT_EQ(table_kind_from_name(table_kind_name(kind)), kind);
  }
  EXPECT_EQ(table_kind_from_name("Frequency"), std::nullopt);
  EXPECT_EQ(table_kind_from_name(""), std::nullopt);
}

TEST(Dimension, InternReturnsTheSameIdForTheSameLabel) {
  Dimension d;
  d.name = "region";
  auto miyagi = d.intern("宮城県");
  auto iwate = d.intern("岩手県");
  EXPECT_NE(miyagi, iwate);
  EXPECT_EQ(d.intern("宮城県"), miyagi);
  EXPECT_EQ(d.find("岩手県"), iwate);
  EXPECT_EQ(d.find("秋田県"), std::nullopt);
  EXPECT_EQ(d.categories.size(), 2u);
  EXPECT_EQ(d.parent[miyagi], -1);
}

TEST(Dimension, SetParentRefusesCyclesAndSecondParents) {
  Dimension d;
  d.name = "region";
  auto total = d.intern("Total");
  auto tohoku = d.intern("Tohoku");
  auto miyagi = d.intern("Miyagi");
  auto kanto = d.intern("Kanto");
  EXPECT_TRUE(d.set_parent(tohoku, total));
  EXPECT_TRUE(d.set_parent(miyagi, tohoku));
  EXPECT_TRUE(d.set_parent(miyagi, tohoku));  // the same link again is no change
  EXPECT_EQ(d.children[tohoku].size(), 1u);
  EXPECT_FALSE(d.set_parent(miyagi, kanto));  // already under Tohoku
  EXPECT_FALSE(d.set_parent(total, miyagi));  // Total -> Miyagi -> Tohoku -> Total
  EXPECT_FALSE(d.set_parent(kanto, kanto));
  EXPECT_EQ(d.parent[total], -1);
  EXPECT_FALSE(d.is_leaf(tohoku));
  EXPECT_TRUE(d.is_leaf(miyagi));
}

TEST(Dimension, LeavesWalkTheWholeSubtree) {
  Dimension d;
  d.name = "region";
  auto total = d.intern("Total");
  auto tohoku = d.intern("Tohoku");
  auto aomori = d.intern("Aomori");
  auto miyagi = d.intern("Miyagi");
  auto tokyo = d.intern("Tokyo");
  ASSERT_TRUE(d.set_parent(tohoku, total));
  ASSERT_TRUE(d.set_parent(tokyo, total));
  ASSERT_TRUE(d.set_parent(aomori, tohoku));
  ASSERT_TRUE(d.set_parent(miyagi, tohoku));
  EXPECT_EQ(d.leaves(total), (std::vector<std::uint32_t>{aomori, miyagi, tokyo}));
  EXPECT_EQ(d.leaves(tohoku), (std::vector<std::uint32_t>{aomori, miyagi}));
  EXPECT_EQ(d.leaves(tokyo), (std::vector<std::uint32_t>{tokyo}));
}

// region: Total > {Tohoku > {Aomori, Miyagi}, Tokyo}; sex: Total > {F, M}. Every combination.
struct RegionBySex {
  Table table;
  std::uint32_t r_total, tohoku, aomori, miyagi, tokyo, s_total, female, male;

  RegionBySex() {
    table.dims.resize(2);
    auto& region = table.dims[0];
    region.name = "region";
    r_total = region.intern("Total");
    tohoku = region.intern("Tohoku");
    aomori = region.intern("Aomori");
    miyagi = region.intern("Miyagi");
    tokyo = region.intern("Tokyo");
    region.set_parent(tohoku, r_total);
    region.set_parent(tokyo, r_total);
    region.set_parent(aomori, tohoku);
    region.set_parent(miyagi, tohoku);
    auto& sex = table.dims[1];
    sex.name = "sex";
    s_total = sex.intern("Total");
    female = sex.intern("F");
    male = sex.intern("M");
    sex.set_parent(female, s_total);
    sex.set_parent(male, s_total);
  }
  std::size_t add(std::uint32_t r, std::uint32_t s) {
    std::uint32_t c[] = {r, s};
    return table.add_cell(c, {static_cast<std::uint32_t>(table.size() + 2), 3});
  }
  std::size_t at(std::uint32_t r, std::uint32_t s) const {
    std::uint32_t c[] = {r, s};
    auto found = table.find(c);
    EXPECT_TRUE(found);
    return found.value_or(0);
  }
};

TEST(Table, AddCellStartsWithEveryStatisticMissing) {
  RegionBySex t;
  auto cell = t.add(t.miyagi, t.female);
  EXPECT_EQ(t.table.size(), 1u);
  EXPECT_TRUE(is_missing(t.table.value[cell]));
  EXPECT_TRUE(is_missing(t.table.contributors[cell]));
  EXPECT_TRUE(is_missing(t.table.top1[cell]));
  EXPECT_TRUE(is_missing(t.table.insurers[cell]));
  EXPECT_EQ(t.table.origin[cell].row, 2u);
  EXPECT_EQ(t.table.label(cell), "region=Miyagi, sex=F");
  EXPECT_FALSE(t.table.is_margin(cell));
}

TEST(Table, FindBeforeBuildIndexFindsNothing) {
  RegionBySex t;
  t.add(t.miyagi, t.female);
  std::uint32_t c[] = {t.miyagi, t.female};
  EXPECT_EQ(t.table.find(c), std::nullopt);
  EXPECT_EQ(t.table.build_index(), std::nullopt);
  EXPECT_EQ(t.table.find(c), 0u);
  std::uint32_t absent[] = {t.tokyo, t.female};
  EXPECT_EQ(t.table.find(absent), std::nullopt);
  std::uint32_t too_short[] = {t.miyagi};
  EXPECT_EQ(t.table.find(too_short), std::nullopt);
}

TEST(Table, BuildIndexReportsTheFirstDuplicate) {
  RegionBySex t;
  t.add(t.miyagi, t.female);
  t.add(t.tokyo, t.female);
  t.add(t.miyagi, t.female);
  t.add(t.tokyo, t.female);
  auto dup = t.table.build_index();
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->first, 0u);
  EXPECT_EQ(dup->second, 2u);
  EXPECT_EQ(t.at(t.miyagi, t.female), 0u);  // the index keeps the first
}

TEST(Table, HierarchicalSubtotalsGiveOneEquationPerMarginAndDimension) {
  RegionBySex t;
  for (auto r : {t.r_total, t.tohoku, t.aomori, t.miyagi, t.tokyo}) {
    for (auto s : {t.s_total, t.female, t.male}) t.add(r, s);
  }
  ASSERT_EQ(t.table.build_index(), std::nullopt);
  EXPECT_TRUE(t.table.is_margin(t.at(t.tohoku, t.female)));
  EXPECT_TRUE(t.table.is_margin(t.at(t.aomori, t.s_total)));
  EXPECT_FALSE(t.table.is_margin(t.at(t.aomori, t.male)));

  auto eqs = t.table.equations();
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::vector<std::uint32_t>> by_total;
  for (const auto& e : eqs) {
    EXPECT_TRUE(by_total.emplace(std::pair{e.total, e.dimension}, e.parts).second);
  }
  // Region margins (Total, Tohoku) x 3 sexes, and sex margin x 5 regions.
  EXPECT_EQ(eqs.size(), 2u * 3 + 5);
  auto parts = [&](std::uint32_t r, std::uint32_t s, std::uint32_t d) {
    auto it = by_total.find({static_cast<std::uint32_t>(t.at(r, s)), d});
    EXPECT_NE(it, by_total.end());
    return it == by_total.end() ? std::vector<std::uint32_t>{} : it->second;
  };
  auto id = [&](std::uint32_t r, std::uint32_t s) {
    return static_cast<std::uint32_t>(t.at(r, s));
  };
  // The grand total splits one level at a time: into Tohoku and Tokyo, not into prefectures.
  EXPECT_EQ(parts(t.r_total, t.s_total, 0),
            (std::vector<std::uint32_t>{id(t.tohoku, t.s_total), id(t.tokyo, t.s_total)}));
  EXPECT_EQ(parts(t.tohoku, t.male, 0),
            (std::vector<std::uint32_t>{id(t.aomori, t.male), id(t.miyagi, t.male)}));
  EXPECT_EQ(parts(t.tohoku, t.s_total, 1),
            (std::vector<std::uint32_t>{id(t.tohoku, t.female), id(t.tohoku, t.male)}));
  EXPECT_EQ(parts(t.miyagi, t.s_total, 1),
            (std::vector<std::uint32_t>{id(t.miyagi, t.female), id(t.miyagi, t.male)}));
}

TEST(Table, EquationsWithAnAbsentPartAreLeftOut) {
  RegionBySex t;
  for (auto r : {t.r_total, t.tohoku, t.aomori, t.miyagi, t.tokyo}) t.add(r, t.s_total);
  t.add(t.aomori, t.female);  // Aomori/M absent: no sex equation for Aomori
  ASSERT_EQ(t.table.build_index(), std::nullopt);
  auto eqs = t.table.equations();
  ASSERT_EQ(eqs.size(), 2u);  // Total = Tohoku + Tokyo; Tohoku = Aomori + Miyagi
  for (const auto& e : eqs) EXPECT_EQ(e.dimension, 0u);
}

// 3 dimensions of 2,000 categories and a few thousand cells: far too sparse for a direct
// array, so the index hashes.
TEST(Table, SparseIndexFindsCellsAndDuplicates) {
  Table table;
  table.dims.resize(3);
  for (int d = 0; d < 3; ++d) {
    table.dims[d].name = "d" + std::to_string(d);
    for (int c = 0; c < 2000; ++c) table.dims[d].intern(std::to_string(c));
  }
  std::set<std::vector<std::uint32_t>> added;
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<std::uint32_t>((state >> 33) % 2000);
  };
  while (added.size() < 5000) {
    std::vector<std::uint32_t> c = {next(), next(), next()};
    if (added.insert(c).second) table.add_cell(c);
  }
  ASSERT_EQ(table.build_index(), std::nullopt);
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    ASSERT_EQ(table.find(table.coord(cell)), cell);
  }
  std::size_t absent_found = 0;
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::uint32_t> c = {next(), next(), next()};
    if (!added.contains(c) && table.find(c)) ++absent_found;
  }
  EXPECT_EQ(absent_found, 0u);

  std::vector<std::uint32_t> again(table.coord(17).begin(), table.coord(17).end());
  table.add_cell(again);
  auto dup = table.build_index();
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->first, 17u);
  EXPECT_EQ(dup->second, table.size() - 1);
}

TEST(Table, CategoryAddedAfterBuildIndexHasNoCell) {
  RegionBySex t;
  t.add(t.miyagi, t.female);
  ASSERT_EQ(t.table.build_index(), std::nullopt);
  std::uint32_t later = t.table.dims[0].intern("Akita");
  std::uint32_t c[] = {later, t.female};
  EXPECT_EQ(t.table.find(c), std::nullopt);
}

TEST(Table, MillionCellIndexFindsEveryCell) {
  Table table;
  table.dims.resize(3);
  const std::uint32_t sizes[] = {100, 100, 100};
  for (int d = 0; d < 3; ++d) {
    table.dims[d].name = "d" + std::to_string(d);
    for (std::uint32_t c = 0; c < sizes[d]; ++c) table.dims[d].intern(std::to_string(c));
  }
  for (std::uint32_t a = 0; a < 100; ++a) {
    for (std::uint32_t b = 0; b < 100; ++b) {
      for (std::uint32_t c = 0; c < 100; ++c) {
        std::uint32_t xyz[] = {a, b, c};
        table.add_cell(xyz);
      }
    }
  }
  ASSERT_EQ(table.build_index(), std::nullopt);
  for (std::size_t cell = 0; cell < table.size(); cell += 997) {
    EXPECT_EQ(table.find(table.coord(cell)), cell);
  }
  EXPECT_TRUE(table.equations().empty());  // no margins
}

}  // namespace
}  // namespace enclave::exitcontrol
