// How a service (sessiond, gatewayd, later the export service) writes to the audit log:
// events go to enclave-auditd's socket as "audit.append" requests, pipelined from a
// background thread so that a relay or a ticket check never waits on a disk.
//
// Fail closed: append() refuses (returns false) when the queue is full, and healthy() turns
// false when auditd cannot be reached, so the caller refuses new sessions rather than run
// unaudited. append_sync() is for the few actions that must not happen unless recorded
// (an operator issuing a ticket, ending a session).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace enclave::ipc {
struct PeerCredentials;
}

namespace enclave::audit {

// The event a service records when its socket refuses a connection (`type`: "sessiond.refused"
// and the like): the peer as the kernel names it (user, uid, pid, command) and the reason.
nlohmann::json refused_connection_event(const std::string& type, const ipc::PeerCredentials& peer,
                                        const std::string& reason);

struct AppenderStats {
  std::uint64_t queued = 0;        // waiting to be sent or acknowledged
  std::uint64_t acknowledged = 0;  // appended by auditd
  std::uint64_t rejected = 0;      // refused by auditd (a malformed event: a bug, logged)
  std::uint64_t refused_full = 0;  // append() calls refused because the queue was full
  std::uint64_t reconnects = 0;
};

class Appender {
 public:
  // socket: enclave-auditd's socket. Connects in the background and reconnects with back-off.
  explicit Appender(std::filesystem::path socket, std::size_t max_queue = 65536);
  ~Appender();  // waits up to 2 s for queued events, then gives up (counted as lost in the log)
  Appender(const Appender&) = delete;
  Appender& operator=(const Appender&) = delete;

  // event: the params of audit.append ({"type", "outcome", "actor", ...}). Never blocks.
  // False when the queue is full: the caller must treat the action as unaudited.
  bool append(nlohmann::json event);
  // Sends one event and waits for auditd's acknowledgement (events queued earlier go first).
  Status append_sync(nlohmann::json event,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Waits until every event queued so far is acknowledged.
  Status flush(std::chrono::milliseconds timeout);
  // Connected (or never yet needed to be) and the queue below three quarters full.
  bool healthy() const;
  AppenderStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::audit
