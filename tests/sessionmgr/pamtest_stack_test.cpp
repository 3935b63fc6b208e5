// The shipped login stack as anyone can try it, without root (tests/sessionmgr/
// pam_stack_fixture.hpp says what is real): pam_wrapper gives PAM a service directory of our
// own, nss_wrapper gives pam_faillock and the account phase users of our own, and libpamtest
// runs pam_authenticate and pam_acct_mgmt. The kiosk is a conversation function that types
// the password and answers the fingerprint challenge with a signed assertion.
//
// The wrappers work only when preloaded, before the process starts, so every test runs twice:
// the parent writes the stack and the users into a scratch directory and starts this binary
// again on the same test, with the wrappers preloaded and, when the parent is root, as
// nobody:nogroup (setpriv); the child does the checks and the parent reports the result.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

// libpamtest.h declares C functions without extern "C".
extern "C" {
#include <libpamtest.h>
}
#include <link.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>

#include "sessionmgr/service/pam_login.hpp"
#include "tests/sessionmgr/pam_stack_fixture.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace pam_stack_fixture;
using namespace std::chrono_literals;

constexpr const char* kPamWrapper = "/usr/lib/x86_64-linux-gnu/libpam_wrapper.so";
constexpr const char* kNssWrapper = "/usr/lib/x86_64-linux-gnu/libnss_wrapper.so";
constexpr const char* kSetpriv = "/usr/bin/setpriv";
constexpr const char* kEnv = "/usr/bin/env";
// Set for the child only: the scratch directory the parent prepared.
constexpr const char* kChildDirVariable = "ENCLAVE_PAMTEST_DIR";
constexpr const char* kService = "enclave-login";
constexpr const char* kFingerprintAsked = "fingerprint";  // in a transcript

// The loaded AddressSanitizer runtime (the test's own), or "" in a build without it.
std::string loaded_asan_runtime() {
  std::string found;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libasan.so") != nullptr) {
          *static_cast<std::string*>(out) = info->dlpi_name;
          return 1;
        }
        return 0;
      },
      &found);
  return found;
}

// The kiosk's side of the conversation: the password for a secret prompt, a signed assertion
// for the fingerprint prompt. What it was shown goes into the transcript, in order: "secret:
// <prompt>", "fingerprint" (the challenge differs every time), "error: <text>", "info: <text>".
struct Kiosk {
  std::string password;
  login::MatchResult verdict = login::MatchResult::kMatch;
  EVP_PKEY* signing_key = nullptr;  // the device's key, or another one
  Bytes enrolled_print;             // what the challenge must carry
  std::vector<std::string> transcript;

  std::optional<std::string> answer_fingerprint(std::string_view challenge_text) {
    auto challenge = login::parse_challenge(as_bytes(challenge_text));
    if (!challenge) {
      ADD_FAILURE() << "unreadable challenge: " << challenge_text;
      return std::nullopt;
    }
    EXPECT_EQ(challenge->prints.at(0).data, enrolled_print);  // decrypted from the vault
    auto wire = login::sign_assertion(assertion_for(*challenge, verdict), signing_key);
    if (!wire) {
      ADD_FAILURE() << wire.error().describe();
      return std::nullopt;
    }
    return *wire;
  }
};

const char* operation_name(pamtest_ops op) {
  switch (op) {
    case PAMTEST_AUTHENTICATE:
      return "pam_authenticate";
    case PAMTEST_ACCOUNT:
      return "pam_acct_mgmt";
    default:
      return "a PAM operation";
  }
}

void free_replies(pam_response* replies, int count) {
  for (int i = 0; i < count; ++i) std::free(replies[i].resp);
  std::free(replies);
}

// A pam_conv function (C: nothing may throw through it); appdata is the Kiosk.
int kiosk_conversation(int count, const pam_message** messages, pam_response** responses,
                       void* appdata) try {
  auto& kiosk = *static_cast<Kiosk*>(appdata);
  auto* replies = static_cast<pam_response*>(std::calloc(count, sizeof(pam_response)));
  if (replies == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < count; ++i) {
    const std::string_view text = messages[i]->msg != nullptr ? messages[i]->msg : "";
    std::optional<std::string> answer;
    switch (messages[i]->msg_style) {
      case PAM_PROMPT_ECHO_OFF:
        if (text.starts_with(kFingerprintPromptPrefix)) {
          kiosk.transcript.push_back(kFingerprintAsked);
          answer = kiosk.answer_fingerprint(text.substr(kFingerprintPromptPrefix.size()));
        } else {
          kiosk.transcript.push_back("secret: " + std::string(text));
          answer = kiosk.password;
        }
        if (!answer) {
          free_replies(replies, count);
          return PAM_CONV_ERR;
        }
        replies[i].resp = strdup(answer->c_str());
        break;
      case PAM_ERROR_MSG:
        kiosk.transcript.push_back("error: " + std::string(text));
        break;
      case PAM_TEXT_INFO:
        kiosk.transcript.push_back("info: " + std::string(text));
        break;
      default:  // the user is given at pam_start: nothing may ask for a visible answer
        ADD_FAILURE() << "unexpected PAM message " << messages[i]->msg_style << ": " << text;
        free_replies(replies, count);
        return PAM_CONV_ERR;
    }
  }
  *responses = replies;
  return PAM_SUCCESS;
} catch (...) {
  return PAM_CONV_ERR;
}

class PamtestStack : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* path : {kPamMatrix, kPamWrapper, kNssWrapper}) {
      if (!std::filesystem::exists(path)) {
        GTEST_SKIP() << path << " missing (Debian packages libpam-wrapper, libnss-wrapper)";
      }
    }
    if (const char* dir = std::getenv(kChildDirVariable)) {
      files_.root = dir;
      set_up_child();
    } else {
      run_child();
    }
  }

  // The parent: the stack and the users, then this test again in a child under the wrappers.
  void run_child() {
    in_parent_ = true;
    scratch_ = std::make_unique<testing::TempDir>();
    files_.root = scratch_->path();
    write_stack(files_, "alice:correct horse:enclave-login\n");
    // mallory is unknown: in neither passdb nor passwd.
    std::ofstream(files_.root / "passwd") << "alice:x:2001:2001:Alice:/nonexistent:/bin/false\n";
    std::ofstream(files_.root / "group") << "analysts:x:2001:alice\n";

    std::vector<std::string> argv;
    if (::geteuid() == 0) {
      const passwd* nobody = ::getpwnam("nobody");
      if (nobody == nullptr) GTEST_SKIP() << "no user \"nobody\" to run the stack as";
      if (!std::filesystem::exists(kSetpriv)) GTEST_SKIP() << kSetpriv << " missing (util-linux)";
      ASSERT_EQ(::chown(files_.root.c_str(), nobody->pw_uid, nobody->pw_gid), 0)
          << files_.root << ": " << std::strerror(errno);
      argv = {kSetpriv, "--reuid=" + std::to_string(nobody->pw_uid),
              "--regid=" + std::to_string(nobody->pw_gid), "--clear-groups", "--"};
    }
    // ASan insists on coming first in the list of libraries (verify_asan_link_order), and
    // pam_wrapper dlopens libpam with RTLD_DEEPBIND, which ASan refuses, unless "libasan.so"
    // is in LD_PRELOAD. Preloading the runtime first satisfies both, where
    // ASAN_OPTIONS=verify_asan_link_order=0 would satisfy only the first.
    std::string preload = loaded_asan_runtime();
    preload += (preload.empty() ? "" : ":") + std::string(kPamWrapper) + ":" + kNssWrapper;
    // env(1) sets the preload for the test binary alone: pam_wrapper in setpriv would make its
    // directory in /tmp as root, and setpriv's exec would leave it behind.
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    argv.insert(argv.end(),
                {kEnv, "LD_PRELOAD=" + preload, std::filesystem::read_symlink("/proc/self/exe"),
                 "--gtest_filter=" + std::string(test->test_suite_name()) + "." + test->name()});
    const auto r = testing::run(argv,
                                {{"PAM_WRAPPER", "1"},
                                 {"PAM_WRAPPER_SERVICE_DIR", files_.pam_dir().string()},
                                 {"NSS_WRAPPER_PASSWD", (files_.root / "passwd").string()},
                                 {"NSS_WRAPPER_GROUP", (files_.root / "group").string()},
                                 {kChildDirVariable, files_.root.string()}},
                                300s);
    if (r.out.find("[  SKIPPED ]") != std::string::npos) GTEST_SKIP() << r.out;
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    ASSERT_THAT(r.out, HasSubstr("[  PASSED  ] 1 test.")) << r.out << r.err;
  }

  // The child: the services and the registry, as the unprivileged user.
  void set_up_child() {
    ASSERT_NE(::geteuid(), 0u) << "the stack must run without root";
    // The services are not under test here: they run without the wrappers.
    files_.tool_env = {{"LD_PRELOAD", ""}};
    ASSERT_NO_FATAL_FAILURE(start_auditd(files_, auditd_));
    device_key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    ASSERT_NO_FATAL_FAILURE(enrol_alice(files_, device_key_.get(), print_));
  }

  Kiosk kiosk(const std::string& password, login::MatchResult verdict, EVP_PKEY* key = nullptr) {
    return {password, verdict, key != nullptr ? key : device_key_.get(), print_, {}};
  }

  // One login of `user` at the kiosk, as enclave-sessiond runs it: the kiosk's address and
  // device id set before the stack runs, PAM's failure delay off (sessiond keeps its own).
  // Each case's expected return code is checked by libpamtest; the first it did not get is
  // reported.
  template <std::size_t N>
  void login(const std::string& user, Kiosk& kiosk, pam_testcase (&cases)[N]) {
    const pam_conv conv{kiosk_conversation, &kiosk};
    pam_handle_t* pamh = nullptr;
    ASSERT_EQ(pam_start(kService, user.c_str(), &conv, &pamh), PAM_SUCCESS);
    const std::string device = std::string("ENCLAVE_DEVICE=") + kDevice;
    ASSERT_EQ(pam_set_item(pamh, PAM_RHOST, kKioskAddress), PAM_SUCCESS);
    ASSERT_EQ(pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&no_fail_delay)),
              PAM_SUCCESS);
    ASSERT_EQ(pam_putenv(pamh, device.c_str()), PAM_SUCCESS);
    // run_pamtest_conv() cannot be used: in libpamtest 1.1.4 the macro's misplaced parenthesis
    // swallows its pam_handle argument. The function behind it takes the count of cases and
    // runs them on our handle (then ends it) instead of starting one of its own.
    const pamtest_err err =
        _pamtest_conv(kService, user.c_str(), kiosk_conversation, &kiosk, cases, N, pamh);
    if (err == PAMTEST_ERR_CASE) {
      const pam_testcase* failed = _pamtest_failed_case(cases, N);
      ADD_FAILURE() << user << ": " << operation_name(failed->pam_operation) << " returned "
                    << pam_strerror(nullptr, failed->op_rv) << ", expected "
                    << pam_strerror(nullptr, failed->expected_rv);
    } else {
      EXPECT_EQ(err, PAMTEST_ERR_OK) << pamtest_strerror(err);
    }
  }

  // pam_authenticate alone, expecting `expected`.
  void authenticate(const std::string& user, Kiosk& kiosk, int expected) {
    pam_testcase cases[] = {
        pam_test_flags(PAMTEST_AUTHENTICATE, expected, PAM_DISALLOW_NULL_AUTHTOK)};
    login(user, kiosk, cases);
  }

  static void no_fail_delay(int, unsigned, void*) {}

  bool in_parent_ = false;
  std::unique_ptr<testing::TempDir> scratch_;  // the parent's
  PamStackFiles files_;
  std::unique_ptr<testing::Child> auditd_;
  crypto::EvpPkeyPtr device_key_;
  const Bytes print_{0x46, 0x50, 0x33, 0x01, 0x02, 0x03};
};

TEST_F(PamtestStack, PasswordThenFingerprintThenAccount) {
  if (in_parent_) return;  // the child ran the checks
  Kiosk alice = kiosk("correct horse", login::MatchResult::kMatch);
  pam_testcase cases[] = {
      pam_test_flags(PAMTEST_AUTHENTICATE, PAM_SUCCESS, PAM_DISALLOW_NULL_AUTHTOK),
      pam_test(PAMTEST_ACCOUNT, PAM_SUCCESS)};
  login("alice", alice, cases);
  EXPECT_THAT(alice.transcript, Contains(kFingerprintAsked));
  const auto events = fingerprint_events(files_);
  ASSERT_EQ(events.size(), 1u);  // appended before PAM returned
  EXPECT_EQ(events[0]["outcome"], "success");
  EXPECT_EQ(events[0]["actor"], "alice");
  EXPECT_EQ(events[0]["device"], kDevice);
  EXPECT_EQ(events[0]["details"]["print_id"], kPrintId);
  EXPECT_EQ(events[0]["details"]["source"], kKioskAddress);
}

TEST_F(PamtestStack, AWrongPasswordNeverReachesTheFingerprint) {
  if (in_parent_) return;  // the child ran the checks
  Kiosk alice = kiosk("wrong", login::MatchResult::kMatch);
  authenticate("alice", alice, PAM_AUTH_ERR);
  EXPECT_THAT(alice.transcript, Not(Contains(kFingerprintAsked)))
      << "the enrolled print went to an unauthenticated kiosk";
  EXPECT_TRUE(fingerprint_events(files_).empty());
}

TEST_F(PamtestStack, AWrongFingerIsRefused) {
  if (in_parent_) return;  // the child ran the checks
  // The kiosk's reader says no match...
  Kiosk no_match = kiosk("correct horse", login::MatchResult::kNoMatch);
  authenticate("alice", no_match, PAM_AUTH_ERR);
  EXPECT_THAT(no_match.transcript, Contains(kFingerprintAsked));
  EXPECT_THAT(no_match.transcript, Contains("error: Fingerprint not recognised."));
  // ...or says match, but another key signed it.
  crypto::EvpPkeyPtr other_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  Kiosk forged = kiosk("correct horse", login::MatchResult::kMatch, other_key.get());
  authenticate("alice", forged, PAM_AUTH_ERR);
  EXPECT_THAT(forged.transcript, Contains(kFingerprintAsked));

  const auto events = fingerprint_events(files_);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0]["outcome"], "failure");
  EXPECT_EQ(events[0]["details"]["reason"], "no match");
  EXPECT_EQ(events[0]["details"]["consecutive_failures"], 1);
  EXPECT_EQ(events[1]["outcome"], "failure");
  EXPECT_THAT(events[1]["details"]["reason"].get<std::string>(), HasSubstr("bad_signature"));
  EXPECT_EQ(events[1]["details"]["consecutive_failures"], 2);
}

TEST_F(PamtestStack, LockoutExactlyAtDeny) {
  if (in_parent_) return;  // the child ran the checks
  for (int i = 1; i <= 4; ++i) {
    Kiosk wrong = kiosk("wrong", login::MatchResult::kMatch);
    authenticate("alice", wrong, PAM_AUTH_ERR);
  }
  // Four password failures (deny=5) still let the right password through to the finger, here
  // a wrong one, which counts toward the biometric back-off and not toward pam_faillock...
  Kiosk fourth = kiosk("correct horse", login::MatchResult::kNoMatch);
  authenticate("alice", fourth, PAM_AUTH_ERR);
  EXPECT_THAT(fourth.transcript, Contains(kFingerprintAsked));
  ASSERT_EQ(fingerprint_events(files_).size(), 1u);
  // ...the fifth locks: the right password and finger no longer get as far as the finger.
  Kiosk fifth = kiosk("wrong", login::MatchResult::kMatch);
  authenticate("alice", fifth, PAM_AUTH_ERR);
  Kiosk locked = kiosk("correct horse", login::MatchResult::kMatch);
  authenticate("alice", locked, PAM_AUTH_ERR);
  EXPECT_THAT(locked.transcript, Not(Contains(kFingerprintAsked)));
  EXPECT_EQ(fingerprint_events(files_).size(), 1u);
  // The kiosk is told nothing an unknown user's login would not show: pam_faillock is silent.
  Kiosk unknown = kiosk("correct horse", login::MatchResult::kMatch);
  authenticate("mallory", unknown, PAM_AUTH_ERR);
  EXPECT_EQ(locked.transcript, unknown.transcript);
}

TEST_F(PamtestStack, AnUnknownUserIsAnsweredAsAWrongPassword) {
  if (in_parent_) return;  // the child ran the checks
  Kiosk wrong_password = kiosk("wrong", login::MatchResult::kMatch);
  authenticate("alice", wrong_password, PAM_AUTH_ERR);
  Kiosk unknown = kiosk("correct horse", login::MatchResult::kMatch);
  authenticate("mallory", unknown, PAM_AUTH_ERR);
  EXPECT_EQ(unknown.transcript, wrong_password.transcript);
  EXPECT_TRUE(fingerprint_events(files_).empty());
}

}  // namespace
}  // namespace enclave::sessionmgr
