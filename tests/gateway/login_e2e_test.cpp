// The login end to end with real parts only: enclave-auditd, enclave-sessiond running the
// shipped PAM stack (pam_faillock, pam_matrix in pam_unix's place, pam_enclave_fingerprint.so),
// enclave-gatewayd's login API, the registry and local CA driven by enclavectl, and the kiosk
// library with libfprint's virtual_device reader played as a finger. The kiosk enrols, logs
// in, and a real xfreerdp opens the desktop with the ticket it got. Then each way the issue
// says a login must fail, each from the analyst's side and from the audit log's.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>
#include <thread>

#include "kiosk/login_client.hpp"
#include "sessionmgr/service/local_desktop.hpp"
#include "tests/gateway/enclave_fixture.hpp"
#include "tests/kiosk/virtual_finger.hpp"
#include "tests/support/process.hpp"
#include "tests/support/x_display.hpp"

namespace enclave::gateway {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;
using fixture::set_key;
using fixture::shipped_policy;

constexpr const char* kPamMatrix = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so";
constexpr auto kFailureDelay = 400ms;
const std::filesystem::path kModuleDir = std::filesystem::path(ENCLAVE_BINARY_DIR) / "lib/security";

std::string iso_in(std::chrono::seconds from_now) {
  const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + from_now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The analyst at the kiosk: types the password it was given; counts what it was asked.
class Analyst : public kiosk::Person {
 public:
  explicit Analyst(std::string password) : password_(std::move(password)) {}
  std::optional<std::string> answer(const std::string& prompt, bool secret) override {
    prompts.push_back(prompt);
    return secret ? password_ : std::string();
  }
  void tell(const std::string& text, bool) override { told.push_back(text); }
  std::vector<std::string> prompts, told;

 private:
  std::string password_;
};

// The reader, counting whether the center ever asked for the finger.
class CountingMatcher : public kiosk::FingerprintMatcher {
 public:
  CountingMatcher(kiosk::FingerprintReader& reader, kiosk::Person& person)
      : inner_(reader, person) {}
  Expected<kiosk::FingerprintVerdict> match(
      const std::vector<login::EnrolledPrint>& prints) override {
    ++asked;
    return inner_.match(prints);
  }
  int asked = 0;

 private:
  kiosk::ReaderMatcher inner_;
};

class LoginEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kPamMatrix)) GTEST_SKIP() << kPamMatrix << " missing";
    reader_socket_ = dir_ / "reader";
    ASSERT_NO_FATAL_FAILURE(kiosk::open_virtual_device_or_skip(reader_socket_, reader_));
    if (IsSkipped()) return;

    // The shipped stack with pam_matrix for the password, as a site would swap in pam_sss.
    std::filesystem::create_directories(dir_ / "policies" / "pam");
    std::ofstream(dir_ / "passdb") << "alice:correct horse:enclave-login\n";
    std::string stack = fixture::read_text(testing::source_dir() / "policies/pam/enclave-login");
    stack = std::regex_replace(stack, std::regex("pam_unix\\.so"),
                               std::string(kPamMatrix) + " passdb=" + (dir_ / "passdb").string());
    std::ofstream(dir_ / "policies" / "pam" / "enclave-login") << stack;

    std::string sessions = shipped_policy("sessions.toml");
    sessions = set_key(sessions, "pam_service",
                       "\"enclave-login\"\npam_modules = \"" + kModuleDir.string() + "\"");
    sessions = set_key(sessions, "failure_delay_ms", std::to_string(kFailureDelay.count()));
    enclave_ = std::make_unique<fixture::EnclaveServices>(
        dir_, sessions, std::map<std::string, std::string>{{"pools_refresh_s", "1"}},
        [this](fixture::EnclaveServices& e) { register_kiosk(e); });
    ASSERT_NE(enclave_->login_port(), 0);
    options_.gateway_host = "127.0.0.1";
    options_.gateway_port = enclave_->login_port();
    options_.kit = kiosk::DeviceKit::in(dir_ / "kit");
    options_.user = "alice";
    bool admitted = false;
    // The login listener opens once the gateway has fetched the pools: a refused connect comes
    // back at once, so each try waits a little (10 s in all, for a loaded machine).
    for (int i = 0; i < 100 && !admitted; ++i) {
      admitted = admits_kiosks();
      if (!admitted) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(admitted) << "the login API does not take room-a's kiosks\n"
                          << enclave_->gatewayd().stderr_text();
  }

  // Before the gateway starts: the CA, the gateway's certificate from it, the registry (a
  // room whose pool is 127.0.0.0/30, its kiosk, alice in a project granting demo-shadow), and
  // a steward's approval of alice's enrolment on the kiosk.
  void register_kiosk(fixture::EnclaveServices& e) {
    auto ctl = [&](std::vector<std::string> args) {
      auto r = e.tool("enclavectl", args);
      std::string line;
      for (const auto& a : args) line += a + " ";
      EXPECT_EQ(r.exit_code, 0) << line << "\n" << r.out << r.err;
    };
    ctl({"ca", "init"});
    ctl({"gateway", "cert", "--name", "127.0.0.1", "--replace"});
    ctl({"user", "add", "alice", "--name", "Alice", "--role", "analyst"});
    ctl({"user", "add", "sam", "--name", "Sam", "--role", "steward"});
    ctl({"site", "add", "room-a", "--name", "Room A", "--ike-id", "room-a.sites.example", "--pool",
         "127.0.0.0/30"});
    ctl({"site", "approve", "room-a", "--until", "2099-01-01"});
    ctl({"device", "kit", "room-a", "--id", "kiosk-1", "--out", (dir_ / "kit").string()});
    ctl({"project", "add", "claims", "--title", "Claims study", "--from", "2026-01-01", "--until",
         "2099-01-01"});
    ctl({"project", "member", "add", "claims", "alice"});
    ctl({"project", "grant", "claims", "demo-shadow"});
    ctl({"enrolment", "approve", "alice", "kiosk-1", "--by", "sam"});
  }

  // The login API takes kiosks from room-a: a connection is accepted and kept open (until the
  // gateway has its pools, it closes every connection at once).
  bool admits_kiosks() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(enclave_->login_port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool open = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    if (open) {
      timeval wait{0, 300'000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
      char byte;
      open = ::recv(fd, &byte, 1, 0) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
    }
    ::close(fd);
    return open;
  }

  // The kiosk enrols alice's right index finger, as the steward watches.
  void enrol() {
    Analyst alice("");
    kiosk::FingerScript finger(reader_socket_,
                               kiosk::repeat("SCAN alice-right-index", reader_->enroll_stages()));
    auto enrolled = kiosk::run_enrolment(options_, alice, *reader_);
    ASSERT_TRUE(finger.finished());
    ASSERT_TRUE(enrolled) << enrolled.error().describe();
    ASSERT_TRUE(std::holds_alternative<login::Enrolled>(*enrolled))
        << std::get<login::ErrorReply>(*enrolled).description;
  }

  struct Attempt {
    Expected<kiosk::LoginOutcome> outcome = fail(Errc::kInternal, "not run");
    int fingerprint_asked = 0;
    std::chrono::milliseconds password_to_answer{0};  // the last answer to the center's reply
    std::vector<std::string> prompts;
  };

  // One login: the password typed, and `finger` on the reader if the center asks for it.
  Attempt log_in(const std::string& user, const std::string& password,
                 const std::string& finger = "alice-right-index") {
    Analyst person(password);
    CountingMatcher matcher(*reader_, person);
    auto options = options_;
    options.user = user;
    // The finger goes on the reader when the reader waits for one, and only then.
    std::unique_ptr<kiosk::FingerScript> finger_on_reader;
    reader_->on_finger_needed([&] {
      if (!finger_on_reader) {
        finger_on_reader = std::make_unique<kiosk::FingerScript>(
            reader_socket_, std::vector<std::string>{"SCAN " + finger});
      }
    });
    Attempt attempt;
    auto started = std::chrono::steady_clock::now();
    attempt.outcome = kiosk::run_login(options, person, matcher);
    attempt.password_to_answer = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    attempt.fingerprint_asked = matcher.asked;
    attempt.prompts = person.prompts;
    reader_->on_finger_needed({});
    if (finger_on_reader) {
      EXPECT_TRUE(finger_on_reader->finished());
    }
    return attempt;
  }

  // An operator's change (enclavectl ARGS), then, once `settle` has passed, alice's login: the
  // gateway ends the connection (no login answer at all) and audits why.
  void expect_refused_at_the_gateway_after(std::vector<std::string> change,
                                           std::chrono::milliseconds settle,
                                           const std::string& reason) {
    auto changed = enclave_->tool("enclavectl", change);
    ASSERT_EQ(changed.exit_code, 0) << changed.err;
    std::this_thread::sleep_for(settle);
    auto attempt = log_in("alice", "correct horse");
    EXPECT_FALSE(attempt.outcome) << refusal(attempt);
    EXPECT_TRUE(enclave_->wait_event("gateway.login.refused", reason));
  }

  static std::string refusal(const Attempt& a) {
    if (!a.outcome) return "error: " + a.outcome.error().describe();
    if (auto* e = std::get_if<login::ErrorReply>(&*a.outcome)) return e->description;
    return "success";
  }

  TempDir dir_;
  std::filesystem::path reader_socket_;
  std::unique_ptr<kiosk::FingerprintReader> reader_;
  std::unique_ptr<fixture::EnclaveServices> enclave_;
  kiosk::LoginOptions options_;
};

TEST_F(LoginEndToEnd, EnrolLogInAndOpenTheDesktop) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  auto attempt = log_in("alice", "correct horse");
  ASSERT_TRUE(attempt.outcome) << attempt.outcome.error().describe();
  ASSERT_TRUE(std::holds_alternative<login::Success>(*attempt.outcome)) << refusal(attempt);
  EXPECT_EQ(attempt.fingerprint_asked, 1);
  const auto& success = std::get<login::Success>(*attempt.outcome);
  EXPECT_EQ(success.ticket.size(), 64u);
  EXPECT_EQ(success.gateway.port, enclave_->port());

  auto succeeded = enclave_->wait_event("login.succeeded", "alice");
  ASSERT_TRUE(succeeded);
  EXPECT_EQ((*succeeded)["details"]["compartment"], "demo-shadow");
  EXPECT_TRUE(enclave_->wait_event("login.fingerprint", "accepted"));

  // The ticket opens the desktop: the command the kiosk would run, run for real.
  if (auto why = testing::x_unavailable(); !why.empty()) GTEST_SKIP() << "no desktop: " << why;
  if (auto why = sessionmgr::local_desktop_unavailable(sessionmgr::LocalDesktopKind::kShadow);
      !why.empty()) {
    GTEST_SKIP() << "no desktop: " << why;
  }
  testing::XDisplay display(dir_.path());
  auto args = kiosk::xfreerdp_arguments(success);
  args.erase(args.begin());  // the program's own name: run_xfreerdp supplies it
  args.push_back("/size:1024x768");
  auto client = display.run_xfreerdp(args);
  const std::string session = (*succeeded)["details"]["session_id"];
  auto start = enclave_->wait_event("gateway.session.start", session);
  ASSERT_TRUE(start) << enclave_->gatewayd().stderr_text();
  EXPECT_EQ((*start)["actor"], "alice");
  fixture::expect_desktop_on_screen(display, dir_ / "login-desktop.png");
  enclave_->tool("enclavectl", {"session", "end", session, "--reason", "test over"});
  client->wait(20s);
}

TEST_F(LoginEndToEnd, WrongPasswordAndUnknownUserGetTheSameAnswerAfterTheSameTime) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  auto wrong = log_in("alice", "wrong horse");
  auto unknown = log_in("mallory", "wrong horse");
  for (const auto* a : {&wrong, &unknown}) {
    ASSERT_TRUE(a->outcome) << a->outcome.error().describe();
    ASSERT_TRUE(std::holds_alternative<login::ErrorReply>(*a->outcome));
    EXPECT_EQ(refusal(*a), "login failed");
    EXPECT_EQ(a->fingerprint_asked, 0) << "a print went down before the password was right";
    EXPECT_GE(a->password_to_answer, kFailureDelay);
  }
  EXPECT_EQ(wrong.prompts, unknown.prompts);
  const auto gap = wrong.password_to_answer - unknown.password_to_answer;
  EXPECT_LT(std::chrono::abs(gap), 150ms)
      << "wrong password " << wrong.password_to_answer.count() << " ms, unknown user "
      << unknown.password_to_answer.count() << " ms";
  EXPECT_EQ(enclave_->events("login.failed").size(), 2u);
}

TEST_F(LoginEndToEnd, WrongFingerIsRefusedAndAudited) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  auto attempt = log_in("alice", "correct horse", "mallory-left-thumb");
  EXPECT_EQ(refusal(attempt), "login failed");
  EXPECT_EQ(attempt.fingerprint_asked, 1);
  EXPECT_TRUE(enclave_->wait_event("login.fingerprint", "no match"));
  EXPECT_TRUE(enclave_->wait_event("login.failed", "alice"));
}

TEST_F(LoginEndToEnd, KioskOfASuspendedSiteCannotConnect) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  // The gateway's pools refresh every second.
  expect_refused_at_the_gateway_after({"site", "suspend", "room-a", "--reason", "audit"}, 2500ms,
                                      "outside every approved");
}

TEST_F(LoginEndToEnd, LapsedSiteApprovalIsRefused) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  expect_refused_at_the_gateway_after({"site", "approve", "room-a", "--until", iso_in(3s)}, 5s,
                                      "outside every approved");
  EXPECT_TRUE(enclave_->wait_event("registry.site.lapsed", "room-a"));
}

TEST_F(LoginEndToEnd, RevokedDeviceCertificateIsRefusedAtTheHandshake) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  expect_refused_at_the_gateway_after({"device", "revoke", "kiosk-1", "--reason", "stolen"}, 2500ms,
                                      "revoked");
}

// From 127.0.0.9, outside room-a's 127.0.0.0/30: the connection is closed at accept, before a
// byte of TLS, whatever the client sends.
TEST_F(LoginEndToEnd, AddressOutsideEveryPoolIsRefusedBeforeTls) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = htonl(0x7f000009);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
  sockaddr_in gateway{};
  gateway.sin_family = AF_INET;
  gateway.sin_port = htons(enclave_->login_port());
  gateway.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&gateway), sizeof gateway), 0);
  // The start of a TLS ClientHello record.
  const unsigned char hello[] = {0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x03};
  (void)::send(fd, hello, sizeof hello, MSG_NOSIGNAL);
  char buffer[64];
  timeval limit{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
  ::close(fd);
  EXPECT_LE(n, 0) << "the gateway answered an address outside every pool";
  auto refused = enclave_->wait_event("gateway.login.refused", "127.0.0.9");
  ASSERT_TRUE(refused) << enclave_->gatewayd().stderr_text();
  EXPECT_THAT((*refused)["details"]["reason"].get<std::string>(),
              HasSubstr("outside every approved site's pool"));
}

// Another kiosk of the same room, kitted and registered, cannot stand in for the one alice
// enrolled on: her print is bound to that reader (and the assertion to that device's key).
TEST_F(LoginEndToEnd, AnotherKioskCannotStandInForTheEnrolledOne) {
  ASSERT_NO_FATAL_FAILURE(enrol());
  const auto other = dir_ / "other-kit";
  auto kitted = enclave_->tool(
      "enclavectl", {"device", "kit", "room-a", "--id", "kiosk-2", "--out", other.string()});
  ASSERT_EQ(kitted.exit_code, 0) << kitted.err;
  options_.kit = kiosk::DeviceKit::in(other);
  auto attempt = log_in("alice", "correct horse");
  EXPECT_EQ(refusal(attempt), "login failed");
  EXPECT_EQ(attempt.fingerprint_asked, 0);
  EXPECT_TRUE(enclave_->wait_event("login.fingerprint", "no print of alice"));
}

}  // namespace
}  // namespace enclave::gateway
