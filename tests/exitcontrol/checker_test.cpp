// The checker as the export service calls it: no process, nothing written by the library. The
// example tables under docs/examples/exitcontrol, files the tests write, the shipped profiles
// and a real SQLite ledger in a scratch directory.
#include <gtest/gtest.h>

#include <fstream>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "exitcontrol/lp/attacker.hpp"
#include "exitcontrol/service/checker.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

namespace fs = std::filesystem;

class Checker : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = load_profile(enclave::testing::source_dir() / "policies", "acro-default");
    ASSERT_TRUE(p) << p.error().describe();
    profile_ = std::move(p).value();
  }
  static fs::path example(const std::string& name) {
    return enclave::testing::source_dir() / "docs/examples/exitcontrol" / name;
  }
  fs::path write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return dir_ / name;
  }
  CheckedFile check(const fs::path& file, const CheckSettings& settings = {},
                    Ledger* ledger = nullptr) {
    auto checked = check_output_file(file, profile_, settings, ledger);
    EXPECT_TRUE(checked) << checked.error().describe();
    return checked ? std::move(checked).value() : CheckedFile{};
  }
  static bool has_rule(const FileReport& report, const std::string& rule) {
    for (const auto& f : report.table_findings) {
      if (f.rule == rule) return true;
    }
    return false;
  }
  static std::string table_reasons(const FileReport& report) {
    std::string all;
    for (const auto& f : report.table_findings) all += f.rule + ": " + f.reason + "\n";
    return all;
  }

  Profile profile_;
  enclave::testing::TempDir dir_;
};

TEST_F(Checker, AFailingTableGetsASafeVersionThatPassesASecondCheck) {
  const auto file = example("outpatients_by_region_age.csv");
  auto checked = check(file);
  EXPECT_EQ(checked.report.outcome, Outcome::kFail);
  EXPECT_EQ(checked.report.type, OutputType::kTable);
  EXPECT_TRUE(checked.outputs.empty());
  ASSERT_EQ(checked.report.inputs.size(), 2u);  // the table and its sidecar, by hash

  CheckSettings suggest;
  suggest.suggest = true;
  std::size_t progress_calls = 0;
  suggest.progress = [&](std::string_view, std::size_t, std::size_t) { ++progress_calls; };
  auto safe = check(file, suggest);
  EXPECT_EQ(safe.report.outcome, Outcome::kPass) << safe.report.comments.size();
  EXPECT_TRUE(safe.report.suppressed);
  EXPECT_FALSE(safe.report.secondary.empty());
  EXPECT_GT(progress_calls, 0u);
  ASSERT_EQ(safe.outputs.size(), 2u);
  EXPECT_EQ(safe.outputs[0].name, "safe/outpatients_by_region_age.csv");
  EXPECT_EQ(safe.outputs[1].name, "safe/outpatients_by_region_age.csv.meta.toml");
  ASSERT_EQ(safe.report.outputs.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(safe.report.outputs[i].name, safe.outputs[i].name);
    EXPECT_EQ(safe.report.outputs[i].sha256, sha256_hex(as_bytes(safe.outputs[i].content)));
    EXPECT_EQ(safe.outputs[i].sha256, safe.report.outputs[i].sha256);
  }
  EXPECT_NE(safe.outputs[0].content.find("Akita,0-19,-"), std::string::npos);
  EXPECT_EQ(safe.outputs[1].content,
            *read_file(example("outpatients_by_region_age.csv.meta.toml")));

  // The second check: the safe version as published hides every cell the first check failed,
  // and the attacker cannot recover any hidden cell from what it publishes.
  const auto published = write("outpatients_by_region_age.csv", safe.outputs[0].content);
  write("outpatients_by_region_age.csv.meta.toml", safe.outputs[1].content);
  auto loaded = load_published_table(published, std::nullopt, profile_);
  ASSERT_TRUE(loaded) << loaded.error().describe();
  std::vector<std::uint8_t> hidden(loaded->table.size(), 0);
  for (auto c : loaded->marked) hidden[c] = 1;
  for (const auto& f : checked.report.findings) {
    if (f.outcome == Outcome::kFail) {
      EXPECT_TRUE(hidden[f.cell]) << loaded->table.label(f.cell);
    }
  }
  EXPECT_EQ(loaded->marked.size(),
            safe.report.secondary.size() + 4u);  // the four small cells and their cover
  auto audit = lp::audit_published(loaded->table, hidden, profile_);
  ASSERT_TRUE(audit) << audit.error().describe();
  for (const auto& a : *audit) {
    EXPECT_FALSE(a.exact || !a.protectable) << loaded->table.label(a.cell);
  }
}

TEST_F(Checker, RoundingNeedsTheProfilesBaseAndAnswersTheThresholdFindings) {
  CheckSettings rounding;
  rounding.suggest = true;
  rounding.method = SafeMethod::kRounding;
  auto rounded = check(example("prescriptions_by_prefecture_sex.csv"), rounding);
  EXPECT_EQ(rounded.report.outcome, Outcome::kPass);
  ASSERT_EQ(rounded.outputs.size(), 1u);  // the rounded table; its sidecar is unchanged
  EXPECT_EQ(rounded.outputs[0].content.find(",7,"), std::string::npos);  // Akita/Male 7

  profile_.rounding_base.reset();
  auto refused = check_output_file(example("prescriptions_by_prefecture_sex.csv"), profile_,
                                   rounding, nullptr);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("rounding_base"), std::string::npos);
}

TEST_F(Checker, AnExtractIsCheckedForKAnonymityAndSuppressedByRecord) {
  std::string rows = "age,sex,prefecture,diagnosis\n";
  for (int i = 0; i < 30; ++i) {
    rows += std::string("40-49,") + (i % 2 ? "F" : "M") + ",Miyagi,E11\n";
    rows += std::string("40-49,") + (i % 2 ? "F" : "M") + ",Miyagi,I10\n";
  }
  rows += "90+,F,Akita,C50\n";  // unique
  const auto extract = write("extract.csv", rows);
  write("extract.csv.meta.toml",
        "kind = \"extract\"\nquasi_identifiers = [\"age\", \"sex\", \"prefecture\"]\n"
        "sensitive = [\"diagnosis\"]\n");
  auto checked = check(extract);
  EXPECT_EQ(checked.report.type, OutputType::kExtract);
  EXPECT_EQ(checked.report.outcome, Outcome::kFail);
  EXPECT_NE(table_reasons(checked.report).find("age=90+, sex=F, prefecture=Akita"),
            std::string::npos)
      << table_reasons(checked.report);

  CheckSettings suggest;
  suggest.suggest = true;
  auto safe = check(extract, suggest);
  EXPECT_EQ(safe.report.outcome, Outcome::kPass);
  ASSERT_EQ(safe.outputs.size(), 1u);
  EXPECT_EQ(safe.outputs[0].name, "safe/extract.csv");
  EXPECT_EQ(safe.outputs[0].content.find("Akita"), std::string::npos);
  // The safe version, submitted again, passes on its own.
  write("extract.csv", safe.outputs[0].content);
  auto again = check(extract);
  EXPECT_EQ(again.report.outcome, Outcome::kPass) << table_reasons(again.report);
  EXPECT_EQ(again.report.properties["rows"], "60");
}

TEST_F(Checker, AnArchiveIsRefusedAndAnImageGoesToReview) {
  TableMeta meta;
  meta.dimensions.push_back({.name = "a"});
  meta.value_column = "n";
  CheckSettings declared;
  declared.meta = meta;
  declared.suggest = true;
  const auto zip = write("results.csv", std::string("PK\x03\x04", 4) + std::string(40, '\0'));
  auto refused = check(zip, declared);
  EXPECT_EQ(refused.report.type, OutputType::kRefused);
  EXPECT_EQ(refused.report.outcome, Outcome::kFail);
  EXPECT_TRUE(refused.report.inputs.empty());
  EXPECT_TRUE(refused.outputs.empty());
  EXPECT_NE(table_reasons(refused.report).find("ZIP"), std::string::npos)
      << table_reasons(refused.report);

  const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                               'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};
  auto image =
      check(write("plot.png", std::string(reinterpret_cast<const char*>(png), sizeof png)));
  EXPECT_EQ(image.report.type, OutputType::kImage);
  EXPECT_EQ(image.report.outcome, Outcome::kReview);
  EXPECT_TRUE(has_rule(image.report, "file-gate"));
  ASSERT_EQ(image.report.inputs.size(), 1u);
  EXPECT_EQ(image.report.inputs[0].name, "plot.png");
}

TEST_F(Checker, ATableOverTheProfilesCellLimitIsRefusedNotAnError) {
  profile_.max_cells = 4;
  TableMeta meta;
  meta.dimensions.push_back({.name = "region"});
  meta.value_column = "patients";
  CheckSettings declared;
  declared.meta = meta;
  auto refused =
      check(write("cells.csv", "region,patients\nTotal,60\na,12\nb,12\nc,12\nd,24\n"), declared);
  EXPECT_EQ(refused.report.type, OutputType::kRefused);
  EXPECT_EQ(refused.report.outcome, Outcome::kFail);
  EXPECT_NE(table_reasons(refused.report).find("more than the profile's max_cells (4)"),
            std::string::npos)
      << table_reasons(refused.report);
}

TEST_F(Checker, BadMetadataIsAnErrorNamingTheFile) {
  auto ragged = write("ragged.csv", "region,patients\nMiyagi,12\nIwate,7,extra\n");
  TableMeta meta;
  meta.dimensions.push_back({.name = "region"});
  meta.value_column = "patients";
  CheckSettings declared;
  declared.meta = meta;
  auto r = check_output_file(ragged, profile_, declared, nullptr);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("ragged.csv:3"), std::string::npos) << r.error().message;
}

TEST_F(Checker, TheLedgerCatchesADifferenceWithAnEarlierRelease) {
  auto ledger = Ledger::open(dir_ / "ledger.db");
  ASSERT_TRUE(ledger) << ledger.error().describe();
  const auto first = example("outpatients_by_region.csv");
  const auto later = example("outpatients_adults_by_region.csv");

  auto recorded = record_released_file(*ledger, "P-001", first, std::nullopt, profile_, "R-1");
  ASSERT_TRUE(recorded) << recorded.error().describe();
  EXPECT_EQ(recorded->name, "outpatients_by_region.csv");
  EXPECT_EQ(recorded->request, "R-1");
  EXPECT_EQ(recorded->population, "outpatients-fy2023");
  EXPECT_EQ(recorded->sha256, sha256_hex(as_bytes(*read_file(first))));
  auto earlier = ledger->comparable("P-001", "outpatients-fy2023", "count");
  ASSERT_TRUE(earlier) << earlier.error().describe();
  ASSERT_EQ(earlier->size(), 1u);
  EXPECT_EQ((*earlier)[0].name, "outpatients_by_region.csv");
  EXPECT_EQ((*earlier)[0].size(), recorded->cells);
  auto twice = record_released_file(*ledger, "P-001", first, std::nullopt, profile_, "R-2");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::kAlreadyExists);

  CheckSettings project;
  project.project = "P-001";
  // Alone (no project, or a project with no ledger yet) the later table passes.
  EXPECT_EQ(check(later).report.outcome, Outcome::kPass);
  auto no_ledger = check(later, project, nullptr);
  EXPECT_EQ(no_ledger.report.outcome, Outcome::kPass);
  EXPECT_EQ(no_ledger.report.properties["differencing"].rfind("0 earlier release(s) of P-001", 0),
            0u)
      << no_ledger.report.properties["differencing"];
  // Against the ledger it fails: minus the first release it gives the patients under 20.
  auto differenced = check(later, project, &*ledger);
  EXPECT_EQ(differenced.report.outcome, Outcome::kFail);
  EXPECT_TRUE(has_rule(differenced.report, "differencing-difference"))
      << table_reasons(differenced.report);
  EXPECT_NE(table_reasons(differenced.report).find("Akita"), std::string::npos)
      << table_reasons(differenced.report);
  // Another project's releases are not this one's.
  project.project = "P-002";
  EXPECT_EQ(check(later, project, &*ledger).report.outcome, Outcome::kPass);

  // The ledger is asked for only when a table is audited, and its errors are the check's.
  project.project = "P-001";
  std::size_t asked = 0;
  const LedgerSource unavailable = [&]() -> Expected<Ledger*> {
    ++asked;
    return fail(Errc::kUnavailable, "ledger.db: locked");
  };
  auto note = write("notes.txt", "Model converged after 12 iterations.\n");
  auto text = check_output_file(note, profile_, project, unavailable);
  ASSERT_TRUE(text) << text.error().describe();
  EXPECT_EQ(asked, 0u);
  auto failed = check_output_file(later, profile_, project, unavailable);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::kUnavailable);
  EXPECT_EQ(asked, 1u);
}

}  // namespace
}  // namespace enclave::exitcontrol
