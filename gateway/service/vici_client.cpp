#include "gateway/service/vici_client.hpp"

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
#include <utility>

#include "common/net/ip.hpp"
#include "gateway/core/vici.hpp"

namespace enclave::gateway {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kListSaEvent = "list-sa";
constexpr std::string_view kListSasCommand = "list-sas";
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr auto kBacklogRetry = std::chrono::milliseconds(10);

// One connection to charon's VICI socket, every operation bounded by the same deadline.
class ViciConnection {
 public:
  ViciConnection(std::string path, Clock::time_point deadline, std::chrono::milliseconds timeout)
      : path_(std::move(path)), deadline_(deadline), timeout_(timeout) {}
  ViciConnection(const ViciConnection&) = delete;
  ViciConnection& operator=(const ViciConnection&) = delete;
  ~ViciConnection() {
    if (fd_ >= 0) ::close(fd_);
  }

  Status connect() {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path_.empty() || path_.size() >= sizeof address.sun_path) {
      return fail(Errc::kInvalidArgument,
                  "VICI socket path \"" + path_ + "\" is empty or longer than " +
                      std::to_string(sizeof address.sun_path - 1) + " bytes");
    }
    std::memcpy(address.sun_path, path_.data(), path_.size());
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return fail(Errc::kIo, where() + "cannot open a socket: " + std::strerror(errno));
    while (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
      const int err = errno;
      switch (err) {
        case EINTR:
          continue;
        case EAGAIN:  // charon's backlog is full
          if (Clock::now() >= deadline_) return timed_out();
          std::this_thread::sleep_for(kBacklogRetry);
          continue;
        case ENOENT:
        case ENOTDIR:
        case ECONNREFUSED:
          return fail(Errc::kUnavailable, where() + "nothing listens there");
        case EACCES:
        case EPERM:
          return fail(Errc::kPermission, where() + "permission denied");
        default:
          return fail(Errc::kUnavailable, where() + "cannot connect: " + std::strerror(err));
      }
    }
    return {};
  }

  Status send(const vici::Packet& packet) {
    auto bytes = vici::encode_packet(packet);
    if (!bytes) return fail(Errc::kInternal, where() + bytes.error().describe());
    std::size_t sent = 0;
    while (sent < bytes->size()) {
      const ssize_t n = ::send(fd_, bytes->data() + sent, bytes->size() - sent, MSG_NOSIGNAL);
      if (n >= 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        ENCLAVE_TRY(wait_ready(POLLOUT));
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) return closed();
      return fail(Errc::kIo, where() + "sending: " + std::strerror(errno));
    }
    return {};
  }

  Expected<vici::Packet> receive() {
    for (;;) {
      auto segment = vici::next_segment(in_);
      if (!segment) return fail(Errc::kInternal, where() + segment.error().describe());
      if (segment->has_value()) {
        auto packet = vici::decode_packet((*segment)->packet);
        in_.erase(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>((*segment)->consumed));
        if (!packet) return fail(Errc::kInternal, where() + packet.error().describe());
        return std::move(*packet);
      }
      ENCLAVE_TRY(read_some());
    }
  }

  // "VICI socket PATH: ", the start of every error message.
  std::string where() const { return "VICI socket " + path_ + ": "; }

 private:
  Unexpected<Error> closed() const {
    return fail(Errc::kUnavailable, where() + "connection closed by charon");
  }
  Unexpected<Error> timed_out() const {
    return fail(Errc::kTimeout,
                where() + "no answer within " + std::to_string(timeout_.count()) + " ms");
  }

  Status wait_ready(short events) {
    for (;;) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) return timed_out();
      pollfd entry{fd_, events, 0};
      const int rc = ::poll(&entry, 1, static_cast<int>(std::min<long long>(left, INT_MAX)));
      if (rc > 0) return {};  // errors too: the read or write that follows reports them
      if (rc < 0 && errno != EINTR) {
        return fail(Errc::kIo, where() + "poll: " + std::strerror(errno));
      }
    }
  }

  Status read_some() {
    const std::size_t old_size = in_.size();
    in_.resize(old_size + kReadChunk);
    for (;;) {
      const ssize_t n = ::recv(fd_, in_.data() + old_size, kReadChunk, 0);
      if (n > 0) {
        in_.resize(old_size + static_cast<std::size_t>(n));
        return {};
      }
      const int err = n == 0 ? 0 : errno;
      if (err == EINTR) continue;
      if (err == EAGAIN) {
        if (auto ready = wait_ready(POLLIN); !ready) {
          in_.resize(old_size);
          return ready;
        }
        continue;
      }
      in_.resize(old_size);
      if (err == 0 || err == ECONNRESET) return closed();
      return fail(Errc::kIo, where() + "receiving: " + std::strerror(err));
    }
  }

  std::string path_;
  Clock::time_point deadline_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  Bytes in_;  // received bytes not yet decoded; next_segment bounds a segment to kMaxSegment
};

std::string packet_type_text(vici::PacketType type) {
  return "packet type " + std::to_string(static_cast<int>(type));
}

// (Un)registers for an event and waits for charon's confirmation.
Status set_registration(ViciConnection& connection, vici::PacketType type) {
  ENCLAVE_TRY(connection.send(vici::Packet{type, std::string(kListSaEvent), {}}));
  auto answer = connection.receive();
  if (!answer) return error_of(answer);
  if (answer->type == vici::PacketType::kEventConfirm) return {};
  if (answer->type == vici::PacketType::kEventUnknown) {
    return fail(Errc::kInternal, connection.where() + "charon knows no \"list-sa\" event");
  }
  return fail(Errc::kInternal, connection.where() + "unexpected " + packet_type_text(answer->type) +
                                   " in answer to an event registration");
}

}  // namespace

Expected<bool> confirm_address(const std::filesystem::path& socket_path,
                               std::string_view ike_identity, std::string_view address,
                               std::chrono::milliseconds timeout) {
  const std::string path = socket_path.string();
  if (ike_identity.empty()) {
    return fail(Errc::kInvalidArgument, "VICI socket " + path + ": empty IKE identity");
  }
  const auto wanted = net::IpAddress::parse(address);
  if (!wanted) {
    return fail(Errc::kInvalidArgument, "VICI socket " + path + ": " + wanted.error().describe());
  }
  ViciConnection connection(path, Clock::now() + timeout, timeout);
  ENCLAVE_TRY(connection.connect());
  ENCLAVE_TRY(set_registration(connection, vici::PacketType::kEventRegister));
  ENCLAVE_TRY(connection.send(
      vici::Packet{vici::PacketType::kCmdRequest, std::string(kListSasCommand), {}}));
  bool held = false;
  for (;;) {
    auto packet = connection.receive();
    if (!packet) return error_of(packet);
    if (packet->type == vici::PacketType::kCmdResponse) break;
    if (packet->type == vici::PacketType::kEvent && packet->name == kListSaEvent) {
      held = held || vici::ike_sa_holds(packet->message, ike_identity, *wanted);
      continue;
    }
    if (packet->type == vici::PacketType::kCmdUnknown) {
      return fail(Errc::kInternal, connection.where() + "charon knows no \"list-sas\" command");
    }
    return fail(Errc::kInternal, connection.where() + "unexpected " +
                                     packet_type_text(packet->type) + " \"" + packet->name +
                                     "\" during list-sas");
  }
  ENCLAVE_TRY(set_registration(connection, vici::PacketType::kEventUnregister));
  return held;
}

}  // namespace enclave::gateway
