// enclave-auditd as a real process: appends acknowledged only when durable, checkpoints and
// off-box copies, refusals, start-up checks (key, database, history), a full disk, kill -9.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

#include "audit/core/event.hpp"
#include "audit/core/merkle.hpp"
#include "audit/core/note.hpp"
#include "audit/core/offbox.hpp"
#include "common/ipc/client.hpp"
#include "tests/support/process.hpp"

namespace enclave::audit {
namespace {

using testing::binary;
using testing::Child;
using ::testing::HasSubstr;
using testing::TempDir;

// A tool's JSON output; a test failure showing what it printed (not an abort) when it is not
// JSON, so that a rare bad run says what happened.
nlohmann::json json_of(const testing::RunResult& r) {
  auto parsed = nlohmann::json::parse(r.out, nullptr, false);
  if (parsed.is_discarded()) {
    ADD_FAILURE() << "not JSON (exit " << r.exit_code << "): " << r.out << "\n" << r.err;
    return nlohmann::json::array();
  }
  return parsed;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

nlohmann::json event(std::string type, std::string actor, std::string outcome = "success") {
  return {{"type", std::move(type)},
          {"actor", std::move(actor)},
          {"outcome", std::move(outcome)},
          {"site", "site-a"},
          {"details", {{"n", 1}}}};
}

class AuditDaemon : public ::testing::Test {
 protected:
  void SetUp() override { write_policy(""); }

  // The demo policy with every path inside the test's directory; `extra` replaces sections.
  void write_policy(const std::string& checkpoint_section, const std::string& state = "") {
    state_ = state.empty() ? dir_.path() / "state" : std::filesystem::path(state);
    std::filesystem::create_directories(dir_ / "policies");
    std::ofstream(dir_ / "policies" / "audit.toml")
        << "[audit]\norigin = \"test.example/audit\"\n"
        << "socket = \"" << (dir_ / "auditd.sock").string() << "\"\n"
        << (checkpoint_section.empty()
                ? "[audit.checkpoint]\nevery_entries = 50\nevery_seconds = 30\n"
                : checkpoint_section)
        << "[audit.offbox]\nfiles = [\"" << (dir_ / "offbox" / "audit.offbox").string() << "\"]\n";
  }

  std::map<std::string, std::string> env() const {
    return {{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
            {"ENCLAVE_STATE_DIR", state_.string()}};
  }

  testing::RunResult tool(const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), binary(name).string());
    return testing::run(args, env());
  }

  void keygen() {
    auto r = tool("enclave-auditd", {"keygen"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::unique_ptr<Child> launch() {
    std::filesystem::remove(dir_ / "auditd.sock");
    return std::make_unique<Child>(
        std::vector<std::string>{binary("enclave-auditd").string(), "run"}, env(), dir_.path());
  }

  std::unique_ptr<Child> start() {
    auto child = launch();
    EXPECT_TRUE(testing::wait_for_path(dir_ / "auditd.sock")) << child->stderr_text();
    return child;
  }

  // Throws when the daemon does not answer: gtest fails this test and runs the rest (a failed
  // Expected's value() would abort the whole binary).
  ipc::Client client() {
    auto c = ipc::Client::connect(dir_ / "auditd.sock");
    if (!c) throw std::runtime_error("cannot connect to enclave-auditd: " + c.error().describe());
    return std::move(c).value();
  }

  note::Verifier verifier() {
    auto text = read_text(state_ / "keys" / "audit-signing.pub");
    return note::Verifier::parse(text.substr(0, text.find('\n'))).value();
  }

  std::filesystem::path db() const { return state_ / "audit" / "audit.db"; }

  void sql(const std::string& statement) {
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(db().c_str(), &h), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(h, statement.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_free(err);
    sqlite3_close(h);
  }

  TempDir dir_;
  std::filesystem::path state_;
};

TEST_F(AuditDaemon, AppendsAreIndexedStampedAndSealedOnStop) {
  keygen();
  auto d = start();
  auto c = client();
  std::uint64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = c.call("audit.append", event("login.attempt", "alice"));
    ASSERT_TRUE(r) << r.error().describe();
    last = (*r)["index"].get<std::uint64_t>();
    EXPECT_EQ(last, static_cast<std::uint64_t>(i + 1));  // entry 0 is the daemon's own start
    EXPECT_TRUE(parse_time_us((*r)["time"].get<std::string>()));
  }
  auto status = c.call("audit.status", nlohmann::json::object());
  ASSERT_TRUE(status);
  EXPECT_EQ((*status)["size"], last + 1);
  EXPECT_EQ((*status)["sealed"], 0u);

  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0) << d->stderr_text();
  auto verify = tool("enclave-audit", {"verify", "--json"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  auto report = json_of(verify);
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["latest_checkpoint"]["size"], last + 2);  // + the daemon's stop event
  EXPECT_EQ(report["unsealed"], 0u);

  // The source is the peer's identity from the socket, not anything the client said.
  auto q = tool("enclave-audit", {"query", "--user", "alice", "--limit", "1", "--json"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto rows = json_of(q);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_THAT(rows[0]["source"].get<std::string>(), HasSubstr(":audit_daemon_te"));
}

TEST_F(AuditDaemon, CheckpointsAreSignedAndCopiedOffTheBox) {
  keygen();
  auto d = start();
  auto c = client();
  for (int i = 0; i < 120; ++i) ASSERT_TRUE(c.call("audit.append", event("x.y", "bob")));
  auto forced = c.call("audit.checkpoint", nlohmann::json::object());
  ASSERT_TRUE(forced) << forced.error().describe();
  auto key = verifier();
  auto opened = note::open_checkpoint(as_bytes((*forced)["note"].get<std::string>()), key,
                                      "test.example/audit");
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(opened->size, 121u);

  auto copy = offbox::parse(as_bytes(read_text(dir_ / "offbox" / "audit.offbox")));
  ASSERT_TRUE(copy) << copy.error().describe();
  EXPECT_EQ(copy->leaf_hashes.size(), 121u);
  ASSERT_GE(copy->checkpoints.size(), 3u);  // every 50 entries, then the forced one
  EXPECT_EQ(copy->checkpoints.back().note, (*forced)["note"].get<std::string>());
  EXPECT_EQ(merkle::root_of(copy->leaf_hashes), opened->root);
}

TEST_F(AuditDaemon, SealsAfterTheIntervalWithoutNewEntries) {
  write_policy("[audit.checkpoint]\nevery_entries = 100000\nevery_seconds = 0.2\n");
  keygen();
  auto d = start();
  auto c = client();
  ASSERT_TRUE(c.call("audit.append", event("x.y", "carol")));
  // Only the clock can seal here. The deadline is for a starved machine, not the interval.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  nlohmann::json status;
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto s = c.call("audit.status", nlohmann::json::object());
    ASSERT_TRUE(s) << s.error().describe();
    status = *s;
  } while (status["sealed"] != status["size"] && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(status["sealed"], status["size"]) << status.dump();
}

TEST_F(AuditDaemon, MalformedEventsAreRefusedAndRecorded) {
  keygen();
  auto d = start();
  auto c = client();
  auto bad = c.call("audit.append", {{"type", "Not A Type"}, {"outcome", "success"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(bad.error().message, HasSubstr("type"));
  auto unknown = c.call("audit.frobnicate", nlohmann::json::object());
  ASSERT_FALSE(unknown);
  EXPECT_THAT(unknown.error().message, HasSubstr("unknown method"));
  // The connection survives refusals.
  ASSERT_TRUE(c.call("audit.append", event("x.y", "dave")));
  d->signal(SIGTERM);
  ASSERT_EQ(d->wait(), 0);
  auto q = tool("enclave-audit", {"query", "--type", "audit.rejected", "--json"});
  ASSERT_EQ(q.exit_code, 0) << q.err;
  auto rows = json_of(q);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["outcome"], "refused");
  EXPECT_THAT(rows[0]["details"]["reason"].get<std::string>(), HasSubstr("type"));
}

TEST_F(AuditDaemon, ArchiveNeedsAnAdminAndAReadableDate) {
  keygen();
  auto d = start();
  auto c = client();
  auto bad = c.call("audit.archive", {{"before", "last tuesday"}});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  auto nothing = c.call("audit.archive", {{"before", "2000-01-01"}});
  ASSERT_FALSE(nothing);
  EXPECT_THAT(nothing.error().message, HasSubstr("no checkpoint ends a range"));
}

TEST_F(AuditDaemon, RefusesToStartWithoutItsKey) {
  auto d = launch();
  EXPECT_EQ(d->wait(), 2);
  EXPECT_THAT(d->stderr_text(), HasSubstr("audit-signing.key"));
  EXPECT_THAT(d->stderr_text(), HasSubstr("enclave-auditd keygen"));
}

TEST_F(AuditDaemon, RefusesAnotherKeyThanTheLogWasStartedWith) {
  keygen();
  {
    auto d = start();
    ASSERT_TRUE(client().call("audit.append", event("x.y", "erin")));
    d->signal(SIGTERM);
    ASSERT_EQ(d->wait(), 0);
  }
  std::filesystem::remove(state_ / "keys" / "audit-signing.key");
  std::filesystem::remove(state_ / "keys" / "audit-signing.pub");
  keygen();
  auto d = launch();
  EXPECT_EQ(d->wait(), 2);
  EXPECT_THAT(d->stderr_text(), HasSubstr("is not the key this log was started with"));
}

TEST_F(AuditDaemon, RefusesACorruptDatabase) {
  keygen();
  std::filesystem::create_directories(db().parent_path());
  std::ofstream(db()) << std::string(8192, 'x');
  auto d = launch();
  EXPECT_EQ(d->wait(), 2);
  EXPECT_THAT(d->stderr_text(), HasSubstr(db().string()));
}

TEST_F(AuditDaemon, RefusesToSealOverAChangedHistory) {
  keygen();
  {
    auto d = start();
    auto c = client();
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.call("audit.append", event("x.y", "frank")));
    d->signal(SIGTERM);
    ASSERT_EQ(d->wait(), 0);
  }
  sql("UPDATE events SET leaf_hash = zeroblob(32) WHERE idx = 4");
  auto d = launch();
  EXPECT_EQ(d->wait(), 2);
  EXPECT_THAT(d->stderr_text(), HasSubstr("no longer reproduce its latest checkpoint"));
}

TEST_F(AuditDaemon, RefusesRowsAddedWhileItWasStopped) {
  keygen();
  {
    auto d = start();
    ASSERT_TRUE(client().call("audit.append", event("x.y", "ivan")));
    d->signal(SIGTERM);
    ASSERT_EQ(d->wait(), 0);
  }
  // A forged row right after the sealed end looks like a crash's unsealed tail, but the
  // daemon stopped cleanly and said where.
  sql("INSERT INTO events SELECT idx + 1, time_us, source, actor_kind, 'mallory', site, device, "
      "session, type, outcome, object, details, leaf_hash FROM events "
      "WHERE idx = (SELECT max(idx) FROM events)");
  auto d = launch();
  EXPECT_EQ(d->wait(), 2);
  EXPECT_THAT(d->stderr_text(), HasSubstr("while it was stopped"));
}

TEST_F(AuditDaemon, PipelinedClientsGetEveryAckOnce) {
  keygen();
  auto d = start();
  constexpr int kClients = 4, kEach = 500;
  std::vector<std::thread> threads;
  std::atomic<int> acked{0};
  std::mutex seen_mu;
  std::set<std::uint64_t> seen;
  for (int t = 0; t < kClients; ++t) {
    threads.emplace_back([&, t] {
      auto c = ipc::Client::connect(dir_ / "auditd.sock").value();
      for (int i = 0; i < kEach; ++i) {
        ASSERT_TRUE(c.send("audit.append", event("load.test", "user" + std::to_string(t))));
      }
      for (int i = 0; i < kEach; ++i) {
        auto r = c.receive();
        ASSERT_TRUE(r) << r.error().describe();
        ASSERT_TRUE(r->ok) << r->message;
        std::lock_guard lock(seen_mu);
        EXPECT_TRUE(seen.insert(r->result["index"].get<std::uint64_t>()).second);
        ++acked;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(acked, kClients * kEach);
  EXPECT_EQ(*seen.begin(), 1u);
  EXPECT_EQ(*seen.rbegin(), static_cast<std::uint64_t>(kClients * kEach));
}

// kill -9 in the middle of a burst: every acknowledged event is on disk with the hash that was
// acknowledged, and after a restart the log verifies.
TEST_F(AuditDaemon, KillNineLosesNoAcknowledgedEvent) {
  keygen();
  auto d = start();
  std::mutex mu;
  std::map<std::uint64_t, std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      auto c = ipc::Client::connect(dir_ / "auditd.sock");
      if (!c) return;
      for (int i = 0; !stop; ++i) {
        if (!c->send("audit.append", event("crash.test", "w" + std::to_string(t)))) return;
        auto r = c->receive(std::chrono::seconds(5));
        if (!r || !r->ok) return;  // the daemon died: this one was never acknowledged
        std::lock_guard lock(mu);
        acked[r->result["index"].get<std::uint64_t>()] = r->result["leaf_hash"].get<std::string>();
      }
    });
  }
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard lock(mu);
    if (acked.size() > 300) break;
  }
  d->signal(SIGKILL);
  d->wait();
  stop = true;
  for (auto& t : writers) t.join();

  sqlite3* h = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db().c_str(), &h, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(h, "SELECT leaf_hash FROM events WHERE idx = ?", -1, &s, nullptr),
            SQLITE_OK);
  for (const auto& [index, hash] : acked) {
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(index));
    ASSERT_EQ(sqlite3_step(s), SQLITE_ROW) << "acknowledged entry " << index << " is lost";
    auto stored = ByteSpan(static_cast<const std::uint8_t*>(sqlite3_column_blob(s, 0)),
                           static_cast<std::size_t>(sqlite3_column_bytes(s, 0)));
    EXPECT_EQ(base64_encode(stored), hash) << index;
    sqlite3_reset(s);
  }
  sqlite3_finalize(s);
  sqlite3_close(h);

  // Entries committed after the last checkpoint were never sealed, and the verifier must say
  // so. A checkpoint can land just before the kill and seal everything; then there is no tail.
  auto late = tool("enclave-audit", {"verify", "--json", "--seal-grace", "0"});
  const auto report = json_of(late);
  ASSERT_TRUE(report.is_object());
  if (report["unsealed"].get<std::uint64_t>() > 0) {
    EXPECT_EQ(late.exit_code, 1) << late.out;
    EXPECT_THAT(late.out, HasSubstr("late-tail"));
  } else {
    EXPECT_EQ(late.exit_code, 0) << late.out;
    EXPECT_EQ(report["latest_checkpoint"]["size"], report["live_entries"]) << late.out;
  }

  auto again = start();  // seals the tail it finds
  again->signal(SIGTERM);
  ASSERT_EQ(again->wait(), 0) << again->stderr_text();
  auto verify = tool("enclave-audit", {"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// A real full disk: the database lives on a 3 MiB tmpfs in a private mount namespace.
TEST_F(AuditDaemon, FullDiskRefusesAppendsThenRecovers) {
  if (::geteuid() != 0 || testing::run({"unshare", "-m", "true"}).exit_code != 0) {
    GTEST_SKIP() << "needs root and mount namespaces (unshare -m) for a real full tmpfs";
  }
  auto small = dir_ / "small";
  std::filesystem::create_directories(small);
  write_policy("", small.string());
  keygen();  // the key lives on the tmpfs too: made inside the namespace below
  auto d = std::make_unique<Child>(
      std::vector<std::string>{
          "unshare", "-m", "--propagation", "private", "sh", "-c",
          "cp -a \"$0/keys\" /tmp/keys.$$ && mount -t tmpfs -o size=3m tmpfs \"$0\" && "
          "cp -a /tmp/keys.$$ \"$0/keys\" && rm -rf /tmp/keys.$$ && exec \"$1\" run",
          small.string(), binary("enclave-auditd").string()},
      env(), dir_.path());
  ASSERT_TRUE(testing::wait_for_path(dir_ / "auditd.sock")) << d->stderr_text();
  auto c = client();
  ASSERT_TRUE(c.call("audit.append", event("disk.test", "gina")));
  auto in_ns = [&](const std::string& cmd) {
    return testing::run({"nsenter", "-t", std::to_string(d->pid()), "-m", "sh", "-c", cmd});
  };
  in_ns("dd if=/dev/zero of=" + small.string() + "/filler bs=64k 2>/dev/null");
  std::optional<Error> refused;
  for (int i = 0; i < 2000 && !refused; ++i) {
    nlohmann::json big = event("disk.test", "gina");
    big["details"] = {{"pad", std::string(4000, 'p')}};
    auto r = c.call("audit.append", big);
    if (!r) refused = r.error();
  }
  ASSERT_TRUE(refused) << "the disk never filled";
  EXPECT_EQ(refused->code, Errc::kNoSpace) << refused->describe();
  auto status = c.call("audit.status", nlohmann::json::object());
  ASSERT_TRUE(status) << "the daemon must keep serving";
  EXPECT_GT((*status)["append_failures"].get<int>(), 0);

  in_ns("rm " + small.string() + "/filler");
  auto after = c.call("audit.append", event("disk.test", "gina"));
  EXPECT_TRUE(after) << after.error().describe();
  ASSERT_TRUE(c.call("audit.checkpoint", nlohmann::json::object()));
  auto verify = in_ns(binary("enclave-audit").string() + " --policies " +
                      (dir_ / "policies").string() + " --state-dir " + small.string() + " verify");
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  d->signal(SIGTERM);
  EXPECT_EQ(d->wait(), 0) << d->stderr_text();
}

TEST_F(AuditDaemon, SyslogSinkReceivesCheckpoints) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  write_policy("");
  std::ofstream(dir_ / "policies" / "audit.toml", std::ios::app)
      << "syslog = [\"udp://127.0.0.1:" << ntohs(addr.sin_port) << "\"]\n";
  keygen();
  auto d = start();
  ASSERT_TRUE(client().call("audit.checkpoint", nlohmann::json::object()));
  char buf[4096];
  auto n = ::recv(fd, buf, sizeof buf, 0);
  ::close(fd);
  ASSERT_GT(n, 0);
  std::string message(buf, static_cast<std::size_t>(n));
  EXPECT_THAT(message, ::testing::StartsWith("<110>1 "));
  EXPECT_THAT(message, HasSubstr("enclave-auditd - checkpoint - "));
  EXPECT_THAT(message, HasSubstr("test.example/audit\\n"));
}

}  // namespace
}  // namespace enclave::audit
