// TLS on a relay leg with OpenSSL reading and writing the TCP socket itself, and Boost.Asio
// only telling when the socket is ready. Asio's ssl::stream runs OpenSSL through a memory BIO
// pair: every record is copied once more, and each stream keeps four record-sized buffers for
// the life of the connection (about 136 KiB a session). Here an idle leg holds no record
// buffers (SSL_MODE_RELEASE_BUFFERS) and bytes go from the kernel to OpenSSL to the caller.
//
// The I/O calls do not clear the thread's OpenSSL error queue first (it costs a thread-local
// lookup per record): every path that can leave an error there empties it.
//
// Not thread-safe: every call on one strand. A reader may wait while a write is pending (and
// the other way round); OpenSSL allows that for application data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <openssl/ssl.h>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::gateway {

class TlsSocket {
 public:
  explicit TlsSocket(boost::asio::ip::tcp::socket socket);
  ~TlsSocket();
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  // The TCP socket, for the plaintext part of the connection (before start_tls).
  boost::asio::ip::tcp::socket& tcp() { return socket_; }
  // Creates the SSL object on the socket; nullptr until then.
  Status start_tls(SSL_CTX* context);
  SSL* ssl() { return ssl_; }

  // Errors: boost::asio::error::eof for a clean close_notify, ssl stream_truncated for a
  // peer that vanished without one, operation_aborted after close(), else the TLS or socket
  // error.
  boost::asio::awaitable<boost::system::error_code> handshake(bool as_server);
  // Waits until read_now() can return bytes or an error (at once when OpenSSL holds data).
  boost::asio::awaitable<boost::system::error_code> wait_readable();
  // Non-blocking read into buffer: bytes read, or 0 with ec set (would_block: wait again).
  std::size_t read_now(std::span<std::uint8_t> buffer, boost::system::error_code& ec);
  // Non-blocking write: bytes the socket took (whole records), with ec would_block when it
  // took less than all. The unsent rest must be offered again, first, by the next write.
  std::size_t write_now(ByteSpan bytes, boost::system::error_code& ec);
  boost::asio::awaitable<boost::system::error_code> write_all(ByteSpan bytes);
  // Sends close_notify if the socket takes it at once; never waits for the peer's.
  void send_close_notify();
  // Closes the socket: pending waits end with operation_aborted.
  void close();

 private:
  boost::asio::awaitable<boost::system::error_code> wait_for(int ssl_error);
  boost::system::error_code error_of_call(int result);
  // SSL_ERROR_WANT_READ or _WANT_WRITE after write_now stopped early.
  int write_wants_ = SSL_ERROR_WANT_WRITE;

  boost::asio::ip::tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool want_write_in_read_ = false;  // a read needs the socket writable first (TLS 1.3 key update)
};

}  // namespace enclave::gateway
