// enclave-exportd: serves the export workflow (export_service.hpp) on its Unix socket.
//
// Who the caller is comes from the kernel (SO_PEERCRED), never from what the client says:
//   export.submit | status | choose   anyone who can reach the socket (the desktops' tools);
//                                     the session's export token proves the session, and
//                                     enclave-sessiond says whose it is (session.identify)
//   export.queue | show | decide      the peer's user name is the steward; the daemon's own
//                                     uid, root and [exportd] consoles may act for a named user
//                                     ("as"), as enclavectl --as and a web console do
// Requests run on a small pool; the engine's checks and the releases on the service's workers.
// Events go to enclave-auditd; no action is taken that it did not record.
#pragma once

#include <memory>

#include "common/result.hpp"
#include "exitcontrol/service/export_policy.hpp"
#include "exitcontrol/service/export_service.hpp"

namespace enclave::exitcontrol {

class ExportDaemon {
 public:
  // engine: the check and release steps (the rest of ExportServiceDeps is the daemon's).
  static Expected<std::unique_ptr<ExportDaemon>> open(ExportPolicy policy,
                                                      ExportServiceDeps engine);
  ~ExportDaemon();

  Status run();  // until stop() or SIGTERM/SIGINT
  void stop();   // from any thread

 private:
  struct Impl;
  explicit ExportDaemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::exitcontrol
