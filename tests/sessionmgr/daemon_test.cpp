// The real enclave-sessiond with the real enclave-auditd, driven by the real enclavectl: issue a
// ticket, redeem it once (as the gateway does), list, end (the gateway's control socket is a
// small fake here that records the call), and find every step in the audit log. The desktop is
// a real local shadow desktop (Xvfb + freerdp-shadow-cli), probed over RDP. And the registry:
// the local CA, a kitted device, sites, users, an enrolment and its print, revocation, as the
// operator and the gateway see them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <csignal>
#include <fstream>
#include <mutex>
#include <thread>

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/files.hpp"
#include "common/ipc/client.hpp"
#include "common/ipc/server.hpp"
#include "common/policy.hpp"
#include "common/x509.hpp"
#include "sessionmgr/service/local_desktop.hpp"
#include "sessionmgr/service/methods.hpp"
#include "sessionmgr/service/print_vault.hpp"
#include "sessionmgr/service/rdp_probe.hpp"
#include "sessionmgr/service/registry_store.hpp"
#include "tests/sessionmgr/outbox_support.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using testing::binary;
using testing::Child;
using ::testing::HasSubstr;
using testing::TempDir;

// Stands in for enclave-gatewayd's control socket: answers gateway.session.end.
class FakeGateway : public ipc::Handler {
 public:
  explicit FakeGateway(std::filesystem::path socket) {
    ipc::ServerOptions options;
    options.socket_path = std::move(socket);
    server_ = std::make_unique<ipc::Server>(io_, options, *this);
    EXPECT_TRUE(server_->start());
    thread_ = std::thread([this] { io_.run(); });
  }
  ~FakeGateway() override {
    boost::asio::post(io_, [this] {
      server_->stop();
      io_.stop();
    });
    thread_.join();
  }
  void handle(const ipc::PeerCredentials&, ipc::Request request, ipc::Responder respond) override {
    std::lock_guard lock(mu_);
    calls_.push_back(request.method + " " + request.params.value("session_id", "") + " " +
                     request.params.value("reason", ""));
    respond(ipc::Response::success(request.id, {{"found", true}}));
  }
  std::vector<std::string> calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 private:
  boost::asio::io_context io_;
  std::unique_ptr<ipc::Server> server_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> calls_;
};

class SessionDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "policies");
    std::ofstream(dir_ / "policies" / "audit.toml")
        << "[audit]\norigin = \"test.example/audit\"\n"
        << "[audit.checkpoint]\nevery_entries = 1000\nevery_seconds = 30\n";
    write_sessions_policy("");
    // The tiers' export profile, which sessiond checks is there.
    std::filesystem::create_directories(dir_ / "policies" / "exitcontrol");
    std::filesystem::copy_file(
        testing::source_dir() / "policies" / "exitcontrol" / "acro-default.toml",
        dir_ / "policies" / "exitcontrol" / "acro-default.toml");
    auto r = tool("enclave-auditd", {"keygen"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // extra after the compartment; sessiond_extra at the end of [sessiond].
  void write_sessions_policy(const std::string& extra, const std::string& sessiond_extra = "") {
    std::ofstream(dir_ / "policies" / "sessions.toml")
        << "[sessiond]\ngateway_address = \"192.0.2.1:3390\"\nhealth_check_s = 1\n"
        << sessiond_extra << "[tiers.standard]\ngrace_s = 300\n"
        << "[compartments.demo-shadow]\ntier = \"standard\"\n"
        << "local = { kind = \"shadow\", max_desktops = 2 }\n"
        << extra;
  }

  std::filesystem::path state() const { return dir_ / "state"; }
  std::filesystem::path sessiond_socket() const { return state() / "run" / "sessiond.sock"; }
  std::filesystem::path auditd_socket() const { return state() / "run" / "auditd.sock"; }

  std::map<std::string, std::string> env() const {
    return {{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
            {"ENCLAVE_STATE_DIR", state().string()}};
  }

  testing::RunResult tool(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), binary(name).string());
    return testing::run(args, env());
  }

  std::unique_ptr<Child> start(const std::string& name, const std::filesystem::path& socket) {
    std::filesystem::remove(socket);
    auto child = std::make_unique<Child>(std::vector<std::string>{binary(name).string(), "run"},
                                         env(), dir_.path());
    EXPECT_TRUE(testing::wait_for_path(socket)) << child->stderr_text();
    return child;
  }

  nlohmann::json audit_events(const std::string& type) {
    auto r = tool("enclave-audit", {"query", "--type", type, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    return j.is_array() ? j : nlohmann::json::array();
  }

  TempDir dir_;
};

TEST_F(SessionDaemon, IssueRedeemOnceListEndAudited) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << "no local shadow desktop: " << why;
  }
  std::filesystem::create_directories(state() / "run");
  FakeGateway gateway(state() / "run" / "gatewayd.sock");
  auto auditd = start("enclave-auditd", auditd_socket());
  auto sessiond = start("enclave-sessiond", sessiond_socket());

  // Issue, as an operator, in text form: the ticket and the command line for the thin client.
  auto text = tool("enclavectl", {"ticket", "issue", "--user", "alice", "--device", "kiosk-7",
                                  "--source", "127.0.0.1", "--compartment", "demo-shadow"});
  ASSERT_EQ(text.exit_code, 0) << text.err << sessiond->stderr_text();
  EXPECT_THAT(text.out, HasSubstr("xfreerdp /v:192.0.2.1:3390 /pcb:"));
  EXPECT_THAT(text.out, HasSubstr("/cert:fingerprint:sha256:"));
  // That first ticket is replaced by the next one (same session, same desktop).
  auto issued =
      tool("enclavectl", {"--json", "ticket", "issue", "--user", "alice", "--device", "kiosk-7",
                          "--source", "127.0.0.1", "--compartment", "demo-shadow"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err;
  auto t = nlohmann::json::parse(issued.out);
  const std::string ticket = t["ticket"];
  const std::string id = t["session_id"];
  ASSERT_EQ(ticket.size(), 64u);
  EXPECT_THAT(text.out, HasSubstr(id));

  // The gateway's side: redeem once, from the bound address.
  auto gw = ipc::Client::connect(sessiond_socket());
  ASSERT_TRUE(gw) << gw.error().describe();
  auto wrong = gw->call(methods::kTicketRedeem, {{"ticket", ticket}, {"source", "127.0.0.2"}});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().message, "ticket refused: wrong source address");
  auto redeemed = gw->call(methods::kTicketRedeem, {{"ticket", ticket}, {"source", "127.0.0.1"}});
  ASSERT_TRUE(redeemed) << redeemed.error().describe();
  EXPECT_EQ((*redeemed)["session_id"], id);
  EXPECT_EQ((*redeemed)["user"], "alice");
  EXPECT_FALSE((*redeemed)["credentials"]["password"].get<std::string>().empty());
  EXPECT_EQ((*redeemed)["desktop"]["pin_sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ((*redeemed)["channels"]["static"], nlohmann::json::array({"drdynvc"}));
  const std::string host = (*redeemed)["desktop"]["host"];
  const auto port = (*redeemed)["desktop"]["port"].get<std::uint16_t>();
  EXPECT_TRUE(probe_rdp(host, port)) << "the desktop answers RDP";
  auto again = gw->call(methods::kTicketRedeem, {{"ticket", ticket}, {"source", "127.0.0.1"}});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kPermission);
  EXPECT_EQ(again.error().message, "ticket refused: already used");
  ASSERT_TRUE(gw->call(methods::kSessionConnected, {{"session_id", id}}));

  auto list = tool("enclavectl", {"session", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out, HasSubstr("SESSION"));
  EXPECT_THAT(list.out, HasSubstr(id));
  EXPECT_THAT(list.out, HasSubstr("active"));
  auto list_json = tool("enclavectl", {"--json", "session", "list"});
  auto sessions = nlohmann::json::parse(list_json.out)["sessions"];
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0]["device"], "kiosk-7");
  EXPECT_EQ(sessions[0]["compartment"], "demo-shadow");

  // The gateway reports the client gone, with its per-channel counters; the desktop is kept.
  nlohmann::json channels = nlohmann::json::array({{{"name", "drdynvc"},
                                                    {"id", 1004},
                                                    {"allowed", true},
                                                    {"to_host", 300},
                                                    {"to_client", 7000},
                                                    {"dropped_to_host", 0},
                                                    {"dropped_to_client", 0}},
                                                   {{"name", "cliprdr"},
                                                    {"id", 1005},
                                                    {"allowed", false},
                                                    {"to_host", 0},
                                                    {"to_client", 0},
                                                    {"dropped_to_host", 40},
                                                    {"dropped_to_client", 0}}});
  ASSERT_TRUE(gw->call(
      methods::kSessionDisconnected,
      {{"session_id", id}, {"reason", "client closed"}, {"ended", false}, {"bytes", channels}}));
  EXPECT_TRUE(probe_rdp(host, port)) << "kept for the grace period";
  auto end = tool("enclavectl", {"session", "end", id, "--reason", "drill"});
  ASSERT_EQ(end.exit_code, 0) << end.err;
  EXPECT_THAT(end.out, HasSubstr("cut at the gateway"));
  EXPECT_EQ(gateway.calls(),
            std::vector<std::string>{"gateway.session.end " + id + " ended by operator: drill"});
  EXPECT_FALSE(probe_rdp(host, port, std::chrono::milliseconds(500))) << "the desktop stopped";
  auto after = tool("enclavectl", {"--json", "session", "list"});
  EXPECT_TRUE(nlohmann::json::parse(after.out)["sessions"].empty());
  auto twice = tool("enclavectl", {"session", "end", id});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_THAT(twice.err, HasSubstr("already ended"));

  sessiond->signal(SIGTERM);
  EXPECT_EQ(sessiond->wait(), 0) << sessiond->stderr_text();

  // Every step is in the audit log, stamped with sessiond as its source.
  auto issued_events = audit_events("ticket.issued");
  ASSERT_EQ(issued_events.size(), 2u);
  EXPECT_EQ(issued_events[0]["actor"], "alice");
  EXPECT_EQ(issued_events[0]["device"], "kiosk-7");
  EXPECT_EQ(issued_events[0]["session"], id);
  EXPECT_EQ(issued_events[1]["details"]["kind"], "replace");
  EXPECT_THAT(issued_events[0]["source"].get<std::string>(), HasSubstr("enclave-session"));
  auto refused = audit_events("ticket.refused");
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(refused[0]["details"]["reason"], "wrong source address");
  EXPECT_EQ(refused[1]["details"]["reason"], "already used");
  EXPECT_EQ(audit_events("ticket.redeemed").size(), 1u);
  EXPECT_EQ(audit_events("session.started").size(), 1u);
  EXPECT_EQ(audit_events("desktop.started").size(), 1u);
  EXPECT_EQ(audit_events("desktop.stopped").size(), 1u);
  auto ended = audit_events("session.ended");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["details"]["reason"], "ended by operator: drill");
  EXPECT_EQ(ended[0]["details"]["bytes"]["to_client"], 7000);
  EXPECT_EQ(ended[0]["details"]["bytes"]["cliprdr.dropped_to_host"], 40);
  EXPECT_EQ(audit_events("session.disconnected").size(), 1u);
  EXPECT_EQ(audit_events("sessiond.start").size(), 1u);
  EXPECT_EQ(audit_events("sessiond.stop").size(), 1u);
  for (const auto& e : ended) EXPECT_EQ(e["session"], id);
}

// A static pool whose one host is a real RDP host started by the test: probed healthy, used
// with the fixed credentials from a private file; when it stops answering it leaves the pool.
TEST_F(SessionDaemon, StaticHostLeavesThePoolWhenItStopsAnswering) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << "no RDP host to stand in for a static desktop: " << why;
  }
  LocalDesktopOptions options;
  options.work_dir = dir_ / "host";
  auto host = LocalDesktop::start(options);
  ASSERT_TRUE(host) << host.error().describe();
  const LocalDesktopInfo info = (*host)->info();
  std::ofstream(dir_ / "host.cred")
      << "user = \"" << info.user << "\"\npassword = \"" << info.password << "\"\n";
  std::filesystem::permissions(
      dir_ / "host.cred", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
      std::filesystem::perm_options::replace);
  write_sessions_policy(
      "[compartments.pool]\ntier = \"standard\"\n[[compartments.pool.hosts]]\n"
      "host = \"" +
      info.host + "\"\nport = " + std::to_string(info.port) + "\npin_sha256 = \"" +
      info.pin_sha256 + "\"\nserver_name = \"" + info.server_name +
      "\"\ncredentials = \"fixed\"\ncredentials_file = \"" + (dir_ / "host.cred").string() +
      "\"\n");
  std::filesystem::create_directories(state() / "run");
  auto auditd = start("enclave-auditd", auditd_socket());
  auto sessiond = start("enclave-sessiond", sessiond_socket());
  const std::string desktop_id = "pool/" + info.host + ":" + std::to_string(info.port);

  auto issued = tool("enclavectl", {"--json", "ticket", "issue", "--user", "bob", "--device", "k",
                                    "--source", "127.0.0.1", "--compartment", "pool"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err << sessiond->stderr_text();
  auto t = nlohmann::json::parse(issued.out);
  EXPECT_EQ(t["desktop"]["id"], desktop_id);
  auto gw = ipc::Client::connect(sessiond_socket());
  ASSERT_TRUE(gw);
  auto r = gw->call(methods::kTicketRedeem, {{"ticket", t["ticket"]}, {"source", "127.0.0.1"}});
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)["credentials"]["user"], info.user);
  EXPECT_EQ((*r)["credentials"]["password"], info.password);
  EXPECT_EQ((*r)["desktop"]["pin_sha256"], info.pin_sha256);
  ASSERT_TRUE(tool("enclavectl", {"session", "end", t["session_id"]}).exit_code == 0);

  host->reset();  // the host goes away; the next check (every second here) notices
  testing::RunResult refused;
  for (int i = 0; i < 100; ++i) {
    refused = tool("enclavectl", {"ticket", "issue", "--user", "bob", "--device", "k", "--source",
                                  "127.0.0.1", "--compartment", "pool"});
    if (refused.exit_code != 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.err,
              HasSubstr("no desktop free in compartment pool (1 host(s), 1 unhealthy)"));
  sessiond->signal(SIGTERM);
  EXPECT_EQ(sessiond->wait(), 0) << sessiond->stderr_text();
  auto healthy = audit_events("desktop.healthy");
  auto unhealthy = audit_events("desktop.unhealthy");
  ASSERT_GE(healthy.size(), 1u);
  EXPECT_EQ(healthy[0]["object"], desktop_id);
  ASSERT_EQ(unhealthy.size(), 1u);
  EXPECT_EQ(unhealthy[0]["object"], desktop_id);
}

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST_F(SessionDaemon, RegistryKitsADeviceTheGatewayAdmitsUntilItIsRevoked) {
  std::ofstream(dir_ / "policies" / "gateway.toml") << "[gateway]\n";
  auto auditd = start("enclave-auditd", auditd_socket());
  auto sessiond = start("enclave-sessiond", sessiond_socket());
  auto ctl = [&](std::vector<std::string> args) { return tool("enclavectl", std::move(args)); };
  const auto kit = dir_ / "kit";

  // The CA first, once; then the gateway's certificate from it.
  auto ca = ctl({"ca", "init"});
  ASSERT_EQ(ca.exit_code, 0) << ca.err;
  EXPECT_EQ(mode_of(state() / "keys/ca/ca.key"), 0600u);
  auto again = ctl({"ca", "init"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.err, HasSubstr("never overwritten"));
  auto gw_cert = ctl({"gateway", "cert", "--name", "gw.example", "--name", "127.0.0.1"});
  ASSERT_EQ(gw_cert.exit_code, 0) << gw_cert.err;
  const auto ca_pem = read_file(state() / "keys/ca/ca.crt").value();
  EXPECT_TRUE(x509::verify_issued_by(read_file(state() / "keys/gateway.crt").value(), ca_pem,
                                     x509::Purpose::kServer));
  EXPECT_EQ(ctl({"gateway", "cert"}).exit_code, 2) << "not replaced without --replace";

  // No kit for a site the registry does not know: nothing is left behind.
  auto orphan = ctl({"device", "kit", "room-a", "--id", "kiosk-1", "--out", kit.string()});
  EXPECT_EQ(orphan.exit_code, 2);
  EXPECT_THAT(orphan.err, HasSubstr("no site room-a"));
  EXPECT_FALSE(std::filesystem::exists(kit / "device.key"));

  ASSERT_EQ(ctl({"user", "add", "alice", "--name", "Alice", "--role", "analyst"}).exit_code, 0);
  ASSERT_EQ(ctl({"user", "add", "sam", "--role", "steward"}).exit_code, 0);
  auto site = ctl({"site", "add", "room-a", "--name", "Room A", "--ike-id", "room-a.example",
                   "--pool", "10.8.0.0/24", "--pool", "2001:db8:5::/64"});
  ASSERT_EQ(site.exit_code, 0) << site.err;
  EXPECT_THAT(site.out, HasSubstr("registered, no login"));
  auto approved = ctl({"site", "approve", "room-a", "--until", "2099-01-01"});
  ASSERT_EQ(approved.exit_code, 0) << approved.err;
  EXPECT_THAT(approved.out, HasSubstr("may log in until 2099-01-01T00:00:00Z"));

  auto kitted = ctl({"device", "kit", "room-a", "--id", "kiosk-1", "--out", kit.string()});
  ASSERT_EQ(kitted.exit_code, 0) << kitted.err << sessiond->stderr_text();
  EXPECT_THAT(kitted.out, HasSubstr("kitted device kiosk-1 of site room-a"));
  EXPECT_EQ(mode_of(kit / "device.key"), 0600u);
  const auto device_pem = read_file(kit / "device.crt").value();
  EXPECT_EQ(read_file(kit / "ca.crt").value(), ca_pem);
  EXPECT_TRUE(x509::verify_issued_by(device_pem, ca_pem, x509::Purpose::kClient));
  EXPECT_THAT(read_file(kit / "gateway.pin").value(),
              HasSubstr(x509::spki_sha256_hex_of_file(state() / "keys/gateway.crt").value()));
  auto twice = ctl({"device", "kit", "room-a", "--id", "kiosk-2", "--out", kit.string()});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_THAT(twice.err, HasSubstr("never overwritten"));
  auto devices = ctl({"device", "list"});
  EXPECT_THAT(devices.out, HasSubstr("kiosk-1"));
  EXPECT_THAT(devices.out, HasSubstr("active"));

  // What the gateway fetches.
  auto gw = ipc::Client::connect(sessiond_socket());
  ASSERT_TRUE(gw) << gw.error().describe();
  auto pools = gw->call(methods::kRegistryPools, nlohmann::json::object());
  ASSERT_TRUE(pools) << pools.error().describe();
  ASSERT_EQ((*pools)["sites"].size(), 1u);
  EXPECT_EQ((*pools)["sites"][0]["pools"],
            nlohmann::json::array({"10.8.0.0/24", "2001:db8:5::/64"}));
  EXPECT_TRUE((*pools)["revoked_certificates"].empty());
  const std::int64_t version = (*pools)["version"];

  // Enrolment: a steward approves, never the user; the kiosk's print arrives through the gateway.
  auto self = ctl({"enrolment", "approve", "alice", "kiosk-1", "--by", "alice"});
  EXPECT_EQ(self.exit_code, 2);
  EXPECT_THAT(self.err, HasSubstr("cannot approve their own"));
  ASSERT_EQ(ctl({"enrolment", "approve", "alice", "kiosk-1", "--by", "sam"}).exit_code, 0);
  auto recorded = gw->call(methods::kRegistryEnrolmentRecord,
                           {{"user", "alice"},
                            {"device", "kiosk-1"},
                            {"print", base64_encode(as_bytes("a serialised print"))}});
  ASSERT_TRUE(recorded) << recorded.error().describe();
  const std::string print_id = (*recorded)["print_id"];
  EXPECT_THAT(ctl({"enrolment", "list"}).out, HasSubstr(print_id));
  {
    // As the PAM module reads it: read-only, the vault key from the state directory.
    auto db = registry::open_registry_database(state() / "sessionmgr/registry.db",
                                               store::Access::kReadOnly);
    ASSERT_TRUE(db) << db.error().describe();
    auto prints = registry::enrolled_prints(*db, "alice", "kiosk-1");
    ASSERT_TRUE(prints);
    ASSERT_EQ(prints->size(), 1u);
    EXPECT_EQ(mode_of(state() / "keys/prints.key"), 0600u);
    auto vault = PrintVault::load(state() / "keys/prints.key", PrintVault::KeyFile::kMustExist);
    ASSERT_TRUE(vault);
    auto print = vault->open((*prints)[0].ciphertext, {"alice", "kiosk-1", print_id});
    ASSERT_TRUE(print) << print.error().describe();
    EXPECT_EQ(as_chars(*print), "a serialised print");
    auto device = registry::find_device(*db, "kiosk-1");
    ASSERT_TRUE(device && *device);
    EXPECT_EQ((*device)->public_key, x509::inspect(device_pem)->ed25519_public_key);
  }

  // Revoked: the gateway's next fetch names the certificate; its print is gone.
  auto revoked = ctl({"device", "revoke", "kiosk-1", "--reason", "stolen"});
  ASSERT_EQ(revoked.exit_code, 0) << revoked.err;
  pools = gw->call(methods::kRegistryPools, nlohmann::json::object());
  ASSERT_TRUE(pools);
  EXPECT_EQ(
      (*pools)["revoked_certificates"],
      nlohmann::json::array({x509::certificate_sha256_hex_of_file(kit / "device.crt").value()}));
  EXPECT_GT((*pools)["version"].get<std::int64_t>(), version);

  ASSERT_EQ(ctl({"project", "add", "claims", "--title", "Claims study", "--from", "2026-01-01",
                 "--until", "2099-01-01"})
                .exit_code,
            0);
  ASSERT_EQ(ctl({"project", "member", "add", "claims", "alice"}).exit_code, 0);
  auto granted = ctl({"project", "grant", "claims", "demo-shadow"});
  ASSERT_EQ(granted.exit_code, 0) << granted.err;
  EXPECT_EQ(ctl({"project", "grant", "claims", "gold"}).exit_code, 2);
  auto projects = nlohmann::json::parse(ctl({"--json", "project", "list"}).out)["projects"];
  ASSERT_EQ(projects.size(), 1u);
  EXPECT_EQ(projects[0]["compartments"], nlohmann::json::array({"demo-shadow"}));
  EXPECT_EQ(projects[0]["valid_now"], true);
  auto users = nlohmann::json::parse(ctl({"--json", "user", "list"}).out)["users"];
  ASSERT_EQ(users.size(), 2u);
  EXPECT_THAT(ctl({"site", "list"}).out, HasSubstr("room-a"));

  sessiond->signal(SIGTERM);
  EXPECT_EQ(sessiond->wait(), 0) << sessiond->stderr_text();
  auto added = audit_events("registry.device.added");
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0]["device"], "kiosk-1");
  EXPECT_EQ(added[0]["site"], "room-a");
  EXPECT_FALSE(added[0]["actor"].get<std::string>().empty()) << "the operator, from SO_PEERCRED";
  EXPECT_EQ(audit_events("registry.user.added").size(), 2u);
  EXPECT_EQ(audit_events("registry.site.approved").size(), 1u);
  EXPECT_EQ(audit_events("registry.enrolment.recorded").size(), 1u);
  EXPECT_EQ(audit_events("registry.device.revoked").size(), 1u);
  auto refusals = audit_events("registry.refused");
  ASSERT_EQ(refusals.size(), 3u) << "kit for an unknown site, self-approval, unknown compartment";
  EXPECT_THAT(refusals[1]["details"]["reason"].get<std::string>(), HasSubstr("their own"));
}

// Calls the daemon as the user nobody: a child drops root before it connects, so SO_PEERCRED
// says nobody. "ok <result>" or the error's message.
std::string call_as_nobody(const std::filesystem::path& socket, const std::string& method,
                           const nlohmann::json& params) {
  const passwd* nobody = ::getpwnam("nobody");
  if (nobody == nullptr) return "no user nobody";
  const uid_t uid = nobody->pw_uid;
  const gid_t gid = nobody->pw_gid;
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    std::string out;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      out = "could not become nobody";
    } else if (auto client = ipc::Client::connect(socket); !client) {
      out = client.error().message;
    } else {
      auto r = client->call(method, params);
      out = r ? "ok " + r->dump() : r.error().message;
    }
    (void)!::write(fds[1], out.data(), out.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) out.append(buffer, n);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

// ticket.issue makes the session's outbox; its token identifies the session over the socket, to
// the daemon's own user and root, and to a user only once [sessiond] exporters names them.
TEST_F(SessionDaemon, OutboxTokenIdentifiesTheSessionToExportersOnly) {
  if (auto why = local_desktop_unavailable(LocalDesktopKind::kShadow); !why.empty()) {
    GTEST_SKIP() << "no local shadow desktop: " << why;
  }
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to call the daemon as another user";
  if (::getpwnam("nobody") == nullptr) GTEST_SKIP() << "no user nobody to call as";
  auto auditd = start("enclave-auditd", auditd_socket());
  auto sessiond = start("enclave-sessiond", sessiond_socket());
  auto issued =
      tool("enclavectl", {"--json", "ticket", "issue", "--user", "alice", "--device", "kiosk-7",
                          "--source", "127.0.0.1", "--compartment", "demo-shadow"});
  ASSERT_EQ(issued.exit_code, 0) << issued.err << sessiond->stderr_text();
  const std::string id = nlohmann::json::parse(issued.out)["session_id"];
  const auto outbox = state() / "exitcontrol" / "outbox" / id;
  EXPECT_EQ(mode_of(outbox), 0700u);
  EXPECT_EQ(mode_of(outbox / ".enclave-session"), 0600u);
  const SessionFile file = read_session_file(outbox);
  EXPECT_EQ(file.session, id);
  const std::string token = file.token;
  ASSERT_EQ(token.size(), 64u);
  // The desktop's processes know their outbox.
  EXPECT_GE(processes_with_env("ENCLAVE_OUTBOX=" + outbox.string()).size(), 2u)
      << "Xvfb and freerdp-shadow-cli at least";

  auto client = ipc::Client::connect(sessiond_socket());
  ASSERT_TRUE(client) << client.error().describe();
  auto identified = client->call(methods::kSessionIdentify, {{"token", token}});
  ASSERT_TRUE(identified) << identified.error().describe();
  EXPECT_EQ((*identified)["session_id"], id);
  EXPECT_EQ((*identified)["user"], "alice");
  EXPECT_EQ((*identified)["device"], "kiosk-7");
  EXPECT_EQ((*identified)["compartment"], "demo-shadow");
  EXPECT_EQ((*identified)["tier"], "standard");
  EXPECT_EQ((*identified)["state"], "issued");
  EXPECT_EQ((*identified)["outbox"], outbox.string());
  EXPECT_EQ((*identified)["export"],
            (nlohmann::json{{"profile", "acro-default"}, {"stewards", 1}}));
  auto unknown = client->call(methods::kSessionIdentify, {{"token", std::string(64, 'e')}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::kPermission);
  EXPECT_EQ(unknown.error().message, "unknown export token");
  auto malformed = client->call(methods::kSessionIdentify, {{"token", "not-a-token"}});
  ASSERT_FALSE(malformed);
  EXPECT_EQ(malformed.error().code, Errc::kInvalidArgument);

  ASSERT_EQ(tool("enclavectl", {"session", "end", id}).exit_code, 0);
  auto ended = client->call(methods::kSessionIdentify, {{"token", token}});
  ASSERT_TRUE(ended) << ended.error().describe();
  EXPECT_EQ((*ended)["state"], "ended");
  EXPECT_TRUE(std::filesystem::exists(outbox / ".enclave-session")) << "the outbox stays";

  // nobody may reach the socket (its modes opened for the test) but is not an exporter.
  for (const auto& d : {dir_.path(), state(), state() / "run"})
    ASSERT_EQ(::chmod(d.c_str(), 0711), 0);
  ASSERT_EQ(::chmod(sessiond_socket().c_str(), 0666), 0);
  EXPECT_THAT(call_as_nobody(sessiond_socket(), methods::kSessionIdentify, {{"token", token}}),
              ::testing::Not(::testing::StartsWith("ok ")));
  sessiond->signal(SIGTERM);
  EXPECT_EQ(sessiond->wait(), 0) << sessiond->stderr_text();

  // Named in exporters: nobody identifies the session (ended, the token still good after a
  // restart) and may do nothing else.
  write_sessions_policy("", "exporters = [\"nobody\"]\n");
  sessiond = start("enclave-sessiond", sessiond_socket());
  ASSERT_EQ(::chmod(sessiond_socket().c_str(), 0666), 0);
  const std::string as_exporter =
      call_as_nobody(sessiond_socket(), methods::kSessionIdentify, {{"token", token}});
  ASSERT_THAT(as_exporter, ::testing::StartsWith("ok ")) << sessiond->stderr_text();
  auto result = nlohmann::json::parse(as_exporter.substr(3));
  EXPECT_EQ(result["session_id"], id);
  EXPECT_EQ(result["state"], "ended");
  EXPECT_EQ(call_as_nobody(sessiond_socket(), methods::kTicketIssue,
                           {{"user", "alice"},
                            {"device", "k"},
                            {"source", "127.0.0.1"},
                            {"compartment", "demo-shadow"}}),
            "ticket.issue is not allowed for nobody");
  sessiond->signal(SIGTERM);
  EXPECT_EQ(sessiond->wait(), 0) << sessiond->stderr_text();

  auto refused = audit_events("session.identify");
  ASSERT_EQ(refused.size(), 2u);
  EXPECT_EQ(refused[0]["outcome"], "refused");
  EXPECT_EQ(refused[0]["details"]["reason"], "unknown export token");
  EXPECT_EQ(refused[1]["details"]["reason"], "an export token is 64 hex digits");
  for (const auto& e : refused) EXPECT_EQ(e.dump().find(std::string(64, 'e')), std::string::npos);
  auto denied = audit_events("sessiond.refused");
  ASSERT_EQ(denied.size(), 2u) << denied.dump();
  EXPECT_EQ(denied[0]["actor"], "nobody");
  EXPECT_EQ(denied[1]["actor"], "nobody");
  EXPECT_THAT(denied[1]["details"]["reason"].get<std::string>(), HasSubstr("ticket.issue"));
}

TEST_F(SessionDaemon, NoTicketsWithoutTheAuditLog) {
  auto sessiond = start("enclave-sessiond", sessiond_socket());
  auto r = tool("enclavectl", {"ticket", "issue", "--user", "alice", "--device", "k", "--source",
                               "127.0.0.1", "--compartment", "demo-shadow"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("audit log is unavailable"));
  auto unknown = tool("enclavectl", {"ticket", "issue", "--user", "alice", "--device", "k",
                                     "--source", "127.0.0.1", "--compartment", "nope"});
  EXPECT_EQ(unknown.exit_code, 2);
  sessiond->signal(SIGTERM);
  EXPECT_EQ(sessiond->wait(), 0) << sessiond->stderr_text();
}

TEST_F(SessionDaemon, BadPolicyIsRefusedNamingFileLineAndKey) {
  write_sessions_policy("[compartments.other]\ntier = \"gold\"\nlocal = {}\n");
  auto r = tool("enclave-sessiond", {"run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("sessions.toml:10:1: compartments.other.tier: unknown tier \"gold\""));
  auto check = tool("enclave-sessiond", {"check"});
  EXPECT_EQ(check.exit_code, 2);
  // An export profile that is not among the policies.
  write_sessions_policy("[tiers.other]\nexport_profile = \"nope\"\n");
  for (const char* command : {"run", "check"}) {
    r = tool("enclave-sessiond", {command});
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_THAT(r.err,
                HasSubstr("sessions.toml:10:1: tiers.other.export_profile: no export "
                          "profile \"nope\": " +
                          (dir_ / "policies/exitcontrol/nope.toml").string() + " is missing"))
        << command;
  }
  write_sessions_policy("");
  check = tool("enclave-sessiond", {"check"});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  EXPECT_THAT(check.out, HasSubstr("demo-shadow"));
}

}  // namespace
}  // namespace enclave::sessionmgr
