// The relay's robustness with real processes: enclave-auditd, enclave-sessiond and
// enclave-gatewayd on a policy written per test, whose compartments are static hosts played
// by scripted RDP desktops (tests/support/rdp_script_host) with fixed credentials. Clients are
// raw TLS clients built with gateway/core's encoders, and a real xfreerdp under Xvfb.
// Each test checks the audit log (enclave-audit query) and what both peers observed.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/ipc/client.hpp"
#include "common/x509.hpp"
#include "gateway/core/mcs.hpp"
#include "sessionmgr/service/methods.hpp"
#include "tests/gateway/enclave_fixture.hpp"
#include "tests/support/process.hpp"
#include "tests/support/rdp_script_host.hpp"
#include "tests/support/x_display.hpp"

namespace enclave::gateway {
namespace {

using testing::binary;
using testing::Child;
using ::testing::HasSubstr;
using testing::HostScenario;
using testing::HostSession;
using testing::RdpRawClient;
using testing::RdpScriptHost;
using testing::ScriptHostOptions;
using testing::TempDir;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The desktop account every scripted host's compartment injects (its credentials file).
constexpr const char* kDesktopUser = "desk-analyst";
constexpr const char* kDesktopPassword = "Injected-0nly-By-The-Gateway";
constexpr const char* kDesktopDomain = "ENCLAVE";

using fixture::set_key;
using fixture::shipped_policy;

// One compartment of the test's policy: its tier's limits and the scripted host behind it.
struct CompartmentSpec {
  std::string name;
  ScriptHostOptions host;
  int idle_timeout_s = 60;
  int max_session_s = 600;
  int capacity = 2;
};

// The scripted desktops and the sessions.toml naming them: the shipped [sessiond] section plus
// one tier and one compartment per spec, each compartment a static host (a scripted desktop)
// with fixed credentials.
struct ScriptedDesktops {
  ScriptedDesktops(const TempDir& dir, const std::vector<CompartmentSpec>& specs) {
    const auto credentials = dir / "desktop-credentials.toml";
    std::ofstream(credentials) << "user = \"" << kDesktopUser << "\"\npassword = \""
                               << kDesktopPassword << "\"\ndomain = \"" << kDesktopDomain << "\"\n";
    ::chmod(credentials.c_str(), 0600);
    sessions = shipped_policy("sessions.toml");
    sessions = sessions.substr(0, sessions.find("# ---- tiers"));
    for (const auto& spec : specs) {
      const auto host_dir = dir / ("host-" + spec.name);
      std::filesystem::create_directories(host_dir);
      hosts.push_back(std::make_unique<RdpScriptHost>(host_dir, spec.host));
      const RdpScriptHost& host = *hosts.back();
      sessions += "\n[tiers." + spec.name + "]\n" +
                  "description = \"robustness test tier\"\n"
                  "static_channels = [\"drdynvc\"]\n"
                  "idle_timeout_s = " +
                  std::to_string(spec.idle_timeout_s) +
                  "\nmax_session_s = " + std::to_string(spec.max_session_s) +
                  "\ngrace_s = 0\n"
                  "max_sessions_per_compartment = 10\n"
                  "max_sessions_per_user = 1\n"
                  "\n[compartments." +
                  spec.name + "]\ndescription = \"a scripted desktop\"\ntier = \"" + spec.name +
                  "\"\n\n[[compartments." + spec.name +
                  ".hosts]]\nhost = \"127.0.0.1\"\nport = " + std::to_string(host.port()) +
                  "\npin_sha256 = \"" + host.pin_sha256() +
                  "\"\ncapacity = " + std::to_string(spec.capacity) +
                  "\ncredentials = \"fixed\"\ncredentials_file = \"" + credentials.string() +
                  "\"\n";
    }
  }
  std::vector<std::unique_ptr<RdpScriptHost>> hosts;
  std::string sessions;
};

// The desktops first (bases are built in order, and they must outlive the services).
class Enclave : private ScriptedDesktops, public fixture::EnclaveServices {
 public:
  Enclave(const TempDir& dir, const std::vector<CompartmentSpec>& specs,
          const std::map<std::string, std::string>& gateway_keys = {})
      : ScriptedDesktops(dir, specs), EnclaveServices(dir, sessions, gateway_keys) {}
  RdpScriptHost& host(std::size_t i = 0) { return *hosts.at(i); }
};

// A session's ticket: the ticket text and its session id.
struct Ticket {
  std::string ticket, session;
};

Ticket issue(Enclave& enclave, const std::string& user, const std::string& compartment) {
  auto j = enclave.issue(user, compartment);
  if (!j.contains("ticket")) {
    ADD_FAILURE() << "no ticket: " << j.dump();
    return {};
  }
  return {j["ticket"].get<std::string>(), j["session_id"].get<std::string>()};
}

// The gateway's resident set (VmRSS) in KiB, or -1.
long rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

bool sessions_with_info(const std::vector<HostSession>& s, std::size_t n) {
  return std::count_if(s.begin(), s.end(), [](const HostSession& h) { return h.client_info; }) >=
         static_cast<long>(n);
}

std::string reason_of(const nlohmann::json& end) {
  return end["details"]["reason"].get<std::string>();
}

// A listener on 127.0.0.2:port, where a client that followed the redirection would go (the
// redirection names an address; the client keeps the port it used).
class RedirectTarget {
 public:
  explicit RedirectTarget(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    ok_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && listen(fd_, 4) == 0;
  }
  ~RedirectTarget() { close(fd_); }
  bool listening() const { return ok_; }
  // True when a connection is waiting to be accepted.
  bool contacted() const {
    pollfd p{fd_, POLLIN, 0};
    return poll(&p, 1, 0) > 0;
  }

 private:
  int fd_ = -1;
  bool ok_ = false;
};

// The gateway ended the session because of the redirection, and the host got the policy's
// credentials, never the client's.
void expect_redirection_blocked(Enclave& enclave, const std::string& session) {
  auto error = enclave.wait_event("gateway.session.protocol_error", session);
  ASSERT_TRUE(error) << enclave.gatewayd().stderr_text();
  EXPECT_EQ((*error)["details"]["from"], "desktop");
  EXPECT_THAT((*error)["details"]["error"].get<std::string>(), HasSubstr("redirection"));
  auto end = enclave.wait_event("gateway.session.end", session);
  ASSERT_TRUE(end);
  EXPECT_THAT(reason_of(*end), HasSubstr("redirection"));
  EXPECT_TRUE(enclave.wait_event("gateway.credentials.injected", session));

  auto seen = enclave.host().sessions();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].redirect_sent);
  EXPECT_EQ(seen[0].user, kDesktopUser);
  EXPECT_EQ(seen[0].password, kDesktopPassword);
  EXPECT_EQ(seen[0].domain, kDesktopDomain);
  // The channels the gateway let the host see: cliprdr was renamed away.
  EXPECT_THAT(seen[0].channels, ::testing::Not(::testing::Contains("cliprdr")));
}

// 1. A host that redirects, reached by a raw client: the gateway ends the session, the client
// gets the ultimatum, the redirection target hears nothing.
TEST(RelayRobustness, ServerRedirectionEndsTheSessionRawClient) {
  TempDir dir;
  ScriptHostOptions redirect;
  redirect.scenario = HostScenario::kRedirect;
  Enclave enclave(dir, {{"redirecting", redirect}});
  RedirectTarget target(enclave.port());
  ASSERT_TRUE(target.listening());
  auto t = issue(enclave, "alice", "redirecting");

  RdpRawClient client;
  testing::RawClientOptions typed;
  typed.user = "alice-typed";
  typed.password = "what-alice-typed";
  auto failed = client.connect(enclave.port(), t.ticket, typed);
  ASSERT_FALSE(failed) << *failed << "\n" << enclave.gatewayd().stderr_text();
  auto ending = client.read_until_closed(10s);
  EXPECT_TRUE(testing::ends_with_ultimatum(ending.received));
  EXPECT_TRUE(ending.closed);
  expect_redirection_blocked(enclave, t.session);
  EXPECT_FALSE(target.contacted()) << "the client followed a redirection";
}

// 1b. The same with a real xfreerdp that typed its own credentials: it is disconnected and
// never connects to the address the host named.
TEST(RelayRobustness, ServerRedirectionEndsTheSessionXfreerdp) {
  if (auto why = testing::x_unavailable(); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  ScriptHostOptions redirect;
  redirect.scenario = HostScenario::kRedirect;
  Enclave enclave(dir, {{"redirecting", redirect}});
  RedirectTarget target(enclave.port());
  ASSERT_TRUE(target.listening());
  auto t = issue(enclave, "bob", "redirecting");

  testing::XDisplay display(dir.path());
  auto client = display.run_xfreerdp(
      {"/v:127.0.0.1:" + std::to_string(enclave.port()), "/pcb:" + t.ticket,
       "/cert:fingerprint:sha256:" + enclave.fingerprint(), "/sec:tls", "/u:bob-typed",
       "/p:what-bob-typed", "/size:800x600", "+clipboard", "/log-level:INFO"});
  expect_redirection_blocked(enclave, t.session);
  EXPECT_NE(client->wait(15s), -1) << "xfreerdp still running after the session ended";
  EXPECT_FALSE(target.contacted()) << "xfreerdp followed a redirection";
}

// 2. A malformed PDU from one client ends that session only.
TEST(RelayRobustness, MalformedPduEndsOnlyItsOwnSession) {
  TempDir dir;
  Enclave enclave(dir, {{"idle", {}}});
  auto healthy_ticket = issue(enclave, "carol", "idle");
  auto bad_ticket = issue(enclave, "dave", "idle");

  RdpRawClient healthy, bad;
  auto failed = healthy.connect(enclave.port(), healthy_ticket.ticket);
  ASSERT_FALSE(failed) << *failed;
  ASSERT_TRUE(enclave.host().wait_for([](auto& s) { return sessions_with_info(s, 1); }));
  failed = bad.connect(enclave.port(), bad_ticket.ticket);
  ASSERT_FALSE(failed) << *failed;
  ASSERT_TRUE(enclave.host().wait_for([](auto& s) { return sessions_with_info(s, 2); }));

  // An MCS Send Data Request on the I/O channel whose PER length claims 64 bytes of the 4.
  SendDataHeader h;
  h.initiator = bad.user_id();
  h.channel_id = bad.io_channel();
  Bytes pdu = encode_send_data(h, Bytes{1, 2, 3, 4}).value();
  ASSERT_EQ(pdu[13], 4);  // TPKT 4 + X.224 3 + choice 1 + initiator 2 + channel 2 + flags 1
  pdu[13] = 64;
  ASSERT_TRUE(bad.send(pdu));

  auto error = enclave.wait_event("gateway.session.protocol_error", bad_ticket.session);
  ASSERT_TRUE(error) << enclave.gatewayd().stderr_text();
  EXPECT_EQ((*error)["details"]["from"], "client");
  EXPECT_THAT((*error)["details"]["error"].get<std::string>(), HasSubstr("Send Data Request"));
  auto end = enclave.wait_event("gateway.session.end", bad_ticket.session);
  ASSERT_TRUE(end);
  EXPECT_THAT(reason_of(*end), HasSubstr("protocol error from the client"));
  auto ending = bad.read_until_closed(5s);
  EXPECT_TRUE(ending.closed);

  // The other session goes on: the gateway lists it, its client is connected and its input
  // still reaches the host.
  auto listed = enclave.gateway_sessions().dump();
  EXPECT_THAT(listed, HasSubstr(healthy_ticket.session));
  EXPECT_THAT(listed, ::testing::Not(HasSubstr(bad_ticket.session)));
  EXPECT_TRUE(healthy.still_open());
  const auto before = enclave.host().sessions()[0].from_client;
  ASSERT_TRUE(healthy.send_input());
  EXPECT_TRUE(enclave.host().wait_for([&](auto& s) { return s[0].from_client > before; }));
  EXPECT_FALSE(enclave.host().sessions()[0].ended);
  for (const auto& e : enclave.events("gateway.session.end")) {
    EXPECT_NE(e.value("session", ""), healthy_ticket.session) << e.dump();
  }
}

// 3. The desktop dies mid-session: the client gets a Disconnect Provider Ultimatum, then a
// clean TLS close.
TEST(RelayRobustness, DeadDesktopGivesTheClientACleanDisconnect) {
  TempDir dir;
  Enclave enclave(dir, {{"idle", {}}});
  auto t = issue(enclave, "erin", "idle");
  RdpRawClient client;
  auto failed = client.connect(enclave.port(), t.ticket);
  ASSERT_FALSE(failed) << *failed;
  ASSERT_TRUE(enclave.host().wait_for([](auto& s) { return sessions_with_info(s, 1); }));
  ASSERT_TRUE(client.still_open());

  enclave.host().drop_connections();
  auto ending = client.read_until_closed(10s);
  EXPECT_TRUE(testing::ends_with_ultimatum(ending.received))
      << "received " << ending.received.size() << " bytes";
  EXPECT_TRUE(ending.close_notify) << "TLS not closed with close_notify";
  EXPECT_TRUE(ending.closed);
  auto end = enclave.wait_event("gateway.session.end", t.session);
  ASSERT_TRUE(end);
  EXPECT_THAT(reason_of(*end), HasSubstr("desktop closed the connection"));
}

// 4. Backpressure: a host that streams to a client that never reads. The gateway does not
// buffer it (its RSS stays bounded; the host is held back instead) and cuts the session after
// write_stall_s.
TEST(RelayRobustness, ClientThatStopsReadingIsCutWithoutBufferingTheStream) {
  TempDir dir;
  ScriptHostOptions stream;
  stream.scenario = HostScenario::kStream;
  Enclave enclave(dir, {{"streaming", stream}}, {{"write_stall_s", "2"}});
  auto t = issue(enclave, "frank", "streaming");
  const long rss_before = rss_kib(enclave.gatewayd().pid());
  ASSERT_GT(rss_before, 0);

  RdpRawClient client;
  testing::RawClientOptions small;
  small.receive_buffer = 64 * 1024;
  auto failed = client.connect(enclave.port(), t.ticket, small);  // and never reads again
  ASSERT_FALSE(failed) << *failed;
  const auto started = Clock::now();
  long rss_peak = rss_before;
  std::optional<nlohmann::json> end;
  // What the host had pushed 1 s and 1.8 s after the client stopped reading (before the cut).
  std::optional<std::uint64_t> pushed_1s, pushed_1800ms;
  while (!end && Clock::now() - started < 15s) {
    rss_peak = std::max(rss_peak, rss_kib(enclave.gatewayd().pid()));
    const auto since = Clock::now() - started;
    if (auto seen = enclave.host().sessions(); !seen.empty()) {
      if (!pushed_1s && since >= 1s) pushed_1s = seen[0].streamed;
      if (!pushed_1800ms && since >= 1800ms) pushed_1800ms = seen[0].streamed;
    }
    for (auto& e : enclave.events("gateway.session.end")) {
      if (e.value("session", "") == t.session) end = e;
    }
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(end) << enclave.gatewayd().stderr_text();
  const auto took = Clock::now() - started;
  EXPECT_THAT(reason_of(*end), HasSubstr("client stopped reading for 2 s"));
  EXPECT_GE(took, 2s);

  auto host = enclave.host().sessions();
  ASSERT_EQ(host.size(), 1u);
  const std::uint64_t pushed = host[0].streamed;
  // The stream did flow (far more than the 256 KiB high-water mark) and the gateway's RSS
  // stayed bounded (under ASan most of its growth is the allocator's quarantine of relayed
  // chunks, not buffered data).
  EXPECT_GT(pushed, 1u << 20);
  EXPECT_LT(rss_peak - rss_before, 64 * 1024) << "KiB; the host pushed " << pushed << " bytes";
  // Backpressure reached the host: once the buffers were full it could push no more.
  ASSERT_TRUE(pushed_1s && pushed_1800ms);
  EXPECT_LT(*pushed_1800ms - *pushed_1s, 1u << 20)
      << "the gateway kept reading from the host while its client read nothing";
  RecordProperty("host_pushed_bytes", std::to_string(pushed));
  RecordProperty("gateway_rss_growth_kib", std::to_string(rss_peak - rss_before));
  // The host's stream ends with the session.
  EXPECT_TRUE(enclave.host().wait_for([](auto& s) { return s[0].ended; }, 5s));
}

// 4b. A client that closes while the desktop streams to it: its kernel answers the gateway's
// next write with a reset and the writes after that fail with EPIPE. That session ends, the
// gateway lives on (EPIPE must not raise SIGPIPE in it) and takes the next analyst.
TEST(RelayRobustness, ClientVanishingMidStreamEndsOnlyItsSession) {
  TempDir dir;
  ScriptHostOptions stream;
  stream.scenario = HostScenario::kStream;
  Enclave enclave(dir, {{"streaming", stream}, {"idle", {}}});
  for (int round = 0; round < 5; ++round) {
    auto t = issue(enclave, "vanishing-" + std::to_string(round), "streaming");
    RdpRawClient client;
    testing::RawClientOptions small;
    small.receive_buffer = 64 * 1024;
    auto failed = client.connect(enclave.port(), t.ticket, small);
    ASSERT_FALSE(failed) << *failed;
    ASSERT_TRUE(enclave.host().wait_for([&](auto& s) {
      return s.size() == static_cast<std::size_t>(round + 1) && s.back().streamed > (1u << 20);
    })) << "the stream did not start";
    client.drain_and_close();
    auto end = enclave.wait_event("gateway.session.end", t.session);
    ASSERT_TRUE(end) << enclave.gatewayd().stderr_text();
    EXPECT_THAT(reason_of(*end), HasSubstr("client"));
    ASSERT_TRUE(enclave.gatewayd().running()) << "the gateway died with its client";
  }
  auto next = issue(enclave, "next-analyst", "idle");
  RdpRawClient client;
  auto failed = client.connect(enclave.port(), next.ticket);
  ASSERT_FALSE(failed) << *failed;
  EXPECT_TRUE(client.still_open());
}

// 5. Idle timeout (2 s) and maximum session time (3 s): each session ends with its reason and
// the client gets the ultimatum.
TEST(RelayRobustness, IdleAndMaximumSessionTimeEndTheSession) {
  TempDir dir;
  CompartmentSpec idle{"idle2", {}};
  idle.idle_timeout_s = 2;
  CompartmentSpec max{"max3", {}};
  max.max_session_s = 3;
  Enclave enclave(dir, {idle, max});
  auto idle_ticket = issue(enclave, "grace", "idle2");
  auto max_ticket = issue(enclave, "heidi", "max3");

  RdpRawClient idle_client, max_client;
  auto failed = idle_client.connect(enclave.port(), idle_ticket.ticket);
  ASSERT_FALSE(failed) << *failed;
  const auto idle_started = Clock::now();
  failed = max_client.connect(enclave.port(), max_ticket.ticket);
  ASSERT_FALSE(failed) << *failed;
  const auto max_started = Clock::now();

  // The idle client sends nothing; the max-time client keeps typing until it is cut.
  auto idle_ending = idle_client.read_until_closed(10s);
  const auto idle_took = Clock::now() - idle_started;
  bool max_closed = false;
  while (Clock::now() - max_started < 10s) {
    if (!max_client.send_input() || !max_client.still_open(300ms)) {
      max_closed = true;
      break;
    }
  }
  const auto max_took = Clock::now() - max_started;
  auto max_ending = max_client.read_until_closed(2s);

  EXPECT_TRUE(testing::ends_with_ultimatum(idle_ending.received));
  EXPECT_TRUE(idle_ending.closed);
  EXPECT_GE(idle_took, 1500ms);
  auto idle_end = enclave.wait_event("gateway.session.end", idle_ticket.session);
  ASSERT_TRUE(idle_end);
  EXPECT_THAT(reason_of(*idle_end), HasSubstr("idle for 2 s"));

  EXPECT_TRUE(max_closed) << "the max-time session was not ended";
  EXPECT_TRUE(testing::ends_with_ultimatum(max_ending.received));
  EXPECT_LT(max_took, 8s);
  auto max_end = enclave.wait_event("gateway.session.end", max_ticket.session);
  ASSERT_TRUE(max_end);
  EXPECT_THAT(reason_of(*max_end), HasSubstr("maximum session time"));
  // It lasted what was left of the 60 s (about 3 s), although its client was typing.
  const auto lasted = (*max_end)["details"]["seconds"].get<std::int64_t>();
  EXPECT_GE(lasted, 1);
  EXPECT_LE(lasted, 4);
  EXPECT_TRUE((*max_end)["details"]["final"].get<bool>());
}

}  // namespace
}  // namespace enclave::gateway
