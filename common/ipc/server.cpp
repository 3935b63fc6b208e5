#include "common/ipc/server.hpp"

#include <fcntl.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>

namespace enclave::ipc {

namespace {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;
using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kInitialReadBuffer = 4096;
constexpr std::size_t kMaxReadBuffer = std::size_t{kMaxFrame} + 4;
constexpr std::size_t kMaxWriteBatch = 64;  // frames gathered into one write
constexpr auto kAcceptRetryDelay = std::chrono::milliseconds(100);

// Asio opens and accepts without SOCK_CLOEXEC; a service that starts helpers must not leak
// its sockets into them.
void set_cloexec(int fd) {
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

std::string user_name(uid_t uid) {
  std::vector<char> buffer(16384);
  for (;;) {
    passwd entry{};
    passwd* found = nullptr;
    int rc = ::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
    if (rc == ERANGE && buffer.size() < (std::size_t{1} << 20)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (rc == 0 && found != nullptr) return entry.pw_name;
    return "uid:" + std::to_string(uid);
  }
}

// The peer chooses its own comm (prctl), and it reaches log lines: control bytes become '?'.
std::string process_command(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string command;
  std::getline(in, command);
  while (!command.empty() && (command.back() == '\n' || command.back() == ' ')) {
    command.pop_back();
  }
  for (char& c : command) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return command;
}

std::optional<PeerCredentials> peer_credentials(int fd) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0 || length != sizeof cred) {
    return std::nullopt;
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid, user_name(cred.uid),
                         process_command(cred.pid)};
}

std::string describe_peer(const PeerCredentials& peer) {
  return "pid " + std::to_string(peer.pid) + " uid " + std::to_string(peer.uid) + " (" + peer.user +
         ", " + peer.command + ")";
}

// True when something accepts connections at path: replacing its socket would hijack it.
bool socket_is_live(const std::string& path) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address);
  bool live = rc == 0 || errno == EAGAIN;  // EAGAIN: its backlog is full, so it is there
  ::close(fd);
  return live;
}

Errc errc_from_errno(int err) {
  switch (err) {
    case EACCES:
    case EPERM:
      return Errc::kPermission;
    case EADDRINUSE:
    case EEXIST:
      return Errc::kAlreadyExists;
    case ENOENT:
    case ENOTDIR:
      return Errc::kNotFound;
    case ENOSPC:
      return Errc::kNoSpace;
    default:
      return Errc::kIo;
  }
}

Bytes frame_response(Response response) {
  if (response.ok && !response.result.is_object()) {
    spdlog::warn("ipc: the handler's result for request {} is not a JSON object", response.id);
    response =
        Response::failure(response.id, {Errc::kInternal, "the service produced no valid result"});
  }
  std::string payload = encode_response(response);
  if (payload.size() > kMaxFrame) {
    spdlog::warn("ipc: the response to request {} is {} bytes, above the frame limit", response.id,
                 payload.size());
    payload = encode_response(
        Response::failure(response.id, {Errc::kInternal, "the response exceeds the frame limit"}));
  }
  Bytes frame;
  frame.reserve(payload.size() + 4);
  append_frame(payload, frame);
  return frame;
}

class Connection;

// What every connection shares: options, handler, counters, the registry that stop() closes,
// and the gate through which every call into the service's code passes.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, ServerOptions options, Handler& handler)
      : io_(io),
        options_(std::move(options)),
        handler_(handler),
        strand_(asio::make_strand(io)),
        acceptor_(strand_),
        retry_timer_(strand_),
        path_(options_.socket_path.string()) {}

  Status start();
  void stop();
  ServerStats stats() const {
    return {accepted_.load(), refused_.load(), requests_.load(), protocol_errors_.load(),
            open_.load()};
  }

  // Runs f, a call into the service's code (handler or authorize), unless the server has
  // stopped; returns whether it ran. stop() waits for calls in progress, so that once it
  // returns the handler may be destroyed.
  template <class F>
  bool call_service(F&& f);

  // False once stopped: the caller closes the connection instead.
  bool enroll(const std::shared_ptr<Connection>& connection);
  void withdraw(Connection* connection);
  // Takes one of max_connections slots; false when all are taken.
  bool take_slot() {
    if (open_.fetch_add(1) < options_.max_connections) return true;
    open_.fetch_sub(1);
    return false;
  }
  void release_slot() { open_.fetch_sub(1); }

  asio::io_context& io() { return io_; }
  const ServerOptions& options() const { return options_; }
  Handler& handler() { return handler_; }
  const std::string& path() const { return path_; }

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> protocol_errors_{0};

 private:
  Status bind_socket();
  void accept_next();
  void on_accept(const std::shared_ptr<Connection>& connection,
                 const boost::system::error_code& ec);

  asio::io_context& io_;
  const ServerOptions options_;
  Handler& handler_;
  Strand strand_;  // the acceptor's
  stream_protocol::acceptor acceptor_;
  asio::steady_timer retry_timer_;
  const std::string path_;
  std::atomic<std::uint64_t> open_{0};

  std::mutex mutex_;
  std::condition_variable calls_done_;
  bool started_ = false;
  bool stopped_ = false;
  // The socket file this listener put in place (bind_socket), removed again by stop() unless
  // another server has replaced it since.
  std::optional<std::pair<dev_t, ino_t>> socket_file_;
  std::size_t calls_in_progress_ = 0;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
};

// The server whose service code this thread is running, so that a handler may call stop().
thread_local const Listener* tl_serving = nullptr;

template <class F>
bool Listener::call_service(F&& f) {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return false;
    ++calls_in_progress_;
  }
  struct Leave {
    Listener* listener;
    const Listener* outer;
    ~Leave() {
      tl_serving = outer;
      std::lock_guard lock(listener->mutex_);
      --listener->calls_in_progress_;
      listener->calls_done_.notify_all();
    }
  } leave{this, std::exchange(tl_serving, this)};
  f();
  return true;
}

// A Responder's state: answered at most once, and only while its connection lives.
struct ResponseSlot {
  std::weak_ptr<Connection> connection;
  std::uint64_t id;
  std::atomic<bool> answered{false};

  bool claim() { return !answered.exchange(true); }
  void answer(Response response);
};

// INVARIANT: every member below is touched only on strand_ (the socket's executor).
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  explicit Connection(std::shared_ptr<Listener> listener)
      : listener_(std::move(listener)),
        strand_(asio::make_strand(listener_->io())),
        socket_(strand_),
        idle_timer_(strand_),
        in_(kInitialReadBuffer) {}

  stream_protocol::socket& socket() { return socket_; }

  void start() {
    asio::post(strand_, [self = shared_from_this()] { self->admit(); });
  }
  void close_soon() {
    asio::post(strand_, [self = shared_from_this()] { self->close(); });
  }
  void post_response(Response response) {
    asio::post(strand_, [self = shared_from_this(), response = std::move(response)]() mutable {
      self->deliver(std::move(response));
    });
  }

 private:
  struct Outgoing {
    Bytes frame;
    bool answers_request;  // false for the refusal or protocol error that ends a connection
  };

  void admit();
  void refuse(Errc code, const std::string& message, const std::string& reason);
  void read_more();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void pump();
  void dispatch(Request request);
  void protocol_violation(const ProtocolError& error);
  void deliver(Response response);
  void send_last(const Response& response);
  void write_queued();
  void on_written(const boost::system::error_code& ec);
  void arm_idle_timer(Clock::duration after);
  void on_idle_timer(const boost::system::error_code& ec);
  void close();
  void touch() { last_activity_ = Clock::now(); }
  bool finished() const { return closing_ || (peer_done_ && pending_ == 0); }

  std::shared_ptr<Listener> listener_;
  Strand strand_;
  stream_protocol::socket socket_;
  asio::steady_timer idle_timer_;
  PeerCredentials peer_;
  bool enrolled_ = false;
  bool holds_slot_ = false;

  Bytes in_;
  std::size_t in_start_ = 0;  // first unconsumed byte
  std::size_t in_end_ = 0;    // end of the bytes read
  bool reading_ = false;
  bool peer_done_ = false;  // the peer shut down its side: answer what is pending, then close

  std::deque<Outgoing> out_;
  std::size_t out_in_flight_ = 0;  // frames at the front of out_ being written
  // Requests handed to the handler whose responses are not yet written: the backpressure count.
  std::size_t pending_ = 0;

  bool closing_ = false;  // a last frame is queued; nothing more is read or answered
  bool closed_ = false;
  Clock::time_point last_activity_ = Clock::now();
};

void ResponseSlot::answer(Response response) {
  if (!claim()) {
    spdlog::warn("ipc: request {} was answered twice; the second response is dropped", id);
    return;
  }
  response.id = id;
  if (auto live = connection.lock()) live->post_response(std::move(response));
}

void Connection::admit() {
  set_cloexec(socket_.native_handle());
  if (!listener_->enroll(shared_from_this())) {
    close();
    return;
  }
  enrolled_ = true;
  auto credentials = peer_credentials(socket_.native_handle());
  if (!credentials) {
    spdlog::warn("ipc {}: cannot read the peer's credentials: {}", listener_->path(),
                 std::strerror(errno));
    close();
    return;
  }
  peer_ = std::move(*credentials);

  bool allowed = false;
  const auto& authorize = listener_->options().authorize;
  bool ran = listener_->call_service(
      [&] { allowed = authorize ? authorize(peer_) : peer_.uid == ::geteuid(); });
  if (!ran) {
    close();
    return;
  }
  if (!allowed) {
    refuse(Errc::kPermission, "uid " + std::to_string(peer_.uid) + " may not use this service",
           "not authorized: " + describe_peer(peer_));
    return;
  }
  if (!listener_->take_slot()) {
    refuse(Errc::kUnavailable,
           "the server is at its limit of " + std::to_string(listener_->options().max_connections) +
               " connections",
           "connection limit reached: " + describe_peer(peer_));
    return;
  }
  holds_slot_ = true;
  ++listener_->accepted_;
  touch();
  if (listener_->options().idle_timeout.count() > 0) {
    arm_idle_timer(listener_->options().idle_timeout);
  }
  read_more();
}

void Connection::refuse(Errc code, const std::string& message, const std::string& reason) {
  ++listener_->refused_;
  spdlog::warn("ipc {}: refused connection: {}", listener_->path(), reason);
  listener_->call_service([&] { listener_->handler().on_refused(peer_, reason); });
  send_last(Response::failure(0, {code, message}));
}

void Connection::read_more() {
  if (reading_ || peer_done_ || closing_ || closed_) return;
  if (pending_ >= listener_->options().max_pending_per_connection) return;  // resumed on write
  if (in_start_ > 0) {
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
  }
  if (in_end_ == in_.size()) {
    // next_frame refuses announced lengths above kMaxFrame, so a full buffer of
    // kMaxReadBuffer bytes always holds a complete frame and never reaches here.
    in_.resize(std::min(in_.size() * 2, kMaxReadBuffer));
  }
  reading_ = true;
  socket_.async_read_some(asio::buffer(in_.data() + in_end_, in_.size() - in_end_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      std::size_t n) { self->on_read(ec, n); });
}

void Connection::on_read(const boost::system::error_code& ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec == asio::error::eof) {
    peer_done_ = true;
    if (out_.empty() && finished()) close();
    return;
  }
  if (ec) {
    close();
    return;
  }
  in_end_ += n;
  touch();
  pump();
}

// Hands complete frames to the handler while under the pending limit, then reads more.
// Precondition: no read in flight (it would be writing into in_).
void Connection::pump() {
  const std::size_t max_pending = listener_->options().max_pending_per_connection;
  while (!closing_ && !closed_ && pending_ < max_pending) {
    auto found = next_frame(ByteSpan(in_.data() + in_start_, in_end_ - in_start_));
    if (!found) {
      protocol_violation(found.error());
      return;
    }
    if (!found->has_value()) break;
    ByteSpan payload = (*found)->payload;
    in_start_ += (*found)->consumed;
    auto request = parse_request(payload);
    if (!request) {
      protocol_violation(request.error());
      return;
    }
    dispatch(std::move(*request));
  }
  if (in_start_ == in_end_) {
    in_start_ = in_end_ = 0;
    if (in_.size() > kInitialReadBuffer) {
      // One large request must not pin a megabyte to an idle connection.
      in_.resize(kInitialReadBuffer);
      in_.shrink_to_fit();
    }
  }
  read_more();
}

void Connection::dispatch(Request request) {
  ++pending_;
  ++listener_->requests_;
  auto slot = std::make_shared<ResponseSlot>();
  slot->connection = weak_from_this();
  slot->id = request.id;
  Responder respond = [slot](Response response) { slot->answer(std::move(response)); };

  std::string method = request.method;
  std::string failure;
  listener_->call_service([&] {
    // The service's code may throw (nlohmann's at() on a missing param); that is its bug,
    // answered as an internal error rather than unwinding through the event loop.
    try {
      listener_->handler().handle(peer_, std::move(request), std::move(respond));
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
  });
  if (!failure.empty()) {
    spdlog::error("ipc {}: the handler for {} threw: {}", listener_->path(), method, failure);
    if (slot->claim()) {
      deliver(Response::failure(slot->id, {Errc::kInternal, "the service failed on " + method}));
    }
  }
}

void Connection::protocol_violation(const ProtocolError& error) {
  ++listener_->protocol_errors_;
  std::string reason = error.describe();
  spdlog::warn("ipc {}: protocol error from {}: {}", listener_->path(), describe_peer(peer_),
               reason);
  listener_->call_service([&] { listener_->handler().on_refused(peer_, reason); });
  send_last(Response::failure(error.id, {Errc::kInvalidArgument, reason}));
}

void Connection::deliver(Response response) {
  if (closed_ || closing_) return;
  out_.push_back({frame_response(std::move(response)), true});
  write_queued();
}

// Queues the frame that ends this connection; it closes once everything queued is written.
void Connection::send_last(const Response& response) {
  if (closed_ || closing_) return;
  closing_ = true;
  out_.push_back({frame_response(response), false});
  write_queued();
}

void Connection::write_queued() {
  if (closed_ || out_in_flight_ > 0 || out_.empty()) return;
  std::vector<asio::const_buffer> buffers;
  for (std::size_t i = 0; i < out_.size() && i < kMaxWriteBatch; ++i) {
    buffers.push_back(asio::buffer(out_[i].frame));
  }
  out_in_flight_ = buffers.size();
  asio::async_write(socket_, buffers,
                    [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                      self->on_written(ec);
                    });
}

void Connection::on_written(const boost::system::error_code& ec) {
  if (closed_) return;
  if (ec) {
    close();
    return;
  }
  for (; out_in_flight_ > 0; --out_in_flight_) {
    if (out_.front().answers_request) --pending_;
    out_.pop_front();
  }
  touch();
  if (!out_.empty()) {
    write_queued();
  } else if (finished()) {
    close();
    return;
  }
  // A connection paused at the pending limit resumes: first the frames already buffered.
  if (!reading_) pump();
}

void Connection::arm_idle_timer(Clock::duration after) {
  idle_timer_.expires_after(after);
  idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    self->on_idle_timer(ec);
  });
}

void Connection::on_idle_timer(const boost::system::error_code& ec) {
  if (ec || closed_) return;  // cancelled by close()
  const auto idle = listener_->options().idle_timeout;
  if (pending_ > 0) {
    arm_idle_timer(idle);
    return;
  }
  auto quiet = Clock::now() - last_activity_;
  if (quiet >= idle) {
    spdlog::debug("ipc {}: closing idle connection from {}", listener_->path(),
                  describe_peer(peer_));
    close();
    return;
  }
  arm_idle_timer(idle - quiet);
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  idle_timer_.cancel();
  socket_.close(ignored);
  // out_ and in_ stay allocated: cancelled operations still refer to them until they complete.
  if (holds_slot_) listener_->release_slot();
  if (enrolled_) listener_->withdraw(this);
}

bool Listener::enroll(const std::shared_ptr<Connection>& connection) {
  std::lock_guard lock(mutex_);
  if (stopped_) return false;
  connections_.emplace(connection.get(), connection);
  return true;
}

void Listener::withdraw(Connection* connection) {
  std::lock_guard lock(mutex_);
  connections_.erase(connection);
}

Status Listener::start() {
  if (options_.max_pending_per_connection == 0 || options_.max_connections == 0) {
    return fail(Errc::kInvalidArgument,
                "max_pending_per_connection and max_connections must be "
                "at least 1");
  }
  {
    std::lock_guard lock(mutex_);
    if (started_ || stopped_) {
      return fail(Errc::kInvalidArgument, "the server for " + path_ + " was already started");
    }
  }
  ENCLAVE_TRY(bind_socket());
  {
    std::lock_guard lock(mutex_);
    started_ = true;
  }
  asio::dispatch(strand_, [self = shared_from_this()] { self->accept_next(); });
  return {};
}

// The socket is bound, given its mode and put to listen under a staging name, then renamed
// into place: the path appears only once connections are accepted, so a client that waits for
// it never meets a bound socket that refuses (the window between bind() and listen()).
Status Listener::bind_socket() {
  static constexpr std::string_view kStagingSuffix = ".new";
  const std::size_t longest = sizeof(sockaddr_un::sun_path) - 1 - kStagingSuffix.size();
  if (path_.empty() || path_.size() > longest) {
    return fail(Errc::kInvalidArgument, "socket path \"" + path_ + "\" is empty or longer than " +
                                            std::to_string(longest) + " bytes");
  }
  auto parent = options_.socket_path.parent_path();
  if (parent.empty()) parent = ".";
  struct stat info {};
  if (::stat(parent.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return fail(Errc::kNotFound, "the directory for socket " + path_ + " does not exist");
  }
  // A stale socket at `path` (a server that died) is replaced; anything else is refused.
  auto clear_stale = [](const std::string& path) -> Status {
    struct stat existing {};
    if (::lstat(path.c_str(), &existing) == 0) {
      if (!S_ISSOCK(existing.st_mode)) {
        return fail(Errc::kAlreadyExists, path + " exists and is not a socket; not replacing it");
      }
      if (socket_is_live(path)) {
        return fail(Errc::kAlreadyExists, "another server is listening at " + path);
      }
      if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        int err = errno;
        return fail(errc_from_errno(err),
                    "cannot remove stale socket " + path + ": " + std::strerror(err));
      }
    } else if (errno != ENOENT) {
      int err = errno;
      return fail(errc_from_errno(err), "cannot inspect " + path + ": " + std::strerror(err));
    }
    return {};
  };
  const std::string staging = path_ + std::string(kStagingSuffix);
  if (auto cleared = clear_stale(path_); !cleared) return cleared;
  if (auto cleared = clear_stale(staging); !cleared) return cleared;

  boost::system::error_code ec;
  auto failed = [&](const char* step) {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    ::unlink(staging.c_str());
    return fail(errc_from_errno(ec.value()),
                std::string("cannot ") + step + " socket " + path_ + ": " + ec.message());
  };
  acceptor_.open(stream_protocol(), ec);
  if (ec) return failed("open");
  set_cloexec(acceptor_.native_handle());
  acceptor_.bind(stream_protocol::endpoint(staging), ec);
  if (ec) return failed("bind");
  // Before listen(), so no peer connects while the mode still comes from the umask.
  if (::chmod(staging.c_str(), static_cast<mode_t>(options_.socket_mode & 07777)) != 0) {
    ec.assign(errno, boost::system::system_category());
    return failed("set the mode of");
  }
  acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return failed("listen on");
  if (::rename(staging.c_str(), path_.c_str()) != 0) {
    ec.assign(errno, boost::system::system_category());
    return failed("move into place the");
  }
  struct stat placed {};
  if (::lstat(path_.c_str(), &placed) == 0) socket_file_.emplace(placed.st_dev, placed.st_ino);
  return {};
}

void Listener::accept_next() {
  auto connection = std::make_shared<Connection>(shared_from_this());
  acceptor_.async_accept(connection->socket(), [self = shared_from_this(),
                                                connection](const boost::system::error_code& ec) {
    self->on_accept(connection, ec);
  });
}

void Listener::on_accept(const std::shared_ptr<Connection>& connection,
                         const boost::system::error_code& ec) {
  if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
  if (ec) {
    // Out of descriptors or memory: retry later rather than spin.
    spdlog::warn("ipc {}: accept failed: {}", path_, ec.message());
    retry_timer_.expires_after(kAcceptRetryDelay);
    retry_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& wait) {
      if (!wait && self->acceptor_.is_open()) self->accept_next();
    });
    return;
  }
  connection->start();
  accept_next();
}

void Listener::stop() {
  std::vector<std::shared_ptr<Connection>> open;
  {
    std::unique_lock lock(mutex_);
    if (!stopped_) {
      stopped_ = true;
      // A clean stop leaves no socket file behind: whoever waits for the path next waits for
      // the next server, not for a file that refuses.
      struct stat current {};
      if (socket_file_ && ::lstat(path_.c_str(), &current) == 0 &&
          std::pair(current.st_dev, current.st_ino) == *socket_file_) {
        ::unlink(path_.c_str());
      }
      for (auto& [raw, weak] : connections_) {
        if (auto connection = weak.lock()) open.push_back(std::move(connection));
      }
    }
    std::size_t own_call = tl_serving == this ? 1 : 0;
    calls_done_.wait(lock, [&] { return calls_in_progress_ <= own_call; });
  }
  asio::dispatch(strand_, [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
    self->retry_timer_.cancel();
  });
  for (auto& connection : open) connection->close_soon();
}

}  // namespace

struct Server::Impl : Listener {
  using Listener::Listener;
};

Server::Server(boost::asio::io_context& io, ServerOptions options, Handler& handler)
    : impl_(std::make_shared<Impl>(io, std::move(options), handler)) {}

Server::~Server() {
  impl_->stop();
}

Status Server::start() {
  return impl_->start();
}

void Server::stop() {
  impl_->stop();
}

ServerStats Server::stats() const {
  return impl_->stats();
}

}  // namespace enclave::ipc
