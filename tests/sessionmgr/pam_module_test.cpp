// The login's PAM stack for real: Linux-PAM reads the shipped policies/pam/enclave-login,
// rendered as enclave-sessiond renders it but with pam_matrix (pam_wrapper's test module) in
// place of pam_unix, so pam_faillock, the password check and pam_enclave_fingerprint.so all
// run; the registry is a real registry.db with a sealed print; the audit log is a real
// enclave-auditd. The kiosk is played by the test: it types the password and signs
// assertions with the device's Ed25519 key.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <openssl/evp.h>

#include <pwd.h>

#include <fstream>
#include <regex>

#include "common/login/assertion.hpp"
#include "common/login/ed25519.hpp"
#include "sessionmgr/service/pam_login.hpp"
#include "sessionmgr/service/print_vault.hpp"
#include "sessionmgr/service/registry_store.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using testing::Child;
using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;
using State = LoginStep::State;
using Kind = LoginMessage::Kind;

constexpr const char* kPamMatrix = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so";
const std::filesystem::path kModuleDir = std::filesystem::path(ENCLAVE_BINARY_DIR) / "lib/security";

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class PamStack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kPamMatrix)) GTEST_SKIP() << kPamMatrix << " missing";
    std::filesystem::create_directories(dir_ / "policies");
    std::filesystem::create_directories(state() / "run");
    std::filesystem::create_directories(state() / "faillock");
    std::ofstream(dir_ / "policies" / "audit.toml")
        << "[audit]\norigin = \"test.example/audit\"\n"
        << "[audit.checkpoint]\nevery_entries = 1000\nevery_seconds = 30\n";
    const std::map<std::string, std::string> env{{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
                                                 {"ENCLAVE_STATE_DIR", state().string()}};
    ASSERT_EQ(testing::run({testing::binary("enclave-auditd").string(), "keygen"}, env).exit_code,
              0);
    auditd_ = std::make_unique<Child>(
        std::vector<std::string>{testing::binary("enclave-auditd").string(), "run"}, env,
        dir_.path());
    ASSERT_TRUE(testing::wait_for_path(audit_socket())) << auditd_->stderr_text();

    // The shipped stack, pam_unix swapped for pam_matrix and its password file.
    // pam_faillock counts only users the system knows (NSS): the lockout test uses "daemon".
    std::ofstream(dir_ / "passdb") << "alice:correct horse:enclave-login\n"
                                   << "daemon:correct horse:enclave-login\n";
    std::string stack = read_text(testing::source_dir() / "policies/pam/enclave-login");
    const std::string matrix = std::string(kPamMatrix) + " passdb=" + (dir_ / "passdb").string();
    stack = std::regex_replace(stack, std::regex("pam_unix\\.so"), matrix);
    for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
             {"@ENCLAVE_STATE_DIR@", state().string()},
             {"@ENCLAVE_PAM_MODULES@", kModuleDir.string()},
             {"@ENCLAVE_REGISTRY@", registry().string()},
             {"@ENCLAVE_PRINT_KEY@", print_key().string()},
             {"@ENCLAVE_AUDIT_SOCKET@", audit_socket().string()}}) {
      stack = std::regex_replace(stack, std::regex(from), to);
    }
    std::filesystem::create_directories(dir_ / "pam");
    std::ofstream(dir_ / "pam" / "enclave-login") << stack;

    // The registry: an approved site, its kiosk, alice's enrolled print.
    key_.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
    auto store = registry::RegistryStore::open(registry());
    ASSERT_TRUE(store) << store.error().describe();
    auto vault = PrintVault::load(print_key(), PrintVault::KeyFile::kCreateIfMissing);
    ASSERT_TRUE(vault);
    const TimePoint now = std::chrono::system_clock::now();
    registry::Site site;
    site.id = "tokyo-1";
    site.name = "Tokyo room 1";
    site.ike_identity = "tokyo-1.sites.enclave";
    site.site_class = "security-room";
    site.pools.push_back(registry::IpNetwork::parse("10.8.0.0/24").value());
    site.created_at = site.updated_at = now;
    ASSERT_TRUE(registry::approve(site, now - 24h, now + 24h * 365, now));
    registry::Device device;
    device.id = "kiosk-0001";
    device.site = "tokyo-1";
    device.certificate_pem = "-";
    device.certificate_sha256 = std::string(64, 'a');
    device.serial = "01";
    device.public_key = login::ed25519_public_key(key_.get()).value();
    device.created_at = now;
    registry::User alice{"alice", "Alice", {registry::Role::kAnalyst}, false, now, now};
    registry::User steward{"sam", "Sam", {registry::Role::kSteward}, false, now, now};
    auto sealed = vault->seal(print_, {"alice", "kiosk-0001", "print-1"});
    ASSERT_TRUE(sealed);
    auto done = store->transaction([&]() -> Status {
      ENCLAVE_TRY(store->insert_user(alice));
      ENCLAVE_TRY(store->insert_user(steward));
      ENCLAVE_TRY(store->insert_site(site));
      ENCLAVE_TRY(store->insert_device(device));
      registry::Enrolment e;
      e.user = "alice";
      e.device = "kiosk-0001";
      e.state = registry::EnrolmentState::kEnrolled;
      e.approved_by = "sam";
      e.approved_at = now;
      e.enrolled_at = now;
      e.print_id = "print-1";
      auto id = store->insert_enrolment(e);
      if (!id) return error_of(id);
      return store->insert_print("print-1", *id, *sealed, now);
    });
    ASSERT_TRUE(done) << done.error().describe();
  }

  std::filesystem::path state() const { return dir_ / "state"; }
  std::filesystem::path registry() const { return state() / "sessionmgr" / "registry.db"; }
  std::filesystem::path print_key() const { return state() / "keys" / "prints.key"; }
  std::filesystem::path audit_socket() const { return state() / "run" / "auditd.sock"; }

  PamLoginOptions options(const std::string& device = "kiosk-0001",
                          const std::string& source = "10.8.0.5",
                          const std::string& user = "alice") const {
    PamLoginOptions o;
    o.confdir = dir_ / "pam";
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
        login::FingerprintAssertion a{challenge->nonce,
                                      challenge->user,
                                      challenge->device,
                                      challenge->prints.front().print_id,
                                      verdict,
                                      std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count()};
        answer = replay ? *replay : login::sign_assertion(a, key_.get()).value();
        last_assertion_ = *answer;
      }
      EXPECT_TRUE((*login)->answer(answer));
    }
  }

  nlohmann::json fingerprint_events() {
    auto r = testing::run({testing::binary("enclave-audit").string(), "query", "--type",
                           "login.fingerprint", "--json"},
                          {{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
                           {"ENCLAVE_STATE_DIR", state().string()}});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_array() ? j : nlohmann::json::array();
  }

  TempDir dir_;
  std::unique_ptr<Child> auditd_;
  login::EvpPkeyPtr key_;
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
