// The export store: requests with files and decisions read back as written, queues filtered by
// state, project and requester, releases, and one-time links claimed exactly once.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "exitcontrol/service/export_store.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

using review::Choice;
using review::ExportFile;
using review::ExportRequest;
using review::RequestState;
using ::testing::HasSubstr;

ExportRequest new_request(const std::string& project, const std::string& requester) {
  ExportRequest r;
  r.project = project;
  r.compartment = "claims";
  r.session = "s-1";
  r.requester = requester;
  r.tier = "standard";
  r.profile = "acro-default";
  r.justification = "Table 2 of the paper";
  r.created_ms = 1000;
  for (std::uint32_t i = 0; i < 2; ++i) {
    ExportFile f;
    f.index = i;
    f.name = "t" + std::to_string(i) + ".csv";
    f.size = 100 + i;
    f.sha256 = std::string(64, static_cast<char>('a' + i));
    r.files.push_back(f);
  }
  return r;
}

TEST(ExportStore, ARequestReadsBackAsSaved) {
  testing::TempDir dir;
  auto store = ExportStore::open(dir / "exports.db");
  ASSERT_TRUE(store) << store.error().describe();
  auto r = new_request("P-1", "ana");
  ASSERT_TRUE(store->create(r));
  EXPECT_EQ(r.id, 1);
  for (auto& f : r.files) {
    f.checked = true;
    f.type = "table";
    f.report_json = R"({"status":"fail"})";
  }
  r.files[0].outcome = Outcome::kFail;
  r.files[0].safe_sha256 = std::string(64, 'f');
  r.files[0].safe_size = 90;
  r.files[0].safe_outcome = Outcome::kPass;
  r.files[0].choice = Choice::kSafe;
  r.files[1].choice = Choice::kException;
  r.files[1].exception_reason = "published totals";
  r.state = review::derive_state(r);
  ASSERT_EQ(r.state, RequestState::kWaitingReview);
  ASSERT_TRUE(review::decide(r, 0, {"steve", true, true}, review::Verdict::kApprove, "ok", 2000));
  ASSERT_TRUE(store->save(r));

  auto back = store->load(1);
  ASSERT_TRUE(back && *back);
  const auto& b = **back;
  EXPECT_EQ(b.state, RequestState::kWaitingReview);
  EXPECT_EQ(b.requester, "ana");
  EXPECT_EQ(b.updated_ms, 2000);
  ASSERT_EQ(b.files.size(), 2u);
  EXPECT_EQ(b.files[0].choice, Choice::kSafe);
  EXPECT_EQ(b.files[0].safe_outcome, Outcome::kPass);
  EXPECT_EQ(b.files[0].safe_size, 90u);
  EXPECT_EQ(b.files[1].exception_reason, "published totals");
  EXPECT_EQ(b.files[1].report_json, R"({"status":"fail"})");
  ASSERT_EQ(b.files[0].decisions.size(), 1u);
  EXPECT_EQ(b.files[0].decisions[0].steward, "steve");
  EXPECT_EQ(b.files[0].decisions[0].comment, "ok");
  auto missing = store->load(99);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST(ExportStore, QueuesFilterByStateProjectAndRequester) {
  testing::TempDir dir;
  auto store = ExportStore::open(dir / "exports.db");
  ASSERT_TRUE(store);
  for (const auto& [project, requester] : std::vector<std::pair<std::string, std::string>>{
           {"P-1", "ana"}, {"P-1", "steve"}, {"P-2", "ana"}, {"P-1", "bob"}}) {
    auto r = new_request(project, requester);
    ASSERT_TRUE(store->create(r));
    for (auto& f : r.files) {
      f.checked = true;
      f.choice = Choice::kOriginal;
    }
    r.state = review::derive_state(r);
    ASSERT_TRUE(store->save(r));
  }
  QueueFilter queue;
  queue.states = {RequestState::kWaitingReview};
  queue.projects = {"P-1"};
  queue.not_requester = "steve";
  auto rows = store->list(queue);
  ASSERT_TRUE(rows) << rows.error().describe();
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].requester, "ana");
  EXPECT_EQ((*rows)[1].requester, "bob");
  EXPECT_EQ((*rows)[0].waiting_files, 2u);
  EXPECT_EQ((*rows)[0].files, 2u);

  QueueFilter mine;
  mine.requester = "ana";
  EXPECT_EQ(store->list(mine)->size(), 2u);
  QueueFilter checking;
  checking.states = {RequestState::kChecking};
  EXPECT_TRUE(store->list(checking)->empty());
  queue.limit = 1;
  EXPECT_EQ(store->list(queue)->size(), 1u);
  EXPECT_EQ(store->count(queue).value(), 2u);  // the limit is the page's, not the count's

  // The next page starts after the last request of this one; the count stays the whole queue's.
  queue.after = (*rows)[0].id;
  auto next = store->list(queue);
  ASSERT_TRUE(next);
  ASSERT_EQ(next->size(), 1u);
  EXPECT_EQ((*next)[0].requester, "bob");
  EXPECT_EQ(store->count(queue).value(), 2u);
  queue.after = (*rows)[1].id;
  EXPECT_TRUE(store->list(queue)->empty());
  EXPECT_EQ(store->count(mine).value(), 2u);
  EXPECT_EQ(store->count(checking).value(), 0u);
}

TEST(ExportStore, ALinkIsClaimedOnceAndNotAfterItExpires) {
  testing::TempDir dir;
  auto store = ExportStore::open(dir / "exports.db");
  ASSERT_TRUE(store);
  auto r = new_request("P-1", "ana");
  ASSERT_TRUE(store->create(r));
  ReleaseRow rel;
  rel.id = "REL-1";
  rel.request = r.id;
  rel.project = "P-1";
  rel.created_ms = 5000;
  rel.size = 10240;
  rel.sha256 = std::string(64, 'b');
  rel.manifest_sha256 = std::string(64, 'c');
  rel.key_id = "k1";
  rel.wrapped_key = Bytes(60, 7);
  ASSERT_TRUE(store->insert_release(rel));
  ASSERT_TRUE(store->insert_link({"aa", "REL-1", "steve", 5000, 9000, 0, ""}));
  ASSERT_TRUE(store->insert_link({"bb", "REL-1", "steve", 5000, 6000, 0, ""}));

  LinkRefusal why{};
  auto first = store->claim_link("aa", 7000, "192.0.2.7", &why);
  ASSERT_TRUE(first) << first.error().describe();
  EXPECT_EQ(first->release, "REL-1");
  auto second = store->claim_link("aa", 7001, "192.0.2.7", &why);
  ASSERT_FALSE(second);
  EXPECT_EQ(why, LinkRefusal::kUsed);
  auto expired = store->claim_link("bb", 7000, "192.0.2.7", &why);
  ASSERT_FALSE(expired);
  EXPECT_EQ(why, LinkRefusal::kExpired);
  auto unknown = store->claim_link("cc", 7000, "192.0.2.7", &why);
  ASSERT_FALSE(unknown);
  EXPECT_EQ(why, LinkRefusal::kUnknown);
  auto links = store->links_of_release("REL-1");
  ASSERT_TRUE(links);
  ASSERT_EQ(links->size(), 2u);
  EXPECT_EQ((*links)[0].used_from, "192.0.2.7");

  ASSERT_TRUE(store->insert_link({"dd", "REL-1", "steve", 5000, 90000, 0, ""}));
  ASSERT_TRUE(store->set_release_state("REL-1", "deleted", 8000));
  ASSERT_FALSE(store->claim_link("dd", 8001, "192.0.2.7", &why));
  EXPECT_EQ(why, LinkRefusal::kReleaseGone);
  auto back = store->release("REL-1");
  ASSERT_TRUE(back && *back);
  EXPECT_EQ((*back)->state, "deleted");
  EXPECT_EQ((*back)->wrapped_key, Bytes(60, 7));
}

TEST(ExportStore, TwoConnectionsRacingForOneLinkGetItOnce) {
  testing::TempDir dir;
  {
    auto store = ExportStore::open(dir / "exports.db");
    ASSERT_TRUE(store);
    auto r = new_request("P-1", "ana");
    ASSERT_TRUE(store->create(r));
    ReleaseRow rel;
    rel.id = "REL-1";
    rel.request = r.id;
    rel.project = "P-1";
    rel.key_id = "k1";
    ASSERT_TRUE(store->insert_release(rel));
    ASSERT_TRUE(store->insert_link({"aa", "REL-1", "steve", 0, 1'000'000, 0, ""}));
  }
  std::atomic<int> wins{0};
  std::vector<std::thread> racers;
  for (int i = 0; i < 4; ++i) {
    racers.emplace_back([&, i] {
      auto store = ExportStore::open(dir / "exports.db");
      ASSERT_TRUE(store);
      if (store->claim_link("aa", 10, "192.0.2." + std::to_string(i), nullptr)) ++wins;
    });
  }
  for (auto& t : racers) t.join();
  EXPECT_EQ(wins.load(), 1);
}

}  // namespace
}  // namespace enclave::exitcontrol
