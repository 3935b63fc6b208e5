// audit::Appender against the real enclave-auditd: pipelined appends acknowledged, a rejected
// event, a full queue, and the daemon going away and coming back (fail closed meanwhile).
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "audit/client/appender.hpp"
#include "common/ipc/client.hpp"
#include "tests/support/process.hpp"

namespace enclave::audit {
namespace {

using testing::binary;
using testing::Child;
using testing::TempDir;

nlohmann::json event(int n) {
  return {
      {"type", "test.appender"}, {"outcome", "info"}, {"actor", "svc"}, {"details", {{"n", n}}}};
}

// Polls cond every 10 ms until it holds or the timeout passes.
template <class F>
bool eventually(F cond, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

class AppenderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_ / "policies");
    std::ofstream(dir_ / "policies" / "audit.toml")
        << "[audit]\norigin = \"test.example/audit\"\n"
        << "socket = \"" << socket().string() << "\"\n"
        << "[audit.checkpoint]\nevery_entries = 1000\nevery_seconds = 30\n";
    auto r = testing::run({binary("enclave-auditd").string(), "keygen"}, env());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::filesystem::path socket() const { return dir_ / "auditd.sock"; }

  std::map<std::string, std::string> env() const {
    return {{"ENCLAVE_POLICIES", (dir_ / "policies").string()},
            {"ENCLAVE_STATE_DIR", (dir_ / "state").string()}};
  }

  std::unique_ptr<Child> start_auditd() {
    std::filesystem::remove(socket());
    auto child = std::make_unique<Child>(
        std::vector<std::string>{binary("enclave-auditd").string(), "run"}, env(), dir_.path());
    EXPECT_TRUE(testing::wait_for_path(socket())) << child->stderr_text();
    return child;
  }

  std::uint64_t log_size() {
    auto c = ipc::Client::connect(socket());
    if (!c) return 0;
    auto status = c->call("audit.status", nlohmann::json::object());
    return status ? (*status)["size"].get<std::uint64_t>() : 0;
  }

  // The events of one type, from the auditors' tool.
  nlohmann::json query(const std::string& type) {
    auto r =
        testing::run({binary("enclave-audit").string(), "query", "--type", type, "--json"}, env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }

  TempDir dir_;
};

TEST_F(AppenderTest, PipelinedAppendsAreAcknowledgedInOrder) {
  auto d = start_auditd();
  Appender appender(socket());
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(appender.append(event(i)));
  ASSERT_TRUE(appender.append_sync(event(500)));
  ASSERT_TRUE(appender.flush(std::chrono::seconds(10)));
  EXPECT_TRUE(appender.healthy());
  auto stats = appender.stats();
  EXPECT_EQ(stats.acknowledged, 501u);
  EXPECT_EQ(stats.queued, 0u);
  EXPECT_EQ(stats.rejected, 0u);
  EXPECT_EQ(log_size(), 502u);  // + auditd's own start event

  auto events = query("test.appender");
  ASSERT_TRUE(events.is_array());
  ASSERT_EQ(events.size(), 501u);
  for (std::size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i]["details"]["n"], i);  // the order they were appended in
    EXPECT_FALSE(events[i]["source"].get<std::string>().empty());  // stamped by auditd
  }
}

TEST_F(AppenderTest, MalformedEventIsRejectedNotRetried) {
  auto d = start_auditd();
  Appender appender(socket());
  auto r = appender.append_sync({{"type", "Not A Type"}, {"outcome", "info"}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << r.error().describe();
  EXPECT_EQ(appender.stats().rejected, 1u);
  EXPECT_TRUE(appender.append_sync(event(1)));
  EXPECT_TRUE(appender.healthy());
}

TEST_F(AppenderTest, DaemonDownFailsClosedAndRecoversWhenItReturns) {
  Appender appender(socket());
  ASSERT_TRUE(eventually([&] { return !appender.healthy(); }));
  const auto before = std::chrono::steady_clock::now();
  auto sync = appender.append_sync(event(0), std::chrono::seconds(5));
  ASSERT_FALSE(sync);
  EXPECT_EQ(sync.error().code, Errc::kUnavailable) << sync.error().describe();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(3));  // not the timeout
  // Asynchronous appends wait for the daemon.
  for (int i = 1; i <= 5; ++i) EXPECT_TRUE(appender.append(event(i)));
  EXPECT_FALSE(appender.flush(std::chrono::milliseconds(100)));
  EXPECT_EQ(appender.stats().queued, 5u);

  auto d = start_auditd();
  ASSERT_TRUE(eventually([&] { return appender.healthy(); })) << d->stderr_text();
  ASSERT_TRUE(appender.flush(std::chrono::seconds(10)));
  EXPECT_EQ(appender.stats().acknowledged, 5u);

  // Killed under it: noticed even while idle (heartbeat), then back again.
  d->signal(SIGKILL);
  d->wait();
  ASSERT_TRUE(eventually([&] { return !appender.healthy(); }));
  auto refused = appender.append_sync(event(6), std::chrono::seconds(5));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kUnavailable);
  EXPECT_TRUE(appender.append(event(7)));

  d = start_auditd();
  ASSERT_TRUE(eventually([&] { return appender.healthy(); })) << d->stderr_text();
  EXPECT_TRUE(appender.append_sync(event(8)));
  ASSERT_TRUE(appender.flush(std::chrono::seconds(10)));
  EXPECT_GE(appender.stats().reconnects, 1u);
  auto events = query("test.appender");
  ASSERT_TRUE(events.is_array());
  std::vector<int> seen;
  for (const auto& e : events) seen.push_back(e["details"]["n"].get<int>());
  EXPECT_EQ(seen, (std::vector<int>{1, 2, 3, 4, 5, 7, 8}));  // 0 and 6 were refused to the caller
}

TEST_F(AppenderTest, FullQueueRefusesAndIsUnhealthy) {
  Appender appender(socket(), 4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(appender.append(event(i)));
  EXPECT_FALSE(appender.append(event(4)));
  EXPECT_EQ(appender.stats().refused_full, 1u);
  EXPECT_FALSE(appender.healthy());
  auto d = start_auditd();
  ASSERT_TRUE(appender.flush(std::chrono::seconds(10)));
  EXPECT_TRUE(appender.healthy());
  EXPECT_TRUE(appender.append(event(5)));
  EXPECT_TRUE(appender.flush(std::chrono::seconds(10)));
}

}  // namespace
}  // namespace enclave::audit
