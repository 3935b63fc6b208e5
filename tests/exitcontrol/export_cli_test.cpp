// enclave-export and enclavectl export, the real executables, for what they decide before
// enclave-exportd is asked: where the outbox is, the session's token file, which files may be
// named, where the daemon's socket is and what the analyst is told when nothing listens there,
// and the usage errors. The answers of a running daemon are export_e2e_test's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

namespace fs = std::filesystem;
using enclave::testing::RunResult;
using enclave::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr const char* kToken = "5f0c8a1e9b7d2c4a6e8f0b1d3c5a7e9f1b3d5c7a9e0f2b4d6c8a0e1f3b5d7c9a";

class ExportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(outbox_);
    std::ofstream(outbox_ / ".enclave-session")
        << "session = \"s-0123456789abcdef\"\ntoken = \"" << kToken << "\"\n";
    std::ofstream(outbox_ / "table.csv") << "region,count\nnorth,120\n";
  }

  // enclave-export with the scratch state directory; env entries override the test's own
  // (empty means unset), ENCLAVE_OUTBOX and ENCLAVE_EXPORT_SOCKET unset unless given.
  RunResult export_tool(std::vector<std::string> args,
                        std::map<std::string, std::string> env = {}) {
    env.try_emplace("ENCLAVE_OUTBOX", "");
    env.try_emplace("ENCLAVE_EXPORT_SOCKET", "");
    std::vector<std::string> argv{enclave::testing::binary("enclave-export").string(),
                                  "--state-dir", (dir_ / "state").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    return enclave::testing::run(argv, env);
  }

  // The outbox given the way the desktop gives it.
  std::map<std::string, std::string> in_desktop() const {
    return {{"ENCLAVE_OUTBOX", outbox_.string()}};
  }

  TempDir dir_;
  const fs::path outbox_ = dir_ / "outbox";
};

TEST_F(ExportCli, WithoutAnOutboxSaysWhereItRuns) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"request", "table.csv", "--justification", "Table 1"}, {"status"}}) {
    auto r = export_tool(args);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("no outbox"));
    EXPECT_THAT(r.err, HasSubstr("ENCLAVE_OUTBOX"));
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(ExportCli, RefusesAFileOutsideTheOutbox) {
  std::ofstream(dir_ / "elsewhere.csv") << "a,b\n";
  fs::create_directories(outbox_ / "sub");
  std::ofstream(outbox_ / "sub" / "deeper.csv") << "a,b\n";
  for (const fs::path& file : {dir_ / "elsewhere.csv", outbox_ / "sub" / "deeper.csv"}) {
    auto r = export_tool({"request", file.string(), "--justification", "Table 1"}, in_desktop());
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("copy " + file.string() + " into the outbox (" + outbox_.string() +
                                 ") first"));
  }
}

TEST_F(ExportCli, RefusesANameTheOutboxDoesNotHold) {
  auto r = export_tool({"request", "missing.csv", "--justification", "Table 1"}, in_desktop());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("no file missing.csv in the outbox (" + outbox_.string() + ")"));
}

TEST_F(ExportCli, MissingSessionFileIsNamed) {
  fs::remove(outbox_ / ".enclave-session");
  auto r = export_tool({"status"}, in_desktop());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr((outbox_ / ".enclave-session").string() + " is missing"));
  EXPECT_THAT(r.err, HasSubstr("not a session's outbox"));
}

TEST_F(ExportCli, SessionFileWithoutTokenIsNamed) {
  std::ofstream(outbox_ / ".enclave-session", std::ios::trunc) << "session = \"s-1\"\n";
  auto r = export_tool({"status"}, in_desktop());
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr(".enclave-session"));
  EXPECT_THAT(r.err, HasSubstr("token"));
}

// A name, a path into the outbox and a path through a link to it all pass the outbox checks and
// reach the socket; nothing listens there, which the analyst is told, without the token.
TEST_F(ExportCli, NoDaemonListeningIsAClearConnectionError) {
  fs::create_directory_symlink(outbox_, dir_ / "outbox-link");
  const fs::path default_socket = dir_ / "state" / "run" / "exportd.sock";
  const fs::path given_socket = dir_ / "elsewhere.sock";
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> env;
    fs::path socket;
  };
  auto env_socket = in_desktop();
  env_socket["ENCLAVE_EXPORT_SOCKET"] = given_socket.string();
  const std::vector<Case> cases = {
      {{"request", "table.csv", "--justification", "Table 1"}, in_desktop(), default_socket},
      {{"request", (outbox_ / "table.csv").string(), "--justification", "Table 1", "--wait"},
       in_desktop(),
       default_socket},
      {{"request", (dir_ / "outbox-link" / "table.csv").string(), "--justification", "Table 1"},
       in_desktop(),
       default_socket},
      {{"status", "R-1"}, env_socket, given_socket},
      {{"--socket", given_socket.string(), "--outbox", outbox_.string(), "withdraw", "R-1"},
       {},
       given_socket},
  };
  for (const auto& c : cases) {
    auto r = export_tool(c.args, c.env);
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
    EXPECT_THAT(r.err, HasSubstr("enclave-exportd is not running at " + c.socket.string()));
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(kToken)));
  }
}

TEST_F(ExportCli, UsageErrorsExitTwo) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"request", "table.csv"},   // no --justification
                                             {"exception", "R-1", "0"},  // no --reason
                                             {"accept-safe", "R-1"},     // no file
                                             {"request"},
                                             {}}) {
    auto r = export_tool(args, in_desktop());
    EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  }
  auto help = export_tool({"--help"});
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_THAT(help.out, HasSubstr("accept-safe"));
}

TEST_F(ExportCli, StewardRejectNeedsAComment) {
  auto r = enclave::testing::run({enclave::testing::binary("enclavectl").string(), "--policies",
                                  (enclave::testing::source_dir() / "policies").string(),
                                  "--state-dir", (dir_ / "state").string(), "export", "reject",
                                  "R-1", "0", "--as", "steve"});
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("--comment is required"));
  EXPECT_EQ(r.out, "");
}

}  // namespace
}  // namespace enclave::exitcontrol
