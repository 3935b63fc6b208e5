// registry.db: changes in transactions (all or nothing, each bumping the version), the lookups
// the PAM module and the gateway depend on, read through a second, read-only connection as the
// PAM module opens it: lapsed approval, suspended and revoked sites, revoked devices, prints,
// project validity.
#include <gtest/gtest.h>

#include "sessionmgr/core/lifecycle.hpp"
#include "sessionmgr/service/registry_store.hpp"
#include "tests/sessionmgr/registry_fixtures.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr::registry {
namespace {

using namespace std::chrono_literals;
using testing::TempDir;

using fixtures::at;
using fixtures::device;
using fixtures::kNow;
using fixtures::site;

IpAddress ip(const char* text) {
  return IpAddress::parse(text).value();
}

class RegistryDb : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = RegistryStore::open(path());
    ASSERT_TRUE(s) << s.error().describe();
    store_ = std::make_unique<RegistryStore>(std::move(s).value());
    auto r = open_registry_database(path(), store::Access::kReadOnly);
    ASSERT_TRUE(r) << r.error().describe();
    reader_ = std::make_unique<store::Database>(std::move(r).value());
  }

  std::filesystem::path path() const { return dir_ / "sessionmgr" / "registry.db"; }

  void change(const std::function<Status()>& body) {
    auto done = store_->transaction(body);
    ASSERT_TRUE(done) << done.error().describe();
  }

  std::int64_t version() { return registry_version(*reader_).value(); }

  // Two approved sites (one IPv6), their devices, two users and one enrolment with a print.
  void populate() {
    change([&]() -> Status {
      ENCLAVE_TRY(store_->insert_user({"alice", "Alice", {Role::kAnalyst}, false, kNow, kNow}));
      ENCLAVE_TRY(store_->insert_user({"sam", "Sam", {Role::kSteward}, false, kNow, kNow}));
      Site a = site("room-a", {"10.8.0.0/24", "10.9.0.0/24"}, "room-a.example");
      EXPECT_TRUE(approve(a, at("2026-11-01"), at("2027-11-01"), kNow));
      ENCLAVE_TRY(store_->insert_site(a));
      Site b = site("room-b", {"2001:db8:5::/64"}, "CN=room b");
      EXPECT_TRUE(approve(b, at("2026-01-01"), at("2026-12-01"), kNow));
      ENCLAVE_TRY(store_->insert_site(b));
      ENCLAVE_TRY(store_->insert_device(device("kiosk-a1", "room-a", 'a')));
      ENCLAVE_TRY(store_->insert_device(device("kiosk-b1", "room-b", 'b')));
      Enrolment e;
      e.user = "alice";
      e.device = "kiosk-a1";
      e.approved_by = "sam";
      e.approved_at = kNow;
      auto id = store_->insert_enrolment(e);
      if (!id) return error_of(id);
      enrolment_ = *id;
      return store_->insert_print("p-1", *id, Bytes{1, 2, 3}, kNow);
    });
  }

  TempDir dir_;
  std::unique_ptr<RegistryStore> store_;
  std::unique_ptr<store::Database> reader_;
  std::int64_t enrolment_ = 0;
};

TEST_F(RegistryDb, TheReadOnlyConnectionSeesCommittedChangesAndCannotWrite) {
  EXPECT_EQ(version(), 0);
  populate();
  EXPECT_EQ(version(), 1);
  auto alice = find_user(*reader_, "alice");
  ASSERT_TRUE(alice && *alice);
  EXPECT_EQ((*alice)->name, "Alice");
  EXPECT_EQ((*alice)->roles, std::set<Role>{Role::kAnalyst});
  auto write = reader_->exec("DELETE FROM users");
  ASSERT_FALSE(write);
  EXPECT_EQ(write.error().code, Errc::kPermission);
  auto missing = open_registry_database(dir_ / "none.db", store::Access::kReadOnly);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "none.db")) << "a read-only open creates nothing";
}

TEST_F(RegistryDb, AFailedChangeLeavesNothingAndKeepsTheVersion) {
  populate();
  auto failed = store_->transaction([&]() -> Status {
    ENCLAVE_TRY(store_->insert_user({"bob", "", {Role::kAnalyst}, false, kNow, kNow}));
    return store_->insert_user({"alice", "again", {}, false, kNow, kNow});  // taken
  });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().code, Errc::kAlreadyExists);
  EXPECT_FALSE(*find_user(*reader_, "bob"));
  EXPECT_EQ(version(), 1);
  auto refused = store_->transaction([] { return Status(fail(Errc::kPermission, "no")); });
  EXPECT_FALSE(refused);
  EXPECT_EQ(version(), 1);
}

TEST_F(RegistryDb, SiteForAddressNeedsAnApprovedUnexpiredSite) {
  populate();
  auto a = site_for_address(*reader_, ip("10.9.0.77"), kNow);
  ASSERT_TRUE(a && *a) << "in room-a's second pool";
  EXPECT_EQ((*a)->id, "room-a");
  EXPECT_EQ((*a)->pools.size(), 2u);
  auto b = site_for_address(*reader_, ip("2001:db8:5::9"), kNow);
  ASSERT_TRUE(b && *b);
  EXPECT_EQ((*b)->id, "room-b");
  EXPECT_FALSE(*site_for_address(*reader_, ip("10.10.0.1"), kNow)) << "outside every pool";

  // room-b's approval lapses on 2026-12-01.
  EXPECT_TRUE(*site_for_address(*reader_, ip("2001:db8:5::9"), at("2026-11-30T23:59:59Z")));
  EXPECT_FALSE(*site_for_address(*reader_, ip("2001:db8:5::9"), at("2026-12-01")));

  // Suspended: no login; approved again: login.
  Site room_a = find_site(*reader_, "room-a").value().value();
  ASSERT_TRUE(suspend(room_a, kNow));
  change([&] { return store_->update_site(room_a); });
  EXPECT_FALSE(*site_for_address(*reader_, ip("10.9.0.77"), kNow));
  ASSERT_TRUE(approve(room_a, kNow, at("2028-01-01"), kNow));
  change([&] { return store_->update_site(room_a); });
  EXPECT_TRUE(*site_for_address(*reader_, ip("10.9.0.77"), kNow));
  ASSERT_TRUE(revoke(room_a, kNow));
  change([&] { return store_->update_site(room_a); });
  EXPECT_FALSE(*site_for_address(*reader_, ip("10.9.0.77"), kNow));
  EXPECT_EQ(find_site(*reader_, "room-a").value()->state, SiteState::kRevoked);
}

TEST_F(RegistryDb, PoolsOfLiveSitesNeverOverlapAndIdentitiesAreUnique) {
  populate();
  auto overlap = store_->transaction(
      [&] { return store_->insert_site(site("room-c", {"10.8.0.128/25"}, "room-c")); });
  ASSERT_FALSE(overlap);
  EXPECT_EQ(overlap.error().code, Errc::kConflict);
  EXPECT_EQ(overlap.error().message, "pool 10.8.0.128/25 overlaps 10.8.0.0/24 of site room-a");
  auto identity = store_->transaction(
      [&] { return store_->insert_site(site("room-c", {"10.20.0.0/24"}, "CN=room b")); });
  ASSERT_FALSE(identity);
  EXPECT_EQ(identity.error().code, Errc::kAlreadyExists);
  // Once room-a is revoked its pools and identity are free again.
  Site room_a = find_site(*reader_, "room-a").value().value();
  ASSERT_TRUE(revoke(room_a, kNow));
  change([&] { return store_->update_site(room_a); });
  change([&] { return store_->insert_site(site("room-c", {"10.8.0.0/16"}, "room-a.example")); });
  EXPECT_EQ(find_site(*reader_, "room-c").value()->pools[0].text(), "10.8.0.0/16");
}

TEST_F(RegistryDb, PoolTableForTheGateway) {
  populate();
  auto table = approved_pools(*reader_, kNow);
  ASSERT_TRUE(table) << table.error().describe();
  EXPECT_EQ(table->version, 1);
  ASSERT_EQ(table->sites.size(), 2u);
  EXPECT_EQ(table->sites[0].site, "room-a");
  EXPECT_EQ(table->sites[0].ike_identity, "room-a.example");
  EXPECT_EQ(table->sites[0].pools, (std::vector<std::string>{"10.8.0.0/24", "10.9.0.0/24"}));
  EXPECT_EQ(table->sites[1].pools, (std::vector<std::string>{"2001:db8:5::/64"}));
  EXPECT_TRUE(table->revoked.empty());

  change([&]() -> Status {
    auto n = store_->revoke_device("kiosk-b1", "stolen", kNow);
    if (!n) return error_of(n);
    EXPECT_EQ(*n, 0);
    return {};
  });
  table = approved_pools(*reader_, at("2026-12-02"));
  ASSERT_TRUE(table);
  EXPECT_EQ(table->version, 2);
  ASSERT_EQ(table->sites.size(), 1u) << "room-b lapsed";
  ASSERT_EQ(table->revoked.size(), 1u);
  EXPECT_EQ(table->revoked[0].id, "kiosk-b1");
  EXPECT_EQ(table->revoked[0].certificate_sha256, std::string(64, 'b'));
  EXPECT_EQ(table->revoked[0].serial, std::string(32, 'b'));
}

TEST_F(RegistryDb, DevicesAndTheirRevocation) {
  populate();
  auto d = find_device(*reader_, "kiosk-a1");
  ASSERT_TRUE(d && *d);
  EXPECT_EQ((*d)->site, "room-a");
  EXPECT_EQ((*d)->public_key, Bytes(32, 'a'));
  EXPECT_EQ((*d)->state, DeviceState::kActive);
  EXPECT_NE((*d)->certificate_pem.find("kiosk-a1"), std::string::npos);
  EXPECT_TRUE(list_devices(*reader_).value()[0].certificate_pem.empty()) << "lists leave it out";
  EXPECT_FALSE(*find_device(*reader_, "kiosk-zz"));

  ASSERT_EQ(enrolled_prints(*reader_, "alice", "kiosk-a1").value().size(), 1u);
  change([&]() -> Status {
    auto n = store_->revoke_device("kiosk-a1", "lost", kNow);
    if (!n) return error_of(n);
    EXPECT_EQ(*n, 1) << "its enrolment goes with it";
    return {};
  });
  d = find_device(*reader_, "kiosk-a1");
  EXPECT_EQ((*d)->state, DeviceState::kRevoked);
  EXPECT_EQ((*d)->revoke_reason, "lost");
  EXPECT_EQ((*d)->revoked_at, kNow);
  EXPECT_TRUE(enrolled_prints(*reader_, "alice", "kiosk-a1").value().empty());
  EXPECT_EQ(list_enrolments(*reader_, "alice").value()[0].state, EnrolmentState::kRevoked);
  auto again = store_->transaction([&]() -> Status {
    auto n = store_->revoke_device("kiosk-a1", "lost", kNow);
    return n ? Status() : Status(error_of(n));
  });
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound);
  EXPECT_EQ(again.error().message, "no active device kiosk-a1");
}

TEST_F(RegistryDb, PrintsAreCiphertextsOfLiveEnrolmentsOnly) {
  populate();
  auto prints = enrolled_prints(*reader_, "alice", "kiosk-a1");
  ASSERT_TRUE(prints);
  ASSERT_EQ(prints->size(), 1u);
  EXPECT_EQ((*prints)[0].print_id, "p-1");
  EXPECT_EQ((*prints)[0].ciphertext, (Bytes{1, 2, 3}));
  EXPECT_TRUE(enrolled_prints(*reader_, "alice", "kiosk-b1").value().empty()) << "per reader";
  EXPECT_TRUE(enrolled_prints(*reader_, "sam", "kiosk-a1").value().empty()) << "per user";

  change([&]() -> Status {
    auto n = store_->revoke_prints(enrolment_, kNow);
    if (!n) return error_of(n);
    EXPECT_EQ(*n, 1);
    return store_->insert_print("p-2", enrolment_, Bytes{9}, kNow + 1s);
  });
  prints = enrolled_prints(*reader_, "alice", "kiosk-a1");
  ASSERT_EQ(prints->size(), 1u);
  EXPECT_EQ((*prints)[0].print_id, "p-2");
  {
    // The replaced print's ciphertext is gone from the file, not just hidden.
    auto st = reader_->prepare("SELECT count(*) FROM prints WHERE ciphertext IS NOT NULL");
    ASSERT_TRUE(st && st->step().value());
    EXPECT_EQ(st->column_int64(0), 1);
  }  // a statement left open would keep the reader on this snapshot

  Enrolment e = current_enrolment(*reader_, "alice", "kiosk-a1").value().value();
  e.state = EnrolmentState::kRevoked;
  e.revoked_at = kNow;
  change([&]() -> Status {
    ENCLAVE_TRY(store_->update_enrolment(e));
    auto n = store_->revoke_prints(e.id, kNow);
    return n ? Status() : Status(error_of(n));
  });
  EXPECT_TRUE(enrolled_prints(*reader_, "alice", "kiosk-a1").value().empty());
  EXPECT_FALSE(*current_enrolment(*reader_, "alice", "kiosk-a1"));
}

TEST_F(RegistryDb, CompartmentsFollowProjectValidityAndMembership) {
  populate();
  change([&]() -> Status {
    ENCLAVE_TRY(store_->insert_project(
        {"claims", "Claims study", at("2026-04-01"), at("2027-04-01"), {"alice"}, {"claims-int"}},
        kNow));
    ENCLAVE_TRY(store_->insert_project(
        {"cohort", "Cohort", at("2027-01-01"), at("2028-01-01"), {"alice"}, {"cohort-shared"}},
        kNow));
    return store_->grant("claims", "claims-ext");
  });
  EXPECT_EQ(user_compartments(*reader_, "alice", kNow).value(),
            (std::set<std::string>{"claims-ext", "claims-int"}));
  EXPECT_EQ(user_compartments(*reader_, "alice", at("2027-02-01")).value(),
            (std::set<std::string>{"claims-ext", "claims-int", "cohort-shared"}));
  EXPECT_EQ(user_compartments(*reader_, "alice", at("2027-04-01")).value(),
            (std::set<std::string>{"cohort-shared"}));
  EXPECT_TRUE(user_compartments(*reader_, "sam", kNow).value().empty()) << "not a member";
  EXPECT_TRUE(user_compartments(*reader_, "nobody", kNow).value().empty());

  change([&] { return store_->set_member("claims", "alice", false); });
  EXPECT_TRUE(user_compartments(*reader_, "alice", kNow).value().empty());
  auto absent = store_->transaction([&] { return store_->set_member("claims", "alice", false); });
  ASSERT_FALSE(absent);
  EXPECT_EQ(absent.error().message, "no member alice in project claims");

  User alice = find_user(*reader_, "alice").value().value();
  alice.disabled = true;
  change([&] { return store_->update_user(alice); });
  EXPECT_TRUE(user_compartments(*reader_, "alice", at("2027-02-01")).value().empty());
  auto p = find_project(*reader_, "claims").value().value();
  EXPECT_EQ(p.compartments, (std::set<std::string>{"claims-ext", "claims-int"}));
  EXPECT_TRUE(p.members.empty());
}

TEST_F(RegistryDb, LapsesAreNotedOnceUntilTheNextApproval) {
  populate();
  EXPECT_TRUE(store_->unnoted_lapses(kNow).value().empty());
  auto lapsed = store_->unnoted_lapses(at("2026-12-01"));
  ASSERT_TRUE(lapsed);
  ASSERT_EQ(lapsed->size(), 1u);
  EXPECT_EQ((*lapsed)[0].id, "room-b");
  change([&] { return store_->mark_lapse_noted("room-b"); });
  EXPECT_TRUE(store_->unnoted_lapses(at("2026-12-01")).value().empty());
  Site b = (*lapsed)[0];
  ASSERT_TRUE(approve(b, at("2026-12-01"), at("2027-12-01"), at("2026-12-02")));
  change([&] { return store_->update_site(b); });
  auto next = store_->unnoted_lapses(at("2027-12-01"));
  ASSERT_TRUE(next);
  ASSERT_EQ(next->size(), 2u) << "room-a's own approval ran out on 2027-11-01";
  EXPECT_EQ((*next)[1].id, "room-b");
}

}  // namespace
}  // namespace enclave::sessionmgr::registry
