#include "audit/service/log_store.hpp"

#include <array>

namespace enclave::audit {

namespace {

// Version 1. The event columns are exactly the leaf fields (event.hpp), so the verifier can
// rebuild every leaf from its row; leaf_hash is what the daemon computed at append.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE events (
  idx        INTEGER PRIMARY KEY,
  time_us    INTEGER NOT NULL,
  source     TEXT NOT NULL,
  actor_kind TEXT NOT NULL,
  actor      TEXT NOT NULL,
  site       TEXT NOT NULL,
  device     TEXT NOT NULL,
  session    TEXT NOT NULL,
  type       TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  object     TEXT NOT NULL,
  details    TEXT NOT NULL,
  leaf_hash  BLOB NOT NULL
);
CREATE INDEX events_actor_time ON events(actor, time_us);
CREATE INDEX events_site_time ON events(site, time_us);
CREATE INDEX events_session ON events(session);
CREATE INDEX events_type_time ON events(type, time_us);
CREATE INDEX events_time ON events(time_us);
CREATE TABLE checkpoints (
  size    INTEGER PRIMARY KEY,
  time_us INTEGER NOT NULL,
  note    TEXT NOT NULL
);
CREATE TABLE archives (
  end_idx      INTEGER PRIMARY KEY,
  first_idx    INTEGER NOT NULL,
  time_us      INTEGER NOT NULL,
  file         TEXT NOT NULL,
  sha256       TEXT NOT NULL,
  prefix_nodes BLOB NOT NULL
);
CREATE TABLE tree_nodes (
  level INTEGER NOT NULL,
  idx   INTEGER NOT NULL,
  hash  BLOB NOT NULL,
  PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
)sql";

constexpr store::Migration kMigrations[] = {{1, kSchemaV1}};

constexpr std::string_view kEventColumns =
    "idx, time_us, source, actor_kind, actor, site, device, session, type, outcome, object, "
    "details, leaf_hash";

// Reads a row selected with kEventColumns, as stored: whatever the row now holds is what the
// verifier hashes.
StoredEvent read_event(const store::Statement& s) {
  StoredEvent out;
  out.index = static_cast<std::uint64_t>(s.column_int64(0));
  Event& e = out.event;
  e.time_us = s.column_int64(1);
  e.source = s.column_text(2);
  e.actor_kind = s.column_text(3);
  e.actor = s.column_text(4);
  e.site = s.column_text(5);
  e.device = s.column_text(6);
  e.session = s.column_text(7);
  e.type = s.column_text(8);
  e.outcome = s.column_text(9);
  e.object = s.column_text(10);
  e.details = s.column_text(11);
  if (auto h = merkle::hash_from_bytes(s.column_blob(12))) out.stored_hash = *h;
  return out;
}

Bytes nodes_blob(const merkle::CompactRange& range) {
  Bytes out;
  for (const auto& n : range.nodes()) out.insert(out.end(), n.begin(), n.end());
  return out;
}

}  // namespace

Expected<LogStore> LogStore::open(const std::filesystem::path& path, store::OpenOptions options) {
  auto db = store::Database::open(path, kMigrations, options);
  if (!db) return error_of(db);
  return LogStore(std::move(db).value());
}

Status LogStore::append(std::uint64_t first, std::span<const Event> events,
                        std::span<const merkle::Hash> hashes,
                        std::span<const tiles::StoredNode> nodes,
                        const StoredCheckpoint* checkpoint) {
  if (hashes.size() != events.size()) return fail(Errc::kInternal, "one leaf hash per event");
  ENCLAVE_TRY(db_.begin_immediate());
  auto written = [&]() -> Status {
    auto insert = db_.prepare(
        "INSERT INTO events (idx, time_us, source, actor_kind, actor, site, device, session, "
        "type, outcome, object, details, leaf_hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (!insert) return error_of(insert);
    for (std::size_t i = 0; i < events.size(); ++i) {
      const Event& e = events[i];
      insert->bind(1, static_cast<std::int64_t>(first + i))
          .bind(2, e.time_us)
          .bind(3, e.source)
          .bind(4, e.actor_kind)
          .bind(5, e.actor)
          .bind(6, e.site)
          .bind(7, e.device)
          .bind(8, e.session)
          .bind(9, e.type)
          .bind(10, e.outcome)
          .bind(11, e.object)
          .bind(12, e.details)
          .bind(13, ByteSpan(hashes[i]));
      ENCLAVE_TRY(insert->run());
      insert->reset();
    }
    if (!nodes.empty()) {
      auto node = db_.prepare("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)");
      if (!node) return error_of(node);
      for (const auto& n : nodes) {
        node->bind(1, std::int64_t{n.level})
            .bind(2, static_cast<std::int64_t>(n.index))
            .bind(3, ByteSpan(n.hash));
        ENCLAVE_TRY(node->run());
        node->reset();
      }
    }
    return checkpoint ? add_checkpoint(*checkpoint) : Status{};
  }();
  if (!written) {
    (void)db_.rollback();
    return written;
  }
  if (auto committed = db_.commit(); !committed) {
    (void)db_.rollback();
    return committed;
  }
  return {};
}

Status LogStore::add_checkpoint(const StoredCheckpoint& c) {
  auto s = db_.prepare("INSERT INTO checkpoints (size, time_us, note) VALUES (?, ?, ?)");
  if (!s) return error_of(s);
  s->bind(1, static_cast<std::int64_t>(c.size)).bind(2, c.time_us).bind(3, c.note);
  return s->run();
}

Expected<std::vector<StoredCheckpoint>> LogStore::checkpoints() {
  auto s = db_.prepare("SELECT size, time_us, note FROM checkpoints ORDER BY size");
  if (!s) return error_of(s);
  std::vector<StoredCheckpoint> out;
  while (true) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    out.push_back({static_cast<std::uint64_t>(s->column_int64(0)), s->column_int64(1),
                   std::string(s->column_text(2))});
  }
  return out;
}

Expected<std::optional<StoredCheckpoint>> LogStore::latest_checkpoint() {
  auto s = db_.prepare("SELECT size, time_us, note FROM checkpoints ORDER BY size DESC LIMIT 1");
  if (!s) return error_of(s);
  auto row = s->step();
  if (!row) return error_of(row);
  if (!*row) return std::optional<StoredCheckpoint>();
  return std::optional<StoredCheckpoint>(
      StoredCheckpoint{static_cast<std::uint64_t>(s->column_int64(0)), s->column_int64(1),
                       std::string(s->column_text(2))});
}

Expected<std::uint64_t> LogStore::end_index() {
  auto s = db_.prepare("SELECT max(idx) FROM events");
  if (!s) return error_of(s);
  auto row = s->step();
  if (!row) return error_of(row);
  if (s->column_is_null(0)) {
    // An empty live table after an archive continues from the archive's end.
    auto archived = archives();
    if (!archived) return error_of(archived);
    return archived->empty() ? std::uint64_t{0} : archived->back().end;
  }
  return static_cast<std::uint64_t>(s->column_int64(0)) + 1;
}

Expected<std::optional<std::uint64_t>> LogStore::first_index() {
  auto s = db_.prepare("SELECT min(idx) FROM events");
  if (!s) return error_of(s);
  auto row = s->step();
  if (!row) return error_of(row);
  if (s->column_is_null(0)) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(static_cast<std::uint64_t>(s->column_int64(0)));
}

Status LogStore::scan(std::uint64_t from, const std::function<bool(const StoredEvent&)>& visit) {
  auto s = db_.prepare("SELECT " + std::string(kEventColumns) +
                       " FROM events WHERE idx >= ? ORDER BY idx");
  if (!s) return error_of(s);
  s->bind(1, static_cast<std::int64_t>(from));
  while (true) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row || !visit(read_event(*s))) return {};
  }
}

Status LogStore::scan_hashes(std::uint64_t from,
                             const std::function<void(std::uint64_t, const merkle::Hash&)>& visit) {
  auto s = db_.prepare("SELECT idx, leaf_hash FROM events WHERE idx >= ? ORDER BY idx");
  if (!s) return error_of(s);
  s->bind(1, static_cast<std::int64_t>(from));
  while (true) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) return {};
    auto hash = merkle::hash_from_bytes(s->column_blob(1));
    if (!hash) {
      return fail(Errc::kCorrupt, db_.path().string() + ": event " +
                                      std::to_string(s->column_int64(0)) +
                                      " has a leaf_hash that is not 32 bytes");
    }
    visit(static_cast<std::uint64_t>(s->column_int64(0)), *hash);
  }
}

Expected<std::vector<StoredEvent>> LogStore::query(const Query& q) {
  std::string sql = "SELECT " + std::string(kEventColumns) + " FROM events WHERE 1";
  std::vector<std::pair<int, std::string_view>> text_binds;
  int n = 0;
  const std::array<std::pair<const char*, const std::string*>, 6> filters = {
      {{"actor", &q.actor},
       {"site", &q.site},
       {"device", &q.device},
       {"session", &q.session},
       {"type", &q.type},
       {"outcome", &q.outcome}}};
  for (const auto& [column, value] : filters) {
    if (value->empty()) continue;
    sql += std::string(" AND ") + column + " = ?";
    text_binds.emplace_back(++n, *value);
  }
  int since_at = 0, until_at = 0;
  if (q.since_us) {
    sql += " AND time_us >= ?";
    since_at = ++n;
  }
  if (q.until_us) {
    sql += " AND time_us < ?";
    until_at = ++n;
  }
  sql += q.newest_first ? " ORDER BY idx DESC" : " ORDER BY idx";
  if (q.limit) sql += " LIMIT " + std::to_string(*q.limit);
  auto s = db_.prepare(sql);
  if (!s) return error_of(s);
  for (const auto& [at, value] : text_binds) s->bind(at, value);
  if (since_at) s->bind(since_at, *q.since_us);
  if (until_at) s->bind(until_at, *q.until_us);
  std::vector<StoredEvent> out;
  while (true) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    out.push_back(read_event(*s));
  }
  return out;
}

Expected<std::optional<StoredEvent>> LogStore::get(std::uint64_t index) {
  auto s = db_.prepare("SELECT " + std::string(kEventColumns) + " FROM events WHERE idx = ?");
  if (!s) return error_of(s);
  s->bind(1, static_cast<std::int64_t>(index));
  auto row = s->step();
  if (!row) return error_of(row);
  if (!*row) return std::optional<StoredEvent>();
  return std::optional<StoredEvent>(read_event(*s));
}

Expected<std::vector<ArchiveRecord>> LogStore::archives() {
  auto s = db_.prepare(
      "SELECT first_idx, end_idx, time_us, file, sha256, prefix_nodes FROM archives "
      "ORDER BY end_idx");
  if (!s) return error_of(s);
  std::vector<ArchiveRecord> out;
  while (true) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    ArchiveRecord r;
    r.first = static_cast<std::uint64_t>(s->column_int64(0));
    r.end = static_cast<std::uint64_t>(s->column_int64(1));
    r.time_us = s->column_int64(2);
    r.file = s->column_text(3);
    r.sha256_hex = s->column_text(4);
    auto blob = s->column_blob(5);
    std::vector<merkle::Hash> nodes;
    for (std::size_t at = 0; at + 32 <= blob.size(); at += 32) {
      nodes.push_back(*merkle::hash_from_bytes(blob.subspan(at, 32)));
    }
    auto prefix =
        blob.size() % 32 == 0 ? merkle::CompactRange::from_nodes(r.end, nodes) : std::nullopt;
    if (!prefix) {
      return fail(Errc::kCorrupt, db_.path().string() + ": archive record ending at " +
                                      std::to_string(r.end) + " has a malformed prefix");
    }
    r.prefix = std::move(*prefix);
    out.push_back(std::move(r));
  }
  return out;
}

Status LogStore::drop_archived(const ArchiveRecord& r) {
  ENCLAVE_TRY(db_.begin_immediate());
  auto done = [&]() -> Status {
    auto insert = db_.prepare(
        "INSERT INTO archives (end_idx, first_idx, time_us, file, sha256, prefix_nodes) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    if (!insert) return error_of(insert);
    auto nodes = nodes_blob(r.prefix);
    insert->bind(1, static_cast<std::int64_t>(r.end))
        .bind(2, static_cast<std::int64_t>(r.first))
        .bind(3, r.time_us)
        .bind(4, r.file)
        .bind(5, r.sha256_hex)
        .bind(6, ByteSpan(nodes));
    ENCLAVE_TRY(insert->run());
    auto drop = db_.prepare("DELETE FROM events WHERE idx >= ? AND idx < ?");
    if (!drop) return error_of(drop);
    drop->bind(1, static_cast<std::int64_t>(r.first)).bind(2, static_cast<std::int64_t>(r.end));
    ENCLAVE_TRY(drop->run());
    // Stored nodes wholly inside the archive are never read again (tiles.hpp, KnownRanges).
    auto drop_nodes = db_.prepare("DELETE FROM tree_nodes WHERE ((idx + 1) << level) <= ?");
    if (!drop_nodes) return error_of(drop_nodes);
    drop_nodes->bind(1, static_cast<std::int64_t>(r.end));
    return drop_nodes->run();
  }();
  if (!done) {
    (void)db_.rollback();
    return done;
  }
  return db_.commit();
}

Expected<std::optional<std::string>> LogStore::meta(std::string_view key) {
  auto s = db_.prepare("SELECT value FROM meta WHERE key = ?");
  if (!s) return error_of(s);
  s->bind(1, key);
  auto row = s->step();
  if (!row) return error_of(row);
  if (!*row) return std::optional<std::string>();
  return std::optional<std::string>(std::string(s->column_text(0)));
}

Status LogStore::set_meta(std::string_view key, std::string_view value) {
  auto s = db_.prepare(
      "INSERT INTO meta (key, value) VALUES (?, ?) "
      "ON CONFLICT(key) DO UPDATE SET value = excluded.value");
  if (!s) return error_of(s);
  s->bind(1, key).bind(2, value);
  return s->run();
}

namespace {

Expected<std::vector<merkle::Hash>> read_hashes(store::Statement& s, std::uint64_t count,
                                                const std::string& what) {
  std::vector<merkle::Hash> out;
  out.reserve(count);
  while (true) {
    auto row = s.step();
    if (!row) return error_of(row);
    if (!*row) break;
    auto h = merkle::hash_from_bytes(s.column_blob(0));
    if (!h) return fail(Errc::kCorrupt, what + ": a stored hash is not 32 bytes");
    out.push_back(*h);
  }
  if (out.size() != count) {
    return fail(Errc::kNotFound, what + ": " + std::to_string(out.size()) + " of " +
                                     std::to_string(count) + " hashes are stored");
  }
  return out;
}

}  // namespace

Expected<std::vector<merkle::Hash>> StoreNodeReader::leaves(std::uint64_t first,
                                                            std::uint64_t count) {
  auto s = store_.database().prepare(
      "SELECT leaf_hash FROM events WHERE idx >= ? AND idx < ? ORDER BY idx");
  if (!s) return error_of(s);
  s->bind(1, static_cast<std::int64_t>(first)).bind(2, static_cast<std::int64_t>(first + count));
  return read_hashes(*s, count, "leaf hashes from " + std::to_string(first));
}

Expected<std::vector<merkle::Hash>> StoreNodeReader::nodes(int level, std::uint64_t first,
                                                           std::uint64_t count) {
  auto s = store_.database().prepare(
      "SELECT hash FROM tree_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx");
  if (!s) return error_of(s);
  s->bind(1, std::int64_t{level})
      .bind(2, static_cast<std::int64_t>(first))
      .bind(3, static_cast<std::int64_t>(first + count));
  return read_hashes(
      *s, count, "tree nodes of level " + std::to_string(level) + " from " + std::to_string(first));
}

std::vector<merkle::Hash> leaf_hashes(std::span<const Event> events) {
  std::vector<merkle::Hash> out;
  out.reserve(events.size());
  Bytes leaf;
  for (const auto& e : events) {
    leaf.clear();
    encode_leaf_into(e, leaf);
    out.push_back(merkle::leaf_hash(leaf));
  }
  return out;
}

std::optional<merkle::CompactRange> archived_prefix(const std::vector<ArchiveRecord>& archives) {
  if (archives.empty()) return std::nullopt;
  return archives.back().prefix;
}

}  // namespace enclave::audit
