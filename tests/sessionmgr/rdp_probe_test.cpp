// The host health probe against a real shadow desktop, a closed port and fake listeners that
// answer with the wrong bytes.
#include "sessionmgr/service/rdp_probe.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "sessionmgr/service/local_desktop.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;

// A loopback listener that answers the first connection with fixed bytes (after reading the
// request), or says nothing and keeps the connection open when `answer` is empty.
class FakeHost {
 public:
  explicit FakeHost(std::vector<std::uint8_t> answer, bool close_at_once = false)
      : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    EXPECT_EQ(::listen(fd_, 4), 0);
    socklen_t len = sizeof sa;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this, close_at_once] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      if (!close_at_once) {
        std::uint8_t buf[64];
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        received_ = n > 0 ? static_cast<int>(n) : 0;
        if (!answer_.empty()) {
          (void)!::send(c, answer_.data(), answer_.size(), MSG_NOSIGNAL);
        }
        while (!done_) std::this_thread::sleep_for(10ms);
      }
      ::close(c);
    });
  }
  ~FakeHost() {
    done_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  std::uint16_t port() const { return port_; }
  int received() const { return received_; }

 private:
  std::vector<std::uint8_t> answer_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> done_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  socklen_t len = sizeof sa;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);  // bound, never listened: connecting is refused
  return ntohs(sa.sin_port);
}

// A Connection Confirm with RDP_NEG_RSP selecting `protocol`.
std::vector<std::uint8_t> confirm_selecting(std::uint8_t protocol) {
  return {0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0,     0x00, 0x00, 0x12, 0x34,
          0x00, 0x02, 0x00, 0x08, 0x00, protocol, 0x00, 0x00, 0x00};
}

TEST(RdpProbe, ClosedPortFailsNamingHostAndPort) {
  const auto port = closed_port();
  Status s = probe_rdp("127.0.0.1", port, 1s);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kUnavailable);
  EXPECT_NE(s.error().message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << s.error().message;
  EXPECT_NE(s.error().message.find("refused"), std::string::npos) << s.error().message;
}

TEST(RdpProbe, SendsTheNineteenByteRequestAndAcceptsSsl) {
  FakeHost host(confirm_selecting(0x01));
  Status s = probe_rdp("127.0.0.1", host.port(), 2s);
  EXPECT_TRUE(s) << s.error().message;
  EXPECT_EQ(host.received(), 19);
}

TEST(RdpProbe, GarbageIsNotTpkt) {
  const std::string http = "HTTP/1.1 400 Bad Request\r\n\r\n";
  FakeHost host(std::vector<std::uint8_t>(http.begin(), http.end()));
  Status s = probe_rdp("127.0.0.1", host.port(), 2s);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("not TPKT"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("48545450"), std::string::npos) << s.error().message;
}

TEST(RdpProbe, SilenceTimesOut) {
  FakeHost host({});
  auto t0 = std::chrono::steady_clock::now();
  Status s = probe_rdp("127.0.0.1", host.port(), 300ms);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kTimeout);
  EXPECT_NE(s.error().message.find("nothing came back"), std::string::npos) << s.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST(RdpProbe, ImmediateCloseSaysSo) {
  FakeHost host({}, /*close_at_once=*/true);
  Status s = probe_rdp("127.0.0.1", host.port(), 2s);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("closed the connection without answering"), std::string::npos)
      << s.error().message;
}

TEST(RdpProbe, NegotiationFailureNamesTheCode) {
  FakeHost host({0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x03, 0x00, 0x08,
                 0x00, 0x05, 0x00, 0x00, 0x00});
  Status s = probe_rdp("127.0.0.1", host.port(), 2s);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("RDP_NEG_FAILURE code 5 (hybrid required)"), std::string::npos)
      << s.error().message;
}

TEST(RdpProbe, OtherSelectedProtocolIsNamed) {
  FakeHost host(confirm_selecting(0x02));
  Status s = probe_rdp("127.0.0.1", host.port(), 2s);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("selected protocol PROTOCOL_HYBRID"), std::string::npos)
      << s.error().message;
}

TEST(RdpProbe, LegacyRdpSecurityIsRefused) {
  FakeHost host({0x03, 0x00, 0x00, 0x0b, 0x06, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00});
  Status s = probe_rdp("127.0.0.1", host.port(), 2s);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("PROTOCOL_RDP"), std::string::npos) << s.error().message;
}

TEST(RdpProbe, TruncatedConfirmIsReported) {
  auto answer = confirm_selecting(0x01);
  answer.resize(10);
  FakeHost host(answer);
  Status s = probe_rdp("127.0.0.1", host.port(), 300ms);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("truncated: 10 of 19"), std::string::npos) << s.error().message;
}

TEST(RdpProbe, RealShadowDesktopAnswers) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << why;
  }
  testing::TempDir dir;
  LocalDesktopOptions options;
  options.kind = LocalDesktopKind::kShadow;
  options.work_dir = dir.path() / "desktop";
  auto desktop = LocalDesktop::start(options);
  ASSERT_TRUE(desktop) << desktop.error().describe();
  Status s = probe_rdp((*desktop)->info().host, (*desktop)->info().port);
  EXPECT_TRUE(s) << s.error().message;
}

}  // namespace
}  // namespace enclave::sessionmgr
