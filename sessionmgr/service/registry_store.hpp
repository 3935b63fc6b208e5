// registry.db: the registry's own SQLite file (common/store.hpp: WAL, foreign keys,
// migrations), next to sessions.db.
//
//   meta                  one row: the version, bumped by every change (registry.pools)
//   users, user_roles     login names, the person's name, disabled, roles
//   sites, site_pools     remote rooms: IKE identity, class, state, audit date and expiry,
//                         their virtual-IP pools (no two live sites' pools overlap)
//   devices               kitted kiosks: certificate (PEM, SHA-256 of the DER, serial), raw
//                         Ed25519 public key, site, active or revoked
//   projects, project_members, project_compartments
//   enrolments            per user and device (the kiosk's reader): approved by a steward,
//                         enrolled once a print is recorded, revoked
//   prints                the print vault's ciphertexts only (print_vault.hpp); the ciphertext
//                         is deleted when the print is replaced or revoked, the row kept
//
// Two kinds of access. enclave-sessiond opens it read-write through RegistryStore; every change
// runs inside RegistryStore::transaction(), so an error leaves nothing half-written. The PAM
// module in the same machine opens it read-only (open_registry_database with kReadOnly) and
// uses the lookups below, which are plain functions of a Database and write nothing.
#pragma once

#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "common/store.hpp"
#include "sessionmgr/core/registry.hpp"

namespace enclave::sessionmgr::registry {

// Read-write: creates the file (and its directory) and applies migrations. Read-only: neither,
// and refuses a schema other than this build's (kConflict).
Expected<store::Database> open_registry_database(const std::filesystem::path& path,
                                                 store::Access access);

struct StoredPrint {
  std::string print_id;
  Bytes ciphertext;  // PrintVault::seal's output, bound to (user, device, print_id)
};

struct RevokedDevice {
  std::string id;
  std::string serial;
  std::string certificate_sha256;
};

// What the gateway fetches (registry.pools).
struct PoolTable {
  struct Entry {
    std::string site, ike_identity;
    std::vector<std::string> pools;  // canonical CIDR text
  };
  std::int64_t version = 0;
  std::vector<Entry> sites;  // approved and unexpired at `now`, by id
  std::vector<RevokedDevice> revoked;
};

// ---- Lookups: usable on a read-only Database ---------------------------------------------
Expected<std::int64_t> registry_version(store::Database& db);
Expected<std::optional<User>> find_user(store::Database& db, std::string_view id);
Expected<std::optional<Site>> find_site(store::Database& db, std::string_view id);
Expected<std::optional<Device>> find_device(store::Database& db, std::string_view id);
Expected<std::optional<Project>> find_project(store::Database& db, std::string_view id);
// The approved, unexpired site one of whose pools holds the address.
Expected<std::optional<Site>> site_for_address(store::Database& db, const IpAddress& address,
                                               TimePoint now);
// The user's live prints for the device: of an enrolment that is not revoked, not replaced.
Expected<std::vector<StoredPrint>> enrolled_prints(store::Database& db, std::string_view user,
                                                   std::string_view device);
Expected<PoolTable> approved_pools(store::Database& db, TimePoint now);
Expected<std::vector<RevokedDevice>> revoked_devices(store::Database& db);
// registry::compartments_held for the stored user and projects; empty for an unknown user.
Expected<std::set<std::string>> user_compartments(store::Database& db, std::string_view user,
                                                  TimePoint now);
// The enrolment of (user, device) that is not revoked, if any.
Expected<std::optional<Enrolment>> current_enrolment(store::Database& db, std::string_view user,
                                                     std::string_view device);

Expected<std::vector<User>> list_users(store::Database& db);
Expected<std::vector<Site>> list_sites(store::Database& db);
Expected<std::vector<Device>> list_devices(store::Database& db);  // without certificate_pem
Expected<std::vector<Project>> list_projects(store::Database& db);
// Newest first; only the user's when user is not empty.
Expected<std::vector<Enrolment>> list_enrolments(store::Database& db, std::string_view user);

// ---- Changes: enclave-sessiond only ------------------------------------------------------
class RegistryStore {
 public:
  static Expected<RegistryStore> open(const std::filesystem::path& path);

  store::Database& database() { return db_; }

  // Runs body in one IMMEDIATE transaction and bumps the version; commits only when body
  // succeeds (and rolls back otherwise). The writes below are meant to run inside it.
  Status transaction(const std::function<Status()>& body);

  // kAlreadyExists for a taken id.
  Status insert_user(const User& user);
  Status update_user(const User& user);  // name, roles, disabled
  // kAlreadyExists for a taken id or an IKE identity a live (not revoked) site has; kConflict
  // when a pool overlaps a live site's pool.
  Status insert_site(const Site& site);
  Status update_site(const Site& site);  // state, approval dates
  Status insert_device(const Device& device);
  // Revokes the device and its enrolments (deleting their prints); how many enrolments.
  Expected<int> revoke_device(std::string_view id, const std::string& reason, TimePoint now);
  Status insert_project(const Project& project, TimePoint now);
  Status set_member(std::string_view project, std::string_view user, bool member);
  Status grant(std::string_view project, std::string_view compartment);
  // The new enrolment's id.
  Expected<std::int64_t> insert_enrolment(const Enrolment& enrolment);
  Status update_enrolment(const Enrolment& enrolment);  // state, approver, times, print id
  Status insert_print(std::string_view print_id, std::int64_t enrolment, ByteSpan ciphertext,
                      TimePoint now);
  // Deletes the ciphertexts of the enrolment's live prints and marks them revoked; how many.
  Expected<int> revoke_prints(std::int64_t enrolment, TimePoint now);
  // Approved sites whose approval expired before `now` and was not noted yet; noting is
  // mark_lapse_noted (cleared by the next update_site).
  Expected<std::vector<Site>> unnoted_lapses(TimePoint now);
  Status mark_lapse_noted(std::string_view site);

 private:
  explicit RegistryStore(store::Database db) : db_(std::move(db)) {}
  store::Database db_;
};

}  // namespace enclave::sessionmgr::registry
