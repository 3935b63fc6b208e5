#include "exitcontrol/service/export_store.hpp"

#include <algorithm>

namespace enclave::exitcontrol {
namespace {

using review::Choice;
using review::ExportFile;
using review::ExportRequest;
using review::RequestState;

constexpr store::Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE requests (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project TEXT NOT NULL,
  compartment TEXT NOT NULL,
  session TEXT NOT NULL,
  requester TEXT NOT NULL,
  tier TEXT NOT NULL,
  profile TEXT NOT NULL,
  stewards_required INTEGER NOT NULL CHECK (stewards_required BETWEEN 1 AND 2),
  justification TEXT NOT NULL,
  state TEXT NOT NULL,
  state_reason TEXT NOT NULL DEFAULT '',
  files INTEGER NOT NULL,
  waiting_files INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  release TEXT
);
-- The queues: by state (then project), oldest first.
CREATE INDEX requests_by_state ON requests (state, project, id);
CREATE INDEX requests_by_requester ON requests (requester, id);

CREATE TABLE files (
  request INTEGER NOT NULL REFERENCES requests (id),
  idx INTEGER NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  type TEXT NOT NULL DEFAULT '',
  checked INTEGER NOT NULL DEFAULT 0,
  outcome TEXT NOT NULL DEFAULT 'pass',
  safe_sha256 TEXT NOT NULL DEFAULT '',
  safe_size INTEGER NOT NULL DEFAULT 0,
  safe_outcome TEXT,
  choice TEXT NOT NULL DEFAULT 'pending',
  exception_reason TEXT NOT NULL DEFAULT '',
  report TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (request, idx)
) WITHOUT ROWID;

-- One decision per steward per file, never updated or deleted.
CREATE TABLE decisions (
  request INTEGER NOT NULL,
  idx INTEGER NOT NULL,
  steward TEXT NOT NULL,
  verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'reject')),
  comment TEXT NOT NULL,
  at_ms INTEGER NOT NULL,
  PRIMARY KEY (request, idx, steward),
  FOREIGN KEY (request, idx) REFERENCES files (request, idx)
) WITHOUT ROWID;

CREATE TABLE releases (
  id TEXT PRIMARY KEY,
  request INTEGER NOT NULL UNIQUE REFERENCES requests (id),
  project TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  size INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  manifest_sha256 TEXT NOT NULL,
  key_id TEXT NOT NULL,
  wrapped_key BLOB NOT NULL,
  state TEXT NOT NULL DEFAULT 'sealed' CHECK (state IN ('sealed', 'deleted', 'destroyed')),
  deleted_ms INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX releases_by_project ON releases (project);

CREATE TABLE links (
  token_sha256 TEXT PRIMARY KEY,
  release TEXT NOT NULL REFERENCES releases (id),
  created_by TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  used_ms INTEGER NOT NULL DEFAULT 0,
  used_from TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
CREATE INDEX links_by_release ON links (release);
)sql"},
    // A queue's page is a range of ids in one state, read in id order (no sort) and filtered
    // by project and requester (never the steward's own) from the index alone; counting a
    // 10,000-request queue reads no table rows either.
    {2, R"sql(
DROP INDEX requests_by_state;
CREATE INDEX requests_by_state ON requests (state, id, project, requester);
)sql"},
};

std::string outcome_text(Outcome o) {
  return outcome_name(o);
}

std::optional<Outcome> outcome_from(std::string_view text) {
  for (Outcome o : {Outcome::kPass, Outcome::kReview, Outcome::kFail}) {
    if (text == outcome_name(o)) return o;
  }
  return std::nullopt;
}

std::uint32_t waiting_files(const ExportRequest& request) {
  return static_cast<std::uint32_t>(
      std::count_if(request.files.begin(), request.files.end(), [&](const ExportFile& f) {
        return f.status(request.stewards_required) == review::FileStatus::kWaitingReview;
      }));
}

Unexpected<Error> corrupt(const store::Database& db, const std::string& what) {
  return fail(Errc::kCorrupt, db.path().string() + ": " + what);
}

ReleaseRow release_from(const store::Statement& s) {
  ReleaseRow r;
  r.id = std::string(s.column_text(0));
  r.request = s.column_int64(1);
  r.project = std::string(s.column_text(2));
  r.created_ms = s.column_int64(3);
  r.size = static_cast<std::uint64_t>(s.column_int64(4));
  r.sha256 = std::string(s.column_text(5));
  r.manifest_sha256 = std::string(s.column_text(6));
  r.key_id = std::string(s.column_text(7));
  auto blob = s.column_blob(8);
  r.wrapped_key.assign(blob.begin(), blob.end());
  r.state = std::string(s.column_text(9));
  r.deleted_ms = s.column_int64(10);
  return r;
}

constexpr const char* kReleaseColumns =
    "id, request, project, created_ms, size, sha256, manifest_sha256, key_id, wrapped_key, state, "
    "deleted_ms";

LinkRow link_from(const store::Statement& s) {
  LinkRow l;
  l.token_sha256 = std::string(s.column_text(0));
  l.release = std::string(s.column_text(1));
  l.created_by = std::string(s.column_text(2));
  l.created_ms = s.column_int64(3);
  l.expires_ms = s.column_int64(4);
  l.used_ms = s.column_int64(5);
  l.used_from = std::string(s.column_text(6));
  return l;
}

constexpr const char* kLinkColumns =
    "token_sha256, release, created_by, created_ms, expires_ms, used_ms, used_from";

template <typename Row, typename From>
Expected<std::vector<Row>> rows(store::Statement& s, From from) {
  std::vector<Row> out;
  for (;;) {
    auto row = s.step();
    if (!row) return error_of(row);
    if (!*row) break;
    out.push_back(from(s));
  }
  return out;
}

}  // namespace

const char* link_refusal_name(LinkRefusal refusal) {
  switch (refusal) {
    case LinkRefusal::kUnknown:
      return "unknown";
    case LinkRefusal::kExpired:
      return "expired";
    case LinkRefusal::kUsed:
      return "used";
    case LinkRefusal::kReleaseGone:
      return "gone";
  }
  return "unknown";
}

Expected<ExportStore> ExportStore::open(const std::filesystem::path& path,
                                        store::OpenOptions options) {
  auto db = store::Database::open(path, kMigrations, options);
  if (!db) return error_of(db);
  return ExportStore(std::move(db).value());
}

Status ExportStore::create(ExportRequest& request) {
  auto s = db_.prepare(
      "INSERT INTO requests (project, compartment, session, requester, tier, profile, "
      "stewards_required, justification, state, state_reason, files, waiting_files, created_ms, "
      "updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, ?12, ?12)");
  if (!s) return error_of(s);
  s->bind(1, request.project)
      .bind(2, request.compartment)
      .bind(3, request.session)
      .bind(4, request.requester)
      .bind(5, request.tier)
      .bind(6, request.profile)
      .bind(7, static_cast<std::int64_t>(request.stewards_required))
      .bind(8, request.justification)
      .bind(9, review::request_state_name(request.state))
      .bind(10, request.state_reason)
      .bind(11, static_cast<std::int64_t>(request.files.size()))
      .bind(12, request.created_ms);
  ENCLAVE_TRY(s->run());
  request.id = db_.last_insert_rowid();
  request.updated_ms = request.created_ms;
  auto f = db_.prepare(
      "INSERT INTO files (request, idx, name, size, sha256) VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!f) return error_of(f);
  for (const auto& file : request.files) {
    f->reset();
    f->bind(1, request.id)
        .bind(2, static_cast<std::int64_t>(file.index))
        .bind(3, file.name)
        .bind(4, static_cast<std::int64_t>(file.size))
        .bind(5, file.sha256);
    ENCLAVE_TRY(f->run());
  }
  return {};
}

Expected<std::optional<ExportRequest>> ExportStore::load(std::int64_t id) {
  auto s = db_.prepare(
      "SELECT id, project, compartment, session, requester, tier, profile, stewards_required, "
      "justification, state, state_reason, created_ms, updated_ms, coalesce(release, '') "
      "FROM requests WHERE id = ?1");
  if (!s) return error_of(s);
  s->bind(1, id);
  auto row = s->step();
  if (!row) return error_of(row);
  if (!*row) return std::optional<ExportRequest>();
  ExportRequest r;
  r.id = s->column_int64(0);
  r.project = std::string(s->column_text(1));
  r.compartment = std::string(s->column_text(2));
  r.session = std::string(s->column_text(3));
  r.requester = std::string(s->column_text(4));
  r.tier = std::string(s->column_text(5));
  r.profile = std::string(s->column_text(6));
  r.stewards_required = static_cast<int>(s->column_int64(7));
  r.justification = std::string(s->column_text(8));
  auto state = review::request_state_from_name(s->column_text(9));
  if (!state) return corrupt(db_, review::request_label(id) + " has an unknown state");
  r.state = *state;
  r.state_reason = std::string(s->column_text(10));
  r.created_ms = s->column_int64(11);
  r.updated_ms = s->column_int64(12);
  r.release = std::string(s->column_text(13));
  ENCLAVE_TRY(load_files(r));
  return std::optional<ExportRequest>(std::move(r));
}

Status ExportStore::load_files(ExportRequest& request) {
  auto s = db_.prepare(
      "SELECT idx, name, size, sha256, type, checked, outcome, safe_sha256, safe_size, "
      "safe_outcome, choice, exception_reason, report FROM files WHERE request = ?1 ORDER BY idx");
  if (!s) return error_of(s);
  s->bind(1, request.id);
  for (;;) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    ExportFile f;
    f.index = static_cast<std::uint32_t>(s->column_int64(0));
    f.name = std::string(s->column_text(1));
    f.size = static_cast<std::uint64_t>(s->column_int64(2));
    f.sha256 = std::string(s->column_text(3));
    f.type = std::string(s->column_text(4));
    f.checked = s->column_int64(5) != 0;
    auto outcome = outcome_from(s->column_text(6));
    auto choice = review::choice_from_name(s->column_text(10));
    if (!outcome || !choice) {
      return corrupt(db_, review::request_label(request.id) + " file " + std::to_string(f.index) +
                              " has an unknown outcome or choice");
    }
    f.outcome = *outcome;
    f.safe_sha256 = std::string(s->column_text(7));
    f.safe_size = static_cast<std::uint64_t>(s->column_int64(8));
    if (!s->column_is_null(9)) f.safe_outcome = outcome_from(s->column_text(9));
    f.choice = *choice;
    f.exception_reason = std::string(s->column_text(11));
    f.report_json = std::string(s->column_text(12));
    request.files.push_back(std::move(f));
  }
  auto d = db_.prepare(
      "SELECT idx, steward, verdict, comment, at_ms FROM decisions WHERE request = ?1 "
      "ORDER BY at_ms, steward");
  if (!d) return error_of(d);
  d->bind(1, request.id);
  for (;;) {
    auto row = d->step();
    if (!row) return error_of(row);
    if (!*row) break;
    const auto idx = static_cast<std::uint32_t>(d->column_int64(0));
    auto verdict = review::verdict_from_name(d->column_text(2));
    auto file = std::find_if(request.files.begin(), request.files.end(),
                             [&](const ExportFile& f) { return f.index == idx; });
    if (!verdict || file == request.files.end()) {
      return corrupt(db_, review::request_label(request.id) + " has a decision on file " +
                              std::to_string(idx) + " that does not read back");
    }
    file->decisions.push_back({std::string(d->column_text(1)), *verdict,
                               std::string(d->column_text(3)), d->column_int64(4)});
  }
  return {};
}

Status ExportStore::save(const ExportRequest& request) {
  auto s = db_.prepare(
      "UPDATE requests SET state = ?2, state_reason = ?3, updated_ms = ?4, release = "
      "nullif(?5, ''), waiting_files = ?6 WHERE id = ?1");
  if (!s) return error_of(s);
  s->bind(1, request.id)
      .bind(2, review::request_state_name(request.state))
      .bind(3, request.state_reason)
      .bind(4, request.updated_ms)
      .bind(5, request.release)
      .bind(6, static_cast<std::int64_t>(waiting_files(request)));
  ENCLAVE_TRY(s->run());
  if (db_.changes() != 1) {
    return fail(Errc::kNotFound, "no export request " + review::request_label(request.id));
  }
  auto f = db_.prepare(
      "UPDATE files SET type = ?3, checked = ?4, outcome = ?5, safe_sha256 = ?6, safe_size = ?7, "
      "safe_outcome = ?8, choice = ?9, exception_reason = ?10, report = ?11 "
      "WHERE request = ?1 AND idx = ?2");
  if (!f) return error_of(f);
  auto d = db_.prepare(
      "INSERT OR IGNORE INTO decisions (request, idx, steward, verdict, comment, at_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
  if (!d) return error_of(d);
  for (const auto& file : request.files) {
    f->reset();
    f->bind(1, request.id)
        .bind(2, static_cast<std::int64_t>(file.index))
        .bind(3, file.type)
        .bind(4, std::int64_t{file.checked ? 1 : 0})
        .bind(5, outcome_text(file.outcome))
        .bind(6, file.safe_sha256)
        .bind(7, static_cast<std::int64_t>(file.safe_size));
    if (file.safe_outcome) {
      f->bind(8, outcome_text(*file.safe_outcome));
    } else {
      f->bind_null(8);
    }
    f->bind(9, review::choice_name(file.choice))
        .bind(10, file.exception_reason)
        .bind(11, file.report_json);
    ENCLAVE_TRY(f->run());
    for (const auto& decision : file.decisions) {
      d->reset();
      d->bind(1, request.id)
          .bind(2, static_cast<std::int64_t>(file.index))
          .bind(3, decision.steward)
          .bind(4, review::verdict_name(decision.verdict))
          .bind(5, decision.comment)
          .bind(6, decision.at_ms);
      ENCLAVE_TRY(d->run());
    }
  }
  return {};
}

namespace {

// The WHERE clause a filter makes, built from fixed fragments only (every value is bound), and
// its bound values by position.
struct FilterClause {
  std::string sql;
  std::vector<std::pair<int, std::string>> binds;
};

FilterClause where_of(const QueueFilter& filter, bool paged) {
  FilterClause c{" WHERE 1", {}};
  int next = 1;
  auto in_list = [&](const char* column, const std::vector<std::string>& values) {
    c.sql += std::string(" AND ") + column + " IN (";
    for (std::size_t i = 0; i < values.size(); ++i) {
      c.sql += (i ? ", ?" : "?") + std::to_string(next);
      c.binds.emplace_back(next++, values[i]);
    }
    c.sql += ")";
  };
  if (!filter.states.empty()) {
    std::vector<std::string> names;
    for (auto st : filter.states) names.push_back(review::request_state_name(st));
    in_list("state", names);
  }
  if (!filter.projects.empty()) {
    in_list("project", {filter.projects.begin(), filter.projects.end()});
  }
  auto equals = [&](const char* clause, const std::string& value) {
    if (value.empty()) return;
    c.sql += std::string(" AND ") + clause + std::to_string(next);
    c.binds.emplace_back(next++, value);
  };
  equals("compartment = ?", filter.compartment);
  equals("requester = ?", filter.requester);
  equals("requester <> ?", filter.not_requester);
  if (paged && filter.after > 0) c.sql += " AND id > " + std::to_string(filter.after);
  return c;
}

}  // namespace

Expected<std::size_t> ExportStore::count(const QueueFilter& filter) {
  const FilterClause where = where_of(filter, false);
  auto s = db_.prepare("SELECT count(*) FROM requests" + where.sql);
  if (!s) return error_of(s);
  for (const auto& [index, value] : where.binds) s->bind(index, value);
  auto row = s->step();
  if (!row) return error_of(row);
  return static_cast<std::size_t>(s->column_int64(0));
}

Expected<std::vector<RequestSummary>> ExportStore::list(const QueueFilter& filter) {
  const FilterClause where = where_of(filter, true);
  std::string sql =
      "SELECT id, project, compartment, requester, tier, state, state_reason, stewards_required, "
      "files, waiting_files, created_ms, updated_ms, justification FROM requests" +
      where.sql + " ORDER BY id";
  if (filter.limit > 0) sql += " LIMIT " + std::to_string(filter.limit);
  auto s = db_.prepare(sql);
  if (!s) return error_of(s);
  for (const auto& [index, value] : where.binds) s->bind(index, value);
  std::vector<RequestSummary> out;
  for (;;) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    RequestSummary r;
    r.id = s->column_int64(0);
    r.project = std::string(s->column_text(1));
    r.compartment = std::string(s->column_text(2));
    r.requester = std::string(s->column_text(3));
    r.tier = std::string(s->column_text(4));
    auto state = review::request_state_from_name(s->column_text(5));
    if (!state) return corrupt(db_, review::request_label(r.id) + " has an unknown state");
    r.state = *state;
    r.state_reason = std::string(s->column_text(6));
    r.stewards_required = static_cast<int>(s->column_int64(7));
    r.files = static_cast<std::uint32_t>(s->column_int64(8));
    r.waiting_files = static_cast<std::uint32_t>(s->column_int64(9));
    r.created_ms = s->column_int64(10);
    r.updated_ms = s->column_int64(11);
    r.justification = std::string(s->column_text(12));
    out.push_back(std::move(r));
  }
  return out;
}

Expected<std::vector<std::int64_t>> ExportStore::unchecked() {
  auto s = db_.prepare("SELECT id FROM requests WHERE state = 'checking' ORDER BY id");
  if (!s) return error_of(s);
  return rows<std::int64_t>(*s, [](const store::Statement& st) { return st.column_int64(0); });
}

Expected<std::vector<std::int64_t>> ExportStore::approved_unreleased() {
  auto s = db_.prepare("SELECT id FROM requests WHERE state = 'approved' ORDER BY id");
  if (!s) return error_of(s);
  return rows<std::int64_t>(*s, [](const store::Statement& st) { return st.column_int64(0); });
}

Status ExportStore::insert_release(const ReleaseRow& r) {
  auto s = db_.prepare(
      "INSERT INTO releases (id, request, project, created_ms, size, sha256, manifest_sha256, "
      "key_id, wrapped_key, state, deleted_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
      "?11)");
  if (!s) return error_of(s);
  s->bind(1, r.id)
      .bind(2, r.request)
      .bind(3, r.project)
      .bind(4, r.created_ms)
      .bind(5, static_cast<std::int64_t>(r.size))
      .bind(6, r.sha256)
      .bind(7, r.manifest_sha256)
      .bind(8, r.key_id)
      .bind(9, ByteSpan(r.wrapped_key))
      .bind(10, r.state)
      .bind(11, r.deleted_ms);
  return s->run();
}

Expected<std::optional<ReleaseRow>> ExportStore::release(const std::string& id) {
  auto s = db_.prepare(std::string("SELECT ") + kReleaseColumns + " FROM releases WHERE id = ?1");
  if (!s) return error_of(s);
  s->bind(1, id);
  auto row = s->step();
  if (!row) return error_of(row);
  if (!*row) return std::optional<ReleaseRow>();
  return std::optional<ReleaseRow>(release_from(*s));
}

Expected<std::vector<ReleaseRow>> ExportStore::releases_of_project(const std::string& project) {
  auto s = db_.prepare(std::string("SELECT ") + kReleaseColumns +
                       " FROM releases WHERE project = ?1 ORDER BY created_ms, id");
  if (!s) return error_of(s);
  s->bind(1, project);
  return rows<ReleaseRow>(*s, release_from);
}

Expected<std::vector<ReleaseRow>> ExportStore::releases_older_than(std::int64_t cutoff_ms) {
  auto s = db_.prepare(std::string("SELECT ") + kReleaseColumns +
                       " FROM releases WHERE state = 'sealed' AND created_ms < ?1 ORDER BY id");
  if (!s) return error_of(s);
  s->bind(1, cutoff_ms);
  return rows<ReleaseRow>(*s, release_from);
}

Status ExportStore::set_release_key(const std::string& id, const std::string& key_id,
                                    ByteSpan wrapped) {
  auto s = db_.prepare("UPDATE releases SET key_id = ?2, wrapped_key = ?3 WHERE id = ?1");
  if (!s) return error_of(s);
  s->bind(1, id).bind(2, key_id).bind(3, wrapped);
  return s->run();
}

Status ExportStore::set_release_state(const std::string& id, const std::string& state,
                                      std::int64_t at_ms) {
  auto s = db_.prepare("UPDATE releases SET state = ?2, deleted_ms = ?3 WHERE id = ?1");
  if (!s) return error_of(s);
  s->bind(1, id).bind(2, state).bind(3, at_ms);
  return s->run();
}

Status ExportStore::insert_link(const LinkRow& l) {
  auto s = db_.prepare(
      "INSERT INTO links (token_sha256, release, created_by, created_ms, expires_ms) "
      "VALUES (?1, ?2, ?3, ?4, ?5)");
  if (!s) return error_of(s);
  s->bind(1, l.token_sha256).bind(2, l.release).bind(3, l.created_by).bind(4, l.created_ms);
  s->bind(5, l.expires_ms);
  return s->run();
}

Expected<LinkRow> ExportStore::claim_link(const std::string& token_sha256, std::int64_t now_ms,
                                          const std::string& source, LinkRefusal* refusal) {
  // One statement decides: two downloads racing on one link cannot both win.
  auto claim = db_.prepare(
      "UPDATE links SET used_ms = ?2, used_from = ?3 WHERE token_sha256 = ?1 AND used_ms = 0 "
      "AND expires_ms > ?2 AND (SELECT state FROM releases WHERE id = links.release) = 'sealed'");
  if (!claim) return error_of(claim);
  claim->bind(1, token_sha256).bind(2, now_ms).bind(3, source);
  ENCLAVE_TRY(claim->run());
  const bool claimed = db_.changes() == 1;
  auto s = db_.prepare(std::string("SELECT ") + kLinkColumns +
                       ", (SELECT state FROM releases WHERE id = links.release) FROM links "
                       "WHERE token_sha256 = ?1");
  if (!s) return error_of(s);
  s->bind(1, token_sha256);
  auto row = s->step();
  if (!row) return error_of(row);
  if (!*row) {
    if (refusal) *refusal = LinkRefusal::kUnknown;
    return fail(Errc::kNotFound, "unknown download link");
  }
  LinkRow link = link_from(*s);
  const bool sealed = s->column_text(7) == "sealed";
  if (claimed) return link;
  LinkRefusal why = link.used_ms != 0           ? LinkRefusal::kUsed
                    : link.expires_ms <= now_ms ? LinkRefusal::kExpired
                    : !sealed                   ? LinkRefusal::kReleaseGone
                                                : LinkRefusal::kUsed;
  if (refusal) *refusal = why;
  return fail(why == LinkRefusal::kExpired ? Errc::kTimeout : Errc::kConflict,
              "download link for " + link.release + " refused: " + link_refusal_name(why));
}

Expected<std::vector<LinkRow>> ExportStore::links_of_release(const std::string& release) {
  auto s = db_.prepare(std::string("SELECT ") + kLinkColumns +
                       " FROM links WHERE release = ?1 ORDER BY created_ms");
  if (!s) return error_of(s);
  s->bind(1, release);
  return rows<LinkRow>(*s, link_from);
}

}  // namespace enclave::exitcontrol
