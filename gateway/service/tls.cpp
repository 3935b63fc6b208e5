#include "gateway/service/tls.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "common/bytes.hpp"
#include "common/x509.hpp"

namespace enclave::gateway {
namespace ssl = boost::asio::ssl;
namespace {

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

void harden(SSL_CTX* ctx, const std::string& min_version) {
  SSL_CTX_set_min_proto_version(ctx, min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  // Idle sessions are the common case: give the read and write buffers back between records.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  // Under load, read every record the socket holds in one system call, not header and body
  // apart.
  SSL_CTX_set_read_ahead(ctx, 1);
}

}  // namespace

Expected<std::unique_ptr<ssl::context>> make_client_leg_context(
    const std::filesystem::path& certificate, const std::filesystem::path& private_key,
    const std::string& min_version, const std::string& tls12_ciphers) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* raw = ctx->native_handle();
  harden(raw, min_version);
  if (SSL_CTX_set_cipher_list(raw, tls12_ciphers.c_str()) != 1) {
    return fail(Errc::kInvalidArgument, "gateway.tls.tls12_ciphers: " + openssl_error());
  }
  if (SSL_CTX_use_certificate_chain_file(raw, certificate.c_str()) != 1) {
    return fail(Errc::kInvalidArgument,
                certificate.string() + ": cannot load the gateway certificate: " + openssl_error() +
                    " (enclave-gatewayd keygen makes one)");
  }
  if (SSL_CTX_use_PrivateKey_file(raw, private_key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(raw) != 1) {
    return fail(Errc::kInvalidArgument,
                private_key.string() + ": cannot load the gateway key: " + openssl_error());
  }
  return ctx;
}

Expected<std::unique_ptr<ssl::context>> make_login_context(const std::filesystem::path& certificate,
                                                           const std::filesystem::path& private_key,
                                                           const std::filesystem::path& device_ca,
                                                           const std::string& min_version,
                                                           const std::string& tls12_ciphers) {
  auto ctx = make_client_leg_context(certificate, private_key, min_version, tls12_ciphers);
  if (!ctx) return ctx;
  SSL_CTX* raw = (*ctx)->native_handle();
  if (SSL_CTX_load_verify_locations(raw, device_ca.c_str(), nullptr) != 1) {
    return fail(Errc::kInvalidArgument, device_ca.string() + ": cannot load the device CA: " +
                                            openssl_error() + " (enclavectl ca init makes it)");
  }
  // Devices are issued by the CA itself: no intermediates, and only client certificates.
  SSL_CTX_set_verify(raw, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_verify_depth(raw, 1);
  SSL_CTX_set_purpose(raw, X509_PURPOSE_SSL_CLIENT);
  // Session resumption would skip the certificate (and its revocation check) on reconnect.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(raw, 0);
  return ctx;
}

HostLegContexts::HostLegContexts(std::string min_version) : min_version_(std::move(min_version)) {}

Expected<ssl::context*> HostLegContexts::context_for(const HostTrust& trust) {
  std::lock_guard lock(mu_);
  if (trust.ca_file.empty()) {
    if (trust.pin_sha256.empty()) {
      return fail(Errc::kInvalidArgument, "desktop has neither a pin nor a CA file");
    }
    if (!pinned_) {
      pinned_ = std::make_unique<ssl::context>(ssl::context::tls_client);
      harden(pinned_->native_handle(), min_version_);
      // The chain is not what we trust here: the pin is, checked after the handshake.
      SSL_CTX_set_verify(pinned_->native_handle(), SSL_VERIFY_NONE, nullptr);
    }
    return pinned_.get();
  }
  auto& ctx = by_ca_[trust.ca_file];
  if (!ctx) {
    auto made = std::make_unique<ssl::context>(ssl::context::tls_client);
    harden(made->native_handle(), min_version_);
    if (SSL_CTX_load_verify_locations(made->native_handle(), trust.ca_file.c_str(), nullptr) != 1) {
      by_ca_.erase(trust.ca_file);
      return fail(Errc::kInvalidArgument,
                  trust.ca_file.string() + ": cannot load the desktop CA: " + openssl_error());
    }
    SSL_CTX_set_verify(made->native_handle(), SSL_VERIFY_PEER, nullptr);
    ctx = std::move(made);
  }
  return ctx.get();
}

Status prepare_host_leg(SSL* ssl, const HostTrust& trust) {
  if (!trust.server_name.empty()) {
    SSL_set_tlsext_host_name(ssl, trust.server_name.c_str());
    if (!trust.ca_file.empty() && SSL_set1_host(ssl, trust.server_name.c_str()) != 1) {
      return fail(Errc::kInternal, "cannot set the expected desktop host name");
    }
  } else if (!trust.ca_file.empty()) {
    return fail(Errc::kInvalidArgument, "a desktop trusted by CA needs a server_name");
  }
  return {};
}

Status check_host_leg(SSL* ssl, const HostTrust& trust) {
  if (trust.pin_sha256.empty()) return {};
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return fail(Errc::kPermission, "desktop presented no certificate");
  const std::string seen = x509::spki_sha256_hex(cert);
  if (!constant_time_equal(as_bytes(seen), as_bytes(trust.pin_sha256))) {
    return fail(Errc::kPermission,
                "desktop certificate does not match its pin (SPKI sha256 " + seen + ")");
  }
  return {};
}

}  // namespace enclave::gateway
