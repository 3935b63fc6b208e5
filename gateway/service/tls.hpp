// TLS for both legs of the relay. The client leg is terminated with the gateway's certificate
// (the one kiosks pin); each desktop leg is the gateway's own TLS client, which trusts the
// host by its SubjectPublicKeyInfo pin or by a CA file with a host name check. TLS 1.2 is the
// floor on both legs; renegotiation and compression are off.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include <openssl/ssl.h>
#include <boost/asio/ssl/context.hpp>

#include "common/result.hpp"

namespace enclave::gateway {

struct HostTrust {
  std::string pin_sha256;         // hex SHA-256 of the SPKI (DER); checked when not empty
  std::filesystem::path ca_file;  // chain and host name checked when not empty
  std::string server_name;        // SNI and the name the CA-issued certificate must carry
};

// The client leg: the gateway certificate and key, TLS min_version ("1.2" or "1.3").
Expected<std::unique_ptr<boost::asio::ssl::context>> make_client_leg_context(
    const std::filesystem::path& certificate, const std::filesystem::path& private_key,
    const std::string& min_version, const std::string& tls12_ciphers);

// The login API: the same server settings with the gateway's login certificate, and every
// client must present a device certificate issued by the local CA (device_ca, PEM). What the
// chain cannot say (a revoked device, a device of another site) is checked after the
// handshake against the registry.
Expected<std::unique_ptr<boost::asio::ssl::context>> make_login_context(
    const std::filesystem::path& certificate, const std::filesystem::path& private_key,
    const std::filesystem::path& device_ca, const std::string& min_version,
    const std::string& tls12_ciphers);

// Contexts for desktop legs: one for pinned hosts, one per CA file (loaded once).
class HostLegContexts {
 public:
  explicit HostLegContexts(std::string min_version);
  Expected<boost::asio::ssl::context*> context_for(const HostTrust& trust);

 private:
  std::string min_version_;
  std::mutex mu_;
  std::unique_ptr<boost::asio::ssl::context> pinned_;
  std::map<std::filesystem::path, std::unique_ptr<boost::asio::ssl::context>> by_ca_;
};

// Prepares one host-leg SSL object before the handshake (SNI, host name check).
Status prepare_host_leg(SSL* ssl, const HostTrust& trust);
// After the handshake: the pin, when one is set, must match (constant-time); with a CA file
// OpenSSL has already verified chain and name during the handshake.
Status check_host_leg(SSL* ssl, const HostTrust& trust);

}  // namespace enclave::gateway
