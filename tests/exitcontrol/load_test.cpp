// The sidecar parser, the loader (long and wide form) and the safe-output writer, on the
// example tables under docs/examples/exitcontrol and on small hand-written inputs.
#include "exitcontrol/core/load.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/safe_output.hpp"

namespace enclave::exitcontrol {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kExamples =
    std::filesystem::path(ENCLAVE_SOURCE_DIR) / "docs/examples/exitcontrol";

std::string read(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TableMeta meta_ok(std::string_view toml) {
  auto meta = parse_meta(toml, "t.csv.meta.toml");
  EXPECT_TRUE(meta) << (meta ? "" : meta.error().message);
  return meta ? std::move(meta).value() : TableMeta{};
}

std::string meta_error(std::string_view toml) {
  auto meta = parse_meta(toml, "t.csv.meta.toml");
  EXPECT_FALSE(meta) << "accepted";
  return meta ? std::string() : meta.error().message;
}

LoadedTable load_ok(std::string csv, const TableMeta& meta, const LoadOptions& options = {}) {
  auto t = load_table(std::move(csv), meta, "t.csv", options);
  EXPECT_TRUE(t) << (t ? "" : t.error().message);
  return t ? std::move(t).value() : LoadedTable{};
}

std::string load_error(std::string csv, const TableMeta& meta) {
  auto t = load_table(std::move(csv), meta, "t.csv");
  EXPECT_FALSE(t) << "loaded";
  return t ? std::string() : t.error().message;
}

constexpr std::string_view kRegionAgeMeta = R"(
kind = "frequency"
value = "patients"
[[dimension]]
name = "region"
[dimension.hierarchy]
"Tohoku" = ["Aomori", "Miyagi"]
[[dimension]]
name = "age"
)";

std::optional<std::size_t> cell(const Table& t, std::initializer_list<std::string_view> labels) {
  std::vector<std::uint32_t> coords;
  std::size_t d = 0;
  for (auto label : labels) {
    auto id = t.dims[d++].find(label);
    if (!id) return std::nullopt;
    coords.push_back(*id);
  }
  return t.find(coords);
}

// --- sidecar ---

TEST(Meta, FullSidecar) {
  auto m = meta_ok(R"(
kind = "magnitude"
layout = "long"
total_label = "計"
value = "cost"
contributors = "n"
top1 = "max1"
top2 = "max2"
institutions = "n_inst"
insurers = "n_ins"
population = "ndb-2023-outpatients"
[[dimension]]
name = "region"
geography = "prefecture"
[dimension.hierarchy]
"東北" = ["青森県", "宮城県"]
[[dimension]]
name = "age"
[filter]
sex = ["F"]
)");
  EXPECT_EQ(m.kind, TableKind::kMagnitude);
  EXPECT_EQ(m.total_label, "計");
  EXPECT_EQ(m.value_column, "cost");
  EXPECT_EQ(m.top2_column, "max2");
  EXPECT_EQ(m.insurers_column, "n_ins");
  ASSERT_EQ(m.dimensions.size(), 2u);
  EXPECT_EQ(m.dimensions[0].geography, "prefecture");
  EXPECT_EQ(m.dimensions[0].hierarchy.at("東北"), (std::vector<std::string>{"青森県", "宮城県"}));
  EXPECT_EQ(m.filter.at("sex"), (std::vector<std::string>{"F"}));
  EXPECT_EQ(m.population, "ndb-2023-outpatients");
  EXPECT_EQ(m.locate("value"), "t.csv.meta.toml:5:1: value");
}

TEST(Meta, StatisticIsSumOrMeanOfAMagnitudeTable) {
  EXPECT_THAT(meta_error("kind = \"magnitude\"\nstatistic = \"median\"\n"),
              HasSubstr("t.csv.meta.toml:2:1: statistic: expected sum or mean"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\nstatistic = \"mean\"\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("statistic: a mean applies to long-form magnitude tables only"));
}

TEST(Meta, UnknownKeysAreRefusedWithTheirPlace) {
  EXPECT_EQ(
      meta_error("kind = \"frequency\"\nvalue = \"n\"\nthreshold = 5\n"),
      "t.csv.meta.toml:3:1: threshold: unknown key (known: kind, layout, total_label, "
      "column_dimension, value, contributors, top1, top2, institutions, insurers, route, "
      "statistic, residual_dof, residual_dof_column, quasi_identifiers, sensitive, population, "
      "dimension, filter)");
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\n[[dimension]]\nname = \"a\"\n"
                         "levels = 3\n"),
              HasSubstr("t.csv.meta.toml:5:1: dimension[0].levels: unknown key"));
}

TEST(Meta, KindIsRequiredAndChecked) {
  EXPECT_THAT(meta_error("value = \"n\"\n"), HasSubstr("kind: missing required string"));
  EXPECT_THAT(meta_error("kind = \"table\"\n"),
              HasSubstr("t.csv.meta.toml:1:1: kind: expected one of frequency, magnitude, "
                        "extract, model, found \"table\""));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nlayout = \"tall\"\n"),
              HasSubstr("layout: expected long or wide"));
}

TEST(Meta, TomlSyntaxErrorNamesLine) {
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \n"), HasSubstr("t.csv.meta.toml:2:"));
}

TEST(Meta, ConsistencyRules) {
  EXPECT_THAT(meta_error("kind = \"frequency\"\n[[dimension]]\nname = \"a\"\n"),
              HasSubstr("value: a long-form frequency table needs its value column"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\n"),
              HasSubstr("needs at least one [[dimension]]"));
  EXPECT_THAT(meta_error("kind = \"magnitude\"\nvalue = \"v\"\ncontributors = \"n\"\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("top1: a magnitude table needs this column"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nlayout = \"wide\"\n[[dimension]]\nname = \"a\"\n"),
              HasSubstr("column_dimension: a wide-form table needs"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nlayout = \"wide\"\ncolumn_dimension = \"b\"\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("t.csv.meta.toml:3:1: column_dimension: \"b\" is not a declared"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nlayout = \"wide\"\ncolumn_dimension = \"a\"\n"
                         "value = \"n\"\n[[dimension]]\nname = \"a\"\n"),
              HasSubstr("value: applies to the long layout only"));
  EXPECT_THAT(meta_error("kind = \"extract\"\n"), HasSubstr("quasi_identifiers: an extract needs"));
  EXPECT_THAT(meta_error("kind = \"extract\"\nquasi_identifiers = [\"age\", \"sex\"]\n"
                         "sensitive = [\"age\"]\n"),
              HasSubstr("\"age\" is also a quasi-identifier"));
  EXPECT_THAT(meta_error("kind = \"model\"\n"), HasSubstr("residual_dof: a model needs"));
  EXPECT_THAT(meta_error("kind = \"model\"\nresidual_dof = -1\n"),
              HasSubstr("residual_dof: expected a number between 0 and"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\nresidual_dof = 3\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("residual_dof: applies to models only"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\nroute = \"nasal\"\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("route: expected one of oral, topical, injection"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\n[[dimension]]\nname = \"a\"\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("t.csv.meta.toml:6:1: dimension[1].name: dimension \"a\" is declared "
                        "twice"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"a\"\n[[dimension]]\nname = \"a\"\n"),
              HasSubstr("cannot be both a dimension and a value"));
  EXPECT_THAT(meta_error("kind = \"frequency\"\nvalue = \"n\"\n[filter]\nage = []\n"
                         "[[dimension]]\nname = \"a\"\n"),
              HasSubstr("filter.age: an empty filter"));
  EXPECT_TRUE(meta_ok("kind = \"model\"\nresidual_dof = 120\n").residual_dof == 120.0);
  EXPECT_EQ(meta_ok("kind = \"extract\"\nquasi_identifiers = [\"age\"]\n").quasi_identifiers,
            (std::vector<std::string>{"age"}));
}

TEST(Meta, HierarchyMistakes) {
  const std::string head =
      "kind = \"frequency\"\nvalue = \"n\"\n[[dimension]]\nname = \"r\"\n"
      "[dimension.hierarchy]\n";
  EXPECT_THAT(meta_error(head + "\"A\" = [\"B\"]\n\"B\" = [\"A\"]\n"),
              HasSubstr("the hierarchy is a cycle"));
  EXPECT_THAT(meta_error(head + "\"A\" = [\"x\"]\n\"B\" = [\"x\"]\n"),
              HasSubstr("\"x\" is already a part of \"A\""));
  EXPECT_THAT(meta_error(head + "\"A\" = [\"Total\"]\n"), HasSubstr("is the total label"));
  EXPECT_THAT(meta_error(head + "\"A\" = []\n"),
              HasSubstr("t.csv.meta.toml:6:1: dimension[0].hierarchy.A: a parent category needs"));
  EXPECT_THAT(meta_error(head + "\"A\" = [1]\n"), HasSubstr("expected a string, found integer"));
}

TEST(Meta, SidecarNextToTheFile) {
  auto csv = kExamples / "outpatients_by_region_age.csv";
  EXPECT_EQ(meta_path_for(csv), kExamples / "outpatients_by_region_age.csv.meta.toml");
  auto meta = load_meta_for(csv);
  ASSERT_TRUE(meta) << meta.error().message;
  EXPECT_EQ(meta->population, "outpatients-fy2023");
  auto none = load_meta_for(kExamples / "absent.csv");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::kNotFound);
}

TEST(Meta, ValidateMetaBuiltByHand) {
  TableMeta m;
  m.source = "command line";
  m.dimensions.push_back({"region", {}, ""});
  auto st = validate_meta(m);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().message,
            "command line: value: a long-form frequency table needs its value column");
  m.value_column = "n";
  EXPECT_TRUE(validate_meta(m));
}

// --- values ---

TEST(ParseValue, NumbersMissingAndGarbage) {
  EXPECT_EQ(parse_value("12"), 12.0);
  EXPECT_EQ(parse_value("-3.5"), -3.5);
  EXPECT_EQ(parse_value(" 7 "), 7.0);
  EXPECT_EQ(parse_value("1,234,567"), 1234567.0);
  EXPECT_EQ(parse_value("1,234.5"), 1234.5);
  EXPECT_EQ(parse_value("2.5e3"), 2500.0);
  EXPECT_EQ(parse_value(".5"), 0.5);
  for (auto missing : {"", "NA", "NaN", ".", "  "}) {
    auto v = parse_value(missing);
    ASSERT_TRUE(v) << missing;
    EXPECT_TRUE(is_missing(*v)) << missing;
  }
  for (auto bad : {"abc", "12,34", "1,2345", ",123", "1,", "1.2.3", "inf", "nan", "1e", "+5",
                   "0x10", "--1", "5%", "1e999", "１２", "-"}) {
    EXPECT_EQ(parse_value(bad), std::nullopt) << bad;
  }
}

// --- loading ---

TEST(Load, LongFormExampleWithHierarchicalSubtotals) {
  auto loaded = load_table_file(kExamples / "outpatients_by_region_age.csv");
  ASSERT_TRUE(loaded) << loaded.error().message;
  const Table& t = loaded->table;
  EXPECT_EQ(t.kind, TableKind::kFrequency);
  EXPECT_EQ(t.size(), 9u * 6);
  ASSERT_EQ(t.dims.size(), 2u);
  const Dimension& region = t.dims[0];
  EXPECT_EQ(region.geography, "prefecture");
  auto total = *region.find("Total");
  auto tohoku = *region.find("Tohoku");
  EXPECT_EQ(region.parent[total], -1);
  EXPECT_EQ(region.parent[tohoku], static_cast<std::int32_t>(total));
  EXPECT_EQ(region.parent[*region.find("Hokkaido")], static_cast<std::int32_t>(total));
  EXPECT_EQ(region.parent[*region.find("Akita")], static_cast<std::int32_t>(tohoku));
  EXPECT_EQ(region.leaves(total).size(), 7u);

  auto akita_young = cell(t, {"Akita", "0-19"});
  ASSERT_TRUE(akita_young);
  EXPECT_EQ(t.value[*akita_young], 3.0);
  EXPECT_EQ(t.contributors[*akita_young], 3.0);  // frequency: the count itself
  EXPECT_TRUE(is_missing(t.top1[*akita_young]));
  EXPECT_EQ(t.origin[*akita_young].column, 3u);
  EXPECT_EQ(loaded->document.field(t.origin[*akita_young].row - 1, 0), "Akita");

  // Every equation of the example holds with its published numbers, and the region total
  // splits into Hokkaido and Tohoku, which splits into the six prefectures.
  auto eqs = t.equations();
  // Region: Total and Tohoku for 6 ages; age: Total for 9 regions.
  EXPECT_EQ(eqs.size(), 2u * 6 + 9);
  for (const auto& e : eqs) {
    double sum = 0;
    for (auto p : e.parts) sum += t.value[p];
    EXPECT_EQ(sum, t.value[e.total]) << t.label(e.total);
    if (e.dimension == 0 && t.coord(e.total)[0] == tohoku) {
      EXPECT_EQ(e.parts.size(), 6u);
    }
    if (e.dimension == 0 && t.coord(e.total)[0] == total) {
      EXPECT_EQ(e.parts.size(), 2u);
    }
  }
}

TEST(Load, WideFormExampleWithTotalRowAndColumn) {
  auto loaded = load_table_file(kExamples / "prescriptions_by_prefecture_sex.csv");
  ASSERT_TRUE(loaded) << loaded.error().message;
  const Table& t = loaded->table;
  EXPECT_EQ(t.size(), 7u * 3);
  ASSERT_EQ(t.dims.size(), 2u);
  EXPECT_EQ(t.dims[1].name, "sex");
  auto yamagata_female = cell(t, {"Yamagata", "Female"});
  ASSERT_TRUE(yamagata_female);
  EXPECT_EQ(t.value[*yamagata_female], 4.0);
  EXPECT_EQ(t.origin[*yamagata_female].row, 6u);
  EXPECT_EQ(t.origin[*yamagata_female].column, 3u);
  EXPECT_TRUE(t.is_margin(*cell(t, {"Total", "Male"})));
  EXPECT_TRUE(t.is_margin(*cell(t, {"Akita", "Total"})));
  EXPECT_FALSE(t.is_margin(*yamagata_female));
  auto eqs = t.equations();
  EXPECT_EQ(eqs.size(), 3u + 7);
  for (const auto& e : eqs) {
    double sum = 0;
    for (auto p : e.parts) sum += t.value[p];
    EXPECT_EQ(sum, t.value[e.total]) << t.label(e.total);
  }
}

TEST(Load, MagnitudeExampleReadsEveryStatistic) {
  auto loaded = load_table_file(kExamples / "medical_costs_by_prefecture_facility.csv");
  ASSERT_TRUE(loaded) << loaded.error().message;
  const Table& t = loaded->table;
  EXPECT_EQ(t.kind, TableKind::kMagnitude);
  auto akita = cell(t, {"Akita", "Hospital"});
  ASSERT_TRUE(akita);
  EXPECT_EQ(t.value[*akita], 61882.0);
  EXPECT_EQ(t.contributors[*akita], 5.0);
  EXPECT_EQ(t.top1[*akita], 58200.0);
  EXPECT_EQ(t.top2[*akita], 1430.0);
  EXPECT_TRUE(is_missing(t.institutions[*akita]));
  EXPECT_EQ(loaded->columns.top2, 5u);
}

TEST(Load, JapaneseLabelsAndAJapaneseTotal) {
  auto meta = meta_ok(R"(
kind = "frequency"
value = "患者数"
total_label = "総数"
[[dimension]]
name = "都道府県"
[dimension.hierarchy]
"東北" = ["宮城県", "岩手県"]
)");
  auto t = load_ok("都道府県,患者数\n総数,30\n東北,30\n宮城県,21\n岩手県,9\n", meta);
  const Dimension& pref = t.table.dims[0];
  EXPECT_EQ(pref.parent[*pref.find("東北")], static_cast<std::int32_t>(*pref.find("総数")));
  EXPECT_EQ(pref.parent[*pref.find("岩手県")], static_cast<std::int32_t>(*pref.find("東北")));
  EXPECT_EQ(t.table.label(3), "都道府県=岩手県");
}

TEST(Load, ParentsNotShownAreSkippedAndChildrenNotShownBlockTheirEquation) {
  // No Tohoku subtotal rows: the prefectures hang straight from Total.
  auto t = load_ok("region,age,patients\nTotal,all,10\nAomori,all,4\nMiyagi,all,6\n",
                   meta_ok(kRegionAgeMeta));
  const Dimension& region = t.table.dims[0];
  EXPECT_EQ(region.find("Tohoku"), std::nullopt);
  EXPECT_EQ(region.parent[*region.find("Miyagi")],
            static_cast<std::int32_t>(*region.find("Total")));
  ASSERT_EQ(t.table.equations().size(), 1u);
  EXPECT_EQ(t.table.equations()[0].parts.size(), 2u);

  // Miyagi declared but absent: Tohoku = Aomori + Miyagi cannot be written from the cells.
  auto u = load_ok("region,age,patients\nTotal,all,10\nTohoku,all,10\nAomori,all,4\n",
                   meta_ok(kRegionAgeMeta));
  const Dimension& r2 = u.table.dims[0];
  ASSERT_TRUE(r2.find("Miyagi"));
  EXPECT_EQ(r2.parent[*r2.find("Miyagi")], static_cast<std::int32_t>(*r2.find("Tohoku")));
  auto eqs = u.table.equations();
  ASSERT_EQ(eqs.size(), 1u);  // Total = Tohoku only
  EXPECT_EQ(u.table.coord(eqs[0].total)[0], *r2.find("Total"));
}

TEST(Load, MissingValuesAndMarkers) {
  LoadOptions options;
  options.suppression_markers = {"-", "X"};
  auto t = load_ok("region,age,patients\nAomori,a,NA\nMiyagi,a,-\nIwate,a,\nAkita,a,X\n",
                   meta_ok(kRegionAgeMeta), options);
  for (std::size_t c = 0; c < 4; ++c) EXPECT_TRUE(is_missing(t.table.value[c]));
  EXPECT_EQ(t.marked, (std::vector<std::uint32_t>{1, 3}));
  // Without the option "-" is not a number.
  EXPECT_THAT(load_error("region,age,patients\nMiyagi,a,-\n", meta_ok(kRegionAgeMeta)),
              HasSubstr("t.csv:2:3 (column \"patients\"): expected a number, found \"-\""));
}

TEST(Load, NonNumericValueNamesRowAndColumn) {
  EXPECT_EQ(load_error("region,age,patients\nAomori,0-4,12\nMiyagi,0-4,twelve\n",
                       meta_ok(kRegionAgeMeta)),
            "t.csv:3:3 (column \"patients\"): expected a number, found \"twelve\"");
  auto magnitude = meta_ok(
      "kind = \"magnitude\"\nvalue = \"v\"\ncontributors = \"n\"\ntop1 = \"m1\"\n"
      "top2 = \"m2\"\n[[dimension]]\nname = \"r\"\n");
  EXPECT_EQ(load_error("r,v,n,m1,m2\nA,100,3,50,4O\n", magnitude),
            "t.csv:2:5 (column \"m2\"): expected a number, found \"4O\"");
}

TEST(Load, DuplicateCellNamesBothRows) {
  EXPECT_EQ(load_error("region,age,patients\nAomori,0-4,12\nMiyagi,0-4,3\nAomori,0-4,12\n",
                       meta_ok(kRegionAgeMeta)),
            "t.csv:4: duplicate cell region=Aomori, age=0-4 (first at row 2)");
}

TEST(Load, ColumnsMustMatchTheSidecar) {
  EXPECT_EQ(load_error("region,age,count\nAomori,0-4,12\n", meta_ok(kRegionAgeMeta)),
            "t.csv:1: column \"patients\" is not in the header (named by "
            "t.csv.meta.toml:3:1: value)");
  EXPECT_THAT(load_error("region,patients\nAomori,12\n", meta_ok(kRegionAgeMeta)),
              HasSubstr("column \"age\" is not in the header (named by t.csv.meta.toml:9:1: "
                        "dimension[1].name)"));
  EXPECT_THAT(load_error("region,age,patients,share\nAomori,0-4,12,0.5\n", meta_ok(kRegionAgeMeta)),
              HasSubstr("t.csv:1:4 (column \"share\"): not declared in t.csv.meta.toml"));
  EXPECT_THAT(load_error("region,age,region,patients\nA,b,A,1\n", meta_ok(kRegionAgeMeta)),
              HasSubstr("t.csv:1:3: column \"region\" appears twice (also column 1)"));
  EXPECT_THAT(load_error("region,age,patients\n,0-4,12\n", meta_ok(kRegionAgeMeta)),
              HasSubstr("t.csv:2:1 (column \"region\"): a dimension field must name a category"));
}

TEST(Load, CsvErrorsCarryTheFileName) {
  EXPECT_EQ(load_error("region,age,patients\nAomori,0-4\n", meta_ok(kRegionAgeMeta)),
            "t.csv:2: the record has 2 fields, the header has 3");
  EXPECT_THAT(load_error("region,age,patients\n\x90\xC2\x90\x58,0-4,1\n", meta_ok(kRegionAgeMeta)),
              HasSubstr("t.csv:2:1: invalid UTF-8"));
}

TEST(Load, HierarchyCycleInHandBuiltMetaIsRefused) {
  TableMeta meta = meta_ok(kRegionAgeMeta);
  meta.dimensions[0].hierarchy["Aomori"] = {"Tohoku"};
  EXPECT_THAT(load_error("region,age,patients\nAomori,a,1\n", meta),
              HasSubstr("the hierarchy is a cycle"));
}

TEST(Load, WideFormErrors) {
  auto meta = meta_ok(
      "kind = \"frequency\"\nlayout = \"wide\"\ncolumn_dimension = \"sex\"\n"
      "[[dimension]]\nname = \"region\"\n[[dimension]]\nname = \"sex\"\n");
  EXPECT_THAT(load_error("area,M,F\nA,1,2\n", meta),
              HasSubstr("t.csv:1:1: expected the row dimension \"region\""));
  EXPECT_THAT(load_error("region,M,M\nA,1,2\n", meta),
              HasSubstr("t.csv:1:3: column \"M\" appears twice"));
  EXPECT_THAT(load_error("region\nA\n", meta), HasSubstr("needs at least one column of values"));
  EXPECT_EQ(load_error("region,M,F\nA,1,2\nA,3,4\n", meta),
            "t.csv:3: duplicate cell region=A, sex=M (first at row 2)");
  EXPECT_EQ(load_error(",M,F\nA,1,x\n", meta),
            "t.csv:2:3 (column \"F\"): expected a number, found \"x\"");
  // An empty top-left header cell is accepted.
  auto t = load_ok(",M,F,Total\nA,1,2,3\n", meta);
  EXPECT_EQ(t.table.size(), 3u);
}

TEST(Load, ModelReadsItsDegreesOfFreedom) {
  auto meta = meta_ok("kind = \"model\"\nresidual_dof_column = \"df\"\n");
  auto t = load_ok("term,estimate,df\n(Intercept),1.2,118\nage,0.03,117\nsex,0.4,NA\n", meta);
  EXPECT_EQ(t.meta.residual_dof, 117.0);
  EXPECT_EQ(t.table.size(), 0u);
  EXPECT_THAT(load_error("term,estimate\nage,1\n", meta),
              HasSubstr("column \"df\" is not in the header (named by t.csv.meta.toml:2:1: "
                        "residual_dof_column)"));
}

TEST(Load, ExtractChecksItsDeclaredColumns) {
  auto meta = meta_ok("kind = \"extract\"\nquasi_identifiers = [\"age\", \"sex\"]\n");
  auto t = load_ok("id,age,sex\n1,30,F\n", meta);
  EXPECT_EQ(t.document.records(), 2u);
  EXPECT_THAT(load_error("id,age\n1,30\n", meta), HasSubstr("column \"sex\" is not in the header"));
}

TEST(Load, LoadedTableMovesSafely) {
  // Short bytes live inside a std::string (small-string buffer); the views must survive.
  auto meta = meta_ok("kind = \"frequency\"\nvalue = \"n\"\n[[dimension]]\nname = \"r\"\n");
  auto first = load_ok("r,n\nA,1\n", meta);
  LoadedTable moved = std::move(first);
  EXPECT_EQ(moved.document.field(1, 0), "A");
  std::vector<LoadedTable> many;
  many.push_back(std::move(moved));
  many.push_back(load_ok("r,n\nB,2\n", meta));
  EXPECT_EQ(many[0].document.field(1, 0), "A");
  EXPECT_EQ(many[1].document.header()[1], "n");
}

// --- safe output ---

TEST(SafeOutput, SuppressedCellsGetTheMarkerAndNothingElseChanges) {
  const std::string bytes = read(kExamples / "outpatients_by_region_age.csv");
  auto loaded = load_table_file(kExamples / "outpatients_by_region_age.csv");
  ASSERT_TRUE(loaded);
  const Table& t = loaded->table;
  std::vector<std::uint8_t> suppressed(t.size(), 0);
  for (std::size_t c = 0; c < t.size(); ++c) suppressed[c] = t.value[c] < 10;
  auto safe = write_safe(*loaded, suppressed, "-");
  ASSERT_TRUE(safe) << safe.error().message;

  std::string expected;
  std::istringstream in(bytes);
  for (std::string line; std::getline(in, line);) {
    auto comma = line.rfind(',');
    auto value = parse_value(line.substr(comma + 1));
    if (value && *value < 10) line = line.substr(0, comma + 1) + "-";
    expected += line + "\n";
  }
  EXPECT_EQ(*safe, expected);
  EXPECT_NE(*safe, bytes);
  EXPECT_THAT(*safe, HasSubstr("Akita,0-19,-\n"));

  // Nothing suppressed: the very same bytes.
  std::vector<std::uint8_t> none(t.size(), 0);
  EXPECT_EQ(*write_safe(*loaded, none, "-"), bytes);
}

TEST(SafeOutput, KeepsBomCrLfQuotingAndTrailingLines) {
  auto meta = meta_ok(kRegionAgeMeta);
  const std::string bytes =
      "\xEF\xBB\xBF\"region\",age,patients\r\n\"Aomori\",\"0,4\",\"3\"\r\nMiyagi,\"0,4\",12\r\n"
      "\r\n";
  auto loaded = load_ok(bytes, meta);
  std::vector<std::uint8_t> suppressed = {1, 0};
  EXPECT_EQ(*write_safe(loaded, suppressed, "x"),
            "\xEF\xBB\xBF\"region\",age,patients\r\n\"Aomori\",\"0,4\",x\r\nMiyagi,\"0,4\",12\r\n"
            "\r\n");
  // A marker that needs quoting is quoted; the rewritten file still loads.
  auto quoted = write_safe(loaded, suppressed, "n,a");
  ASSERT_TRUE(quoted);
  EXPECT_THAT(*quoted, HasSubstr("\"Aomori\",\"0,4\",\"n,a\"\r\n"));
}

TEST(SafeOutput, ReplacementValuesRewriteOnlyThoseCells) {
  auto loaded = load_table_file(kExamples / "prescriptions_by_prefecture_sex.csv");
  ASSERT_TRUE(loaded);
  const Table& t = loaded->table;
  std::vector<std::uint8_t> suppressed(t.size(), 0);
  std::vector<double> replace(t.size(), kMissing);
  suppressed[*cell(t, {"Akita", "Male"})] = 1;
  suppressed[*cell(t, {"Yamagata", "Female"})] = 1;
  suppressed[*cell(t, {"Akita", "Female"})] = 1;
  suppressed[*cell(t, {"Yamagata", "Male"})] = 1;
  replace[*cell(t, {"Total", "Total"})] = 1718.5;
  auto safe = write_safe(*loaded, suppressed, "-", replace);
  ASSERT_TRUE(safe) << safe.error().message;
  EXPECT_EQ(*safe,
            "prefecture,Male,Female,Total\r\nAomori,132,158,290\r\nIwate,117,140,257\r\n"
            "Miyagi,264,301,565\r\nAkita,-,-,103\r\nYamagata,-,-,92\r\nFukushima,190,221,411\r\n"
            "Total,798,920,1718.5\r\n");

  replace[*cell(t, {"Akita", "Male"})] = 5;
  EXPECT_THAT(write_safe(*loaded, suppressed, "-", replace).error().message,
              HasSubstr("is suppressed and has a replacement value"));
  EXPECT_FALSE(write_safe(*loaded, std::vector<std::uint8_t>(3, 0), "-"));
}

TEST(SafeOutput, MagnitudeSuppressionBlanksTheStatistics) {
  auto loaded = load_table_file(kExamples / "medical_costs_by_prefecture_facility.csv");
  ASSERT_TRUE(loaded);
  const Table& t = loaded->table;
  std::vector<std::uint8_t> suppressed(t.size(), 0);
  suppressed[*cell(t, {"Yamagata", "Clinic"})] = 1;
  auto safe = write_safe(*loaded, suppressed, "-");
  ASSERT_TRUE(safe);
  EXPECT_THAT(*safe, HasSubstr("\nYamagata,Hospital,45793,26,3903,3405\nYamagata,Clinic,-,,,\n"
                               "Yamagata,Total,46588,28,3903,3405\n"));
}

TEST(SafeOutput, FormatValue) {
  EXPECT_EQ(format_value(12), "12");
  EXPECT_EQ(format_value(-3), "-3");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1e21), "1e+21");
}

}  // namespace
}  // namespace enclave::exitcontrol
