// enclave-exitcheck end to end: the real executable on the example tables under
// docs/examples/exitcontrol and on files the tests write, with the shipped profiles.
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

namespace fs = std::filesystem;
using enclave::testing::RunResult;
using enclave::testing::TempDir;

class ExitcheckCli : public ::testing::Test {
 protected:
  fs::path example(const std::string& name) {
    return enclave::testing::source_dir() / "docs/examples/exitcontrol" / name;
  }
  RunResult exitcheck(std::vector<std::string> args) {
    std::vector<std::string> argv{enclave::testing::binary("enclave-exitcheck").string(),
                                  "--policies",
                                  (enclave::testing::source_dir() / "policies").string(),
                                  "--state-dir", dir_.path().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return enclave::testing::run(argv);
  }
  fs::path write(const std::string& name, const std::string& content) {
    std::ofstream(dir_ / name, std::ios::binary) << content;
    return dir_ / name;
  }
  static std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  // The example with its sidecar copied into the scratch directory under a new name.
  fs::path copy_example(const std::string& name, const std::string& as) {
    fs::copy_file(example(name), dir_ / as);
    fs::copy_file(example(name + ".meta.toml"), dir_ / (as + ".meta.toml"));
    return dir_ / as;
  }
  TempDir dir_;
};

TEST_F(ExitcheckCli, CheckFailsSmallCellsAndWritesResults) {
  auto r = exitcheck({"check", example("outpatients_by_region_age.csv").string(), "--out",
                      (dir_ / "out").string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("Akita"), std::string::npos) << r.out;
  auto results = nlohmann::json::parse(read(dir_ / "out/results.json"));
  const auto& output = results["results"]["output_0"];
  EXPECT_EQ(output["status"], "fail");
  EXPECT_EQ(output["files"][0]["sdc"]["summary"]["threshold"], 4);
  // SHA-256 of the input and its sidecar.
  EXPECT_EQ(output["enclave"]["sha256"]["inputs"].size(), 2u) << output["enclave"].dump();
  EXPECT_TRUE(fs::exists(dir_ / "out/summary.txt"));
}

TEST_F(ExitcheckCli, SuggestWritesASafeVersionTheAuditCannotBreak) {
  auto r = exitcheck({"suggest", example("outpatients_by_region_age.csv").string(), "--out",
                      (dir_ / "out").string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto safe = dir_ / "out/safe/outpatients_by_region_age.csv";
  ASSERT_TRUE(fs::exists(safe));
  ASSERT_TRUE(fs::exists(dir_ / "out/safe/outpatients_by_region_age.csv.meta.toml"));
  const auto text = read(safe);
  EXPECT_NE(text.find("Akita,0-19,-"), std::string::npos) << text;
  auto results = nlohmann::json::parse(read(dir_ / "out/results.json"));
  const auto& enclave = results["results"]["output_0"]["enclave"];
  EXPECT_FALSE(enclave["secondary_suppressed"].empty()) << enclave.dump();
  EXPECT_EQ(enclave["sha256"]["outputs"].size(), 2u);
  // The attacker audit of the safe version as published: nothing recoverable.
  auto audit = exitcheck({"audit", safe.string()});
  EXPECT_EQ(audit.exit_code, 0) << audit.out << audit.err;
}

TEST_F(ExitcheckCli, AuditRecoversCellsHiddenWithoutSecondarySuppression) {
  // Only the four small cells hidden, as a naive publisher would: each comes back from its
  // prefecture's Total row.
  auto text = read(example("outpatients_by_region_age.csv"));
  for (const char* cell : {"Aomori,0-19,8", "Iwate,0-19,6", "Akita,0-19,3", "Yamagata,0-19,5"}) {
    auto at = text.find(cell);
    ASSERT_NE(at, std::string::npos);
    const std::string hidden = std::string(cell).substr(0, std::string(cell).rfind(',')) + ",-";
    text.replace(at, std::string(cell).size(), hidden);
  }
  auto naive = write("naive.csv", text);
  fs::copy_file(example("outpatients_by_region_age.csv.meta.toml"), dir_ / "naive.csv.meta.toml");
  auto r = exitcheck({"audit", naive.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("4 recoverable"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("disclosed: exact"), std::string::npos) << r.out;
}

TEST_F(ExitcheckCli, TheFileGateRefusesArchivesAndSendsImagesToReview) {
  auto zip = write("results.csv", std::string("PK\x03\x04", 4) + std::string(40, '\0'));
  auto r =
      exitcheck({"check", zip.string(), "--kind", "frequency", "--dimension", "a", "--value", "n"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("ZIP"), std::string::npos) << r.out;

  const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                               'I',  'H', 'D', 'R', 0,    0,    0,    1,    0, 0, 0, 1};
  auto image = write("plot.png", std::string(reinterpret_cast<const char*>(png), sizeof png));
  auto review = exitcheck({"check", image.string()});
  EXPECT_EQ(review.exit_code, 3) << review.out << review.err;

  auto note = write("notes.txt", "Model converged after 12 iterations.\n");
  EXPECT_EQ(exitcheck({"check", note.string()}).exit_code, 0);
}

TEST_F(ExitcheckCli, BadInputNamesFileRowAndColumn) {
  auto ragged = write("ragged.csv", "region,patients\nMiyagi,12\nIwate,7,extra\n");
  auto r = exitcheck({"check", ragged.string(), "--kind", "frequency", "--dimension", "region",
                      "--value", "patients"});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("ragged.csv:3"), std::string::npos) << r.err;

  auto sjis = write("sjis.csv", "region,patients\n\x93\x8c\x8b\x9e,12\n");
  auto e = exitcheck({"check", sjis.string(), "--kind", "frequency", "--dimension", "region",
                      "--value", "patients"});
  EXPECT_EQ(e.exit_code, 1) << e.out << e.err;  // refused at the gate, with the place
  EXPECT_NE(e.out.find("not UTF-8: line 2, column 1: byte 0x93"), std::string::npos) << e.out;

  auto bad_total = write("total.csv", "region,patients\nTotal,30\nMiyagi,12\nIwate,12\n");
  auto t = exitcheck({"check", bad_total.string(), "--kind", "frequency", "--dimension", "region",
                      "--value", "patients"});
  EXPECT_EQ(t.exit_code, 1) << t.out << t.err;
  EXPECT_NE(t.out.find("totals"), std::string::npos) << t.out;

  auto profile = exitcheck({"--profile", "no-such-profile", "check", bad_total.string()});
  EXPECT_EQ(profile.exit_code, 2);
  EXPECT_NE(profile.err.find("no-such-profile"), std::string::npos) << profile.err;
}

TEST_F(ExitcheckCli, ProfilesDifferOnZeros) {
  auto zeros = write("zeros.csv", "region,patients\nTotal,40\nMiyagi,40\nIwate,0\n");
  std::vector<std::string> args{"check",       zeros.string(), "--kind",  "frequency",
                                "--dimension", "region",       "--value", "patients"};
  EXPECT_EQ(exitcheck(args).exit_code, 1);  // acro-default: zeros are disclosive
  auto ndb = args;
  ndb.insert(ndb.begin(), {"--profile", "ndb"});
  auto r = exitcheck(ndb);
  // NDB allows zeros; without institution and insurer counts the table goes to review.
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
}

TEST_F(ExitcheckCli, TheLedgerCatchesTwoReleasesThatDifferByOneSmallGroup) {
  auto first = example("outpatients_by_region.csv");
  auto later = example("outpatients_adults_by_region.csv");
  EXPECT_EQ(exitcheck({"check", first.string(), "--project", "P-001"}).exit_code, 0);
  auto rec =
      exitcheck({"ledger", "record", "--project", "P-001", "--request", "R-1", first.string()});
  ASSERT_EQ(rec.exit_code, 0) << rec.out << rec.err;
  // Alone the later table passes; against the ledger it fails, naming the small groups.
  EXPECT_EQ(exitcheck({"check", later.string()}).exit_code, 0);
  auto r = exitcheck({"check", later.string(), "--project", "P-001"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("Akita"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("differencing"), std::string::npos) << r.out;
  // Another project's ledger is not this one's.
  EXPECT_EQ(exitcheck({"check", later.string(), "--project", "P-002"}).exit_code, 0);
  auto list = exitcheck({"--json", "ledger", "list", "--project", "P-001"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto releases = nlohmann::json::parse(list.out);
  ASSERT_EQ(releases.size(), 1u);
  EXPECT_EQ(releases[0]["request"], "R-1");
  // The same file twice is refused.
  EXPECT_EQ(exitcheck({"ledger", "record", "--project", "P-001", first.string()}).exit_code, 2);
}

TEST_F(ExitcheckCli, TabulateBuildsACheckableTableFromRows) {
  std::string rows = "patient,prefecture,sex,cost\n";
  for (int i = 0; i < 60; ++i) {
    rows += "p" + std::to_string(i) + "," + (i % 3 == 0 ? "Akita" : "Miyagi") + "," +
            (i % 2 ? "F" : "M") + "," + std::to_string(1000 + i) + "\n";
  }
  rows += "p99,Iwate,F,250000\n";  // one patient alone: a cell of one
  auto source = write("rows.csv", rows);
  const auto table = dir_ / "by-prefecture-sex.csv";
  auto r = exitcheck({"tabulate", source.string(), "--by", "prefecture,sex", "--stat", "sum",
                      "--value", "cost", "--unit", "patient", "--out", table.string()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(fs::exists(dir_ / "by-prefecture-sex.csv.meta.toml"));
  auto check = exitcheck({"check", table.string()});
  EXPECT_EQ(check.exit_code, 1) << check.out << check.err;
  EXPECT_NE(check.out.find("Iwate"), std::string::npos) << check.out;
}

TEST_F(ExitcheckCli, ExtractsAreCheckedForKAnonymityAndSuppressedByRecord) {
  std::string rows = "age,sex,prefecture,diagnosis\n";
  for (int i = 0; i < 30; ++i) {
    rows += std::string("40-49,") + (i % 2 ? "F" : "M") + ",Miyagi,E11\n";
    rows += std::string("40-49,") + (i % 2 ? "F" : "M") + ",Miyagi,I10\n";
  }
  rows += "90+,F,Akita,C50\n";  // unique
  auto extract = write("extract.csv", rows);
  write("extract.csv.meta.toml",
        "kind = \"extract\"\nquasi_identifiers = [\"age\", \"sex\", \"prefecture\"]\n"
        "sensitive = [\"diagnosis\"]\n");
  auto r = exitcheck({"check", extract.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("age=90+, sex=F, prefecture=Akita"), std::string::npos) << r.out;
  auto s = exitcheck({"suggest", extract.string(), "--out", (dir_ / "out").string()});
  EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
  const auto safe = read(dir_ / "out/safe/extract.csv");
  EXPECT_EQ(safe.find("Akita"), std::string::npos);
  EXPECT_NE(safe.find("Miyagi"), std::string::npos);
}

TEST_F(ExitcheckCli, FilesOverTheProfilesLimitsAreRefusedWithTheLimit) {
  // A profile of the operator's own with small limits, extending the shipped one.
  const auto policies = dir_ / "policies";
  fs::create_directories(policies / "exitcontrol");
  fs::copy_file(enclave::testing::source_dir() / "policies/exitcontrol/acro-default.toml",
                policies / "exitcontrol/acro-default.toml");
  std::ofstream(policies / "exitcontrol/small.toml")
      << "extends = \"acro-default\"\nmax_file_bytes = 2000\nmax_cells = 4\n";
  std::string big = "region,patients\n";
  for (int i = 0; i < 400; ++i) big += "r" + std::to_string(i) + ",12\n";
  auto file = write("big.csv", big);
  std::vector<std::string> args{enclave::testing::binary("enclave-exitcheck").string(),
                                "--policies",
                                policies.string(),
                                "--profile",
                                "small",
                                "check",
                                file.string(),
                                "--kind",
                                "frequency",
                                "--dimension",
                                "region",
                                "--value",
                                "patients"};
  auto r = enclave::testing::run(args);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("more than the limit of 2000"), std::string::npos) << r.out;

  auto cells = write("cells.csv", "region,patients\nTotal,60\na,12\nb,12\nc,12\nd,24\n");
  args[6] = cells.string();
  auto c = enclave::testing::run(args);
  EXPECT_EQ(c.exit_code, 1) << c.out << c.err;
  EXPECT_NE(c.out.find("5 cells, more than the profile's max_cells (4)"), std::string::npos)
      << c.out;
}

}  // namespace
}  // namespace enclave::exitcontrol
