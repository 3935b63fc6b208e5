// The verifier's judgement on hand-built logs: each kind of tampering must be named exactly
// (which entry, which kind), and an intact log must give no finding at all.
#include "audit/core/verify.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "audit/core/event.hpp"

namespace enclave::audit::verify {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr std::int64_t kNow = 1'800'000'000'000'000;  // 2027-01-15
constexpr char kOrigin[] = "test.example/audit";

Event make_event(int i) {
  Event e;
  e.time_us = kNow - 3'600'000'000 + i * 1000;
  e.source = "test";
  e.actor = "user" + std::to_string(i % 7);
  e.site = "site-" + std::to_string(i % 3);
  e.type = "test.event";
  e.outcome = "success";
  e.object = "object-" + std::to_string(i);
  return e;
}

Entry entry_for(std::uint64_t index, const Event& e) {
  auto h = merkle::leaf_hash(encode_leaf(e));
  return {index, h, h, e.time_us};
}

// A log of `n` events sealed by checkpoints at `sizes`, with an off-box copy of every sealed
// leaf; tests then change `input` the way an attacker would change the database.
class VerifyTest : public ::testing::Test {
 protected:
  VerifyTest() : signer_(note::Signer::generate(kOrigin).value()), key_(signer_.verifier()) {}

  void build(int n, std::vector<std::uint64_t> sizes, bool with_offbox = true) {
    events_.clear();
    for (int i = 0; i < n; ++i) events_.push_back(make_event(i));
    input_ = Input{};
    input_.key = &key_;
    input_.origin = kOrigin;
    input_.now_us = kNow;
    input_.seal_interval_us = 10'000'000;
    std::vector<merkle::Hash> hashes;
    for (int i = 0; i < n; ++i) {
      input_.entries.push_back(entry_for(i, events_[i]));
      hashes.push_back(input_.entries.back().content_hash);
    }
    offbox::Copy copy;
    for (auto size : sizes) {
      auto note = seal(std::span(hashes).first(size));
      input_.checkpoints.push_back(
          {"database checkpoint " + std::to_string(size), note, kNow, true});
      copy.checkpoints.push_back({1, kNow, note});
      if (with_offbox) input_.checkpoints.push_back({"off-box copy", note, kNow, false});
    }
    if (with_offbox && !sizes.empty()) {
      copy.leaf_hashes.assign(hashes.begin(), hashes.begin() + sizes.back());
      input_.offbox.emplace_back("offbox-a", copy);
    }
  }

  std::string seal(std::span<const merkle::Hash> leaves, const note::Signer* by = nullptr) {
    note::Checkpoint cp{kOrigin, leaves.size(), merkle::root_of(leaves), {}};
    return note::format_note((by ? *by : signer_).sign_note(note::format_checkpoint(cp)));
  }

  // Overwrites row `at` with new content; keep_stored leaves its stored hash (an edit in place
  // with SQL UPDATE of the visible columns only).
  void modify(std::size_t at, bool keep_stored) {
    Event e = events_[at];
    e.actor = "mallory";
    auto h = merkle::leaf_hash(encode_leaf(e));
    input_.entries[at].content_hash = h;
    if (!keep_stored) input_.entries[at].stored_hash = h;
  }

  void renumber() {
    for (std::size_t i = 0; i < input_.entries.size(); ++i) input_.entries[i].index = i;
  }

  static std::vector<std::pair<FindingKind, std::optional<std::uint64_t>>> kinds(const Report& r) {
    std::vector<std::pair<FindingKind, std::optional<std::uint64_t>>> out;
    for (const auto& f : r.findings) out.emplace_back(f.kind, f.index);
    std::sort(out.begin(), out.end());
    return out;
  }

  note::Signer signer_;
  note::Verifier key_;
  std::vector<Event> events_;
  Input input_;
};

using P = std::pair<FindingKind, std::optional<std::uint64_t>>;

TEST_F(VerifyTest, IntactLogHasNoFinding) {
  build(100, {10, 50, 100});
  auto r = run(input_);
  EXPECT_TRUE(r.clean()) << r.findings.front().detail;
  EXPECT_TRUE(r.entry_level);
  ASSERT_TRUE(r.latest);
  EXPECT_EQ(r.latest->size, 100u);
  EXPECT_EQ(r.unsealed, 0u);
  EXPECT_EQ(r.genuine_checkpoints, 6u);  // three sizes, each in the database and off the box
}

TEST_F(VerifyTest, EditInPlaceIsNamed) {
  build(100, {50, 100});
  modify(17, /*keep_stored=*/true);
  auto r = run(input_);
  EXPECT_THAT(kinds(r), ElementsAre(P{FindingKind::kModified, 17}));
  EXPECT_EQ(r.findings[0].db_index, 17u);
  EXPECT_THAT(r.findings[0].detail, HasSubstr("edited in place"));
}

TEST_F(VerifyTest, EditWithRewrittenHashIsNamed) {
  build(100, {50, 100});
  modify(63, /*keep_stored=*/false);
  auto r = run(input_);
  EXPECT_THAT(kinds(r), ElementsAre(P{FindingKind::kModified, 63}));
}

TEST_F(VerifyTest, OverwrittenStoredHashIsNamed) {
  build(30, {30});
  input_.entries[12].stored_hash[3] ^= 0x40;
  EXPECT_THAT(kinds(run(input_)), ElementsAre(P{FindingKind::kHashAltered, 12}));
}

TEST_F(VerifyTest, DeletionIsNamedWithOrWithoutRenumbering) {
  build(60, {60});
  input_.entries.erase(input_.entries.begin() + 7);
  EXPECT_THAT(kinds(run(input_)), ElementsAre(P{FindingKind::kDeleted, 7}));
  renumber();  // the attacker closes the gap
  EXPECT_THAT(kinds(run(input_)), ElementsAre(P{FindingKind::kDeleted, 7}));
}

TEST_F(VerifyTest, InsertionIsNamed) {
  build(40, {40});
  auto forged = make_event(1000);
  input_.entries.insert(input_.entries.begin() + 4, entry_for(4, forged));
  renumber();
  auto r = run(input_);
  ASSERT_THAT(kinds(r), ElementsAre(P{FindingKind::kInserted, std::nullopt}));
  EXPECT_EQ(r.findings[0].db_index, 4u);
}

TEST_F(VerifyTest, SwapIsReorder) {
  build(30, {30});
  std::swap(input_.entries[2].content_hash, input_.entries[6].content_hash);
  std::swap(input_.entries[2].stored_hash, input_.entries[6].stored_hash);
  EXPECT_THAT(kinds(run(input_)),
              ElementsAre(P{FindingKind::kReordered, 2}, P{FindingKind::kReordered, 6}));
}

TEST_F(VerifyTest, MoveIsReorder) {
  build(30, {30});
  auto moved = input_.entries[3];
  input_.entries.erase(input_.entries.begin() + 3);
  input_.entries.insert(input_.entries.begin() + 20, moved);
  renumber();
  auto r = run(input_);
  ASSERT_THAT(kinds(r), ElementsAre(P{FindingKind::kReordered, 3}));
  EXPECT_EQ(r.findings[0].db_index, 20u);
}

TEST_F(VerifyTest, TruncationNamesEveryLostEntry) {
  build(50, {20, 50});
  input_.entries.resize(47);
  EXPECT_THAT(kinds(run(input_)),
              ElementsAre(P{FindingKind::kDeleted, 47}, P{FindingKind::kDeleted, 48},
                          P{FindingKind::kDeleted, 49}));
}

TEST_F(VerifyTest, SeveralChangesAtOnce) {
  build(200, {100, 200});
  modify(10, true);
  modify(150, false);
  input_.entries.erase(input_.entries.begin() + 90);  // no renumbering
  auto r = run(input_);
  EXPECT_THAT(kinds(r), ElementsAre(P{FindingKind::kModified, 10}, P{FindingKind::kModified, 150},
                                    P{FindingKind::kDeleted, 90}));
}

TEST_F(VerifyTest, ForgedCheckpointIsRefused) {
  build(20, {20});
  auto other = note::Signer::generate(kOrigin).value();  // same name, another key
  std::vector<merkle::Hash> hashes;
  for (const auto& e : input_.entries) hashes.push_back(e.content_hash);
  input_.checkpoints.push_back(
      {"database checkpoint 20 (forged)", seal(hashes, &other), kNow, true});
  auto r = run(input_);
  ASSERT_THAT(kinds(r), ElementsAre(P{FindingKind::kBadCheckpoint, std::nullopt}));
  EXPECT_THAT(r.findings[0].detail, HasSubstr("forged"));
}

TEST_F(VerifyTest, ConsistentRewriteWithoutOffboxIsBoundedByCheckpoints) {
  build(100, {25, 50, 75, 100}, /*with_offbox=*/false);
  modify(60, /*keep_stored=*/false);  // stored hash rewritten too: only the roots tell
  auto r = run(input_);
  EXPECT_FALSE(r.entry_level);
  ASSERT_THAT(kinds(r), ElementsAre(P{FindingKind::kRangeMismatch, 50}));
  EXPECT_THAT(r.findings[0].detail, HasSubstr("entries 50 to 74"));
  EXPECT_THAT(r.findings[0].detail, HasSubstr("1 later checkpoints"));
}

TEST_F(VerifyTest, WithoutOffboxRowsStillBetrayEditsAndHoles) {
  build(100, {50, 100}, /*with_offbox=*/false);
  modify(30, /*keep_stored=*/true);
  input_.entries.erase(input_.entries.begin() + 80);
  auto r = run(input_);
  EXPECT_THAT(kinds(r), ElementsAre(P{FindingKind::kModified, 30}, P{FindingKind::kDeleted, 80},
                                    P{FindingKind::kRangeMismatch, 0}));
}

TEST_F(VerifyTest, TamperedOffboxCopyIsReportedAndTheOtherCopyUsed) {
  build(80, {40, 80});
  auto bad = input_.offbox[0].second;
  bad.leaf_hashes[70][0] ^= 1;
  input_.offbox.insert(input_.offbox.begin(), {"offbox-bad", bad});
  modify(5, true);
  auto r = run(input_);
  EXPECT_THAT(kinds(r),
              ElementsAre(P{FindingKind::kModified, 5}, P{FindingKind::kOffboxMismatch, 80}));
  EXPECT_TRUE(r.entry_level);
}

TEST_F(VerifyTest, CheckpointDeletedFromDatabaseIsNoticed) {
  build(40, {20, 40});
  input_.checkpoints.erase(input_.checkpoints.begin() + 2);  // the database row of size 40
  EXPECT_THAT(kinds(run(input_)), ElementsAre(P{FindingKind::kCheckpointMissing, 40}));
}

TEST_F(VerifyTest, ConflictingGenuineCheckpointsAreReported) {
  build(20, {20});
  std::vector<merkle::Hash> other(20);
  for (int i = 0; i < 20; ++i) other[i] = merkle::leaf_hash(encode_leaf(make_event(i + 500)));
  input_.checkpoints.push_back({"off-box copy x line 9", seal(other), kNow, false});
  auto k = kinds(run(input_));
  EXPECT_THAT(k, ::testing::Contains(P{FindingKind::kConflictingCheckpoints, 20}));
}

TEST_F(VerifyTest, UnsealedTailIsReportedAndLateWhenOld) {
  build(50, {40});
  auto r = run(input_);
  EXPECT_EQ(r.unsealed, 10u);
  EXPECT_THAT(kinds(r), ElementsAre(P{FindingKind::kLateTail, 40}));  // an hour old
  input_.seal_interval_us = 2 * 3'600'000'000;
  r = run(input_);
  EXPECT_TRUE(r.clean());
  EXPECT_EQ(r.unsealed, 10u);
}

TEST_F(VerifyTest, GapInTheTailIsNamed) {
  build(50, {40});
  input_.seal_interval_us = 2 * 3'600'000'000;
  input_.entries.erase(input_.entries.begin() + 45);
  EXPECT_THAT(kinds(run(input_)), ElementsAre(P{FindingKind::kGap, 45}));
}

TEST_F(VerifyTest, ArchivedPrefixVerifiesTheRest) {
  build(100, {40, 100});
  merkle::CompactRange prefix;
  for (int i = 0; i < 40; ++i) prefix.append(input_.entries[i].content_hash);
  input_.entries.erase(input_.entries.begin(), input_.entries.begin() + 40);
  input_.archived_prefix = prefix;
  EXPECT_TRUE(run(input_).clean());

  modify(30, true);  // entry 70
  EXPECT_THAT(kinds(run(input_)), ElementsAre(P{FindingKind::kModified, 70}));

  build(100, {40, 100});
  input_.entries.erase(input_.entries.begin(), input_.entries.begin() + 40);
  input_.archived_prefix = merkle::CompactRange{};  // a record of other archived entries
  for (int i = 0; i < 40; ++i) input_.archived_prefix->append(merkle::leaf_hash(as_bytes("y")));
  auto r = run(input_);
  EXPECT_THAT(kinds(r), ::testing::Contains(P{FindingKind::kArchiveMismatch, 40}));
}

TEST_F(VerifyTest, LargeIntactLogTakesTheFastPath) {
  build(20000, {10000, 20000});
  EXPECT_TRUE(run(input_).clean());
}

}  // namespace
}  // namespace enclave::audit::verify
