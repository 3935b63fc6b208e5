// The registry's word on a login (LoginAdmission) over a real registry.db, read through its own
// read-only connection while the store changes it: the kiosk before PAM (device, certificate,
// site state and approval, address), the compartment after.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sessionmgr/service/login_admission.hpp"
#include "sessionmgr/service/registry_store.hpp"
#include "tests/sessionmgr/registry_fixtures.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::HasSubstr;
using namespace registry;
using fixtures::at;
using fixtures::kNow;
using testing::TempDir;

class Admission : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RegistryStore::open(path());
    ASSERT_TRUE(s) << s.error().describe();
    store_ = std::make_unique<RegistryStore>(std::move(s).value());
    change([&]() -> Status {
      ENCLAVE_TRY(store_->insert_user({"alice", "Alice", {Role::kAnalyst}, false, kNow, kNow}));
      ENCLAVE_TRY(store_->insert_user({"bob", "Bob", {Role::kAnalyst}, false, kNow, kNow}));
      ENCLAVE_TRY(store_->insert_user({"carol", "Carol", {Role::kAnalyst}, false, kNow, kNow}));
      Site room = fixtures::site("room-a", {"10.8.0.0/24"}, "room-a.example");
      room.site_class = "security-room";
      EXPECT_TRUE(approve(room, at("2026-11-01"), at("2026-12-01"), kNow));
      ENCLAVE_TRY(store_->insert_site(room));
      ENCLAVE_TRY(store_->insert_device(fixtures::device("kiosk-1", "room-a", 'a')));
      ENCLAVE_TRY(store_->insert_project(
          {"claims", "Claims", at("2026-01-01"), at("2027-01-01"), {"alice", "bob"}, {"ndb"}},
          kNow));
      ENCLAVE_TRY(store_->insert_project(
          {"genomes", "Genomes", at("2026-01-01"), at("2027-01-01"), {"bob"}, {"tmm"}}, kNow));
      return {};
    });
    auto a = LoginAdmission::open(path(), [this] { return now_; });
    ASSERT_TRUE(a) << a.error().describe();
    admission_ = std::move(a).value();
  }

  std::filesystem::path path() const { return dir_ / "registry.db"; }
  void change(const std::function<Status()>& body) {
    auto done = store_->transaction(body);
    ASSERT_TRUE(done) << done.error().describe();
  }
  static LoginRequest request(const std::string& user = "alice",
                              const std::string& source = "10.8.0.7") {
    return {user, "kiosk-1", source, "", std::string(64, 'a')};
  }
  std::string refusal(const LoginRequest& r) {
    auto checked = admission_->check_device(r);
    EXPECT_FALSE(checked) << "accepted";
    if (checked) return "";
    EXPECT_EQ(checked.error().code, Errc::kPermission);
    return checked.error().message;
  }

  TempDir dir_;
  TimePoint now_ = kNow;
  std::unique_ptr<RegistryStore> store_;
  std::unique_ptr<LoginAdmission> admission_;
};

TEST_F(Admission, TheKittedKioskOfAnApprovedRoomInsideItsPoolIsAdmitted) {
  EXPECT_TRUE(admission_->check_device(request()));
  auto admitted = admission_->admit(request());
  ASSERT_TRUE(admitted) << admitted.error().describe();
  EXPECT_EQ(admitted->compartment, "ndb");
  EXPECT_EQ(admitted->site_class, "security-room");
}

TEST_F(Admission, EachKioskCheckNamesWhatSaidNo) {
  auto other_certificate = request();
  other_certificate.certificate_sha256 = std::string(64, 'b');
  EXPECT_THAT(refusal(other_certificate), HasSubstr("other than the one it was kitted with"));
  auto short_hash = request();
  short_hash.certificate_sha256 = "aa";
  EXPECT_THAT(refusal(short_hash), HasSubstr("other than the one it was kitted with"));
  auto unknown = request();
  unknown.device = "kiosk-9";
  EXPECT_THAT(refusal(unknown), HasSubstr("unknown device kiosk-9"));
  EXPECT_THAT(refusal(request("alice", "10.9.0.1")), HasSubstr("outside the pools of site room-a"));
  EXPECT_THAT(refusal(request("alice", "not-an-address")), HasSubstr("outside the pools"));

  now_ = at("2026-12-01T00:00:01Z");  // the approval lapsed
  EXPECT_THAT(refusal(request()), HasSubstr("approval has expired"));
  now_ = kNow;

  // Changes reach the admission's read-only connection at once.
  change([&]() -> Status {
    auto room = find_site(store_->database(), "room-a").value().value();
    EXPECT_TRUE(suspend(room, kNow));
    return store_->update_site(room);
  });
  EXPECT_THAT(refusal(request()), HasSubstr("site room-a is suspended"));
  change([&]() -> Status {
    auto n = store_->revoke_device("kiosk-1", "stolen", kNow);
    return n ? Status() : Status(error_of(n));
  });
  EXPECT_THAT(refusal(request()), HasSubstr("device kiosk-1 is revoked"));
}

TEST_F(Admission, TheCompartmentIsTheOneGrantedOrTheOneAskedFor) {
  auto several = admission_->admit(request("bob"));
  ASSERT_FALSE(several);
  EXPECT_THAT(several.error().message, HasSubstr("several compartments (ndb, tmm)"));
  auto named = request("bob");
  named.compartment = "tmm";
  ASSERT_TRUE(admission_->admit(named));
  EXPECT_EQ(admission_->admit(named)->compartment, "tmm");

  auto not_granted = request("alice");
  not_granted.compartment = "tmm";
  auto refused = admission_->admit(not_granted);
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().message, HasSubstr("no valid grant to compartment tmm"));

  auto none = admission_->admit(request("carol"));
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr("holds no compartment"));

  now_ = at("2027-01-02");  // every project ended (and the room's approval with them)
  EXPECT_FALSE(admission_->admit(request()));
}

}  // namespace
}  // namespace enclave::sessionmgr
