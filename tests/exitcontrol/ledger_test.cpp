// The release ledger and the differencing audit: the classic cases where two individually safe
// releases subtract to a small group, and the LP case where only a combination exposes a cell.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "exitcontrol/service/differencing.hpp"
#include "exitcontrol/service/ledger.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

using Kind = DifferencingFinding::Kind;
constexpr double M = kMissing;

// A table given as dimension categories (index 0 is the total where total is true) and cells
// as (coordinates, published, true value).
struct Cell {
  std::vector<std::uint32_t> at;
  double published, value;
};

ReleasedTable make_table(std::string name, std::vector<ReleasedTable::Dim> dims,
                         std::vector<Cell> cells,
                         std::map<std::string, std::vector<std::string>> filter = {}) {
  ReleasedTable t;
  t.name = std::move(name);
  t.population = "claims-2023";
  t.measure = "count";
  t.total_label = "Total";
  t.dims = std::move(dims);
  t.filter = std::move(filter);
  for (auto& c : cells) {
    t.coords.insert(t.coords.end(), c.at.begin(), c.at.end());
    t.published.push_back(c.published);
    t.value.push_back(c.value);
    t.contributors.push_back(c.value);
  }
  return t;
}

// A flat dimension under a Total (category 0).
ReleasedTable::Dim flat(std::string name, std::vector<std::string> categories) {
  ReleasedTable::Dim d{std::move(name), {"Total"}, {-1}};
  for (auto& c : categories) {
    d.categories.push_back(std::move(c));
    d.parent.push_back(0);
  }
  return d;
}

Profile ndb_like() {
  Profile p;
  p.threshold = 10;
  p.zeros = ZerosPolicy::kAllowed;
  return p;
}

std::vector<const DifferencingFinding*> of_kind(const DifferencingReport& r, Kind kind) {
  std::vector<const DifferencingFinding*> out;
  for (const auto& f : r.findings) {
    if (f.kind == kind) out.push_back(&f);
  }
  return out;
}

TEST(Differencing, TwoReleasesThatDifferByOneSmallGroup) {
  // Release 1: patients per prefecture, all ages. New: the same for ages 20 and over.
  // Each is safe alone; Miyagi's difference is 3 patients under 20.
  auto all_ages = make_table("by-prefecture.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                             {{{0}, 250, 250}, {{1}, 120, 120}, {{2}, 130, 130}});
  auto adults = make_table("by-prefecture-adults.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                           {{{0}, 227, 227}, {{1}, 117, 117}, {{2}, 110, 110}},
                           {{"age", {"20-39", "40-64", "65+"}}});
  auto report = audit_differencing(adults, std::span(&all_ages, 1), ndb_like());
  ASSERT_TRUE(report) << report.error().describe();
  auto found = of_kind(*report, Kind::kDifference);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(found[0]->disclosive);
  EXPECT_EQ(found[0]->lo, 3);
  EXPECT_EQ(found[0]->release, "by-prefecture.csv");
  EXPECT_NE(found[0]->group.find("prefecture=Miyagi"), std::string::npos) << found[0]->group;
  EXPECT_NE(found[0]->group.find("age=(not listed)"), std::string::npos) << found[0]->group;
  EXPECT_TRUE(report->disclosive());
  // Iwate's 20 and Total's 23 are large enough: not findings.
}

TEST(Differencing, SafeWhenEveryDifferenceIsLarge) {
  auto all_ages = make_table("a.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                             {{{0}, 250, 250}, {{1}, 120, 120}, {{2}, 130, 130}});
  auto adults = make_table("b.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                           {{{0}, 200, 200}, {{1}, 100, 100}, {{2}, 100, 100}}, {{"age", {"20+"}}});
  auto report = audit_differencing(adults, std::span(&all_ages, 1), ndb_like());
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->disclosive());
  EXPECT_GE(report->pairs, 3u);
}

TEST(Differencing, ZeroDifferenceFollowsTheZerosPolicy) {
  auto a = make_table("a.csv", {flat("prefecture", {"Miyagi"})}, {{{1}, 40, 40}});
  auto b = make_table("b.csv", {flat("prefecture", {"Miyagi"})}, {{{1}, 40, 40}}, {{"sex", {"F"}}});
  Profile allowed = ndb_like();
  auto r1 = audit_differencing(b, std::span(&a, 1), allowed);
  ASSERT_TRUE(r1);
  EXPECT_TRUE(r1->findings.empty());
  Profile acro = allowed;
  acro.zeros = ZerosPolicy::kDisclosive;
  auto r2 = audit_differencing(b, std::span(&a, 1), acro);
  ASSERT_TRUE(r2);
  ASSERT_EQ(of_kind(*r2, Kind::kDifference).size(), 1u);
  EXPECT_TRUE(r2->disclosive());
}

TEST(Differencing, HiddenCellPublishedByAnEarlierReleaseIsRevealed) {
  auto earlier = make_table("old.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                            {{{1}, 12, 12}, {{2}, 30, 30}});
  auto candidate = make_table("new.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                              {{{0}, 42, 42}, {{1}, M, 12}, {{2}, M, 30}});
  auto report = audit_differencing(candidate, std::span(&earlier, 1), ndb_like());
  ASSERT_TRUE(report);
  auto found = of_kind(*report, Kind::kRevealed);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0]->release, "old.csv");
  EXPECT_TRUE(report->disclosive());
}

TEST(Differencing, HierarchiesMergeAcrossReleases) {
  // The earlier release shows Tohoku as a subtotal of Miyagi and Iwate; the new one shows
  // Tohoku and Miyagi only: Tohoku minus Miyagi is Iwate, 4 patients.
  ReleasedTable::Dim region{"region", {"Total", "Tohoku", "Miyagi", "Iwate"}, {-1, 0, 1, 1}};
  auto earlier = make_table("regions.csv", {region}, {{{1}, M, 104}, {{2}, M, 100}, {{3}, M, 4}});
  ReleasedTable::Dim coarse{"region", {"Total", "Tohoku", "Miyagi"}, {-1, 0, 0}};
  auto candidate = make_table("tohoku.csv", {coarse}, {{{1}, 104, 104}});
  auto report = audit_differencing(candidate, std::span(&earlier, 1), ndb_like());
  ASSERT_TRUE(report);
  EXPECT_TRUE(of_kind(*report, Kind::kDifference).empty());  // nothing published to subtract
  // Now publish Miyagi in an earlier release.
  auto miyagi = make_table("miyagi.csv", {region}, {{{2}, 100, 100}});
  auto report2 = audit_differencing(candidate, std::span(&miyagi, 1), ndb_like());
  ASSERT_TRUE(report2);
  auto found = of_kind(*report2, Kind::kDifference);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0]->lo, 4);
  EXPECT_NE(found[0]->group.find("region=Iwate"), std::string::npos) << found[0]->group;
}

TEST(Differencing, ConflictingHierarchiesAreRefused) {
  ReleasedTable::Dim a{"region", {"Total", "Tohoku", "Miyagi"}, {-1, 0, 1}};
  ReleasedTable::Dim b{"region", {"Total", "Kanto", "Miyagi"}, {-1, 0, 1}};
  auto t1 = make_table("one.csv", {a}, {{{2}, 50, 50}});
  auto t2 = make_table("two.csv", {b}, {{{2}, 50, 50}});
  auto report = audit_differencing(t2, std::span(&t1, 1), ndb_like());
  ASSERT_FALSE(report);
  EXPECT_NE(report.error().message.find("Miyagi"), std::string::npos);
  EXPECT_NE(report.error().message.find("one.csv"), std::string::npos);
}

TEST(Differencing, TheLpFindsACellOnlyACombinationExposes) {
  // The new table hides all four inner cells of region x sex (margins published): within the
  // table each hidden cell keeps a wide interval. An earlier release published region A's men
  // by age band (young 1, old 2) without margins: together they pin A/M to exactly 3.
  auto region = flat("region", {"A", "B"});
  auto sex = flat("sex", {"M", "F"});
  auto candidate = make_table("new.csv", {region, sex},
                              {{{0, 0}, 100, 100},
                               {{1, 0}, 40, 40},
                               {{2, 0}, 60, 60},
                               {{0, 1}, 50, 50},
                               {{0, 2}, 50, 50},
                               {{1, 1}, M, 3},
                               {{1, 2}, M, 37},
                               {{2, 1}, M, 47},
                               {{2, 2}, M, 13}});
  auto earlier = make_table("men-in-a-by-age.csv", {flat("age", {"young", "old"})},
                            {{{1}, 1, 1}, {{2}, 2, 2}}, {{"region", {"A"}}, {"sex", {"M"}}});
  auto alone = audit_differencing(candidate, {}, ndb_like());
  ASSERT_TRUE(alone);
  EXPECT_TRUE(alone->findings.empty());
  auto report = audit_differencing(candidate, std::span(&earlier, 1), ndb_like());
  ASSERT_TRUE(report) << report.error().describe();
  auto narrowed = of_kind(*report, Kind::kNarrowed);
  ASSERT_FALSE(narrowed.empty());
  bool am = false;
  for (const auto* f : narrowed) {
    if (f->cell == 5u) {  // A/M
      am = true;
      EXPECT_DOUBLE_EQ(f->lo, 3);
      EXPECT_DOUBLE_EQ(f->hi, 3);
    }
  }
  EXPECT_TRUE(am);
  EXPECT_GT(report->atoms, 0u);
  EXPECT_TRUE(report->disclosive());
}

TEST(Differencing, TooManyCombinationsIsReportedNotGuessed) {
  auto region = flat("region", {"A", "B"});
  auto t1 = make_table("one.csv", {region}, {{{0}, 30, 30}, {{1}, M, 3}, {{2}, M, 27}});
  auto t2 = make_table("two.csv", {region}, {{{0}, 30, 30}});
  DifferencingOptions options;
  options.max_atoms = 1;
  auto report = audit_differencing(t1, std::span(&t2, 1), ndb_like(), options);
  ASSERT_TRUE(report);
  auto found = of_kind(*report, Kind::kNotAudited);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_FALSE(found[0]->disclosive);
}

TEST(Ledger, RecordsListsAndReturnsComparableReleases) {
  testing::TempDir dir;
  auto ledger = Ledger::open(dir.path() / "ledger.db");
  ASSERT_TRUE(ledger) << ledger.error().describe();
  auto t = make_table("by-prefecture.csv", {flat("prefecture", {"Miyagi", "Iwate"})},
                      {{{0}, 250, 250}, {{1}, M, 8}, {{2}, 242, 242}});
  auto r = ledger->record("P-2026-001", t, std::string(64, 'a'), "req-1");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ(r->suppressed, 1u);
  auto again = ledger->record("P-2026-001", t, std::string(64, 'a'), "req-2");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  auto other = t;
  other.population = "claims-2024";
  ASSERT_TRUE(ledger->record("P-2026-001", other, std::string(64, 'b'), ""));
  ASSERT_TRUE(ledger->record("P-2026-002", t, std::string(64, 'a'), ""));

  auto list = ledger->list("P-2026-001");
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 2u);
  auto comparable = ledger->comparable("P-2026-001", "claims-2023", "count");
  ASSERT_TRUE(comparable);
  ASSERT_EQ(comparable->size(), 1u);
  const auto& back = (*comparable)[0];
  EXPECT_EQ(back.name, "by-prefecture.csv");
  EXPECT_TRUE(is_missing(back.published[1]));
  EXPECT_EQ(back.contributors[1], 8);      // known inside the enclave
  EXPECT_TRUE(is_missing(back.value[1]));  // the ledger keeps no true values
  EXPECT_EQ(back.label(1), "prefecture=Miyagi");
}

TEST(Ledger, ACorruptEntryIsNamed) {
  nlohmann::json j = to_json(make_table("x.csv", {flat("region", {"A"})}, {{{1}, 5, 5}}));
  j["coords"] = {7};
  auto back = released_from_json(j);
  ASSERT_FALSE(back);
  EXPECT_EQ(back.error().code, Errc::kCorrupt);
  EXPECT_NE(back.error().message.find("x.csv"), std::string::npos);
}

}  // namespace
}  // namespace enclave::exitcontrol
