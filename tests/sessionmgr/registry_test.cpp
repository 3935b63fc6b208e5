// The registry's model: identifiers, site transitions and approval expiry, the pools a site
// holds, project validity and the compartments a user holds, the steward rule. (Addresses and
// networks themselves: tests/common/net_ip_test.cpp.)
#include <gtest/gtest.h>

#include "sessionmgr/core/lifecycle.hpp"
#include "sessionmgr/core/registry.hpp"

namespace enclave::sessionmgr::registry {
namespace {

using namespace std::chrono_literals;

TimePoint at(const char* text) {
  auto t = parse_time(text);
  EXPECT_TRUE(t) << text;
  return t.value_or(TimePoint{});
}

IpAddress ip(const char* text) {
  auto a = IpAddress::parse(text);
  EXPECT_TRUE(a) << text;
  return a ? *a : IpAddress{};
}

IpNetwork net(const char* text) {
  auto n = IpNetwork::parse(text);
  EXPECT_TRUE(n) << text << ": " << (n ? "" : n.error().describe());
  return n ? *n : IpNetwork{};
}

TEST(RegistryIds, UserIdsAreLoginNames) {
  for (const char* ok : {"alice", "_svc", "a", "bob.smith", "x-1_2"}) {
    EXPECT_TRUE(is_user_id(ok)) << ok;
  }
  EXPECT_TRUE(is_user_id(std::string(32, 'a')));
  for (const char* bad : {"", "Alice", "1alice", ".alice", "-a", "al ice", "al/ice", "alicé"}) {
    EXPECT_FALSE(is_user_id(bad)) << bad;
  }
  EXPECT_FALSE(is_user_id(std::string(33, 'a')));
}

TEST(RegistryIds, ObjectIdsAndIkeIdentities) {
  EXPECT_TRUE(is_object_id("room-3.tokyo"));
  EXPECT_TRUE(is_object_id("3f"));
  EXPECT_TRUE(is_object_id(std::string(64, 'k')));
  EXPECT_FALSE(is_object_id(std::string(65, 'k')));
  EXPECT_FALSE(is_object_id("-kiosk"));
  EXPECT_FALSE(is_object_id("Kiosk"));
  EXPECT_FALSE(is_object_id("kiosk/1"));
  EXPECT_TRUE(is_ike_identity("CN=room 3, O=Univ"));
  EXPECT_FALSE(is_ike_identity(" site"));
  EXPECT_FALSE(is_ike_identity("site\n"));
  EXPECT_FALSE(is_ike_identity(""));
  EXPECT_TRUE(is_display_text("東北大学 セキュリティルーム"));
  EXPECT_FALSE(is_display_text("line\nbreak"));
  EXPECT_FALSE(is_display_text(std::string("\xff\xfe", 2)));
}

TEST(RegistryIds, RolesByName) {
  for (Role r : kAllRoles) EXPECT_EQ(role_from_name(role_name(r)), r);
  EXPECT_EQ(role_from_name("site_manager"), Role::kSiteManager);
  EXPECT_FALSE(role_from_name("admin"));
  EXPECT_FALSE(role_from_name("Steward"));
}

Site registered_site() {
  Site s;
  s.id = "room-1";
  s.pools = {net("10.8.0.0/24"), net("2001:db8:5::/64")};
  return s;
}

TEST(Sites, ApprovalOpensLoginUntilItExpires) {
  Site s = registered_site();
  const TimePoint now = at("2026-11-30T09:00:00Z");
  EXPECT_FALSE(s.may_log_in(now));
  ASSERT_TRUE(approve(s, at("2026-11-01"), at("2027-11-01"), now));
  EXPECT_EQ(s.state, SiteState::kApproved);
  EXPECT_TRUE(s.may_log_in(now));
  EXPECT_TRUE(s.may_log_in(at("2027-10-31T23:59:59Z")));
  EXPECT_FALSE(s.may_log_in(at("2027-11-01"))) << "expired at the expiry instant";
  EXPECT_EQ(s.state, SiteState::kApproved) << "a lapse is no state change";
  EXPECT_TRUE(s.holds(ip("10.8.0.20")));
  EXPECT_TRUE(s.holds(ip("2001:db8:5::20")));
  EXPECT_FALSE(s.holds(ip("10.9.0.20")));
}

TEST(Sites, ApprovalDatesAreChecked) {
  Site s = registered_site();
  const TimePoint now = at("2026-11-30");
  auto future_audit = approve(s, at("2026-12-01"), at("2027-12-01"), now);
  ASSERT_FALSE(future_audit);
  EXPECT_EQ(future_audit.error().code, Errc::kInvalidArgument);
  auto already_expired = approve(s, at("2025-01-01"), at("2026-11-30"), now);
  ASSERT_FALSE(already_expired);
  EXPECT_EQ(already_expired.error().message,
            "site room-1: the approval's expiry 2026-11-30T00:00:00Z must be after the audit "
            "date and after now");
  EXPECT_EQ(s.state, SiteState::kRegistered) << "a refused approval changes nothing";
}

TEST(Sites, Transitions) {
  const TimePoint now = at("2026-11-30");
  Site s = registered_site();
  auto early_suspend = suspend(s, now);
  ASSERT_FALSE(early_suspend);
  EXPECT_EQ(early_suspend.error().code, Errc::kConflict);
  EXPECT_EQ(early_suspend.error().message, "site room-1 is registered: it cannot be suspended");

  ASSERT_TRUE(approve(s, at("2026-11-01"), at("2027-11-01"), now));
  ASSERT_TRUE(suspend(s, now));
  EXPECT_FALSE(s.may_log_in(now));
  EXPECT_FALSE(suspend(s, now)) << "already suspended";
  ASSERT_TRUE(approve(s, at("2026-11-29"), at("2027-11-29"), now)) << "back from suspension";
  EXPECT_TRUE(s.may_log_in(now));
  ASSERT_TRUE(approve(s, at("2026-11-30"), at("2028-11-30"), now)) << "renewal";
  EXPECT_EQ(s.approval_expires, at("2028-11-30"));

  ASSERT_TRUE(revoke(s, now));
  EXPECT_FALSE(s.may_log_in(now));
  for (auto* again : {+[](Site&x, TimePoint t) { return revoke(x, t); },
                      +[](Site&x, TimePoint t) { return suspend(x, t); },
                      +[](Site&x, TimePoint t) { return approve(x, t - 24h, t + 24h * 365, t); }}) {
    auto r = again(s, now);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::kConflict) << "revoked is final";
  }
  EXPECT_EQ(s.state, SiteState::kRevoked);

  Site fresh = registered_site();
  EXPECT_TRUE(revoke(fresh, now)) << "a registered site may be revoked";
}

TEST(Sites, StateNames) {
  for (SiteState st :
       {SiteState::kRegistered, SiteState::kApproved, SiteState::kSuspended, SiteState::kRevoked}) {
    EXPECT_EQ(site_state_from_name(site_state_name(st)), st);
  }
  EXPECT_FALSE(site_state_from_name("Approved"));
  EXPECT_EQ(device_state_from_name("revoked"), DeviceState::kRevoked);
  EXPECT_EQ(enrolment_state_from_name("enrolled"), EnrolmentState::kEnrolled);
}

TEST(Projects, CompartmentsHeldAtATime) {
  User alice{"alice", "Alice", {Role::kAnalyst}};
  Project claims{"claims-2026",    "Claims study",   at("2026-04-01"),
                 at("2027-04-01"), {"alice", "bob"}, {"claims-internal"}};
  Project cohort{"cohort",         "Cohort study", at("2026-01-01"),
                 at("2026-07-01"), {"alice"},      {"cohort-shared", "claims-internal"}};
  Project other{"other", "Other", at("2026-01-01"), at("2030-01-01"), {"bob"}, {"secret"}};
  const std::vector<Project> projects = {claims, cohort, other};

  EXPECT_EQ(compartments_held(alice, projects, at("2026-05-01")),
            (std::set<std::string>{"claims-internal", "cohort-shared"}));
  EXPECT_EQ(compartments_held(alice, projects, at("2026-07-01")),
            (std::set<std::string>{"claims-internal"}))
      << "cohort ended at its valid_until";
  EXPECT_EQ(compartments_held(alice, projects, at("2026-03-31T23:59:59Z")),
            (std::set<std::string>{"cohort-shared", "claims-internal"}));
  EXPECT_TRUE(compartments_held(alice, projects, at("2027-04-01")).empty());
  EXPECT_TRUE(compartments_held(alice, projects, at("2025-12-31")).empty());

  User disabled = alice;
  disabled.disabled = true;
  EXPECT_TRUE(compartments_held(disabled, projects, at("2026-05-01")).empty());
  User steward{"alice", "Alice", {Role::kSteward}};
  EXPECT_TRUE(compartments_held(steward, projects, at("2026-05-01")).empty())
      << "only analysts enter compartments";
}

TEST(Enrolments, AStewardWhoIsNotTheUserApproves) {
  User alice{"alice", "", {Role::kAnalyst}};
  User sam{"sam", "", {Role::kSteward}};
  User both{"both", "", {Role::kSteward, Role::kAnalyst}};
  User op{"op", "", {Role::kOperator}};
  EXPECT_TRUE(check_enrolment_approval(sam, alice));
  auto self = check_enrolment_approval(both, both);
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().code, Errc::kPermission);
  EXPECT_EQ(self.error().message, "user both cannot approve their own fingerprint enrolment");
  auto not_steward = check_enrolment_approval(op, alice);
  ASSERT_FALSE(not_steward);
  EXPECT_EQ(not_steward.error().message, "approver op does not hold the steward role");
  sam.disabled = true;
  EXPECT_FALSE(check_enrolment_approval(sam, alice));
}

TEST(Times, DatesAndRfc3339) {
  EXPECT_EQ(format_rfc3339(at("2027-03-31")), "2027-03-31T00:00:00Z");
  EXPECT_EQ(format_rfc3339(at("2027-03-31T12:34:56Z")), "2027-03-31T12:34:56Z");
  EXPECT_EQ(format_rfc3339(at("2028-02-29")), "2028-02-29T00:00:00Z");
  for (const char* bad :
       {"2027-02-29", "2027-13-01", "2027-3-31", "2027-03-31T24:00:00Z", "2027-03-31T12:00:00",
        "2027-03-31 12:00:00Z", "20270331", "", "2027-03-31T12:00:00+09:00", "2027-03-3a"}) {
    EXPECT_FALSE(parse_time(bad)) << bad;
  }
}

}  // namespace
}  // namespace enclave::sessionmgr::registry
