// enclave-gatewayd's service: the RDP listener, the registry of live relays, and the control
// socket the session manager and operators use (methods in sessionmgr/service/methods.hpp).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include "audit/client/appender.hpp"
#include "common/result.hpp"
#include "gateway/service/blocking_calls.hpp"
#include "gateway/service/config.hpp"
#include "gateway/service/site_pools.hpp"
#include "gateway/service/tls.hpp"

namespace enclave::gateway {

class RelayConnection;

struct GatewayCounters {
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};  // before a relay was established
  std::atomic<std::uint64_t> relayed{0};  // sessions that reached the desktop
  std::atomic<std::uint64_t> open{0};     // connections currently open
};

// What every connection shares. Read-only after start-up except the registry and counters.
struct GatewayContext {
  GatewayConfig config;
  boost::asio::io_context& io;
  std::unique_ptr<boost::asio::ssl::context> client_tls;
  HostLegContexts host_tls;
  ServiceCaller sessiond;
  audit::Appender& audit;
  GatewayCounters counters;
  // The login API (when [gateway.login] is configured): mutual TLS, and the registry's
  // approved pools and revoked devices.
  std::unique_ptr<boost::asio::ssl::context> login_tls;
  SitePools pools;

  // Live relays by session id (a session has at most one connection: a newer one replaces it).
  std::mutex registry_mu;
  std::map<std::string, std::weak_ptr<RelayConnection>> registry;
};

class Gateway {
 public:
  static Expected<std::unique_ptr<Gateway>> create(GatewayConfig config, audit::Appender& audit);
  ~Gateway();

  // Binds the listener and the control socket and runs the I/O threads; returns at once.
  Status start();
  // Blocks until SIGINT or SIGTERM, then stops.
  void wait_for_signal();
  void stop();
  std::uint16_t port() const;
  std::uint16_t login_port() const;  // 0 when the login API is off

 private:
  struct Impl;
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::gateway
