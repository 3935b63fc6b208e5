// PamLogin against real PAM stacks: Linux-PAM reads a service file the test writes
// (pam_start_confdir), pam_matrix (pam_wrapper's test module) checks passwords from a file,
// pam_echo sends an info message. The conversation crosses threads as it will in sessiond.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "sessionmgr/service/pam_login.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;
using Kind = LoginMessage::Kind;
using State = LoginStep::State;

constexpr const char* kPamMatrix = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so";

// A service directory with one stack, and pam_matrix's password file.
struct Stack {
  explicit Stack(const std::string& auth_lines) {
    std::ofstream(dir / "passdb") << "alice:correct horse:enclave-login\n";
    std::ofstream(dir / "motd") << "Authorised use only";
    std::ofstream(dir / "enclave-login") << auth_lines << "account required " << kPamMatrix
                                         << " passdb=" << (dir / "passdb").string() << "\n";
  }
  // Appends auth lines to the stack.
  void auth(const std::string& lines) const {
    std::ofstream(dir / "enclave-login", std::ios::app) << lines;
  }
  void auth_matrix(const std::string& options = "") const {
    auth("auth required " + matrix(options) + "\n");
  }
  std::string matrix(const std::string& options = "") const {
    return std::string(kPamMatrix) + " passdb=" + (dir / "passdb").string() + " " + options;
  }
  PamLoginOptions options(const std::string& user) const {
    PamLoginOptions o;
    o.confdir = dir.path();
    o.user = user;
    o.remote_host = "10.8.0.5";
    o.device = "kiosk-0001";
    return o;
  }
  TempDir dir;
};

bool have_pam_matrix() {
  return std::filesystem::exists(kPamMatrix);
}

#define REQUIRE_PAM_MATRIX() \
  if (!have_pam_matrix()) GTEST_SKIP() << kPamMatrix << " missing (libpam-wrapper)"

std::unique_ptr<PamLogin> start(const PamLoginOptions& options) {
  auto login = PamLogin::start(options);
  EXPECT_TRUE(login.has_value());
  return login ? std::move(login).value() : nullptr;
}

TEST(PamLogin, RightPasswordSucceeds) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  stack.auth_matrix();
  auto login = start(stack.options("alice"));
  LoginStep step = login->next(5s);
  ASSERT_EQ(step.state, State::kMessage) << step.failure;
  EXPECT_EQ(step.message.kind, Kind::kSecret);
  EXPECT_TRUE(step.message.needs_answer());
  ASSERT_TRUE(login->answer("correct horse"));
  step = login->next(5s);
  EXPECT_EQ(step.state, State::kSucceeded) << step.failure;
  // The end is stable.
  EXPECT_EQ(login->next(0ms).state, State::kSucceeded);
}

TEST(PamLogin, WrongPasswordAndUnknownUserFailTheSameWay) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  stack.auth_matrix();
  for (const char* user : {"alice", "mallory"}) {
    auto login = start(stack.options(user));
    LoginStep step = login->next(5s);
    ASSERT_EQ(step.state, State::kMessage) << user << ": " << step.failure;
    EXPECT_EQ(step.message.kind, Kind::kSecret) << user;
    ASSERT_TRUE(login->answer("wrong"));
    step = login->next(5s);
    EXPECT_EQ(step.state, State::kFailed) << user;
    EXPECT_THAT(step.failure, HasSubstr("pam_authenticate")) << user;
  }
}

TEST(PamLogin, InfoErrorAndVisiblePromptsAreStepsOfTheirOwn) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  std::ofstream(stack.dir / "enclave-login", std::ios::app)
      << "auth optional pam_echo.so file=" << (stack.dir / "motd").string() << "\n"
      << "auth required " << stack.matrix("echo verbose") << "\n";
  auto login = start(stack.options("alice"));
  LoginStep step = login->next(5s);
  ASSERT_EQ(step.state, State::kMessage) << step.failure;
  EXPECT_EQ(step.message.kind, Kind::kInfo);
  EXPECT_EQ(step.message.text, "Authorised use only");
  EXPECT_FALSE(step.message.needs_answer());
  ASSERT_TRUE(login->answer(std::nullopt));
  step = login->next(5s);
  ASSERT_EQ(step.state, State::kMessage);
  EXPECT_EQ(step.message.kind, Kind::kVisible);  // pam_matrix's "echo" option
  ASSERT_TRUE(login->answer("wrong"));
  step = login->next(5s);
  ASSERT_EQ(step.state, State::kMessage);
  EXPECT_EQ(step.message.kind, Kind::kError);  // "verbose": it says why
  ASSERT_TRUE(login->answer(std::nullopt));
  EXPECT_EQ(login->next(5s).state, State::kFailed);
}

TEST(PamLogin, AnswerWithoutAQuestionIsRefused) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  stack.auth_matrix();
  auto login = start(stack.options("alice"));
  ASSERT_EQ(login->next(5s).state, State::kMessage);
  ASSERT_TRUE(login->answer("correct horse"));
  auto again = login->answer("correct horse");
  // Either the stack already finished or it is still checking: no question is open.
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kConflict);
  EXPECT_EQ(login->next(5s).state, State::kSucceeded);
}

TEST(PamLogin, CancelEndsAWaitingTransactionAtOnce) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  stack.auth_matrix();
  auto login = start(stack.options("alice"));
  ASSERT_EQ(login->next(5s).state, State::kMessage);
  const auto t0 = std::chrono::steady_clock::now();
  login->cancel();
  LoginStep step = login->next(5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_THAT(step.failure, HasSubstr("login cancelled"));
  // Destroying a transaction that still waits for an answer does not hang either.
  auto abandoned = start(stack.options("alice"));
  ASSERT_EQ(abandoned->next(5s).state, State::kMessage);
  abandoned.reset();
}

TEST(PamLogin, AnOverdueAnswerFailsTheLogin) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  stack.auth_matrix();
  auto options = stack.options("alice");
  options.answer_timeout = 200ms;
  auto login = start(options);
  ASSERT_EQ(login->next(5s).state, State::kMessage);
  std::this_thread::sleep_for(400ms);
  LoginStep step = login->next(5s);
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_THAT(step.failure, HasSubstr("no answer within 200 ms"));
}

TEST(PamLogin, AMissingServiceFileFails) {
  Stack stack("");
  auto options = stack.options("alice");
  options.service = "no-such-service";
  auto login = PamLogin::start(options);
  ASSERT_FALSE(login.has_value());
  EXPECT_EQ(login.error().code, Errc::kNotFound);
  EXPECT_THAT(login.error().message, HasSubstr((stack.dir / "no-such-service").string()));
}

TEST(PamLogin, TheStackSeesTheRemoteHostAndTheDevice) {
  REQUIRE_PAM_MATRIX();
  Stack stack("");
  // pam_succeed_if compares PAM_RHOST; pam_exec shows the device the modules see.
  const auto script = stack.dir / "show-device";
  std::ofstream(script) << "#!/bin/sh\necho device=$ENCLAVE_DEVICE\n";
  std::filesystem::permissions(script, std::filesystem::perms::owner_all);
  std::ofstream(stack.dir / "enclave-login", std::ios::app)
      << "auth requisite pam_succeed_if.so quiet rhost = 10.8.0.5\n"
      << "auth required pam_exec.so stdout " << script.string() << "\n";
  auto login = start(stack.options("alice"));
  LoginStep step = login->next(5s);
  ASSERT_EQ(step.state, State::kMessage) << step.failure;
  EXPECT_EQ(step.message.kind, Kind::kInfo);
  EXPECT_EQ(step.message.text, "device=kiosk-0001");
  ASSERT_TRUE(login->answer(std::nullopt));
  EXPECT_EQ(login->next(5s).state, State::kSucceeded);

  auto elsewhere = stack.options("alice");
  elsewhere.remote_host = "192.0.2.1";
  auto refused = start(elsewhere);
  EXPECT_EQ(refused->next(5s).state, State::kFailed);
}

}  // namespace
}  // namespace enclave::sessionmgr
