#include "sessionmgr/service/session_store.hpp"
#include "sessionmgr/service/store_time.hpp"

#include <algorithm>
#include <array>

namespace enclave::sessionmgr {

namespace {

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  user TEXT NOT NULL,
  device TEXT NOT NULL,
  source TEXT NOT NULL,
  compartment TEXT NOT NULL,
  tier TEXT NOT NULL,
  desktop_id TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('issued', 'active', 'disconnected', 'ended')),
  created_ms INTEGER NOT NULL,
  started_ms INTEGER,
  updated_ms INTEGER NOT NULL,
  grace_until_ms INTEGER,
  ended_ms INTEGER,
  end_reason TEXT NOT NULL DEFAULT '',
  connects INTEGER NOT NULL DEFAULT 0,
  bytes TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_open ON sessions (state) WHERE state <> 'ended';
CREATE INDEX sessions_user ON sessions (user, created_ms);
CREATE TABLE tickets (
  hash TEXT PRIMARY KEY CHECK (length(hash) = 64),
  session_id TEXT NOT NULL REFERENCES sessions (id),
  source TEXT NOT NULL,
  issued_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  used INTEGER NOT NULL DEFAULT 0 CHECK (used IN (0, 1)),
  used_ms INTEGER
);
CREATE INDEX tickets_session ON tickets (session_id);
CREATE INDEX tickets_expiry ON tickets (expires_ms);
CREATE TABLE desktops (
  id TEXT PRIMARY KEY,
  compartment TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('static', 'local')),
  host TEXT NOT NULL,
  port INTEGER NOT NULL,
  capacity INTEGER NOT NULL DEFAULT 1,
  healthy INTEGER NOT NULL DEFAULT 0,
  checked_ms INTEGER,
  last_error TEXT NOT NULL DEFAULT ''
);
)sql";

// Each session's export token, as its SHA-256. Sessions recorded before have none (NULL).
constexpr std::string_view kSchemaV2 = R"sql(
ALTER TABLE sessions ADD COLUMN export_token_sha256 TEXT
  CHECK (export_token_sha256 IS NULL OR length(export_token_sha256) = 64);
CREATE UNIQUE INDEX sessions_export_token ON sessions (export_token_sha256)
  WHERE export_token_sha256 IS NOT NULL;
)sql";

constexpr std::array<store::Migration, 2> kMigrations = {{{1, kSchemaV1}, {2, kSchemaV2}}};

constexpr std::string_view kSessionColumns =
    "id, user, device, source, compartment, tier, desktop_id, state, created_ms, started_ms, "
    "updated_ms, grace_until_ms, ended_ms, end_reason, connects, export_token_sha256";

Session read_session(const store::Statement& s) {
  Session out;
  out.id = std::string(s.column_text(0));
  out.user = std::string(s.column_text(1));
  out.device = std::string(s.column_text(2));
  out.source = std::string(s.column_text(3));
  out.compartment = std::string(s.column_text(4));
  out.tier = std::string(s.column_text(5));
  out.desktop_id = std::string(s.column_text(6));
  out.state = state_from_name(s.column_text(7)).value_or(SessionState::kEnded);
  out.created_at = from_unix_ms(s.column_int64(8));
  out.started_at = optional_time(s, 9);
  out.updated_at = from_unix_ms(s.column_int64(10));
  out.grace_until = optional_time(s, 11);
  out.ended_at = optional_time(s, 12);
  out.end_reason = std::string(s.column_text(13));
  out.connects = static_cast<int>(s.column_int64(14));
  out.export_token_sha256 = std::string(s.column_text(15));
  return out;
}

Expected<std::vector<Session>> read_sessions(store::Statement& s) {
  std::vector<Session> out;
  for (;;) {
    auto row = s.step();
    if (!row) return error_of(row);
    if (!*row) return out;
    out.push_back(read_session(s));
  }
}

// The statement's first row (a lookup by a unique key), if any.
Expected<std::optional<Session>> first_session(store::Statement& s) {
  auto rows = read_sessions(s);
  if (!rows) return error_of(rows);
  if (rows->empty()) return std::optional<Session>();
  return std::optional<Session>(std::move(rows->front()));
}

}  // namespace

Expected<SessionStore> SessionStore::open(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  store::OpenOptions options;
  options.sync = store::Sync::kFull;
  auto db = store::Database::open(path, kMigrations, options);
  if (!db) return error_of(db);
  return SessionStore(std::move(db).value());
}

Status SessionStore::insert_session(const Session& s) {
  auto st = db_.prepare("INSERT INTO sessions (" + std::string(kSessionColumns) +
                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
                        "?15, ?16)");
  if (!st) return error_of(st);
  st->bind(1, s.id).bind(2, s.user).bind(3, s.device).bind(4, s.source).bind(5, s.compartment);
  st->bind(6, s.tier).bind(7, s.desktop_id).bind(8, std::string_view(state_name(s.state)));
  st->bind(9, to_unix_ms(s.created_at));
  bind_optional(*st, 10, s.started_at);
  st->bind(11, to_unix_ms(s.updated_at));
  bind_optional(*st, 12, s.grace_until);
  bind_optional(*st, 13, s.ended_at);
  st->bind(14, s.end_reason).bind(15, std::int64_t{s.connects});
  if (s.export_token_sha256.empty()) {
    st->bind_null(16);
  } else {
    st->bind(16, s.export_token_sha256);
  }
  return st->run();
}

Status SessionStore::update_session(const Session& s) {
  auto st = db_.prepare(
      "UPDATE sessions SET device = ?2, source = ?3, desktop_id = ?4, state = ?5, started_ms = ?6, "
      "updated_ms = ?7, grace_until_ms = ?8, ended_ms = ?9, end_reason = ?10, connects = ?11 "
      "WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, s.id).bind(2, s.device).bind(3, s.source).bind(4, s.desktop_id);
  st->bind(5, std::string_view(state_name(s.state)));
  bind_optional(*st, 6, s.started_at);
  st->bind(7, to_unix_ms(s.updated_at));
  bind_optional(*st, 8, s.grace_until);
  bind_optional(*st, 9, s.ended_at);
  st->bind(10, s.end_reason).bind(11, std::int64_t{s.connects});
  ENCLAVE_TRY(st->run());
  if (db_.changes() != 1) return fail(Errc::kNotFound, "no session " + s.id);
  return {};
}

Expected<std::optional<Session>> SessionStore::session(const std::string& id) {
  auto st = db_.prepare("SELECT " + std::string(kSessionColumns) + " FROM sessions WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, id);
  return first_session(*st);
}

Expected<std::optional<Session>> SessionStore::session_by_export_token(const std::string& sha256) {
  auto st = db_.prepare("SELECT " + std::string(kSessionColumns) +
                        " FROM sessions WHERE export_token_sha256 = ?1");
  if (!st) return error_of(st);
  st->bind(1, sha256);
  return first_session(*st);
}

Expected<std::vector<Session>> SessionStore::open_sessions() {
  auto st = db_.prepare("SELECT " + std::string(kSessionColumns) +
                        " FROM sessions WHERE state <> 'ended' ORDER BY created_ms");
  if (!st) return error_of(st);
  return read_sessions(*st);
}

Expected<std::vector<Session>> SessionStore::sessions(bool include_ended, int limit) {
  auto st = db_.prepare("SELECT " + std::string(kSessionColumns) + " FROM sessions" +
                        (include_ended ? "" : " WHERE state <> 'ended'") +
                        " ORDER BY created_ms DESC, id LIMIT ?1");
  if (!st) return error_of(st);
  st->bind(1, std::int64_t{limit});
  return read_sessions(*st);
}

Status SessionStore::add_bytes(const std::string& session_id, const nlohmann::json& bytes) {
  auto current = this->bytes(session_id);
  if (!current) return error_of(current);
  nlohmann::json total = std::move(current).value();
  if (bytes.is_object()) {
    for (const auto& [k, v] : bytes.items()) {
      if (!v.is_number_unsigned() && !v.is_number_integer()) continue;
      const std::int64_t add = v.get<std::int64_t>();
      if (add < 0) continue;
      total[k] =
          (total.contains(k) && total[k].is_number_integer() ? total[k].get<std::int64_t>() : 0) +
          add;
    }
  }
  auto st = db_.prepare("UPDATE sessions SET bytes = ?2 WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, session_id).bind(2, total.dump());
  return st->run();
}

Expected<nlohmann::json> SessionStore::bytes(const std::string& session_id) {
  auto st = db_.prepare("SELECT bytes FROM sessions WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, session_id);
  auto row = st->step();
  if (!row) return error_of(row);
  if (!*row) return fail(Errc::kNotFound, "no session " + session_id);
  auto parsed = nlohmann::json::parse(st->column_text(0), nullptr, false);
  if (!parsed.is_object()) return nlohmann::json::object();
  return parsed;
}

Status SessionStore::insert_ticket(const StoredTicket& t) {
  auto st = db_.prepare(
      "INSERT INTO tickets (hash, session_id, source, issued_ms, expires_ms, used) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!st) return error_of(st);
  st->bind(1, t.hash).bind(2, t.session_id).bind(3, t.source).bind(4, to_unix_ms(t.issued_at));
  st->bind(5, to_unix_ms(t.expires_at)).bind(6, std::int64_t{t.used ? 1 : 0});
  return st->run();
}

Expected<std::optional<StoredTicket>> SessionStore::ticket(const std::string& hash) {
  auto st = db_.prepare(
      "SELECT hash, session_id, source, issued_ms, expires_ms, used FROM tickets WHERE hash = ?1");
  if (!st) return error_of(st);
  st->bind(1, hash);
  auto row = st->step();
  if (!row) return error_of(row);
  if (!*row) return std::optional<StoredTicket>();
  StoredTicket t;
  t.hash = std::string(st->column_text(0));
  t.session_id = std::string(st->column_text(1));
  t.source = std::string(st->column_text(2));
  t.issued_at = from_unix_ms(st->column_int64(3));
  t.expires_at = from_unix_ms(st->column_int64(4));
  t.used = st->column_int64(5) != 0;
  return std::optional<StoredTicket>(std::move(t));
}

Expected<bool> SessionStore::mark_used(const std::string& hash, TimePoint now) {
  auto st = db_.prepare("UPDATE tickets SET used = 1, used_ms = ?2 WHERE hash = ?1 AND used = 0");
  if (!st) return error_of(st);
  st->bind(1, hash).bind(2, to_unix_ms(now));
  ENCLAVE_TRY(st->run());
  return db_.changes() == 1;
}

Status SessionStore::expire_tickets(const std::string& session_id, TimePoint now) {
  auto st = db_.prepare(
      "UPDATE tickets SET expires_ms = min(expires_ms, ?2) WHERE session_id = ?1 AND used = 0");
  if (!st) return error_of(st);
  st->bind(1, session_id).bind(2, to_unix_ms(now));
  return st->run();
}

Expected<std::optional<TimePoint>> SessionStore::unused_ticket_expiry(
    const std::string& session_id) {
  auto st = db_.prepare("SELECT max(expires_ms) FROM tickets WHERE session_id = ?1 AND used = 0");
  if (!st) return error_of(st);
  st->bind(1, session_id);
  auto row = st->step();
  if (!row) return error_of(row);
  if (!*row || st->column_is_null(0)) return std::optional<TimePoint>();
  return std::optional<TimePoint>(from_unix_ms(st->column_int64(0)));
}

Expected<int> SessionStore::delete_tickets_expired_before(TimePoint before) {
  auto st = db_.prepare("DELETE FROM tickets WHERE expires_ms < ?1");
  if (!st) return error_of(st);
  st->bind(1, to_unix_ms(before));
  ENCLAVE_TRY(st->run());
  return db_.changes();
}

Status SessionStore::upsert_desktop(const DesktopRow& d) {
  auto st = db_.prepare(
      "INSERT INTO desktops (id, compartment, kind, host, port, capacity, healthy, checked_ms, "
      "last_error) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO UPDATE SET "
      "compartment = ?2, kind = ?3, host = ?4, port = ?5, capacity = ?6, healthy = ?7, "
      "checked_ms = ?8, last_error = ?9");
  if (!st) return error_of(st);
  st->bind(1, d.id).bind(2, d.compartment).bind(3, d.kind).bind(4, d.host);
  st->bind(5, std::int64_t{d.port}).bind(6, std::int64_t{d.capacity});
  st->bind(7, std::int64_t{d.healthy ? 1 : 0});
  bind_optional(*st, 8, d.checked_at);
  st->bind(9, d.last_error);
  return st->run();
}

Status SessionStore::delete_desktop(const std::string& id) {
  auto st = db_.prepare("DELETE FROM desktops WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, id);
  return st->run();
}

Status SessionStore::delete_desktops_not_in(const std::string& kind,
                                            const std::vector<std::string>& keep) {
  auto rows = desktops();
  if (!rows) return error_of(rows);
  for (const auto& d : *rows) {
    if (d.kind != kind) continue;
    if (std::find(keep.begin(), keep.end(), d.id) != keep.end()) continue;
    ENCLAVE_TRY(delete_desktop(d.id));
  }
  return {};
}

Expected<std::vector<DesktopRow>> SessionStore::desktops() {
  auto st = db_.prepare(
      "SELECT id, compartment, kind, host, port, capacity, healthy, checked_ms, last_error "
      "FROM desktops ORDER BY id");
  if (!st) return error_of(st);
  std::vector<DesktopRow> out;
  for (;;) {
    auto row = st->step();
    if (!row) return error_of(row);
    if (!*row) return out;
    DesktopRow d;
    d.id = std::string(st->column_text(0));
    d.compartment = std::string(st->column_text(1));
    d.kind = std::string(st->column_text(2));
    d.host = std::string(st->column_text(3));
    d.port = static_cast<int>(st->column_int64(4));
    d.capacity = static_cast<int>(st->column_int64(5));
    d.healthy = st->column_int64(6) != 0;
    d.checked_at = optional_time(*st, 7);
    d.last_error = std::string(st->column_text(8));
    out.push_back(std::move(d));
  }
}

}  // namespace enclave::sessionmgr
