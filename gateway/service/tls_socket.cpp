#include "gateway/service/tls_socket.hpp"

#include <cerrno>

#include <openssl/err.h>
#include <boost/asio/error.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace enclave::gateway {

namespace asio = boost::asio;
using boost::system::error_code;

TlsSocket::TlsSocket(asio::ip::tcp::socket socket) : socket_(std::move(socket)) {}

TlsSocket::~TlsSocket() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

Status TlsSocket::start_tls(SSL_CTX* context) {
  error_code ec;
  socket_.non_blocking(true, ec);
  if (ec) return fail(Errc::kIo, "non-blocking socket: " + ec.message());
  ssl_ = SSL_new(context);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, socket_.native_handle()) != 1) {
    return fail(Errc::kInternal, "cannot create a TLS session");
  }
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                         SSL_MODE_RELEASE_BUFFERS);
  return {};
}

error_code TlsSocket::error_of_call(int result) {
  const int e = SSL_get_error(ssl_, result);
  switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return asio::error::would_block;
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;
    case SSL_ERROR_SYSCALL: {
      unsigned long queued = ERR_get_error();
      ERR_clear_error();
      if (queued != 0) return error_code(static_cast<int>(queued), asio::error::get_ssl_category());
      if (errno != 0) return error_code(errno, asio::error::get_system_category());
      return asio::ssl::error::stream_truncated;  // EOF without close_notify
    }
    default: {
      unsigned long queued = ERR_get_error();
      ERR_clear_error();
      return error_code(static_cast<int>(queued != 0 ? queued : 1),
                        asio::error::get_ssl_category());
    }
  }
}

asio::awaitable<error_code> TlsSocket::wait_for(int ssl_error) {
  error_code ec;
  co_await socket_.async_wait(ssl_error == SSL_ERROR_WANT_WRITE ? asio::ip::tcp::socket::wait_write
                                                                : asio::ip::tcp::socket::wait_read,
                              asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

asio::awaitable<error_code> TlsSocket::handshake(bool as_server) {
  for (;;) {
    ERR_clear_error();
    errno = 0;
    const int r = as_server ? SSL_accept(ssl_) : SSL_connect(ssl_);
    if (r == 1) {
      ERR_clear_error();  // read_now and write_now rely on an empty queue
      co_return error_code();
    }
    const int e = SSL_get_error(ssl_, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) co_return error_of_call(r);
    if (error_code ec = co_await wait_for(e)) co_return ec;
  }
}

asio::awaitable<error_code> TlsSocket::wait_readable() {
  if (SSL_has_pending(ssl_) == 1 && !want_write_in_read_) co_return error_code();
  co_return co_await wait_for(want_write_in_read_ ? SSL_ERROR_WANT_WRITE : SSL_ERROR_WANT_READ);
}

std::size_t TlsSocket::read_now(std::span<std::uint8_t> buffer, error_code& ec) {
  errno = 0;
  std::size_t n = 0;
  const int r = SSL_read_ex(ssl_, buffer.data(), buffer.size(), &n);
  if (r == 1) {
    want_write_in_read_ = false;
    ec.clear();
    return n;
  }
  want_write_in_read_ = SSL_get_error(ssl_, r) == SSL_ERROR_WANT_WRITE;
  ec = error_of_call(r);
  return 0;
}

std::size_t TlsSocket::write_now(ByteSpan bytes, error_code& ec) {
  std::size_t done = 0;
  ec.clear();
  while (done < bytes.size()) {
    errno = 0;
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, bytes.data() + done, bytes.size() - done, &n);
    if (r == 1) {
      done += n;
      continue;
    }
    write_wants_ = SSL_get_error(ssl_, r);
    ec = error_of_call(r);
    break;
  }
  return done;
}

asio::awaitable<error_code> TlsSocket::write_all(ByteSpan bytes) {
  for (;;) {
    error_code ec;
    bytes = bytes.subspan(write_now(bytes, ec));
    if (ec != asio::error::would_block) co_return ec;
    if ((ec = co_await wait_for(write_wants_))) co_return ec;
  }
}

void TlsSocket::send_close_notify() {
  if (ssl_ == nullptr || !socket_.is_open()) return;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // non-blocking socket: sent if it fits, else dropped
  ERR_clear_error();
}

void TlsSocket::close() {
  error_code ec;
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

}  // namespace enclave::gateway
