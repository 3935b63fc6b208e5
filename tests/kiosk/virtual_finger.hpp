// libfprint's virtual_device driver played as a finger: the driver listens on the Unix socket
// named by FP_VIRTUAL_DEVICE and takes one command per connection ("SCAN <finger id>",
// "RETRY <FpDeviceRetry>", "ERROR <FpDeviceError>"), as libfprint's and fprintd's own test
// suites drive it. A scan matches an enrolled print when the finger ids are the same.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "kiosk/fingerprint.hpp"

namespace enclave::kiosk {

// The virtual_device reader listening on socket_path. libfprint reads the variable when the
// reader is opened (its context enumerates then). kNoDevice: this libfprint lacks the driver.
inline Result<std::unique_ptr<FingerprintReader>, FingerprintError> open_virtual_device(
    const std::filesystem::path& socket_path) {
  ::setenv("FP_VIRTUAL_DEVICE", socket_path.c_str(), 1);
  auto reader = FingerprintReader::open("virtual_device");
  ::unsetenv("FP_VIRTUAL_DEVICE");
  return reader;
}

// open_virtual_device into `reader` for a test's SetUp: skips the test when this libfprint has
// no virtual_device driver, fails it on any other error (callers return when IsSkipped()).
inline void open_virtual_device_or_skip(const std::filesystem::path& socket_path,
                                        std::unique_ptr<FingerprintReader>& reader) {
  auto opened = open_virtual_device(socket_path);
  if (!opened) {
    if (opened.error().kind == FingerprintError::Kind::kNoDevice) {
      GTEST_SKIP() << "this libfprint has no virtual_device driver: " << opened.error().describe();
    }
    FAIL() << opened.error().describe();
  }
  reader = std::move(*opened);
}

// Sends one command to the driver and waits until it has been taken: the driver closes the
// connection after acting on the command, so the end of the stream is the acknowledgment.
inline ::testing::AssertionResult send_command(
    const std::filesystem::path& socket_path, const std::string& command,
    std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.native().size() >= sizeof address.sun_path) {
    return ::testing::AssertionFailure() << "socket path too long: " << socket_path;
  }
  std::strcpy(address.sun_path, socket_path.c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ::testing::AssertionFailure() << "socket: " << std::strerror(errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    return ::testing::AssertionFailure()
           << "connect " << socket_path << ": " << std::strerror(errno);
  }
  if (::write(fd, command.data(), command.size()) != static_cast<ssize_t>(command.size())) {
    return ::testing::AssertionFailure() << "write " << command << ": " << std::strerror(errno);
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return ::testing::AssertionFailure() << "the driver did not take \"" << command << "\"";
    }
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[256];
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n == 0) return ::testing::AssertionSuccess();
    if (n < 0 && errno != EINTR) {
      // A reset after the driver read the command is an acknowledgment too.
      if (errno == ECONNRESET) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "read: " << std::strerror(errno);
    }
  }
}

// The finger: commands sent from a thread of their own while the reader's synchronous call
// runs GLib's main loop in the test's thread (which is where the driver reads them).
class FingerScript {
 public:
  FingerScript(std::filesystem::path socket_path, std::vector<std::string> commands)
      : done_(std::async(std::launch::async,
                         [path = std::move(socket_path), commands = std::move(commands)] {
                           for (const std::string& command : commands) {
                             auto sent = send_command(path, command);
                             if (!sent) return sent;
                           }
                           return ::testing::AssertionSuccess();
                         })) {}
  ::testing::AssertionResult finished() { return done_.get(); }

 private:
  std::future<::testing::AssertionResult> done_;
};

inline std::vector<std::string> repeat(const std::string& command, int times) {
  return std::vector<std::string>(static_cast<std::size_t>(times), command);
}

}  // namespace enclave::kiosk
