// The relay's integration fixture: enclave-auditd, enclave-sessiond and enclave-gatewayd as
// real processes in a scratch directory, on the shipped audit and gateway policies (the
// gateway on a free loopback port) and a sessions.toml the test chooses. Helpers issue tickets
// with enclavectl and read the audit log with enclave-audit.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/ipc/client.hpp"
#include "common/x509.hpp"
#include "sessionmgr/service/methods.hpp"
#include "tests/support/process.hpp"
#include "tests/support/x_display.hpp"

namespace enclave::gateway::fixture {

inline std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline std::uint16_t free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t n = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
  close(fd);
  return ntohs(a.sin_port);
}

// Replaces the line starting with `key =` in a TOML text.
inline std::string set_key(std::string text, const std::string& key, const std::string& value) {
  std::regex line("(^|\n)" + key + " = [^\n]*");
  return std::regex_replace(text, line, "$1" + key + " = " + value,
                            std::regex_constants::format_first_only);
}

inline std::string shipped_policy(const std::string& file) {
  return read_text(testing::source_dir() / "policies" / file);
}

// The analyst's view reaches the desktop: at least 100,000 pixels of the desktop's colour.
inline void expect_desktop_on_screen(testing::XDisplay& display, const std::filesystem::path& png) {
  long pixels = 0;
  for (int i = 0; i < 30 && pixels < 100000; ++i) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    ASSERT_TRUE(display.screenshot(png));
    pixels = testing::png_pixels_of_colour(png, "#3a6ea5", 6);
  }
  EXPECT_GE(pixels, 100000) << "the client screen does not show the desktop: " << png;
  if (const char* keep = std::getenv("ENCLAVE_KEEP_SCREENSHOTS")) {
    std::filesystem::copy_file(png, std::filesystem::path(keep) / png.filename(),
                               std::filesystem::copy_options::overwrite_existing);
  }
}

class EnclaveServices {
 public:
  // sessions_toml gets gateway_address set to the gateway's port; gateway_keys replace keys
  // of the shipped gateway.toml (e.g. {"write_stall_s", "2"}).
  // prepare runs once enclave-sessiond serves, before enclave-gatewayd starts (e.g. the local
  // CA and the gateway's certificate for the login API, which is on its own free port and off
  // until keys/ca/ca.crt exists).
  EnclaveServices(const testing::TempDir& dir, const std::string& sessions_toml,
                  const std::map<std::string, std::string>& gateway_keys = {},
                  const std::function<void(EnclaveServices&)>& prepare = {})
      : dir_(dir), port_(free_port()), login_port_(free_port()) {
    const auto policies = dir_ / "policies";
    std::filesystem::create_directories(policies);
    // sessiond checks that every tier's export profile exists.
    std::filesystem::copy(testing::source_dir() / "policies" / "exitcontrol",
                          policies / "exitcontrol", std::filesystem::copy_options::recursive);
    const std::string address = "\"127.0.0.1:" + std::to_string(port_) + "\"";
    std::ofstream(policies / "audit.toml") << shipped_policy("audit.toml");
    std::ofstream(policies / "sessions.toml") << set_key(sessions_toml, "gateway_address", address);
    std::string gateway = set_key(shipped_policy("gateway.toml"), "listen", address);
    gateway = std::regex_replace(gateway, std::regex("(\\[gateway\\.login\\]\n)listen = [^\n]*"),
                                 "$1listen = \"127.0.0.1:" + std::to_string(login_port_) + "\"");
    for (const auto& [key, value] : gateway_keys) gateway = set_key(gateway, key, value);
    std::ofstream(policies / "gateway.toml") << gateway;

    EXPECT_EQ(tool("enclave-auditd", {"keygen"}).exit_code, 0);
    auto keygen = tool("enclave-gatewayd", {"keygen"});
    EXPECT_EQ(keygen.exit_code, 0) << keygen.err;
    auditd_ = start("enclave-auditd", "auditd.sock");
    sessiond_ = start("enclave-sessiond", "sessiond.sock");
    if (prepare) prepare(*this);
    gatewayd_ = start("enclave-gatewayd", "gatewayd.sock");
    auto fp = x509::xfreerdp_fingerprint_of_file(state() / "keys" / "gateway.crt");
    EXPECT_TRUE(fp);
    if (fp) fingerprint_ = *fp;
  }

  std::map<std::string, std::string> env() const {
    return {{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
            {"ENCLAVE_STATE_DIR", state().string()}};
  }
  std::filesystem::path state() const { return dir_ / "state"; }
  std::uint16_t port() const { return port_; }
  std::uint16_t login_port() const { return login_port_; }
  testing::Child& sessiond() { return *sessiond_; }
  // The gateway certificate's fingerprint as xfreerdp's /cert:fingerprint:sha256: takes it.
  const std::string& fingerprint() const { return fingerprint_; }
  testing::Child& gatewayd() { return *gatewayd_; }

  testing::RunResult tool(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), testing::binary(name).string());
    return testing::run(args, env());
  }

  // enclavectl ticket issue ... --json
  nlohmann::json issue(const std::string& user, const std::string& compartment,
                       const std::string& source = "127.0.0.1") {
    auto r = tool("enclavectl", {"ticket", "issue", "--user", user, "--device", "kiosk-07",
                                 "--source", source, "--compartment", compartment, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  }

  // Audit events of one type (oldest first).
  std::vector<nlohmann::json> events(const std::string& type) {
    auto r = tool("enclave-audit", {"query", "--type", type, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<nlohmann::json> out;
    if (r.exit_code != 0) return out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_object() && j.contains("events")) j = j["events"];
    if (j.is_array()) {
      for (auto& e : j) out.push_back(e);
    }
    return out;
  }

  // Waits until an event of `type` whose JSON text contains `needle` is in the log.
  std::optional<nlohmann::json> wait_event(
      const std::string& type, const std::string& needle,
      std::chrono::seconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& e : events(type)) {
        if (e.dump().find(needle) != std::string::npos) return e;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return std::nullopt;
  }

  // The sessions the gateway relays now, from its control socket (gateway.session.list).
  nlohmann::json gateway_sessions() {
    auto client = ipc::Client::connect(state() / "run" / "gatewayd.sock");
    EXPECT_TRUE(client) << client.error().message;
    if (!client) return nlohmann::json::array();
    auto r = client->call(sessionmgr::methods::kGatewaySessionList, nlohmann::json::object());
    EXPECT_TRUE(r) << r.error().message;
    return r ? (*r)["sessions"] : nlohmann::json::array();
  }

 private:
  std::unique_ptr<testing::Child> start(const std::string& name, const std::string& socket) {
    auto child = std::make_unique<testing::Child>(
        std::vector<std::string>{testing::binary(name).string(), "run"}, env(), dir_.path());
    EXPECT_TRUE(testing::wait_for_path(state() / "run" / socket)) << child->stderr_text();
    return child;
  }

  const testing::TempDir& dir_;
  std::uint16_t port_ = 0, login_port_ = 0;
  std::string fingerprint_;
  std::unique_ptr<testing::Child> auditd_, sessiond_, gatewayd_;
};

}  // namespace enclave::gateway::fixture
