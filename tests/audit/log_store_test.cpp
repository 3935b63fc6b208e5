// The audit database on its own: rows hold exactly the leaf fields, appends are all or
// nothing, queries filter as documented, archives drop rows and nodes, proofs read back.
#include "audit/service/log_store.hpp"

#include <gtest/gtest.h>

#include "tests/support/process.hpp"

namespace enclave::audit {
namespace {

Event event(int i) {
  Event e;
  e.time_us = 1'700'000'000'000'000 + i * 1'000'000LL;
  e.source = "test";
  e.actor = i % 2 ? "alice" : "bob";
  e.site = "site-" + std::to_string(i % 3);
  e.device = "tc-" + std::to_string(i % 4);
  e.session = "s-" + std::to_string(i / 5);
  e.type = i % 3 ? "session.activity" : "login.attempt";
  e.outcome = i % 7 ? "success" : "failure";
  e.object = "o" + std::to_string(i);
  e.details = R"({"i":)" + std::to_string(i) + "}";
  return e;
}

class LogStoreTest : public ::testing::Test {
 protected:
  LogStore open(store::Access access = store::Access::kReadWrite) {
    store::OpenOptions o;
    o.access = access;
    auto s = LogStore::open(dir_ / "audit.db", o);
    EXPECT_TRUE(s) << s.error().describe();
    return std::move(s).value();
  }

  // Appends n events through a TileWriter, as the daemon does.
  void fill(LogStore& s, int n, int batch = 7) {
    for (int first = 0; first < n; first += batch) {
      std::vector<Event> events;
      for (int i = first; i < std::min(n, first + batch); ++i) events.push_back(event(i));
      auto hashes = leaf_hashes(events);
      auto nodes = tree_.append(hashes);
      ASSERT_TRUE(s.append(static_cast<std::uint64_t>(first), events, hashes, nodes));
      for (auto h : hashes) all_.push_back(h);
    }
  }

  testing::TempDir dir_;
  tiles::TileWriter tree_;
  std::vector<merkle::Hash> all_;
};

TEST_F(LogStoreTest, RowsReadBackAsAppended) {
  auto s = open();
  fill(s, 20);
  std::vector<StoredEvent> rows;
  ASSERT_TRUE(s.scan(0, [&](const StoredEvent& r) {
    rows.push_back(r);
    return true;
  }));
  ASSERT_EQ(rows.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(rows[i].index, static_cast<std::uint64_t>(i));
    EXPECT_EQ(rows[i].event, event(i));
    EXPECT_EQ(rows[i].stored_hash, all_[i]);
  }
  EXPECT_EQ(s.end_index().value(), 20u);
  EXPECT_EQ(s.first_index().value(), 0u);
  EXPECT_EQ(s.get(7).value()->event, event(7));
  EXPECT_FALSE(s.get(99).value());
}

TEST_F(LogStoreTest, AFailedAppendWritesNothing) {
  auto s = open();
  fill(s, 5);
  std::vector<Event> events = {event(5), event(6)};
  auto hashes = leaf_hashes(events);
  // Index 4 is taken: the second row fails, so the first must not stay either.
  auto r = s.append(3, events, hashes, {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(s.end_index().value(), 5u);
  EXPECT_EQ(s.get(3).value()->event, event(3));
}

TEST_F(LogStoreTest, QueriesFilterAndOrder) {
  auto s = open();
  fill(s, 60);
  Query q;
  q.actor = "alice";
  q.type = "login.attempt";
  auto rows = s.query(q).value();
  ASSERT_FALSE(rows.empty());
  for (const auto& r : rows) {
    EXPECT_EQ(r.event.actor, "alice");
    EXPECT_EQ(r.event.type, "login.attempt");
  }
  Query t;
  t.since_us = event(10).time_us;
  t.until_us = event(20).time_us;  // exclusive
  rows = s.query(t).value();
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows.front().index, 10u);
  EXPECT_EQ(rows.back().index, 19u);
  Query newest;
  newest.limit = 3;
  newest.newest_first = true;
  rows = s.query(newest).value();
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].index, 59u);
  Query session;
  session.session = "s-4";
  EXPECT_EQ(s.query(session).value().size(), 5u);
}

TEST_F(LogStoreTest, ProofsReadFromTheStoreMatchTheTree) {
  auto s = open();
  fill(s, 700, 64);  // crosses two 256-leaf tiles
  StoreNodeReader reader(s);
  merkle::Tree reference;
  for (const auto& h : all_) reference.append(h);
  for (std::uint64_t size : {1u, 255u, 256u, 257u, 700u}) {
    EXPECT_EQ(tiles::root(reader, size).value(), reference.root(size).value()) << size;
    for (std::uint64_t index : {0ul, size / 2, size - 1}) {
      EXPECT_EQ(tiles::inclusion_proof(reader, index, size).value(),
                reference.inclusion_proof(index, size).value())
          << index << "/" << size;
    }
  }
  EXPECT_FALSE(tiles::root(reader, 701));  // beyond the log: the reader finds no row
}

TEST_F(LogStoreTest, ArchiveDropsRowsAndKeepsThePrefix) {
  auto s = open();
  fill(s, 600, 50);
  merkle::CompactRange prefix;
  for (int i = 0; i < 512; ++i) prefix.append(all_[i]);
  ArchiveRecord record{0, 512, 1, "a.archive", "00", prefix};
  ASSERT_TRUE(s.drop_archived(record));
  EXPECT_EQ(s.first_index().value(), 512u);
  EXPECT_EQ(s.end_index().value(), 600u);
  auto archives = s.archives().value();
  ASSERT_EQ(archives.size(), 1u);
  EXPECT_EQ(archives[0].prefix, prefix);
  EXPECT_EQ(archived_prefix(archives), prefix);

  // The live part still proves from the prefix, reading nothing below it.
  StoreNodeReader reader(s);
  merkle::Tree reference;
  for (const auto& h : all_) reference.append(h);
  tiles::KnownRanges known{&prefix, nullptr};
  EXPECT_EQ(tiles::inclusion_proof(reader, 550, 600, known).value(),
            reference.inclusion_proof(550, 600).value());
  auto& db = s.database();
  auto left = db.prepare("SELECT count(*) FROM tree_nodes WHERE ((idx + 1) << level) <= 512");
  ASSERT_TRUE(left && left->step().value());
  EXPECT_EQ(left->column_int64(0), 0);
}

TEST_F(LogStoreTest, ArchivingEverythingContinuesTheIndex) {
  auto s = open();
  fill(s, 10);
  merkle::CompactRange prefix;
  for (const auto& h : all_) prefix.append(h);
  ASSERT_TRUE(s.drop_archived({0, 10, 1, "a", "00", prefix}));
  EXPECT_EQ(s.end_index().value(), 10u);
  EXPECT_FALSE(s.first_index().value());
}

TEST_F(LogStoreTest, CheckpointsAndMeta) {
  auto s = open();
  EXPECT_FALSE(s.latest_checkpoint().value());
  ASSERT_TRUE(s.add_checkpoint({10, 5, "note ten\n"}));
  ASSERT_TRUE(s.add_checkpoint({20, 6, "note twenty\n"}));
  EXPECT_FALSE(s.add_checkpoint({20, 7, "again\n"}));
  EXPECT_EQ(s.latest_checkpoint().value()->size, 20u);
  EXPECT_EQ(s.checkpoints().value().size(), 2u);
  EXPECT_FALSE(s.meta("k").value());
  ASSERT_TRUE(s.set_meta("k", "v1"));
  ASSERT_TRUE(s.set_meta("k", "v2"));
  EXPECT_EQ(*s.meta("k").value(), "v2");
}

TEST_F(LogStoreTest, ReadOnlyOpenCannotWrite) {
  { auto created = open(); }
  auto s = open(store::Access::kReadOnly);
  std::vector<Event> events = {event(0)};
  auto r = s.append(0, events, leaf_hashes(events), {});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kPermission);
}

}  // namespace
}  // namespace enclave::audit
