// confirm_address against real strongSwan: two charon daemons, "center" and "site", each in
// its own network namespace (joined by a veth pair) with its own strongswan.conf, VICI socket
// and /run (charon's pid file path is fixed). The site authenticates with a pre-shared key
// and asks the center for a virtual IP from a pool. Only the IKE SA is needed (no CHILD_SA,
// so no kernel IPsec data path): the center's VICI socket then lists the site's identity
// and the address it assigned.
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "gateway/service/vici_client.hpp"
#include "tests/support/process.hpp"

namespace enclave::gateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const fs::path kCharon = "/usr/lib/ipsec/charon";
constexpr const char* kCenterIdentity = "center.enclave.test";
constexpr const char* kSiteIdentity = "site-a.enclave.test";
constexpr const char* kCenterAddress = "10.99.0.1";
constexpr const char* kSiteAddress = "10.99.0.2";
constexpr const char* kPool = "10.123.0.0/24";
constexpr auto kTimeout = 5000ms;

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<std::string> missing_prerequisite() {
  if (::geteuid() != 0) return "needs root (network namespaces and charon)";
  if (!fs::exists(kCharon)) {
    return "no " + kCharon.string() + " (Debian package strongswan-charon)";
  }
  if (testing::run({"swanctl", "--help"}).exit_code == 127) {
    return "no swanctl (Debian package strongswan-swanctl)";
  }
  if (testing::run({"ip", "-V"}).exit_code != 0) return "no ip (Debian package iproute2)";
  return std::nullopt;
}

// One charon: its directory holds strongswan.conf, swanctl.conf, the VICI socket, its /run
// and its log.
struct Daemon {
  std::string netns;
  fs::path dir;
  std::unique_ptr<testing::Child> charon;

  fs::path socket() const { return dir / "charon.vici"; }
  fs::path conf() const { return dir / "strongswan.conf"; }
  std::string uri() const { return "unix://" + socket().string(); }
  std::map<std::string, std::string> env() const { return {{"STRONGSWAN_CONF", conf()}}; }
  std::string log() const { return read_text(dir / "charon.log"); }

  testing::RunResult swanctl(std::vector<std::string> args) const {
    args.insert(args.begin(), "swanctl");
    args.insert(args.end(), {"--uri", uri()});
    return testing::run(args, env(), 30s);
  }
};

// Replaces each @KEY@ of a configuration template.
std::string fill(std::string text, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string marker = "@" + key + "@";
    for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker, at)) {
      text.replace(at, marker.size(), value);
      at += value.size();
    }
  }
  return text;
}

// Only the plugins that IKE with a PSK and a virtual IP pool need; no routes or virtual IPs
// are installed (the test needs the IKE SA, not the data path).
constexpr const char* kStrongswanConf = R"(charon {
  load = random nonce aes sha1 sha2 hmac kdf gmp pem pkcs1 x509 pubkey socket-default kernel-netlink vici attr
  install_routes = no
  install_virtual_ip = no
  filelog {
    charon {
      path = @DIR@/charon.log
      default = 1
      flush_line = yes
    }
  }
  syslog { daemon { default = -1 } }
  plugins { vici { socket = unix://@DIR@/charon.vici } }
}
swanctl { load = pem pkcs1 x509 pubkey }
)";

constexpr const char* kSecrets = R"(
secrets {
  ike-site-a {
    id-1 = @CENTER_ID@
    id-2 = @SITE_ID@
    secret = "vici-test-psk-3b9f1c"
  }
}
)";

constexpr const char* kCenterSwanctl = R"(
connections {
  sites {
    version = 2
    local_addrs = @CENTER_ADDRESS@
    pools = sites
    proposals = aes128-sha256-modp2048
    local { auth = psk
            id = @CENTER_ID@ }
    remote { auth = psk
             id = @SITE_ID@ }
  }
}
pools { sites { addrs = @POOL@ } }
)";

constexpr const char* kSiteSwanctl = R"(
connections {
  center {
    version = 2
    remote_addrs = @CENTER_ADDRESS@
    vips = 0.0.0.0
    proposals = aes128-sha256-modp2048
    local { auth = psk
            id = @SITE_ID@ }
    remote { auth = psk
             id = @CENTER_ID@ }
  }
}
)";

class ViciAgainstCharon : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto missing = missing_prerequisite()) GTEST_SKIP() << *missing;
    const std::string id = std::to_string(::getpid());
    center_.netns = "evc" + id;
    site_.netns = "evs" + id;
    center_.dir = dir_ / "center";
    site_.dir = dir_ / "site";

    auto added = testing::run({"ip", "netns", "add", center_.netns});
    if (added.exit_code != 0) GTEST_SKIP() << "cannot create a network namespace: " << added.err;
    netns_.push_back(center_.netns);
    ASSERT_TRUE(ip({"netns", "add", site_.netns}));
    netns_.push_back(site_.netns);
    const std::string center_if = "vc" + id, site_if = "vs" + id;
    auto veth =
        testing::run({"ip", "link", "add", center_if, "type", "veth", "peer", "name", site_if});
    if (veth.exit_code != 0) GTEST_SKIP() << "cannot create a veth pair: " << veth.err;
    ASSERT_TRUE(ip({"link", "set", center_if, "netns", center_.netns}));
    ASSERT_TRUE(ip({"link", "set", site_if, "netns", site_.netns}));
    ASSERT_TRUE(ip({"-n", center_.netns, "addr", "add", std::string(kCenterAddress) + "/24", "dev",
                    center_if}));
    ASSERT_TRUE(
        ip({"-n", site_.netns, "addr", "add", std::string(kSiteAddress) + "/24", "dev", site_if}));
    for (const auto& [ns, dev] : {std::pair{center_.netns, center_if}, {site_.netns, site_if}}) {
      ASSERT_TRUE(ip({"-n", ns, "link", "set", dev, "up"}));
      ASSERT_TRUE(ip({"-n", ns, "link", "set", "lo", "up"}));
    }

    start(center_, kCenterSwanctl);
    start(site_, kSiteSwanctl);
    if (HasFatalFailure()) return;
    auto up = site_.swanctl({"--initiate", "--ike", "center"});
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err << "\nsite:\n" << site_.log();

    // The address the center assigned, as the site's own charon reports it.
    auto listed = site_.swanctl({"--list-sas", "--raw"});
    std::smatch vip;
    ASSERT_TRUE(std::regex_search(listed.out, vip, std::regex(R"(local-vips=\[([0-9.]+)\])")))
        << listed.out << listed.err;
    assigned_ = vip[1];
    ASSERT_EQ(assigned_.rfind("10.123.0.", 0), 0u) << assigned_ << " is outside " << kPool;
  }

  void TearDown() override {
    center_.charon.reset();  // SIGTERM, then SIGKILL after 5 s
    site_.charon.reset();
    for (const auto& ns : netns_) testing::run({"ip", "netns", "del", ns});  // takes the veth
  }

  static bool ip(std::vector<std::string> args) {
    args.insert(args.begin(), "ip");
    auto r = testing::run(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0;
  }

  void start(Daemon& d, const std::string& swanctl_conf) {
    fs::create_directories(d.dir / "run");
    std::ofstream(d.conf()) << fill(kStrongswanConf, {{"DIR", d.dir.string()}});
    std::ofstream(d.dir / "swanctl.conf")
        << fill(swanctl_conf + kSecrets, {{"CENTER_ID", kCenterIdentity},
                                          {"SITE_ID", kSiteIdentity},
                                          {"CENTER_ADDRESS", kCenterAddress},
                                          {"POOL", kPool}});
    // ip netns exec gives charon a private mount namespace: its /run is its own directory.
    d.charon = std::make_unique<testing::Child>(
        std::vector<std::string>{"ip", "netns", "exec", d.netns, "sh", "-c",
                                 "mount --bind \"$1\" /run && exec \"$2\"", "sh",
                                 (d.dir / "run").string(), kCharon.string()},
        d.env(), d.dir);
    ASSERT_TRUE(testing::wait_for_path(d.socket())) << d.log() << d.charon->stderr_text();
    auto loaded = d.swanctl({"--load-all", "--file", (d.dir / "swanctl.conf").string()});
    ASSERT_EQ(loaded.exit_code, 0) << loaded.out << loaded.err << d.log();
  }

  // The next address of the pool: one the center did not assign.
  std::string unassigned() const {
    const int last = std::stoi(assigned_.substr(assigned_.rfind('.') + 1));
    return "10.123.0." + std::to_string(last + 1);
  }

  testing::TempDir dir_;
  Daemon center_, site_;
  std::vector<std::string> netns_;
  std::string assigned_;
};

TEST_F(ViciAgainstCharon, ConfirmsTheAddressTheCenterAssignedToTheSite) {
  auto held = confirm_address(center_.socket(), kSiteIdentity, assigned_, kTimeout);
  ASSERT_TRUE(held) << held.error().describe();
  EXPECT_TRUE(*held) << center_.log();
  auto mapped = confirm_address(center_.socket(), kSiteIdentity, "::ffff:" + assigned_, kTimeout);
  ASSERT_TRUE(mapped) << mapped.error().describe();
  EXPECT_TRUE(*mapped);
}

TEST_F(ViciAgainstCharon, AnotherAddressIsNotConfirmed) {
  for (const std::string& address : {unassigned(), std::string(kSiteAddress), std::string("::1")}) {
    auto held = confirm_address(center_.socket(), kSiteIdentity, address, kTimeout);
    ASSERT_TRUE(held) << held.error().describe();
    EXPECT_FALSE(*held) << address;
  }
}

TEST_F(ViciAgainstCharon, AnotherIdentityIsNotConfirmed) {
  // "sites" is the center's connection name, not an identity.
  for (const char* identity : {"site-b.enclave.test", kCenterIdentity, "sites", "site-a"}) {
    auto held = confirm_address(center_.socket(), identity, assigned_, kTimeout);
    ASSERT_TRUE(held) << held.error().describe();
    EXPECT_FALSE(*held) << identity;
  }
}

TEST_F(ViciAgainstCharon, TheSitesOwnVirtualIpIsNotARemoteOne) {
  // The site's charon holds the address as a local virtual IP, assigned by its peer.
  auto held = confirm_address(site_.socket(), kCenterIdentity, assigned_, kTimeout);
  ASSERT_TRUE(held) << held.error().describe();
  EXPECT_FALSE(*held);
}

TEST_F(ViciAgainstCharon, ATunnelTornDownNoLongerConfirms) {
  auto down = site_.swanctl({"--terminate", "--ike", "center"});
  ASSERT_EQ(down.exit_code, 0) << down.out << down.err;
  auto held = confirm_address(center_.socket(), kSiteIdentity, assigned_, kTimeout);
  ASSERT_TRUE(held) << held.error().describe();
  EXPECT_FALSE(*held) << center_.log();
}

TEST_F(ViciAgainstCharon, AStoppedCharonTimesOutThenAnswersAgain) {
  center_.charon->signal(SIGSTOP);
  const auto started = std::chrono::steady_clock::now();
  auto stalled = confirm_address(center_.socket(), kSiteIdentity, assigned_, 300ms);
  const auto took = std::chrono::steady_clock::now() - started;
  center_.charon->signal(SIGCONT);
  ASSERT_FALSE(stalled);
  EXPECT_EQ(stalled.error().code, Errc::kTimeout);
  EXPECT_NE(stalled.error().message.find(center_.socket().string()), std::string::npos);
  EXPECT_LT(took, 2s);
  auto held = confirm_address(center_.socket(), kSiteIdentity, assigned_, kTimeout);
  ASSERT_TRUE(held) << held.error().describe();
  EXPECT_TRUE(*held);
}

TEST_F(ViciAgainstCharon, ADeadCharonIsUnavailable) {
  center_.charon->signal(SIGTERM);
  ASSERT_NE(center_.charon->wait(10s), -1);
  auto dead = confirm_address(center_.socket(), kSiteIdentity, assigned_, kTimeout);
  ASSERT_FALSE(dead);
  EXPECT_EQ(dead.error().code, Errc::kUnavailable) << dead.error().describe();
  EXPECT_NE(dead.error().message.find(center_.socket().string()), std::string::npos);
}

// Without charon: the socket end of the client.

TEST(ViciClient, AStaleSocketFileIsUnavailable) {
  testing::TempDir dir;
  const fs::path path = dir / "charon.vici";
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ::close(fd);  // the file stays; nothing listens
  auto stale = confirm_address(path, kSiteIdentity, "10.123.0.1", kTimeout);
  ASSERT_FALSE(stale);
  EXPECT_EQ(stale.error().code, Errc::kUnavailable);
  EXPECT_NE(stale.error().message.find(path.string()), std::string::npos);
  auto absent = confirm_address(dir / "absent.vici", kSiteIdentity, "10.123.0.1", kTimeout);
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().code, Errc::kUnavailable);
}

TEST(ViciClient, RefusesBadArgumentsBeforeConnecting) {
  testing::TempDir dir;
  const fs::path path = dir / "absent.vici";
  for (const auto& [identity, address] : {std::pair<std::string, std::string>{"", "10.123.0.1"},
                                          {kSiteIdentity, "10.123.0.256"},
                                          {kSiteIdentity, "site-a.enclave.test"},
                                          {kSiteIdentity, ""}}) {
    auto refused = confirm_address(path, identity, address, kTimeout);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, Errc::kInvalidArgument) << identity << " " << address;
  }
  auto long_path = confirm_address(fs::path("/tmp") / std::string(200, 'x'), kSiteIdentity,
                                   "10.123.0.1", kTimeout);
  ASSERT_FALSE(long_path);
  EXPECT_EQ(long_path.error().code, Errc::kInvalidArgument);
}

}  // namespace
}  // namespace enclave::gateway
