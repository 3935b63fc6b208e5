// The SQLite store every service uses for its state: WAL, foreign keys, a busy timeout,
// versioned schema migrations (PRAGMA user_version), and a refusal to open a schema newer than
// this build knows. SQLite result codes become Errc values: SQLITE_FULL is kNoSpace,
// SQLITE_CORRUPT and SQLITE_NOTADB are kCorrupt, SQLITE_BUSY/LOCKED kUnavailable, and so on;
// every message names the database file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace enclave::store {

// Migration N takes the schema from version N-1 to N. Versions start at 1 and are contiguous.
struct Migration {
  int version;
  std::string_view sql;
};

enum class Access { kReadWrite, kReadOnly };
enum class Sync { kFull, kNormal };  // kFull: a COMMIT returns only once it is on disk

struct OpenOptions {
  Access access = Access::kReadWrite;
  Sync sync = Sync::kFull;
  int busy_timeout_ms = 5000;
  bool create = true;  // create the file if missing (read-write only)
  // Bytes per page for a database created by this open (a power of two, 512 to 65536); 0
  // keeps SQLite's default. Ignored for an existing database.
  int page_size = 0;
};

class Statement;

// A connection's prepared statements kept for reuse, by SQL text: a Statement from prepare()
// goes back here, reset, when it is destroyed, so a query run again is not compiled again.
struct StatementCache {
  // Entries are never erased while the connection is open, so a Statement may keep a pointer
  // to its text's list (unordered_map elements stay where they are).
  std::unordered_map<std::string, std::vector<sqlite3_stmt*>> idle;
  bool closed = false;  // the connection is closing: statements are finalized, not kept
};

// A Database and its Statements are used by one thread at a time (connections are opened
// without SQLite's own mutex); a service with several threads opens one each.
class Database {
 public:
  // Opens (creating when allowed), applies pending migrations in one transaction each, and
  // refuses (kConflict) a database whose user_version is newer than the last migration.
  // A read-only open applies no migrations and refuses an older schema too (kConflict).
  static Expected<Database> open(const std::filesystem::path& path,
                                 std::span<const Migration> migrations, OpenOptions options = {});

  Database(Database&&) noexcept;
  Database& operator=(Database&&) noexcept;
  ~Database();

  const std::filesystem::path& path() const { return path_; }
  int schema_version() const { return schema_version_; }

  Status exec(std::string_view sql);  // one or more statements, no results
  // One statement, compiled once per connection: a Statement of the same text that was
  // destroyed is reused (reset, bindings cleared).
  Expected<Statement> prepare(std::string_view sql);

  Status begin_immediate();
  Status commit();
  Status rollback();  // harmless when no transaction is open

  std::int64_t last_insert_rowid() const;
  int changes() const;
  sqlite3* handle() { return db_; }

  // Maps a SQLite result code to an Error naming this database and what was being done.
  Error error(int rc, std::string_view doing) const;

 private:
  Database(sqlite3* db, std::filesystem::path path);
  void close();
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  std::shared_ptr<StatementCache> cache_;
  int schema_version_ = 0;
};

// A prepared statement. Bind indexes start at 1, column indexes at 0 (as in SQLite).
class Statement {
 public:
  Statement(Statement&&) noexcept;
  Statement& operator=(Statement&&) noexcept;
  ~Statement();

  Statement& bind(int index, std::int64_t value);
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, ByteSpan blob);
  Statement& bind_null(int index);

  // true: a row is available; false: done. Errors carry the statement's database path.
  Expected<bool> step();
  Status run();  // step until done, for statements without result rows
  void reset();  // reset and clear bindings for reuse

  std::int64_t column_int64(int col) const;
  std::string_view column_text(int col) const;  // valid until the next step/reset
  ByteSpan column_blob(int col) const;          // valid until the next step/reset
  bool column_is_null(int col) const;

 private:
  friend class Database;
  // Errors name the file through sqlite3_db_handle(stmt_), so a Statement stays valid when its
  // Database object is moved.
  explicit Statement(sqlite3_stmt* stmt, std::shared_ptr<StatementCache> cache = {},
                     std::vector<sqlite3_stmt*>* home = nullptr)
      : stmt_(stmt), cache_(std::move(cache)), home_(home) {}
  void record_bind(int rc, int index);
  void release();  // back to the cache, or finalized
  sqlite3_stmt* stmt_ = nullptr;
  std::shared_ptr<StatementCache> cache_;       // none: finalized when done
  std::vector<sqlite3_stmt*>* home_ = nullptr;  // its text's list in cache_
  Status bind_status_;                          // first bind failure, reported by step()
};

}  // namespace enclave::store
