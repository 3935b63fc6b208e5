#include "common/store.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <vector>

namespace enclave::store {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr Migration kMigrations[] = {
    {1, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"},
    {2,
     "CREATE TABLE sessions (id INTEGER PRIMARY KEY,"
     "  user_id INTEGER NOT NULL REFERENCES users(id));"
     "CREATE INDEX sessions_by_user ON sessions(user_id);"},
    {3, "CREATE TABLE items (k TEXT PRIMARY KEY, t TEXT, b BLOB);"},
};

// Looks at a file with plain SQLite, bypassing the wrapper (and its migrations).
class RawDb {
 public:
  explicit RawDb(const std::filesystem::path& path) {
    EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr), SQLITE_OK) << sql;
    std::string out;
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    }
    sqlite3_finalize(s);
    return out;
  }
  bool has_table(const std::string& name) {
    return text("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='" + name + "'") ==
           "1";
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string query_text(Database& db, std::string_view sql) {
  auto s = db.prepare(sql);
  EXPECT_TRUE(s.has_value()) << s.error().describe();
  auto row = s->step();
  EXPECT_TRUE(row.has_value() && *row) << sql;
  return std::string(s->column_text(0));
}

std::int64_t query_int(Database& db, std::string_view sql) {
  auto s = db.prepare(sql);
  EXPECT_TRUE(s.has_value()) << s.error().describe();
  auto row = s->step();
  EXPECT_TRUE(row.has_value() && *row) << sql;
  return s->column_int64(0);
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/store_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ / "state.db";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Database open_ok(std::span<const Migration> migrations = kMigrations, OpenOptions options = {}) {
    auto db = Database::open(path_, migrations, options);
    EXPECT_TRUE(db.has_value()) << db.error().describe();
    return std::move(db).value();
  }

  std::filesystem::path dir_;
  std::filesystem::path path_;
};

TEST_F(StoreTest, CreatesAndMigratesWithTheRequiredPragmas) {
  Database db = open_ok();
  EXPECT_EQ(db.schema_version(), 3);
  EXPECT_EQ(db.path(), path_);
  EXPECT_EQ(query_text(db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query_int(db, "PRAGMA foreign_keys"), 1);
  EXPECT_EQ(query_int(db, "PRAGMA synchronous"), 2);  // FULL
  EXPECT_EQ(query_int(db, "PRAGMA busy_timeout"), 5000);
  EXPECT_EQ(query_int(db, "PRAGMA user_version"), 3);
  RawDb raw(path_);
  EXPECT_TRUE(raw.has_table("users"));
  EXPECT_TRUE(raw.has_table("sessions"));
  EXPECT_TRUE(raw.has_table("items"));
}

TEST_F(StoreTest, OptionsSetSynchronousAndBusyTimeout) {
  OpenOptions options;
  options.sync = Sync::kNormal;
  options.busy_timeout_ms = 1234;
  Database db = open_ok(kMigrations, options);
  EXPECT_EQ(query_int(db, "PRAGMA synchronous"), 1);  // NORMAL
  EXPECT_EQ(query_int(db, "PRAGMA busy_timeout"), 1234);
}

TEST_F(StoreTest, ReopenIsIdempotentAndKeepsData) {
  {
    Database db = open_ok();
    ASSERT_TRUE(db.exec("INSERT INTO users (name) VALUES ('ada')").has_value());
  }
  Database db = open_ok();  // a re-run migration would fail on CREATE TABLE
  EXPECT_EQ(db.schema_version(), 3);
  EXPECT_EQ(query_text(db, "SELECT name FROM users"), "ada");
}

TEST_F(StoreTest, AppliesOnlyPendingMigrations) {
  {
    Database db = open_ok(std::span(kMigrations).first(2));
    EXPECT_EQ(db.schema_version(), 2);
    ASSERT_TRUE(db.exec("INSERT INTO users (name) VALUES ('bob')").has_value());
  }
  EXPECT_FALSE(RawDb(path_).has_table("items"));
  Database db = open_ok();
  EXPECT_EQ(db.schema_version(), 3);
  EXPECT_EQ(query_text(db, "SELECT name FROM users"), "bob");
  EXPECT_TRUE(RawDb(path_).has_table("items"));
}

TEST_F(StoreTest, RefusesANewerSchemaWithoutTouchingIt) {
  constexpr Migration five[] = {{1, "CREATE TABLE a (x);"},
                                {2, "CREATE TABLE b (x);"},
                                {3, "CREATE TABLE c (x);"},
                                {4, "CREATE TABLE d (x);"},
                                {5, "CREATE TABLE e (x);"}};
  {
    Database db = open_ok(five);
    ASSERT_TRUE(db.exec("PRAGMA user_version = 7").has_value());
  }
  auto db = Database::open(path_, five);
  ASSERT_FALSE(db.has_value());
  EXPECT_EQ(db.error().code, Errc::kConflict);
  EXPECT_EQ(db.error().message, path_.string() +
                                    ": schema version 7 is newer than this build knows (5); "
                                    "refusing to open");
  EXPECT_EQ(RawDb(path_).text("PRAGMA user_version"), "7");

  OpenOptions ro;
  ro.access = Access::kReadOnly;
  auto read_only = Database::open(path_, five, ro);
  ASSERT_FALSE(read_only.has_value());
  EXPECT_EQ(read_only.error().code, Errc::kConflict);
}

TEST_F(StoreTest, FailingMigrationRollsBackCompletely) {
  constexpr Migration broken[] = {
      {1, "CREATE TABLE users (id INTEGER PRIMARY KEY);"},
      {2, "CREATE TABLE half (x); INSERT INTO half VALUES (1); INSERT INTO nosuch VALUES (1);"},
  };
  auto db = Database::open(path_, broken);
  ASSERT_FALSE(db.has_value());
  EXPECT_EQ(db.error().code, Errc::kInternal);
  EXPECT_THAT(db.error().message, StartsWith(path_.string() + ": applying migration 2: "));
  EXPECT_THAT(db.error().message, HasSubstr("nosuch"));
  {
    RawDb raw(path_);
    EXPECT_TRUE(raw.has_table("users"));  // migration 1 committed on its own
    EXPECT_FALSE(raw.has_table("half"));
    EXPECT_EQ(raw.text("PRAGMA user_version"), "1");
  }
  constexpr Migration fixed[] = {
      {1, "CREATE TABLE users (id INTEGER PRIMARY KEY);"},
      {2, "CREATE TABLE half (x); INSERT INTO half VALUES (1);"},
  };
  Database again = open_ok(fixed);
  EXPECT_EQ(again.schema_version(), 2);
  EXPECT_EQ(query_int(again, "SELECT count(*) FROM half"), 1);
}

TEST_F(StoreTest, MigrationListMustBeContiguousFromOne) {
  constexpr Migration gap[] = {{1, "CREATE TABLE a (x);"}, {3, "CREATE TABLE b (x);"}};
  constexpr Migration late_start[] = {{2, "CREATE TABLE a (x);"}};
  constexpr Migration repeated[] = {{1, "CREATE TABLE a (x);"}, {1, "CREATE TABLE b (x);"}};
  for (std::span<const Migration> bad :
       {std::span<const Migration>(gap), std::span<const Migration>(late_start),
        std::span<const Migration>(repeated)}) {
    auto db = Database::open(path_, bad);
    ASSERT_FALSE(db.has_value());
    EXPECT_EQ(db.error().code, Errc::kInternal);
    EXPECT_THAT(db.error().message, HasSubstr("numbered 1..N"));
  }
  EXPECT_FALSE(std::filesystem::exists(path_));  // refused before touching the disk
}

TEST_F(StoreTest, ReadOnlyOpenReadsButRefusesWrites) {
  {
    Database db = open_ok();
    ASSERT_TRUE(db.exec("INSERT INTO users (name) VALUES ('cy')").has_value());
  }
  OpenOptions ro;
  ro.access = Access::kReadOnly;
  Database db = open_ok(kMigrations, ro);
  EXPECT_EQ(db.schema_version(), 3);
  EXPECT_EQ(query_text(db, "SELECT name FROM users"), "cy");
  auto insert = db.exec("INSERT INTO users (name) VALUES ('dee')");
  ASSERT_FALSE(insert.has_value());
  EXPECT_EQ(insert.error().code, Errc::kPermission);
  EXPECT_THAT(insert.error().message, HasSubstr(path_.filename().string()));
  auto ddl = db.exec("CREATE TABLE x (y)");
  ASSERT_FALSE(ddl.has_value());
  EXPECT_EQ(ddl.error().code, Errc::kPermission);
}

TEST_F(StoreTest, ReadOnlyOpenRequiresTheExactSchemaVersion) {
  { Database db = open_ok(std::span(kMigrations).first(2)); }
  OpenOptions ro;
  ro.access = Access::kReadOnly;
  auto db = Database::open(path_, kMigrations, ro);
  ASSERT_FALSE(db.has_value());
  EXPECT_EQ(db.error().code, Errc::kConflict);
  EXPECT_EQ(db.error().message, path_.string() +
                                    ": schema version 2 is older than this build needs (3); a "
                                    "read-only open applies no migrations");
  EXPECT_EQ(RawDb(path_).text("PRAGMA user_version"), "2");
}

TEST_F(StoreTest, MissingFileIsNotFoundWhenCreationIsNotAllowed) {
  OpenOptions ro;
  ro.access = Access::kReadOnly;
  auto read_only = Database::open(path_, kMigrations, ro);
  ASSERT_FALSE(read_only.has_value());
  EXPECT_EQ(read_only.error().code, Errc::kNotFound);
  EXPECT_THAT(read_only.error().message, StartsWith(path_.string() + ": opening: "));

  OpenOptions no_create;
  no_create.create = false;
  auto rw = Database::open(path_, kMigrations, no_create);
  ASSERT_FALSE(rw.has_value());
  EXPECT_EQ(rw.error().code, Errc::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST_F(StoreTest, GarbageFileIsCorrupt) {
  {
    std::ofstream out(path_, std::ios::binary);
    for (int i = 0; i < 512; ++i) out << "this is not an SQLite database. ";
  }
  auto rw = Database::open(path_, kMigrations);
  ASSERT_FALSE(rw.has_value());
  EXPECT_EQ(rw.error().code, Errc::kCorrupt);
  EXPECT_THAT(rw.error().message, StartsWith(path_.string() + ": "));

  OpenOptions ro;
  ro.access = Access::kReadOnly;
  auto read_only = Database::open(path_, kMigrations, ro);
  ASSERT_FALSE(read_only.has_value());
  EXPECT_EQ(read_only.error().code, Errc::kCorrupt);
  EXPECT_THAT(read_only.error().message, StartsWith(path_.string() + ": "));
}

// SQLite's own SQLITE_FULL path: the database may not grow past max_page_count.
TEST_F(StoreTest, DiskFullIsNoSpaceAndKeepsCommittedRows) {
  constexpr Migration blobs[] = {{1, "CREATE TABLE t (id INTEGER PRIMARY KEY, data BLOB);"}};
  Database db = open_ok(blobs);
  const std::vector<std::uint8_t> small(100, 0xab);
  for (int i = 0; i < 5; ++i) {
    auto s = db.prepare("INSERT INTO t (data) VALUES (?)");
    ASSERT_TRUE(s.has_value());
    ASSERT_TRUE(s->bind(1, ByteSpan(small)).run().has_value());
  }
  const std::int64_t pages = query_int(db, "PRAGMA page_count");
  ASSERT_TRUE(db.exec("PRAGMA max_page_count = " + std::to_string(pages + 4)).has_value());

  const std::vector<std::uint8_t> big(4096, 0xcd);
  auto insert = db.prepare("INSERT INTO t (data) VALUES (?)");
  ASSERT_TRUE(insert.has_value());
  int stored = 0;
  Status last;
  for (int i = 0; i < 100 && last.has_value(); ++i) {
    last = insert->bind(1, ByteSpan(big)).run();
    insert->reset();
    if (last.has_value()) ++stored;
  }
  ASSERT_FALSE(last.has_value()) << "the page limit was never reached";
  EXPECT_EQ(last.error().code, Errc::kNoSpace);
  EXPECT_THAT(last.error().message, StartsWith(path_.string() + ": "));
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM t"), 5 + stored);

  Database reopened = open_ok(blobs);
  EXPECT_EQ(query_text(reopened, "PRAGMA integrity_check"), "ok");
  EXPECT_EQ(query_int(reopened, "SELECT count(*) FROM t"), 5 + stored);
  auto first = reopened.prepare("SELECT data FROM t WHERE id = 1");
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->step().value());
  ByteSpan data = first->column_blob(0);
  EXPECT_EQ(std::vector<std::uint8_t>(data.begin(), data.end()), small);
}

TEST_F(StoreTest, ForeignKeysAreEnforced) {
  Database db = open_ok();
  auto orphan = db.exec("INSERT INTO sessions (user_id) VALUES (42)");
  ASSERT_FALSE(orphan.has_value());
  EXPECT_EQ(orphan.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(orphan.error().message, HasSubstr("FOREIGN KEY constraint failed"));
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM sessions"), 0);
}

TEST_F(StoreTest, UniqueViolationIsAlreadyExists) {
  Database db = open_ok();
  ASSERT_TRUE(db.exec("INSERT INTO users (name) VALUES ('ada')").has_value());
  auto again = db.exec("INSERT INTO users (name) VALUES ('ada')");
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_THAT(again.error().message, HasSubstr("UNIQUE constraint failed: users.name"));
}

TEST_F(StoreTest, BusyWriterGivesUnavailableAfterTheTimeout) {
  Database holder = open_ok();
  ASSERT_TRUE(holder.begin_immediate().has_value());
  ASSERT_TRUE(holder.exec("INSERT INTO users (name) VALUES ('lock')").has_value());

  OpenOptions options;
  options.busy_timeout_ms = 300;
  Database waiter = open_ok(kMigrations, options);  // readers are not blocked under WAL
  const auto start = std::chrono::steady_clock::now();
  auto begun = waiter.begin_immediate();
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(begun.has_value());
  EXPECT_EQ(begun.error().code, Errc::kUnavailable);
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::seconds(5));
  EXPECT_EQ(query_int(waiter, "SELECT count(*) FROM users"), 0);  // uncommitted row unseen

  ASSERT_TRUE(holder.commit().has_value());
  ASSERT_TRUE(waiter.begin_immediate().has_value());
  ASSERT_TRUE(waiter.rollback().has_value());
  EXPECT_EQ(query_int(waiter, "SELECT count(*) FROM users"), 1);
}

TEST_F(StoreTest, TextAndBlobsRoundTripIncludingNuls) {
  Database db = open_ok();
  const std::string text("a\0b\0c", 5);
  const std::vector<std::uint8_t> blob = {0x00, 0xff, 0x00, 0x01, 0x00};
  auto insert = db.prepare("INSERT INTO items (k, t, b) VALUES (?, ?, ?)");
  ASSERT_TRUE(insert.has_value());
  ASSERT_TRUE(insert->bind(1, "nuls").bind(2, text).bind(3, ByteSpan(blob)).run().has_value());
  insert->reset();
  ASSERT_TRUE(
      insert->bind(1, "empty").bind(2, std::string_view()).bind(3, ByteSpan()).run().has_value());
  insert->reset();
  ASSERT_TRUE(insert->bind(1, "null").bind_null(2).bind_null(3).run().has_value());

  auto select = db.prepare("SELECT t, b, length(t), typeof(t), typeof(b) FROM items WHERE k = ?");
  ASSERT_TRUE(select.has_value());
  ASSERT_TRUE(select->bind(1, "nuls").step().value());
  EXPECT_EQ(select->column_text(0), text);
  ByteSpan got = select->column_blob(1);
  EXPECT_EQ(std::vector<std::uint8_t>(got.begin(), got.end()), blob);
  EXPECT_FALSE(select->step().value());

  select->reset();
  ASSERT_TRUE(select->bind(1, "empty").step().value());
  EXPECT_FALSE(select->column_is_null(0));  // empty is not NULL
  EXPECT_FALSE(select->column_is_null(1));
  EXPECT_EQ(select->column_text(0), "");
  EXPECT_TRUE(select->column_blob(1).empty());
  EXPECT_EQ(select->column_text(3), "text");
  EXPECT_EQ(select->column_text(4), "blob");

  select->reset();
  ASSERT_TRUE(select->bind(1, "null").step().value());
  EXPECT_TRUE(select->column_is_null(0));
  EXPECT_TRUE(select->column_is_null(1));
}

TEST_F(StoreTest, IntegersRoundTripAtTheLimits) {
  Database db = open_ok();
  ASSERT_TRUE(db.exec("CREATE TABLE n (v INTEGER)").has_value());
  auto insert = db.prepare("INSERT INTO n (v) VALUES (?)");
  ASSERT_TRUE(insert.has_value());
  for (std::int64_t v : {INT64_MIN, std::int64_t{-1}, std::int64_t{0}, INT64_MAX}) {
    ASSERT_TRUE(insert->bind(1, v).run().has_value());
    insert->reset();
    EXPECT_EQ(query_int(db, "SELECT v FROM n WHERE rowid = last_insert_rowid()"), v);
    EXPECT_EQ(db.changes(), 1);
  }
  EXPECT_EQ(db.last_insert_rowid(), 4);
}

TEST_F(StoreTest, FailedBindIsReportedByStepAndClearedByReset) {
  Database db = open_ok();
  auto s = db.prepare("INSERT INTO users (name) VALUES (?)");
  ASSERT_TRUE(s.has_value());
  s->bind(5, "out of range").bind(1, "ok");
  auto stepped = s->step();
  ASSERT_FALSE(stepped.has_value());
  EXPECT_EQ(stepped.error().code, Errc::kInvalidArgument);
  EXPECT_THAT(stepped.error().message, HasSubstr("binding parameter 5"));
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM users"), 0);  // nothing ran
  s->reset();
  ASSERT_TRUE(s->bind(1, "ok").run().has_value());
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM users"), 1);
}

TEST_F(StoreTest, PrepareErrors) {
  Database db = open_ok();
  auto syntax = db.prepare("SELEC 1");
  ASSERT_FALSE(syntax.has_value());
  EXPECT_EQ(syntax.error().code, Errc::kInternal);
  EXPECT_EQ(syntax.error().message,
            path_.string() + ": preparing 'SELEC 1': near \"SELEC\": syntax error");
  auto two = db.prepare("SELECT 1; SELECT 2");
  ASSERT_FALSE(two.has_value());
  EXPECT_EQ(two.error().code, Errc::kInternal);
  auto empty = db.prepare("  ");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().code, Errc::kInternal);
  EXPECT_TRUE(db.prepare("SELECT 1;  \n").has_value());
}

TEST_F(StoreTest, TransactionsCommitAndRollBack) {
  Database db = open_ok();
  EXPECT_TRUE(db.rollback().has_value());  // nothing open: harmless
  ASSERT_TRUE(db.begin_immediate().has_value());
  ASSERT_TRUE(db.exec("INSERT INTO users (name) VALUES ('gone')").has_value());
  ASSERT_TRUE(db.rollback().has_value());
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM users"), 0);
  ASSERT_TRUE(db.begin_immediate().has_value());
  ASSERT_TRUE(db.exec("INSERT INTO users (name) VALUES ('kept'); INSERT INTO users (name) "
                      "VALUES ('also');")
                  .has_value());
  ASSERT_TRUE(db.commit().has_value());
  EXPECT_EQ(query_int(db, "SELECT count(*) FROM users"), 2);
  auto commit_without_begin = db.commit();
  ASSERT_FALSE(commit_without_begin.has_value());
  EXPECT_EQ(commit_without_begin.error().code, Errc::kInternal);
}

TEST_F(StoreTest, StatementsSurviveMovingTheirDatabase) {
  Database first = open_ok();
  auto s = first.prepare("INSERT INTO users (name) VALUES (?)");
  ASSERT_TRUE(s.has_value());
  Database moved = std::move(first);
  Statement statement = std::move(s).value();
  ASSERT_TRUE(statement.bind(1, "x").run().has_value());
  statement.reset();
  auto dup = statement.bind(1, "x").run();
  ASSERT_FALSE(dup.has_value());
  EXPECT_EQ(dup.error().code, Errc::kAlreadyExists);
  EXPECT_THAT(dup.error().message, HasSubstr(path_.filename().string()));
  EXPECT_EQ(query_int(moved, "SELECT count(*) FROM users"), 1);
}

}  // namespace
}  // namespace enclave::store

namespace enclave::store {
namespace {

// prepare() keeps compiled statements per connection: a statement used again comes back reset
// and unbound, one still in use is never handed out twice, and a connection closed while a
// statement is out leaves nothing behind (ASan would see it).
TEST_F(StoreTest, PreparedStatementsComeBackResetAndUnbound) {
  Database db = open_ok();
  ASSERT_TRUE(db.exec("CREATE TABLE n (v INTEGER); INSERT INTO n VALUES (1), (2), (3);"));
  const std::string_view sql = "SELECT v FROM n WHERE v >= ?1 ORDER BY v";
  {
    auto first = db.prepare(sql);
    ASSERT_TRUE(first);
    first->bind(1, std::int64_t{2});
    ASSERT_TRUE(first->step().value());
    EXPECT_EQ(first->column_int64(0), 2);
    // Left in the middle of its rows: going back to the cache resets it.
  }
  auto again = db.prepare(sql);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->step().value()) << "the earlier binding is gone: ?1 is NULL, no row";
  again->reset();
  again->bind(1, std::int64_t{1});
  ASSERT_TRUE(again->step().value()) << "from the first row again";
  EXPECT_EQ(again->column_int64(0), 1);
  auto both = db.prepare(sql);  // the same text while `again` is still out: its own statement
  ASSERT_TRUE(both);
  both->bind(1, std::int64_t{3});
  ASSERT_TRUE(both->step().value());
  EXPECT_EQ(both->column_int64(0), 3);
  ASSERT_TRUE(again->step().value());
  EXPECT_EQ(again->column_int64(0), 2) << "the two statements iterate apart";
  // Writers see their own writes through a reused statement.
  ASSERT_TRUE(db.exec("INSERT INTO n VALUES (4)"));
  Database closed = std::move(db);
  { Database gone = std::move(closed); }  // closes with `again` and `both` still out
}

}  // namespace
}  // namespace enclave::store
