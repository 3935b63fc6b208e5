// enclave-sessiond: serves the session manager's methods (methods.hpp) on its Unix socket.
//
// Who may call what is decided from the peer's kernel credentials (SO_PEERCRED), never from
// anything the client says:
//   ticket.issue, session.list, session.end,       the daemon's own uid, root, or a user named
//   the registry's changes and lists               in [sessiond] operators
//   ticket.redeem, session.connected/disconnected, the daemon's own uid, root, or a user named
//   registry.pools, registry.enrolment.record      in [sessiond] gateways
//   session.identify                               the daemon's own uid, root, or a user named
//                                                  in [sessiond] exporters (enclave-exportd)
// Anyone else is refused at connect time.
//
// Requests run on a small thread pool (a desktop starting does not hold up a redemption).
// Timers: every second the session timers (ticket expiry, grace, maximum time, ticket cleanup)
// and the registry's lapsed approvals;
// every health_check_s the desktop health checks. Events go to enclave-auditd through an
// audit::Appender; while it is unhealthy no ticket is issued or redeemed (fail closed).
// SIGTERM/SIGINT: stop serving, end every open session (telling the gateway), stop the local
// desktops, flush the audit queue.
#pragma once

#include <memory>

#include "common/result.hpp"
#include "sessionmgr/core/policy.hpp"

namespace enclave::sessionmgr {

class Daemon {
 public:
  static Expected<std::unique_ptr<Daemon>> open(SessionPolicy policy);
  ~Daemon();

  Status run();  // until stop() or a signal
  void stop();   // from any thread

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::sessionmgr
