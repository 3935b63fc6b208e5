// The release store's front door: one-time download links over HTTPS (issue 6 "Release").
// enclave-exportd embeds this server and owns the links (DownloadAuthority); the server owns
// TLS, HTTP and the stream of bytes.
//
// One request per connection, each on its own strand:
//   TLS handshake (1.2 at least; the key through crypto::load_private_key), then the request
//   head within head_timeout of the accept (408 when it is late, 400/414/431/505 when it does
//   not parse), then `GET /download/<64 lowercase hex>` only (404 for another target, 405 for
//   another method). The token is claimed from the authority; a refusal answers 410 with the
//   same words whatever the reason (the authority audits which). A grant answers 200 and
//   streams the body in 64 KiB chunks, one write in flight at a time: the next chunk is read
//   from the grant only when the socket took the last one, so a slow client holds one chunk
//   of memory, never more. A chunk the client does not take within write_timeout ends the
//   download. Connection: close after every response.
//
// Tokens never reach a log line (token_log_name gives a short hash when one is needed).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/result.hpp"

namespace enclave::exitcontrol::download {

inline constexpr std::size_t kBodyChunkBytes = 64 * 1024;

struct DownloadGrant {
  std::string grant_id;    // the authority's name for this download (logs, finished())
  std::string file_name;   // offered to the client in Content-Disposition
  std::uint64_t size = 0;  // Content-Length: exactly this many bytes are sent
  // Fills the front of the buffer with the next plaintext bytes and returns how many (0 at
  // the end). Called from the connection's strand only, never concurrently for one grant,
  // with at most kBodyChunkBytes; and once more after `size` bytes, where anything but 0
  // (more bytes, or an error) leaves the download incomplete. It must own what it reads: the
  // grant may be destroyed after the authority.
  std::function<Expected<std::size_t>(std::span<std::uint8_t>)> read;
};

// With io run on several threads, these are called for different connections at the same
// time (and each grant's read on its own connection's strand).
class DownloadAuthority {
 public:
  virtual ~DownloadAuthority() = default;
  // token: the 64 lowercase hex digits of the path; source: the client's IP address.
  // A refused link is an error with code kNotFound (unknown), kTimeout (expired: Errc has no
  // kExpired) or kConflict (already used), or kPermission: each answers 410. Any other code is
  // the authority failing (a database down): 503, try later.
  virtual Expected<DownloadGrant> claim(const std::string& token, const std::string& source) = 0;
  // Exactly once per successful claim, also when the server stops mid-download: whether all
  // `size` bytes were sent and the grant's read ended cleanly, how many body bytes were sent,
  // and why it ended ("complete", "the client closed the connection", "write timeout: ...").
  virtual void finished(const std::string& grant_id, bool complete, std::uint64_t bytes,
                        const std::string& reason) = 0;
  // Every connection or request turned away before a claim, for the audit trail: above
  // max_connections, a failed or late TLS handshake, and the 400, 404, 405, 408, 414, 431 and
  // 505 answers. The reason never repeats the request's target (a mistyped link is still a
  // secret) and names the status ("HTTP 404: not a download link").
  virtual void rejected(const std::string& source, const std::string& reason) = 0;
};

struct DownloadServerOptions {
  std::string address = "127.0.0.1";  // an IP address to listen on
  std::uint16_t port = 8443;          // 0: any free port (port() says which)
  std::filesystem::path certificate;  // PEM: the server certificate, then any intermediates
  std::filesystem::path private_key;  // PEM, mode 0600 (crypto::load_private_key)
  // Ciphers for TLS 1.2 (TLS 1.3 uses OpenSSL's AEAD suites); forward secrecy and AEAD only.
  std::string tls12_ciphers = "ECDHE+AESGCM:ECDHE+CHACHA20";
  std::size_t max_connections = 64;  // beyond: closed at accept, before any TLS work
  std::chrono::milliseconds head_timeout{std::chrono::seconds(10)};  // accept to request head
  // For each chunk and response: a client slower than 64 KiB per write_timeout is cut off.
  std::chrono::milliseconds write_timeout{std::chrono::seconds(30)};
};

struct DownloadServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused = 0;  // at max_connections
  std::uint64_t tls_failures = 0;         // handshakes that failed or timed out
  std::uint64_t bad_requests = 0;         // answered 400, 404, 405, 408, 414, 431 or 505
  std::uint64_t refused = 0;              // links refused (410)
  std::uint64_t unavailable = 0;          // the authority failed (503)
  std::uint64_t served = 0;               // downloads sent whole
  std::uint64_t incomplete = 0;           // claimed but not sent whole
  std::uint64_t bytes = 0;                // body bytes sent
  std::uint64_t open_connections = 0;
};

class DownloadListener;  // download_server.cpp

class DownloadServer {
 public:
  // The authority must outlive the server (or its stop()). Connections run on io, which the
  // caller runs (on one thread or several).
  DownloadServer(boost::asio::io_context& io, DownloadServerOptions options,
                 DownloadAuthority& authority);
  ~DownloadServer();  // stop()
  DownloadServer(const DownloadServer&) = delete;
  DownloadServer& operator=(const DownloadServer&) = delete;

  // Loads certificate and key (errors name the file), binds and starts accepting.
  Status start();
  // Stops accepting and ends every connection. Downloads in progress are reported
  // finished(false, bytes, "the download server stopped") before it returns; after it
  // returns the authority is never called again. Not from inside an authority call.
  void stop();
  std::uint16_t port() const;  // the bound port (0 before start)
  DownloadServerStats stats() const;

 private:
  std::shared_ptr<DownloadListener> listener_;
};

}  // namespace enclave::exitcontrol::download
