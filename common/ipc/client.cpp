#include "common/ipc/client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>

namespace enclave::ipc {

namespace {

namespace asio = boost::asio;
using stream_protocol = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kInitialReadBuffer = 4096;
constexpr std::size_t kMaxReadBuffer = std::size_t{kMaxFrame} + 4;
constexpr auto kBacklogRetry = std::chrono::milliseconds(10);

// Waits until fd is ready for events or the deadline passes; false on timeout. Errors count as
// ready: the read or write that follows reports them.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    pollfd entry{fd, events, 0};
    int rc = ::poll(&entry, 1, static_cast<int>(std::clamp<long long>(left, 0, INT_MAX)));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return true;
  }
}

std::string millis(std::chrono::milliseconds timeout) {
  return std::to_string(timeout.count()) + " ms";
}

}  // namespace

struct Client::Impl {
  asio::io_context io;
  stream_protocol::socket socket{io};
  std::string path;
  std::chrono::milliseconds send_timeout{0};  // the connect timeout bounds each send too

  Bytes in = Bytes(kInitialReadBuffer);
  std::size_t in_start = 0;
  std::size_t in_end = 0;

  std::uint64_t next_id = 1;
  // Ids whose call() timed out: their responses may still come and are dropped.
  std::unordered_set<std::uint64_t> abandoned;
  // After a partial frame, a malformed frame or the peer's close the stream cannot continue.
  bool broken = false;

  Unexpected<Error> closed() {
    broken = true;
    return fail(Errc::kUnavailable, "connection closed by " + path);
  }

  Status write_all(ByteSpan data) {
    if (broken) return fail(Errc::kUnavailable, "connection to " + path + " is closed");
    const auto deadline = Clock::now() + send_timeout;
    std::size_t sent = 0;
    while (sent < data.size()) {
      boost::system::error_code ec;
      sent += socket.write_some(asio::buffer(data.data() + sent, data.size() - sent), ec);
      if (!ec) continue;
      if (ec == asio::error::would_block) {
        if (wait_ready(socket.native_handle(), POLLOUT, deadline)) continue;
        if (sent > 0) broken = true;
        return fail(Errc::kTimeout,
                    "sending to " + path + " timed out after " + millis(send_timeout));
      }
      if (ec == asio::error::broken_pipe || ec == asio::error::connection_reset) return closed();
      broken = true;
      return fail(Errc::kIo, "sending to " + path + ": " + ec.message());
    }
    return {};
  }

  // Reads what is available into in, waiting until the deadline for at least one byte.
  Status read_some(Clock::time_point deadline, std::chrono::milliseconds timeout) {
    if (in_start > 0) {
      std::memmove(in.data(), in.data() + in_start, in_end - in_start);
      in_end -= in_start;
      in_start = 0;
    }
    // next_frame refuses lengths above kMaxFrame, so a full kMaxReadBuffer holds a frame.
    if (in_end == in.size()) in.resize(std::min(in.size() * 2, kMaxReadBuffer));
    for (;;) {
      boost::system::error_code ec;
      std::size_t n = socket.read_some(asio::buffer(in.data() + in_end, in.size() - in_end), ec);
      if (!ec) {
        in_end += n;
        return {};
      }
      if (ec == asio::error::would_block) {
        if (wait_ready(socket.native_handle(), POLLIN, deadline)) continue;
        return fail(Errc::kTimeout, "no response from " + path + " within " + millis(timeout));
      }
      if (ec == asio::error::eof || ec == asio::error::connection_reset) return closed();
      broken = true;
      return fail(Errc::kIo, "receiving from " + path + ": " + ec.message());
    }
  }

  // After the server closed on us, the failure it sent first (id 0) explains why: a refused
  // peer, a connection limit, a protocol error.
  std::optional<Error> connection_error() {
    broken = false;  // let receive() read what the server sent before closing
    auto last = receive(std::chrono::milliseconds(0));
    broken = true;
    if (last && last->id == 0 && !last->ok) return last->error();
    return std::nullopt;
  }

  Expected<Response> receive(std::chrono::milliseconds timeout) {
    if (broken) return fail(Errc::kUnavailable, "connection to " + path + " is closed");
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      auto found = next_frame(ByteSpan(in.data() + in_start, in_end - in_start));
      if (!found) {
        broken = true;
        return fail(Errc::kInternal,
                    "malformed frame from " + path + ": " + found.error().describe());
      }
      if (found->has_value()) {
        auto response = parse_response((*found)->payload);
        in_start += (*found)->consumed;
        if (!response) {
          return fail(Errc::kInternal,
                      "malformed response from " + path + ": " + response.error().describe());
        }
        if (abandoned.erase(response->id) > 0) continue;
        return std::move(*response);
      }
      ENCLAVE_TRY(read_some(deadline, timeout));
    }
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;
Client::~Client() = default;

Expected<Client> Client::connect(const std::filesystem::path& socket_path,
                                 std::chrono::milliseconds timeout) {
  auto impl = std::make_unique<Impl>();
  impl->path = socket_path.string();
  impl->send_timeout = timeout;
  const std::string& path = impl->path;
  if (path.empty() || path.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail(Errc::kInvalidArgument, "socket path \"" + path + "\" is empty or longer than " +
                                            std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                            " bytes");
  }
  boost::system::error_code ec;
  impl->socket.open(stream_protocol(), ec);
  if (!ec) impl->socket.non_blocking(true, ec);
  if (ec) return fail(Errc::kIo, "cannot open a socket for " + path + ": " + ec.message());
  const int fd = impl->socket.native_handle();
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);

  stream_protocol::endpoint endpoint(path);
  const auto deadline = Clock::now() + timeout;
  while (::connect(fd, endpoint.data(), static_cast<socklen_t>(endpoint.size())) != 0) {
    int err = errno;
    switch (err) {
      case EINTR:
        continue;
      case EAGAIN:  // the server's backlog is full
        if (Clock::now() >= deadline) {
          return fail(Errc::kTimeout,
                      "the service at " + path + " did not accept within " + millis(timeout));
        }
        std::this_thread::sleep_for(kBacklogRetry);
        continue;
      case ENOENT:
      case ENOTDIR:
      case ECONNREFUSED:
        return fail(Errc::kUnavailable, "no service listening at " + path);
      case EACCES:
      case EPERM:
        return fail(Errc::kPermission, "permission denied connecting to " + path);
      default:
        return fail(Errc::kUnavailable, "cannot connect to " + path + ": " + std::strerror(err));
    }
  }
  return Client(std::move(impl));
}

// One request at a time: a response with another id means the caller mixed call() with
// unanswered send()s, which is reported as an internal error rather than silently reordered.
// A timed-out call's late response is dropped when it arrives.
Expected<nlohmann::json> Client::call(std::string_view method, nlohmann::json params,
                                      std::chrono::milliseconds timeout) {
  auto id = send(method, std::move(params));
  if (!id) {
    if (id.error().code == Errc::kUnavailable) {
      if (auto reason = impl_->connection_error()) return fail(std::move(*reason));
    }
    return fail(id.error());
  }
  auto response = impl_->receive(timeout);
  if (!response) {
    if (response.error().code == Errc::kTimeout) impl_->abandoned.insert(*id);
    return fail(response.error());
  }
  if (response->id != *id && (response->id != 0 || response->ok)) {
    return fail(Errc::kInternal, "received the response to request " +
                                     std::to_string(response->id) + " while waiting for " +
                                     std::to_string(*id) +
                                     ": call() is for one request at a time; pipeline with "
                                     "send() and receive()");
  }
  // Either our answer or the server's id 0 failure that ends the connection.
  if (!response->ok) return fail(response->error());
  return std::move(response->result);
}

Expected<std::uint64_t> Client::send(std::string_view method, nlohmann::json params) {
  if (!is_valid_method(method)) {
    return fail(Errc::kInvalidArgument, "method \"" + std::string(method.substr(0, 64)) +
                                            "\" is not 1..64 characters of [a-z0-9._]");
  }
  if (params.is_null()) params = nlohmann::json::object();  // call(m, {}) passes null
  if (!params.is_object()) return fail(Errc::kInvalidArgument, "params must be a JSON object");

  std::string payload = encode_request({impl_->next_id, std::string(method), std::move(params)});
  if (payload.size() > kMaxFrame) {
    return fail(Errc::kInvalidArgument, "the request is " + std::to_string(payload.size()) +
                                            " bytes, above the frame limit of " +
                                            std::to_string(kMaxFrame));
  }
  Bytes frame;
  frame.reserve(payload.size() + 4);
  append_frame(payload, frame);
  ENCLAVE_TRY(impl_->write_all(frame));
  return impl_->next_id++;
}

Expected<Response> Client::receive(std::chrono::milliseconds timeout) {
  return impl_->receive(timeout);
}

}  // namespace enclave::ipc
