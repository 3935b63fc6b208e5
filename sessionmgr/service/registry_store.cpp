#include "sessionmgr/service/registry_store.hpp"
#include "sessionmgr/service/store_time.hpp"

#include <algorithm>
#include <array>

#include "sessionmgr/core/lifecycle.hpp"

namespace enclave::sessionmgr::registry {

namespace {

constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  version INTEGER NOT NULL
);
INSERT INTO meta (id, version) VALUES (1, 0);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL DEFAULT '',
  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE TABLE user_roles (
  user TEXT NOT NULL REFERENCES users (id),
  role TEXT NOT NULL
    CHECK (role IN ('analyst', 'steward', 'auditor', 'site_manager', 'operator')),
  PRIMARY KEY (user, role)
);
CREATE TABLE sites (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  ike_identity TEXT NOT NULL,
  site_class TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('registered', 'approved', 'suspended', 'revoked')),
  audited_ms INTEGER,
  expires_ms INTEGER,
  lapse_noted INTEGER NOT NULL DEFAULT 0 CHECK (lapse_noted IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX sites_live_identity ON sites (ike_identity) WHERE state <> 'revoked';
CREATE TABLE site_pools (
  site TEXT NOT NULL REFERENCES sites (id),
  network TEXT NOT NULL,
  PRIMARY KEY (site, network)
);
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  site TEXT NOT NULL REFERENCES sites (id),
  certificate_pem TEXT NOT NULL,
  certificate_sha256 TEXT NOT NULL UNIQUE CHECK (length(certificate_sha256) = 64),
  serial TEXT NOT NULL,
  public_key BLOB NOT NULL CHECK (length(public_key) = 32),
  state TEXT NOT NULL CHECK (state IN ('active', 'revoked')),
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER,
  revoke_reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX devices_site ON devices (site);
CREATE INDEX devices_revoked ON devices (state) WHERE state = 'revoked';
CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  valid_from_ms INTEGER NOT NULL,
  valid_until_ms INTEGER NOT NULL CHECK (valid_until_ms > valid_from_ms),
  created_ms INTEGER NOT NULL
);
CREATE TABLE project_members (
  project TEXT NOT NULL REFERENCES projects (id),
  user TEXT NOT NULL REFERENCES users (id),
  PRIMARY KEY (project, user)
);
CREATE INDEX project_members_user ON project_members (user);
CREATE TABLE project_compartments (
  project TEXT NOT NULL REFERENCES projects (id),
  compartment TEXT NOT NULL,
  PRIMARY KEY (project, compartment)
);
CREATE TABLE enrolments (
  id INTEGER PRIMARY KEY,
  user TEXT NOT NULL REFERENCES users (id),
  device TEXT NOT NULL REFERENCES devices (id),
  state TEXT NOT NULL CHECK (state IN ('approved', 'enrolled', 'revoked')),
  approved_by TEXT NOT NULL,
  approved_ms INTEGER NOT NULL,
  enrolled_ms INTEGER,
  revoked_ms INTEGER,
  print_id TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX enrolments_live ON enrolments (user, device) WHERE state <> 'revoked';
CREATE INDEX enrolments_device ON enrolments (device);
CREATE TABLE prints (
  id TEXT PRIMARY KEY,
  enrolment INTEGER NOT NULL REFERENCES enrolments (id),
  ciphertext BLOB,
  created_ms INTEGER NOT NULL,
  revoked_ms INTEGER,
  CHECK ((revoked_ms IS NULL) = (ciphertext IS NOT NULL))
);
CREATE INDEX prints_enrolment ON prints (enrolment);
)sql";

constexpr std::array<store::Migration, 1> kMigrations = {{{1, kSchemaV1}}};

std::string text(const store::Statement& s, int col) {
  return std::string(s.column_text(col));
}

// Runs a prepared query and turns each row into a T.
template <class T, class Read>
Expected<std::vector<T>> rows(store::Statement& s, Read read) {
  std::vector<T> out;
  for (;;) {
    auto row = s.step();
    if (!row) return error_of(row);
    if (!*row) return out;
    auto item = read(s);
    if (!item) return error_of(item);
    out.push_back(std::move(item).value());
  }
}

template <class T>
Expected<std::optional<T>> first(Expected<std::vector<T>> all) {
  if (!all) return error_of(all);
  if (all->empty()) return std::optional<T>();
  return std::optional<T>(std::move(all->front()));
}

Expected<std::vector<std::string>> strings(store::Database& db, std::string_view sql,
                                           std::string_view key) {
  auto st = db.prepare(sql);
  if (!st) return error_of(st);
  st->bind(1, key);
  return rows<std::string>(
      *st, [](const store::Statement& s) -> Expected<std::string> { return text(s, 0); });
}

Error corrupt(store::Database& db, const std::string& what) {
  return Error{Errc::kCorrupt, db.path().string() + ": " + what};
}

// ---- users -------------------------------------------------------------------------------

constexpr std::string_view kUserColumns = "id, name, disabled, created_ms, updated_ms";

Expected<User> read_user(store::Database& db, const store::Statement& s) {
  User u;
  u.id = text(s, 0);
  u.name = text(s, 1);
  u.disabled = s.column_int64(2) != 0;
  u.created_at = from_unix_ms(s.column_int64(3));
  u.updated_at = from_unix_ms(s.column_int64(4));
  auto roles = strings(db, "SELECT role FROM user_roles WHERE user = ?1", u.id);
  if (!roles) return error_of(roles);
  for (const auto& r : *roles) {
    auto role = role_from_name(r);
    if (!role) return fail(corrupt(db, "user " + u.id + " has an unknown role " + r));
    u.roles.insert(*role);
  }
  return u;
}

Expected<std::vector<User>> query_users(store::Database& db, std::string_view where,
                                        std::optional<std::string_view> key) {
  auto st = db.prepare("SELECT " + std::string(kUserColumns) + " FROM users " + std::string(where) +
                       " ORDER BY id");
  if (!st) return error_of(st);
  if (key) st->bind(1, *key);
  return rows<User>(*st, [&](const store::Statement& s) { return read_user(db, s); });
}

// ---- sites -------------------------------------------------------------------------------

constexpr std::string_view kSiteColumns =
    "id, name, ike_identity, site_class, state, audited_ms, expires_ms, created_ms, updated_ms";

Expected<Site> read_site(store::Database& db, const store::Statement& s) {
  Site site;
  site.id = text(s, 0);
  site.name = text(s, 1);
  site.ike_identity = text(s, 2);
  site.site_class = text(s, 3);
  auto state = site_state_from_name(s.column_text(4));
  if (!state) return fail(corrupt(db, "site " + site.id + " has an unknown state"));
  site.state = *state;
  site.approved_at = optional_time(s, 5);
  site.approval_expires = optional_time(s, 6);
  site.created_at = from_unix_ms(s.column_int64(7));
  site.updated_at = from_unix_ms(s.column_int64(8));
  auto pools =
      strings(db, "SELECT network FROM site_pools WHERE site = ?1 ORDER BY network", site.id);
  if (!pools) return error_of(pools);
  for (const auto& p : *pools) {
    auto network = IpNetwork::parse(p);
    if (!network) {
      return fail(corrupt(db, "site " + site.id + ": pool " + network.error().describe()));
    }
    site.pools.push_back(*network);
  }
  return site;
}

Expected<std::vector<Site>> query_sites(store::Database& db, std::string_view where,
                                        std::optional<std::string_view> key) {
  auto st = db.prepare("SELECT " + std::string(kSiteColumns) + " FROM sites " + std::string(where) +
                       " ORDER BY id");
  if (!st) return error_of(st);
  if (key) st->bind(1, *key);
  return rows<Site>(*st, [&](const store::Statement& s) { return read_site(db, s); });
}

// ---- devices -----------------------------------------------------------------------------

Expected<std::vector<Device>> query_devices(store::Database& db, bool with_pem,
                                            std::string_view where,
                                            std::optional<std::string_view> key) {
  auto st = db.prepare(std::string("SELECT id, site, ") + (with_pem ? "certificate_pem" : "''") +
                       ", certificate_sha256, serial, public_key, state, created_ms, revoked_ms, "
                       "revoke_reason FROM devices " +
                       std::string(where) + " ORDER BY id");
  if (!st) return error_of(st);
  if (key) st->bind(1, *key);
  return rows<Device>(*st, [&](const store::Statement& s) -> Expected<Device> {
    Device d;
    d.id = text(s, 0);
    d.site = text(s, 1);
    d.certificate_pem = text(s, 2);
    d.certificate_sha256 = text(s, 3);
    d.serial = text(s, 4);
    const ByteSpan key_bytes = s.column_blob(5);
    d.public_key.assign(key_bytes.begin(), key_bytes.end());
    auto state = device_state_from_name(s.column_text(6));
    if (!state) return fail(corrupt(db, "device " + d.id + " has an unknown state"));
    d.state = *state;
    d.created_at = from_unix_ms(s.column_int64(7));
    d.revoked_at = optional_time(s, 8);
    d.revoke_reason = text(s, 9);
    return d;
  });
}

// ---- projects ----------------------------------------------------------------------------

Expected<std::vector<Project>> query_projects(store::Database& db, std::string_view where,
                                              std::optional<std::string_view> key) {
  auto st = db.prepare("SELECT id, title, valid_from_ms, valid_until_ms FROM projects " +
                       std::string(where) + " ORDER BY id");
  if (!st) return error_of(st);
  if (key) st->bind(1, *key);
  return rows<Project>(*st, [&](const store::Statement& s) -> Expected<Project> {
    Project p;
    p.id = text(s, 0);
    p.title = text(s, 1);
    p.valid_from = from_unix_ms(s.column_int64(2));
    p.valid_until = from_unix_ms(s.column_int64(3));
    auto members = strings(db, "SELECT user FROM project_members WHERE project = ?1", p.id);
    if (!members) return error_of(members);
    p.members.insert(members->begin(), members->end());
    auto granted =
        strings(db, "SELECT compartment FROM project_compartments WHERE project = ?1", p.id);
    if (!granted) return error_of(granted);
    p.compartments.insert(granted->begin(), granted->end());
    return p;
  });
}

// ---- enrolments --------------------------------------------------------------------------

Expected<std::vector<Enrolment>> query_enrolments(store::Database& db, std::string_view where,
                                                  std::initializer_list<std::string_view> keys) {
  auto st = db.prepare(
      "SELECT id, user, device, state, approved_by, approved_ms, enrolled_ms, revoked_ms, "
      "print_id FROM enrolments " +
      std::string(where) + " ORDER BY approved_ms DESC, id DESC");
  if (!st) return error_of(st);
  int index = 1;
  for (auto k : keys) st->bind(index++, k);
  return rows<Enrolment>(*st, [&](const store::Statement& s) -> Expected<Enrolment> {
    Enrolment e;
    e.id = s.column_int64(0);
    e.user = text(s, 1);
    e.device = text(s, 2);
    auto state = enrolment_state_from_name(s.column_text(3));
    if (!state) return fail(corrupt(db, "enrolment " + std::to_string(e.id) + " has no state"));
    e.state = *state;
    e.approved_by = text(s, 4);
    e.approved_at = from_unix_ms(s.column_int64(5));
    e.enrolled_at = optional_time(s, 6);
    e.revoked_at = optional_time(s, 7);
    e.print_id = text(s, 8);
    return e;
  });
}

Status run(store::Database& db, std::string_view sql,
           const std::function<void(store::Statement&)>& bind) {
  auto st = db.prepare(sql);
  if (!st) return error_of(st);
  bind(*st);
  return st->run();
}

Status insert_roles(store::Database& db, const User& user) {
  for (Role r : user.roles) {
    ENCLAVE_TRY(run(
        db, "INSERT INTO user_roles (user, role) VALUES (?1, ?2)",
        [&](store::Statement& s) { s.bind(1, user.id).bind(2, std::string_view(role_name(r))); }));
  }
  return {};
}

// A change that matched no row names what was missing.
Status changed_one(store::Database& db, const std::string& what) {
  if (db.changes() == 0) return fail(Errc::kNotFound, "no " + what);
  return {};
}

}  // namespace

Expected<store::Database> open_registry_database(const std::filesystem::path& path,
                                                 store::Access access) {
  store::OpenOptions options;
  options.access = access;
  options.sync = store::Sync::kFull;
  if (access == store::Access::kReadWrite) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
  } else {
    options.create = false;
  }
  return store::Database::open(path, kMigrations, options);
}

Expected<std::int64_t> registry_version(store::Database& db) {
  auto st = db.prepare("SELECT version FROM meta WHERE id = 1");
  if (!st) return error_of(st);
  auto row = st->step();
  if (!row) return error_of(row);
  if (!*row) return fail(corrupt(db, "the meta row is missing"));
  return st->column_int64(0);
}

Expected<std::optional<User>> find_user(store::Database& db, std::string_view id) {
  return first(query_users(db, "WHERE id = ?1", id));
}

Expected<std::optional<Site>> find_site(store::Database& db, std::string_view id) {
  return first(query_sites(db, "WHERE id = ?1", id));
}

Expected<std::optional<Device>> find_device(store::Database& db, std::string_view id) {
  return first(query_devices(db, true, "WHERE id = ?1", id));
}

Expected<std::optional<Project>> find_project(store::Database& db, std::string_view id) {
  return first(query_projects(db, "WHERE id = ?1", id));
}

Expected<std::optional<Site>> site_for_address(store::Database& db, const IpAddress& address,
                                               TimePoint now) {
  auto approved = query_sites(db, "WHERE state = 'approved'", std::nullopt);
  if (!approved) return error_of(approved);
  for (auto& site : *approved) {
    if (site.may_log_in(now) && site.holds(address)) return std::optional<Site>(std::move(site));
  }
  return std::optional<Site>();
}

Expected<std::vector<StoredPrint>> enrolled_prints(store::Database& db, std::string_view user,
                                                   std::string_view device) {
  auto st = db.prepare(
      "SELECT p.id, p.ciphertext FROM prints p JOIN enrolments e ON p.enrolment = e.id "
      "WHERE e.user = ?1 AND e.device = ?2 AND e.state <> 'revoked' AND p.revoked_ms IS NULL "
      "ORDER BY p.created_ms, p.id");
  if (!st) return error_of(st);
  st->bind(1, user).bind(2, device);
  return rows<StoredPrint>(*st, [](const store::Statement& s) -> Expected<StoredPrint> {
    const ByteSpan c = s.column_blob(1);
    return StoredPrint{text(s, 0), Bytes(c.begin(), c.end())};
  });
}

Expected<std::vector<RevokedDevice>> revoked_devices(store::Database& db) {
  auto st = db.prepare(
      "SELECT id, serial, certificate_sha256 FROM devices WHERE state = 'revoked' ORDER BY id");
  if (!st) return error_of(st);
  return rows<RevokedDevice>(*st, [](const store::Statement& s) -> Expected<RevokedDevice> {
    return RevokedDevice{text(s, 0), text(s, 1), text(s, 2)};
  });
}

Expected<PoolTable> approved_pools(store::Database& db, TimePoint now) {
  PoolTable table;
  auto version = registry_version(db);
  if (!version) return error_of(version);
  table.version = *version;
  auto approved = query_sites(db, "WHERE state = 'approved'", std::nullopt);
  if (!approved) return error_of(approved);
  for (const auto& site : *approved) {
    if (!site.may_log_in(now)) continue;
    PoolTable::Entry entry{site.id, site.ike_identity, {}};
    for (const auto& pool : site.pools) entry.pools.push_back(pool.text());
    table.sites.push_back(std::move(entry));
  }
  auto revoked = revoked_devices(db);
  if (!revoked) return error_of(revoked);
  table.revoked = std::move(revoked).value();
  return table;
}

Expected<std::set<std::string>> user_compartments(store::Database& db, std::string_view user,
                                                  TimePoint now) {
  auto u = find_user(db, user);
  if (!u) return error_of(u);
  if (!*u) return std::set<std::string>();
  auto projects =
      query_projects(db, "WHERE id IN (SELECT project FROM project_members WHERE user = ?1)", user);
  if (!projects) return error_of(projects);
  return compartments_held(**u, *projects, now);
}

Expected<std::optional<Enrolment>> current_enrolment(store::Database& db, std::string_view user,
                                                     std::string_view device) {
  return first(query_enrolments(db, "WHERE user = ?1 AND device = ?2 AND state <> 'revoked'",
                                {user, device}));
}

Expected<std::vector<User>> list_users(store::Database& db) {
  return query_users(db, "", std::nullopt);
}
Expected<std::vector<Site>> list_sites(store::Database& db) {
  return query_sites(db, "", std::nullopt);
}
Expected<std::vector<Device>> list_devices(store::Database& db) {
  return query_devices(db, false, "", std::nullopt);
}
Expected<std::vector<Project>> list_projects(store::Database& db) {
  return query_projects(db, "", std::nullopt);
}
Expected<std::vector<Enrolment>> list_enrolments(store::Database& db, std::string_view user) {
  if (user.empty()) return query_enrolments(db, "", {});
  return query_enrolments(db, "WHERE user = ?1", {user});
}

// ---- RegistryStore -----------------------------------------------------------------------

Expected<RegistryStore> RegistryStore::open(const std::filesystem::path& path) {
  auto db = open_registry_database(path, store::Access::kReadWrite);
  if (!db) return error_of(db);
  return RegistryStore(std::move(db).value());
}

Status RegistryStore::transaction(const std::function<Status()>& body) {
  ENCLAVE_TRY(db_.begin_immediate());
  Status done = [&]() -> Status {
    ENCLAVE_TRY(body());
    ENCLAVE_TRY(db_.exec("UPDATE meta SET version = version + 1 WHERE id = 1"));
    return db_.commit();
  }();
  if (!done) (void)db_.rollback();
  return done;
}

Status RegistryStore::insert_user(const User& u) {
  ENCLAVE_TRY(run(db_,
                  "INSERT INTO users (id, name, disabled, created_ms, updated_ms) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)",
                  [&](store::Statement& s) {
                    s.bind(1, u.id).bind(2, u.name).bind(3, std::int64_t{u.disabled ? 1 : 0});
                    s.bind(4, to_unix_ms(u.created_at)).bind(5, to_unix_ms(u.updated_at));
                  }));
  return insert_roles(db_, u);
}

Status RegistryStore::update_user(const User& u) {
  ENCLAVE_TRY(run(db_, "UPDATE users SET name = ?2, disabled = ?3, updated_ms = ?4 WHERE id = ?1",
                  [&](store::Statement& s) {
                    s.bind(1, u.id).bind(2, u.name).bind(3, std::int64_t{u.disabled ? 1 : 0});
                    s.bind(4, to_unix_ms(u.updated_at));
                  }));
  ENCLAVE_TRY(changed_one(db_, "user " + u.id));
  ENCLAVE_TRY(run(db_, "DELETE FROM user_roles WHERE user = ?1",
                  [&](store::Statement& s) { s.bind(1, u.id); }));
  return insert_roles(db_, u);
}

Status RegistryStore::insert_site(const Site& site) {
  auto live = query_sites(db_, "WHERE state <> 'revoked'", std::nullopt);
  if (!live) return error_of(live);
  for (const auto& other : *live) {
    if (other.id == site.id) continue;  // the primary key says so below
    for (const auto& mine : site.pools) {
      for (const auto& theirs : other.pools) {
        if (mine.overlaps(theirs)) {
          return fail(Errc::kConflict, "pool " + mine.text() + " overlaps " + theirs.text() +
                                           " of site " + other.id);
        }
      }
    }
    if (other.ike_identity == site.ike_identity) {
      return fail(Errc::kAlreadyExists, "site " + other.id + " already has the IKE identity \"" +
                                            site.ike_identity + "\"");
    }
  }
  auto st = db_.prepare("INSERT INTO sites (" + std::string(kSiteColumns) +
                        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!st) return error_of(st);
  st->bind(1, site.id).bind(2, site.name).bind(3, site.ike_identity).bind(4, site.site_class);
  st->bind(5, std::string_view(site_state_name(site.state)));
  bind_optional(*st, 6, site.approved_at);
  bind_optional(*st, 7, site.approval_expires);
  st->bind(8, to_unix_ms(site.created_at)).bind(9, to_unix_ms(site.updated_at));
  ENCLAVE_TRY(st->run());
  for (const auto& pool : site.pools) {
    ENCLAVE_TRY(run(db_, "INSERT INTO site_pools (site, network) VALUES (?1, ?2)",
                    [&](store::Statement& s) { s.bind(1, site.id).bind(2, pool.text()); }));
  }
  return {};
}

Status RegistryStore::update_site(const Site& site) {
  auto st = db_.prepare(
      "UPDATE sites SET state = ?2, audited_ms = ?3, expires_ms = ?4, lapse_noted = 0, "
      "updated_ms = ?5 WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, site.id).bind(2, std::string_view(site_state_name(site.state)));
  bind_optional(*st, 3, site.approved_at);
  bind_optional(*st, 4, site.approval_expires);
  st->bind(5, to_unix_ms(site.updated_at));
  ENCLAVE_TRY(st->run());
  return changed_one(db_, "site " + site.id);
}

Status RegistryStore::insert_device(const Device& d) {
  auto st = db_.prepare(
      "INSERT INTO devices (id, site, certificate_pem, certificate_sha256, serial, public_key, "
      "state, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!st) return error_of(st);
  st->bind(1, d.id).bind(2, d.site).bind(3, d.certificate_pem).bind(4, d.certificate_sha256);
  st->bind(5, d.serial).bind(6, ByteSpan(d.public_key));
  st->bind(7, std::string_view(device_state_name(d.state))).bind(8, to_unix_ms(d.created_at));
  return st->run();
}

Expected<int> RegistryStore::revoke_device(std::string_view id, const std::string& reason,
                                           TimePoint now) {
  ENCLAVE_TRY(
      run(db_,
          "UPDATE devices SET state = 'revoked', revoked_ms = ?2, revoke_reason = ?3 "
          "WHERE id = ?1 AND state = 'active'",
          [&](store::Statement& s) { s.bind(1, id).bind(2, to_unix_ms(now)).bind(3, reason); }));
  ENCLAVE_TRY(changed_one(db_, "active device " + std::string(id)));
  auto live = query_enrolments(db_, "WHERE device = ?1 AND state <> 'revoked'", {id});
  if (!live) return error_of(live);
  for (auto& e : *live) {
    auto prints = revoke_prints(e.id, now);
    if (!prints) return error_of(prints);
    e.state = EnrolmentState::kRevoked;
    e.revoked_at = now;
    ENCLAVE_TRY(update_enrolment(e));
  }
  return static_cast<int>(live->size());
}

Status RegistryStore::insert_project(const Project& p, TimePoint now) {
  ENCLAVE_TRY(run(db_,
                  "INSERT INTO projects (id, title, valid_from_ms, valid_until_ms, created_ms) "
                  "VALUES (?1, ?2, ?3, ?4, ?5)",
                  [&](store::Statement& s) {
                    s.bind(1, p.id).bind(2, p.title).bind(3, to_unix_ms(p.valid_from));
                    s.bind(4, to_unix_ms(p.valid_until)).bind(5, to_unix_ms(now));
                  }));
  for (const auto& user : p.members) ENCLAVE_TRY(set_member(p.id, user, true));
  for (const auto& c : p.compartments) ENCLAVE_TRY(grant(p.id, c));
  return {};
}

Status RegistryStore::set_member(std::string_view project, std::string_view user, bool member) {
  ENCLAVE_TRY(run(db_,
                  member ? "INSERT INTO project_members (project, user) VALUES (?1, ?2)"
                         : "DELETE FROM project_members WHERE project = ?1 AND user = ?2",
                  [&](store::Statement& s) { s.bind(1, project).bind(2, user); }));
  if (!member) {
    return changed_one(db_, "member " + std::string(user) + " in project " + std::string(project));
  }
  return {};
}

Status RegistryStore::grant(std::string_view project, std::string_view compartment) {
  return run(db_, "INSERT INTO project_compartments (project, compartment) VALUES (?1, ?2)",
             [&](store::Statement& s) { s.bind(1, project).bind(2, compartment); });
}

Expected<std::int64_t> RegistryStore::insert_enrolment(const Enrolment& e) {
  auto st = db_.prepare(
      "INSERT INTO enrolments (user, device, state, approved_by, approved_ms, enrolled_ms, "
      "revoked_ms, print_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
  if (!st) return error_of(st);
  st->bind(1, e.user).bind(2, e.device).bind(3, std::string_view(enrolment_state_name(e.state)));
  st->bind(4, e.approved_by).bind(5, to_unix_ms(e.approved_at));
  bind_optional(*st, 6, e.enrolled_at);
  bind_optional(*st, 7, e.revoked_at);
  st->bind(8, e.print_id);
  ENCLAVE_TRY(st->run());
  return db_.last_insert_rowid();
}

Status RegistryStore::update_enrolment(const Enrolment& e) {
  auto st = db_.prepare(
      "UPDATE enrolments SET state = ?2, approved_by = ?3, approved_ms = ?4, enrolled_ms = ?5, "
      "revoked_ms = ?6, print_id = ?7 WHERE id = ?1");
  if (!st) return error_of(st);
  st->bind(1, e.id).bind(2, std::string_view(enrolment_state_name(e.state)));
  st->bind(3, e.approved_by).bind(4, to_unix_ms(e.approved_at));
  bind_optional(*st, 5, e.enrolled_at);
  bind_optional(*st, 6, e.revoked_at);
  st->bind(7, e.print_id);
  ENCLAVE_TRY(st->run());
  return changed_one(db_, "enrolment " + std::to_string(e.id));
}

Status RegistryStore::insert_print(std::string_view print_id, std::int64_t enrolment,
                                   ByteSpan ciphertext, TimePoint now) {
  return run(db_,
             "INSERT INTO prints (id, enrolment, ciphertext, created_ms) VALUES (?1, ?2, ?3, ?4)",
             [&](store::Statement& s) {
               s.bind(1, print_id).bind(2, enrolment).bind(3, ciphertext).bind(4, to_unix_ms(now));
             });
}

Expected<int> RegistryStore::revoke_prints(std::int64_t enrolment, TimePoint now) {
  ENCLAVE_TRY(run(db_,
                  "UPDATE prints SET ciphertext = NULL, revoked_ms = ?2 "
                  "WHERE enrolment = ?1 AND revoked_ms IS NULL",
                  [&](store::Statement& s) { s.bind(1, enrolment).bind(2, to_unix_ms(now)); }));
  return db_.changes();
}

Expected<std::vector<Site>> RegistryStore::unnoted_lapses(TimePoint now) {
  auto st = db_.prepare("SELECT " + std::string(kSiteColumns) +
                        " FROM sites WHERE state = 'approved' AND lapse_noted = 0 AND "
                        "expires_ms <= ?1 ORDER BY id");
  if (!st) return error_of(st);
  st->bind(1, to_unix_ms(now));
  return rows<Site>(*st, [&](const store::Statement& s) { return read_site(db_, s); });
}

Status RegistryStore::mark_lapse_noted(std::string_view site) {
  ENCLAVE_TRY(run(db_, "UPDATE sites SET lapse_noted = 1 WHERE id = ?1",
                  [&](store::Statement& s) { s.bind(1, site); }));
  return changed_one(db_, "site " + std::string(site));
}

}  // namespace enclave::sessionmgr::registry
