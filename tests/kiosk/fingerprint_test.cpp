// The kiosk's fingerprint reader against libfprint's own virtual_device driver (played as
// tests/kiosk/virtual_finger.hpp says) and its virtual_image driver.
#include "kiosk/fingerprint.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/login/assertion.hpp"
#include "tests/kiosk/virtual_finger.hpp"
#include "tests/support/process.hpp"

namespace enclave::kiosk {
namespace {

using namespace std::chrono_literals;
using Kind = FingerprintError::Kind;

class VirtualDeviceReader : public ::testing::Test {
 protected:
  void SetUp() override { open_reader(); }

  void open_reader() {
    reader_.reset();
    open_virtual_device_or_skip(socket_, reader_);
  }

  Bytes enroll(const std::string& finger) {
    FingerScript finger_script(socket_, repeat("SCAN " + finger, reader_->enroll_stages()));
    auto print = reader_->enroll("alice");
    EXPECT_TRUE(finger_script.finished());
    EXPECT_TRUE(print.has_value()) << print.error().describe();
    return print.has_value() ? *print : Bytes{};
  }

  Result<VerifyResult, FingerprintError> verify(const Bytes& print, const std::string& command) {
    FingerScript finger_script(socket_, {command});
    auto result = reader_->verify(print);
    EXPECT_TRUE(finger_script.finished());
    return result;
  }

  testing::TempDir dir_;
  std::filesystem::path socket_ = dir_ / "virtual-device";
  std::unique_ptr<FingerprintReader> reader_;
};

TEST_F(VirtualDeviceReader, DescribesItself) {
  EXPECT_EQ(reader_->driver(), "virtual_device");
  EXPECT_FALSE(reader_->name().empty());
  EXPECT_GT(reader_->enroll_stages(), 0);
}

TEST_F(VirtualDeviceReader, EnrolThenVerifyTheSameFingerMatches) {
  std::vector<EnrollProgress> progress;
  FingerScript finger_script(socket_, repeat("SCAN alice-right-index", reader_->enroll_stages()));
  auto print = reader_->enroll("alice", [&](const EnrollProgress& p) { progress.push_back(p); });
  ASSERT_TRUE(finger_script.finished());
  ASSERT_TRUE(print.has_value()) << print.error().describe();
  EXPECT_FALSE(print->empty());
  ASSERT_EQ(progress.size(), static_cast<std::size_t>(reader_->enroll_stages()));
  for (std::size_t i = 0; i < progress.size(); ++i) {
    EXPECT_EQ(progress[i].completed_stages, static_cast<int>(i + 1));
    EXPECT_EQ(progress[i].total_stages, reader_->enroll_stages());
    EXPECT_FALSE(progress[i].retry.has_value());
  }

  auto result = verify(*print, "SCAN alice-right-index");
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, VerifyResult::kMatch);
}

TEST_F(VirtualDeviceReader, AnotherFingerDoesNotMatch) {
  Bytes print = enroll("alice-right-index");
  auto result = verify(print, "SCAN mallory-right-index");
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, VerifyResult::kNoMatch);
}

TEST_F(VirtualDeviceReader, ARetryDuringEnrolmentIsReportedAndTheStageAskedAgain) {
  std::vector<std::string> commands{"SCAN alice-right-index", "RETRY 1"};
  for (int i = 1; i < reader_->enroll_stages(); ++i) commands.push_back("SCAN alice-right-index");
  FingerScript finger_script(socket_, commands);
  std::vector<EnrollProgress> progress;
  auto print = reader_->enroll("alice", [&](const EnrollProgress& p) { progress.push_back(p); });
  ASSERT_TRUE(finger_script.finished());
  ASSERT_TRUE(print.has_value()) << print.error().describe();
  ASSERT_EQ(progress.size(), static_cast<std::size_t>(reader_->enroll_stages()) + 1);
  EXPECT_EQ(progress[1].retry, RetryReason::kTooShort);
  EXPECT_EQ(progress[1].completed_stages, 1);
  EXPECT_EQ(progress.back().completed_stages, reader_->enroll_stages());

  auto result = verify(*print, "SCAN alice-right-index");
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, VerifyResult::kMatch);
}

TEST_F(VirtualDeviceReader, ARetryDuringVerificationAsksForTheFingerAgain) {
  Bytes print = enroll("alice-right-index");
  auto retry = verify(print, "RETRY 2");
  ASSERT_FALSE(retry.has_value());
  EXPECT_EQ(retry.error().kind, Kind::kRetry);
  EXPECT_EQ(retry.error().retry, RetryReason::kCenterFinger);
  EXPECT_STREQ(retry_advice(*retry.error().retry),
               "Center your finger on the reader and try again.");

  auto again = verify(print, "SCAN alice-right-index");
  ASSERT_TRUE(again.has_value()) << again.error().describe();
  EXPECT_EQ(*again, VerifyResult::kMatch);
}

TEST_F(VirtualDeviceReader, DeviceErrorsAreTypedAndNameTheReader) {
  Bytes print = enroll("alice-right-index");
  struct Case {
    int code;  // FpDeviceError
    Kind kind;
  };
  for (Case c : {Case{5, Kind::kProtocol}, Case{4, Kind::kBusy}, Case{0, Kind::kDevice}}) {
    auto failed = verify(print, "ERROR " + std::to_string(c.code));
    ASSERT_FALSE(failed.has_value()) << c.code;
    EXPECT_EQ(failed.error().kind, c.kind) << failed.error().describe();
    EXPECT_EQ(failed.error().driver, "virtual_device");
    EXPECT_NE(failed.error().describe().find("virtual_device"), std::string::npos);
    EXPECT_NE(failed.error().describe().find(reader_->name()), std::string::npos);
  }
  // The reader is still usable.
  auto result = verify(print, "SCAN alice-right-index");
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, VerifyResult::kMatch);
}

TEST_F(VirtualDeviceReader, ADeviceErrorEndsAnEnrolment) {
  FingerScript finger_script(socket_, {"SCAN alice-right-index", "ERROR 5"});
  auto print = reader_->enroll("alice");
  ASSERT_TRUE(finger_script.finished());
  ASSERT_FALSE(print.has_value());
  EXPECT_EQ(print.error().kind, Kind::kProtocol);
}

TEST_F(VirtualDeviceReader, ThePrintSurvivesTheChallengeAndAReopenedReader) {
  Bytes print = enroll("alice-right-index");

  // As it travels at login: base64 inside the challenge JSON, parsed by the kiosk.
  login::FingerprintChallenge challenge;
  auto nonce = login::new_nonce();
  ASSERT_TRUE(nonce.has_value());
  challenge.nonce = *nonce;
  challenge.user = "alice";
  challenge.device = "kiosk-7";
  challenge.prints = {{"alice-right-index", print}};
  challenge.expires_at = 1767225600;
  auto text = login::encode_challenge(challenge);
  ASSERT_TRUE(text.has_value()) << text.error().describe();
  auto parsed = login::parse_challenge(as_bytes(*text));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  ASSERT_EQ(parsed->prints.at(0).data, print);

  open_reader();  // a new libfprint context and device, as in a later login
  auto result = verify(parsed->prints.at(0).data, "SCAN alice-right-index");
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, VerifyResult::kMatch);
}

TEST_F(VirtualDeviceReader, BytesThatAreNotAPrintAreRefused) {
  for (const Bytes& garbage : {Bytes{}, Bytes{1, 2, 3}, Bytes(64, 0xff)}) {
    auto result = reader_->verify(garbage);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().kind, Kind::kBadPrint) << result.error().describe();
  }
}

TEST_F(VirtualDeviceReader, CancelFromAnotherThreadEndsAWaitingVerification) {
  Bytes print = enroll("alice-right-index");
  std::atomic<bool> done{false};
  std::thread canceller([&] {
    while (!done) {
      std::this_thread::sleep_for(50ms);
      reader_->cancel();
    }
  });
  auto result = reader_->verify(print);  // no finger ever comes
  done = true;
  canceller.join();
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, Kind::kCancelled) << result.error().describe();

  // A cancel meant for that verification does not reach the next one.
  auto next = verify(print, "SCAN alice-right-index");
  ASSERT_TRUE(next.has_value()) << next.error().describe();
  EXPECT_EQ(*next, VerifyResult::kMatch);
}

// --- virtual_image: real images through libfprint's NBIS minutiae detection and bozorth3 -----

// A synthetic fingerprint image: ridges are the level lines of a phase field, a smooth arch
// carrier plus one spiral phase term per minutia (Larkin and Fletcher's phase-portrait
// model), so each spiral is a ridge ending or bifurcation that NBIS's mindtct finds like a
// real one. The seed places the minutiae: one seed is one finger. (dx, dy) shifts the finger
// on the sensor, as two placements of the same finger differ.
constexpr int kImageWidth = 256;
constexpr int kImageHeight = 320;

Bytes synthetic_finger(std::uint32_t seed, int dx = 0, int dy = 0) {
  constexpr double kPi = 3.14159265358979323846;
  constexpr double kRidgePeriod = 9.0;  // pixels, about 0.46 mm at 500 dpi
  struct Minutia {
    double x, y, turn;
  };
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> along_x(40, kImageWidth - 40);
  std::uniform_real_distribution<double> along_y(40, kImageHeight - 40);
  std::vector<Minutia> minutiae;
  while (minutiae.size() < 30) {
    Minutia m{along_x(rng), along_y(rng), rng() % 2 ? 1.0 : -1.0};
    bool apart = true;
    for (const Minutia& other : minutiae) {
      apart = apart && std::hypot(m.x - other.x, m.y - other.y) > 24;
    }
    if (apart) minutiae.push_back(m);
  }
  Bytes pixels(static_cast<std::size_t>(kImageWidth * kImageHeight), 255);
  for (int py = 0; py < kImageHeight; ++py) {
    for (int px = 0; px < kImageWidth; ++px) {
      double x = px - dx;
      double y = py - dy;
      double phase =
          2 * kPi / kRidgePeriod * std::hypot(x - kImageWidth / 2.0, y + 1.5 * kImageHeight);
      for (const Minutia& m : minutiae) phase += m.turn * std::atan2(y - m.y, x - m.x);
      pixels[static_cast<std::size_t>(py * kImageWidth + px)] =
          static_cast<std::uint8_t>(std::lround(128 + 100 * std::cos(phase)));
    }
  }
  return pixels;
}

// What the virtual_image driver reads on its connection: {int32 width, int32 height} in host
// byte order, then the 8-bit grey pixels; a negative width is a command instead, -1 a retry
// (height: the FpDeviceRetry code).
Bytes image_message(const Bytes& pixels) {
  std::int32_t header[2] = {kImageWidth, kImageHeight};
  Bytes message(reinterpret_cast<const std::uint8_t*>(header),
                reinterpret_cast<const std::uint8_t*>(header) + sizeof header);
  message.insert(message.end(), pixels.begin(), pixels.end());
  return message;
}

Bytes retry_message(std::int32_t code) {
  std::int32_t header[2] = {-1, code};
  return Bytes(reinterpret_cast<const std::uint8_t*>(header),
               reinterpret_cast<const std::uint8_t*>(header) + sizeof header);
}

// The finger on libfprint's virtual_image driver, over one connection. An image that arrives
// while the reader is not waiting for a finger is dropped, so each message goes only when the
// reader says it needs a finger (FingerprintReader::on_finger_needed).
class ImageFinger {
 public:
  ImageFinger(std::filesystem::path socket_path, std::vector<Bytes> messages)
      : done_(std::async(std::launch::async,
                         [this, path = std::move(socket_path), messages = std::move(messages)] {
                           return play(path, messages);
                         })) {}
  ~ImageFinger() {
    stop();
    if (done_.valid()) done_.wait();
  }
  void finger_needed() {
    std::lock_guard lock(mu_);
    ++needed_;
    cv_.notify_all();
  }
  ::testing::AssertionResult finished() { return done_.get(); }

 private:
  void stop() {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

  ::testing::AssertionResult play(const std::filesystem::path& path,
                                  const std::vector<Bytes>& messages) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct Closer {
      int fd;
      ~Closer() { ::close(fd); }
    } closer{fd};
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      return ::testing::AssertionFailure() << "connect " << path << ": " << std::strerror(errno);
    }
    for (std::size_t i = 0; i < messages.size(); ++i) {
      std::unique_lock lock(mu_);
      if (!cv_.wait_for(lock, 20s, [&] { return stopped_ || needed_ > i; }) || stopped_) {
        return ::testing::AssertionFailure() << "the reader never asked for placement " << i;
      }
      lock.unlock();
      const Bytes& message = messages[i];
      for (std::size_t sent = 0; sent < message.size();) {
        ssize_t n = ::write(fd, message.data() + sent, message.size() - sent);
        if (n <= 0) return ::testing::AssertionFailure() << "write: " << std::strerror(errno);
        sent += static_cast<std::size_t>(n);
      }
    }
    return ::testing::AssertionSuccess();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t needed_ = 0;  // guarded by mu_
  bool stopped_ = false;    // guarded by mu_
  std::future<::testing::AssertionResult> done_;
};

class VirtualImageReader : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("FP_VIRTUAL_IMAGE", socket_.c_str(), 1);
    auto reader = FingerprintReader::open("virtual_image");
    ::unsetenv("FP_VIRTUAL_IMAGE");
    if (!reader) {
      if (reader.error().kind == Kind::kNoDevice) {
        GTEST_SKIP() << "this libfprint has no virtual_image driver: " << reader.error().describe();
      }
      FAIL() << reader.error().describe();
    }
    reader_ = std::move(*reader);
  }

  // Each message goes when the reader next asks for a finger.
  std::unique_ptr<ImageFinger> place(std::vector<Bytes> messages) {
    auto finger = std::make_unique<ImageFinger>(socket_, std::move(messages));
    reader_->on_finger_needed([f = finger.get()] { f->finger_needed(); });
    return finger;
  }

  Bytes enroll(std::uint32_t seed) {
    std::vector<Bytes> images;
    for (int i = 0; i < reader_->enroll_stages(); ++i) {
      images.push_back(image_message(synthetic_finger(seed, i % 3 - 1, i % 2)));
    }
    auto finger = place(std::move(images));
    auto print = reader_->enroll("alice");
    EXPECT_TRUE(finger->finished());
    EXPECT_TRUE(print.has_value()) << print.error().describe();
    return print.has_value() ? *print : Bytes{};
  }

  Result<VerifyResult, FingerprintError> verify(const Bytes& print, Bytes message) {
    auto finger = place({std::move(message)});
    auto result = reader_->verify(print);
    EXPECT_TRUE(finger->finished());
    return result;
  }

  testing::TempDir dir_;
  std::filesystem::path socket_ = dir_ / "virtual-image";
  std::unique_ptr<FingerprintReader> reader_;
};

TEST_F(VirtualImageReader, TheSameFingerPlacedAgainMatches) {
  Bytes print = enroll(7);
  auto result = verify(print, image_message(synthetic_finger(7, 3, -2)));
  ASSERT_TRUE(result.has_value()) << result.error().describe();
  EXPECT_EQ(*result, VerifyResult::kMatch);
}

TEST_F(VirtualImageReader, AnotherFingerDoesNotMatch) {
  Bytes print = enroll(7);
  for (std::uint32_t other : {8u, 9u, 10u}) {
    auto result = verify(print, image_message(synthetic_finger(other)));
    ASSERT_TRUE(result.has_value()) << result.error().describe();
    EXPECT_EQ(*result, VerifyResult::kNoMatch) << "finger " << other;
  }
}

TEST_F(VirtualImageReader, ARetryAsksForTheFingerAgain) {
  Bytes print = enroll(7);
  auto retry = verify(print, retry_message(1));
  ASSERT_FALSE(retry.has_value());
  EXPECT_EQ(retry.error().kind, Kind::kRetry);
  EXPECT_EQ(retry.error().retry, RetryReason::kTooShort);
  EXPECT_EQ(retry.error().driver, "virtual_image");

  auto again = verify(print, image_message(synthetic_finger(7, -2, 1)));
  ASSERT_TRUE(again.has_value()) << again.error().describe();
  EXPECT_EQ(*again, VerifyResult::kMatch);
}

TEST_F(VirtualImageReader, APrintFromAnotherReaderIsRefused) {
  Bytes image_print = enroll(7);
  reader_.reset();
  testing::TempDir other;
  auto device_reader = open_virtual_device(other / "virtual-device");
  if (!device_reader) GTEST_SKIP() << device_reader.error().describe();
  auto result = (*device_reader)->verify(image_print);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, Kind::kBadPrint);
  EXPECT_NE(result.error().message.find("virtual_image"), std::string::npos)
      << result.error().describe();
}

TEST(FingerprintReader, NoReaderWithTheDriverAskedFor) {
  auto reader = FingerprintReader::open("no_such_driver");
  ASSERT_FALSE(reader.has_value());
  EXPECT_EQ(reader.error().kind, Kind::kNoDevice);
  EXPECT_EQ(reader.error().driver, "no_such_driver");
  EXPECT_NE(reader.error().describe().find("no_such_driver"), std::string::npos);
}

}  // namespace
}  // namespace enclave::kiosk
