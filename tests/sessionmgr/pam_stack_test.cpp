// The login's PAM stack as enclave-sessiond installs it: the shipped template rendered (every
// placeholder filled, nothing PAM would misread), written into the run directory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <sstream>

#include "common/files.hpp"
#include "sessionmgr/service/pam_stack.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::map<std::string, std::string> kValues{{"ENCLAVE_STATE_DIR", "/var/lib/enclave"},
                                                 {"ENCLAVE_PAM_MODULES", "/usr/lib/enclave"}};

TEST(PamStack, RendersEveryPlaceholder) {
  auto out = render_pam_stack(
      "auth required @ENCLAVE_PAM_MODULES@/m.so dir=@ENCLAVE_STATE_DIR@/f\n"
      "# user@example.org and @ENCLAVE_ANYTHING@ in a comment stay\n"
      "auth optional m.so # @ENCLAVE_NOT_HERE@ either\n",
      kValues);
  ASSERT_TRUE(out) << out.error().describe();
  EXPECT_EQ(*out,
            "auth required /usr/lib/enclave/m.so dir=/var/lib/enclave/f\n"
            "# user@example.org and @ENCLAVE_ANYTHING@ in a comment stay\n"
            "auth optional m.so # @ENCLAVE_NOT_HERE@ either\n");
}

TEST(PamStack, RefusesWhatPamWouldMisread) {
  auto unknown = render_pam_stack("x\nauth required @ENCLAVE_NOPE@\n", kValues);
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("line 2: unknown placeholder @ENCLAVE_NOPE@"));
  auto open = render_pam_stack("auth required @ENCLAVE_STATE_DIR\n", kValues);
  ASSERT_FALSE(open);
  EXPECT_THAT(open.error().message, HasSubstr("line 1: a placeholder without its closing @"));
  for (const char* bad : {"/var/lib/my enclave", "", "/x[y]", "/x#y"}) {
    auto spaced = render_pam_stack("a @ENCLAVE_STATE_DIR@\n", {{"ENCLAVE_STATE_DIR", bad}});
    ASSERT_FALSE(spaced) << bad;
    EXPECT_THAT(spaced.error().message, HasSubstr("PAM cannot read as one argument"));
  }
}

TEST(PamStack, TheShippedTemplateInstallsIntoTheRunDirectory) {
  testing::TempDir dir;
  SessiondSettings s;
  s.state_dir = dir / "state";
  s.registry = s.state_dir / "sessionmgr/registry.db";
  s.print_key = s.state_dir / "keys/prints.key";
  s.audit_socket = s.state_dir / "run/auditd.sock";
  s.login.pam_stack = testing::source_dir() / "policies/pam/enclave-login";
  s.login.pam_modules = dir / "modules";
  auto confdir = install_pam_stack(s);
  ASSERT_TRUE(confdir) << confdir.error().describe();
  EXPECT_EQ(*confdir, s.state_dir / "run/pam");
  auto text = read_file(*confdir / "enclave-login");
  ASSERT_TRUE(text);
  std::istringstream lines(*text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("#")) {
      EXPECT_THAT(line, Not(HasSubstr("@ENCLAVE_")));
    }
  }
  EXPECT_THAT(*text, HasSubstr((dir / "modules/pam_enclave_fingerprint.so").string() +
                               " registry=" + s.registry.string()));
  struct stat st {};
  ASSERT_EQ(::stat((s.state_dir / "faillock").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  s.login.pam_stack = dir / "missing";
  auto missing = install_pam_stack(s);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error().describe(), HasSubstr((dir / "missing").string()));
}

}  // namespace
}  // namespace enclave::sessionmgr
