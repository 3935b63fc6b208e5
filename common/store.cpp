#include "common/store.hpp"

#include <sqlite3.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <utility>

namespace enclave::store {

namespace {

Errc errc_for(int rc, int system_errno) {
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return Errc::kAlreadyExists;
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
      return Errc::kNoSpace;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Errc::kCorrupt;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
      return Errc::kUnavailable;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Errc::kPermission;
    case SQLITE_CANTOPEN:
      if (system_errno == ENOENT) return Errc::kNotFound;
      if (system_errno == EACCES || system_errno == EPERM) return Errc::kPermission;
      return Errc::kIo;
    case SQLITE_IOERR:
      if (system_errno == ENOSPC) return Errc::kNoSpace;
      return Errc::kIo;
    case SQLITE_NOLFS:
      return Errc::kIo;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
      return Errc::kInvalidArgument;
    default:
      return Errc::kInternal;  // SQLITE_ERROR (bad SQL), MISUSE, NOMEM, SCHEMA, ...
  }
}

Error make_error(sqlite3* db, std::string_view path, int rc, std::string_view doing) {
  // sqlite3_errmsg describes the connection's most recent failure; use it only if that is rc.
  const bool current = db != nullptr && sqlite3_extended_errcode(db) == rc;
  std::string detail = current ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int system_errno = db != nullptr ? sqlite3_system_errno(db) : 0;
  int primary = rc & 0xff;
  if ((primary == SQLITE_IOERR || primary == SQLITE_CANTOPEN) && system_errno != 0) {
    detail += std::string(" (") + std::strerror(system_errno) + ")";
  }
  return Error{errc_for(rc, system_errno),
               std::string(path) + ": " + std::string(doing) + ": " + detail};
}

std::string statement_path(sqlite3_stmt* stmt) {
  const char* name = sqlite3_db_filename(sqlite3_db_handle(stmt), "main");
  return name != nullptr && *name != '\0' ? name : ":memory:";
}

// The start of a statement, for messages: enough to recognise it, never a bound value.
std::string snippet(std::string_view sql) {
  constexpr std::size_t kMax = 60;
  std::string out;
  bool space = false;
  for (char c : sql) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    if (out.size() >= kMax) return out + "...";
    out.push_back(c);
  }
  return out;
}

bool only_whitespace(const char* begin, const char* end) {
  for (const char* p = begin; p < end; ++p) {
    if (!std::isspace(static_cast<unsigned char>(*p))) return false;
  }
  return true;
}

}  // namespace

Error Database::error(int rc, std::string_view doing) const {
  return make_error(db_, path_.string(), rc, doing);
}

Database::Database(sqlite3* db, std::filesystem::path path)
    : db_(db), path_(std::move(path)), cache_(std::make_shared<StatementCache>()) {}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      cache_(std::move(other.cache_)),
      schema_version_(other.schema_version_) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    cache_ = std::move(other.cache_);
    schema_version_ = other.schema_version_;
  }
  return *this;
}

Database::~Database() {
  close();
}

// The kept statements are finalized now; Statements still out are finalized when they go
// (sqlite3_close_v2 waits for them).
void Database::close() {
  if (cache_) {
    cache_->closed = true;
    for (auto& [sql, statements] : cache_->idle) {
      for (sqlite3_stmt* stmt : statements) sqlite3_finalize(stmt);
    }
    cache_->idle.clear();
    cache_.reset();
  }
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

Status Database::exec(std::string_view sql) {
  if (sql.size() > INT_MAX) return fail(Errc::kInvalidArgument, path_.string() + ": SQL too long");
  const char* next = sql.data();
  const char* end = sql.data() + sql.size();
  while (next < end) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    const std::string_view text(next, static_cast<std::size_t>(end - next));
    int rc = sqlite3_prepare_v2(db_, next, static_cast<int>(end - next), &raw, &tail);
    if (rc != SQLITE_OK) return fail(error(rc, "preparing '" + snippet(text) + "'"));
    if (raw == nullptr) break;  // only whitespace or comments remain
    Statement stmt(raw);
    ENCLAVE_TRY(stmt.run());
    next = tail;
  }
  return {};
}

Expected<Statement> Database::prepare(std::string_view sql) {
  if (sql.size() > INT_MAX) return fail(Errc::kInvalidArgument, path_.string() + ": SQL too long");
  std::vector<sqlite3_stmt*>& home = cache_->idle[std::string(sql)];
  if (!home.empty()) {
    sqlite3_stmt* reused = home.back();
    home.pop_back();
    return Statement(reused, cache_, &home);
  }
  sqlite3_stmt* raw = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
  if (rc != SQLITE_OK) return fail(error(rc, "preparing '" + snippet(sql) + "'"));
  if (raw == nullptr) {
    return fail(Errc::kInternal, path_.string() + ": preparing '" + snippet(sql) +
                                     "': no SQL statement in the text");
  }
  if (!only_whitespace(tail, sql.data() + sql.size())) {
    sqlite3_finalize(raw);
    return fail(Errc::kInternal, path_.string() + ": preparing '" + snippet(sql) +
                                     "': more than one statement; use exec()");
  }
  return Statement(raw, cache_, &home);
}

Status Database::begin_immediate() {
  return exec("BEGIN IMMEDIATE");
}
Status Database::commit() {
  return exec("COMMIT");
}
Status Database::rollback() {
  if (sqlite3_get_autocommit(db_) != 0) return {};  // no transaction open
  return exec("ROLLBACK");
}

std::int64_t Database::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}
int Database::changes() const {
  return sqlite3_changes(db_);
}

namespace {

Expected<int> read_user_version(Database& db) {
  auto stmt = db.prepare("PRAGMA user_version");
  if (!stmt) return error_of(stmt);
  auto row = stmt->step();
  if (!row) return error_of(row);
  if (!*row) return fail(Errc::kInternal, db.path().string() + ": PRAGMA user_version gave no row");
  return static_cast<int>(stmt->column_int64(0));
}

Status use_wal(Database& db) {
  auto stmt = db.prepare("PRAGMA journal_mode=WAL");
  if (!stmt) return error_of(stmt);
  auto row = stmt->step();
  if (!row) return error_of(row);
  std::string mode = *row ? std::string(stmt->column_text(0)) : std::string();
  for (char& c : mode) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (mode != "wal") {
    return fail(Errc::kIo,
                db.path().string() + ": could not switch to WAL journal mode (got '" + mode + "')");
  }
  return {};
}

// One migration, atomically with its user_version bump. The version is re-read under the
// write lock: another process may have applied it since we looked.
Status apply_migration(Database& db, const Migration& m) {
  const std::string doing = "applying migration " + std::to_string(m.version);
  // "path: detail" becomes "path: applying migration N: detail".
  auto located = [&](Error e) {
    const std::string prefix = db.path().string() + ": ";
    std::string_view detail = e.message;
    if (detail.starts_with(prefix)) detail.remove_prefix(prefix.size());
    e.message = prefix + doing + ": " + std::string(detail);
    return Unexpected<Error>{std::move(e)};
  };
  if (auto begun = db.begin_immediate(); !begun) return located(begun.error());
  auto applied = [&]() -> Status {
    auto version = read_user_version(db);
    if (!version) return error_of(version);
    if (*version >= m.version) return {};
    ENCLAVE_TRY(db.exec(m.sql));
    ENCLAVE_TRY(db.exec("PRAGMA user_version = " + std::to_string(m.version)));
    return db.commit();
  }();
  if (!applied) {
    (void)db.rollback();
    return located(applied.error());
  }
  return db.rollback();  // ends the transaction when there was nothing to apply
}

}  // namespace

Expected<Database> Database::open(const std::filesystem::path& path,
                                  std::span<const Migration> migrations, OpenOptions options) {
  const std::string name = path.string();
  for (std::size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i + 1)) {
      return fail(Errc::kInternal, name + ": migrations must be numbered 1..N in order; entry " +
                                       std::to_string(i) + " has version " +
                                       std::to_string(migrations[i].version));
    }
  }
  const int known = static_cast<int>(migrations.size());
  const bool read_only = options.access == Access::kReadOnly;

  // NOMUTEX: a Database (and its statements) is used by one thread at a time, as the header
  // says, so SQLite's per-call locking would only cost time.
  int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
  if (!read_only && options.create) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
  Database db(raw, path);  // owns the handle even when opening failed
  if (rc != SQLITE_OK) return fail(db.error(rc, "opening"));
  sqlite3_extended_result_codes(db.db_, 1);
  sqlite3_busy_timeout(db.db_, options.busy_timeout_ms);
  if (!read_only && sqlite3_db_readonly(db.db_, "main") == 1) {
    return fail(Errc::kPermission, name + ": opened read-only: no write permission");
  }

  if (!read_only && options.page_size > 0) {
    // Takes effect only while the file is empty, i.e. before WAL mode and the first table.
    ENCLAVE_TRY(db.exec("PRAGMA page_size=" + std::to_string(options.page_size)));
  }
  if (!read_only) ENCLAVE_TRY(use_wal(db));
  ENCLAVE_TRY(db.exec("PRAGMA foreign_keys=ON"));
  ENCLAVE_TRY(db.exec(options.sync == Sync::kFull ? "PRAGMA synchronous=FULL"
                                                  : "PRAGMA synchronous=NORMAL"));

  auto version = read_user_version(db);
  if (!version) return error_of(version);
  if (*version > known) {
    return fail(Errc::kConflict, name + ": schema version " + std::to_string(*version) +
                                     " is newer than this build knows (" + std::to_string(known) +
                                     "); refusing to open");
  }
  if (read_only) {
    if (*version != known) {
      return fail(Errc::kConflict, name + ": schema version " + std::to_string(*version) +
                                       " is older than this build needs (" + std::to_string(known) +
                                       "); a read-only open applies no migrations");
    }
  } else {
    for (const Migration& m : migrations) {
      if (m.version > *version) ENCLAVE_TRY(apply_migration(db, m));
    }
    version = read_user_version(db);
    if (!version) return error_of(version);
    if (*version > known) {  // another process migrated past us meanwhile
      return fail(Errc::kConflict, name + ": schema version " + std::to_string(*version) +
                                       " is newer than this build knows (" + std::to_string(known) +
                                       "); refusing to open");
    }
  }
  db.schema_version_ = *version;
  return db;
}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      cache_(std::move(other.cache_)),
      home_(std::exchange(other.home_, nullptr)),
      bind_status_(std::move(other.bind_status_)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    release();
    stmt_ = std::exchange(other.stmt_, nullptr);
    cache_ = std::move(other.cache_);
    home_ = std::exchange(other.home_, nullptr);
    bind_status_ = std::move(other.bind_status_);
  }
  return *this;
}

Statement::~Statement() {
  release();
}

void Statement::release() {
  if (stmt_ == nullptr) return;
  if (cache_ && !cache_->closed && home_ != nullptr) {
    // Reset ends its read of the database (no transaction is held open by a kept statement).
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    home_->push_back(stmt_);
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
  home_ = nullptr;
  cache_.reset();
}

void Statement::record_bind(int rc, int index) {
  if (rc == SQLITE_OK || !bind_status_) return;
  bind_status_ = fail(make_error(
      sqlite3_db_handle(stmt_), statement_path(stmt_), rc,
      "binding parameter " + std::to_string(index) + " of '" + snippet(sqlite3_sql(stmt_)) + "'"));
}

Statement& Statement::bind(int index, std::int64_t value) {
  record_bind(sqlite3_bind_int64(stmt_, index, value), index);
  return *this;
}

Statement& Statement::bind(int index, std::string_view text) {
  // A null pointer would bind SQL NULL; an empty string must stay an empty string.
  const char* data = text.data() != nullptr ? text.data() : "";
  record_bind(sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8),
              index);
  return *this;
}

Statement& Statement::bind(int index, ByteSpan blob) {
  static const std::uint8_t kEmpty = 0;
  const void* data = blob.data() != nullptr ? blob.data() : &kEmpty;
  record_bind(sqlite3_bind_blob64(stmt_, index, data, blob.size(), SQLITE_TRANSIENT), index);
  return *this;
}

Statement& Statement::bind_null(int index) {
  record_bind(sqlite3_bind_null(stmt_, index), index);
  return *this;
}

Expected<bool> Statement::step() {
  if (!bind_status_) return error_of(bind_status_);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return fail(make_error(sqlite3_db_handle(stmt_), statement_path(stmt_), rc,
                         "executing '" + snippet(sqlite3_sql(stmt_)) + "'"));
}

Status Statement::run() {
  while (true) {
    auto row = step();
    if (!row) return error_of(row);
    if (!*row) return {};
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_status_ = {};
}

std::int64_t Statement::column_int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

std::string_view Statement::column_text(int col) const {
  // Pointer first, then size: the documented order that avoids a second conversion.
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (text == nullptr) return {};
  return {text, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

ByteSpan Statement::column_blob(int col) const {
  const auto* blob = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  if (blob == nullptr) return {};
  return {blob, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col))};
}

bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

}  // namespace enclave::store
