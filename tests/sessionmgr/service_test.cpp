// SessionService against a real SQLite store, with a fake clock, fake desktops, a fake gateway
// and an in-memory audit log: tickets, the lifecycle, pools, health, limits, fail-closed audit.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <array>
#include <atomic>
#include <cctype>
#include <fstream>
#include <random>
#include <thread>

#include "common/bytes.hpp"
#include "common/policy.hpp"
#include "sessionmgr/service/outbox.hpp"
#include "sessionmgr/service/session_service.hpp"
#include "tests/sessionmgr/outbox_support.hpp"
#include "tests/sessionmgr/recording_audit.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::TempDir;

struct DesktopCounters {
  std::atomic<int> started{0}, stopped{0};
  std::atomic<bool> fail_start{false};
};

class FakeDesktop : public DesktopHandle {
 public:
  FakeDesktop(LocalDesktopInfo info, std::shared_ptr<DesktopCounters> counters,
              std::shared_ptr<std::atomic<bool>> alive)
      : info_(std::move(info)), counters_(std::move(counters)), alive_(std::move(alive)) {}
  ~FakeDesktop() override { counters_->stopped++; }
  const LocalDesktopInfo& info() const override { return info_; }
  bool alive() const override { return *alive_; }

 private:
  LocalDesktopInfo info_;
  std::shared_ptr<DesktopCounters> counters_;
  std::shared_ptr<std::atomic<bool>> alive_;
};

struct ProvisionCall {
  std::string host, user, password;
};

class Service : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_ / "fixed.toml") << "user = \"shared\"\npassword = \"s3cret\"\n"
                                          "domain = \"LAB\"\n";
    ::chmod((dir_ / "fixed.toml").c_str(), 0600);
  }

  std::string policy_text() const {
    return "[sessiond]\ndatabase = \"" + (dir_ / "sessions.db").string() +
           "\"\ngateway_address = \"gw.example:3390\"\n" + extra_sessiond_ +
           "[tiers.standard]\ngrace_s = 300\nmax_session_s = 3600\n" + extra_tier_ +
           "[compartments.local]\ntier = \"standard\"\nlocal = { kind = \"shadow\", max_desktops "
           "= 2 }\n"
           "[compartments.pool]\ntier = \"standard\"\n"
           "[[compartments.pool.hosts]]\nhost = \"10.0.0.1\"\npin_sha256 = \"" +
           std::string(64, 'a') +
           "\"\nprovision_command = [\"/bin/true\"]\naccount = \"an1\"\n"
           "[[compartments.pool.hosts]]\nhost = \"10.0.0.2\"\nca_file = \"/ca.pem\"\n"
           "credentials = \"fixed\"\ncredentials_file = \"" +
           (dir_ / "fixed.toml").string() + "\"\n";
  }

  Expected<std::unique_ptr<SessionService>> open() {
    auto doc = policy::Document::parse(policy_text(), "sessions.toml");
    if (!doc) return error_of(doc);
    auto p = load_session_policy(*doc, dir_.path());
    if (!p) return error_of(p);
    ServiceDeps deps;
    deps.audit = &audit_;
    deps.clock = [this] { return now_; };
    deps.random = [this](std::span<std::uint8_t> out) {
      for (auto& b : out) b = static_cast<std::uint8_t>(rng_());
    };
    deps.start_local =
        [this](const LocalDesktopOptions& o) -> Expected<std::unique_ptr<DesktopHandle>> {
      if (desktops_->fail_start) return fail(Errc::kUnavailable, "Xvfb did not start");
      int n = ++desktops_->started;
      {
        std::lock_guard lock(mu_);
        desktop_outboxes_.push_back(o.outbox);
      }
      LocalDesktopInfo info;
      info.host = "127.0.0.1";
      info.port = static_cast<std::uint16_t>(40000 + n);
      info.server_name = "desktop-" + std::to_string(n);
      info.pin_sha256 = std::string(64, 'b');
      info.user = o.account;
      info.password = "pw-" + std::to_string(n);
      auto alive = std::make_shared<std::atomic<bool>>(true);
      alive_.push_back(alive);
      return std::unique_ptr<DesktopHandle>(
          std::make_unique<FakeDesktop>(info, desktops_, std::move(alive)));
    };
    deps.probe = [this](const std::string& host, std::uint16_t) -> Status {
      if (down_.contains(host)) return fail(Errc::kUnavailable, "no answer from " + host);
      return {};
    };
    deps.provision = [this](const StaticHost& h, const std::string& user,
                            const std::string& password) -> Status {
      std::lock_guard lock(mu_);
      provisions_.push_back({h.host, user, password});
      if (provision_fails_) return fail(Errc::kUnavailable, "ssh: connection refused");
      return {};
    };
    deps.end_on_gateway = [this](const std::string& id, const std::string&) -> Expected<bool> {
      std::lock_guard lock(mu_);
      gateway_calls_.push_back(id);
      if (!gateway_up_) return fail(Errc::kUnavailable, "no service listening");
      return true;
    };
    auto s = SessionService::open(std::move(p).value(), std::move(deps));
    if (s) (*s)->check_health();
    return s;
  }

  std::unique_ptr<SessionService> service() {
    auto s = open();
    EXPECT_TRUE(s) << s.error().describe();
    return std::move(s).value();
  }

  static IssueRequest req(std::string user, std::string compartment = "local",
                          std::string source = "192.0.2.7") {
    return {std::move(user), "kiosk-1", std::move(source), std::move(compartment), ""};
  }

  nlohmann::json issue(SessionService& s, const IssueRequest& r) {
    auto t = s.issue(r, "operator");
    EXPECT_TRUE(t) << t.error().describe();
    return t ? *t : nlohmann::json();
  }

  std::string state_of(SessionService& s, const std::string& id) {
    auto l = s.list(true);
    for (const auto& row : (*l)["sessions"]) {
      if (row["session_id"] == id) return row["state"];
    }
    return "missing";
  }

  std::string end_reason_of(SessionService& s, const std::string& id) {
    auto l = s.list(true);
    for (const auto& row : (*l)["sessions"]) {
      if (row["session_id"] == id) return row.value("end_reason", "");
    }
    return "missing";
  }

  static std::string refusal(const Expected<nlohmann::json>& r) {
    return r ? "redeemed" : r.error().message;
  }

  TempDir dir_;
  std::string extra_sessiond_, extra_tier_;
  FakeAudit audit_;
  TimePoint now_ = TimePoint(1'800'000'000s);
  std::mt19937_64 rng_{42};
  std::shared_ptr<DesktopCounters> desktops_ = std::make_shared<DesktopCounters>();
  std::vector<std::shared_ptr<std::atomic<bool>>> alive_;
  std::set<std::string> down_;
  std::mutex mu_;
  std::vector<ProvisionCall> provisions_;
  bool provision_fails_ = false;
  std::vector<std::string> gateway_calls_;
  bool gateway_up_ = true;
  std::vector<std::filesystem::path> desktop_outboxes_;  // what each local desktop was given
};

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

TEST_F(Service, IssueThenRedeemOnceFromTheBoundAddress) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  const std::string ticket = t["ticket"];
  EXPECT_TRUE(is_ticket_syntax(ticket));
  EXPECT_EQ(t["gateway"], "gw.example:3390");
  EXPECT_EQ(t["desktop"]["host"], "127.0.0.1");
  EXPECT_EQ(t["desktop"]["port"], 40001);
  EXPECT_EQ(t["expires_at"], format_rfc3339(now_ + 60s));
  const std::string id = t["session_id"];
  EXPECT_EQ(state_of(*s, id), "issued");
  ASSERT_EQ(audit_.of_type("ticket.issued").size(), 1u);
  EXPECT_EQ(audit_.of_type("ticket.issued")[0]["actor"], "alice");
  EXPECT_EQ(audit_.of_type("ticket.issued")[0]["details"]["by"], "operator");
  EXPECT_EQ(audit_.of_type("desktop.started").size(), 1u);

  // Only the hash is stored.
  auto db = SessionStore::open(dir_ / "sessions.db");
  ASSERT_TRUE(db);
  EXPECT_TRUE(*db->ticket(ticket_hash(ticket)));
  EXPECT_FALSE(*db->ticket(ticket));

  EXPECT_EQ(refusal(s->redeem(ticket, "192.0.2.8", "gw")), "ticket refused: wrong source address");
  now_ += 30s;
  auto r = s->redeem(ticket, "::ffff:192.0.2.7", "gw");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)["session_id"], id);
  EXPECT_EQ((*r)["user"], "alice");
  EXPECT_EQ((*r)["tier"], "standard");
  EXPECT_EQ((*r)["desktop"]["pin_sha256"], std::string(64, 'b'));
  EXPECT_EQ((*r)["credentials"]["password"], "pw-1");
  EXPECT_EQ((*r)["channels"]["static"], nlohmann::json::array({"drdynvc"}));
  EXPECT_EQ((*r)["limits"]["max_s"], 3600);
  EXPECT_EQ((*r)["limits"]["remaining_s"], 3600);
  EXPECT_EQ(state_of(*s, id), "active");

  auto again = s->redeem(ticket, "192.0.2.7", "gw");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kPermission);
  EXPECT_EQ(again.error().message, "ticket refused: already used");
  EXPECT_EQ(refusal(s->redeem(std::string(64, 'c'), "192.0.2.7", "gw")), "ticket refused: unknown");
  EXPECT_EQ(refusal(s->redeem("short", "192.0.2.7", "gw")), "ticket refused: unknown");
  EXPECT_EQ(
      audit_.reasons("ticket.refused"),
      (std::vector<std::string>{"wrong source address", "already used", "unknown", "unknown"}));
  EXPECT_EQ(audit_.of_type("ticket.redeemed").size(), 1u);
}

// Every new session gets its outbox and export token; the token names the session through
// every state, a resume keeps both, and only the token's hash is stored.
TEST_F(Service, IssueCreatesTheOutboxWhoseTokenIdentifiesTheSession) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  const std::string id = t["session_id"];
  const auto root = dir_ / "exitcontrol" / "outbox";
  const auto outbox = root / id;
  EXPECT_EQ(mode_of(root), 0711u);
  EXPECT_EQ(mode_of(outbox), 0700u);
  EXPECT_EQ(mode_of(outbox / ".enclave-session"), 0600u);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(outbox), {}), 1)
      << "the session file and nothing else";
  const SessionFile file = read_session_file(outbox);
  EXPECT_EQ(file.session, id);
  ASSERT_TRUE(is_ticket_syntax(file.token)) << file.token;
  EXPECT_EQ(file.token, hex_encode(*hex_decode(file.token))) << "lowercase hex";
  EXPECT_NE(file.token, t["ticket"]);
  EXPECT_EQ(desktop_outboxes_, std::vector<std::filesystem::path>{outbox});

  auto identified = s->identify(file.token, "exportd");
  ASSERT_TRUE(identified) << identified.error().describe();
  EXPECT_EQ(*identified,
            (nlohmann::json{{"session_id", id},
                            {"user", "alice"},
                            {"device", "kiosk-1"},
                            {"compartment", "local"},
                            {"tier", "standard"},
                            {"state", "issued"},
                            {"outbox", outbox.string()},
                            {"export", {{"profile", "acro-default"}, {"stewards", 1}}}}));
  {
    // sessions.db has the token's SHA-256, never the token.
    auto db = SessionStore::open(dir_ / "sessions.db");
    ASSERT_TRUE(db);
    auto row = db->session(id);
    ASSERT_TRUE(row && *row);
    EXPECT_EQ((*row)->export_token_sha256, sha256_hex(as_bytes(file.token)));
    auto by_token = db->session_by_export_token(sha256_hex(as_bytes(file.token)));
    ASSERT_TRUE(by_token && *by_token);
    EXPECT_EQ((*by_token)->id, id);
    EXPECT_FALSE(*db->session_by_export_token(file.token));
  }
  // Either case of the hex digits names the same token.
  std::string upper = file.token;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(s->identify(upper, "exportd"));

  // Another session, another outbox and token.
  auto other = issue(*s, req("bob"));
  const SessionFile bob = read_session_file(root / other["session_id"].get<std::string>());
  EXPECT_NE(bob.token, file.token);
  EXPECT_EQ((*s->identify(bob.token, "exportd"))["user"], "bob");

  ASSERT_TRUE(s->redeem(t["ticket"], "192.0.2.7", "gw"));
  ASSERT_TRUE(s->connected(id));
  EXPECT_EQ((*s->identify(file.token, "exportd"))["state"], "active");
  ASSERT_TRUE(s->disconnected(id, "network", false, nlohmann::json::object()));
  EXPECT_EQ((*s->identify(file.token, "exportd"))["state"], "disconnected");

  // Resumed from its grace period: the same outbox, the same token.
  now_ += 60s;
  auto resumed = issue(*s, req("alice"));
  ASSERT_EQ(resumed["resumed"], true);
  EXPECT_EQ(read_session_file(outbox).token, file.token);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(root), {}), 2);
  EXPECT_EQ((*s->identify(file.token, "exportd"))["state"], "disconnected") << "until redeemed";

  // Ended: the outbox stays and the token still says whose it was.
  ASSERT_TRUE(s->end(id, "drill", "operator"));
  auto ended = s->identify(file.token, "exportd");
  ASSERT_TRUE(ended) << ended.error().describe();
  EXPECT_EQ((*ended)["state"], "ended");
  EXPECT_EQ((*ended)["session_id"], id);
  EXPECT_TRUE(std::filesystem::exists(outbox / ".enclave-session"));
  EXPECT_TRUE(audit_.of_type("session.identify").empty()) << "only refusals are audited";
}

TEST_F(Service, TheTierSaysHowItsSessionsExport) {
  extra_tier_ = "export_profile = \"ndb\"\nexport_stewards = 2\n";
  auto s = service();
  auto t = issue(*s, req("alice", "pool"));
  const auto file =
      read_session_file(dir_ / "exitcontrol/outbox" / t["session_id"].get<std::string>());
  auto identified = s->identify(file.token, "exportd");
  ASSERT_TRUE(identified) << identified.error().describe();
  EXPECT_EQ((*identified)["export"], (nlohmann::json{{"profile", "ndb"}, {"stewards", 2}}));
  EXPECT_EQ((*identified)["compartment"], "pool");
  EXPECT_TRUE(desktop_outboxes_.empty()) << "a static host starts no local desktop";
}

TEST_F(Service, UnknownOrMalformedExportTokensAreRefusedAndAudited) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  const auto real =
      read_session_file(dir_ / "exitcontrol/outbox" / t["session_id"].get<std::string>());
  // One digit changed: unknown.
  std::string near = real.token;
  near[0] = near[0] == '0' ? '1' : '0';
  for (const std::string& token : {std::string(64, 'c'), near}) {
    auto r = s->identify(token, "exportd");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kPermission);
    EXPECT_EQ(r.error().message, "unknown export token");
  }
  for (const std::string& token :
       {std::string(), std::string("short"), std::string(63, 'a'), std::string(65, 'a'),
        std::string(63, 'a') + "g", real.token + " "}) {
    auto r = s->identify(token, "exportd");
    ASSERT_FALSE(r) << token;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << token;
  }
  auto refused = audit_.of_type("session.identify");
  ASSERT_EQ(refused.size(), 8u);
  EXPECT_EQ(refused[0]["outcome"], "refused");
  EXPECT_EQ(refused[0]["actor"], "exportd");
  EXPECT_EQ(refused[0]["details"]["reason"], "unknown export token");
  EXPECT_EQ(refused[2]["details"]["reason"], "an export token is 64 hex digits");
  for (const auto& e : refused) {
    EXPECT_EQ(e.dump().find(near), std::string::npos) << "the token is never logged";
    EXPECT_EQ(e.dump().find(std::string(64, 'c')), std::string::npos);
  }
}

// An outbox that cannot be made refuses the ticket naming the path, and leaves no session,
// no desktop and no outbox behind.
TEST_F(Service, NoOutboxNoSession) {
  std::ofstream(dir_ / "not-a-directory") << "x";
  extra_sessiond_ = "outbox_root = \"" + (dir_ / "not-a-directory" / "outbox").string() + "\"\n";
  auto s = service();
  auto r = s->issue(req("alice"), "operator");
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("cannot create the outbox root " +
                                           (dir_ / "not-a-directory" / "outbox").string() + ": "));
  EXPECT_TRUE((*s->list(true))["sessions"].empty());
  EXPECT_EQ(desktops_->started, 0);
  EXPECT_TRUE(audit_.of_type("ticket.issued").empty());
  ASSERT_EQ(audit_.of_type("ticket.denied").size(), 1u);
  EXPECT_THAT(audit_.reasons("ticket.denied")[0], HasSubstr("not-a-directory/outbox"));
}

// A directory already at the session's outbox path (a squatter's) is never taken over. The
// fixture's randomness is a fixed sequence, so the next session's id is known in advance.
TEST_F(Service, AnOutboxAlreadyThereIsNeverHandedOut) {
  std::mt19937_64 same_rng{42};
  std::array<std::uint8_t, 8> id{};
  for (auto& b : id) b = static_cast<std::uint8_t>(same_rng());
  const auto squatted = dir_ / "exitcontrol" / "outbox" / ("s-" + hex_encode(id));
  std::filesystem::create_directories(squatted);
  auto s = service();
  auto r = s->issue(req("alice"), "operator");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kAlreadyExists);
  EXPECT_THAT(r.error().message, HasSubstr("cannot create the outbox " + squatted.string()));
  EXPECT_TRUE((*s->list(true))["sessions"].empty());
  EXPECT_EQ(desktops_->started, 0);
  EXPECT_TRUE(std::filesystem::is_empty(squatted)) << "left as it was";
}

// sessions.db from before export tokens (schema 1, its sessions table as it was): opened by
// this build, its rows stay, without a token, and new rows get one.
TEST(SessionStoreMigration, KeepsTheRowsOfSchemaOne) {
  static constexpr std::string_view kSessionsV1 = R"sql(
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  source TEXT NOT NULL,
  compartment TEXT NOT NULL,
  tier TEXT NOT NULL,
  desktop_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('issued', 'active', 'disconnected', 'ended')),
  created_ms INTEGER NOT NULL,
  started_ms INTEGER,
  updated_ms INTEGER NOT NULL,
  grace_until_ms INTEGER,
  ended_ms INTEGER,
  end_reason TEXT NOT NULL DEFAULT '',
  connects INTEGER NOT NULL DEFAULT 0,
  bytes TEXT NOT NULL DEFAULT '{}'
);
INSERT INTO sessions (id, user, device, source, compartment, tier, desktop_id, state,
                      created_ms, updated_ms, ended_ms, end_reason)
  VALUES ('s-0000000000000001', 'alice', 'k', '192.0.2.7', 'local', 'standard', 'local/x',
          'ended', 1000, 2000, 2000, 'ended by operator');
)sql";
  TempDir dir;
  const auto path = dir / "sessions.db";
  {
    const std::array<store::Migration, 1> v1 = {{{1, kSessionsV1}}};
    ASSERT_TRUE(store::Database::open(path, v1));
  }
  auto db = SessionStore::open(path);
  ASSERT_TRUE(db) << db.error().describe();
  auto old = db->session("s-0000000000000001");
  ASSERT_TRUE(old && *old);
  EXPECT_EQ((*old)->user, "alice");
  EXPECT_EQ((*old)->end_reason, "ended by operator");
  EXPECT_EQ((*old)->export_token_sha256, "");

  Session fresh = **old;
  fresh.id = "s-0000000000000002";
  fresh.export_token_sha256 = sha256_hex(as_bytes("a token"));
  ASSERT_TRUE(db->insert_session(fresh));
  auto found = db->session_by_export_token(fresh.export_token_sha256);
  ASSERT_TRUE(found && *found);
  EXPECT_EQ((*found)->id, fresh.id);
  // A token's hash names one session only.
  fresh.id = "s-0000000000000003";
  EXPECT_FALSE(db->insert_session(fresh));
}

TEST_F(Service, SingleUseHoldsUnderConcurrentRedemption) {
  auto s = service();
  const std::string ticket = issue(*s, req("alice"))["ticket"];
  std::atomic<int> redeemed{0}, used{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      auto r = s->redeem(ticket, "192.0.2.7", "gw");
      if (r) {
        redeemed++;
      } else if (r.error().message == "ticket refused: already used") {
        used++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(redeemed, 1);
  EXPECT_EQ(used, 7);
}

TEST_F(Service, ExpiredTicketIsRefusedAndItsSessionEnds) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  now_ += 60s;
  EXPECT_EQ(refusal(s->redeem(t["ticket"], "192.0.2.7", "gw")), "ticket refused: expired");
  s->tick();
  EXPECT_EQ(state_of(*s, t["session_id"]), "ended");
  EXPECT_EQ(end_reason_of(*s, t["session_id"]), end_reason::kTicketExpired);
  EXPECT_EQ(desktops_->stopped, 1);
  EXPECT_EQ(audit_.reasons("session.ended"), std::vector<std::string>{"ticket expired"});
  EXPECT_TRUE(gateway_calls_.empty());  // never reached the gateway
}

TEST_F(Service, ANewTicketReplacesAnUnredeemedOne) {
  auto s = service();
  auto first = issue(*s, req("alice"));
  now_ += 5s;
  auto second = issue(*s, req("alice"));
  EXPECT_EQ(first["session_id"], second["session_id"]);
  EXPECT_EQ(desktops_->started, 1);
  EXPECT_EQ(refusal(s->redeem(first["ticket"], "192.0.2.7", "gw")), "ticket refused: expired");
  EXPECT_EQ(refusal(s->redeem(second["ticket"], "192.0.2.7", "gw")), "redeemed");
}

TEST_F(Service, DisconnectGraceResumeAndExpiry) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  const std::string id = t["session_id"];
  ASSERT_TRUE(s->redeem(t["ticket"], "192.0.2.7", "gw"));
  ASSERT_TRUE(s->connected(id));
  EXPECT_EQ(audit_.of_type("session.started").size(), 1u);
  ASSERT_TRUE(s->disconnected(id, "network", false, {{"to_host", 100}, {"to_client", 5000}}));
  EXPECT_EQ(state_of(*s, id), "disconnected");
  EXPECT_EQ(issue(*s, req("bob"))["session_id"] != id, true);  // others are unaffected

  now_ += 120s;  // within the grace period: a fresh ticket resumes the same desktop
  auto again = issue(*s, req("alice", "local", "192.0.2.9"));
  EXPECT_EQ(again["session_id"], id);
  EXPECT_EQ(again["resumed"], true);
  EXPECT_EQ(again["desktop"]["port"], t["desktop"]["port"]);
  EXPECT_EQ(refusal(s->redeem(again["ticket"], "192.0.2.7", "gw")),
            "ticket refused: wrong source address");  // bound to the new address
  auto r = s->redeem(again["ticket"], "192.0.2.9", "gw");
  ASSERT_TRUE(r);
  EXPECT_EQ((*r)["resumed"], true);
  EXPECT_EQ((*r)["limits"]["remaining_s"], 3600 - 120);
  ASSERT_TRUE(s->connected(id));
  EXPECT_EQ(audit_.of_type("session.resumed").size(), 1u);

  ASSERT_TRUE(s->disconnected(id, "network", false, {{"to_host", 1}}));
  now_ += 299s;
  s->tick();
  EXPECT_EQ(state_of(*s, id), "disconnected");
  now_ += 1s;
  s->tick();
  EXPECT_EQ(state_of(*s, id), "ended");
  EXPECT_EQ(end_reason_of(*s, id), end_reason::kGraceExpired);
  std::vector<nlohmann::json> ended;
  for (const auto& e : audit_.of_type("session.ended")) {
    if (e["session"] == id) ended.push_back(e);
  }
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(ended[0]["details"]["bytes"]["to_host"], 101);
  EXPECT_EQ(ended[0]["details"]["bytes"]["to_client"], 5000);
  EXPECT_EQ(desktops_->stopped, 2);  // and bob's, whose ticket expired unredeemed
}

TEST_F(Service, GatewayEndedSessionIsNotResumed) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  ASSERT_TRUE(s->redeem(t["ticket"], "192.0.2.7", "gw"));
  ASSERT_TRUE(s->disconnected(t["session_id"], "idle timeout", true, nlohmann::json::object()));
  EXPECT_EQ(state_of(*s, t["session_id"]), "ended");
  EXPECT_EQ(end_reason_of(*s, t["session_id"]), "idle timeout");
  EXPECT_NE(issue(*s, req("alice"))["session_id"], t["session_id"]);
}

TEST_F(Service, MaximumTimeEndsTheSessionAtTheGateway) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  ASSERT_TRUE(s->redeem(t["ticket"], "192.0.2.7", "gw"));
  now_ += 3599s;
  s->tick();
  EXPECT_EQ(state_of(*s, t["session_id"]), "active");
  now_ += 1s;
  s->tick();
  EXPECT_EQ(end_reason_of(*s, t["session_id"]), end_reason::kMaxTime);
  EXPECT_EQ(gateway_calls_, std::vector<std::string>{t["session_id"]});
}

TEST_F(Service, OperatorEndTellsTheGatewayEvenWhenItIsDown) {
  auto s = service();
  auto a = issue(*s, req("alice"));
  ASSERT_TRUE(s->redeem(a["ticket"], "192.0.2.7", "gw"));
  auto r = s->end(a["session_id"], "drill", "operator");
  ASSERT_TRUE(r) << r.error().describe();
  EXPECT_EQ((*r)["gateway"], "cut at the gateway");
  EXPECT_EQ(end_reason_of(*s, a["session_id"]), "ended by operator: drill");
  EXPECT_EQ(audit_.of_type("session.ended")[0]["details"]["by"], "operator");
  auto twice = s->end(a["session_id"], "", "operator");
  ASSERT_FALSE(twice);
  EXPECT_EQ(twice.error().code, Errc::kConflict);
  EXPECT_EQ(s->end("s-nope", "", "operator").error().code, Errc::kNotFound);

  gateway_up_ = false;
  auto b = issue(*s, req("bob"));
  r = s->end(b["session_id"], "", "operator");
  ASSERT_TRUE(r);
  EXPECT_THAT((*r)["gateway"].get<std::string>(), HasSubstr("gateway not running"));
  EXPECT_EQ(state_of(*s, b["session_id"]), "ended");
  EXPECT_EQ(refusal(s->redeem(b["ticket"], "192.0.2.7", "gw")), "ticket refused: expired");
  EXPECT_EQ(desktops_->stopped, 2);
}

TEST_F(Service, FailsClosedWithoutTheAuditLog) {
  auto s = service();
  audit_.healthy_ = false;
  auto t = s->issue(req("alice"), "operator");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::kUnavailable);
  EXPECT_THAT(t.error().message, HasSubstr("audit log is unavailable"));
  EXPECT_EQ(desktops_->started, 0);
  EXPECT_TRUE((*s->list(true))["sessions"].empty());

  // Healthy at first, but the ticket.issued event is not acknowledged: no ticket, no desktop.
  audit_.healthy_ = true;
  audit_.accept_sync_ = false;
  t = s->issue(req("alice"), "operator");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::kUnavailable);
  EXPECT_EQ(desktops_->started, 1);
  EXPECT_EQ(desktops_->stopped, 1);
  EXPECT_TRUE((*s->list(false))["sessions"].empty());

  // A ticket issued while the log was up is not redeemed while it is down (nor burned).
  audit_.accept_sync_ = true;
  auto good = issue(*s, req("alice"));
  audit_.healthy_ = false;
  auto r = s->redeem(good["ticket"], "192.0.2.7", "gw");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kUnavailable);
  audit_.healthy_ = true;
  EXPECT_TRUE(s->redeem(good["ticket"], "192.0.2.7", "gw"));
}

TEST_F(Service, LimitsOneActiveSessionPerUserAndLocalCapacity) {
  auto s = service();
  auto a = issue(*s, req("alice"));
  ASSERT_TRUE(s->redeem(a["ticket"], "192.0.2.7", "gw"));
  auto second = s->issue(req("alice", "pool"), "operator");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::kConflict);
  EXPECT_THAT(second.error().message, HasSubstr("already has an active session"));
  issue(*s, req("bob"));
  auto third = s->issue(req("carol"), "operator");  // max_desktops = 2
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::kUnavailable);
  EXPECT_THAT(third.error().message, HasSubstr("local desktops of compartment local are in use"));
  EXPECT_EQ(audit_.of_type("ticket.denied").size(), 2u);
}

TEST_F(Service, TimeWindowClosesTheTier) {
  extra_tier_ = "windows = [{ from = \"09:00\", to = \"17:00\" }]\n";  // JST; now is 17:00
  auto s = service();
  auto t = s->issue(req("alice"), "operator");
  ASSERT_FALSE(t);
  EXPECT_EQ(t.error().code, Errc::kPermission);
  now_ -= 1h;
  EXPECT_TRUE(s->issue(req("alice"), "operator"));
}

TEST_F(Service, StaticPoolHealthCapacityAndPerSessionPasswords) {
  down_.insert("10.0.0.1");
  auto s = service();
  auto unhealthy = audit_.of_type("desktop.unhealthy");
  ASSERT_EQ(unhealthy.size(), 1u);
  EXPECT_EQ(unhealthy[0]["object"], "pool/10.0.0.1:3389");

  // Only 10.0.0.2 (fixed credentials) is in the pool.
  auto a = issue(*s, req("alice", "pool"));
  EXPECT_EQ(a["desktop"]["id"], "pool/10.0.0.2:3389");
  auto ra = s->redeem(a["ticket"], "192.0.2.7", "gw");
  ASSERT_TRUE(ra);
  EXPECT_EQ((*ra)["credentials"],
            (nlohmann::json{{"domain", "LAB"}, {"user", "shared"}, {"password", "s3cret"}}));
  EXPECT_EQ((*ra)["desktop"]["ca_file"], "/ca.pem");
  auto full = s->issue(req("bob", "pool"), "operator");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, Errc::kUnavailable);
  EXPECT_THAT(full.error().message, HasSubstr("1 unhealthy"));

  down_.clear();
  s->check_health();
  EXPECT_EQ(audit_.of_type("desktop.healthy").size(), 2u);  // first check of .2, return of .1
  auto b = issue(*s, req("bob", "pool"));
  EXPECT_EQ(b["desktop"]["id"], "pool/10.0.0.1:3389");
  ASSERT_EQ(provisions_.size(), 1u);
  EXPECT_EQ(provisions_[0].host, "10.0.0.1");
  EXPECT_EQ(provisions_[0].user, "an1");
  EXPECT_EQ(provisions_[0].password.size(), 24u);
  auto rb = s->redeem(b["ticket"], "192.0.2.7", "gw");
  ASSERT_TRUE(rb);
  EXPECT_EQ((*rb)["credentials"]["user"], "an1");
  EXPECT_EQ((*rb)["credentials"]["password"], provisions_[0].password);
  EXPECT_EQ((*rb)["desktop"]["pin_sha256"], std::string(64, 'a'));

  // The host fails: it leaves the pool; the session's own desktop is unavailable to a resume.
  ASSERT_TRUE(s->end(b["session_id"], "", "operator"));
  ASSERT_EQ(provisions_.size(), 2u);  // the password was rotated away
  EXPECT_NE(provisions_[1].password, provisions_[0].password);
  EXPECT_EQ(audit_.of_type("desktop.revoked").size(), 1u);
  down_.insert("10.0.0.1");
  s->check_health();
  EXPECT_EQ(audit_.of_type("desktop.unhealthy").size(), 2u);
  auto c = s->issue(req("carol", "pool"), "operator");
  ASSERT_FALSE(c);
}

TEST_F(Service, ProvisioningFailureRefusesTheTicket) {
  down_.insert("10.0.0.2");
  provision_fails_ = true;
  auto s = service();
  auto t = s->issue(req("alice", "pool"), "operator");
  ASSERT_FALSE(t);
  EXPECT_THAT(t.error().message, HasSubstr("could not set the session's password on 10.0.0.1"));
  EXPECT_EQ(audit_.of_type("desktop.failed").size(), 1u);
  EXPECT_TRUE((*s->list(false))["sessions"].empty());
}

TEST_F(Service, DeadLocalDesktopEndsItsSession) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  *alive_[0] = false;
  EXPECT_EQ(refusal(s->redeem(t["ticket"], "192.0.2.7", "gw")),
            "ticket refused: desktop unavailable");
  s->check_health();
  EXPECT_EQ(end_reason_of(*s, t["session_id"]), end_reason::kDesktopFailed);
  EXPECT_EQ(desktops_->stopped, 1);

  desktops_->fail_start = true;
  auto u = s->issue(req("bob"), "operator");
  ASSERT_FALSE(u);
  EXPECT_THAT(u.error().message, HasSubstr("the desktop did not start: Xvfb did not start"));
}

TEST_F(Service, ANewTicketDoesNotResumeADeadDesktop) {
  auto s = service();
  auto t = issue(*s, req("alice"));
  ASSERT_TRUE(s->redeem(t["ticket"], "192.0.2.7", "gw"));
  ASSERT_TRUE(s->disconnected(t["session_id"], "network", false, nlohmann::json::object()));
  *alive_[0] = false;  // died during the grace period, before the health check saw it
  auto again = issue(*s, req("alice"));
  EXPECT_NE(again["session_id"], t["session_id"]);
  EXPECT_EQ(again["resumed"], false);
  EXPECT_EQ(end_reason_of(*s, t["session_id"]), end_reason::kDesktopFailed);
  EXPECT_EQ(desktops_->started, 2);
  EXPECT_EQ(desktops_->stopped, 1);
}

TEST_F(Service, RestartEndsSessionsLeftOpen) {
  std::string id;
  {
    auto s = service();
    auto t = issue(*s, req("alice"));
    ASSERT_TRUE(s->redeem(t["ticket"], "192.0.2.7", "gw"));
    id = t["session_id"];
  }  // destroyed without shutdown(), as a crash would leave it
  auto s = service();
  EXPECT_EQ(state_of(*s, id), "ended");
  EXPECT_EQ(end_reason_of(*s, id), end_reason::kRestart);
  EXPECT_EQ(gateway_calls_, std::vector<std::string>{id});
}

TEST_F(Service, ShutdownEndsEverySession) {
  auto s = service();
  auto a = issue(*s, req("alice"));
  auto b = issue(*s, req("bob"));
  s->shutdown();
  EXPECT_EQ(state_of(*s, a["session_id"]), "ended");
  EXPECT_EQ(state_of(*s, b["session_id"]), "ended");
  EXPECT_EQ(desktops_->stopped, 2);
}

TEST_F(Service, FixedCredentialsFileMustBePrivate) {
  ::chmod((dir_ / "fixed.toml").c_str(), 0644);
  auto s = open();
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::kPermission);
  EXPECT_THAT(s.error().message, HasSubstr("fixed.toml is open to group or others (mode 0644)"));
}

TEST_F(Service, ListShowsOpenSessionsAndWithAllTheEndedOnes) {
  auto s = service();
  auto a = issue(*s, req("alice"));
  auto b = issue(*s, req("bob"));
  ASSERT_TRUE(s->end(b["session_id"], "", "operator"));
  auto open = s->list(false);
  ASSERT_EQ((*open)["sessions"].size(), 1u);
  const auto& row = (*open)["sessions"][0];
  EXPECT_EQ(row["session_id"], a["session_id"]);
  EXPECT_EQ(row["user"], "alice");
  EXPECT_EQ(row["device"], "kiosk-1");
  EXPECT_EQ(row["compartment"], "local");
  EXPECT_EQ(row["tier"], "standard");
  EXPECT_EQ(row["state"], "issued");
  EXPECT_EQ(row["started_at"], "");
  EXPECT_EQ((*s->list(true))["sessions"].size(), 2u);
}

}  // namespace
}  // namespace enclave::sessionmgr

namespace enclave::sessionmgr {
namespace {

TEST(Credentials, ProvisionCommandGetsAccountAndPasswordOnStdin) {
  testing::TempDir dir;
  const auto out = (dir / "got").string();
  auto ok = run_with_input({"/bin/sh", "-c", "cat > " + out + "; echo \"$@\" >> " + out, "hook"},
                           {"10.0.0.1", "3389"}, "an1\nPassw0rd\n");
  ASSERT_TRUE(ok) << ok.error().describe();
  std::ifstream in(out);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "an1\nPassw0rd\n10.0.0.1 3389\n");

  auto failed = run_with_input({"/bin/sh", "-c", "echo 'no such account' >&2; exit 3"}, {}, "x\n");
  ASSERT_FALSE(failed);
  EXPECT_THAT(failed.error().message, ::testing::HasSubstr("exited with 3: no such account"));
  // More than a pipe holds, to a command that never reads it: the write fails with EPIPE, which
  // must come back as the command's own failure and not kill this process with SIGPIPE.
  auto unread =
      run_with_input({"/bin/sh", "-c", "exec 0<&-; exit 4"}, {}, std::string(1 << 20, 'x'));
  ASSERT_FALSE(unread);
  EXPECT_THAT(unread.error().message, ::testing::HasSubstr("exited with 4"));
  auto slow = run_with_input({"/bin/sleep", "5"}, {}, "", std::chrono::milliseconds(200));
  ASSERT_FALSE(slow);
  EXPECT_THAT(slow.error().message, ::testing::HasSubstr("did not finish within 200 ms"));
  auto missing = run_with_input({"/nonexistent/hook"}, {}, "");
  EXPECT_FALSE(missing);
}

TEST(Credentials, RandomPasswords) {
  std::mt19937 gen(1);
  RandomSource random = [&](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  };
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    auto p = random_password(random);
    ASSERT_EQ(p.size(), 24u);
    EXPECT_TRUE(std::any_of(p.begin(), p.end(), ::isupper));
    EXPECT_TRUE(std::any_of(p.begin(), p.end(), ::islower));
    EXPECT_TRUE(std::any_of(p.begin(), p.end(), ::isdigit));
    EXPECT_TRUE(std::all_of(p.begin(), p.end(), ::isalnum));
    seen.insert(p);
  }
  EXPECT_EQ(seen.size(), 200u);
}

TEST(Credentials, FixedFile) {
  testing::TempDir dir;
  std::ofstream(dir / "c.toml") << "user = \"u\"\n";
  ::chmod((dir / "c.toml").c_str(), 0400);
  auto c = read_fixed_credentials(dir / "c.toml");
  ASSERT_FALSE(c);
  EXPECT_THAT(c.error().message, ::testing::HasSubstr("password"));
  EXPECT_EQ(read_fixed_credentials(dir / "missing.toml").error().code, Errc::kNotFound);
}

}  // namespace
}  // namespace enclave::sessionmgr
