#include "exitcontrol/core/kanon.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "exitcontrol/core/profile.hpp"

namespace enclave::exitcontrol {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Owns the bytes a Document points into.
struct Extract {
  std::string bytes;
  csv::Document rows;
};

Extract parse_extract(std::string bytes) {
  Extract out{std::move(bytes), {}};
  auto parsed = csv::parse(out.bytes);
  EXPECT_TRUE(parsed.has_value()) << parsed.error().describe("test.csv");
  out.rows = std::move(parsed).value();
  return out;
}

KAnonOptions options(int k, int l = 1) {
  KAnonOptions o;
  o.k = k;
  o.l = l;
  return o;
}

// Two classes: (30-39, F) on records 2, 4, 6 and (40-49, M) on records 3, 5, 7.
const char* const kTwoClassesOfThree =
    "age,sex,diagnosis\n"
    "30-39,F,J45\n"
    "40-49,M,E11\n"
    "30-39,F,I10\n"
    "40-49,M,E11\n"
    "30-39,F,J45\n"
    "40-49,M,E11\n";

const ExtractColumns kAgeSex{{"age", "sex"}, {"diagnosis"}};

TEST(KAnonymity, PassesExactlyAtKAndFailsAboveIt) {
  const Extract e = parse_extract(kTwoClassesOfThree);

  auto at_k = check_k_anonymity(e.rows, "x.csv", kAgeSex, options(3));
  ASSERT_TRUE(at_k.has_value()) << at_k.error().describe();
  EXPECT_TRUE(at_k->k_pass());
  EXPECT_TRUE(at_k->pass());
  EXPECT_EQ(at_k->rows, 6u);
  EXPECT_EQ(at_k->classes, 2u);
  EXPECT_THAT(at_k->size_histogram, ElementsAre(std::pair<std::uint32_t, std::uint32_t>{3, 2}));
  EXPECT_TRUE(at_k->failing.empty());
  EXPECT_TRUE(at_k->suppressed_records.empty());

  auto above_k = check_k_anonymity(e.rows, "x.csv", kAgeSex, options(4));
  ASSERT_TRUE(above_k.has_value());
  EXPECT_FALSE(above_k->k_pass());
  EXPECT_EQ(above_k->classes_below_k, 2u);
  EXPECT_EQ(above_k->rows_below_k, 6u);
}

TEST(KAnonymity, NamesEveryClassBelowKSmallestFirstWithItsRecords) {
  const Extract e = parse_extract(
      "age,sex,diagnosis\n"
      "30-39,F,J45\n"  // 2
      "40-49,M,E11\n"  // 3
      "30-39,F,I10\n"  // 4
      "50-59,F,C50\n"  // 5
      "30-39,F,J45\n"  // 6
      "40-49,M,E11\n"  // 7
      "30-39,F,J45\n");
  auto report = check_k_anonymity(e.rows, "x.csv", kAgeSex, options(3));
  ASSERT_TRUE(report.has_value());
  EXPECT_FALSE(report->pass());
  EXPECT_THAT(report->size_histogram, ElementsAre(std::pair<std::uint32_t, std::uint32_t>{1, 1},
                                                  std::pair<std::uint32_t, std::uint32_t>{2, 1},
                                                  std::pair<std::uint32_t, std::uint32_t>{4, 1}));
  ASSERT_EQ(report->failing.size(), 2u);
  const EquivalenceClass& smallest = report->failing[0];
  EXPECT_THAT(smallest.values, ElementsAre("50-59", "F"));
  EXPECT_EQ(smallest.label(kAgeSex.quasi_identifiers), "age=50-59, sex=F");
  EXPECT_EQ(smallest.size, 1u);
  EXPECT_TRUE(smallest.below_k);
  EXPECT_THAT(smallest.rows, ElementsAre(5u));
  // The flat accessors say the same without assembling the class.
  EXPECT_EQ(report->failing.class_size(0), 1u);
  EXPECT_EQ(report->failing.value(0, 0), "50-59");
  EXPECT_EQ(report->failing.value(1, 1), "M");
  EXPECT_THAT(report->failing.rows(1), ElementsAre(3u, 7u));
  const EquivalenceClass& next = report->failing[1];
  EXPECT_THAT(next.values, ElementsAre("40-49", "M"));
  EXPECT_THAT(next.rows, ElementsAre(3u, 7u));
  EXPECT_EQ(report->classes_below_k, 2u);
  EXPECT_EQ(report->rows_below_k, 3u);
  EXPECT_THAT(report->suppressed_records, ElementsAre(3u, 5u, 7u));
}

TEST(KAnonymity, ListsAtMostMaxRowsListedButCountsAll) {
  const Extract e = parse_extract(kTwoClassesOfThree);
  KAnonOptions o = options(4);
  o.max_rows_listed = 2;
  auto report = check_k_anonymity(e.rows, "x.csv", kAgeSex, o);
  ASSERT_TRUE(report.has_value());
  ASSERT_EQ(report->failing.size(), 2u);
  EXPECT_THAT(report->failing[0].rows, ElementsAre(2u, 4u));
  EXPECT_EQ(report->failing[0].size, 3u);
  EXPECT_EQ(report->suppressed_records.size(), 6u);
}

TEST(KAnonymity, MissingValueIsItsOwnCategory) {
  const Extract e = parse_extract(
      "age,sex\n"
      "30-39,F\n"
      ",F\n"
      "30-39,F\n"
      ",F\n"
      "30-39,\n");
  auto report = check_k_anonymity(e.rows, "x.csv", {{"age", "sex"}, {}}, options(2));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->classes, 3u);
  EXPECT_THAT(report->missing, ElementsAre(2u, 1u));
  // The rows missing age form a class of two rather than joining (30-39, F); the row missing
  // sex is alone.
  ASSERT_EQ(report->failing.size(), 1u);
  EXPECT_THAT(report->failing[0].values, ElementsAre("30-39", ""));
  EXPECT_EQ(report->failing[0].label({"age", "sex"}), "age=30-39, sex=(missing)");
  EXPECT_THAT(report->failing[0].rows, ElementsAre(6u));
}

TEST(KAnonymity, ValuesDifferingOnlyAfterEightBytesAreDifferentClasses) {
  const Extract e = parse_extract(
      "municipality\n"
      "Sendai-Aoba-ku\nSendai-Aoba-ku\nSendai-Izumi-ku\n"
      "ab\nba\nab\n");
  auto report = check_k_anonymity(e.rows, "x.csv", {{"municipality"}, {}}, options(2));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->classes, 4u);
  ASSERT_EQ(report->failing.size(), 2u);
  EXPECT_EQ(report->failing.value(0, 0), "Sendai-Izumi-ku");
  EXPECT_EQ(report->failing.value(1, 0), "ba");
}

TEST(LDiversity, NamesTheClassWhoseSensitiveValueIsShared) {
  const Extract e = parse_extract(kTwoClassesOfThree);
  auto report = check_k_anonymity(e.rows, "x.csv", kAgeSex, options(3, 2));
  ASSERT_TRUE(report.has_value());
  EXPECT_TRUE(report->k_pass());
  EXPECT_FALSE(report->l_pass());
  EXPECT_EQ(report->classes_below_l, 1u);
  EXPECT_EQ(report->rows_below_l, 3u);
  ASSERT_EQ(report->failing.size(), 1u);
  const EquivalenceClass& c = report->failing[0];
  EXPECT_THAT(c.values, ElementsAre("40-49", "M"));
  EXPECT_FALSE(c.below_k);
  EXPECT_TRUE(c.fails_l());
  EXPECT_THAT(c.distinct, ElementsAre(1u));
  EXPECT_THAT(c.below_l, ElementsAre(true));
  EXPECT_DOUBLE_EQ(c.entropy_l[0], 1.0);
  EXPECT_THAT(report->suppressed_records, ElementsAre(3u, 5u, 7u));

  // Three distinct diagnoses are needed in each class: the other class has two.
  auto l3 = check_k_anonymity(e.rows, "x.csv", kAgeSex, options(3, 3));
  ASSERT_TRUE(l3.has_value());
  EXPECT_EQ(l3->classes_below_l, 2u);
}

TEST(LDiversity, EntropyIsStricterThanDistinctOnSkewedClasses) {
  // Class A: J45 x3, I10 x1 (two distinct values, exp(entropy) = 1.75); class B: J45, I10
  // twice each (exp(entropy) = 2 exactly).
  const Extract e = parse_extract(
      "ward,diagnosis\n"
      "A,J45\nA,J45\nA,J45\nA,I10\n"
      "B,J45\nB,I10\nB,J45\nB,I10\n");
  const ExtractColumns columns{{"ward"}, {"diagnosis"}};
  auto distinct = check_k_anonymity(e.rows, "x.csv", columns, options(2, 2));
  ASSERT_TRUE(distinct.has_value());
  EXPECT_TRUE(distinct->pass());

  KAnonOptions entropy = options(2, 2);
  entropy.l_kind = LDiversityKind::kEntropy;
  auto report = check_k_anonymity(e.rows, "x.csv", columns, entropy);
  ASSERT_TRUE(report.has_value());
  ASSERT_EQ(report->failing.size(), 1u);
  EXPECT_THAT(report->failing[0].values, ElementsAre("A"));
  EXPECT_NEAR(report->failing[0].entropy_l[0], 1.7548, 1e-4);
  EXPECT_THAT(report->failing[0].distinct, ElementsAre(2u));
}

TEST(LDiversity, EachSensitiveAttributeIsJudgedAlone) {
  const Extract e = parse_extract(
      "ward,diagnosis,outcome\n"
      "A,J45,home\nA,I10,home\n"
      "B,J45,home\nB,I10,died\n");
  auto report =
      check_k_anonymity(e.rows, "x.csv", {{"ward"}, {"diagnosis", "outcome"}}, options(2, 2));
  ASSERT_TRUE(report.has_value());
  ASSERT_EQ(report->failing.size(), 1u);
  EXPECT_THAT(report->failing[0].values, ElementsAre("A"));
  EXPECT_THAT(report->failing[0].distinct, ElementsAre(2u, 1u));
  EXPECT_THAT(report->failing[0].below_l, ElementsAre(false, true));
}

TEST(KAnonymity, RefusesUnknownAndDoublyDeclaredColumns) {
  const Extract e = parse_extract(kTwoClassesOfThree);
  auto unknown = check_k_anonymity(e.rows, "out/x.csv", {{"age", "sexx"}, {}}, options(3));
  ASSERT_FALSE(unknown.has_value());
  EXPECT_EQ(unknown.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(unknown.error().message, HasSubstr("out/x.csv"));
  EXPECT_THAT(unknown.error().message, HasSubstr("\"sexx\""));
  EXPECT_THAT(unknown.error().message, HasSubstr("age, sex, diagnosis"));

  auto unknown_sensitive = check_k_anonymity(e.rows, "out/x.csv", {{"age"}, {"icd10"}}, options(3));
  ASSERT_FALSE(unknown_sensitive.has_value());
  EXPECT_THAT(unknown_sensitive.error().message, HasSubstr("\"icd10\" (declared sensitive)"));

  auto both = check_k_anonymity(e.rows, "out/x.csv", {{"age", "sex"}, {"sex"}}, options(3));
  ASSERT_FALSE(both.has_value());
  EXPECT_THAT(both.error().message, HasSubstr("both quasi-identifier and sensitive"));

  auto twice = check_k_anonymity(e.rows, "out/x.csv", {{"age", "age"}, {}}, options(3));
  ASSERT_FALSE(twice.has_value());
  EXPECT_THAT(twice.error().message, HasSubstr("declared twice"));

  auto none = check_k_anonymity(e.rows, "out/x.csv", {{}, {"diagnosis"}}, options(3));
  ASSERT_FALSE(none.has_value());
  EXPECT_THAT(none.error().message, HasSubstr("at least one quasi-identifier"));

  auto k0 = check_k_anonymity(e.rows, "out/x.csv", kAgeSex, options(0));
  ASSERT_FALSE(k0.has_value());
}

TEST(KAnonymity, ParseErrorNamesFileAndRow) {
  auto report = parse_and_check_k_anonymity("age,sex\n30-39,F\n40-49\n", "out/x.csv",
                                            {{"age", "sex"}, {}}, options(1));
  ASSERT_FALSE(report.has_value());
  EXPECT_EQ(report.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(report.error().message, HasSubstr("out/x.csv:3"));
}

TEST(KAnonymity, HeaderOnlyExtractPasses) {
  auto report =
      parse_and_check_k_anonymity("age,sex\n", "x.csv", {{"age"}, {"sex"}}, options(5, 2));
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->rows, 0u);
  EXPECT_EQ(report->classes, 0u);
  EXPECT_TRUE(report->pass());
}

TEST(KAnonymity, OptionsComeFromTheProfile) {
  Profile profile;
  profile.k_anonymity = 5;
  profile.l_diversity = 3;
  const KAnonOptions o = KAnonOptions::from_profile(profile);
  EXPECT_EQ(o.k, 5);
  EXPECT_EQ(o.l, 3);
}

TEST(RecordSuppression, DropsTheRowsOfFailingClassesAndKeepsTheRestByteForByte) {
  const Extract e = parse_extract(
      "age,sex,note\r\n"
      "30-39,F,\"a, b\"\r\n"
      "40-49,M,x\r\n"
      "30-39,F,\"say \"\"hi\"\"\"\r\n"
      "50-59,F,y\r\n"
      "30-39,F,z");
  auto report = check_k_anonymity(e.rows, "x.csv", {{"age", "sex"}, {}}, options(2));
  ASSERT_TRUE(report.has_value());
  const SuppressedExtract safe = suppress_failing_classes(e.rows, report.value());
  EXPECT_EQ(safe.rows_removed, 2u);
  EXPECT_EQ(safe.rows_kept, 3u);
  EXPECT_EQ(safe.csv,
            "age,sex,note\r\n"
            "30-39,F,\"a, b\"\r\n"
            "30-39,F,\"say \"\"hi\"\"\"\r\n"
            "30-39,F,z");

  // What remains passes.
  auto again = parse_and_check_k_anonymity(safe.csv, "safe.csv", {{"age", "sex"}, {}}, options(2));
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->pass());
  EXPECT_EQ(again->rows, 3u);
}

TEST(RecordSuppression, RemovesClassesFailingLDiversityToo) {
  const Extract e = parse_extract(kTwoClassesOfThree);
  auto report = check_k_anonymity(e.rows, "x.csv", kAgeSex, options(3, 2));
  ASSERT_TRUE(report.has_value());
  const SuppressedExtract safe = suppress_failing_classes(e.rows, report.value());
  EXPECT_EQ(safe.rows_removed, 3u);
  EXPECT_EQ(safe.csv,
            "age,sex,diagnosis\n"
            "30-39,F,J45\n"
            "30-39,F,I10\n"
            "30-39,F,J45\n");
}

// The grouping against a plain std::map over the value tuples, on random extracts: small
// cardinalities (many classes of every size) and, with eight columns of up to 20,000 values each,
// a key space beyond 64 bits, which takes the re-densifying path.
void compare_with_map(std::size_t rows, std::size_t columns, std::uint32_t cardinality,
                      unsigned threads) {
  std::mt19937 rng(static_cast<unsigned>(rows * 31 + columns));
  std::string bytes;
  for (std::size_t c = 0; c < columns; ++c) bytes += (c ? ",q" : "q") + std::to_string(c);
  bytes += ",s\n";
  std::vector<std::vector<std::string>> table;
  for (std::size_t r = 0; r < rows; ++r) {
    std::vector<std::string> row;
    for (std::size_t c = 0; c < columns; ++c) {
      // Skewed: the square of a uniform draw favours small values.
      const double u = std::uniform_real_distribution<double>(0, 1)(rng);
      const auto v = static_cast<std::uint32_t>(u * u * cardinality);
      row.push_back(v == 0 ? "" : std::to_string(v));
    }
    row.push_back(std::to_string(rng() % 3));
    for (std::size_t c = 0; c < row.size(); ++c) bytes += (c ? "," : "") + row[c];
    bytes += '\n';
    table.push_back(std::move(row));
  }
  const Extract e = parse_extract(std::move(bytes));
  ExtractColumns declared;
  for (std::size_t c = 0; c < columns; ++c)
    declared.quasi_identifiers.push_back("q" + std::to_string(c));
  declared.sensitive = {"s"};
  KAnonOptions o = options(3, 2);
  o.threads = threads;
  auto report = check_k_anonymity(e.rows, "r.csv", declared, o);
  ASSERT_TRUE(report.has_value());

  std::map<std::vector<std::string>, std::pair<std::uint32_t, std::set<std::string>>> classes;
  for (const auto& row : table) {
    auto& cls = classes[std::vector<std::string>(row.begin(), row.end() - 1)];
    ++cls.first;
    cls.second.insert(row.back());
  }
  EXPECT_EQ(report->classes, classes.size());
  std::map<std::uint32_t, std::uint32_t> histogram;
  std::set<std::vector<std::string>> failing;
  std::size_t below_k = 0;
  for (const auto& [values, cls] : classes) {
    ++histogram[cls.first];
    below_k += cls.first < 3;
    if (cls.first < 3 || cls.second.size() < 2) failing.insert(values);
  }
  EXPECT_EQ(report->classes_below_k, below_k);
  ASSERT_EQ(report->size_histogram.size(), histogram.size());
  for (const auto& [size, count] : report->size_histogram) EXPECT_EQ(histogram[size], count);
  std::set<std::vector<std::string>> reported;
  std::uint32_t previous_size = 0;
  for (std::size_t i = 0; i < report->failing.size(); ++i) {
    const EquivalenceClass c = report->failing[i];
    reported.insert(c.values);
    EXPECT_LE(previous_size, c.size);
    previous_size = c.size;
    EXPECT_EQ(classes[c.values].first, c.size);
    EXPECT_EQ(classes[c.values].second.size(), c.distinct[0]);
  }
  EXPECT_EQ(reported, failing);
}

// Above 2 x 65,536 rows the coding pass splits the rows between threads and merges their
// category ids; the report must not depend on it.
TEST(KAnonymity, ThreadCountDoesNotChangeTheReport) {
  std::mt19937 rng(7);
  std::string bytes = "age,ward,diagnosis\n";
  for (int r = 0; r < 140'000; ++r) {
    bytes += std::to_string(rng() % 90) + ",w" + std::to_string(rng() % 40) + ",d" +
             std::to_string(rng() % 4) + "\n";
  }
  const Extract e = parse_extract(std::move(bytes));
  const ExtractColumns columns{{"age", "ward"}, {"diagnosis"}};
  KAnonOptions one = options(45, 4);
  one.threads = 1;
  KAnonOptions two = one;
  two.threads = 2;
  auto a = check_k_anonymity(e.rows, "x.csv", columns, one);
  auto b = check_k_anonymity(e.rows, "x.csv", columns, two);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(a->classes, 3600u);
  EXPECT_EQ(a->classes, b->classes);
  EXPECT_EQ(a->size_histogram, b->size_histogram);
  EXPECT_GT(a->failing.size(), 0u);
  ASSERT_EQ(a->failing.size(), b->failing.size());
  for (std::size_t i = 0; i < a->failing.size(); ++i) {
    EXPECT_EQ(a->failing[i].values, b->failing[i].values);
    EXPECT_EQ(a->failing[i].rows, b->failing[i].rows);
    EXPECT_EQ(a->failing[i].distinct, b->failing[i].distinct);
  }
  EXPECT_EQ(a->suppressed_records, b->suppressed_records);
}

TEST(KAnonymity, AgreesWithAMapOnRandomExtracts) {
  compare_with_map(3000, 3, 6, 1);
  compare_with_map(3000, 3, 6, 2);
  compare_with_map(4000, 8, 20000, 2);
}

}  // namespace
}  // namespace enclave::exitcontrol
