// The kiosk's side of an enrolment, as far as it runs on the kiosk alone: the finger scanned on
// libfprint's virtual_device reader with the progress told to the person, the print the same
// reader then matches at login, and the kit read before anyone is asked to scan. Recording the
// print at the center through a real gateway and session manager is the login end-to-end
// test's (tests/gateway/login_e2e_test.cpp).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/files.hpp"
#include "common/x509.hpp"
#include "kiosk/fingerprint.hpp"
#include "kiosk/login_client.hpp"
#include "tests/kiosk/virtual_finger.hpp"
#include "tests/support/process.hpp"

namespace enclave::kiosk {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Kind = FingerprintError::Kind;

// The person at the kiosk: remembers what they were told; never asked anything here.
class ListeningPerson : public Person {
 public:
  std::optional<std::string> answer(const std::string& prompt, bool) override {
    ADD_FAILURE() << "an enrolment asked the person: " << prompt;
    return std::nullopt;
  }
  void tell(const std::string& text, bool is_error) override {
    told.emplace_back((is_error ? "! " : "") + text);
  }
  std::vector<std::string> told;
};

class KioskEnrolment : public ::testing::Test {
 protected:
  void SetUp() override { open_virtual_device_or_skip(socket_, reader_); }

  // What `enclavectl device kit` writes, from a CA of the test's own.
  DeviceKit write_kit() {
    const auto ca_dir = dir_ / "ca";
    EXPECT_TRUE(x509::create_ca(ca_dir / "ca.crt", ca_dir / "ca.key", "test CA"));
    auto ca = x509::CertificateAuthority::load(ca_dir / "ca.crt", ca_dir / "ca.key");
    EXPECT_TRUE(ca);
    auto issued = ca->issue({x509::Purpose::kClient, "kiosk-a1", {}, {}, 30});
    EXPECT_TRUE(issued);
    DeviceKit kit = DeviceKit::in(dir_ / "kit");
    std::filesystem::create_directories(dir_ / "kit");
    EXPECT_TRUE(write_file_atomically(kit.ca, ca->certificate_pem()));
    EXPECT_TRUE(write_file_atomically(kit.certificate, issued->certificate_pem));
    EXPECT_TRUE(write_file_atomically(kit.private_key, issued->private_key_pem, 0600));
    return kit;
  }

  testing::TempDir dir_;
  std::filesystem::path socket_ = dir_ / "virtual-device";
  std::unique_ptr<FingerprintReader> reader_;
};

TEST_F(KioskEnrolment, TellsEachScanAndTheSameReaderMatchesThePrintAtLogin) {
  const int stages = reader_->enroll_stages();
  FingerScript finger(socket_, repeat("SCAN alice-right-index", stages));
  ListeningPerson person;
  auto print = enrol_finger(*reader_, person, "alice");
  ASSERT_TRUE(finger.finished());
  ASSERT_TRUE(print.has_value()) << print.error().describe();
  std::vector<std::string> expected;
  for (int i = 1; i <= stages; ++i) {
    expected.push_back("Scan " + std::to_string(i) + " of " + std::to_string(stages) + " done.");
  }
  EXPECT_EQ(person.told, expected);

  // At login the print comes back in the challenge; the matcher scans against it.
  ReaderMatcher matcher(*reader_, person);
  FingerScript same(socket_, {"SCAN alice-right-index"});
  auto verdict = matcher.match({{"p-alice", *print}});
  ASSERT_TRUE(same.finished());
  ASSERT_TRUE(verdict.has_value()) << verdict.error().describe();
  EXPECT_EQ(verdict->print_id, "p-alice");
  EXPECT_EQ(verdict->result, login::MatchResult::kMatch);

  FingerScript other(socket_, {"SCAN mallory-right-index"});
  auto refused = matcher.match({{"p-alice", *print}});
  ASSERT_TRUE(other.finished());
  ASSERT_TRUE(refused.has_value()) << refused.error().describe();
  EXPECT_EQ(refused->result, login::MatchResult::kNoMatch);
}

TEST_F(KioskEnrolment, AFailedScanIsExplainedAndAskedForAgain) {
  std::vector<std::string> commands{"SCAN alice-right-index", "RETRY 2"};
  for (int i = 1; i < reader_->enroll_stages(); ++i) commands.push_back("SCAN alice-right-index");
  FingerScript finger(socket_, commands);
  ListeningPerson person;
  auto print = enrol_finger(*reader_, person, "alice");
  ASSERT_TRUE(finger.finished());
  ASSERT_TRUE(print.has_value()) << print.error().describe();
  ASSERT_GE(person.told.size(), 2u);
  EXPECT_EQ(person.told[1], std::string("! ") + retry_advice(RetryReason::kCenterFinger));
  EXPECT_EQ(person.told.back(), "Scan " + std::to_string(reader_->enroll_stages()) + " of " +
                                    std::to_string(reader_->enroll_stages()) + " done.");
}

TEST_F(KioskEnrolment, AReaderErrorEndsItAndNamesTheReader) {
  FingerScript finger(socket_, {"SCAN alice-right-index", "ERROR 5"});
  ListeningPerson person;
  auto print = enrol_finger(*reader_, person, "alice");
  ASSERT_TRUE(finger.finished());
  ASSERT_FALSE(print.has_value());
  EXPECT_EQ(print.error().code, Errc::kUnavailable);
  EXPECT_THAT(print.error().message, HasSubstr("virtual_device"));
  EXPECT_THAT(person.told,
              ElementsAre("Scan 1 of " + std::to_string(reader_->enroll_stages()) + " done."));
}

TEST_F(KioskEnrolment, AMissingKitIsReportedBeforeAnyoneScans) {
  LoginOptions options;
  options.gateway_host = "127.0.0.1";
  options.gateway_port = 9;
  options.kit = DeviceKit::in(dir_ / "no-kit");
  options.user = "alice";
  ListeningPerson person;
  // No finger is scripted: an enrolment that asked for one would wait for ever.
  auto outcome = run_enrolment(options, person, *reader_);
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code, Errc::kNotFound);
  EXPECT_THAT(outcome.error().message, HasSubstr((dir_ / "no-kit" / "ca.crt").string()));
  EXPECT_TRUE(person.told.empty());
}

TEST_F(KioskEnrolment, AGatewayThatCannotBeReachedIsReportedAfterTheScans) {
  // A port nobody listens on: bound, never listened to, for the test's lifetime.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);

  LoginOptions options;
  options.gateway_host = "127.0.0.1";
  options.gateway_port = ntohs(address.sin_port);
  options.kit = write_kit();
  options.user = "alice";
  FingerScript finger(socket_, repeat("SCAN alice-right-index", reader_->enroll_stages()));
  ListeningPerson person;
  auto outcome = run_enrolment(options, person, *reader_);
  ASSERT_TRUE(finger.finished());
  ASSERT_FALSE(outcome.has_value());
  EXPECT_EQ(outcome.error().code, Errc::kUnavailable);
  EXPECT_THAT(outcome.error().message, HasSubstr("cannot reach the gateway at 127.0.0.1:" +
                                                 std::to_string(options.gateway_port)));
  EXPECT_EQ(person.told.size(), static_cast<std::size_t>(reader_->enroll_stages()));
}

}  // namespace
}  // namespace enclave::kiosk
