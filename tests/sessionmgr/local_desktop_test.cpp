// Real desktops started by LocalDesktop, reached by a real xfreerdp DIRECTLY (no gateway):
// the client's screen shows the desktop, the pin matches the certificate the host serves, and
// the host's log names the static channels the client offered (cliprdr, rdpdr): the positive
// control for the gateway tests, which read the same log to prove those never arrive. And the
// session's outbox: in every desktop process's environment, an xrdp account's while it exists.
#include "sessionmgr/service/local_desktop.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "common/x509.hpp"
#include "sessionmgr/service/credentials.hpp"
#include "sessionmgr/service/outbox.hpp"
#include "sessionmgr/service/rdp_probe.hpp"
#include "tests/sessionmgr/outbox_support.hpp"
#include "tests/support/process.hpp"
#include "tests/support/x_display.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kDesktopColour = "#3a6ea5";  // what LocalDesktop paints the root with

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The certificate the host serves after X.224 negotiation, as its SPKI pin.
std::string served_pin(const std::string& host, std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(host, "127.0.0.1");
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return "connect failed";
  }
  const std::uint8_t request[] = {0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00};
  (void)!::send(fd, request, sizeof request, 0);
  std::uint8_t confirm[19];
  std::size_t got = 0;
  while (got < sizeof confirm) {
    ssize_t n = ::recv(fd, confirm + got, sizeof confirm - got, 0);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  std::string pin = "no confirm";
  if (got == sizeof confirm) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1) {
      X509* cert = SSL_get1_peer_certificate(ssl);
      pin = cert ? x509::spki_sha256_hex(cert) : "no certificate";
      X509_free(cert);
    } else {
      pin = "handshake failed";
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
  }
  ::close(fd);
  return pin;
}

// Screenshots the client display until the desktop colour covers a good part of it.
long wait_for_desktop_colour(testing::XDisplay& x, const fs::path& png, long min_pixels,
                             std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  long pixels = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    if (x.screenshot(png)) {
      pixels = testing::png_pixels_of_colour(png, kDesktopColour, 6);
      if (pixels >= min_pixels) return pixels;
    }
    std::this_thread::sleep_for(500ms);
  }
  return pixels;
}

// ENCLAVE_KEEP_SCREENSHOTS=DIR keeps each test's client screenshot for a human to look at.
void keep_screenshot(const fs::path& png, const std::string& name) {
  if (const char* keep = std::getenv("ENCLAVE_KEEP_SCREENSHOTS"); keep && *keep) {
    std::error_code ec;
    fs::create_directories(keep, ec);
    fs::copy_file(png, fs::path(keep) / (name + ".png"), fs::copy_options::overwrite_existing, ec);
  }
}

uid_t owner_of(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_uid;
}

bool wait_for_log(const fs::path& log, const std::string& needle, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_text(log).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

TEST(LocalDesktop, ShadowStartsAnswersAndStops) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << why;
  }
  testing::TempDir dir;
  LocalDesktopOptions options;
  options.kind = LocalDesktopKind::kShadow;
  options.work_dir = dir.path() / "desktop";
  options.outbox = dir.path() / "outbox";
  const auto t0 = std::chrono::steady_clock::now();
  auto desktop = LocalDesktop::start(options);
  ASSERT_TRUE(desktop) << desktop.error().describe();
  std::cout << "shadow desktop started in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " ms\n";
  const LocalDesktopInfo info = (*desktop)->info();
  EXPECT_EQ(info.host, "127.0.0.1");
  EXPECT_NE(info.port, 0);
  EXPECT_EQ(info.server_name.rfind("desktop-", 0), 0u) << info.server_name;
  EXPECT_EQ(info.pin_sha256.size(), 64u);
  EXPECT_FALSE(info.user.empty());
  EXPECT_GE(info.password.size(), 16u);
  EXPECT_EQ(info.display.rfind(":", 0), 0u);
  EXPECT_TRUE(fs::exists(info.host_log));
  EXPECT_TRUE((*desktop)->alive());
  EXPECT_TRUE(probe_rdp(info.host, info.port));
  EXPECT_EQ(served_pin(info.host, info.port), info.pin_sha256);
  // Its processes (Xvfb, freerdp-shadow-cli, xclock when installed) know the session's outbox.
  EXPECT_GE(processes_with_env("ENCLAVE_OUTBOX=" + options.outbox.string()).size(), 2u);

  // Two desktops at once do not collide, and each has its own key.
  LocalDesktopOptions second = options;
  second.work_dir = dir.path() / "desktop2";
  second.outbox.clear();
  auto other = LocalDesktop::start(second);
  ASSERT_TRUE(other) << other.error().describe();
  EXPECT_NE((*other)->info().port, info.port);
  EXPECT_NE((*other)->info().display, info.display);
  EXPECT_NE((*other)->info().pin_sha256, info.pin_sha256);

  desktop->reset();
  Status after = probe_rdp(info.host, info.port, 500ms);
  EXPECT_FALSE(after);
  EXPECT_TRUE((*other)->alive());
}

TEST(LocalDesktop, ShadowDesktopShowsInXfreerdpAndLogsOfferedChannels) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << why;
  }
  if (auto why = testing::x_unavailable(); !why.empty()) GTEST_SKIP() << why;
  testing::TempDir dir;
  LocalDesktopOptions options;
  options.kind = LocalDesktopKind::kShadow;
  options.work_dir = dir.path() / "desktop";
  auto desktop = LocalDesktop::start(options);
  ASSERT_TRUE(desktop) << desktop.error().describe();
  const LocalDesktopInfo& info = (*desktop)->info();

  testing::XDisplay x(dir.path());
  fs::create_directories(dir.path() / "share");
  auto client = x.run_xfreerdp({"/v:" + info.host + ":" + std::to_string(info.port), "/cert:ignore",
                                "/u:" + info.user, "/p:" + info.password, "/size:1024x768",
                                "+clipboard", "/drive:share," + (dir.path() / "share").string()});
  const auto png = dir.path() / "client.png";
  long pixels = wait_for_desktop_colour(x, png, 100000, 40s);
  EXPECT_GE(pixels, 100000) << "client screen does not show the desktop; xfreerdp said:\n"
                            << client->stderr_text();
  EXPECT_GT(testing::png_colour_count(png), 1);
  keep_screenshot(png, "shadow_client");

  // The positive control: the host saw the client offer cliprdr and rdpdr.
  ASSERT_TRUE(wait_for_log(info.host_log, "Accepted channels:", 10s)) << read_text(info.host_log);
  const std::string log = read_text(info.host_log);
  EXPECT_NE(log.find("-  cliprdr"), std::string::npos) << log;
  EXPECT_NE(log.find("-  rdpdr"), std::string::npos) << log;
  client->signal(SIGTERM);
  client->wait(10s);
  EXPECT_TRUE((*desktop)->alive());
}

TEST(LocalDesktop, XrdpRefusesAnAccountThatAlreadyExists) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kXrdp); !why.empty()) {
    GTEST_SKIP() << why;
  }
  testing::TempDir dir;
  LocalDesktopOptions options;
  options.kind = LocalDesktopKind::kXrdp;
  options.work_dir = dir.path() / "desktop";
  options.account = "root";
  auto desktop = LocalDesktop::start(options);
  ASSERT_FALSE(desktop);
  EXPECT_EQ(desktop.error().code, Errc::kAlreadyExists);
  EXPECT_NE(::getpwnam("root"), nullptr);
}

TEST(LocalDesktop, XrdpDesktopLogsInShowsAndLogsOfferedChannels) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kXrdp); !why.empty()) {
    GTEST_SKIP() << why;
  }
  if (auto why = testing::x_unavailable(); !why.empty()) GTEST_SKIP() << why;
  testing::TempDir dir;
  LocalDesktopOptions options;
  options.kind = LocalDesktopKind::kXrdp;
  options.work_dir = dir.path() / "desktop";
  options.account = "enctest" + std::to_string(::getpid() % 100000);
  auto outbox = create_outbox(dir.path() / "outboxes", "s-xrdp", openssl_random);
  ASSERT_TRUE(outbox) << outbox.error().describe();
  options.outbox = outbox->dir;
  const auto t0 = std::chrono::steady_clock::now();
  auto desktop = LocalDesktop::start(options);
  ASSERT_TRUE(desktop) << desktop.error().describe();
  std::cout << "xrdp desktop started in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - t0)
                   .count()
            << " ms\n";
  const LocalDesktopInfo info = (*desktop)->info();
  EXPECT_EQ(info.user, options.account);
  const passwd* account = ::getpwnam(options.account.c_str());
  ASSERT_NE(account, nullptr);
  const uid_t account_uid = account->pw_uid;
  EXPECT_EQ(served_pin(info.host, info.port), info.pin_sha256);
  // The outbox is the account's while the desktop runs; a file its session writes there too.
  EXPECT_EQ(owner_of(outbox->dir), account_uid);
  EXPECT_EQ(owner_of(outbox->dir / kOutboxSessionFile), account_uid);
  std::ofstream(outbox->dir / "result.csv") << "a,b\n";
  ASSERT_EQ(::chown((outbox->dir / "result.csv").c_str(), account_uid, account->pw_gid), 0);

  {
    testing::XDisplay x(dir.path());
    fs::create_directories(dir.path() / "share");
    auto client =
        x.run_xfreerdp({"/v:" + info.host + ":" + std::to_string(info.port), "/cert:ignore",
                        "/u:" + info.user, "/p:" + info.password, "/size:1024x768", "+clipboard",
                        "/drive:share," + (dir.path() / "share").string()});
    const auto png = dir.path() / "client.png";
    long pixels = wait_for_desktop_colour(x, png, 100000, 60s);
    EXPECT_GE(pixels, 100000) << "client screen does not show the desktop; xfreerdp said:\n"
                              << client->stderr_text() << "\nsesman log:\n"
                              << read_text(options.work_dir / "sesman.log");
    EXPECT_GT(testing::png_colour_count(png), 1);
    keep_screenshot(png, "xrdp_client");

    // The positive control: xrdp names every static channel in the client's network data.
    ASSERT_TRUE(wait_for_log(info.host_log, "Adding channel: name rdpdr", 10s))
        << read_text(info.host_log);
    const std::string log = read_text(info.host_log);
    EXPECT_NE(log.find("Adding channel: name cliprdr"), std::string::npos);
    EXPECT_NE(log.find("login successful for user " + info.user), std::string::npos);
    // The session sesman started for the account (its window manager script's programs) has
    // the outbox in its environment.
    bool session_knows_outbox = false;
    for (int i = 0; i < 50 && !session_knows_outbox; ++i) {
      for (const auto& p : processes_with_env("ENCLAVE_OUTBOX=" + outbox->dir.string())) {
        session_knows_outbox = session_knows_outbox || p.uid == account_uid;
      }
      if (!session_knows_outbox) std::this_thread::sleep_for(200ms);
    }
    EXPECT_TRUE(session_knows_outbox) << "no process of " << info.user << " has ENCLAVE_OUTBOX";
    client->signal(SIGTERM);
    client->wait(10s);
  }
  EXPECT_TRUE((*desktop)->alive());

  desktop->reset();
  EXPECT_EQ(::getpwnam(options.account.c_str()), nullptr) << "the account was not removed";
  // Taken back before the account went: a later account reusing its uid owns none of it.
  for (const auto& f :
       {outbox->dir, outbox->dir / kOutboxSessionFile, outbox->dir / "result.csv"}) {
    EXPECT_EQ(owner_of(f), ::geteuid()) << f;
  }
  EXPECT_FALSE(probe_rdp(info.host, info.port, 500ms));
}

// xrdp 0.9 finds sesman through /etc/xrdp/sesman.ini whatever its own -c says; each desktop
// bind-mounts its own config there. Two at once: a login on the second reaches the second's
// sesman, not the first's.
TEST(LocalDesktop, TwoXrdpDesktopsEachUseTheirOwnSesman) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kXrdp); !why.empty()) {
    GTEST_SKIP() << why;
  }
  if (auto why = testing::x_unavailable(); !why.empty()) GTEST_SKIP() << why;
  testing::TempDir dir;
  LocalDesktopOptions a;
  a.kind = LocalDesktopKind::kXrdp;
  a.work_dir = dir.path() / "a";
  a.account = "enca" + std::to_string(::getpid() % 100000);
  LocalDesktopOptions b = a;
  b.work_dir = dir.path() / "b";
  b.account = "encb" + std::to_string(::getpid() % 100000);
  auto first = LocalDesktop::start(a);
  ASSERT_TRUE(first) << first.error().describe();
  auto second = LocalDesktop::start(b);
  ASSERT_TRUE(second) << second.error().describe();
  const LocalDesktopInfo info = (*second)->info();
  EXPECT_NE(info.port, (*first)->info().port);

  testing::XDisplay x(dir.path());
  auto client = x.run_xfreerdp({"/v:" + info.host + ":" + std::to_string(info.port), "/cert:ignore",
                                "/u:" + info.user, "/p:" + info.password, "/size:1024x768"});
  EXPECT_TRUE(wait_for_log(b.work_dir / "sesman.log", "user name " + info.user, 30s))
      << read_text(b.work_dir / "sesman.log");
  EXPECT_EQ(read_text(a.work_dir / "sesman.log").find(info.user), std::string::npos);
  EXPECT_GE(wait_for_desktop_colour(x, dir.path() / "client.png", 100000, 60s), 100000);
  client->signal(SIGTERM);
  client->wait(10s);
  EXPECT_TRUE((*first)->alive());
  EXPECT_TRUE((*second)->alive());
}

}  // namespace
}  // namespace enclave::sessionmgr
