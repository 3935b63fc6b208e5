#include "exitcontrol/download/download_server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

#include "common/bytes.hpp"
#include "common/ed25519.hpp"
#include "exitcontrol/download/download_protocol.hpp"
#include "exitcontrol/download/http_request.hpp"

namespace enclave::exitcontrol::download {
namespace {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown OpenSSL error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The codes DownloadAuthority::claim uses for a link it refuses (answered 410).
bool is_refusal(Errc code) {
  return code == Errc::kNotFound || code == Errc::kTimeout || code == Errc::kConflict ||
         code == Errc::kPermission;
}

bool is_peer_gone(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

Expected<std::unique_ptr<ssl::context>> make_tls_context(const DownloadServerOptions& options) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* raw = ctx->native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
  // A link is used once: nothing to resume.
  SSL_CTX_set_session_cache_mode(raw, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(raw, 0);
  if (SSL_CTX_set_cipher_list(raw, options.tls12_ciphers.c_str()) != 1) {
    return fail(Errc::kInvalidArgument, "download tls12_ciphers: " + openssl_error());
  }
  if (SSL_CTX_use_certificate_chain_file(raw, options.certificate.c_str()) != 1) {
    return fail(Errc::kInvalidArgument,
                options.certificate.string() +
                    ": cannot load the download certificate: " + openssl_error());
  }
  auto key = crypto::load_private_key(options.private_key);
  if (!key) return error_of(key);
  if (SSL_CTX_use_PrivateKey(raw, key->get()) != 1 || SSL_CTX_check_private_key(raw) != 1) {
    return fail(Errc::kInvalidArgument, options.private_key.string() + ": not the key of " +
                                            options.certificate.string() + ": " + openssl_error());
  }
  return ctx;
}

}  // namespace

class DownloadConnection;

// What every connection shares: options, TLS context, counters, the registry that stop()
// closes, and the gate through which every call into the authority's code passes.
class DownloadListener : public std::enable_shared_from_this<DownloadListener> {
 public:
  DownloadListener(asio::io_context& io, DownloadServerOptions options,
                   DownloadAuthority& authority)
      : io_(io),
        options_(std::move(options)),
        authority_(authority),
        strand_(asio::make_strand(io)),
        acceptor_(strand_),
        retry_timer_(strand_) {}

  Status start();
  void stop();
  std::uint16_t port() const { return port_.load(); }
  DownloadServerStats stats() const;

  // Runs f, a call into the authority's code, unless the server has stopped; returns whether
  // it ran. stop() waits for calls in progress.
  template <class F>
  bool call_authority(F&& f);
  DownloadAuthority& authority() { return authority_; }

  // Inside call_authority, right after a successful claim.
  void begin_transfer(const DownloadConnection* connection, std::string grant_id);
  void add_bytes(const DownloadConnection* connection, std::uint64_t n);
  // Reports the transfer finished to the authority, unless stop() already did.
  void end_transfer(const DownloadConnection* connection, bool complete, const std::string& reason);

  // False once stopped: the caller closes the connection instead.
  bool enroll(const std::shared_ptr<DownloadConnection>& connection);
  void withdraw(const DownloadConnection* connection);
  void release_slot() { open_.fetch_sub(1); }

  asio::io_context& io() { return io_; }
  const DownloadServerOptions& options() const { return options_; }
  ssl::context& tls() { return *tls_; }

  std::atomic<std::uint64_t> accepted_{0}, refused_connections_{0}, tls_failures_{0},
      bad_requests_{0}, refused_links_{0}, unavailable_{0}, served_{0}, incomplete_{0}, bytes_{0};

 private:
  // A claimed download that has not been reported finished yet.
  struct ActiveTransfer {
    std::string grant_id;
    std::uint64_t bytes = 0;
  };

  void accept_next();
  void on_accept(const std::shared_ptr<DownloadConnection>& connection, const error_code& ec);
  bool take_slot() {
    if (open_.fetch_add(1) < options_.max_connections) return true;
    open_.fetch_sub(1);
    return false;
  }

  asio::io_context& io_;
  const DownloadServerOptions options_;
  DownloadAuthority& authority_;
  Strand strand_;  // the acceptor's
  tcp::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  std::unique_ptr<ssl::context> tls_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<std::uint64_t> open_{0};

  std::mutex mutex_;
  std::condition_variable calls_done_;
  bool stopped_ = false;
  std::size_t calls_in_progress_ = 0;
  std::unordered_map<const DownloadConnection*, std::weak_ptr<DownloadConnection>> connections_;
  std::unordered_map<const DownloadConnection*, ActiveTransfer> transfers_;
};

// One client: TLS, one request, one response.
// INVARIANT: every member below is touched only on strand_ (the socket's executor).
class DownloadConnection : public std::enable_shared_from_this<DownloadConnection> {
 public:
  explicit DownloadConnection(std::shared_ptr<DownloadListener> listener)
      : listener_(std::move(listener)),
        strand_(asio::make_strand(listener_->io())),
        stream_(strand_, listener_->tls()),
        deadline_(strand_) {}
  ~DownloadConnection() {
    if (holds_slot_) listener_->release_slot();
    listener_->withdraw(this);
  }

  tcp::socket& socket() { return stream_.next_layer(); }
  void hold_slot() { holds_slot_ = true; }
  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->handshake(); });
  }
  void close_soon() {
    asio::post(strand_, [self = shared_from_this()] { self->close(); });
  }

 private:
  // What the deadline ends when it expires.
  enum class Phase { kHandshake, kHead, kWrite };

  void handshake();
  void tls_failed(const error_code& ec);
  void read_head();
  void on_head_read(const error_code& ec, std::size_t n);
  void handle(const RequestHead& head);
  void turn_away(HttpStatus status, const std::string& reason);
  void respond(HttpStatus status);
  void send_next_chunk();
  void on_chunk_written(const error_code& ec, std::size_t n);
  std::string write_failure(const error_code& ec) const;
  void end_download(bool complete, const std::string& reason);
  void shutdown();
  void arm(Phase phase, std::chrono::milliseconds after);
  void on_deadline(const error_code& ec);
  void close();

  std::shared_ptr<DownloadListener> listener_;
  Strand strand_;
  ssl::stream<tcp::socket> stream_;
  asio::steady_timer deadline_;
  Phase phase_ = Phase::kHandshake;
  bool timed_out_ = false;
  bool holds_slot_ = false;
  bool closed_ = false;
  std::string source_;  // the client's IP address

  std::array<std::uint8_t, kMaxHeadBytes> head_{};
  std::size_t head_used_ = 0;
  std::string response_;  // the head (or whole error response) being written

  std::optional<DownloadGrant> grant_;  // from the claim until end_download
  Bytes chunk_;                         // kBodyChunkBytes once a grant is claimed
  std::uint64_t sent_ = 0;              // body bytes the socket took
};

// ---- DownloadListener -----------------------------------------------------------------------

template <class F>
bool DownloadListener::call_authority(F&& f) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    ++calls_in_progress_;
  }
  struct Leave {
    DownloadListener* listener;
    ~Leave() {
      std::lock_guard lock(listener->mutex_);
      --listener->calls_in_progress_;
      listener->calls_done_.notify_all();
    }
  } leave{this};
  f();
  return true;
}

void DownloadListener::begin_transfer(const DownloadConnection* connection, std::string grant_id) {
  std::lock_guard lock(mutex_);
  transfers_[connection] = ActiveTransfer{std::move(grant_id), 0};
}

void DownloadListener::add_bytes(const DownloadConnection* connection, std::uint64_t n) {
  bytes_ += n;
  std::lock_guard lock(mutex_);
  if (auto it = transfers_.find(connection); it != transfers_.end()) it->second.bytes += n;
}

void DownloadListener::end_transfer(const DownloadConnection* connection, bool complete,
                                    const std::string& reason) {
  call_authority([&] {
    ActiveTransfer transfer;
    {
      std::lock_guard lock(mutex_);
      auto it = transfers_.find(connection);
      if (it == transfers_.end()) return;
      transfer = std::move(it->second);
      transfers_.erase(it);
    }
    ++(complete ? served_ : incomplete_);
    authority_.finished(transfer.grant_id, complete, transfer.bytes, reason);
  });
}

bool DownloadListener::enroll(const std::shared_ptr<DownloadConnection>& connection) {
  std::lock_guard lock(mutex_);
  if (stopped_) return false;
  connections_[connection.get()] = connection;
  return true;
}

void DownloadListener::withdraw(const DownloadConnection* connection) {
  std::lock_guard lock(mutex_);
  connections_.erase(connection);
}

Status DownloadListener::start() {
  auto tls = make_tls_context(options_);
  if (!tls) return error_of(tls);
  tls_ = std::move(tls).value();
  error_code ec;
  const auto address = asio::ip::make_address(options_.address, ec);
  if (ec) {
    return fail(Errc::kInvalidArgument,
                "download listen address: not an IP address: " + options_.address);
  }
  const tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(Errc::kUnavailable, "cannot listen for downloads on " + options_.address + ":" +
                                        std::to_string(options_.port) + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  spdlog::info("download links served on {}:{}", options_.address, port_.load());
  asio::post(strand_, [self = shared_from_this()] { self->accept_next(); });
  return {};
}

void DownloadListener::accept_next() {
  auto connection = std::make_shared<DownloadConnection>(shared_from_this());
  acceptor_.async_accept(connection->socket(),
                         [self = shared_from_this(), connection](const error_code& ec) {
                           self->on_accept(connection, ec);
                         });
}

void DownloadListener::on_accept(const std::shared_ptr<DownloadConnection>& connection,
                                 const error_code& ec) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of descriptors, most likely: wait rather than spin.
    spdlog::warn("download accept failed: {}", ec.message());
    retry_timer_.expires_after(kAcceptRetryDelay);
    retry_timer_.async_wait([self = shared_from_this()](const error_code& wait) {
      if (!wait) self->accept_next();
    });
    return;
  }
  ++accepted_;
  if (!take_slot()) {
    ++refused_connections_;
    error_code ignored;
    const auto peer = connection->socket().remote_endpoint(ignored);
    const std::string source = ignored ? "unknown" : peer.address().to_string();
    connection->socket().close(ignored);
    const std::string reason =
        "max_connections (" + std::to_string(options_.max_connections) + ") open";
    spdlog::warn("download connection from {} refused: {}", source, reason);
    call_authority([&] { authority_.rejected(source, reason); });
  } else {
    connection->hold_slot();
    if (enroll(connection)) connection->start();
  }
  accept_next();
}

void DownloadListener::stop() {
  std::vector<ActiveTransfer> cut;
  std::vector<std::weak_ptr<DownloadConnection>> open;
  {
    std::unique_lock lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    calls_done_.wait(lock, [this] { return calls_in_progress_ == 0; });
    for (auto& [connection, transfer] : transfers_) cut.push_back(std::move(transfer));
    transfers_.clear();
    for (auto& [connection, weak] : connections_) open.push_back(weak);
  }
  for (const ActiveTransfer& transfer : cut) {
    ++incomplete_;
    authority_.finished(transfer.grant_id, false, transfer.bytes, "the download server stopped");
  }
  asio::post(strand_, [self = shared_from_this()] {
    error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_timer_.cancel();
  });
  for (const auto& weak : open) {
    if (auto connection = weak.lock()) connection->close_soon();
  }
}

DownloadServerStats DownloadListener::stats() const {
  return {accepted_.load(),     refused_connections_.load(), tls_failures_.load(),
          bad_requests_.load(), refused_links_.load(),       unavailable_.load(),
          served_.load(),       incomplete_.load(),          bytes_.load(),
          open_.load()};
}

// ---- DownloadConnection ---------------------------------------------------------------------

void DownloadConnection::handshake() {
  error_code ec;
  const auto peer = socket().remote_endpoint(ec);
  if (ec) {
    close();
    return;
  }
  source_ = peer.address().to_string();
  arm(Phase::kHandshake, listener_->options().head_timeout);
  stream_.async_handshake(ssl::stream_base::server,
                          [self = shared_from_this()](const error_code& handshake_ec) {
                            if (self->closed_) return;
                            if (handshake_ec) {
                              self->tls_failed(handshake_ec);
                              return;
                            }
                            self->phase_ = Phase::kHead;
                            self->read_head();
                          });
}

void DownloadConnection::tls_failed(const error_code& ec) {
  ++listener_->tls_failures_;
  const std::string reason =
      timed_out_ ? "TLS handshake: not done within " +
                       std::to_string(listener_->options().head_timeout.count()) + " ms"
                 : "TLS handshake: " + ec.message();
  spdlog::debug("download connection from {}: {}", source_, reason);
  listener_->call_authority([&] { listener_->authority().rejected(source_, reason); });
  close();
}

void DownloadConnection::read_head() {
  stream_.async_read_some(asio::buffer(head_.data() + head_used_, head_.size() - head_used_),
                          [self = shared_from_this()](const error_code& ec, std::size_t n) {
                            self->on_head_read(ec, n);
                          });
}

void DownloadConnection::on_head_read(const error_code& ec, std::size_t n) {
  if (closed_) return;
  if (timed_out_) {
    turn_away(HttpStatus::kRequestTimeout,
              "no complete request head within " +
                  std::to_string(listener_->options().head_timeout.count()) + " ms");
    return;
  }
  if (ec) {  // the client left before its request was complete
    close();
    return;
  }
  head_used_ += n;
  auto parsed = parse_request_head(ByteSpan(head_.data(), head_used_));
  if (!parsed) {
    turn_away(status_for(parsed.error()), "malformed request: " + parsed.error().describe());
  } else if (!*parsed) {
    read_head();
  } else {
    handle(**parsed);
  }
}

void DownloadConnection::handle(const RequestHead& head) {
  auto token = download_token(head);
  if (!token) {
    // Neither the target nor the method is repeated: a mistyped link is still a secret.
    turn_away(token.error(), token.error() == HttpStatus::kMethodNotAllowed
                                 ? "a download link requested with another method than GET"
                                 : "not a download link");
    return;
  }
  std::optional<Expected<DownloadGrant>> claimed;
  const bool ran = listener_->call_authority([&] {
    claimed.emplace(listener_->authority().claim(*token, source_));
    if (*claimed) listener_->begin_transfer(this, (*claimed)->grant_id);
  });
  const std::string link = token_log_name(*token);
  if (!ran) {  // the server is stopping
    close();
    return;
  }
  if (!*claimed) {
    const Error& error = claimed->error();
    if (is_refusal(error.code)) {
      ++listener_->refused_links_;
      spdlog::info("download link {} from {} refused ({})", link, source_, errc_name(error.code));
      respond(HttpStatus::kGone);
    } else {
      ++listener_->unavailable_;
      spdlog::warn("download link {} from {}: the release store failed: {}", link, source_,
                   error.describe());
      respond(HttpStatus::kServiceUnavailable);
    }
    return;
  }
  grant_ = std::move(*claimed).value();
  spdlog::info("download {} (link {}) to {}: {} bytes", grant_->grant_id, link, source_,
               grant_->size);
  chunk_.resize(kBodyChunkBytes);
  response_ =
      download_response_head(grant_->file_name, grant_->size, std::chrono::system_clock::now());
  arm(Phase::kWrite, listener_->options().write_timeout);
  asio::async_write(stream_, asio::buffer(response_),
                    [self = shared_from_this()](const error_code& ec, std::size_t) {
                      if (self->closed_) return;
                      if (ec) {
                        self->end_download(false, self->write_failure(ec));
                        return;
                      }
                      self->send_next_chunk();
                    });
}

void DownloadConnection::turn_away(HttpStatus status, const std::string& reason) {
  ++listener_->bad_requests_;
  const std::string described = "HTTP " + std::to_string(static_cast<int>(status)) + ": " + reason;
  spdlog::debug("download request from {} turned away: {}", source_, described);
  listener_->call_authority([&] { listener_->authority().rejected(source_, described); });
  respond(status);
}

void DownloadConnection::respond(HttpStatus status) {
  timed_out_ = false;
  response_ = error_response(status, std::chrono::system_clock::now());
  arm(Phase::kWrite, listener_->options().write_timeout);
  asio::async_write(stream_, asio::buffer(response_),
                    [self = shared_from_this()](const error_code& ec, std::size_t) {
                      if (self->closed_) return;
                      if (ec) {
                        self->close();
                      } else {
                        self->shutdown();
                      }
                    });
}

void DownloadConnection::send_next_chunk() {
  const std::uint64_t remaining = grant_->size - sent_;
  // After the last byte the grant must say it has ended: a source longer than its recorded
  // size, or one whose end fails its own checks, is no complete download.
  const std::size_t want =
      remaining == 0 ? chunk_.size()
                     : static_cast<std::size_t>(std::min<std::uint64_t>(remaining, chunk_.size()));
  std::optional<Expected<std::size_t>> got;
  const bool ran = listener_->call_authority(
      [&] { got.emplace(grant_->read(std::span<std::uint8_t>(chunk_.data(), want))); });
  if (!ran) {
    close();
    return;
  }
  if (!*got) {
    end_download(false, "reading the release: " + got->error().describe());
    return;
  }
  const std::size_t n = **got;
  if (remaining == 0) {
    if (n == 0) {
      end_download(true, "complete");
    } else {
      end_download(false, "the release holds more bytes than its recorded size");
    }
    return;
  }
  if (n == 0) {
    end_download(false, "the release ended after " + std::to_string(sent_) + " of " +
                            std::to_string(grant_->size) + " bytes");
    return;
  }
  if (n > want) {
    end_download(false, "reading the release: more bytes than the buffer holds");
    return;
  }
  arm(Phase::kWrite, listener_->options().write_timeout);
  asio::async_write(stream_, asio::buffer(chunk_.data(), n),
                    [self = shared_from_this()](const error_code& ec, std::size_t written) {
                      self->on_chunk_written(ec, written);
                    });
}

void DownloadConnection::on_chunk_written(const error_code& ec, std::size_t n) {
  if (closed_) return;
  if (ec) {
    end_download(false, write_failure(ec));
    return;
  }
  sent_ += n;
  listener_->add_bytes(this, n);
  send_next_chunk();
}

std::string DownloadConnection::write_failure(const error_code& ec) const {
  if (timed_out_) {
    return "write timeout: the client took nothing for " +
           std::to_string(listener_->options().write_timeout.count()) + " ms";
  }
  if (is_peer_gone(ec)) return "the client closed the connection";
  return "sending: " + ec.message();
}

void DownloadConnection::end_download(bool complete, const std::string& reason) {
  deadline_.cancel();
  listener_->end_transfer(this, complete, reason);
  spdlog::info("download {} to {}: {}, {} of {} bytes sent", grant_->grant_id, source_, reason,
               sent_, grant_->size);
  grant_.reset();
  chunk_ = Bytes();
  if (complete) {
    shutdown();
  } else {
    // No close_notify: the client must not take a cut stream for a whole one.
    close();
  }
}

void DownloadConnection::shutdown() {
  arm(Phase::kWrite, listener_->options().write_timeout);
  stream_.async_shutdown([self = shared_from_this()](const error_code&) { self->close(); });
}

void DownloadConnection::arm(Phase phase, std::chrono::milliseconds after) {
  phase_ = phase;
  deadline_.expires_after(after);
  deadline_.async_wait(
      [self = shared_from_this()](const error_code& ec) { self->on_deadline(ec); });
}

void DownloadConnection::on_deadline(const error_code& ec) {
  // Aborted, or re-armed after this wait had already completed.
  if (ec || closed_ || deadline_.expiry() > Clock::now()) return;
  timed_out_ = true;
  error_code ignored;
  if (phase_ == Phase::kHead || phase_ == Phase::kHandshake) {
    // The operation ends with operation_aborted: a late head is told 408, a late handshake is
    // recorded as a TLS failure, and only then is the connection closed.
    socket().cancel(ignored);
  } else {
    socket().close(ignored);
  }
}

void DownloadConnection::close() {
  if (closed_) return;
  if (grant_) {
    listener_->end_transfer(this, false, "the connection closed");
    grant_.reset();
  }
  closed_ = true;
  deadline_.cancel();
  error_code ignored;
  socket().close(ignored);
}

// ---- DownloadServer -------------------------------------------------------------------------

DownloadServer::DownloadServer(asio::io_context& io, DownloadServerOptions options,
                               DownloadAuthority& authority)
    : listener_(std::make_shared<DownloadListener>(io, std::move(options), authority)) {}

DownloadServer::~DownloadServer() {
  stop();
}

Status DownloadServer::start() {
  return listener_->start();
}

void DownloadServer::stop() {
  listener_->stop();
}

std::uint16_t DownloadServer::port() const {
  return listener_->port();
}

DownloadServerStats DownloadServer::stats() const {
  return listener_->stats();
}

}  // namespace enclave::exitcontrol::download
