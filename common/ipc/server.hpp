// A Unix-socket server for the framed protocol (frame.hpp), on Boost.Asio.
//
// Each connection has its own strand. The peer's credentials come from SO_PEERCRED when it
// connects (the kernel's word, not the client's) and are checked by the authorize callback
// before any request is read; a refused peer gets one error response and is disconnected.
// Requests are handed to the Handler with a Responder that may be called later from any
// thread (exactly once); responses are written in the order they complete. Backpressure: a
// connection with max_pending requests unanswered stops being read until responses drain,
// so one fast client cannot grow the server's memory. A connection that sends a malformed
// frame gets an error response and is closed; others are unaffected.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/ipc/frame.hpp"
#include "common/result.hpp"

namespace enclave::ipc {

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user;     // from the uid (getpwuid_r), or "uid:N"
  std::string command;  // /proc/PID/comm at connect time (informational: the peer sets it)
};

// Called exactly once per request, from any thread.
using Responder = std::function<void(Response)>;

class Handler {
 public:
  virtual ~Handler() = default;
  virtual void handle(const PeerCredentials& peer, Request request, Responder respond) = 0;
  // A refused connection or a protocol violation, for the service to audit.
  virtual void on_refused(const PeerCredentials& peer, const std::string& reason) {
    (void)peer;
    (void)reason;
  }
};

struct ServerOptions {
  std::filesystem::path socket_path;
  unsigned socket_mode = 0660;  // the socket file's permission bits
  // Decides from the kernel-provided credentials whether a peer may talk at all.
  std::function<bool(const PeerCredentials&)> authorize;  // empty: same uid as the server only
  std::size_t max_pending_per_connection = 256;
  std::size_t max_connections = 256;
  std::chrono::milliseconds idle_timeout{std::chrono::minutes(10)};  // no request, no pending
};

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;
  std::uint64_t requests = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t open_connections = 0;
};

class Server {
 public:
  // The handler must outlive the server.
  Server(boost::asio::io_context& io, ServerOptions options, Handler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the socket (replacing a stale socket file, refusing a path that is not a socket)
  // and starts accepting.
  Status start();
  // Stops accepting and closes every connection; pending responders become no-ops.
  void stop();
  ServerStats stats() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace enclave::ipc
