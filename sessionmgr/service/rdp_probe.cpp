// The host health probe: one blocking TCP connect with a deadline, one X.224 Connection
// Request (RDP_NEG_REQ for PROTOCOL_SSL, no cookie: 19 bytes), one Connection Confirm read back
// and decoded with gateway/core's X.224 decoder. Nothing else is sent; the connection is closed
// before TLS starts.
#include "sessionmgr/service/rdp_probe.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "common/bytes.hpp"
#include "gateway/core/x224.hpp"

namespace enclave::sessionmgr {

namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

int ms_left(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

std::string hex_prefix(ByteSpan bytes) {
  return hex_encode(bytes.first(std::min<std::size_t>(bytes.size(), 16)));
}

const char* failure_code_name(std::uint32_t code) {
  switch (code) {
    case gateway::kSslRequiredByServer:
      return "SSL required";
    case gateway::kSslNotAllowedByServer:
      return "SSL not allowed";
    case gateway::kSslCertNotOnServer:
      return "SSL certificate not on server";
    case gateway::kInconsistentFlags:
      return "inconsistent flags";
    case gateway::kHybridRequiredByServer:
      return "hybrid required";
    case gateway::kSslWithUserAuthRequiredByServer:
      return "SSL with user auth required";
    default:
      return "unknown failure code";
  }
}

std::string protocol_name(std::uint32_t protocol) {
  switch (protocol) {
    case gateway::kProtocolRdp:
      return "PROTOCOL_RDP";
    case gateway::kProtocolSsl:
      return "PROTOCOL_SSL";
    case gateway::kProtocolHybrid:
      return "PROTOCOL_HYBRID";
    case gateway::kProtocolRdstls:
      return "PROTOCOL_RDSTLS";
    case gateway::kProtocolHybridEx:
      return "PROTOCOL_HYBRID_EX";
    case gateway::kProtocolRdsAad:
      return "PROTOCOL_RDSAAD";
    default: {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0x%08x", protocol);
      return buf;
    }
  }
}

// Connects to one resolved address before the deadline; the socket is left non-blocking.
Expected<int> connect_one(const addrinfo& ai, Clock::time_point deadline, const std::string& who) {
  int fd = ::socket(ai.ai_family, ai.ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai.ai_protocol);
  if (fd < 0) return fail(Errc::kIo, who + ": socket: " + std::strerror(errno));
  Fd guard(fd);
  if (::connect(fd, ai.ai_addr, ai.ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      return fail(Errc::kUnavailable, who + ": connect: " + std::strerror(errno));
    }
    pollfd p{fd, POLLOUT, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r == 0) return fail(Errc::kTimeout, who + ": connect timed out");
    if (r < 0) return fail(Errc::kIo, who + ": poll: " + std::strerror(errno));
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(Errc::kUnavailable, who + ": connect: " + std::strerror(err));
  }
  return guard.release();
}

Status send_all(int fd, ByteSpan data, Clock::time_point deadline, const std::string& who) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return fail(Errc::kUnavailable, who + ": send: " + std::strerror(errno));
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, ms_left(deadline)) == 0) {
      return fail(Errc::kTimeout, who + ": sending the X.224 Connection Request timed out");
    }
  }
  return {};
}

// Reads until `want` bytes are in `buf` (or the peer closes, or the deadline passes). Returns
// false on timeout; `closed` tells an orderly close apart.
Expected<bool> read_until(int fd, Bytes& buf, std::size_t want, Clock::time_point deadline,
                          bool& closed, const std::string& who) {
  std::uint8_t chunk[4096];
  while (buf.size() < want) {
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, ms_left(deadline));
    if (r == 0) return false;
    if (r < 0) {
      if (errno == EINTR) continue;
      return fail(Errc::kIo, who + ": poll: " + std::strerror(errno));
    }
    ssize_t n = ::recv(fd, chunk, std::min(sizeof chunk, want - buf.size()), 0);
    if (n == 0) {
      closed = true;
      return true;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      if (errno == ECONNRESET) {
        closed = true;
        return true;
      }
      return fail(Errc::kUnavailable, who + ": recv: " + std::strerror(errno));
    }
    buf.insert(buf.end(), chunk, chunk + n);
  }
  return true;
}

}  // namespace

Status probe_rdp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  const std::string who = "RDP probe of " + host + ":" + std::to_string(port);
  const auto deadline = Clock::now() + timeout;

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    return fail(Errc::kInvalidArgument, who + ": cannot resolve: " + ::gai_strerror(rc));
  }
  std::optional<Error> last;
  int fd = -1;
  for (addrinfo* ai = found; ai != nullptr && fd < 0; ai = ai->ai_next) {
    auto c = connect_one(*ai, deadline, who);
    if (c) {
      fd = *c;
    } else {
      last = c.error();
      if (c.error().code == Errc::kTimeout) break;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    if (last) return Unexpected<Error>{*last};
    return fail(Errc::kUnavailable, who + ": no address");
  }
  Fd guard(fd);

  gateway::ConnectionRequest request;
  request.negotiation = gateway::NegotiationRequest{0, gateway::kProtocolSsl};
  auto encoded = gateway::encode_connection_request(request);
  if (!encoded) {
    return fail(Errc::kInternal, who + ": encoding the request: " + encoded.error().describe());
  }
  ENCLAVE_TRY(send_all(fd, *encoded, deadline, who));

  // The TPKT header first, then as many bytes as it announces.
  Bytes answer;
  bool closed = false;
  auto got = read_until(fd, answer, gateway::kTpktHeaderSize, deadline, closed, who);
  if (!got) return error_of(got);
  if (answer.empty()) {
    if (closed) return fail(Errc::kUnavailable, who + ": closed the connection without answering");
    return fail(Errc::kTimeout,
                who + ": nothing came back within " + std::to_string(timeout.count()) + " ms");
  }
  if (answer[0] != gateway::kTpktVersion) {
    return fail(Errc::kCorrupt,
                who + ": answer is not TPKT (first bytes " + hex_prefix(answer) + ")");
  }
  if (answer.size() < gateway::kTpktHeaderSize) {
    return fail(closed ? Errc::kUnavailable : Errc::kTimeout,
                who + ": answer ended inside the TPKT header (" + hex_prefix(answer) + ")");
  }
  auto size = gateway::tpkt_frame_size(answer);
  if (!size) {
    return fail(Errc::kCorrupt, who + ": answer is not TPKT: " + size.error().describe() +
                                    " (first bytes " + hex_prefix(answer) + ")");
  }
  const std::size_t total = size->value_or(gateway::kTpktHeaderSize);
  got = read_until(fd, answer, total, deadline, closed, who);
  if (!got) return error_of(got);
  if (answer.size() < total) {
    return fail(closed ? Errc::kUnavailable : Errc::kTimeout,
                who + ": answer truncated: " + std::to_string(answer.size()) + " of " +
                    std::to_string(total) + " bytes announced by TPKT");
  }

  auto confirm = gateway::decode_connection_confirm(answer);
  if (!confirm) {
    return fail(Errc::kCorrupt,
                who + ": not an X.224 Connection Confirm: " + confirm.error().describe() +
                    " (bytes " + hex_prefix(answer) + ")");
  }
  if (confirm->failure_code) {
    const std::uint32_t code = *confirm->failure_code;
    return fail(Errc::kUnavailable, who + ": RDP_NEG_FAILURE code " + std::to_string(code) + " (" +
                                        failure_code_name(code) + ")");
  }
  if (!confirm->response) {
    return fail(Errc::kUnavailable,
                who + ": no RDP_NEG_RSP: the host chose legacy RDP security (PROTOCOL_RDP)");
  }
  if (confirm->response->selected_protocol != gateway::kProtocolSsl) {
    return fail(Errc::kUnavailable, who + ": selected protocol " +
                                        protocol_name(confirm->response->selected_protocol) +
                                        ", not PROTOCOL_SSL");
  }
  return {};
}

}  // namespace enclave::sessionmgr
