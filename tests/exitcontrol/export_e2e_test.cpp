// The export path end to end with real processes: enclave-auditd, enclave-sessiond (a session
// with its outbox on a local shadow desktop) and enclave-exportd; requests made with the
// session's export token over exportd's socket, decisions by stewards, the release downloaded
// with curl over TLS from its one-time link and verified with enclave-exitcheck release verify.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include <sqlite3.h>
#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/ipc/client.hpp"
#include "sessionmgr/service/local_desktop.hpp"
#include "tests/gateway/enclave_fixture.hpp"

namespace enclave::exitcontrol {
namespace {

using gateway::fixture::EnclaveServices;
using gateway::fixture::read_text;
using gateway::fixture::shipped_policy;
using nlohmann::json;
using ::testing::HasSubstr;

namespace fs = std::filesystem;

const fs::path kExamples = testing::source_dir() / "docs" / "examples" / "exitcontrol";

// The shipped [sessiond] section, and two tiers on local shadow desktops: one steward, two.
std::string sessions_toml() {
  std::string shipped = shipped_policy("sessions.toml");
  std::string sessiond = shipped.substr(0, shipped.find("# ---- tiers"));
  return sessiond + R"(
[tiers.one]
description = "one steward"
idle_timeout_s = 900
max_session_s = 28800
grace_s = 0
max_sessions_per_user = 2
export_profile = "acro-default"
export_stewards = 1

[tiers.two]
description = "two stewards"
idle_timeout_s = 900
max_session_s = 28800
grace_s = 0
max_sessions_per_user = 2
export_profile = "acro-default"
export_stewards = 2

[compartments.claims]
description = "one steward decides"
tier = "one"
local = { kind = "shadow", max_desktops = 4 }

[compartments.genomes]
description = "two stewards decide"
tier = "two"
local = { kind = "shadow", max_desktops = 4 }
)";
}

class ExportEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    auto why = sessionmgr::local_desktop_unavailable(sessionmgr::LocalDesktopKind::kShadow);
    if (!why.empty()) GTEST_SKIP() << "a session needs a local desktop: " << why;
    services_ = std::make_unique<EnclaveServices>(
        dir_, sessions_toml(), std::map<std::string, std::string>{}, [](EnclaveServices& s) {
          // The local CA issues the download listener's certificate, as it does the gateway's.
          auto ca = s.tool("enclavectl", {"ca", "init"});
          EXPECT_EQ(ca.exit_code, 0) << ca.err;
        });
    download_port_ = gateway::fixture::free_port();
    std::string exports = shipped_policy("exports.toml");
    exports = gateway::fixture::set_key(exports, "listen",
                                        "\"127.0.0.1:" + std::to_string(download_port_) + "\"");
    std::ofstream(dir_ / "policies" / "exports.toml") << exports;
    registry();
    exportd_ = std::make_unique<testing::Child>(
        std::vector<std::string>{testing::binary("enclave-exportd").string(), "run"},
        services_->env(), dir_.path());
    ASSERT_TRUE(testing::wait_for_path(state() / "run" / "exportd.sock"))
        << exportd_->stderr_text();
  }

  fs::path state() const { return services_->state(); }

  void ctl(std::vector<std::string> args) {
    auto r = services_->tool("enclavectl", std::move(args));
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }

  // ana and bob analyse; steve and sue are P-1's stewards; sam is analyst and steward of P-1;
  // olga stewards P-2 only.
  void registry() {
    ctl({"user", "add", "ana", "--name", "Ana", "--role", "analyst"});
    ctl({"user", "add", "steve", "--name", "Steve", "--role", "steward"});
    ctl({"user", "add", "sue", "--name", "Sue", "--role", "steward"});
    ctl({"user", "add", "sam", "--name", "Sam", "--role", "analyst", "--role", "steward"});
    ctl({"user", "add", "olga", "--name", "Olga", "--role", "steward"});
    ctl({"user", "add", "otto", "--name", "Otto", "--role", "operator"});
    for (const auto& [project, members, compartment] :
         std::vector<std::tuple<std::string, std::vector<std::string>, std::string>>{
             {"p-1", {"ana", "steve", "sue", "sam"}, "claims"}, {"p-2", {"olga"}, "claims"}}) {
      ctl({"project", "add", project, "--title", "Project " + project, "--from", "2020-01-01",
           "--until", "2099-01-01"});
      for (const auto& m : members) ctl({"project", "member", "add", project, m});
      ctl({"project", "grant", project, compartment});
    }
    ctl({"project", "grant", "p-1", "genomes"});
  }

  // A session for user in compartment: its outbox and export token.
  struct Session {
    std::string id;
    fs::path outbox;
    std::string token;
  };
  Session session(const std::string& user, const std::string& compartment) {
    auto issued = services_->issue(user, compartment);
    Session s;
    s.id = issued.value("session_id", "");
    s.outbox = state() / "exitcontrol" / "outbox" / s.id;
    const std::string file = read_text(s.outbox / ".enclave-session");
    auto at = file.find("token = \"");
    EXPECT_NE(at, std::string::npos) << file;
    if (at != std::string::npos) s.token = file.substr(at + 9, 64);
    return s;
  }

  void put(const Session& s, const std::string& example) {
    const auto copy = fs::copy_options::overwrite_existing;
    fs::copy_file(kExamples / example, s.outbox / example, copy);
    if (fs::exists(kExamples / (example + ".meta.toml"))) {
      fs::copy_file(kExamples / (example + ".meta.toml"), s.outbox / (example + ".meta.toml"),
                    copy);
    }
  }

  // A request for files already in the session's outbox: its id.
  std::string submit(const Session& s, const std::vector<std::string>& files,
                     const std::string& justification) {
    return ok("export.submit",
              {{"token", s.token}, {"files", files}, {"justification", justification}})
        .value("request", "");
  }

  // An example table put in the outbox, requested, checked (it passes), approved by steve and
  // released: the request as export.show gives it.
  json released(const Session& s, const std::string& example, const std::string& justification) {
    put(s, example);
    const std::string id = submit(s, {example}, justification);
    EXPECT_EQ(checked(s, id)["state"], "waiting_review");
    ok("export.decide", {{"as", "steve"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
    return state_of(id, "steve", "released");
  }

  Expected<json> call(const std::string& method, json params) {
    auto client = ipc::Client::connect(state() / "run" / "exportd.sock");
    if (!client) return error_of(client);
    return client->call(method, std::move(params), std::chrono::seconds(60));
  }

  json ok(const std::string& method, json params) {
    auto r = call(method, std::move(params));
    EXPECT_TRUE(r) << method << ": " << r.error().describe();
    return r ? *r : json::object();
  }

  // Waits until the engine has checked every file.
  json checked(const Session& s, const std::string& request) {
    json r;
    for (int i = 0; i < 600; ++i) {
      r = ok("export.status", {{"token", s.token}, {"request", request}});
      if (r.value("state", "") != "checking") return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "still checking: " << r.dump();
    return r;
  }

  json state_of(const std::string& request, const std::string& as, const std::string& wanted) {
    json r;
    for (int i = 0; i < 300; ++i) {
      r = ok("export.show", {{"as", as}, {"request", request}});
      if (r.value("state", "") == wanted) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "not " << wanted << ": " << r.dump();
    return r;
  }

  testing::RunResult curl(const std::string& url, const fs::path& out) {
    return testing::run({"curl", "-sS", "--fail", "--cacert", (state() / "keys/ca/ca.crt").string(),
                         "-o", out.string(), "-w", "%{http_code}", url});
  }

  testing::TempDir dir_;
  std::unique_ptr<EnclaveServices> services_;
  std::unique_ptr<testing::Child> exportd_;
  std::uint16_t download_port_ = 0;
};

TEST_F(ExportEndToEnd, RequestCheckSafeVersionApproveReleaseDownloadOnce) {
  auto s = session("ana", "claims");
  ASSERT_FALSE(s.token.empty());
  put(s, "outpatients_by_region.csv");      // passes
  put(s, "outpatients_by_region_age.csv");  // 4 cells under 10: fails, has a safe version
  auto submitted = ok("export.submit",
                      {{"token", s.token},
                       {"files", {"outpatients_by_region.csv", "outpatients_by_region_age.csv"}},
                       {"justification", "Tables 1 and 2 of the paper"}});
  const std::string id = submitted.value("request", "");
  ASSERT_FALSE(id.empty()) << submitted.dump();
  EXPECT_EQ(submitted["project"], "p-1");
  EXPECT_EQ(submitted["state"], "checking");

  auto r = checked(s, id);
  ASSERT_EQ(r["state"], "needs_analyst") << r.dump();
  EXPECT_EQ(r["files"][0]["outcome"], "pass");
  EXPECT_EQ(r["files"][1]["outcome"], "fail");
  ASSERT_TRUE(r["files"][1].contains("safe_version")) << r.dump();
  EXPECT_EQ(r["files"][1]["safe_version"]["outcome"], "pass");

  // The queue shows nothing until the analyst has chosen.
  auto queue = ok("export.queue", {{"as", "steve"}});
  EXPECT_TRUE(queue["requests"].empty()) << queue.dump();
  r = ok("export.choose",
         {{"token", s.token}, {"request", id}, {"file", 1}, {"action", "accept_safe"}});
  EXPECT_EQ(r["state"], "waiting_review");
  queue = ok("export.queue", {{"as", "steve"}});
  ASSERT_EQ(queue["requests"].size(), 1u);
  EXPECT_EQ(queue["requests"][0]["request"], id);
  EXPECT_EQ(queue["total"], 1);
  EXPECT_FALSE(queue.contains("next"));

  // The steward sees the report, the safe version beside it, and decides file by file.
  auto shown = ok("export.show", {{"as", "steve"}, {"request", id}});
  EXPECT_EQ(shown["files"][1]["preview"]["version"], "safe");
  EXPECT_TRUE(shown["files"][1].contains("report"));
  ok("export.decide", {{"as", "steve"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  ok("export.decide", {{"as", "steve"},
                       {"request", id},
                       {"file", 1},
                       {"decision", "approve"},
                       {"comment", "safe version"}});
  auto released = state_of(id, "steve", "released");
  const std::string release = released.value("release", "");
  ASSERT_FALSE(release.empty());

  // A second decision on a closed request is refused.
  auto again = call(
      "export.decide",
      {{"as", "sue"}, {"request", id}, {"file", 0}, {"decision", "reject"}, {"comment", "late"}});
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kConflict);

  // The requester cannot hand out their own release; a steward can, once per link.
  EXPECT_FALSE(call("export.link", {{"as", "ana"}, {"request", id}}));
  auto link = ok("export.link", {{"as", "steve"}, {"request", id}});
  const std::string url = link.value("url", "");
  ASSERT_THAT(url, HasSubstr("/download/"));
  const fs::path bundle = dir_ / "bundle.tar";
  auto got = curl(url, bundle);
  ASSERT_EQ(got.exit_code, 0) << got.out << got.err;
  EXPECT_EQ(got.out, "200");
  auto verified = testing::run(
      {testing::binary("enclave-exitcheck").string(), "release", "verify", bundle.string(),
       "--public-key", (state() / "keys/export-signing.pub").string()},
      services_->env());
  EXPECT_EQ(verified.exit_code, 0) << verified.out << verified.err;
  EXPECT_THAT(verified.out, HasSubstr("outpatients_by_region_age.csv"));
  // The safe version went out, not the submitted file.
  auto listing = testing::run({"tar", "-xOf", bundle.string(), "outpatients_by_region_age.csv"});
  EXPECT_EQ(sha256_hex(as_bytes(listing.out)),
            r["files"][1]["safe_version"]["sha256"].get<std::string>());

  auto second = curl(url, dir_ / "again.tar");
  EXPECT_NE(second.exit_code, 0);
  EXPECT_EQ(second.out, "410");
  ASSERT_TRUE(services_->wait_event("export.downloaded", release));
  ASSERT_TRUE(services_->wait_event("export.download.refused", "used"));

  // Every approved table is in the project's ledger now.
  auto ledger = services_->tool("enclave-exitcheck", {"ledger", "list", "--project", "p-1"});
  EXPECT_THAT(ledger.out, HasSubstr("outpatients_by_region_age.csv")) << ledger.err;
  for (const char* type : {"export.requested", "export.checked", "export.choice", "export.decision",
                           "export.released", "export.link"}) {
    EXPECT_TRUE(services_->wait_event(type, id)) << type;
  }
}

TEST_F(ExportEndToEnd, TwoStewardsRejectionAndException) {
  auto s = session("ana", "genomes");
  put(s, "outpatients_by_region.csv");
  put(s, "outpatients_by_region_age.csv");
  auto id = submit(s, {"outpatients_by_region.csv", "outpatients_by_region_age.csv"}, "supplement");
  ASSERT_EQ(checked(s, id)["state"], "needs_analyst");
  auto bare = call("export.choose",
                   {{"token", s.token}, {"request", id}, {"file", 1}, {"action", "exception"}});
  ASSERT_FALSE(bare);
  EXPECT_THAT(bare.error().message, HasSubstr("written reason"));
  ok("export.choose", {{"token", s.token},
                       {"request", id},
                       {"file", 1},
                       {"action", "exception"},
                       {"reason", "the small cells are published in the 2024 yearbook"}});
  auto one =
      ok("export.decide", {{"as", "steve"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  EXPECT_EQ(one["state"], "waiting_review");  // the tier needs a second steward
  auto twice = call("export.decide",
                    {{"as", "steve"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  ASSERT_FALSE(twice);
  EXPECT_THAT(twice.error().message, HasSubstr("a second steward must decide"));
  ok("export.decide", {{"as", "sue"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  auto reason =
      call("export.decide", {{"as", "sue"}, {"request", id}, {"file", 1}, {"decision", "approve"}});
  ASSERT_FALSE(reason);
  EXPECT_THAT(reason.error().message, HasSubstr("steward's written reason"));
  ok("export.decide", {{"as", "sue"},
                       {"request", id},
                       {"file", 1},
                       {"decision", "reject"},
                       {"comment", "the yearbook rounds these cells; publish the safe version"}});
  auto done = state_of(id, "steve", "released");
  EXPECT_EQ(done["files"][1]["status"], "rejected");
  // The analyst is told why.
  auto seen = ok("export.status", {{"token", s.token}, {"request", id}});
  EXPECT_THAT(seen["files"][1]["decisions"][0]["comment"].get<std::string>(),
              HasSubstr("yearbook"));
}

TEST_F(ExportEndToEnd, FourEyesOtherProjectsAndTamperingAreRefusedAndAudited) {
  auto s = session("sam", "claims");
  put(s, "outpatients_by_region.csv");
  auto id = submit(s, {"outpatients_by_region.csv"}, "Table 1");
  ASSERT_EQ(checked(s, id)["state"], "waiting_review");
  auto own =
      call("export.decide", {{"as", "sam"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  ASSERT_FALSE(own);
  EXPECT_EQ(own.error().code, Errc::kPermission);
  EXPECT_THAT(own.error().message, HasSubstr("never reviews their own request"));
  auto other = call("export.decide",
                    {{"as", "olga"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  ASSERT_FALSE(other);
  EXPECT_THAT(other.error().message, HasSubstr("not a member of project p-1"));
  EXPECT_FALSE(call("export.show", {{"as", "olga"}, {"request", id}}));
  auto unknown =
      call("export.decide",
           {{"as", "steve"}, {"request", "R-999"}, {"file", 0}, {"decision", "approve"}});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().code, Errc::kNotFound);

  // Someone changes the submitted copy on the center's disk: no decision goes through.
  const auto number = id.substr(2);
  const fs::path copy = state() / "exitcontrol" / "spool" / number / "outpatients_by_region.csv";
  ASSERT_TRUE(fs::exists(copy));
  std::ofstream(copy, std::ios::app) << "Okinawa,99\n";
  auto tampered = call("export.decide",
                       {{"as", "steve"}, {"request", id}, {"file", 0}, {"decision", "approve"}});
  ASSERT_FALSE(tampered);
  EXPECT_EQ(tampered.error().code, Errc::kCorrupt);
  EXPECT_THAT(tampered.error().message, HasSubstr("changed after submission"));
  EXPECT_EQ(ok("export.show", {{"as", "steve"}, {"request", id}})["state"], "failed");

  EXPECT_TRUE(services_->wait_event("export.tampered", id));
  for (const char* needle : {"never reviews their own", "not a member of project p-1", "R-999"}) {
    EXPECT_TRUE(services_->wait_event("export.refused", needle)) << needle;
  }
  // A forged token is no session at all.
  auto forged = call("export.submit", {{"token", std::string(64, 'a')},
                                       {"files", {"outpatients_by_region.csv"}},
                                       {"justification", "x"}});
  ASSERT_FALSE(forged);
  EXPECT_EQ(forged.error().code, Errc::kPermission);
}

TEST_F(ExportEndToEnd, LinksExpireAndKeysRotateAndDestroy) {
  auto s = session("ana", "claims");
  auto request = released(s, "outpatients_by_region.csv", "Table 1");
  ASSERT_EQ(request["state"], "released");
  const std::string id = request.value("request", "");

  auto brief = ok("export.link", {{"as", "steve"}, {"request", id}, {"ttl_s", 1}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto late = curl(brief.value("url", ""), dir_ / "late.tar");
  EXPECT_EQ(late.out, "410");
  EXPECT_TRUE(services_->wait_event("export.download.refused", "expired"));

  // A new project key: the release still opens under it, and the old key file is gone.
  const fs::path keys = state() / "keys" / "exports" / "p-1";
  const auto before = std::distance(fs::directory_iterator(keys), fs::directory_iterator());
  EXPECT_EQ(before, 1);
  auto rotated = ok("export.key.rotate", {{"as", "otto"}, {"project", "p-1"}});
  EXPECT_EQ(rotated["rewrapped"], 1);
  EXPECT_FALSE(call("export.key.rotate", {{"as", "steve"}, {"project", "p-1"}}));
  auto fresh = ok("export.link", {{"as", "steve"}, {"request", id}});
  auto got = curl(fresh.value("url", ""), dir_ / "after-rotation.tar");
  EXPECT_EQ(got.out, "200") << got.err;

  // Destroyed: the keys are gone and no link can be made or used.
  auto unused = ok("export.link", {{"as", "steve"}, {"request", id}});
  EXPECT_FALSE(call("export.project.destroy", {{"as", "otto"}, {"project", "p-1"}}));
  ok("export.project.destroy", {{"as", "otto"}, {"project", "p-1"}, {"confirm", "p-1"}});
  EXPECT_FALSE(fs::exists(keys));
  EXPECT_EQ(curl(unused.value("url", ""), dir_ / "gone.tar").out, "410");
  EXPECT_FALSE(call("export.link", {{"as", "steve"}, {"request", id}}));
  EXPECT_TRUE(services_->wait_event("export.project.destroyed", "p-1"));
}

// A released table enters the project's ledger, and the engine checks later requests of the
// project against it: a table that differs from the released one by a small group fails.
TEST_F(ExportEndToEnd, LaterRequestsAreCheckedAgainstTheProjectsReleases) {
  auto s = session("ana", "claims");
  ASSERT_EQ(released(s, "outpatients_by_region.csv", "Table 1")["state"], "released");

  // Alone the adults' table passes (the tools' tests show it); after the release it does not.
  put(s, "outpatients_adults_by_region.csv");
  auto later = submit(s, {"outpatients_adults_by_region.csv"}, "Table 1, adults only");
  auto r = checked(s, later);
  ASSERT_EQ(r["files"][0]["outcome"], "fail") << r.dump();
  auto shown = ok("export.show", {{"as", "steve"}, {"request", later}});
  const std::string report = shown["files"][0]["report"].dump();
  EXPECT_THAT(report, HasSubstr("differencing"));
  EXPECT_THAT(report, HasSubstr("Akita"));
}

// Listings come in pages that always fit one answer: "total" counts the whole queue, "next"
// names where the next page starts; justifications are cut in the list and whole in show.
TEST_F(ExportEndToEnd, TheQueueComesInPages) {
  auto s = session("ana", "claims");
  const std::string long_justification = "Tables for the paper: " + std::string(300, 'x');
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "t" + std::to_string(i) + ".csv";
    fs::copy_file(kExamples / "outpatients_by_region.csv", s.outbox / name);
    fs::copy_file(kExamples / "outpatients_by_region.csv.meta.toml",
                  s.outbox / (name + ".meta.toml"));
    ids.push_back(submit(s, {name}, long_justification));
  }
  for (const auto& id : ids) ASSERT_EQ(checked(s, id)["state"], "waiting_review");

  auto first = ok("export.queue", {{"as", "steve"}, {"limit", 2}});
  ASSERT_EQ(first["requests"].size(), 2u) << first.dump();
  EXPECT_EQ(first["total"], 3);
  EXPECT_EQ(first["next"], ids[1]);
  const std::string listed = first["requests"][0].value("justification", "");
  EXPECT_LE(listed.size(), 200u);
  EXPECT_THAT(listed, ::testing::EndsWith("…"));
  EXPECT_EQ(ok("export.show", {{"as", "steve"}, {"request", ids[0]}})["justification"],
            long_justification);
  auto second = ok("export.queue", {{"as", "steve"}, {"limit", 2}, {"after", first["next"]}});
  ASSERT_EQ(second["requests"].size(), 1u) << second.dump();
  EXPECT_EQ(second["requests"][0]["request"], ids[2]);
  EXPECT_EQ(second["total"], 3);
  EXPECT_FALSE(second.contains("next"));
  for (const json& bad : {json{{"limit", 0}}, json{{"limit", 1001}}, json{{"after", "R-x"}}}) {
    json params = bad;
    params["as"] = "steve";
    auto refused = call("export.queue", params);
    ASSERT_FALSE(refused) << bad.dump();
    EXPECT_EQ(refused.error().code, Errc::kInvalidArgument);
  }
  // The analyst's own list pages the same way.
  auto mine = ok("export.status", {{"token", s.token}, {"limit", 1}, {"after", ids[0]}});
  ASSERT_EQ(mine["requests"].size(), 1u);
  EXPECT_EQ(mine["requests"][0]["request"], ids[1]);
  EXPECT_EQ(mine["total"], 3);
  EXPECT_EQ(mine["next"], ids[1]);

  auto page = services_->tool("enclavectl", {"export", "queue", "--as", "steve", "--limit", "2"});
  ASSERT_EQ(page.exit_code, 0) << page.err;
  EXPECT_THAT(page.out, HasSubstr("2 of 3 requests; the next page: --after " + ids[1]));
}

// Retention, applied when enclave-exportd starts (and hourly): a sealed bundle released more
// than retention_days (90) ago is deleted and its links stop working; a younger one stays. The
// releases' ages are set in exports.db while exportd is stopped, as if the clock had moved on.
TEST_F(ExportEndToEnd, RetentionDeletesBundlesPastTheirDaysAtStart) {
  auto s = session("ana", "claims");
  std::vector<std::string> releases;
  for (const std::string title : {"Table 1", "Table 2"}) {
    auto request = released(s, "outpatients_by_region.csv", title);
    ASSERT_EQ(request["state"], "released");
    releases.push_back(request.value("release", ""));
  }
  ASSERT_EQ(releases.size(), 2u);
  ASSERT_NE(releases[0], releases[1]);
  const fs::path bundles = state() / "exitcontrol" / "releases" / "p-1";
  ASSERT_TRUE(fs::exists(bundles / (releases[0] + ".sealed")));
  ASSERT_TRUE(fs::exists(bundles / (releases[1] + ".sealed")));
  auto old_link = ok("export.link", {{"as", "steve"}, {"request", "R-1"}}).value("url", "");

  exportd_->signal(SIGTERM);
  ASSERT_EQ(exportd_->wait(), 0) << exportd_->stderr_text();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((state() / "exitcontrol" / "exports.db").c_str(), &db), SQLITE_OK);
  const std::string age =
      "UPDATE releases SET created_ms = created_ms - 86400000 * CASE id WHEN '" + releases[0] +
      "' THEN 91 ELSE 89 END";
  EXPECT_EQ(sqlite3_exec(db, age.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  exportd_ = std::make_unique<testing::Child>(
      std::vector<std::string>{testing::binary("enclave-exportd").string(), "run"},
      services_->env(), dir_.path());
  ASSERT_TRUE(testing::wait_for_path(state() / "run" / "exportd.sock")) << exportd_->stderr_text();

  EXPECT_TRUE(services_->wait_event("export.retention", releases[0]));
  auto listed = ok("export.releases", {{"as", "steve"}, {"project", "p-1"}})["releases"];
  ASSERT_EQ(listed.size(), 2u) << listed.dump();
  std::map<std::string, std::string> states;
  for (const auto& r : listed) states[r.value("release", "")] = r.value("state", "");
  EXPECT_EQ(states[releases[0]], "deleted");
  EXPECT_EQ(states[releases[1]], "sealed");
  EXPECT_FALSE(fs::exists(bundles / (releases[0] + ".sealed")));
  EXPECT_TRUE(fs::exists(bundles / (releases[1] + ".sealed")));
  EXPECT_EQ(curl(old_link, dir_ / "expired-bundle.tar").out, "410");
  auto relink = call("export.link", {{"as", "steve"}, {"request", "R-1"}});
  ASSERT_FALSE(relink);
  EXPECT_THAT(relink.error().message, HasSubstr("deleted"));
  auto young = ok("export.link", {{"as", "steve"}, {"request", "R-2"}}).value("url", "");
  EXPECT_EQ(curl(young, dir_ / "young.tar").out, "200");
}

// The same workflow through the people's tools: enclave-export inside the desktop (its outbox
// from ENCLAVE_OUTBOX), enclavectl export for the steward.
TEST_F(ExportEndToEnd, TheAnalystsAndStewardsToolsDriveIt) {
  auto s = session("ana", "claims");
  put(s, "outpatients_by_region.csv");
  auto env = services_->env();
  env["ENCLAVE_OUTBOX"] = s.outbox.string();
  auto tool = [&](const std::string& name, std::vector<std::string> args) {
    args.insert(args.begin(), testing::binary(name).string());
    return testing::run(args, env);
  };
  auto asked = tool("enclave-export", {"request", "outpatients_by_region.csv", "--justification",
                                       "Table 1", "--wait", "--json"});
  ASSERT_EQ(asked.exit_code, 0) << asked.out << asked.err;
  auto request = json::parse(asked.out, nullptr, false);
  ASSERT_TRUE(request.is_object()) << asked.out;
  EXPECT_EQ(request["state"], "waiting_review");
  EXPECT_EQ(request["reason"], "waiting for a steward to decide on each file");
  const std::string id = request.value("request", "");

  auto own = tool("enclavectl", {"export", "approve", id, "0", "--as", "ana"});
  EXPECT_NE(own.exit_code, 0);
  EXPECT_THAT(own.err, HasSubstr("not a data steward"));
  auto queue = tool("enclavectl", {"export", "queue", "--as", "steve"});
  ASSERT_EQ(queue.exit_code, 0) << queue.err;
  EXPECT_THAT(queue.out, HasSubstr(id));
  auto approved = tool("enclavectl", {"export", "approve", id, "outpatients_by_region.csv", "--as",
                                      "steve", "--comment", "fine"});
  ASSERT_EQ(approved.exit_code, 0) << approved.out << approved.err;
  state_of(id, "steve", "released");
  auto status = tool("enclave-export", {"status", id});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_THAT(status.out, HasSubstr("released"));
  auto link = tool("enclavectl", {"export", "link", id, "--as", "steve", "--json"});
  ASSERT_EQ(link.exit_code, 0) << link.err;
  auto url = json::parse(link.out, nullptr, false).value("url", "");
  EXPECT_EQ(curl(url, dir_ / "tools.tar").out, "200");
}

}  // namespace
}  // namespace enclave::exitcontrol
