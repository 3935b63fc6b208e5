// The session manager's behaviour behind its socket: tickets, the session lifecycle, desktop
// pools and their health, audit events. Synchronous and thread-safe (one mutex around the
// database and the in-memory state; slow work such as starting a desktop, probing a host,
// running a provisioning command or telling the gateway happens outside it). The daemon calls
// it from a thread pool; tests call it directly with fakes for the clock, the randomness, the
// audit log, the desktops and the gateway.
//
// Fail closed: no ticket is issued (or redeemed) while the audit log is unreachable, and a
// ticket exists only once auditd acknowledged its ticket.issued event.
//
// Audit events (type, outcome; actor is the analyst, details.by the calling peer):
//   ticket.issued success | ticket.denied refused {reason} | ticket.redeemed success |
//   ticket.refused refused {reason} | session.started, session.resumed success |
//   session.disconnected info | session.ended info {reason, bytes} | desktop.started,
//   desktop.stopped info | desktop.failed error | desktop.unhealthy error | desktop.healthy info |
//   session.identify refused {reason} (actor: the calling peer)
//
// Every new session gets its outbox (outbox.hpp) before its row is written; when the outbox
// cannot be made, the issue is denied and no session is recorded.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "sessionmgr/core/lifecycle.hpp"
#include "sessionmgr/core/policy.hpp"
#include "sessionmgr/service/credentials.hpp"
#include "sessionmgr/service/local_desktop.hpp"
#include "sessionmgr/service/session_store.hpp"

namespace enclave::sessionmgr {

// Where events go: audit::Appender in the daemon (see AppenderSink), a list in tests.
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  virtual bool healthy() const = 0;
  virtual bool append(nlohmann::json event) = 0;
  virtual Status append_sync(nlohmann::json event) = 0;
};

// A desktop started for one session (LocalDesktop in the daemon).
class DesktopHandle {
 public:
  virtual ~DesktopHandle() = default;  // stops it
  virtual const LocalDesktopInfo& info() const = 0;
  virtual bool alive() const = 0;
};

struct ServiceDeps {
  AuditSink* audit = nullptr;
  RandomSource random;               // default: OpenSSL RAND_bytes
  std::function<TimePoint()> clock;  // default: system_clock::now
  std::function<Expected<std::unique_ptr<DesktopHandle>>(const LocalDesktopOptions&)>
      start_local;  // default: LocalDesktop::start
  std::function<Status(const std::string& host, std::uint16_t port)> probe;  // default: probe_rdp
  // Tells the gateway to cut a session: true when it had one. kUnavailable when not running.
  std::function<Expected<bool>(const std::string& session_id, const std::string& reason)>
      end_on_gateway;  // default: none (reported "not told")
  // Runs a static host's provision_command (credentials.hpp); default run_with_input.
  std::function<Status(const StaticHost& host, const std::string& user,
                       const std::string& password)>
      provision;
};

class SessionService {
 public:
  // Opens the database, ends every session an earlier run left open (its desktop credentials
  // died with that run), records the static hosts (unhealthy until their first check), and
  // reads fixed credential files. Call check_health() before serving.
  static Expected<std::unique_ptr<SessionService>> open(SessionPolicy policy, ServiceDeps deps);
  ~SessionService();  // stops every local desktop still running (see shutdown)

  // methods.hpp: ticket.issue. `by` is the calling peer's user name (for the audit trail).
  Expected<nlohmann::json> issue(const IssueRequest& request, const std::string& by);
  // ticket.redeem. kPermission "ticket refused: <reason>".
  Expected<nlohmann::json> redeem(const std::string& ticket, const std::string& source,
                                  const std::string& by);
  // session.identify: who holds this export token (the session's, from its outbox). Errors:
  // kInvalidArgument for a token that is not 64 hex digits, kPermission "unknown export
  // token"; both audited (session.identify refused, never the token). `by`: the calling peer.
  Expected<nlohmann::json> identify(const std::string& token, const std::string& by);
  Status connected(const std::string& session_id);
  Status disconnected(const std::string& session_id, const std::string& reason, bool ended,
                      const nlohmann::json& bytes);
  Expected<nlohmann::json> list(bool include_ended);
  // Ends the session, tells the gateway, releases the desktop. Result: {"ended", "gateway"}.
  Expected<nlohmann::json> end(const std::string& session_id, const std::string& reason,
                               const std::string& by);

  // The timers: ends sessions whose ticket expired unredeemed, whose grace period passed or
  // whose maximum time is up; forgets tickets expired for an hour.
  void tick();
  // Probes every static host (a failing host leaves the pool until it answers again) and checks
  // that every local desktop still runs (a dead one ends its session).
  void check_health();
  // Ends every open session ("session manager stopped") and stops local desktops.
  void shutdown();

  const SessionPolicy& policy() const { return policy_; }

 private:
  struct Release;
  SessionService(SessionPolicy policy, ServiceDeps deps, SessionStore store);

  // With mu_ held: ends a session in the database and takes its desktop out of the pools.
  Expected<Release> end_locked(Session& session, const std::string& reason, bool tell_gateway);
  // Without mu_: tells the gateway, stops the desktop, revokes per-session credentials, audits.
  std::string finish(Release release);

  bool desktop_healthy_locked(const Session& session) const;
  Expected<std::string> pick_static_locked(const Compartment& compartment,
                                           const std::vector<Session>& open) const;
  const StaticHost* static_host(const std::string& desktop_id) const;
  nlohmann::json desktop_json_locked(const Session& session) const;
  void audit(nlohmann::json event);
  nlohmann::json event(const std::string& type, const std::string& outcome, const Session* s,
                       nlohmann::json details) const;

  SessionPolicy policy_;
  ServiceDeps deps_;
  std::mutex mu_;
  SessionStore store_;  // guarded by mu_
  struct HostState {
    bool healthy = false;
    bool checked = false;
    std::string error;
  };
  std::map<std::string, HostState> hosts_;                       // guarded by mu_
  std::map<std::string, std::unique_ptr<DesktopHandle>> local_;  // by session id; mu_
  std::map<std::string, DesktopCredentials> credentials_;        // per-session; mu_
  std::map<std::string, DesktopCredentials> fixed_;              // by host id; read-only
};

}  // namespace enclave::sessionmgr
