// The session lifecycle with a fake clock (no sleeps), time windows, and the limits on issuing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sessionmgr/core/lifecycle.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Friday 2027-01-15 08:00:00 UTC = 17:00 in Tokyo.
const TimePoint kFriday0800Utc = TimePoint(1'800'000'000s);

SessionPolicy policy_of(const std::string& tier_text) {
  auto doc = policy::Document::parse("[tiers.t]\n" + tier_text +
                                         "\n[compartments.a]\ntier = \"t\"\nlocal = {}\n"
                                         "[compartments.b]\ntier = \"t\"\nlocal = {}\n",
                                     "sessions.toml");
  EXPECT_TRUE(doc) << doc.error().describe();
  auto p = load_session_policy(*doc, "/state");
  EXPECT_TRUE(p) << p.error().describe();
  return std::move(p).value();
}

Session issued(std::string id, std::string user, std::string compartment = "a") {
  Session s;
  s.id = std::move(id);
  s.user = std::move(user);
  s.device = "kiosk-1";
  s.source = "192.0.2.7";
  s.compartment = std::move(compartment);
  s.tier = "t";
  s.desktop_id = "local/" + s.id;
  s.created_at = s.updated_at = kFriday0800Utc;
  return s;
}

IssueRequest request(std::string user, std::string compartment = "a") {
  return {std::move(user), "kiosk-1", "192.0.2.7", std::move(compartment), ""};
}

TEST(Lifecycle, IssuedActiveDisconnectedResumedEnded) {
  Tier tier = policy_of("grace_s = 300\nmax_session_s = 3600").tiers.at("t");
  Session s = issued("s-1", "alice");
  TimePoint t = kFriday0800Utc;
  EXPECT_EQ(due_end(s, tier, t + 1h), std::nullopt);  // not started: the ticket governs
  EXPECT_EQ(remaining_seconds(s, tier, t), 3600);

  auto first = on_redeemed(s, t + 10s);
  ASSERT_TRUE(first);
  EXPECT_FALSE(*first);
  EXPECT_EQ(s.state, SessionState::kActive);
  EXPECT_EQ(s.started_at, t + 10s);
  ASSERT_TRUE(on_connected(s, t + 11s));
  EXPECT_EQ(s.connects, 1);
  EXPECT_FALSE(on_redeemed(s, t + 12s));  // an active session takes no ticket

  ASSERT_TRUE(on_disconnected(s, t + 100s, tier.grace, false, "network"));
  EXPECT_EQ(s.state, SessionState::kDisconnected);
  EXPECT_EQ(s.grace_until, t + 400s);
  EXPECT_EQ(due_end(s, tier, t + 399s), std::nullopt);

  auto again = on_redeemed(s, t + 200s);
  ASSERT_TRUE(again);
  EXPECT_TRUE(*again);               // resumed
  EXPECT_EQ(s.started_at, t + 10s);  // the maximum time still counts from the first start
  EXPECT_FALSE(s.grace_until);
  EXPECT_EQ(remaining_seconds(s, tier, t + 210s), 3400);
  ASSERT_TRUE(on_connected(s, t + 201s));
  EXPECT_EQ(s.connects, 2);

  EXPECT_TRUE(end_session(s, t + 300s, end_reason::kOperator));
  EXPECT_EQ(s.state, SessionState::kEnded);
  EXPECT_EQ(s.end_reason, end_reason::kOperator);
  EXPECT_FALSE(end_session(s, t + 301s, "again"));
  EXPECT_EQ(s.end_reason, end_reason::kOperator);
  EXPECT_FALSE(on_redeemed(s, t + 302s));
  EXPECT_TRUE(on_disconnected(s, t + 303s, tier.grace, false, "late report"));  // no-op
  EXPECT_EQ(s.state, SessionState::kEnded);
  EXPECT_EQ(due_end(s, tier, t + 10h), std::nullopt);
}

TEST(Lifecycle, GraceExpiry) {
  Tier tier = policy_of("grace_s = 60").tiers.at("t");
  Session s = issued("s-1", "alice");
  ASSERT_TRUE(on_redeemed(s, kFriday0800Utc));
  ASSERT_TRUE(on_disconnected(s, kFriday0800Utc + 10s, tier.grace, false, "network"));
  EXPECT_EQ(due_end(s, tier, kFriday0800Utc + 69s), std::nullopt);
  EXPECT_EQ(due_end(s, tier, kFriday0800Utc + 70s), end_reason::kGraceExpired);
}

TEST(Lifecycle, MaximumTime) {
  Tier tier = policy_of("max_session_s = 600").tiers.at("t");
  Session s = issued("s-1", "alice");
  ASSERT_TRUE(on_redeemed(s, kFriday0800Utc));
  EXPECT_EQ(due_end(s, tier, kFriday0800Utc + 599s), std::nullopt);
  EXPECT_EQ(due_end(s, tier, kFriday0800Utc + 600s), end_reason::kMaxTime);
  EXPECT_EQ(remaining_seconds(s, tier, kFriday0800Utc + 700s), 0);
}

TEST(Lifecycle, EndedByGatewayOrWithoutGrace) {
  Tier tier = policy_of("grace_s = 0").tiers.at("t");
  Session s = issued("s-1", "alice");
  ASSERT_TRUE(on_redeemed(s, kFriday0800Utc));
  ASSERT_TRUE(on_disconnected(s, kFriday0800Utc + 1s, tier.grace, false, "client closed"));
  EXPECT_EQ(s.state, SessionState::kEnded);
  EXPECT_EQ(s.end_reason, "client closed");

  Session u = issued("s-2", "bob");
  ASSERT_TRUE(on_redeemed(u, kFriday0800Utc));
  ASSERT_TRUE(on_disconnected(u, kFriday0800Utc + 1s, 300s, true, "idle timeout"));
  EXPECT_EQ(u.state, SessionState::kEnded);
  EXPECT_FALSE(on_connected(u, kFriday0800Utc + 2s));
}

TEST(TimeWindows, TokyoOfficeHours) {
  Tier tier = policy_of(
                  "timezone = \"Asia/Tokyo\"\nwindows = [{ days = [\"mon\", \"tue\", "
                  "\"wed\", \"thu\", \"fri\"], from = \"08:00\", to = \"18:00\" }]")
                  .tiers.at("t");
  EXPECT_TRUE(in_time_windows(tier, kFriday0800Utc));                 // Fri 17:00 JST
  EXPECT_TRUE(in_time_windows(tier, kFriday0800Utc + 59min));         // 17:59
  EXPECT_FALSE(in_time_windows(tier, kFriday0800Utc + 1h));           // 18:00
  EXPECT_FALSE(in_time_windows(tier, kFriday0800Utc + 24h));          // Sat 17:00
  EXPECT_FALSE(in_time_windows(tier, kFriday0800Utc - 10h));          // Fri 07:00
  EXPECT_TRUE(in_time_windows(tier, kFriday0800Utc - 9h));            // Fri 08:00
  EXPECT_TRUE(in_time_windows(tier, kFriday0800Utc + 3 * 24h - 9h));  // Mon 08:00
}

TEST(TimeWindows, UtcAndPastMidnight) {
  Tier tier = policy_of(
                  "timezone = \"UTC\"\nwindows = [{ days = [\"fri\"], from = \"22:00\", "
                  "to = \"02:00\" }]")
                  .tiers.at("t");
  EXPECT_FALSE(in_time_windows(tier, kFriday0800Utc));              // Fri 08:00
  EXPECT_TRUE(in_time_windows(tier, kFriday0800Utc + 14h));         // Fri 22:00
  EXPECT_TRUE(in_time_windows(tier, kFriday0800Utc + 17h));         // Sat 01:00, started Friday
  EXPECT_FALSE(in_time_windows(tier, kFriday0800Utc + 18h));        // Sat 02:00
  EXPECT_FALSE(in_time_windows(tier, kFriday0800Utc + 14h + 24h));  // Sat 22:00
  Tier always = policy_of("").tiers.at("t");
  EXPECT_TRUE(in_time_windows(always, kFriday0800Utc));
}

TEST(PlanIssue, NewResumeReplace) {
  auto p = policy_of("");
  auto plan = plan_issue(p, request("alice"), {}, kFriday0800Utc);
  ASSERT_TRUE(plan) << plan.error().describe();
  EXPECT_EQ(plan->kind, IssuePlan::Kind::kNew);

  Session pending = issued("s-1", "alice");
  plan = plan_issue(p, request("alice"), {pending}, kFriday0800Utc);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->kind, IssuePlan::Kind::kReplaceTicket);
  EXPECT_EQ(plan->session_id, "s-1");

  Session away = issued("s-1", "alice");
  ASSERT_TRUE(on_redeemed(away, kFriday0800Utc));
  ASSERT_TRUE(on_disconnected(away, kFriday0800Utc + 1s, 300s, false, "network"));
  plan = plan_issue(p, request("alice"), {away}, kFriday0800Utc + 2s);
  ASSERT_TRUE(plan);
  EXPECT_EQ(plan->kind, IssuePlan::Kind::kResume);
  EXPECT_EQ(plan->session_id, "s-1");
}

TEST(PlanIssue, OneActiveSessionPerUser) {
  auto p = policy_of("max_sessions_per_user = 3");
  Session active = issued("s-1", "alice", "b");
  ASSERT_TRUE(on_redeemed(active, kFriday0800Utc));
  auto plan = plan_issue(p, request("alice"), {active}, kFriday0800Utc);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, Errc::kConflict);
  EXPECT_THAT(plan.error().message, HasSubstr("already has an active session (s-1 in b)"));
  EXPECT_TRUE(plan_issue(p, request("bob"), {active}, kFriday0800Utc));
}

TEST(PlanIssue, UserCap) {
  auto p = policy_of("max_sessions_per_user = 1");
  Session other = issued("s-1", "alice", "b");  // issued in another compartment of the tier
  auto plan = plan_issue(p, request("alice", "a"), {other}, kFriday0800Utc);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, Errc::kConflict);
  auto two = policy_of("max_sessions_per_user = 2");
  EXPECT_TRUE(plan_issue(two, request("alice", "a"), {other}, kFriday0800Utc));
}

TEST(PlanIssue, CompartmentCap) {
  auto p = policy_of("max_sessions_per_compartment = 2");
  std::vector<Session> open = {issued("s-1", "u1"), issued("s-2", "u2"), issued("s-3", "u3", "b")};
  auto plan = plan_issue(p, request("alice"), open, kFriday0800Utc);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, Errc::kUnavailable);
  EXPECT_THAT(plan.error().message, HasSubstr("compartment a is full"));
  end_session(open[0], kFriday0800Utc, "done");
  EXPECT_TRUE(plan_issue(p, request("alice"), open, kFriday0800Utc));
  EXPECT_TRUE(plan_issue(p, request("alice", "b"), open, kFriday0800Utc));
}

TEST(PlanIssue, TimeWindowsAndSiteClasses) {
  auto p = policy_of(
      "site_classes = [\"security-room\"]\nwindows = [{ from = \"09:00\", to = \"17:00\" }]");
  auto req = request("alice");
  req.site_class = "security-room";
  auto plan = plan_issue(p, req, {}, kFriday0800Utc);  // 17:00 JST: closed
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, Errc::kPermission);
  EXPECT_THAT(plan.error().message, HasSubstr("closed at this time"));
  EXPECT_TRUE(plan_issue(p, req, {}, kFriday0800Utc - 1h));
  req.site_class = "home";
  plan = plan_issue(p, req, {}, kFriday0800Utc - 1h);
  ASSERT_FALSE(plan);
  EXPECT_EQ(plan.error().code, Errc::kPermission);
  EXPECT_THAT(plan.error().message, HasSubstr("site class \"home\""));
  req.site_class = "";
  EXPECT_FALSE(plan_issue(p, req, {}, kFriday0800Utc - 1h));
}

TEST(PlanIssue, BadRequests) {
  auto p = policy_of("");
  auto code = [&](IssueRequest r) {
    auto plan = plan_issue(p, r, {}, kFriday0800Utc);
    return plan ? Errc::kInternal : plan.error().code;
  };
  EXPECT_EQ(code({"alice", "k", "192.0.2.7", "nope", ""}), Errc::kNotFound);
  EXPECT_EQ(code({"", "k", "192.0.2.7", "a", ""}), Errc::kInvalidArgument);
  EXPECT_EQ(code({"al\nice", "k", "192.0.2.7", "a", ""}), Errc::kInvalidArgument);
  EXPECT_EQ(code({"alice", "", "192.0.2.7", "a", ""}), Errc::kInvalidArgument);
  EXPECT_EQ(code({"alice", "k", "somewhere", "a", ""}), Errc::kInvalidArgument);
  EXPECT_EQ(code({std::string(129, 'a'), "k", "192.0.2.7", "a", ""}), Errc::kInvalidArgument);
}

TEST(Time, FormatsRfc3339) {
  EXPECT_EQ(format_rfc3339(kFriday0800Utc), "2027-01-15T08:00:00Z");
  EXPECT_EQ(from_unix_ms(to_unix_ms(kFriday0800Utc + 1500ms)), kFriday0800Utc + 1500ms);
  EXPECT_EQ(state_from_name("disconnected"), SessionState::kDisconnected);
  EXPECT_FALSE(state_from_name("paused"));
}

}  // namespace
}  // namespace enclave::sessionmgr
