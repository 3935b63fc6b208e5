// enclave-audit against a real enclave-auditd: the log is written by the daemon, tampered with
// the way an attacker with the database file would (SQL on the stopped daemon's database, an
// edited off-box copy, a re-signed history), and the auditors' tool must name exactly what
// changed. Also querying, reports, exports with proofs, forwarding and archives.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <csignal>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "audit/core/archive.hpp"
#include "audit/core/event.hpp"
#include "audit/core/merkle.hpp"
#include "audit/core/note.hpp"
#include "common/ipc/client.hpp"
#include "tests/support/process.hpp"

namespace enclave::audit {
namespace {

using testing::binary;
using testing::Child;
using ::testing::HasSubstr;
using testing::RunResult;
using testing::TempDir;
using ::testing::UnorderedElementsAreArray;

constexpr char kOrigin[] = "test.example/audit";

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_text(const std::filesystem::path& p, std::string_view text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "YYYY-MM" of a time seen at a UTC offset.
std::string month_of(std::int64_t time_us, int offset_minutes) {
  std::time_t t = static_cast<std::time_t>(time_us / 1'000'000 + offset_minutes * 60);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[16];
  std::strftime(text, sizeof text, "%Y-%m", &tm);
  return text;
}

merkle::Hash flip_bit(merkle::Hash h) {
  h[7] ^= 0x10;
  return h;
}

nlohmann::json event_json(std::string type, std::string actor, std::string site,
                          std::string outcome, std::string session = "", std::string device = "") {
  return {{"type", std::move(type)},         {"actor", std::move(actor)},
          {"site", std::move(site)},         {"outcome", std::move(outcome)},
          {"session", std::move(session)},   {"device", std::move(device)},
          {"details", {{"via", "cli_test"}}}};
}

// One finding as "kind index row" ('-' when absent), so that a mismatch prints readably.
std::string finding(const std::string& kind, std::optional<std::uint64_t> index,
                    std::optional<std::uint64_t> row = std::nullopt) {
  auto text = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string("-");
  };
  return kind + " " + text(index) + " " + text(row);
}

std::vector<std::string> findings_of(const nlohmann::json& report) {
  std::vector<std::string> out;
  for (const auto& f : report["findings"]) {
    auto opt = [](const nlohmann::json& v) {
      return v.is_null() ? std::nullopt : std::optional<std::uint64_t>(v.get<std::uint64_t>());
    };
    out.push_back(finding(f["kind"].get<std::string>(), opt(f["index"]), opt(f["db_index"])));
  }
  return out;
}

struct Settings {
  std::uint64_t every_entries = 10;
  double every_seconds = 3600;  // no sealing by the clock unless a test asks for it
};

struct Appended {
  std::uint64_t index = 0;
  std::int64_t time_us = 0;
  nlohmann::json event;
};

struct Verified {
  int exit_code = -1;
  nlohmann::json report;
  std::string err;
  std::vector<std::string> findings;
};

// Direct SQL on the audit database, as an attacker with the file would do it.
class Sql {
 public:
  explicit Sql(const std::filesystem::path& db) {
    if (sqlite3_open_v2(db.c_str(), &h_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << db << ": " << sqlite3_errmsg(h_);
    }
  }
  ~Sql() { sqlite3_close(h_); }
  Sql(const Sql&) = delete;
  Sql& operator=(const Sql&) = delete;

  void exec(const std::string& statement) {
    char* err = nullptr;
    if (sqlite3_exec(h_, statement.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << statement << ": " << (err ? err : "?");
    }
    sqlite3_free(err);
  }

  Event event(std::uint64_t idx) {
    Event e;
    auto s = prepare(
        "SELECT time_us, source, actor_kind, actor, site, device, session, type, outcome, "
        "object, details FROM events WHERE idx = ?");
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(idx));
    if (sqlite3_step(s) != SQLITE_ROW) {
      ADD_FAILURE() << "no row " << idx;
    } else {
      auto text = [&](int col) {
        auto p = sqlite3_column_text(s, col);
        return p ? std::string(reinterpret_cast<const char*>(p)) : std::string();
      };
      e.time_us = sqlite3_column_int64(s, 0);
      e.source = text(1);
      e.actor_kind = text(2);
      e.actor = text(3);
      e.site = text(4);
      e.device = text(5);
      e.session = text(6);
      e.type = text(7);
      e.outcome = text(8);
      e.object = text(9);
      e.details = text(10);
    }
    sqlite3_finalize(s);
    return e;
  }

  merkle::Hash stored_hash(std::uint64_t idx) {
    merkle::Hash h{};
    auto s = prepare("SELECT leaf_hash FROM events WHERE idx = ?");
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(idx));
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 32) {
      std::memcpy(h.data(), sqlite3_column_blob(s, 0), 32);
    } else {
      ADD_FAILURE() << "no leaf hash for row " << idx;
    }
    sqlite3_finalize(s);
    return h;
  }

  // Writes every column of row idx (inserting it when absent).
  void put(std::uint64_t idx, const Event& e, const merkle::Hash& hash) {
    auto s = prepare(
        "INSERT OR REPLACE INTO events (idx, time_us, source, actor_kind, actor, site, device, "
        "session, type, outcome, object, details, leaf_hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(idx));
    sqlite3_bind_int64(s, 2, e.time_us);
    const std::string* texts[] = {&e.source,  &e.actor_kind, &e.actor,   &e.site,   &e.device,
                                  &e.session, &e.type,       &e.outcome, &e.object, &e.details};
    int at = 3;
    for (const auto* t : texts) sqlite3_bind_text(s, at++, t->c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_blob(s, at, hash.data(), 32, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) ADD_FAILURE() << "put " << idx << sqlite3_errmsg(h_);
    sqlite3_finalize(s);
  }

  // Rewrites the row and its stored hash together, as a careful attacker would.
  void put_consistent(std::uint64_t idx, const Event& e) {
    put(idx, e, merkle::leaf_hash(encode_leaf(e)));
  }

  std::uint64_t end_index() {
    auto s = prepare("SELECT coalesce(max(idx) + 1, 0) FROM events");
    sqlite3_step(s);
    auto end = static_cast<std::uint64_t>(sqlite3_column_int64(s, 0));
    sqlite3_finalize(s);
    return end;
  }

  std::vector<merkle::Hash> hashes() {
    std::vector<merkle::Hash> out;
    for (std::uint64_t i = 0, end = end_index(); i < end; ++i) out.push_back(stored_hash(i));
    return out;
  }

  std::vector<std::pair<std::uint64_t, std::int64_t>> checkpoints() {
    std::vector<std::pair<std::uint64_t, std::int64_t>> out;
    auto s = prepare("SELECT size, time_us FROM checkpoints ORDER BY size");
    while (sqlite3_step(s) == SQLITE_ROW) {
      out.emplace_back(static_cast<std::uint64_t>(sqlite3_column_int64(s, 0)),
                       sqlite3_column_int64(s, 1));
    }
    sqlite3_finalize(s);
    return out;
  }

  void put_checkpoint(std::uint64_t size, std::int64_t time_us, const std::string& note) {
    auto s = prepare("INSERT OR REPLACE INTO checkpoints (size, time_us, note) VALUES (?, ?, ?)");
    sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(size));
    sqlite3_bind_int64(s, 2, time_us);
    sqlite3_bind_text(s, 3, note.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE) ADD_FAILURE() << sqlite3_errmsg(h_);
    sqlite3_finalize(s);
  }

 private:
  sqlite3_stmt* prepare(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(h_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(h_);
    }
    return s;
  }

  sqlite3* h_ = nullptr;
};

// A checkpoint of the first `size` leaves, signed by `signer`.
std::string sign_checkpoint(const note::Signer& signer, std::span<const merkle::Hash> leaves) {
  note::Checkpoint cp{kOrigin, leaves.size(), merkle::root_of(leaves), {}};
  return note::format_note(signer.sign_note(note::format_checkpoint(cp)));
}

// One audit log in a scratch directory: the shipped policy adjusted to live inside it, the
// daemon, and the tools.
class AuditLog {
 public:
  explicit AuditLog(const Settings& s = {}) {
    std::filesystem::create_directories(dir_ / "policies");
    write_text(dir_ / "policies" / "audit.toml", adjusted_policy(s));
  }
  ~AuditLog() {
    if (daemon_ && daemon_->running()) {
      daemon_->signal(SIGTERM);
      daemon_->wait(std::chrono::seconds(20));
    }
  }

  const TempDir& dir() const { return dir_; }
  std::filesystem::path state() const { return dir_ / "state"; }
  std::filesystem::path db() const { return state() / "audit" / "audit.db"; }
  std::filesystem::path offbox() const { return dir_ / "offbox" / "audit.offbox"; }
  std::filesystem::path pub_key() const { return state() / "keys" / "audit-signing.pub"; }

  std::map<std::string, std::string> env() const {
    return {{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
            {"ENCLAVE_STATE_DIR", state().string()}};
  }

  RunResult tool(const std::string& name, std::vector<std::string> args) const {
    args.insert(args.begin(), binary(name).string());
    return testing::run(args, env());
  }
  RunResult audit(std::vector<std::string> args) const {
    return tool("enclave-audit", std::move(args));
  }

  Verified verify(std::vector<std::string> args = {}) const {
    args.insert(args.begin(), {"verify", "--json"});
    auto r = audit(args);
    Verified v{r.exit_code, nlohmann::json::parse(r.out, nullptr, false), r.err, {}};
    EXPECT_TRUE(v.report.is_object()) << r.out << r.err;
    if (v.report.is_object()) v.findings = findings_of(v.report);
    return v;
  }

  nlohmann::json query(std::vector<std::string> args) const {
    args.insert(args.begin(), {"query", "--json"});
    auto r = audit(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_TRUE(j.is_array()) << r.out;
    return j.is_array() ? j : nlohmann::json::array();
  }

  void keygen() const {
    auto r = tool("enclave-auditd", {"keygen"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  void start() {
    std::filesystem::remove(socket());
    daemon_ = std::make_unique<Child>(
        std::vector<std::string>{binary("enclave-auditd").string(), "run"}, env(), dir_.path());
    ASSERT_TRUE(testing::wait_for_path(socket())) << daemon_->stderr_text();
  }

  // SIGTERM: the daemon drains its queue and seals the tail on the way out.
  void stop() {
    client_.reset();
    daemon_->signal(SIGTERM);
    ASSERT_EQ(daemon_->wait(), 0) << daemon_->stderr_text();
  }

  void kill() {
    client_.reset();
    daemon_->signal(SIGKILL);
    daemon_->wait();
  }

  nlohmann::json call(const std::string& method, nlohmann::json params) {
    if (!client_) {
      auto c = ipc::Client::connect(socket());
      if (!c) {
        ADD_FAILURE() << c.error().describe();
        return {};
      }
      client_ = std::make_unique<ipc::Client>(std::move(c).value());
    }
    auto r = client_->call(method, std::move(params));
    if (!r) {
      ADD_FAILURE() << method << ": " << r.error().describe();
      return {};
    }
    return *r;
  }

  Appended append(nlohmann::json event) {
    auto r = call("audit.append", event);
    if (!r.is_object()) return {};
    auto time = parse_time_us(r["time"].get<std::string>());
    EXPECT_TRUE(time);
    return {r["index"].get<std::uint64_t>(), time.value_or(0), std::move(event)};
  }

  // Takes over another log's state (database, keys, off-box copy) for this directory.
  void copy_state_from(const AuditLog& other) const {
    std::filesystem::copy(other.state(), state(), std::filesystem::copy_options::recursive);
    std::filesystem::copy(other.offbox().parent_path(), offbox().parent_path(),
                          std::filesystem::copy_options::recursive);
  }

 private:
  std::filesystem::path socket() const { return dir_ / "auditd.sock"; }

  // policies/audit.toml as shipped, with its paths moved into this directory and the given
  // checkpoint intervals. Every key replaced must exist in the shipped file.
  std::string adjusted_policy(const Settings& s) const {
    auto quoted = [](const std::filesystem::path& p) { return "\"" + p.string() + "\""; };
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%g", s.every_seconds);
    std::map<std::string, std::string> values = {
        {"origin", std::string("\"") + kOrigin + "\""},
        {"database", quoted(db())},
        {"socket", quoted(socket())},
        {"signing_key", quoted(state() / "keys" / "audit-signing.key")},
        {"verifier_key", quoted(pub_key())},
        {"archive_dir", quoted(state() / "archive")},
        {"every_entries", std::to_string(s.every_entries)},
        {"every_seconds", seconds},
        {"files", "[" + quoted(offbox()) + "]"}};
    std::set<std::string> replaced;
    std::string out;
    for (const auto& line :
         lines_of(read_text(testing::source_dir() / "policies" / "audit.toml"))) {
      auto eq = line.find(" = ");
      auto key = eq == std::string::npos ? std::string() : line.substr(0, eq);
      if (auto v = values.find(key); v != values.end()) {
        out += key + " = " + v->second + "\n";
        replaced.insert(key);
      } else {
        out += line + "\n";
      }
    }
    EXPECT_EQ(replaced.size(), values.size()) << "policies/audit.toml changed shape:\n" << out;
    return out;
  }

  TempDir dir_;
  std::unique_ptr<Child> daemon_;
  std::unique_ptr<ipc::Client> client_;
};

// ---- tampering with the stopped daemon's database -------------------------------------------

// The pristine log every tamper test copies: entry 0 is the daemon's start, 1..25 appended
// events, 26 its stop; checkpoints every 10 entries and at the stop.
constexpr std::uint64_t kEntries = 27;
const std::vector<std::uint64_t> kSizes = {10, 20, 27};

class TamperedLog : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pristine_ = new AuditLog();
    pristine_->keygen();
    pristine_->start();
    const char* actors[] = {"alice", "bob", "carol"};
    for (int i = 1; i <= 25; ++i) {
      pristine_->append(event_json(i % 4 ? "login.attempt" : "session.start", actors[i % 3],
                                   i % 2 ? "site-a" : "site-b", i % 5 ? "success" : "failure",
                                   "sess-" + std::to_string(i % 4)));
    }
    pristine_->stop();
  }
  static void TearDownTestSuite() {
    delete pristine_;
    pristine_ = nullptr;
  }

  void SetUp() override {
    log_.copy_state_from(*pristine_);
    std::filesystem::copy_file(log_.pub_key(), log_.dir() / "pinned.pub");
    Sql sql(log_.db());
    ASSERT_EQ(sql.end_index(), kEntries);
    std::vector<std::uint64_t> sizes;
    for (const auto& [size, time] : sql.checkpoints()) sizes.push_back(size);
    ASSERT_EQ(sizes, kSizes) << "the pristine log was not sealed as this suite expects";
  }

  // The verdict with the off-box copy (every change named by entry) and without it (the
  // database's own rows and checkpoints only: rows or ranges).
  void expect_findings(const std::vector<std::string>& with_offbox,
                       const std::vector<std::string>& without_offbox,
                       std::vector<std::string> extra_args = {}) {
    auto v = log_.verify(extra_args);
    EXPECT_EQ(v.exit_code, 1) << v.report.dump(2) << v.err;
    EXPECT_THAT(v.findings, UnorderedElementsAreArray(with_offbox)) << v.report.dump(2);
    EXPECT_EQ(v.report["entry_level"], true);
    extra_args.push_back("--no-offbox");
    auto alone = log_.verify(extra_args);
    EXPECT_EQ(alone.exit_code, 1) << alone.report.dump(2) << alone.err;
    EXPECT_THAT(alone.findings, UnorderedElementsAreArray(without_offbox)) << alone.report.dump(2);
    EXPECT_EQ(alone.report["entry_level"], false);
  }

  static AuditLog* pristine_;
  AuditLog log_;
};

AuditLog* TamperedLog::pristine_ = nullptr;

TEST_F(TamperedLog, IntactLogVerifies) {
  auto v = log_.verify();
  EXPECT_EQ(v.exit_code, 0) << v.report.dump(2) << v.err;
  EXPECT_TRUE(v.findings.empty());
  EXPECT_EQ(v.report["intact"], true);
  EXPECT_EQ(v.report["latest_checkpoint"]["size"], kEntries);
  EXPECT_EQ(v.report["live_entries"], kEntries);
  EXPECT_EQ(v.report["unsealed"], 0u);
  EXPECT_EQ(v.report["entry_level"], true);
  EXPECT_EQ(v.report["genuine_checkpoints"], 2 * kSizes.size());  // database and off-box

  auto human = log_.audit({"verify"});
  EXPECT_EQ(human.exit_code, 0) << human.out << human.err;
  EXPECT_THAT(human.out, HasSubstr("RESULT: intact"));
  EXPECT_THAT(human.out, HasSubstr(log_.db().string()));
  EXPECT_THAT(human.out, HasSubstr(log_.offbox().string() + " (27 leaves)"));
  auto alone = log_.verify({"--no-offbox"});
  EXPECT_EQ(alone.exit_code, 0) << alone.report.dump(2);
}

TEST_F(TamperedLog, ProofsComeFromTheStoreAndCatchChanges) {
  auto proof = log_.audit({"prove", "13", "--json"});
  ASSERT_EQ(proof.exit_code, 0) << proof.out << proof.err;
  auto j = nlohmann::json::parse(proof.out);
  EXPECT_EQ(j["tree_size"], kEntries);
  EXPECT_EQ(j["verified"], true);
  auto at20 = log_.audit({"prove", "13", "--size", "20"});
  EXPECT_EQ(at20.exit_code, 0) << at20.out << at20.err;
  EXPECT_THAT(at20.out, HasSubstr("size 20"));
  EXPECT_EQ(log_.audit({"prove", "13", "--size", "21"}).exit_code, 2);  // no such checkpoint
  EXPECT_EQ(log_.audit({"prove", "999"}).exit_code, 2);
  auto grew = log_.audit({"consistency", "10", "--json"});
  ASSERT_EQ(grew.exit_code, 0) << grew.out << grew.err;
  EXPECT_EQ(nlohmann::json::parse(grew.out)["verified"], true);
  EXPECT_EQ(log_.audit({"consistency", "20", "10"}).exit_code, 2);

  Sql(log_.db()).exec("UPDATE events SET actor = 'mallory' WHERE idx = 13");
  auto changed = log_.audit({"prove", "13"});
  EXPECT_EQ(changed.exit_code, 1) << changed.out;
  EXPECT_THAT(changed.out, HasSubstr("DOES NOT VERIFY"));
  // A rewritten stored hash breaks the stored tree the proofs are read from.
  Sql(log_.db()).exec("UPDATE events SET leaf_hash = zeroblob(32) WHERE idx = 11");
  EXPECT_EQ(log_.audit({"consistency", "10", "20"}).exit_code, 1);
}

TEST_F(TamperedLog, EditInPlaceIsNamed) {
  Sql(log_.db()).exec("UPDATE events SET actor = 'mallory' WHERE idx = 7");
  expect_findings({finding("modified", 7, 7)},
                  {finding("modified", 7, 7), finding("range-mismatch", 0)});

  auto human = log_.audit({"verify"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_THAT(human.out, HasSubstr("FINDING"));
  EXPECT_THAT(human.out, HasSubstr("modified"));
  EXPECT_THAT(human.out, HasSubstr("mallory"));
  EXPECT_THAT(human.out, HasSubstr("edited in place"));
  EXPECT_THAT(human.out, HasSubstr("RESULT: 1 finding."));
}

TEST_F(TamperedLog, EditWithRecomputedLeafHashIsNamed) {
  {
    Sql sql(log_.db());
    Event e = sql.event(13);
    e.outcome = e.outcome == "success" ? "failure" : "success";
    sql.put_consistent(13, e);
  }
  // The row agrees with itself: only the sealed roots (or the off-box leaves) betray it.
  expect_findings({finding("modified", 13, 13)}, {finding("range-mismatch", 10)});
}

TEST_F(TamperedLog, OverwrittenLeafHashIsNamed) {
  {
    Sql sql(log_.db());
    auto bad = flip_bit(sql.stored_hash(4));
    sql.put(4, sql.event(4), bad);
  }
  expect_findings({finding("hash-altered", 4, 4)}, {finding("modified", 4, 4)});
}

TEST_F(TamperedLog, DeletedRowIsNamed) {
  Sql(log_.db()).exec("DELETE FROM events WHERE idx = 7");
  expect_findings({finding("deleted", 7)}, {finding("deleted", 7), finding("range-mismatch", 0)});
}

TEST_F(TamperedLog, DeletedRowIsNamedAfterRenumbering) {
  {
    Sql sql(log_.db());
    sql.exec("DELETE FROM events WHERE idx = 12");
    for (std::uint64_t i = 13; i < kEntries; ++i) {
      sql.exec("UPDATE events SET idx = " + std::to_string(i - 1) +
               " WHERE idx = " + std::to_string(i));
    }
    ASSERT_EQ(sql.end_index(), kEntries - 1);
  }
  expect_findings({finding("deleted", 12)}, {finding("range-mismatch", 10)});
}

TEST_F(TamperedLog, ForgedRowIsNamedAfterRenumbering) {
  {
    Sql sql(log_.db());
    Event forged = sql.event(12);
    forged.actor = "mallory";
    forged.time_us = (forged.time_us + sql.event(13).time_us) / 2;
    for (std::uint64_t i = kEntries; i-- > 13;) {
      sql.exec("UPDATE events SET idx = " + std::to_string(i + 1) +
               " WHERE idx = " + std::to_string(i));
    }
    sql.put_consistent(13, forged);
    ASSERT_EQ(sql.end_index(), kEntries + 1);
  }
  expect_findings({finding("inserted", std::nullopt, 13)}, {finding("range-mismatch", 10)});
}

// A row added past the sealed end cannot be told from a tail the daemon had not sealed yet,
// until the sealing interval says it should have been: then it is named as a late tail.
TEST_F(TamperedLog, ForgedRowAfterTheEndIsALateTail) {
  {
    Sql sql(log_.db());
    Event forged = sql.event(3);
    forged.actor = "mallory";
    forged.time_us = now_us() - 24LL * 3600 * 1'000'000;
    sql.put_consistent(kEntries, forged);
  }
  expect_findings({finding("late-tail", kEntries)}, {finding("late-tail", kEntries)});
  auto v = log_.verify();
  EXPECT_EQ(v.report["unsealed"], 1u);
}

TEST_F(TamperedLog, SwappedRowsAreReordered) {
  {
    Sql sql(log_.db());
    Event a = sql.event(4), b = sql.event(16);
    auto ha = sql.stored_hash(4), hb = sql.stored_hash(16);
    sql.put(4, b, hb);
    sql.put(16, a, ha);
  }
  expect_findings({finding("reordered", 4, 16), finding("reordered", 16, 4)},
                  {finding("range-mismatch", 0)});
}

TEST_F(TamperedLog, TruncationNamesEveryLostEntry) {
  Sql(log_.db()).exec("DELETE FROM events WHERE idx >= " + std::to_string(kEntries - 3));
  expect_findings({finding("deleted", 24), finding("deleted", 25), finding("deleted", 26)},
                  {finding("range-mismatch", 20)});
}

TEST_F(TamperedLog, ForgedCheckpointIsRefused) {
  {
    Sql sql(log_.db());
    auto other = note::Signer::generate(kOrigin);  // the same name, another key
    ASSERT_TRUE(other);
    auto leaves = sql.hashes();
    sql.exec("DELETE FROM checkpoints WHERE size = " + std::to_string(kEntries));
    sql.put_checkpoint(kEntries, now_us(), sign_checkpoint(*other, leaves));
  }
  // The genuine checkpoint of size 27 survives only off the box.
  expect_findings({finding("bad-checkpoint", std::nullopt), finding("checkpoint-missing", 27)},
                  {finding("bad-checkpoint", std::nullopt)});
  auto v = log_.verify();
  ASSERT_FALSE(v.report["findings"].empty());
  std::string details;
  for (const auto& f : v.report["findings"]) details += f["detail"].get<std::string>() + "\n";
  EXPECT_THAT(details, HasSubstr("database checkpoint 27"));
}

TEST_F(TamperedLog, DeletedCheckpointsAreNoticed) {
  Sql(log_.db()).exec("DELETE FROM checkpoints WHERE size = 20");
  auto v = log_.verify();
  EXPECT_EQ(v.exit_code, 1);
  EXPECT_THAT(v.findings, UnorderedElementsAreArray({finding("checkpoint-missing", 20)}));

  // Without the latest checkpoint the database alone shows an unsealed tail, which is a
  // finding once the sealing interval has passed (here: at once).
  Sql(log_.db()).exec("DELETE FROM checkpoints WHERE size = 27");
  expect_findings({finding("checkpoint-missing", 20), finding("checkpoint-missing", 27)},
                  {finding("late-tail", 10)}, {"--seal-grace", "0"});
}

// Every row, every stored hash and every checkpoint rewritten consistently and re-signed with
// the attacker's key (which also replaces the verifier key beside the database). The pinned key
// refuses every checkpoint; the off-box copy still names the two changed entries.
TEST_F(TamperedLog, ConsistentRewriteIsCaught) {
  auto forger = note::Signer::generate(kOrigin);
  ASSERT_TRUE(forger);
  {
    Sql sql(log_.db());
    for (std::uint64_t i = 0; i < kEntries; ++i) {
      Event e = sql.event(i);
      if (i == 5 || i == 15) e.actor = "mallory";
      sql.put_consistent(i, e);
    }
    auto leaves = sql.hashes();
    for (const auto& [size, time] : sql.checkpoints()) {
      sql.put_checkpoint(size, time, sign_checkpoint(*forger, std::span(leaves).first(size)));
    }
  }
  write_text(log_.pub_key(), forger->verifier_key() + "\n");
  const std::string pinned = (log_.dir() / "pinned.pub").string();
  expect_findings({finding("modified", 5, 5), finding("modified", 15, 15),
                   finding("bad-checkpoint", std::nullopt), finding("bad-checkpoint", std::nullopt),
                   finding("bad-checkpoint", std::nullopt), finding("checkpoint-missing", 10),
                   finding("checkpoint-missing", 20), finding("checkpoint-missing", 27)},
                  {finding("bad-checkpoint", std::nullopt), finding("bad-checkpoint", std::nullopt),
                   finding("bad-checkpoint", std::nullopt)},
                  {"--key", pinned});

  // An auditor who trusts the key file beside the database is still warned by the off-box
  // copy: its checkpoints are not the forger's, and its leaves contradict the forged roots.
  auto unpinned = log_.verify();
  EXPECT_EQ(unpinned.exit_code, 1);
  EXPECT_THAT(unpinned.findings,
              UnorderedElementsAreArray(
                  {finding("bad-checkpoint", std::nullopt), finding("bad-checkpoint", std::nullopt),
                   finding("bad-checkpoint", std::nullopt), finding("offbox-mismatch", 10)}))
      << unpinned.report.dump(2);
}

// ---- the off-box copy ------------------------------------------------------------------------

TEST_F(TamperedLog, TamperedOffboxCopyIsReported) {
  auto text = read_text(log_.offbox());
  write_text(log_.dir() / "good.offbox", text);
  // Flip one bit of entry 12's leaf hash inside the leaves record that holds it.
  std::string tampered, line;
  std::istringstream lines(text);
  bool flipped = false;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == "leaves" && !flipped) {
      auto first = j["first"].get<std::uint64_t>();
      auto hashes = base64_decode(j["hashes"].get<std::string>()).value();
      if (first <= 12 && 12 < first + hashes.size() / 32) {
        hashes[(12 - first) * 32 + 5] ^= 0x10;
        j["hashes"] = base64_encode(hashes);
        line = j.dump();
        flipped = true;
      }
    }
    tampered += line + "\n";
  }
  ASSERT_TRUE(flipped);
  write_text(log_.offbox(), tampered);
  auto v = log_.verify();
  EXPECT_EQ(v.exit_code, 1) << v.report.dump(2);
  // Trusted up to the checkpoint before the flipped leaf; the rest is checked by the database.
  EXPECT_THAT(v.findings, UnorderedElementsAreArray({finding("offbox-mismatch", 20)}))
      << v.report.dump(2);
  auto human = log_.audit({"verify"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_THAT(human.out, HasSubstr("offbox-mismatch"));
  EXPECT_THAT(human.out, HasSubstr(log_.offbox().string()));
  // --offbox names the copies to trust instead of the policy's.
  auto good = log_.verify({"--offbox", (log_.dir() / "good.offbox").string()});
  EXPECT_EQ(good.exit_code, 0) << good.report.dump(2);
  EXPECT_EQ(good.report["entry_level"], true);
}

TEST_F(TamperedLog, TornLastLineOfTheOffboxCopyIsNoFinding) {
  auto text = read_text(log_.offbox());
  ASSERT_EQ(text.back(), '\n');
  auto last_line = text.rfind('\n', text.size() - 2) + 1;
  text.resize(last_line + (text.size() - last_line) / 2);  // a crash in the middle of a write
  write_text(log_.offbox(), text);
  auto v = log_.verify();
  EXPECT_EQ(v.exit_code, 0) << v.report.dump(2);
  EXPECT_TRUE(v.findings.empty());
}

// ---- an unsealed tail ------------------------------------------------------------------------

TEST(AuditCli, UnsealedTailAfterKillNineIsLateThenSealedByTheNextRun) {
  AuditLog log(Settings{1000, 3600});
  log.keygen();
  log.start();
  for (int i = 0; i < 5; ++i) log.append(event_json("x.test", "henry", "site-a", "info"));
  log.kill();

  auto late = log.verify({"--seal-grace", "0"});
  EXPECT_EQ(late.exit_code, 1) << late.report.dump(2);
  EXPECT_THAT(late.findings, UnorderedElementsAreArray({finding("late-tail", 0)}));
  EXPECT_EQ(late.report["unsealed"], 6u);
  auto human = log.audit({"verify", "--seal-grace", "0"});
  EXPECT_EQ(human.exit_code, 1);
  EXPECT_THAT(human.out, HasSubstr("late-tail"));
  EXPECT_THAT(human.out, HasSubstr("unsealed      6 entries"));
  // Within the policy's interval the same tail is only pending.
  auto pending = log.verify();
  EXPECT_EQ(pending.exit_code, 0) << pending.report.dump(2);
  EXPECT_EQ(pending.report["unsealed"], 6u);

  log.start();
  log.stop();
  auto sealed = log.verify({"--seal-grace", "0"});
  EXPECT_EQ(sealed.exit_code, 0) << sealed.report.dump(2);
  EXPECT_EQ(sealed.report["unsealed"], 0u);
  EXPECT_EQ(sealed.report["latest_checkpoint"]["size"], 8u);  // + the second start and stop
}

// ---- query, timeline, report -----------------------------------------------------------------

std::vector<std::uint64_t> indexes_of(const nlohmann::json& events) {
  std::vector<std::uint64_t> out;
  for (const auto& e : events) out.push_back(e["index"].get<std::uint64_t>());
  return out;
}

TEST(AuditCli, QueryFiltersReturnExactlyTheMatchingEvents) {
  AuditLog log;
  log.keygen();
  log.start();
  std::vector<Appended> added = {
      log.append(event_json("login.attempt", "alice", "site-a", "success", "", "dev-1")),
      log.append(event_json("session.start", "alice", "site-a", "success", "sess-1", "dev-1")),
      log.append(event_json("channel.refused", "alice", "site-a", "refused", "sess-1", "dev-1")),
      log.append(event_json("login.attempt", "bob", "site-b", "failure", "", "dev-2")),
      log.append(event_json("login.attempt", "bob", "site-b", "success", "", "dev-2")),
      log.append(event_json("session.start", "bob", "site-b", "success", "sess-2", "dev-2")),
      log.append(event_json("session.end", "alice", "site-a", "success", "sess-1", "dev-1")),
      log.append(event_json("login.attempt", "carol", "site-a", "refused", "", "dev-3")),
  };
  log.stop();

  auto all = log.query({});
  ASSERT_EQ(all.size(), added.size() + 2);  // + the daemon's start and stop
  for (const auto& a : added) {
    const auto& e = all[a.index];
    EXPECT_EQ(e["index"], a.index);
    for (const char* field : {"type", "actor", "site", "device", "session", "outcome"}) {
      EXPECT_EQ(e[field], a.event[field]) << field << " of " << a.index;
    }
    EXPECT_EQ(parse_time_us(e["time"].get<std::string>()), a.time_us);
  }
  // Each filter against the same filter applied here to the whole log.
  auto matching = [&](const std::string& field, const std::string& value) {
    std::vector<std::uint64_t> out;
    for (const auto& e : all) {
      if (e[field] == value) out.push_back(e["index"].get<std::uint64_t>());
    }
    EXPECT_FALSE(out.empty()) << field << "=" << value << " selects nothing";
    return out;
  };
  const std::pair<const char*, const char*> filters[] = {
      {"user", "actor"},      {"site", "site"}, {"device", "device"},
      {"session", "session"}, {"type", "type"}, {"outcome", "outcome"}};
  const std::map<std::string, std::vector<std::string>> values = {
      {"actor", {"alice", "bob", "enclave-auditd"}},
      {"site", {"site-a", "site-b"}},
      {"device", {"dev-2", "dev-3"}},
      {"session", {"sess-1", "sess-2"}},
      {"type", {"login.attempt", "session.start", "audit.start"}},
      {"outcome", {"success", "refused", "failure"}}};
  for (const auto& [option, field] : filters) {
    for (const auto& value : values.at(field)) {
      EXPECT_EQ(indexes_of(log.query({std::string("--") + option, value})), matching(field, value))
          << "--" << option << " " << value;
    }
  }
  EXPECT_TRUE(log.query({"--user", "nobody"}).empty());
  // Filters combine.
  EXPECT_EQ(indexes_of(log.query({"--user", "alice", "--type", "session.start"})),
            std::vector<std::uint64_t>{added[1].index});
  // Times: [since, until).
  auto since = format_time_us(added[2].time_us), until = format_time_us(added[6].time_us);
  EXPECT_EQ(
      indexes_of(log.query({"--since", since, "--until", until})),
      (std::vector<std::uint64_t>{added[2].index, added[3].index, added[4].index, added[5].index}));
  EXPECT_EQ(indexes_of(log.query({"--since", since, "--type", "login.attempt"})),
            (std::vector<std::uint64_t>{added[3].index, added[4].index, added[7].index}));
  EXPECT_EQ(indexes_of(log.query({"--until", since})),
            (std::vector<std::uint64_t>{0, added[0].index, added[1].index}));
  EXPECT_TRUE(log.query({"--since", "2001-01-01", "--until", "2001-02-01"}).empty());
  // Limit: the oldest first.
  EXPECT_EQ(indexes_of(log.query({"--limit", "3"})), (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(indexes_of(log.query({"--user", "bob", "--limit", "2"})),
            (std::vector<std::uint64_t>{added[3].index, added[4].index}));

  auto table = log.audit({"query", "--site", "site-b"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("INDEX"));
  EXPECT_THAT(table.out, HasSubstr("SESSION"));
  EXPECT_THAT(table.out, HasSubstr("sess-2"));
  EXPECT_THAT(table.out, HasSubstr("(3 events)"));
  EXPECT_THAT(table.out, ::testing::Not(HasSubstr("alice")));

  // timeline: one session, in order.
  auto timeline = log.audit({"timeline", "sess-1", "--json"});
  ASSERT_EQ(timeline.exit_code, 0) << timeline.err;
  auto session = nlohmann::json::parse(timeline.out);
  EXPECT_EQ(indexes_of(session),
            (std::vector<std::uint64_t>{added[1].index, added[2].index, added[6].index}));
  EXPECT_EQ(session[0]["type"], "session.start");
  EXPECT_EQ(session[2]["type"], "session.end");
  auto human = log.audit({"timeline", "sess-1"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("session sess-1: alice at site-a on dev-1"));
  EXPECT_THAT(human.out, HasSubstr("+ELAPSED"));
  EXPECT_LT(human.out.find("session.start"), human.out.find("channel.refused"));
  EXPECT_LT(human.out.find("channel.refused"), human.out.find("session.end"));
  auto unknown = log.audit({"timeline", "sess-404"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("sess-404"));
}

nlohmann::json report(const AuditLog& log, const std::string& month, const std::string& offset) {
  auto r = log.audit(
      {"report", "logins-per-site", "--month", month, "--utc-offset=" + offset, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_TRUE(j.is_object()) << r.out;
  return j;
}

// site -> {logins, failed, refused, users}
std::map<std::string, std::vector<std::uint64_t>> sites_of(const nlohmann::json& report) {
  std::map<std::string, std::vector<std::uint64_t>> out;
  for (const auto& s : report["sites"]) {
    out[s["site"].get<std::string>()] = {s["logins"], s["failed"], s["refused"], s["users"]};
  }
  return out;
}

TEST(AuditCli, LoginsPerSiteCountsTheMonthAtTheGivenOffset) {
  AuditLog log;
  log.keygen();
  log.start();
  std::vector<Appended> logins;
  for (const auto& [actor, site, outcome] :
       std::vector<std::array<std::string, 3>>{{"alice", "site-a", "success"},
                                               {"alice", "site-a", "success"},
                                               {"carol", "site-a", "success"},
                                               {"alice", "site-a", "failure"},
                                               {"erin", "site-a", "refused"},
                                               {"bob", "site-b", "success"},
                                               {"bob", "site-b", "failure"},
                                               {"bob", "site-b", "error"}}) {
    logins.push_back(log.append(event_json("login.attempt", actor, site, outcome)));
  }
  log.append(event_json("session.start", "alice", "site-a", "success", "s1"));  // not a login
  auto edge_a = log.append(event_json("login.attempt", "frank", "site-edge", "success"));
  auto edge_b = log.append(event_json("login.attempt", "gina", "site-edge", "failure"));
  log.stop();
  // Two logins moved next to a month boundary (the report reads times, it does not verify).
  {
    Sql sql(log.db());
    sql.exec(
        "UPDATE events SET time_us = " + std::to_string(*parse_time_us("2025-01-31T20:00:00Z")) +
        " WHERE idx = " + std::to_string(edge_a.index));
    sql.exec(
        "UPDATE events SET time_us = " + std::to_string(*parse_time_us("2025-02-01T03:00:00Z")) +
        " WHERE idx = " + std::to_string(edge_b.index));
  }

  // The current month, counted here from the times the daemon acknowledged.
  for (const auto& [offset, minutes] :
       std::vector<std::pair<std::string, int>>{{"+00:00", 0}, {"+09:00", 540}}) {
    const std::string month = month_of(logins.front().time_us, minutes);
    std::map<std::string, std::vector<std::uint64_t>> expected;
    std::map<std::string, std::set<std::string>> users;
    for (const auto& l : logins) {
      if (month_of(l.time_us, minutes) != month) continue;
      auto& row = expected[l.event["site"]];
      row.resize(4);
      const auto& outcome = l.event["outcome"];
      ++row[outcome == "success" ? 0 : outcome == "refused" ? 2 : 1];
      if (outcome == "success") users[l.event["site"]].insert(l.event["actor"]);
    }
    for (auto& [site, row] : expected) row[3] = users[site].size();
    auto r = report(log, month, offset);
    EXPECT_EQ(r["month"], month);
    EXPECT_EQ(r["utc_offset"], offset);
    EXPECT_EQ(sites_of(r), expected) << r.dump(2);
  }
  const std::map<std::string, std::vector<std::uint64_t>> none;
  const std::map<std::string, std::vector<std::uint64_t>> frank = {{"site-edge", {1, 0, 0, 1}}};
  const std::map<std::string, std::vector<std::uint64_t>> gina = {{"site-edge", {0, 1, 0, 0}}};
  const std::map<std::string, std::vector<std::uint64_t>> both = {{"site-edge", {1, 1, 0, 1}}};
  EXPECT_EQ(sites_of(report(log, "2025-01", "+00:00")), frank);
  EXPECT_EQ(sites_of(report(log, "2025-02", "+00:00")), gina);
  EXPECT_EQ(sites_of(report(log, "2025-01", "+09:00")), none);  // 20:00Z is February in Tokyo
  EXPECT_EQ(sites_of(report(log, "2025-02", "+09:00")), both);
  EXPECT_EQ(sites_of(report(log, "2025-01", "-05:00")), both);  // 03:00Z is still January
  EXPECT_EQ(sites_of(report(log, "2025-02", "-05:00")), none);
  EXPECT_EQ(sites_of(report(log, "2024-12", "+09:00")), none);

  auto human =
      log.audit({"report", "logins-per-site", "--month", "2025-02", "--utc-offset", "+09:00"});
  ASSERT_EQ(human.exit_code, 0) << human.err;
  EXPECT_THAT(human.out, HasSubstr("Logins per remote site, 2025-02 (UTC+09:00)"));
  EXPECT_THAT(human.out, HasSubstr("SITE"));
  EXPECT_THAT(human.out, HasSubstr("site-edge"));
  EXPECT_THAT(human.out, HasSubstr("(1 successful logins at 1 sites)"));
  auto bad = log.audit({"report", "logins-per-site", "--month", "2025-13"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("2025-13"));
}

// ---- export and verify-export ----------------------------------------------------------------

// RFC 4180 records.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
    } else if (c == '\n') {
      row.push_back(std::move(field));
      field.clear();
      rows.push_back(std::move(row));
      row.clear();
    } else {
      field += c;
    }
  }
  return rows;
}

std::vector<merkle::Hash> proof_hashes(const std::string& text, char separator) {
  std::vector<merkle::Hash> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = std::min(text.find(separator, at), text.size());
    auto raw = base64_decode(text.substr(at, end - at));
    auto h = raw ? merkle::hash_from_bytes(*raw) : std::nullopt;
    EXPECT_TRUE(h) << text;
    if (h) out.push_back(*h);
    at = end + 1;
  }
  return out;
}

TEST(AuditCli, ExportCarriesProofsThatVerifyExportChecks) {
  AuditLog log(Settings{1000, 3600});
  log.keygen();
  log.start();
  for (int i = 0; i < 15; ++i) {
    log.append(event_json("login.attempt", i % 2 ? "alice" : "bob", "site-a",
                          i % 3 ? "success" : "failure", "", "dev,\"quoted\""));
  }
  auto sealed = log.call("audit.checkpoint", nlohmann::json::object());
  ASSERT_EQ(sealed["size"], 16u);
  for (int i = 0; i < 3; ++i) log.append(event_json("x.late", "dora", "site-b", "info"));
  // The daemon keeps running: the last three are not sealed yet.

  auto file = log.dir() / "export.jsonl";
  auto r = log.audit({"export", "--format", "jsonl", "--out", file.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("exported 19 events (3 not yet sealed"));
  auto lines = lines_of(read_text(file));
  ASSERT_EQ(lines.size(), 20u);
  auto header = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(header["type"], "checkpoint");
  EXPECT_EQ(header["note"], sealed["note"]);
  EXPECT_EQ(header["verifier_key"].get<std::string>() + "\n", read_text(log.pub_key()));
  for (std::size_t i = 1; i < lines.size(); ++i) {
    auto line = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(line["type"], "event");
    EXPECT_EQ(line["event"]["index"], i - 1);
    if (i - 1 < 16) {
      EXPECT_EQ(line["proof"]["tree_size"], 16u) << lines[i];
      EXPECT_EQ(line["proof"]["leaf_index"], i - 1);
      EXPECT_TRUE(line["proof"]["hashes"].is_array());
    } else {
      EXPECT_TRUE(line["proof"].is_null()) << lines[i];
    }
  }
  auto checked = log.audit({"verify-export", file.string(), "--json"});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  auto result = nlohmann::json::parse(checked.out);
  EXPECT_EQ(result["ok"], true);
  EXPECT_EQ(result["proven"], 16u);
  EXPECT_EQ(result["unproven"], 3u);
  auto human = log.audit({"verify-export", file.string()});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_THAT(human.out, HasSubstr("16 events proven in the log sealed at size 16, 3 without"));

  auto tampered = [&](std::size_t line_no, const std::function<void(nlohmann::json&)>& edit) {
    auto copy = lines;
    auto j = nlohmann::json::parse(copy[line_no - 1]);
    edit(j);
    copy[line_no - 1] = j.dump();
    std::string text;
    for (const auto& l : copy) text += l + "\n";
    auto path = log.dir() / ("tampered-" + std::to_string(line_no) + ".jsonl");
    write_text(path, text);
    auto v = log.audit({"verify-export", path.string(), "--json"});
    EXPECT_EQ(v.exit_code, 1) << v.out;
    auto out = nlohmann::json::parse(v.out, nullptr, false);
    EXPECT_EQ(out["problems"].size(), 1u) << v.out;
    return out["problems"].empty() ? std::string() : out["problems"][0].get<std::string>();
  };
  // The event shown edited, its leaf left alone.
  EXPECT_THAT(tampered(5, [](nlohmann::json& j) { j["event"]["actor"] = "mallory"; }),
              ::testing::AllOf(HasSubstr(" line 5:"), HasSubstr("differs from its leaf")));
  // One proof hash changed.
  EXPECT_THAT(tampered(6,
                       [](nlohmann::json& j) {
                         auto h = proof_hashes(j["proof"]["hashes"][0].get<std::string>(), ';');
                         j["proof"]["hashes"][0] = base64_encode(flip_bit(h.at(0)));
                       }),
              ::testing::AllOf(HasSubstr(" line 6:"), HasSubstr("event 4 is not in the log")));
  // The event and its leaf edited together: the proof no longer leads to the signed root.
  EXPECT_THAT(tampered(7,
                       [](nlohmann::json& j) {
                         auto leaf = decode_leaf(*base64_decode(j["leaf"].get<std::string>()));
                         ASSERT_TRUE(leaf);
                         leaf->outcome = "failure";
                         j["leaf"] = base64_encode(encode_leaf(*leaf));
                         j["event"] = event_to_json(*leaf, 5);
                       }),
              ::testing::AllOf(HasSubstr(" line 7:"), HasSubstr("event 5 is not in the log")));

  // CSV: the proofs in a column, the checkpoint beside the file.
  auto csv = log.dir() / "export.csv";
  r = log.audit({"export", "--format", "csv", "--out", csv.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto note_text = read_text(csv.string() + ".checkpoint");
  EXPECT_EQ(note_text, sealed["note"]);
  auto key = note::Verifier::parse(header["verifier_key"].get<std::string>());
  ASSERT_TRUE(key);
  auto cp = note::open_checkpoint(as_bytes(note_text), *key, kOrigin);
  ASSERT_TRUE(cp);
  auto rows = parse_csv(read_text(csv));
  ASSERT_EQ(rows.size(), 20u);
  ASSERT_EQ(rows[0].size(), 15u);
  EXPECT_EQ(rows[0][0], "index");
  EXPECT_EQ(rows[0][14], "proof");
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const auto& row = rows[i];
    ASSERT_EQ(row.size(), 15u) << i;
    const std::uint64_t index = std::stoull(row[0]);
    EXPECT_EQ(index, i - 1);
    if (index < 16) {
      EXPECT_EQ(row[13], "16");
      ASSERT_FALSE(row[14].empty()) << i;
      auto leaf = base64_decode(row[12]);
      ASSERT_TRUE(leaf);
      EXPECT_TRUE(merkle::verify_inclusion(index, 16, merkle::leaf_hash(*leaf),
                                           proof_hashes(row[14], ';'), cp->root))
          << "row " << i;
    } else {
      EXPECT_EQ(row[13], "");
      EXPECT_EQ(row[14], "");
    }
  }
  EXPECT_EQ(rows[2][7], "dev,\"quoted\"");  // quoting survives the round trip
  log.stop();
}

// ---- forward ---------------------------------------------------------------------------------

TEST(AuditCli, ForwardWritesSyslogAndOcsf) {
  AuditLog log;
  log.keygen();
  log.start();
  log.append(event_json("login.attempt", "alice", "site-a", "success", "", "dev-1"));
  log.append(event_json("login.attempt", "bob", "site-b", "failure"));
  log.append(event_json("login.attempt", "carol", "site-b", "refused"));
  log.append(event_json("export.request", "alice", "site-a", "info", "sess-1"));
  log.stop();
  auto all = log.query({});
  ASSERT_EQ(all.size(), 6u);

  auto syslog = log.dir() / "events.syslog";
  auto r = log.audit({"forward", "--format", "syslog", "--out", syslog.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("forwarded 6 events as syslog"));
  auto lines = lines_of(read_text(syslog));
  ASSERT_EQ(lines.size(), all.size());
  const std::regex header(
      R"re(^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) \[event@32473 index="(\d+)")re");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& e = all[i];
    std::smatch m;
    ASSERT_TRUE(std::regex_search(lines[i], m, header)) << lines[i];
    const auto& outcome = e["outcome"];
    const int severity = outcome == "failure" || outcome == "refused" ? 5 : 6;
    EXPECT_EQ(std::stoi(m[1]), 13 * 8 + severity) << lines[i];
    EXPECT_EQ(parse_time_us(m[2].str()), parse_time_us(e["time"].get<std::string>()));
    EXPECT_EQ(m[4], "enclave-audit");
    EXPECT_EQ(m[5], "-");
    EXPECT_EQ(m[6], e["type"]);  // MSGID
    EXPECT_EQ(std::stoull(m[7]), e["index"].get<std::uint64_t>());
    EXPECT_THAT(lines[i], HasSubstr(" outcome=\"" + outcome.get<std::string>() + "\""));
    if (!e["actor"].get<std::string>().empty()) {
      EXPECT_THAT(lines[i], HasSubstr(" actor=\"" + e["actor"].get<std::string>() + "\""));
    }
    EXPECT_THAT(lines[i], HasSubstr("] \xEF\xBB\xBF" + e["type"].get<std::string>()));
  }

  auto ocsf = log.dir() / "events.ocsf";
  r = log.audit({"forward", "--format", "ocsf", "--out", ocsf.string(), "--type", "login.attempt"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  lines = lines_of(read_text(ocsf));
  ASSERT_EQ(lines.size(), 3u);
  const std::pair<const char*, int> expected[] = {{"alice", 1}, {"bob", 2}, {"carol", 2}};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["class_uid"], 3002);
    EXPECT_EQ(j["activity_id"], 1);
    EXPECT_EQ(j["type_uid"], 300201);
    EXPECT_EQ(j["status_id"], expected[i].second) << lines[i];
    EXPECT_EQ(j["user"]["name"], expected[i].first);
    EXPECT_EQ(j["metadata"]["uid"], std::to_string(i + 1));
  }
  r = log.audit({"forward", "--format", "ocsf", "--type", "export.request"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["class_uid"], 0);

  auto wrong = log.audit({"forward", "--format", "cef"});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.err, HasSubstr("--format"));
}

TEST(AuditCli, ForwardDeliversDatagramsOverUdp) {
  AuditLog log;
  log.keygen();
  log.start();
  for (const char* actor : {"alice", "bob", "carol"}) {
    log.append(event_json("login.attempt", actor, "site-a", "success"));
  }
  log.stop();

  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  auto r = log.audit({"forward", "--format", "syslog", "--type", "login.attempt", "--to",
                      "udp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << "events went to stdout as well: " << r.out;
  std::vector<std::string> received;
  char buf[8192];
  for (int i = 0; i < 3; ++i) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    received.emplace_back(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  ASSERT_EQ(received.size(), 3u);
  for (std::size_t i = 0; i < received.size(); ++i) {
    EXPECT_THAT(received[i], ::testing::StartsWith("<110>1 "));
    EXPECT_THAT(received[i],
                HasSubstr(" - login.attempt [event@32473 index=\"" + std::to_string(i + 1) + "\""));
  }
}

// ---- archives --------------------------------------------------------------------------------

TEST(AuditCli, ArchivedEntriesLeaveTheDatabaseAndVerifyAlone) {
  AuditLog log(Settings{5, 3600});
  log.keygen();
  log.start();
  for (int i = 0; i < 30; ++i) log.append(event_json("old.event", "ivan", "site-a", "info"));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const std::string before = format_time_us(now_us());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 20; ++i) log.append(event_json("new.event", "judy", "site-a", "info"));

  auto r = log.tool("enclavectl", {"audit", "archive", "--before", before, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto archived = nlohmann::json::parse(r.out);
  // Entries 0..30 are older than `before`; the archive ends at the last checkpoint in them.
  EXPECT_EQ(archived["first"], 0u);
  EXPECT_EQ(archived["end"], 30u);
  const std::filesystem::path file = archived["file"].get<std::string>();
  ASSERT_TRUE(std::filesystem::exists(file));
  EXPECT_EQ(file.parent_path(), log.state() / "archive");
  log.stop();

  auto checked = log.audit({"verify-archive", file.string(), "--json"});
  EXPECT_EQ(checked.exit_code, 0) << checked.out << checked.err;
  auto result = nlohmann::json::parse(checked.out);
  EXPECT_EQ(result["ok"], true);
  EXPECT_EQ(result["archives"][0]["entries"], "0 to 29");
  auto human = log.audit({"verify-archive", file.string()});
  EXPECT_EQ(human.exit_code, 0);
  EXPECT_THAT(human.out, HasSubstr("sealed and intact"));

  auto v = log.verify({"--seal-grace", "0"});
  EXPECT_EQ(v.exit_code, 0) << v.report.dump(2);
  EXPECT_EQ(v.report["archived"], 30u);

  auto live = log.query({});
  ASSERT_FALSE(live.empty());
  EXPECT_EQ(live[0]["index"], 30u);  // the one old event after the archive's checkpoint
  EXPECT_EQ(live[0]["type"], "old.event");
  EXPECT_EQ(log.query({"--type", "old.event"}).size(), 1u);
  EXPECT_EQ(log.query({"--type", "new.event"}).size(), 20u);
  EXPECT_TRUE(log.query({"--until", before, "--type", "audit.start"}).empty());

  // One archived event changed, the file still well-formed: it no longer reproduces its seal.
  auto parsed = archive::parse(as_bytes(read_text(file)));
  ASSERT_TRUE(parsed) << parsed.error().describe();
  ASSERT_EQ(parsed->events.size(), 30u);
  parsed->events[17].actor = "mallory";
  std::string text = archive::format_header(*parsed);
  for (std::size_t i = 0; i < parsed->events.size(); ++i) {
    text += archive::format_event(parsed->first + i, parsed->events[i]);
  }
  text += archive::format_checkpoint(parsed->checkpoint_note);
  auto forged = log.dir() / "forged.archive";
  write_text(forged, text);
  auto bad = log.audit({"verify-archive", forged.string(), "--json"});
  EXPECT_EQ(bad.exit_code, 1) << bad.out;
  auto bad_result = nlohmann::json::parse(bad.out);
  EXPECT_EQ(bad_result["ok"], false);
  EXPECT_THAT(bad_result["archives"][0]["result"].get<std::string>(), HasSubstr("does not verify"));
}

// ---- inputs the tool cannot use --------------------------------------------------------------

TEST(AuditCli, UnusableInputsExitTwoNamingTheProblem) {
  AuditLog log;
  log.keygen();
  log.start();
  log.append(event_json("x.test", "kim", "site-a", "info"));
  log.stop();
  ASSERT_EQ(log.audit({"verify"}).exit_code, 0);

  auto missing_db = log.dir() / "nowhere" / "audit.db";
  for (const char* command : {"verify", "query"}) {
    auto r = log.audit({command, "--db", missing_db.string()});
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_THAT(r.err, HasSubstr(missing_db.string())) << command;
  }
  auto missing_key = log.dir() / "nowhere.pub";
  auto r = log.audit({"verify", "--key", missing_key.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(missing_key.string()));

  auto garbage_key = log.dir() / "garbage.pub";
  write_text(garbage_key, "this is not a verifier key\n");
  for (const char* command : {"verify", "verify-export", "verify-archive"}) {
    std::vector<std::string> args = {command, "--key", garbage_key.string()};
    if (std::string(command) != "verify") args.push_back(log.db().string());
    r = log.audit(args);
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_THAT(r.err, HasSubstr(garbage_key.string())) << command;
  }

  auto not_sqlite = log.dir() / "not-a.db";
  std::string junk;
  for (int i = 0; i < 8192; ++i) junk += static_cast<char>((i * 131 + 7) & 0xff);
  write_text(not_sqlite, junk);
  for (const char* command : {"verify", "query", "export"}) {
    r = log.audit({command, "--db", not_sqlite.string()});
    EXPECT_EQ(r.exit_code, 2) << command;
    EXPECT_THAT(r.err, HasSubstr(not_sqlite.string())) << command;
  }
  auto empty = log.dir() / "empty.db";
  write_text(empty, "");
  r = log.audit({"query", "--db", empty.string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr(empty.string()));

  for (const char* text : {"yesterday", "2026-13-01", "2026-01-01T25:00"}) {
    r = log.audit({"query", "--since", text});
    EXPECT_EQ(r.exit_code, 2) << text;
    EXPECT_THAT(r.err, HasSubstr(text));
  }
  r = log.audit({"export", "--until", "soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("soon"));
}

// ---- verify while the daemon runs ------------------------------------------------------------

// Auditors verify the live log: appends and checkpoints that land while verify reads must not
// look like tampering.
TEST(AuditCli, VerifyWhileTheDaemonAppendsFindsNothing) {
  AuditLog log(Settings{20, 0.05});
  log.keygen();
  log.start();
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    auto c = ipc::Client::connect(log.dir() / "auditd.sock");
    ASSERT_TRUE(c) << c.error().describe();
    while (!stop) {
      for (int i = 0; i < 20; ++i) {
        ASSERT_TRUE(c->send("audit.append", event_json("load.test", "lee", "site-a", "info")));
      }
      for (int i = 0; i < 20; ++i) ASSERT_TRUE(c->receive());
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int i = 0; i < 6; ++i) {
    auto v = log.verify();
    EXPECT_EQ(v.exit_code, 0) << "run " << i << ": " << v.report["live_entries"]
                              << " rows read, latest checkpoint "
                              << v.report["latest_checkpoint"]["size"] << ", " << v.findings.size()
                              << " findings, the first: "
                              << (v.findings.empty() ? "" : v.report["findings"][0].dump());
  }
  stop = true;
  writer.join();
  log.stop();
  auto after = log.verify();
  EXPECT_EQ(after.exit_code, 0) << after.report.dump(2);
}

// ---- verify-export on files it must refuse ---------------------------------------------------

// A sealed log of a few events exported as JSONL; returns the file's lines.
std::vector<std::string> sealed_export(AuditLog& log, const std::filesystem::path& file) {
  log.keygen();
  log.start();
  for (const char* actor : {"alice", "bob", "carol", "dave"}) {
    log.append(event_json("login.attempt", actor, "site-a", "success"));
  }
  log.stop();
  auto r = log.audit({"export", "--format", "jsonl", "--out", file.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  auto lines = lines_of(read_text(file));
  EXPECT_EQ(lines.size(), 7u);  // checkpoint, start, four events, stop
  return lines;
}

std::filesystem::path write_lines(const std::filesystem::path& path,
                                  const std::vector<std::string>& lines) {
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  write_text(path, text);
  return path;
}

// The checkpoint in the file seals every event in it, so an event line without a proof was
// not "unsealed when exported": it was stripped of its proof, and may say anything.
TEST(AuditCli, VerifyExportRefusesASealedEventWithoutItsProof) {
  AuditLog log;
  auto lines = sealed_export(log, log.dir() / "export.jsonl");
  ASSERT_EQ(lines.size(), 7u);
  auto line = nlohmann::json::parse(lines[3]);  // entry 2, bob's login
  auto leaf = decode_leaf(*base64_decode(line["leaf"].get<std::string>()));
  ASSERT_TRUE(leaf);
  leaf->actor = "mallory";
  line["leaf"] = base64_encode(encode_leaf(*leaf));
  line["event"] = event_to_json(*leaf, 2);
  line["proof"] = nullptr;
  lines[3] = line.dump();
  auto path = write_lines(log.dir() / "forged.jsonl", lines);
  auto r = log.audit({"verify-export", path.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto out = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out;
  EXPECT_EQ(out["ok"], false) << r.out;
  ASSERT_EQ(out["problems"].size(), 1u) << r.out;
  EXPECT_THAT(out["problems"][0].get<std::string>(), HasSubstr(" line 4:"));
}

TEST(AuditCli, VerifyExportReportsMalformedRecordsWithoutCrashing) {
  AuditLog log;
  auto lines = sealed_export(log, log.dir() / "export.jsonl");
  ASSERT_EQ(lines.size(), 7u);
  auto edit = [&](std::size_t at, const std::function<void(nlohmann::json&)>& change) {
    auto j = nlohmann::json::parse(lines[at]);
    change(j);
    lines[at] = j.dump();
  };
  edit(1, [](nlohmann::json& j) { j["leaf"] = 5; });                  // line 2
  edit(2, [](nlohmann::json& j) { j["event"] = nullptr; });           // line 3
  edit(3, [](nlohmann::json& j) { j["event"]["index"] = "two"; });    // line 4
  edit(4, [](nlohmann::json& j) { j["proof"]["tree_size"] = "6"; });  // line 5
  auto path = write_lines(log.dir() / "malformed.jsonl", lines);
  auto r = log.audit({"verify-export", path.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto out = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out << r.err;
  std::vector<std::string> problems;
  for (const auto& p : out["problems"]) problems.push_back(p.get<std::string>());
  ASSERT_EQ(problems.size(), 4u) << r.out;
  for (std::size_t i = 0; i < problems.size(); ++i) {
    EXPECT_THAT(problems[i], HasSubstr(" line " + std::to_string(i + 2) + ":"));
  }
}

TEST(AuditCli, VerifyExportRefusesAFileWithoutItsCheckpoint) {
  AuditLog log;
  auto lines = sealed_export(log, log.dir() / "export.jsonl");
  auto empty = log.dir() / "empty.jsonl";
  write_text(empty, "");
  auto r = log.audit({"verify-export", empty.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out + r.err, HasSubstr(empty.string()));
  // Nor is an export whose checkpoint line was cut off.
  auto headless = write_lines(log.dir() / "headless.jsonl",
                              std::vector<std::string>(lines.begin() + 1, lines.end()));
  r = log.audit({"verify-export", headless.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("does not start with its checkpoint"));
  // A first line that is not JSON at all: nothing after it can be checked against a checkpoint.
  auto garbled = lines;
  garbled[0] = "garbage";
  auto path = write_lines(log.dir() / "garbled.jsonl", garbled);
  r = log.audit({"verify-export", path.string(), "--json"});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto out = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_object()) << r.out << r.err;
  ASSERT_EQ(out["problems"].size(), 1u) << r.out;
  EXPECT_THAT(out["problems"][0].get<std::string>(), HasSubstr(" line 1:"));
}

}  // namespace
}  // namespace enclave::audit
