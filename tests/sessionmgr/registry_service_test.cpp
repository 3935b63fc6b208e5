// The registry's methods over a real registry.db, a real local CA and a real print vault, with
// the audit log recorded in memory: every change audited with the operator before it commits
// (and none made while the log is down), every refusal audited, the steward rule, no
// self-approval, devices that must chain to the CA, the pool table and its version.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/login/assertion.hpp"
#include "common/x509.hpp"
#include "sessionmgr/service/methods.hpp"
#include "sessionmgr/service/registry_service.hpp"
#include "tests/sessionmgr/recording_audit.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using testing::TempDir;
namespace m = methods;

class Registry : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(x509::create_ca(ca_cert(), dir_ / "keys/ca/ca.key", "test CA"));
    auto ca = x509::CertificateAuthority::load(ca_cert(), dir_ / "keys/ca/ca.key");
    ASSERT_TRUE(ca);
    ca_ = std::make_unique<x509::CertificateAuthority>(std::move(ca).value());
    RegistryOptions options{dir_ / "registry.db",
                            dir_ / "keys/prints.key",
                            ca_cert(),
                            {"claims-internal", "demo-shadow"}};
    RegistryDeps deps{&audit_, [this] { return now_; }, {}};
    auto r = RegistryService::open(options, deps);
    ASSERT_TRUE(r) << r.error().describe();
    registry_ = std::move(r).value();
  }

  std::filesystem::path ca_cert() const { return dir_ / "keys/ca/ca.crt"; }

  Expected<json> call(const std::string& method, json params, const std::string& by = "op") {
    return registry_->call(method, params, by);
  }
  json ok(const std::string& method, json params, const std::string& by = "op") {
    auto r = call(method, params, by);
    EXPECT_TRUE(r) << method << " " << params.dump() << ": " << r.error().describe();
    return r ? *r : json();
  }
  Error refused(const std::string& method, json params, const std::string& by = "op") {
    auto r = call(method, params, by);
    EXPECT_FALSE(r) << method << " " << params.dump() << " succeeded";
    return r ? Error{} : r.error();
  }
  std::int64_t version() { return ok(m::kRegistryPools, json::object())["version"]; }

  std::string device_pem(const std::string& cn) {
    return ca_->issue({x509::Purpose::kClient, cn, {}, {}, 30}).value().certificate_pem;
  }

  // alice (analyst), sam (steward), room-a approved with 10.8.0.0/24, kiosk-a1 there.
  void populate() {
    ok(m::kRegistryUserAdd, {{"user", "alice"}, {"name", "Alice"}, {"roles", {"analyst"}}});
    ok(m::kRegistryUserAdd, {{"user", "sam"}, {"roles", {"steward", "auditor"}}});
    ok(m::kRegistrySiteAdd, {{"site", "room-a"},
                             {"name", "Room A"},
                             {"ike_identity", "room-a.example"},
                             {"pools", {"10.8.0.0/24"}}});
    ok(m::kRegistrySiteApprove,
       {{"site", "room-a"}, {"audited", "2026-11-01"}, {"expires", "2027-11-01"}});
    ok(m::kRegistryDeviceAdd,
       {{"device", "kiosk-a1"}, {"site", "room-a"}, {"certificate", device_pem("kiosk-a1")}});
  }

  TempDir dir_;
  FakeAudit audit_;
  TimePoint now_ = *registry::parse_time("2026-11-30T09:00:00Z");
  std::unique_ptr<x509::CertificateAuthority> ca_;
  std::unique_ptr<RegistryService> registry_;
};

TEST_F(Registry, ChangesAreAuditedWithTheOperator) {
  auto user = ok(m::kRegistryUserAdd,
                 {{"user", "alice"}, {"name", "Alice Analyst"}, {"roles", {"analyst"}}}, "opal");
  EXPECT_EQ(user["roles"], json::array({"analyst"}));
  auto added = audit_.of_type("registry.user.added");
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0]["actor"], "opal");
  EXPECT_EQ(added[0]["outcome"], "success");
  EXPECT_EQ(added[0]["object"], "alice");
  EXPECT_EQ(added[0]["details"]["roles"], json::array({"analyst"}));

  ok(m::kRegistryUserSetRoles, {{"user", "alice"}, {"roles", {"analyst", "site_manager"}}});
  auto set = audit_.of_type("registry.user.roles_set");
  ASSERT_EQ(set.size(), 1u);
  EXPECT_EQ(set[0]["details"]["previous"], json::array({"analyst"}));
  ok(m::kRegistryUserDisable, {{"user", "alice"}});
  EXPECT_EQ(audit_.of_type("registry.user.disabled").size(), 1u);
  auto users = ok(m::kRegistryUserList, json::object())["users"];
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0]["disabled"], true);
  EXPECT_EQ(users[0]["roles"], json::array({"analyst", "site_manager"}));
  EXPECT_EQ(version(), 3);
}

TEST_F(Registry, NoChangeWhileTheAuditLogIsDownOrDoesNotRecordIt) {
  audit_.healthy_ = false;
  auto down = refused(m::kRegistryUserAdd, {{"user", "alice"}, {"roles", {"analyst"}}});
  EXPECT_EQ(down.code, Errc::kUnavailable);
  audit_.healthy_ = true;
  audit_.accept_sync_ = false;
  auto unrecorded = refused(m::kRegistryUserAdd, {{"user", "alice"}, {"roles", {"analyst"}}});
  EXPECT_EQ(unrecorded.code, Errc::kUnavailable);
  EXPECT_THAT(unrecorded.message, HasSubstr("did not record the change"));
  audit_.accept_sync_ = true;
  EXPECT_TRUE(ok(m::kRegistryUserList, json::object())["users"].empty()) << "rolled back";
  EXPECT_EQ(version(), 0);
  EXPECT_EQ(audit_.of_type("registry.failed").size(), 2u);
  EXPECT_TRUE(audit_.of_type("registry.user.added").empty());
}

TEST_F(Registry, RefusalsAreAuditedAndNameWhatWasWrong) {
  populate();
  const std::int64_t before = version();
  struct Case {
    const char* method;
    json params;
    Errc code;
    const char* says;
  };
  const std::vector<Case> cases = {
      {m::kRegistryUserAdd, {{"user", "Alice"}}, Errc::kInvalidArgument, "is not a user id"},
      {m::kRegistryUserAdd, {{"user", "alice"}}, Errc::kAlreadyExists, "user alice exists"},
      {m::kRegistryUserAdd,
       {{"user", "bob"}, {"roles", {"admin"}}},
       Errc::kInvalidArgument,
       "unknown role \"admin\""},
      {m::kRegistryUserDisable, {{"user", "nobody"}}, Errc::kNotFound, "no user nobody"},
      {m::kRegistrySiteAdd,
       {{"site", "room-b"}, {"name", "B"}, {"ike_identity", "b"}, {"pools", {"10.8.0.128/25"}}},
       Errc::kConflict,
       "overlaps 10.8.0.0/24 of site room-a"},
      {m::kRegistrySiteAdd,
       {{"site", "room-b"}, {"name", "B"}, {"ike_identity", "b"}, {"pools", {"10.9.0.1/24"}}},
       Errc::kInvalidArgument,
       "bits beyond the prefix are set"},
      {m::kRegistrySiteAdd,
       {{"site", "room-b"}, {"name", "B"}, {"ike_identity", "b"}, {"pools", {"0.0.0.0/0"}}},
       Errc::kInvalidArgument,
       "would hold every address"},
      {m::kRegistrySiteAdd,
       {{"site", "room-b"}, {"name", "B"}, {"ike_identity", "b"}},
       Errc::kInvalidArgument,
       "a site needs a pool"},
      {m::kRegistrySiteApprove,
       {{"site", "room-a"}, {"expires", "2027-02-30"}},
       Errc::kInvalidArgument,
       "\"expires\": expected a date"},
      {m::kRegistrySiteApprove,
       {{"site", "room-a"}, {"expires", "2026-11-29"}},
       Errc::kInvalidArgument,
       "must be after the audit date and after now"},
      {m::kRegistrySiteSuspend, {{"site", "room-z"}}, Errc::kNotFound, "no site room-z"},
      {m::kRegistryProjectAdd,
       {{"project", "p"},
        {"title", "T"},
        {"valid_from", "2027-01-01"},
        {"valid_until", "2026-01-01"}},
       Errc::kInvalidArgument,
       "is not after valid_from"},
  };
  for (const auto& c : cases) {
    auto e = refused(c.method, c.params, "opal");
    EXPECT_EQ(e.code, c.code) << c.method << " " << c.params.dump() << ": " << e.message;
    EXPECT_THAT(e.message, HasSubstr(c.says)) << c.method;
  }
  auto refusals = audit_.of_type("registry.refused");
  ASSERT_EQ(refusals.size(), cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(refusals[i]["outcome"], "refused");
    EXPECT_EQ(refusals[i]["actor"], "opal");
    EXPECT_EQ(refusals[i]["details"]["method"], cases[i].method);
    EXPECT_THAT(refusals[i]["details"]["reason"].get<std::string>(), HasSubstr(cases[i].says));
  }
  EXPECT_EQ(refusals[1]["object"], "alice");
  EXPECT_EQ(refusals[4]["site"], "room-b");
  EXPECT_EQ(version(), before) << "no refusal changed anything";
}

TEST_F(Registry, SiteLifecycleAndThePoolTable) {
  populate();
  ok(m::kRegistrySiteAdd, {{"site", "room-b"},
                           {"name", "Room B"},
                           {"ike_identity", "CN=room b"},
                           {"site_class", "partner-room"},
                           {"pools", {"2001:db8:5::/64"}}});
  auto pools = ok(m::kRegistryPools, json::object());
  ASSERT_EQ(pools["sites"].size(), 1u) << "room-b is only registered";
  EXPECT_EQ(
      pools["sites"][0],
      json({{"site", "room-a"}, {"ike_identity", "room-a.example"}, {"pools", {"10.8.0.0/24"}}}));
  EXPECT_TRUE(pools["revoked_certificates"].empty());

  std::int64_t v = pools["version"];
  auto b = ok(m::kRegistrySiteApprove, {{"site", "room-b"}, {"expires", "2026-12-01"}});
  EXPECT_EQ(b["state"], "approved");
  EXPECT_EQ(b["audited_at"], "2026-11-30T09:00:00Z") << "the audit date defaults to now";
  EXPECT_EQ(b["may_log_in"], true);
  EXPECT_GT(version(), v);
  EXPECT_EQ(ok(m::kRegistryPools, json::object())["sites"].size(), 2u);

  ok(m::kRegistrySiteSuspend, {{"site", "room-a"}, {"reason", "audit finding"}});
  auto suspended = audit_.of_type("registry.site.suspended");
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(suspended[0]["site"], "room-a");
  EXPECT_EQ(suspended[0]["details"]["reason"], "audit finding");
  EXPECT_EQ(suspended[0]["details"]["previous_state"], "approved");
  pools = ok(m::kRegistryPools, json::object());
  ASSERT_EQ(pools["sites"].size(), 1u);
  EXPECT_EQ(pools["sites"][0]["site"], "room-b");
  ok(m::kRegistrySiteRevoke, {{"site", "room-a"}});
  auto final_state =
      refused(m::kRegistrySiteApprove, {{"site", "room-a"}, {"expires", "2028-01-01"}});
  EXPECT_EQ(final_state.code, Errc::kConflict);

  // room-b lapses on 2026-12-01: gone from the table at once, noted (and versioned) by tick.
  now_ = *registry::parse_time("2026-12-01T00:00:01Z");
  v = version();
  EXPECT_TRUE(ok(m::kRegistryPools, json::object())["sites"].empty());
  audit_.healthy_ = false;
  registry_->tick();
  EXPECT_TRUE(audit_.of_type("registry.site.lapsed").empty()) << "noted once the log is back";
  audit_.healthy_ = true;
  registry_->tick();
  auto lapsed = audit_.of_type("registry.site.lapsed");
  ASSERT_EQ(lapsed.size(), 1u);
  EXPECT_EQ(lapsed[0]["site"], "room-b");
  EXPECT_EQ(lapsed[0]["outcome"], "info");
  EXPECT_EQ(lapsed[0]["actor_kind"], "service");
  EXPECT_EQ(version(), v + 1);
  registry_->tick();
  EXPECT_EQ(audit_.of_type("registry.site.lapsed").size(), 1u) << "noted once";
  auto sites = ok(m::kRegistrySiteList, json::object())["sites"];
  EXPECT_EQ(sites[1]["state"], "approved");
  EXPECT_EQ(sites[1]["may_log_in"], false);
  EXPECT_EQ(sites[1]["site_class"], "partner-room");
}

TEST_F(Registry, DevicesMustChainToTheLocalCa) {
  populate();
  auto listed = ok(m::kRegistryDeviceList, json::object())["devices"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["public_key"].get<std::string>().size(), 64u);
  EXPECT_EQ(listed[0]["state"], "active");

  TempDir other;
  ASSERT_TRUE(x509::create_ca(other / "ca.crt", other / "ca.key", "test CA"));
  auto foreign_ca = x509::CertificateAuthority::load(other / "ca.crt", other / "ca.key");
  const std::string foreign =
      foreign_ca->issue({x509::Purpose::kClient, "kiosk-x", {}, {}, 30})->certificate_pem;
  auto e = refused(m::kRegistryDeviceAdd,
                   {{"device", "kiosk-x"}, {"site", "room-a"}, {"certificate", foreign}});
  EXPECT_EQ(e.code, Errc::kPermission);
  EXPECT_THAT(e.message, HasSubstr("does not verify against the CA"));
  e = refused(m::kRegistryDeviceAdd,
              {{"device", "kiosk-y"}, {"site", "room-a"}, {"certificate", device_pem("kiosk-z")}});
  EXPECT_THAT(e.message, HasSubstr("the certificate's CN \"kiosk-z\" is not the device id"));
  const std::string server =
      ca_->issue({x509::Purpose::kServer, "kiosk-s", {"kiosk-s"}, {}, 30})->certificate_pem;
  EXPECT_EQ(refused(m::kRegistryDeviceAdd,
                    {{"device", "kiosk-s"}, {"site", "room-a"}, {"certificate", server}})
                .code,
            Errc::kPermission)
      << "a server certificate is no device certificate";
  EXPECT_EQ(
      refused(m::kRegistryDeviceAdd,
              {{"device", "kiosk-q"}, {"site", "room-q"}, {"certificate", device_pem("kiosk-q")}})
          .code,
      Errc::kNotFound);
  EXPECT_EQ(
      refused(m::kRegistryDeviceAdd,
              {{"device", "kiosk-a1"}, {"site", "room-a"}, {"certificate", device_pem("kiosk-a1")}})
          .code,
      Errc::kAlreadyExists);
  auto refusals = audit_.of_type("registry.refused");
  ASSERT_EQ(refusals.size(), 5u);
  EXPECT_EQ(refusals[0]["device"], "kiosk-x");

  // A site that is only registered may receive devices; a revoked one may not.
  ok(m::kRegistrySiteAdd,
     {{"site", "room-b"}, {"name", "B"}, {"ike_identity", "b"}, {"pools", {"10.9.0.0/24"}}});
  ok(m::kRegistryDeviceAdd,
     {{"device", "kiosk-b1"}, {"site", "room-b"}, {"certificate", device_pem("kiosk-b1")}});
  ok(m::kRegistrySiteRevoke, {{"site", "room-b"}});
  EXPECT_EQ(
      refused(m::kRegistryDeviceAdd,
              {{"device", "kiosk-b2"}, {"site", "room-b"}, {"certificate", device_pem("kiosk-b2")}})
          .code,
      Errc::kConflict);

  // Revocation reaches the gateway's table.
  auto revoked = ok(m::kRegistryDeviceRevoke, {{"device", "kiosk-a1"}, {"reason", "stolen"}});
  EXPECT_EQ(revoked["state"], "revoked");
  auto pools = ok(m::kRegistryPools, json::object());
  EXPECT_EQ(pools["revoked_certificates"], json::array({listed[0]["certificate_sha256"]}));
  EXPECT_EQ(pools["revoked_serials"], json::array({listed[0]["serial"]}));
  auto event = audit_.of_type("registry.device.revoked");
  ASSERT_EQ(event.size(), 1u);
  EXPECT_EQ(event[0]["device"], "kiosk-a1");
  EXPECT_EQ(event[0]["site"], "room-a");
  EXPECT_EQ(event[0]["details"]["reason"], "stolen");
  EXPECT_EQ(refused(m::kRegistryDeviceRevoke, {{"device", "kiosk-a1"}}).code, Errc::kConflict);
}

TEST_F(Registry, EnrolmentNeedsAStewardWhoIsNotTheUser) {
  populate();
  ok(m::kRegistryUserAdd, {{"user", "sid"}, {"roles", {"analyst", "steward"}}});
  auto not_steward = refused(m::kRegistryEnrolmentApprove,
                             {{"user", "sid"}, {"device", "kiosk-a1"}, {"approver", "alice"}});
  EXPECT_EQ(not_steward.code, Errc::kPermission);
  EXPECT_EQ(not_steward.message, "approver alice does not hold the steward role");
  auto self = refused(m::kRegistryEnrolmentApprove,
                      {{"user", "sid"}, {"device", "kiosk-a1"}, {"approver", "sid"}});
  EXPECT_EQ(self.code, Errc::kPermission);
  EXPECT_EQ(self.message, "user sid cannot approve their own fingerprint enrolment");
  auto refusals = audit_.of_type("registry.refused");
  ASSERT_EQ(refusals.size(), 2u);
  EXPECT_EQ(refusals[1]["object"], "sid");
  EXPECT_EQ(refusals[1]["device"], "kiosk-a1");

  auto approved = ok(m::kRegistryEnrolmentApprove,
                     {{"user", "alice"}, {"device", "kiosk-a1"}, {"approver", "sam"}}, "opal");
  EXPECT_EQ(approved["state"], "approved");
  EXPECT_EQ(approved["approved_by"], "sam");
  auto event = audit_.of_type("registry.enrolment.approved");
  ASSERT_EQ(event.size(), 1u);
  EXPECT_EQ(event[0]["actor"], "opal");
  EXPECT_EQ(event[0]["details"]["approver"], "sam");
  EXPECT_EQ(refused(m::kRegistryEnrolmentApprove,
                    {{"user", "alice"}, {"device", "kiosk-a1"}, {"approver", "sam"}})
                .code,
            Errc::kConflict)
      << "already waiting for its print";
}

TEST_F(Registry, PrintsAreSealedForTheirUserAndReaderAndReplacedOnReEnrolment) {
  populate();
  const std::string print_a = base64_encode(as_bytes("serialised print A"));
  auto early = refused(m::kRegistryEnrolmentRecord,
                       {{"user", "alice"}, {"device", "kiosk-a1"}, {"print", print_a}}, "gw");
  EXPECT_EQ(early.code, Errc::kPermission);
  EXPECT_THAT(early.message, HasSubstr("a steward approves it first"));

  ok(m::kRegistryEnrolmentApprove,
     {{"user", "alice"}, {"device", "kiosk-a1"}, {"approver", "sam"}});
  auto first = ok(m::kRegistryEnrolmentRecord,
                  {{"user", "alice"}, {"device", "kiosk-a1"}, {"print", print_a}}, "gw");
  const std::string first_id = first["print_id"];
  EXPECT_EQ(first_id.size(), 34u);
  EXPECT_EQ(first["enrolment"]["state"], "enrolled");
  auto recorded = audit_.of_type("registry.enrolment.recorded");
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0]["actor"], "alice");
  EXPECT_EQ(recorded[0]["details"]["by"], "gw");
  EXPECT_EQ(refused(m::kRegistryEnrolmentRecord,
                    {{"user", "alice"}, {"device", "kiosk-a1"}, {"print", print_a}}, "gw")
                .code,
            Errc::kPermission)
      << "one print per approval";

  // What the PAM module reads: a ciphertext that opens only for (alice, kiosk-a1, its id).
  auto db = registry::open_registry_database(dir_ / "registry.db", store::Access::kReadOnly);
  ASSERT_TRUE(db);
  auto vault = PrintVault::load(dir_ / "keys/prints.key", PrintVault::KeyFile::kMustExist);
  ASSERT_TRUE(vault);
  auto stored = registry::enrolled_prints(*db, "alice", "kiosk-a1");
  ASSERT_TRUE(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].print_id, first_id);
  EXPECT_EQ(as_chars(vault->open((*stored)[0].ciphertext, {"alice", "kiosk-a1", first_id}).value()),
            "serialised print A");
  EXPECT_FALSE(vault->open((*stored)[0].ciphertext, {"sam", "kiosk-a1", first_id}));

  // Re-enrolment: the old print works until the new one is recorded, then only the new.
  ok(m::kRegistryEnrolmentApprove,
     {{"user", "alice"}, {"device", "kiosk-a1"}, {"approver", "sam"}});
  EXPECT_EQ(audit_.of_type("registry.enrolment.approved")[1]["details"]["re_enrolment"], true);
  EXPECT_EQ(registry::enrolled_prints(*db, "alice", "kiosk-a1")->size(), 1u);
  auto second = ok(m::kRegistryEnrolmentRecord,
                   {{"user", "alice"},
                    {"device", "kiosk-a1"},
                    {"print", base64_encode(as_bytes("serialised print B"))}},
                   "gw");
  stored = registry::enrolled_prints(*db, "alice", "kiosk-a1");
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].print_id, second["print_id"]);
  EXPECT_EQ(audit_.of_type("registry.enrolment.recorded")[1]["details"]["replaced"], first_id);

  auto revoked = ok(m::kRegistryEnrolmentRevoke, {{"user", "alice"}, {"device", "kiosk-a1"}});
  EXPECT_EQ(revoked["state"], "revoked");
  EXPECT_EQ(audit_.of_type("registry.enrolment.revoked")[0]["details"]["prints_revoked"], 1);
  EXPECT_TRUE(registry::enrolled_prints(*db, "alice", "kiosk-a1")->empty());
  EXPECT_EQ(refused(m::kRegistryEnrolmentRevoke, {{"user", "alice"}, {"device", "kiosk-a1"}}).code,
            Errc::kNotFound);
  auto list = ok(m::kRegistryEnrolmentList, {{"user", "alice"}})["enrolments"];
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["state"], "revoked");
  EXPECT_EQ(refused(m::kRegistryEnrolmentRecord,
                    {{"user", "alice"}, {"device", "kiosk-a1"}, {"print", "not base64!"}}, "gw")
                .code,
            Errc::kInvalidArgument);
  // No print larger than a fingerprint challenge can carry down at login.
  const Bytes too_large(login::kMaxPrintBytes + 1, 0x5a);
  auto large = refused(
      m::kRegistryEnrolmentRecord,
      {{"user", "alice"}, {"device", "kiosk-a1"}, {"print", base64_encode(too_large)}}, "gw");
  EXPECT_EQ(large.code, Errc::kInvalidArgument);
  EXPECT_THAT(large.message, HasSubstr("1 to 40960 bytes"));
}

TEST_F(Registry, AnApprovalLetsTheKioskEnrolOnlyWithinTheWindowAndApprovingAgainRenewsIt) {
  populate();
  const json alice_on_a1 = {{"user", "alice"}, {"device", "kiosk-a1"}};
  json approve = alice_on_a1;
  approve["approver"] = "sam";
  json record = alice_on_a1;
  record["print"] = base64_encode(as_bytes("serialised print A"));

  auto approved = ok(m::kRegistryEnrolmentApprove, approve);
  EXPECT_EQ(approved["approval_expires_at"], "2026-11-30T09:30:00Z") << "the default 30 minutes";
  EXPECT_EQ(audit_.of_type("registry.enrolment.approved")[0]["details"]["expires_at"],
            "2026-11-30T09:30:00Z");
  now_ += 1799s;
  auto still_open = refused(m::kRegistryEnrolmentApprove, approve);
  EXPECT_EQ(still_open.code, Errc::kConflict);
  EXPECT_THAT(still_open.message, HasSubstr("awaiting its print until 2026-11-30T09:30:00Z"));

  now_ += 1s;
  auto expired = refused(m::kRegistryEnrolmentRecord, record, "gw");
  EXPECT_EQ(expired.code, Errc::kPermission);
  EXPECT_EQ(expired.message,
            "the enrolment approval of alice on kiosk-a1 expired at 2026-11-30T09:30:00Z; a "
            "steward must approve again");
  auto refusal = audit_.of_type("registry.refused").back();
  EXPECT_EQ(refusal["details"]["method"], m::kRegistryEnrolmentRecord);
  EXPECT_THAT(refusal["details"]["reason"].get<std::string>(), HasSubstr("expired at"));
  EXPECT_EQ(refusal["actor"], "alice");
  EXPECT_EQ(refusal["device"], "kiosk-a1");
  EXPECT_EQ(ok(m::kRegistryEnrolmentList, {{"user", "alice"}})["enrolments"][0]["state"],
            "approved")
      << "an expired approval records nothing";

  auto renewed = ok(m::kRegistryEnrolmentApprove, approve);
  EXPECT_EQ(renewed["approval_expires_at"], "2026-11-30T10:00:00Z");
  auto event = audit_.of_type("registry.enrolment.approved").back();
  EXPECT_EQ(event["details"]["expired_approval_at"], "2026-11-30T09:00:00Z");
  now_ += 1799s;
  auto enrolled = ok(m::kRegistryEnrolmentRecord, record, "gw");
  EXPECT_EQ(enrolled["enrolment"]["state"], "enrolled");
  EXPECT_TRUE(enrolled["enrolment"]["approval_expires_at"].is_null());
}

TEST_F(Registry, TheEnrolmentWindowIsTheOperatorsChoice) {
  registry_.reset();
  RegistryOptions options{dir_ / "registry.db", dir_ / "keys/prints.key", ca_cert(), {}};
  options.enrolment_window = 2min;
  auto reopened = RegistryService::open(options, {&audit_, [this] { return now_; }, {}});
  ASSERT_TRUE(reopened) << reopened.error().describe();
  registry_ = std::move(reopened).value();
  populate();
  ok(m::kRegistryEnrolmentApprove,
     {{"user", "alice"}, {"device", "kiosk-a1"}, {"approver", "sam"}});
  now_ += 2min;
  auto expired = refused(m::kRegistryEnrolmentRecord,
                         {{"user", "alice"},
                          {"device", "kiosk-a1"},
                          {"print", base64_encode(as_bytes("serialised print A"))}},
                         "gw");
  EXPECT_EQ(expired.code, Errc::kPermission);
  EXPECT_THAT(expired.message, HasSubstr("expired at 2026-11-30T09:02:00Z"));
}

TEST_F(Registry, ProjectsGrantCompartmentsTheSessionPolicyDefines) {
  populate();
  ok(m::kRegistryProjectAdd, {{"project", "claims-2026"},
                              {"title", "Claims study"},
                              {"valid_from", "2026-04-01"},
                              {"valid_until", "2027-04-01"}});
  ok(m::kRegistryProjectAddMember, {{"project", "claims-2026"}, {"user", "alice"}});
  EXPECT_EQ(
      refused(m::kRegistryProjectAddMember, {{"project", "claims-2026"}, {"user", "alice"}}).code,
      Errc::kAlreadyExists);
  EXPECT_EQ(
      refused(m::kRegistryProjectAddMember, {{"project", "claims-2026"}, {"user", "zed"}}).code,
      Errc::kNotFound);
  auto unknown =
      refused(m::kRegistryProjectGrant, {{"project", "claims-2026"}, {"compartment", "gold"}});
  EXPECT_EQ(unknown.code, Errc::kNotFound);
  EXPECT_EQ(unknown.message, "no compartment \"gold\" in sessions.toml");
  auto granted = ok(m::kRegistryProjectGrant,
                    {{"project", "claims-2026"}, {"compartment", "claims-internal"}});
  EXPECT_EQ(granted["compartments"], json::array({"claims-internal"}));
  EXPECT_EQ(granted["valid_now"], true);
  EXPECT_EQ(audit_.of_type("registry.project.granted")[0]["details"]["compartment"],
            "claims-internal");

  auto db = registry::open_registry_database(dir_ / "registry.db", store::Access::kReadOnly);
  EXPECT_EQ(registry::user_compartments(*db, "alice", now_).value(),
            std::set<std::string>{"claims-internal"});
  ok(m::kRegistryProjectRemoveMember, {{"project", "claims-2026"}, {"user", "alice"}});
  EXPECT_TRUE(registry::user_compartments(*db, "alice", now_).value().empty());
  EXPECT_EQ(audit_.of_type("registry.project.member_removed").size(), 1u);
  auto projects = ok(m::kRegistryProjectList, json::object())["projects"];
  ASSERT_EQ(projects.size(), 1u);
  EXPECT_TRUE(projects[0]["members"].empty());
}

}  // namespace
}  // namespace enclave::sessionmgr
