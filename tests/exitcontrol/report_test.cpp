#include "exitcontrol/core/report.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace enclave::exitcontrol {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

Profile shipped(const std::string& name) {
  auto p = load_profile(std::filesystem::path(ENCLAVE_SOURCE_DIR) / "policies", name);
  EXPECT_TRUE(p.has_value()) << p.error().describe();
  return p.has_value() ? *p : Profile{};
}

// A table over the given dimensions (name, categories), every combination a cell in
// row-major order, values taken from `values` in turn.
Table cross(const std::vector<std::pair<std::string, std::vector<std::string>>>& dims,
            const std::vector<double>& values) {
  Table t;
  t.name = "claims.csv";
  std::size_t cells = 1;
  for (const auto& [name, categories] : dims) {
    Dimension d;
    d.name = name;
    for (const auto& c : categories) d.intern(c);
    t.dims.push_back(std::move(d));
    cells *= categories.size();
  }
  std::vector<std::uint32_t> c(dims.size());
  for (std::size_t i = 0; i < cells; ++i) {
    std::size_t rest = i;
    for (std::size_t d = dims.size(); d-- > 0;) {
      c[d] = static_cast<std::uint32_t>(rest % dims[d].second.size());
      rest /= dims[d].second.size();
    }
    t.value[t.add_cell(c)] = values[i % values.size()];
  }
  EXPECT_FALSE(t.build_index().has_value());
  return t;
}

TEST(CellGrid, RowsAreTheLeadingDimensionsColumnsTheLast) {
  Table t = cross({{"region", {"Miyagi", "Iwate"}}, {"sex", {"F", "M", "X"}}}, {1});
  CellGrid g = cell_grid(t);
  EXPECT_EQ(g.row_labels, (std::vector<std::string>{"region=Miyagi", "region=Iwate"}));
  EXPECT_EQ(g.column_labels, (std::vector<std::string>{"sex=F", "sex=M", "sex=X"}));
  EXPECT_EQ(g.row, (std::vector<std::uint32_t>{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(g.column, (std::vector<std::uint32_t>{0, 1, 2, 0, 1, 2}));
}

TEST(CellGrid, LabelsAgreeWithTheTableForOneTwoAndThreeDimensions) {
  std::vector<Table> tables = {
      cross({{"drug", {"a", "b", "c"}}}, {1}),
      cross({{"region", {"Total", "Miyagi"}}, {"age", {"0-4", "5-9"}}}, {1}),
      cross(
          {{"region", {"Miyagi", "Iwate"}}, {"age", {"0-4", "5-9", "10-14"}}, {"sex", {"F", "M"}}},
          {1}),
  };
  for (const auto& t : tables) {
    CellGrid g = cell_grid(t);
    for (std::uint32_t cell = 0; cell < t.size(); ++cell) {
      EXPECT_EQ(g.label(cell), t.label(cell));
    }
  }
  EXPECT_EQ(cell_grid(tables[2]).row_labels.size(), 6u);  // 2 regions x 3 ages
  EXPECT_EQ(cell_grid(tables[0]).column_labels, (std::vector<std::string>{""}));
}

// region x sex: one cell below the threshold, one zero, the rest fine.
struct Checked {
  Table table;
  PrimaryResult primary;
  FileReport report;
};
Checked checked_table() {
  Checked c{cross({{"region", {"Miyagi", "Iwate"}}, {"sex", {"F", "M"}}}, {25, 3, 0, 40}), {}, {}};
  c.primary = check_primary(c.table, TableMeta{}, shipped("acro-default"));
  c.report = table_report("tables/claims.csv", c.table, c.primary);
  c.report.command = "enclave-exitcheck check tables/claims.csv";
  c.report.inputs.push_back({"tables/claims.csv", std::string(64, 'a')});
  c.report.outputs.push_back({"tables/claims.safe.csv", std::string(64, 'b')});
  return c;
}

RunInfo run_info() {
  return RunInfo{"enclave-exitcheck 0.1.0", "acro-default",
                 "policies/exitcontrol/acro-default.toml", "2024-06-03T10:00:00Z"};
}

TEST(ResultsJson, FollowsAcrosSchema) {
  Checked c = checked_table();
  nlohmann::json j = results_json({c.report}, run_info());
  EXPECT_EQ(j["version"], "enclave-exitcheck 0.1.0");
  ASSERT_TRUE(j["results"].contains("output_0"));
  const auto& out = j["results"]["output_0"];
  for (const char* key : {"uid", "status", "type", "properties", "files", "outcome", "command",
                          "summary", "timestamp", "comments", "exception"}) {
    EXPECT_TRUE(out.contains(key)) << key;
  }
  EXPECT_EQ(out["uid"], "output_0");
  EXPECT_EQ(out["status"], "fail");
  EXPECT_EQ(out["type"], "table");
  EXPECT_EQ(out["properties"]["kind"], "frequency");
  EXPECT_EQ(out["command"], "enclave-exitcheck check tables/claims.csv");
  EXPECT_EQ(out["timestamp"], "2024-06-03T10:00:00Z");  // the run's, as the file has none
  EXPECT_TRUE(out["comments"].is_array());
  EXPECT_EQ(out["exception"], "");

  ASSERT_EQ(out["files"].size(), 2u);  // the table and its safe version
  EXPECT_EQ(out["files"][0]["name"], "tables/claims.csv");
  EXPECT_EQ(out["files"][1]["name"], "tables/claims.safe.csv");
  const auto& sdc = out["files"][0]["sdc"];
  for (const char* rule :
       {"negative", "missing", "threshold", "p-ratio", "nk-rule", "all-values-are-same"}) {
    EXPECT_TRUE(sdc["summary"].contains(rule)) << rule;
    EXPECT_TRUE(sdc["cells"][rule].is_array()) << rule;
  }
  EXPECT_EQ(sdc["summary"]["suppressed"], false);
  // The 3 and the disclosive zero: ACRO counts both as threshold cells.
  EXPECT_EQ(sdc["summary"]["threshold"], 2);
  EXPECT_EQ(sdc["cells"]["threshold"], nlohmann::json::parse("[[0, 1], [1, 0]]"));
  EXPECT_EQ(sdc["summary"]["p-ratio"], 0);

  EXPECT_EQ(out["outcome"]["sex=F"]["region=Miyagi"], "ok");
  EXPECT_EQ(out["outcome"]["sex=M"]["region=Miyagi"], "threshold; ");
  EXPECT_EQ(out["outcome"]["sex=F"]["region=Iwate"], "threshold; ");
  EXPECT_EQ(out["summary"], "fail; threshold: 2 cells may need suppressing; ");
}

TEST(ResultsJson, OurAdditionsSitUnderEnclaveKeys) {
  Checked c = checked_table();
  c.report.secondary = {3};
  c.report.intervals = {{1, 0, 30, 0, 3.3, true}, {3, 35, 45, 36, 44, false}};
  nlohmann::json j = results_json({c.report}, run_info());
  EXPECT_EQ(j["enclave"]["profile"], "acro-default");
  EXPECT_EQ(j["enclave"]["profile_source"], "policies/exitcontrol/acro-default.toml");
  EXPECT_EQ(j["enclave"]["outcome"], "fail");
  const auto& e = j["results"]["output_0"]["enclave"];
  EXPECT_EQ(e["type"], "table");
  EXPECT_EQ(e["counts_per_rule"]["threshold"], 1);
  EXPECT_EQ(e["counts_per_rule"]["zeros"], 1);
  EXPECT_EQ(e["cell_outcomes"]["fail"], 2);
  EXPECT_EQ(e["cell_outcomes"]["pass"], 2);
  ASSERT_EQ(e["cells"].size(), 2u);
  EXPECT_EQ(e["cells"][0]["label"], "region=Miyagi, sex=M");
  EXPECT_EQ(e["cells"][0]["rule"], "threshold");
  EXPECT_EQ(e["cells"][0]["outcome"], "fail");
  EXPECT_EQ(e["cells"][0]["reason"], "count 3 is below the threshold 10");
  EXPECT_EQ(e["cells"][0]["position"], nlohmann::json::parse("[0, 1]"));
  EXPECT_EQ(e["cells"][1]["rule"], "zeros");
  EXPECT_EQ(e["sha256"]["inputs"]["tables/claims.csv"], std::string(64, 'a'));
  EXPECT_EQ(e["sha256"]["outputs"]["tables/claims.safe.csv"], std::string(64, 'b'));
  EXPECT_EQ(e["secondary_suppressed"][0]["label"], "region=Iwate, sex=M");
  ASSERT_EQ(e["intervals"].size(), 2u);
  EXPECT_EQ(e["intervals"][1]["protected"], false);
  EXPECT_EQ(e["intervals"][1]["required_hi"], 44);
  EXPECT_EQ(e["intervals"][0]["label"], "region=Miyagi, sex=M");
}

// The bounded report enclave-exportd keeps: no passing cells, at most max_cells per list, the
// counts complete and what was left out counted.
TEST(ResultsJson, LimitsLeaveOutPassingCellsAndCapListsButKeepTheCounts) {
  Checked c = checked_table();
  c.report.secondary = {2, 3};
  const nlohmann::json full = results_json({c.report}, run_info());
  const nlohmann::json bounded =
      results_json({c.report}, run_info(), ReportLimits{.ok_cells = false, .max_cells = 1});
  const auto& out = bounded["results"]["output_0"];
  const auto& e = out["enclave"];
  std::size_t listed = 0;
  for (const auto& [column, rows] : out["outcome"].items()) {
    for (const auto& [row, outcome] : rows.items()) {
      EXPECT_NE(outcome, "ok") << column << " " << row;
      ++listed;
    }
  }
  EXPECT_EQ(listed, 1u);
  EXPECT_EQ(e["cells"].size(), 1u);
  EXPECT_EQ(e["cells"][0], full["results"]["output_0"]["enclave"]["cells"][0]);
  EXPECT_EQ(e["secondary_suppressed"].size(), 1u);
  EXPECT_EQ(e["counts_per_rule"], full["results"]["output_0"]["enclave"]["counts_per_rule"]);
  EXPECT_EQ(e["cell_outcomes"], full["results"]["output_0"]["enclave"]["cell_outcomes"]);
  EXPECT_EQ(out["files"][0]["sdc"]["summary"],
            full["results"]["output_0"]["files"][0]["sdc"]["summary"]);
  EXPECT_EQ(e["listing"]["ok_cells_omitted"], 2);
  // The second failing cell in "outcome", in "cells" and in sdc's threshold cells, and the
  // second secondary cell.
  EXPECT_EQ(e["listing"]["cells_omitted"], 4);
  EXPECT_EQ(out["files"][0]["sdc"]["cells"]["threshold"].size(), 1u);
  EXPECT_EQ(e["listing"]["max_cells"], 1);
  EXPECT_FALSE(full["results"]["output_0"]["enclave"].contains("listing"));
}

TEST(ResultsJson, EveryKindOfFileGetsAStatus) {
  Checked c = checked_table();
  c.report.suppressed = true;
  c.report.outcome = Outcome::kReview;  // the safe version went to a steward

  FileReport text;
  text.name = "notes.txt";
  text.type = OutputType::kText;
  FileReport image;
  image.name = "figure.png";
  image.type = OutputType::kImage;
  image.add({Outcome::kReview, "file-gate", "images are reviewed by a steward"});
  FileReport archive;
  archive.name = "bundle.zip";
  archive.type = OutputType::kRefused;
  archive.add({Outcome::kFail, "file-gate", "archives are refused"});
  FileReport extract;
  extract.name = "cohort.csv";
  extract.type = OutputType::kExtract;
  extract.add({Outcome::kFail, "k-anonymity", "smallest class has 2 rows: age=80+, sex=F"});
  extract.timestamp = "2024-06-03T11:00:00Z";

  nlohmann::json j = results_json({c.report, text, image, archive, extract}, run_info());
  const auto& r = j["results"];
  EXPECT_EQ(r["output_0"]["status"], "review");
  EXPECT_EQ(r["output_0"]["summary"], "review; threshold: 2 cells suppressed; ");
  EXPECT_EQ(r["output_0"]["files"][0]["sdc"]["summary"]["suppressed"], true);
  EXPECT_EQ(r["output_1"]["status"], "pass");
  EXPECT_EQ(r["output_1"]["type"], "custom");
  EXPECT_EQ(r["output_1"]["summary"], "pass");
  EXPECT_EQ(r["output_1"]["files"][0]["sdc"], nlohmann::json::object());
  EXPECT_EQ(r["output_2"]["status"], "review");
  EXPECT_EQ(r["output_2"]["enclave"]["type"], "image");
  EXPECT_EQ(r["output_3"]["status"], "fail");
  EXPECT_EQ(r["output_3"]["summary"], "fail; file-gate: archives are refused; ");
  EXPECT_EQ(r["output_3"]["enclave"]["table_findings"][0]["reason"], "archives are refused");
  EXPECT_EQ(r["output_4"]["status"], "fail");
  EXPECT_EQ(r["output_4"]["enclave"]["type"], "extract");
  EXPECT_EQ(r["output_4"]["enclave"]["counts_per_rule"]["k-anonymity"], 1);
  EXPECT_EQ(r["output_4"]["timestamp"], "2024-06-03T11:00:00Z");
  EXPECT_EQ(j["enclave"]["outcome"], "fail");
  EXPECT_EQ(j["enclave"]["files"], 5);
}

TEST(ResultsJson, ModelsAreAcroRegressions) {
  Table model;
  model.kind = TableKind::kModel;
  TableMeta meta;
  meta.residual_dof = 4;
  FileReport report =
      table_report("model.txt", model, check_primary(model, meta, shipped("acro-default")));
  nlohmann::json j = results_json({report}, run_info());
  const auto& out = j["results"]["output_0"];
  EXPECT_EQ(out["type"], "regression");
  EXPECT_EQ(out["status"], "fail");
  EXPECT_THAT(out["summary"].get<std::string>(),
              HasSubstr("dof: residual degrees of freedom 4 are fewer than 10"));
}

TEST(AcroSummary, NegativeAndMissingValuesAreNamedAsAcroDoes) {
  Table t = cross({{"x", {"a", "b", "c"}}}, {-5, kMissing, 30});
  FileReport r = table_report("t.csv", t, check_primary(t, TableMeta{}, shipped("acro-default")));
  EXPECT_EQ(acro_summary(r),
            "fail; negative values found; missing values found; threshold: 1 cells may need "
            "suppressing; ");
}

TEST(HumanSummary, NamesOutcomesRulesCellsAndHashes) {
  Checked c = checked_table();
  c.report.intervals = {{3, 35, 45, 36, 44, false}};
  FileReport text;
  text.name = "notes.txt";
  text.type = OutputType::kText;
  std::string s = human_summary({c.report, text}, run_info());
  EXPECT_THAT(s, HasSubstr("profile acro-default (policies/exitcontrol/acro-default.toml)"));
  EXPECT_THAT(s, HasSubstr("2 files: 1 pass, 0 review, 1 fail"));
  EXPECT_THAT(s, HasSubstr("FAIL tables/claims.csv (table, 4 cells: 2 pass, 0 review, 2 fail)"));
  EXPECT_THAT(s, HasSubstr("rules: threshold 1, zeros 1"));
  EXPECT_THAT(s, HasSubstr("fail threshold [region=Miyagi, sex=M]: count 3 is below the "
                           "threshold 10"));
  EXPECT_THAT(s, HasSubstr("fail zeros [region=Iwate, sex=F]"));
  EXPECT_THAT(s, HasSubstr("attacker audit: 1 cell, 1 not protected"));
  EXPECT_THAT(s, HasSubstr("[region=Iwate, sex=M]: attacker bounds [35, 45], needs at least [36, "
                           "44]"));
  EXPECT_THAT(s, HasSubstr("sha256 " + std::string(64, 'a') + "  tables/claims.csv (input)"));
  EXPECT_THAT(s, HasSubstr("sha256 " + std::string(64, 'b') + "  tables/claims.safe.csv (output)"));
  EXPECT_THAT(s, HasSubstr("PASS notes.txt (text)"));
  EXPECT_THAT(s, Not(HasSubstr("more cell findings")));
}

TEST(HumanSummary, ListsFailuresBeforeReviewsAndCountsTheRest) {
  // Reviews (negative) come first in the table, failures later; the listing puts failures first.
  Table t = cross({{"x", {"a", "b", "c", "d", "e", "f"}}}, {-20, -30, 1, 2, 3, 4});
  FileReport r = table_report("t.csv", t, check_primary(t, TableMeta{}, shipped("acro-default")));
  std::string s = human_summary({r}, run_info(), 3);
  // 6 threshold failures and 2 negative reviews; 3 are listed.
  EXPECT_THAT(s, HasSubstr("fail threshold [x=a]"));
  EXPECT_THAT(s, HasSubstr("fail threshold [x=c]"));
  EXPECT_THAT(s, Not(HasSubstr("review negative")));
  EXPECT_THAT(s, HasSubstr("... and 5 more cell findings in results.json"));
}

TEST(ResultsJson, SerialisesALargeTable) {
  std::vector<double> values;
  for (int i = 0; i < 97; ++i) values.push_back(i % 13);
  Table big = cross(
      {{"r", {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10"}},
       {"c", {"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15"}}},
      values);
  FileReport r =
      table_report("big.csv", big, check_primary(big, TableMeta{}, shipped("acro-default")));
  std::string text = results_json({r}, run_info()).dump();
  auto back = nlohmann::json::parse(text);
  std::size_t cells = 0;
  for (const auto& [column, rows] : back["results"]["output_0"]["outcome"].items()) {
    cells += rows.size();
  }
  EXPECT_EQ(cells, big.size());
  EXPECT_EQ(back["results"]["output_0"]["enclave"]["cells"].size(), r.findings.size());
}

}  // namespace
}  // namespace enclave::exitcontrol
