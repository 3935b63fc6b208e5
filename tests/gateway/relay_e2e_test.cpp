// The relay end to end with real processes: enclave-auditd, enclave-sessiond (local desktops),
// enclave-gatewayd, and real xfreerdp clients under Xvfb reaching freerdp-shadow-cli and xrdp
// desktops through the gateway. What the host saw is read from the host's own log.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/x509.hpp"
#include "gateway/core/preconnection.hpp"
#include "gateway/core/x224.hpp"
#include "sessionmgr/service/local_desktop.hpp"
#include "tests/gateway/enclave_fixture.hpp"
#include "tests/support/process.hpp"
#include "tests/support/x_display.hpp"

namespace enclave::gateway {
namespace {

using testing::binary;
using testing::Child;
using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;

using fixture::expect_desktop_on_screen;
using fixture::read_text;
using fixture::set_key;
using fixture::shipped_policy;

// The services on the shipped policies; ticket_ttl_s replaces the ticket lifetime when set.
class Enclave : public fixture::EnclaveServices {
 public:
  explicit Enclave(const TempDir& dir, int ticket_ttl_s = 0)
      : EnclaveServices(dir, sessions_policy(ticket_ttl_s)) {}

 private:
  static std::string sessions_policy(int ticket_ttl_s) {
    std::string text = shipped_policy("sessions.toml");
    return ticket_ttl_s > 0 ? set_key(text, "ticket_ttl_s", std::to_string(ticket_ttl_s)) : text;
  }
};

// Every file under dir whose name is `name`.
std::vector<std::filesystem::path> find_files(const std::filesystem::path& dir,
                                              const std::string& name) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == name) out.push_back(it->path());
  }
  return out;
}

std::string skip_reason(sessionmgr::LocalDesktopKind kind) {
  if (auto why = testing::x_unavailable(); !why.empty()) return why;
  return sessionmgr::local_desktop_unavailable(kind);
}

std::vector<std::string> client_args(const Enclave& enclave, const std::string& ticket,
                                     const std::filesystem::path& share) {
  return {"/v:127.0.0.1:" + std::to_string(enclave.port()),
          "/pcb:" + ticket,
          "/cert:fingerprint:sha256:" + enclave.fingerprint(),
          "/sec:tls",
          "/size:1024x768",
          "+clipboard",
          "/drive:share," + share.string(),
          "/log-level:INFO"};
}

// The session's byte counters from gateway.session.end: the named channel moved nothing.
void expect_nothing_crossed(const nlohmann::json& end, const std::string& channel) {
  bool seen = false;
  for (const auto& c : end["details"]["channels"]) {
    if (c["name"] != channel) continue;
    seen = true;
    EXPECT_FALSE(c["allowed"].get<bool>()) << channel;
    EXPECT_EQ(c["to_host"], 0) << channel;
    EXPECT_EQ(c["to_client"], 0) << channel;
  }
  EXPECT_TRUE(seen) << "no counters for " << channel << " in " << end.dump();
}

// One analyst through the gateway: a real xfreerdp that asks for the clipboard and a drive.
class RelayEndToEnd : public ::testing::Test {
 protected:
  void connect(const std::string& user, const std::string& compartment) {
    enclave_ = std::make_unique<Enclave>(dir_);
    auto ticket = enclave_->issue(user, compartment);
    ASSERT_TRUE(ticket.contains("ticket")) << ticket.dump();
    session_ = ticket["session_id"];
    display_ = std::make_unique<testing::XDisplay>(dir_.path());
    std::filesystem::create_directories(dir_ / "share");
    client_ = display_->run_xfreerdp(client_args(*enclave_, ticket["ticket"], dir_ / "share"));
    auto start = enclave_->wait_event("gateway.session.start", session_);
    ASSERT_TRUE(start) << enclave_->gatewayd().stderr_text();
    start_ = *start;
  }

  // The one log the session's desktop host wrote under the state directory.
  std::string host_log(const std::string& name) {
    auto logs = find_files(enclave_->state(), name);
    EXPECT_EQ(logs.size(), 1u) << name;
    return logs.empty() ? std::string() : read_text(logs[0]);
  }

  // Ends the session as an operator: the client goes at once; nothing crossed on the
  // refused channels. Returns gateway.session.end.
  nlohmann::json end_session(const std::string& reason) {
    auto ended = enclave_->tool("enclavectl", {"session", "end", session_, "--reason", reason});
    EXPECT_EQ(ended.exit_code, 0) << ended.err;
    EXPECT_NE(client_->wait(20s), -1) << "xfreerdp still running after session end";
    auto end = enclave_->wait_event("gateway.session.end", session_);
    EXPECT_TRUE(end);
    if (!end) return nlohmann::json::object();
    expect_nothing_crossed(*end, "cliprdr");
    expect_nothing_crossed(*end, "rdpdr");
    return *end;
  }

  TempDir dir_;
  std::unique_ptr<Enclave> enclave_;
  std::unique_ptr<testing::XDisplay> display_;
  std::unique_ptr<Child> client_;
  std::string session_;
  nlohmann::json start_;
};

TEST_F(RelayEndToEnd, ShadowDesktopThroughTheGatewayWithClipboardAndDriveClosed) {
  if (auto why = skip_reason(sessionmgr::LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << why;
  }
  ASSERT_NO_FATAL_FAILURE(connect("alice", "demo-shadow"));
  EXPECT_LE(start_["details"]["ticket_to_first_byte_us"].get<std::int64_t>(), 1'000'000);
  expect_desktop_on_screen(*display_, dir_ / "shadow-through-gateway.png");

  // The gateway refused both channels the client asked for, by name.
  ASSERT_TRUE(enclave_->wait_event("gateway.channel.refused", "cliprdr"));
  ASSERT_TRUE(enclave_->wait_event("gateway.channel.refused", "rdpdr"));
  // The host's own log lists what it accepted: drdynvc, never cliprdr or rdpdr.
  const std::string log = host_log("shadow.log");
  ASSERT_THAT(log, HasSubstr("Accepted channels:"));
  EXPECT_THAT(log, HasSubstr(" drdynvc"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(" cliprdr")));
  EXPECT_THAT(log, ::testing::Not(HasSubstr(" rdpdr")));

  // An operator sees the session and ends it; the client is disconnected at once.
  EXPECT_THAT(enclave_->tool("enclavectl", {"session", "list"}).out, HasSubstr(session_));
  auto end = end_session("test over");
  EXPECT_THAT(end["details"]["reason"].get<std::string>(), HasSubstr("test over"));
}

TEST_F(RelayEndToEnd, XrdpDesktopLogsInWithInjectedCredentialsAndNeverSeesClipboardOrDrive) {
  if (auto why = skip_reason(sessionmgr::LocalDesktopKind::kXrdp); !why.empty()) {
    GTEST_SKIP() << why;
  }
  // The client has no user name or password: only the gateway's injected credential can log
  // in to xrdp, so a desktop on screen proves the injection.
  ASSERT_NO_FATAL_FAILURE(connect("bob", "demo-xrdp"));
  ASSERT_TRUE(enclave_->wait_event("gateway.credentials.injected", session_));
  expect_desktop_on_screen(*display_, dir_ / "xrdp-through-gateway.png");

  // xrdp names every static channel it was offered; it offers cliprdr and rdpdr itself.
  const std::string log = host_log("xrdp.log");
  ASSERT_THAT(log, HasSubstr("Adding channel: name drdynvc"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("Adding channel: name cliprdr")));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("Adding channel: name rdpdr")));
  end_session("test over");
}

// A raw client: TCP, preconnection PDU, X.224 request; returns the socket and the answer.
struct RawClient {
  int fd = -1;
  Bytes answer;
  ~RawClient() {
    if (fd >= 0) close(fd);
  }
};

RawClient raw_connect(std::uint16_t port, const std::string& ticket, std::uint32_t protocols) {
  RawClient c;
  c.fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return c;
  timeval tv{10, 0};
  setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  PreconnectionPdu pcb;
  pcb.version = 2;
  pcb.blob = ticket;
  Bytes out = encode_preconnection(pcb).value();
  ConnectionRequest cr;
  cr.negotiation = NegotiationRequest{0, protocols};
  Bytes request = encode_connection_request(cr).value();
  out.insert(out.end(), request.begin(), request.end());
  if (write(c.fd, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return c;
  std::uint8_t buf[512];
  ssize_t n = read(c.fd, buf, sizeof buf);
  if (n > 0) c.answer.assign(buf, buf + n);
  return c;
}

class RelayRefusals : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = skip_reason(sessionmgr::LocalDesktopKind::kShadow); !why.empty()) {
      GTEST_SKIP() << why;
    }
    enclave_ = std::make_unique<Enclave>(dir_);
  }
  TempDir dir_;
  std::unique_ptr<Enclave> enclave_;
};

TEST_F(RelayRefusals, UnknownTicketIsRefusedBeforeAnyDesktopAndAudited) {
  auto c = raw_connect(enclave_->port(), std::string(64, 'a'), kProtocolSsl);
  EXPECT_TRUE(c.answer.empty()) << "the gateway answered a bad ticket";
  auto refused = enclave_->wait_event("gateway.connection.refused", "ticket refused");
  ASSERT_TRUE(refused);
  EXPECT_EQ((*refused)["details"]["stage"], "ticket");
  // No desktop was started for it.
  EXPECT_TRUE(find_files(enclave_->state(), "shadow.log").empty());
}

TEST(RelayExpiry, ExpiredTicketIsRefused) {
  if (auto why = skip_reason(sessionmgr::LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << why;
  }
  TempDir dir;
  Enclave enclave(dir, 5);  // the shortest ticket lifetime policy allows
  auto ticket = enclave.issue("frank", "demo-shadow");
  ASSERT_TRUE(ticket.contains("ticket"));
  std::this_thread::sleep_for(6s);
  auto c = raw_connect(enclave.port(), ticket["ticket"], kProtocolSsl);
  EXPECT_TRUE(c.answer.empty()) << "an expired ticket was answered";
  EXPECT_TRUE(enclave.wait_event("gateway.connection.refused", "expired"));
}

TEST_F(RelayRefusals, TicketIsSingleUse) {
  auto ticket = enclave_->issue("carol", "demo-shadow");
  {
    auto first = raw_connect(enclave_->port(), ticket["ticket"], kProtocolSsl);
    auto confirm = decode_connection_confirm(first.answer);
    ASSERT_TRUE(confirm) << "first use not answered with a Connection Confirm";
  }
  auto second = raw_connect(enclave_->port(), ticket["ticket"], kProtocolSsl);
  EXPECT_TRUE(second.answer.empty());
  EXPECT_TRUE(enclave_->wait_event("gateway.connection.refused", "used"));
}

TEST_F(RelayRefusals, TicketBoundToAnotherSourceAddressIsRefused) {
  auto ticket = enclave_->issue("dave", "demo-shadow", "10.8.0.7");
  auto c = raw_connect(enclave_->port(), ticket["ticket"], kProtocolSsl);
  EXPECT_TRUE(c.answer.empty());
  EXPECT_TRUE(enclave_->wait_event("gateway.connection.refused", "source"));
}

TEST_F(RelayRefusals, LegacyRdpSecurityGetsNegotiationFailure) {
  auto ticket = enclave_->issue("erin", "demo-shadow");
  auto c = raw_connect(enclave_->port(), ticket["ticket"], kProtocolRdp);
  auto confirm = decode_connection_confirm(c.answer);
  ASSERT_TRUE(confirm) << "no X.224 answer to a legacy-security client";
  ASSERT_TRUE(confirm->failure_code.has_value());
  EXPECT_EQ(*confirm->failure_code, kSslRequiredByServer);
  EXPECT_TRUE(enclave_->wait_event("gateway.connection.refused", "TLS"));
}

TEST_F(RelayRefusals, SilentConnectionTimesOut) {
  // Policy: preconnection_s = 10; a client that says nothing is cut and audited.
  RawClient c;
  c.fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(enclave_->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{20, 0};
  setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::uint8_t b;
  EXPECT_EQ(read(c.fd, &b, 1), 0) << "connection not closed by the gateway";
  EXPECT_TRUE(enclave_->wait_event("gateway.connection.refused", "timeout during preconnection"));
}

TEST_F(RelayRefusals, GarbageInsteadOfPreconnectionPduIsRefused) {
  RawClient c;
  c.fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(enclave_->port());
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(write(c.fd, http.data(), http.size()), static_cast<ssize_t>(http.size()));
  timeval tv{10, 0};
  setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::uint8_t b;
  EXPECT_LE(read(c.fd, &b, 1), 0);
  EXPECT_TRUE(enclave_->wait_event("gateway.connection.refused", "preconnection"));
}

}  // namespace
}  // namespace enclave::gateway
