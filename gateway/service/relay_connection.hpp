// One analyst connection through the relay: the I/O driver around RelayMachine.
//
// Everything of one connection runs on its own strand: the staged set-up (preconnection PDU
// and ticket, X.224 on both legs, TLS on both legs, desktop pin), then four coroutines, a
// reader and a writer per side, and a supervisor for the idle, maximum-time and write-stall
// limits. Backpressure: a reader stops reading its side while the other side's unsent bytes
// are above the high-water mark, so a slow client cannot grow the gateway's memory; a peer
// that stops reading altogether is cut after write_stall.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <nlohmann/json.hpp>

namespace enclave::gateway {

struct GatewayContext;

class RelayConnection : public std::enable_shared_from_this<RelayConnection> {
 public:
  RelayConnection(GatewayContext& context, boost::asio::ip::tcp::socket client);
  ~RelayConnection();
  RelayConnection(const RelayConnection&) = delete;
  RelayConnection& operator=(const RelayConnection&) = delete;

  void start();
  // Ends the session at once (from any thread): the client gets a Disconnect Provider
  // Ultimatum, the desktop leg is closed, and the session is not resumable when `final`.
  void end(std::string reason, bool final);
  // Calls done(json) on the connection's strand with its live state (for gateway.session.list).
  void describe(std::function<void(nlohmann::json)> done);

 private:
  friend class RelayDriver;
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace enclave::gateway
