// enclave-gatewayd's settings, from policies/gateway.toml (validated once at start-up).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "common/policy.hpp"
#include "common/result.hpp"

namespace enclave::gateway {

struct GatewayConfig {
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 3390;
  std::filesystem::path certificate;  // PEM, the certificate kiosks pin
  std::filesystem::path private_key;  // PEM, mode 0600
  std::filesystem::path control_socket;
  std::filesystem::path sessiond_socket;
  std::filesystem::path auditd_socket;
  std::size_t max_sessions = 10000;
  unsigned threads = 2;
  std::string tls_min_version = "1.2";  // "1.2" or "1.3"
  std::string tls12_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
  std::size_t high_water_bytes = 256 * 1024;  // per direction, then reading pauses

  // The kiosks' login API (mutual TLS, the same certificate as the relay). Off when
  // listen_port is 0 ([gateway.login] absent).
  struct Login {
    std::string listen_address;
    std::uint16_t listen_port = 0;
    std::filesystem::path device_ca;    // PEM: the local CA that issues device certificates
    std::filesystem::path vici_socket;  // strongSwan's VICI socket; empty: pools only
    std::chrono::milliseconds pools_refresh{std::chrono::seconds(5)};
    std::chrono::milliseconds handshake{std::chrono::seconds(10)};
    std::chrono::milliseconds message{std::chrono::minutes(2)};  // between kiosk messages
    std::size_t max_connections = 1000;
  } login;

  struct Timeouts {
    std::chrono::milliseconds preconnection{std::chrono::seconds(10)};  // accept to ticket
    std::chrono::milliseconds handshake{std::chrono::seconds(15)};      // X.224 and TLS, both legs
    std::chrono::milliseconds connect{std::chrono::seconds(5)};         // TCP to the desktop
    std::chrono::milliseconds login{std::chrono::seconds(60)};  // until credentials reach the host
    std::chrono::milliseconds write_stall{std::chrono::seconds(30)};  // a peer not reading
  } timeouts;
};

// Relative paths are under state_dir. Errors name the file, line and key.
Expected<GatewayConfig> load_gateway_config(const policy::Document& policy,
                                            const std::filesystem::path& state_dir);

}  // namespace enclave::gateway
