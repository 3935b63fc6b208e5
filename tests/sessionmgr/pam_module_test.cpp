// The login's PAM stack for real, through enclave-sessiond's PamLogin (tests/sessionmgr/
// pam_stack_fixture.hpp says what is real): password, fingerprint, lockout, back-off, replays
// and kiosks that are not allowed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <pwd.h>

#include "sessionmgr/service/pam_login.hpp"
#include "tests/sessionmgr/pam_stack_fixture.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using namespace pam_stack_fixture;
using State = LoginStep::State;
using Kind = LoginMessage::Kind;

class PamStack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kPamMatrix)) GTEST_SKIP() << kPamMatrix << " missing";
    ASSERT_NO_FATAL_FAILURE(start_auditd(files_, auditd_));
    // pam_faillock counts only users the system knows (NSS): the lockout test uses "daemon".
    write_stack(files_,
                "alice:correct horse:enclave-login\n"
                "daemon:correct horse:enclave-login\n");
    key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    ASSERT_NO_FATAL_FAILURE(enrol_alice(files_, key_.get(), print_));
  }

  PamLoginOptions options(const std::string& device = kDevice,
                          const std::string& source = kKioskAddress,
                          const std::string& user = "alice") const {
    PamLoginOptions o;
    o.confdir = files_.pam_dir();
    o.user = user;
    o.remote_host = source;
    o.device = device;
    return o;
  }

  // Plays the kiosk to the end: the password, then the finger (`verdict`), acknowledging
  // info and error messages. What the kiosk saw is in `seen`.
  LoginStep play(const PamLoginOptions& o, const std::string& password, login::MatchResult verdict,
                 std::vector<LoginMessage>* seen = nullptr,
                 std::optional<std::string> replay = std::nullopt) {
    auto login = PamLogin::start(o);
    EXPECT_TRUE(login);
    for (;;) {
      LoginStep step = (*login)->next(10s);
      if (step.state != State::kMessage) return step;
      if (seen) seen->push_back(step.message);
      std::optional<std::string> answer;
      if (step.message.kind == Kind::kSecret) answer = password;
      if (step.message.kind == Kind::kFingerprint) {
        auto challenge = login::parse_challenge(as_bytes(step.message.text));
        EXPECT_TRUE(challenge);
        EXPECT_EQ(challenge->prints.at(0).data, print_);  // decrypted from the vault
        answer =
            replay ? *replay
                   : login::sign_assertion(assertion_for(*challenge, verdict), key_.get()).value();
        last_assertion_ = *answer;
      }
      EXPECT_TRUE((*login)->answer(answer));
    }
  }

  nlohmann::json fingerprint_events() { return pam_stack_fixture::fingerprint_events(files_); }

  testing::TempDir dir_;
  PamStackFiles files_{dir_.path(), {}};
  std::unique_ptr<testing::Child> auditd_;
  crypto::EvpPkeyPtr key_;
  const Bytes print_{0x46, 0x50, 0x33, 0x01, 0x02, 0x03};
  std::string last_assertion_;
};

bool asked_fingerprint(const std::vector<LoginMessage>& seen) {
  for (const auto& m : seen) {
    if (m.kind == Kind::kFingerprint) return true;
  }
  return false;
}

TEST_F(PamStack, PasswordThenFingerprintSucceeds) {
  std::vector<LoginMessage> seen;
  auto step = play(options(), "correct horse", login::MatchResult::kMatch, &seen);
  EXPECT_EQ(step.state, State::kSucceeded) << step.failure;
  EXPECT_TRUE(asked_fingerprint(seen));
  ASSERT_TRUE(!fingerprint_events().empty());  // appended before PAM returned
  auto e = fingerprint_events().back();
  EXPECT_EQ(e["outcome"], "success");
  EXPECT_EQ(e["details"]["print_id"], "print-1");
  EXPECT_EQ(e["device"], "kiosk-0001");
}

TEST_F(PamStack, AWrongPasswordNeverReachesTheFingerprint) {
  std::vector<LoginMessage> seen;
  auto step = play(options(), "wrong", login::MatchResult::kMatch, &seen);
  EXPECT_EQ(step.state, State::kFailed);
  EXPECT_FALSE(asked_fingerprint(seen)) << "the enrolled print went to an unauthenticated kiosk";
}

TEST_F(PamStack, LockoutExactlyAtDeny) {
  if (getpwnam("daemon") == nullptr) GTEST_SKIP() << "no local user \"daemon\" for pam_faillock";
  const auto daemon = options("kiosk-0001", "10.8.0.5", "daemon");
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(play(daemon, "wrong", login::MatchResult::kMatch).state, State::kFailed) << i;
  }
  // After four failures the right password still gets through to the next factor (which
  // refuses daemon: no enrolled print, and says so in the audit log)...
  play(daemon, "correct horse", login::MatchResult::kMatch);
  ASSERT_EQ(fingerprint_events().size(), 1u);
  EXPECT_THAT(fingerprint_events()[0]["details"]["reason"].get<std::string>(),
              HasSubstr("no print of daemon"));
  // ...the fifth failure locks (deny=5): the right password no longer reaches it.
  EXPECT_EQ(play(daemon, "wrong", login::MatchResult::kMatch).state, State::kFailed);
  EXPECT_EQ(play(daemon, "correct horse", login::MatchResult::kMatch).state, State::kFailed);
  EXPECT_EQ(fingerprint_events().size(), 1u);
}

TEST_F(PamStack, WrongFingerThenBackOff) {
  for (int i = 1; i <= 5; ++i) {
    std::vector<LoginMessage> seen;
    EXPECT_EQ(play(options(), "correct horse", login::MatchResult::kNoMatch, &seen).state,
              State::kFailed)
        << i;
    EXPECT_TRUE(asked_fingerprint(seen)) << i;
  }
  std::vector<LoginMessage> seen;
  EXPECT_EQ(play(options(), "correct horse", login::MatchResult::kMatch, &seen).state,
            State::kFailed);
  EXPECT_FALSE(asked_fingerprint(seen)) << "asked during the back-off";
  bool told = false;
  for (const auto& m : seen) told |= m.text.find("Fingerprint locked: try again in") == 0;
  EXPECT_TRUE(told);
  ASSERT_TRUE(fingerprint_events().size() >= 6);  // appended before PAM returned
  EXPECT_EQ(fingerprint_events().back()["details"]["locked_for_s"], 30);
}

TEST_F(PamStack, AReplayedAssertionIsRefused) {
  ASSERT_EQ(play(options(), "correct horse", login::MatchResult::kMatch).state, State::kSucceeded);
  const std::string captured = last_assertion_;
  auto step = play(options(), "correct horse", login::MatchResult::kMatch, nullptr, captured);
  EXPECT_EQ(step.state, State::kFailed);
  ASSERT_TRUE(fingerprint_events().size() >= 2);  // appended before PAM returned
  EXPECT_THAT(fingerprint_events().back()["details"]["reason"].get<std::string>(),
              HasSubstr("wrong_nonce"));
}

TEST_F(PamStack, AnotherDeviceOrAnAddressOutsideThePoolIsRefused) {
  for (const auto& [device, source, reason] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"kiosk-9999", "10.8.0.5", "unknown device kiosk-9999"},
           {"kiosk-0001", "192.0.2.7", "outside the pools of site tokyo-1"}}) {
    std::vector<LoginMessage> seen;
    EXPECT_EQ(
        play(options(device, source), "correct horse", login::MatchResult::kMatch, &seen).state,
        State::kFailed)
        << reason;
    EXPECT_FALSE(asked_fingerprint(seen)) << reason;
  }
  ASSERT_TRUE(fingerprint_events().size() >= 2);  // appended before PAM returned
  auto events = fingerprint_events();
  EXPECT_THAT(events[0]["details"]["reason"].get<std::string>(), HasSubstr("unknown device"));
  EXPECT_EQ(events[1]["outcome"], "refused");
}

}  // namespace
}  // namespace enclave::sessionmgr
