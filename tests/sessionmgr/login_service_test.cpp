// LoginService over a real PAM stack (pam_matrix checks the password; the service file is
// written per test), with the registry's admission and the ticket issue as functions the test
// controls: every way a login can fail looks the same to the kiosk and is timed the same.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "sessionmgr/service/login_service.hpp"
#include "tests/sessionmgr/recording_audit.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr const char* kPamMatrix = "/usr/lib/x86_64-linux-gnu/pam_wrapper/pam_matrix.so";

struct Fixture {
  Fixture() {
    std::ofstream(dir / "passdb") << "alice:correct horse:enclave-login\n"
                                  << "bob:battery staple:enclave-login\n";
    std::ofstream(dir / "enclave-login")
        << "auth required " << kPamMatrix << " passdb=" << (dir / "passdb").string() << "\n"
        << "account required " << kPamMatrix << " passdb=" << (dir / "passdb").string() << "\n";
    options.pam_confdir = dir.path();
    options.failure_delay = 700ms;
    deps.audit = &audit;
    deps.clock = [this] { return clock; };
    deps.admit = [this](const LoginRequest& r) -> Expected<Admission> {
      if (r.user == "bob") return fail(Errc::kPermission, "bob holds no project");
      return Admission{r.compartment.empty() ? "ndb" : r.compartment, "remote-room"};
    };
    deps.issue_ticket = [this](const IssueRequest& r) -> Expected<nlohmann::json> {
      issued.push_back(r);
      return nlohmann::json{{"ticket", std::string(64, 'a')},
                            {"expires_at", "2026-11-30T00:01:00Z"},
                            {"session_id", "s-1"},
                            {"desktop", {{"id", "d-1"}, {"host", "127.0.0.1"}, {"port", 3389}}}};
    };
  }
  LoginService service() { return LoginService(options, deps); }
  LoginRequest request(const std::string& user) const {
    return {user, "kiosk-0001", "10.8.0.5", ""};
  }

  TempDir dir;
  FakeAudit audit;
  LoginServiceOptions options;
  LoginDeps deps;
  TimePoint clock = std::chrono::system_clock::from_time_t(1'800'000'000);
  std::vector<IssueRequest> issued;
};

#define REQUIRE_PAM_MATRIX() \
  if (!std::filesystem::exists(kPamMatrix)) GTEST_SKIP() << kPamMatrix << " missing"

std::string type_of(const LoginReply& r) {
  return r.body["step"]["type"].get<std::string>();
}

TEST(LoginService, PasswordThenTicket) {
  REQUIRE_PAM_MATRIX();
  Fixture f;
  auto service = f.service();
  auto first = service.start(f.request("alice"));
  ASSERT_TRUE(first) << first.error().describe();
  ASSERT_EQ(type_of(*first), "auth_message");
  EXPECT_EQ(first->body["step"]["auth_message_type"], "secret");
  const std::string id = first->body["login_id"];
  EXPECT_EQ(id.size(), 32u);
  auto done = service.answer(id, "correct horse");
  ASSERT_TRUE(done) << done.error().describe();
  ASSERT_EQ(type_of(*done), "success");
  EXPECT_EQ(done->body["step"]["ticket"], std::string(64, 'a'));
  EXPECT_EQ(done->body["step"]["desktop"]["port"], 3389);
  EXPECT_EQ(done->not_before, f.clock);
  ASSERT_EQ(f.issued.size(), 1u);
  EXPECT_EQ(f.issued[0].user, "alice");
  EXPECT_EQ(f.issued[0].device, "kiosk-0001");
  EXPECT_EQ(f.issued[0].source, "10.8.0.5");
  EXPECT_EQ(f.issued[0].compartment, "ndb");
  EXPECT_EQ(f.issued[0].site_class, "remote-room");
  EXPECT_EQ(f.audit.of_type("login.started").size(), 1u);
  ASSERT_EQ(f.audit.of_type("login.succeeded").size(), 1u);
  EXPECT_EQ(f.audit.of_type("login.succeeded")[0]["details"]["session_id"], "s-1");
  EXPECT_EQ(service.in_progress(), 0u);
  // The login is finished: its id is no longer accepted.
  auto again = service.answer(id, "correct horse");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kNotFound);
}

// Wrong password, unknown user, a user the registry refuses: one answer, one timing.
TEST(LoginService, EveryFailureLooksTheSame) {
  REQUIRE_PAM_MATRIX();
  Fixture f;
  auto service = f.service();
  struct Case {
    const char* user;
    const char* password;
    const char* audited;
  };
  std::vector<nlohmann::json> steps;
  for (const Case& c :
       {Case{"alice", "wrong", "pam_authenticate"}, Case{"mallory", "anything", "pam_authenticate"},
        Case{"bob", "battery staple", "bob holds no project"}}) {
    auto first = service.start(f.request(c.user));
    ASSERT_TRUE(first) << c.user;
    EXPECT_EQ(first->body["step"]["auth_message_type"], "secret") << c.user;
    f.clock += 5s;  // the analyst types
    auto reply = service.answer(first->body["login_id"], c.password);
    ASSERT_TRUE(reply) << c.user;
    EXPECT_EQ(reply->not_before, f.clock + 700ms) << c.user;
    steps.push_back(reply->body["step"]);
    auto reasons = f.audit.reasons("login.failed");
    ASSERT_FALSE(reasons.empty());
    EXPECT_THAT(reasons.back(), HasSubstr(c.audited)) << c.user;
  }
  EXPECT_EQ(steps[0], steps[1]);
  EXPECT_EQ(steps[1], steps[2]);
  EXPECT_EQ(steps[0]["description"], "login failed");
  EXPECT_TRUE(f.issued.empty());
}

TEST(LoginService, ATicketThatCannotBeIssuedIsAFailedLogin) {
  REQUIRE_PAM_MATRIX();
  Fixture f;
  f.deps.issue_ticket = [](const IssueRequest&) -> Expected<nlohmann::json> {
    return fail(Errc::kUnavailable, "no desktop free in ndb");
  };
  auto service = f.service();
  auto first = service.start(f.request("alice"));
  ASSERT_TRUE(first);
  auto reply = service.answer(first->body["login_id"], "correct horse");
  ASSERT_TRUE(reply);
  EXPECT_EQ(type_of(*reply), "error");
  EXPECT_THAT(f.audit.reasons("login.failed").back(), HasSubstr("no desktop free in ndb"));
}

TEST(LoginService, CancelForgetsTheLoginAndSaysWhy) {
  REQUIRE_PAM_MATRIX();
  Fixture f;
  auto service = f.service();
  auto first = service.start(f.request("alice"));
  ASSERT_TRUE(first);
  const std::string id = first->body["login_id"];
  ASSERT_TRUE(service.cancel(id, "kiosk connection closed"));
  EXPECT_EQ(service.in_progress(), 0u);
  EXPECT_EQ(service.answer(id, "correct horse").error().code, Errc::kNotFound);
  EXPECT_EQ(service.cancel(id, "again").error().code, Errc::kNotFound);
  ASSERT_EQ(f.audit.of_type("login.cancelled").size(), 1u);
  EXPECT_EQ(f.audit.reasons("login.cancelled")[0], "kiosk connection closed");
}

TEST(LoginService, RefusesWhenFullOrWhenTheAuditLogIsDown) {
  REQUIRE_PAM_MATRIX();
  Fixture f;
  f.options.max_logins = 2;
  auto service = f.service();
  ASSERT_TRUE(service.start(f.request("alice")));
  ASSERT_TRUE(service.start(f.request("bob")));
  auto third = service.start(f.request("carol"));
  ASSERT_FALSE(third);
  EXPECT_EQ(third.error().code, Errc::kUnavailable);

  Fixture g;
  g.audit.healthy_ = false;
  auto down = g.service();
  auto refused = down.start(g.request("alice"));
  ASSERT_FALSE(refused);
  EXPECT_THAT(refused.error().describe(), HasSubstr("audit log is unavailable"));
}

TEST(LoginService, ABadSourceAddressIsRefused) {
  Fixture f;
  auto service = f.service();
  auto r = service.start({"alice", "kiosk-0001", "not-an-address", ""});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

}  // namespace
}  // namespace enclave::sessionmgr
