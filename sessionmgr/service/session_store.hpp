// sessions.db: the session manager's state (common/store.hpp: WAL, foreign keys, migrations).
//
//   sessions  one row per session: who, from where, which compartment/tier/desktop, its state
//             and times (milliseconds since the epoch), why it ended, bytes the gateway counted,
//             the SHA-256 of its export token (never the token; NULL for rows from before
//             schema 2)
//   tickets   SHA-256 of each ticket (never the ticket), its session, source address, expiry
//             and whether it was used; single use is one UPDATE ... WHERE used = 0
//   desktops  every desktop the pools know: static hosts with their health, local desktops
//             while they run
//
// Not thread-safe: the service serialises access with its own mutex.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "common/store.hpp"
#include "sessionmgr/core/lifecycle.hpp"

namespace enclave::sessionmgr {

struct StoredTicket {
  std::string hash;
  std::string session_id;
  std::string source;
  TimePoint issued_at{}, expires_at{};
  bool used = false;
};

struct DesktopRow {
  std::string id;
  std::string compartment;
  std::string kind;  // "static" or "local"
  std::string host;
  int port = 0;
  int capacity = 1;
  bool healthy = false;
  std::optional<TimePoint> checked_at;
  std::string last_error;
};

class SessionStore {
 public:
  static Expected<SessionStore> open(const std::filesystem::path& path);

  store::Database& database() { return db_; }

  Status insert_session(const Session& session);
  // Everything but the id and who/where it was created for... except source and device, which
  // a resumed session takes from its newest ticket.
  Status update_session(const Session& session);
  Expected<std::optional<Session>> session(const std::string& id);
  // The session whose export token has this hex SHA-256.
  Expected<std::optional<Session>> session_by_export_token(const std::string& sha256);
  Expected<std::vector<Session>> open_sessions();
  // Newest first; ended sessions too when include_ended.
  Expected<std::vector<Session>> sessions(bool include_ended, int limit = 1000);
  // Adds the gateway's byte counters ({"name": number, ...}) to the session's totals.
  Status add_bytes(const std::string& session_id, const nlohmann::json& bytes);
  Expected<nlohmann::json> bytes(const std::string& session_id);

  Status insert_ticket(const StoredTicket& ticket);
  Expected<std::optional<StoredTicket>> ticket(const std::string& hash);
  // The single-use guarantee: true when this call turned the ticket from unused to used.
  Expected<bool> mark_used(const std::string& hash, TimePoint now);
  // Ends the validity of a session's unused tickets (a newer one replaces them).
  Status expire_tickets(const std::string& session_id, TimePoint now);
  // The latest expiry among the session's unused tickets.
  Expected<std::optional<TimePoint>> unused_ticket_expiry(const std::string& session_id);
  // Forgets tickets that expired before `before` (their hashes serve no purpose after that).
  Expected<int> delete_tickets_expired_before(TimePoint before);

  Status upsert_desktop(const DesktopRow& row);
  Status delete_desktop(const std::string& id);
  Status delete_desktops_not_in(const std::string& kind, const std::vector<std::string>& keep);
  Expected<std::vector<DesktopRow>> desktops();

 private:
  explicit SessionStore(store::Database db) : db_(std::move(db)) {}
  store::Database db_;
};

}  // namespace enclave::sessionmgr
