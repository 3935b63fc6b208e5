#include "tests/support/rdp_script_host.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "common/x509.hpp"
#include "gateway/core/client_info.hpp"
#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "gateway/core/preconnection.hpp"
#include "gateway/core/x224.hpp"

namespace enclave::testing {

namespace gw = enclave::gateway;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr std::uint16_t kIoChannel = 1003;
constexpr std::uint16_t kFirstChannelId = 1004;
constexpr std::uint16_t kHostUserId = 1007;     // what the Attach User Confirm grants
constexpr std::uint16_t kServerChannel = 1002;  // the server's MCS user (pduSource)
// TS_SHARECONTROLHEADER pduType: PDUTYPE_SERVER_REDIR_PKT | TS_PROTOCOL_VERSION.
constexpr std::uint16_t kPduTypeServerRedirect = 0x000A | 0x0010;
constexpr std::uint32_t kLbTargetNetAddress = 0x00000001;  // RedirFlags (2.2.13.1)

void noop_handler(int) {}

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void set16(Bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v);
  b[at + 1] = static_cast<std::uint8_t>(v >> 8);
}

// Waits until fd is readable (or TLS has buffered bytes); false on timeout or stop.
bool wait_readable(int fd, SSL* ssl, Clock::time_point deadline, const std::atomic<bool>* stop) {
  for (;;) {
    if (ssl && SSL_pending(ssl) > 0) return true;
    if (stop && stop->load()) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

enum class ReadStatus { kData, kTimeout, kCloseNotify, kClosed };

// One SSL_read (or plain read when ssl is null) appended to buffer.
ReadStatus read_some(int fd, SSL* ssl, Bytes& buffer, Clock::time_point deadline,
                     const std::atomic<bool>* stop) {
  if (!wait_readable(fd, ssl, deadline, stop)) {
    return (stop && stop->load()) ? ReadStatus::kClosed : ReadStatus::kTimeout;
  }
  std::uint8_t chunk[16 * 1024];
  if (!ssl) {
    ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) return ReadStatus::kClosed;
    buffer.insert(buffer.end(), chunk, chunk + n);
    return ReadStatus::kData;
  }
  int n = SSL_read(ssl, chunk, sizeof chunk);
  if (n > 0) {
    buffer.insert(buffer.end(), chunk, chunk + n);
    return ReadStatus::kData;
  }
  int err = SSL_get_error(ssl, n);
  ERR_clear_error();
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return ReadStatus::kData;
  return err == SSL_ERROR_ZERO_RETURN ? ReadStatus::kCloseNotify : ReadStatus::kClosed;
}

// The next complete PDU (TPKT or fast-path; only TPKT when tpkt_only) from buffer, reading
// more as needed. nullopt on timeout, close, stop or bytes that are not RDP framing.
std::optional<Bytes> read_frame(int fd, SSL* ssl, Bytes& buffer, Clock::time_point deadline,
                                const std::atomic<bool>* stop, bool tpkt_only = false) {
  for (;;) {
    std::optional<std::size_t> size;
    if (tpkt_only) {
      auto r = gw::tpkt_frame_size(buffer);
      if (!r) return std::nullopt;
      size = *r;
    } else {
      auto r = gw::split_frame(buffer);
      if (!r) return std::nullopt;
      if (r->has_value()) size = (*r)->size;
    }
    if (size && *size <= buffer.size()) {
      Bytes frame(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*size));
      buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(*size));
      return frame;
    }
    if (read_some(fd, ssl, buffer, deadline, stop) != ReadStatus::kData) return std::nullopt;
  }
}

bool write_all(int fd, SSL* ssl, ByteSpan bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    if (!ssl) {
      ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<std::size_t>(n);
      continue;
    }
    int n = SSL_write(ssl, bytes.data() + done, static_cast<int>(bytes.size() - done));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

template <class T>
Bytes must(gw::PduResult<T> r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().describe());
  return std::move(r).value();
}

Bytes data_pdu(const gw::DomainPdu& pdu) {
  return must(gw::encode_data_tpdu(must(gw::encode_domain_pdu(pdu), "domain PDU")), "X.224 Data");
}

// The Enhanced Security Server Redirection PDU (MS-RDPBCGR 2.2.13.3.1) as the user data of a
// Send Data Indication on the I/O channel: share control header (pduType
// PDUTYPE_SERVER_REDIR_PKT), pad2Octets, RDP_SERVER_REDIRECTION_PACKET (2.2.13.1) with
// LB_TARGET_NET_ADDRESS, pad1Octet.
Bytes redirection_pdu(const std::string& address) {
  Bytes target = gw::utf8_to_utf16le(address);
  target.push_back(0);
  target.push_back(0);
  Bytes packet;
  put16(packet, 0x0400);  // Flags: SEC_REDIRECTION_PKT
  put16(packet, 0);       // Length, set below
  put32(packet, 0);       // SessionID
  put32(packet, kLbTargetNetAddress);
  put32(packet, static_cast<std::uint32_t>(target.size()));
  packet.insert(packet.end(), target.begin(), target.end());
  set16(packet, 2, static_cast<std::uint16_t>(packet.size()));
  Bytes d;
  put16(d, 0);  // totalLength, set below
  put16(d, kPduTypeServerRedirect);
  put16(d, kServerChannel);
  put16(d, 0);  // pad2Octets
  d.insert(d.end(), packet.begin(), packet.end());
  d.push_back(0);  // pad1Octet
  set16(d, 0, static_cast<std::uint16_t>(d.size()));
  gw::SendDataHeader h;
  h.indication = true;
  h.initiator = kServerChannel;
  h.channel_id = kIoChannel;
  return must(gw::encode_send_data(h, d), "redirection PDU");
}

// A fast-path output PDU (2.2.9.1.2) of `size` bytes: fpOutputHeader (action 0, no flags),
// a 2-byte length, one update (FASTPATH_UPDATETYPE_ORDERS) of filler. The relay never parses
// fast-path contents.
Bytes fastpath_output(std::size_t size) {
  size = std::clamp<std::size_t>(size, 16, 0x7FFF);
  Bytes b(size, 0);
  b[0] = 0x00;
  b[1] = static_cast<std::uint8_t>(0x80 | (size >> 8));
  b[2] = static_cast<std::uint8_t>(size & 0xFF);
  b[3] = 0x00;  // updateHeader: FASTPATH_UPDATETYPE_ORDERS
  set16(b, 4, static_cast<std::uint16_t>(size - 6));
  return b;
}

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};

}  // namespace

void survive_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = noop_handler;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGPIPE, &sa, nullptr);
}

bool ends_with_ultimatum(const Bytes& bytes) {
  return bytes.size() >= kUltimatum.size() &&
         std::equal(kUltimatum.begin(), kUltimatum.end(), bytes.end() - kUltimatum.size());
}

// ---- the host ----

struct RdpScriptHost::Impl {
  ScriptHostOptions options;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  std::uint16_t port = 0;
  std::string pin;
  std::atomic<bool> stopping{false};
  mutable std::mutex mu;
  mutable std::condition_variable changed;
  std::vector<HostSession> sessions;  // guarded by mu
  std::vector<int> open_fds;          // guarded by mu: connections still served
  std::vector<std::thread> threads;   // guarded by mu
  std::thread acceptor;

  void update(std::size_t index, const std::function<void(HostSession&)>& f) {
    {
      std::lock_guard lock(mu);
      f(sessions[index]);
    }
    changed.notify_all();
  }

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{listen_fd, POLLIN, 0}, {wake[0], POLLIN, 0}};
      if (::poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0 || stopping) return;
      int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) continue;
      std::lock_guard lock(mu);
      open_fds.push_back(fd);
      threads.emplace_back([this, fd] {
        serve(fd);
        {
          std::lock_guard inner(mu);
          open_fds.erase(std::remove(open_fds.begin(), open_fds.end(), fd), open_fds.end());
        }
        ::close(fd);
      });
    }
  }

  void serve(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // 1. X.224 Connection Request in plain TCP; answer PROTOCOL_SSL (or refuse).
    Bytes plain;
    auto cr = read_frame(fd, nullptr, plain, Clock::now() + 10s, &stopping, true);
    if (!cr) return;
    auto request = gw::decode_connection_request(*cr);
    gw::ConnectionConfirm confirm;
    const bool ssl = request && request->negotiation &&
                     (request->negotiation->requested_protocols & gw::kProtocolSsl) != 0;
    if (ssl) {
      confirm.response =
          gw::NegotiationResponse{gw::kNegRspExtendedClientDataSupported, gw::kProtocolSsl};
    } else {
      confirm.failure_code = gw::kSslNotAllowedByServer;
    }
    auto cc = gw::encode_connection_confirm(confirm);
    if (!cc || !write_all(fd, nullptr, *cc) || !ssl) return;

    // 2. TLS. A health probe closes here and is not recorded.
    std::unique_ptr<SSL, SslDeleter> tls(SSL_new(ctx.get()));
    SSL_set_fd(tls.get(), fd);
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (SSL_accept(tls.get()) != 1) {
      ERR_clear_error();
      return;
    }
    tv = {0, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::size_t index;
    {
      std::lock_guard lock(mu);
      sessions.emplace_back();
      index = sessions.size() - 1;
    }
    changed.notify_all();
    std::string end;
    try {
      end = script(fd, tls.get(), index);
    } catch (const std::exception& e) {
      end = e.what();
    }
    update(index, [&](HostSession& s) {
      s.ended = true;
      s.end = end;
    });
  }

  // The RDP connection sequence after TLS, then the scenario. Returns why it stopped.
  std::string script(int fd, SSL* ssl, std::size_t index) {
    Bytes inbox;
    const auto forever = Clock::time_point::max();
    auto ci = read_frame(fd, ssl, inbox, Clock::now() + 10s, &stopping, true);
    if (!ci) return "no MCS Connect-Initial";
    auto client = gw::decode_client_connect_initial(*ci);
    if (!client) return "bad Connect-Initial: " + client.error().describe();
    gw::ServerConnectData server;
    server.client_requested_protocols = gw::kProtocolSsl;
    server.io_channel_id = kIoChannel;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < client->channels.size(); ++i) {
      server.channel_ids.push_back(static_cast<std::uint16_t>(kFirstChannelId + i));
      names.push_back(client->channels[i].name);
    }
    update(index, [&](HostSession& s) { s.channels = names; });
    Bytes blocks = must(gw::encode_server_data_blocks(server), "server data blocks");
    if (!write_all(fd, ssl, must(gw::encode_connect_response({}, blocks), "Connect-Response"))) {
      return "write failed (Connect-Response)";
    }

    bool info = false;
    for (;;) {
      auto frame = read_frame(fd, ssl, inbox, forever, &stopping);
      if (!frame) return stopping ? "stopped" : "the peer closed the connection";
      const bool fastpath = ((*frame)[0] & gw::kFastPathActionMask) == 0;
      std::optional<gw::DomainPdu> pdu;
      if (!fastpath) {
        if (auto d = gw::decode_domain_pdu_in_tpkt(*frame)) pdu = *d;
      }
      if (info) {
        update(index, [&](HostSession& s) { s.from_client += frame->size(); });
        continue;
      }
      if (!pdu) continue;
      switch (pdu->type) {
        case gw::DomainPduType::kAttachUserRequest: {
          gw::DomainPdu r;
          r.type = gw::DomainPduType::kAttachUserConfirm;
          r.result = 0;
          r.initiator = kHostUserId;
          if (!write_all(fd, ssl, data_pdu(r))) return "write failed (Attach User Confirm)";
          break;
        }
        case gw::DomainPduType::kChannelJoinRequest: {
          gw::DomainPdu r;
          r.type = gw::DomainPduType::kChannelJoinConfirm;
          r.result = 0;
          r.initiator = pdu->initiator;
          r.channel_id = pdu->channel_id;
          r.joined_channel_id = pdu->channel_id;
          if (!write_all(fd, ssl, data_pdu(r))) return "write failed (Channel Join Confirm)";
          break;
        }
        case gw::DomainPduType::kSendDataRequest: {
          if (pdu->channel_id != kIoChannel) break;
          auto decoded = gw::decode_client_info(pdu->user_data);
          if (!decoded) return "bad Client Info PDU: " + decoded.error().describe();
          info = true;
          update(index, [&](HostSession& s) {
            s.client_info = true;
            s.domain = decoded->domain;
            s.user = decoded->user_name;
            s.password = decoded->password;
          });
          if (options.scenario == HostScenario::kRedirect) {
            if (!write_all(fd, ssl, redirection_pdu(options.redirect_address))) {
              return "write failed (redirection)";
            }
            update(index, [](HostSession& s) { s.redirect_sent = true; });
          } else if (options.scenario == HostScenario::kStream) {
            return stream(fd, ssl, index);
          }
          break;
        }
        default:
          break;
      }
    }
  }

  std::string stream(int fd, SSL* ssl, std::size_t index) {
    const Bytes pdu = fastpath_output(options.stream_pdu_size);
    while (!stopping) {
      if (!write_all(fd, ssl, pdu)) return "stream ended: the peer stopped taking data";
      update(index, [&](HostSession& s) { s.streamed += pdu.size(); });
    }
    return "stopped";
  }
};

RdpScriptHost::RdpScriptHost(const std::filesystem::path& dir, ScriptHostOptions options)
    : impl_(std::make_unique<Impl>()) {
  survive_sigpipe();
  Impl& m = *impl_;
  m.options = std::move(options);
  const auto cert = dir / "script-host.crt";
  const auto key = dir / "script-host.key";
  if (auto made = x509::generate_self_signed(cert, key, "script-host.test", 30, true); !made) {
    throw std::runtime_error("script host certificate: " + made.error().message);
  }
  auto pin = x509::spki_sha256_hex_of_file(cert);
  if (!pin) throw std::runtime_error("script host pin: " + pin.error().message);
  m.pin = *pin;
  m.ctx.reset(SSL_CTX_new(TLS_server_method()));
  if (!m.ctx || SSL_CTX_use_certificate_file(m.ctx.get(), cert.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(m.ctx.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error("script host TLS context");
  }
  SSL_CTX_set_min_proto_version(m.ctx.get(), TLS1_2_VERSION);
  m.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(m.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t n = sizeof a;
  if (::bind(m.listen_fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(m.listen_fd, 16) != 0 ||
      ::getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&a), &n) != 0 ||
      ::pipe2(m.wake, O_CLOEXEC) != 0) {
    throw std::runtime_error("script host listener");
  }
  m.port = ntohs(a.sin_port);
  m.acceptor = std::thread([&m] { m.accept_loop(); });
}

RdpScriptHost::~RdpScriptHost() {
  Impl& m = *impl_;
  m.stopping = true;
  char b = 1;
  if (::write(m.wake[1], &b, 1) != 1) {
    // The pipe cannot be full: one byte is ever written.
  }
  if (m.acceptor.joinable()) m.acceptor.join();
  drop_connections();
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(m.mu);
    threads.swap(m.threads);
  }
  for (auto& t : threads) t.join();
  ::close(m.listen_fd);
  ::close(m.wake[0]);
  ::close(m.wake[1]);
}

std::uint16_t RdpScriptHost::port() const {
  return impl_->port;
}

const std::string& RdpScriptHost::pin_sha256() const {
  return impl_->pin;
}

std::vector<HostSession> RdpScriptHost::sessions() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sessions;
}

bool RdpScriptHost::wait_for(const std::function<bool(const std::vector<HostSession>&)>& pred,
                             std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->changed.wait_for(lock, timeout, [&] { return pred(impl_->sessions); });
}

void RdpScriptHost::drop_connections() {
  std::lock_guard lock(impl_->mu);
  for (int fd : impl_->open_fds) ::shutdown(fd, SHUT_RDWR);
}

// ---- the raw client ----

struct RdpRawClient::Impl {
  int fd = -1;
  std::unique_ptr<SSL_CTX, SslCtxDeleter> ctx;
  std::unique_ptr<SSL, SslDeleter> ssl;
  Bytes inbox;  // read but not yet consumed
  std::uint16_t user_id = 0;
  std::uint16_t io_channel = 0;

  std::optional<Bytes> next(const char* what, std::string& error) {
    auto f = read_frame(fd, ssl.get(), inbox, Clock::now() + 10s, nullptr);
    if (!f) error = std::string("no ") + what;
    return f;
  }
};

RdpRawClient::RdpRawClient() : impl_(std::make_unique<Impl>()) {
  survive_sigpipe();
}

RdpRawClient::~RdpRawClient() {
  close();
}

std::optional<std::string> RdpRawClient::connect(std::uint16_t port, const std::string& ticket,
                                                 const RawClientOptions& options) {
  Impl& m = *impl_;
  m.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (options.receive_buffer > 0) {
    ::setsockopt(m.fd, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer,
                 sizeof options.receive_buffer);
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(m.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return "TCP connect";
  int one = 1;
  ::setsockopt(m.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

  // Preconnection PDU with the ticket and the X.224 Connection Request, then the Confirm.
  gw::PreconnectionPdu pcb;
  pcb.version = gw::kPreconnectionVersion2;
  pcb.blob = ticket;
  gw::ConnectionRequest cr;
  cr.negotiation = gw::NegotiationRequest{0, gw::kProtocolSsl};
  Bytes out = must(gw::encode_preconnection(pcb), "preconnection");
  Bytes request = must(gw::encode_connection_request(cr), "X.224 CR");
  out.insert(out.end(), request.begin(), request.end());
  if (!write_all(m.fd, nullptr, out)) return "writing the preconnection PDU";
  Bytes plain;
  auto cc = read_frame(m.fd, nullptr, plain, Clock::now() + 10s, nullptr, true);
  if (!cc) return "no X.224 Connection Confirm";
  auto confirm = gw::decode_connection_confirm(*cc);
  if (!confirm || !confirm->response) return "X.224 Connection Confirm without PROTOCOL_SSL";

  m.ctx.reset(SSL_CTX_new(TLS_client_method()));
  m.ssl.reset(SSL_new(m.ctx.get()));
  SSL_set_fd(m.ssl.get(), m.fd);
  if (SSL_connect(m.ssl.get()) != 1) {
    ERR_clear_error();
    return "TLS with the gateway";
  }

  // MCS Connect-Initial with the client data blocks, then the Connect-Response.
  gw::ClientConnectData data;
  for (const auto& name : options.channels) {
    gw::ClientChannel ch;
    ch.name = name;
    ch.options = 0x80000000;  // CHANNEL_OPTION_INITIALIZED
    data.channels.push_back(ch);
  }
  data.cluster_flags = 0x0000000D;  // REDIRECTION_SUPPORTED | version 3, as xfreerdp sends
  Bytes blocks = must(gw::encode_client_data_blocks(data), "client data blocks");
  if (!send(must(gw::encode_connect_initial({}, blocks), "Connect-Initial"))) {
    return "writing the Connect-Initial";
  }
  std::string error;
  auto response = m.next("MCS Connect-Response", error);
  if (!response) return error;
  auto server = gw::decode_server_connect_response(*response);
  if (!server) return "bad Connect-Response: " + server.error().describe();
  m.io_channel = server->io_channel_id;

  // Erect Domain, Attach User, then a join per channel: user, I/O, each static channel.
  gw::DomainPdu erect;
  erect.type = gw::DomainPduType::kErectDomainRequest;
  gw::DomainPdu attach;
  attach.type = gw::DomainPduType::kAttachUserRequest;
  if (!send(data_pdu(erect)) || !send(data_pdu(attach))) return "writing Attach User Request";
  auto attached = m.next("Attach User Confirm", error);
  if (!attached) return error;
  auto confirm_user = gw::decode_domain_pdu_in_tpkt(*attached);
  if (!confirm_user || confirm_user->type != gw::DomainPduType::kAttachUserConfirm ||
      !confirm_user->initiator) {
    return "not an Attach User Confirm";
  }
  m.user_id = *confirm_user->initiator;
  std::vector<std::uint16_t> joins{m.user_id, m.io_channel};
  for (auto id : server->channel_ids) {
    if (id != 0) joins.push_back(id);
  }
  for (auto id : joins) {
    gw::DomainPdu join;
    join.type = gw::DomainPduType::kChannelJoinRequest;
    join.initiator = m.user_id;
    join.channel_id = id;
    if (!send(data_pdu(join))) return "writing Channel Join Request";
    auto joined = m.next("Channel Join Confirm", error);
    if (!joined) return error;
    auto j = gw::decode_domain_pdu_in_tpkt(*joined);
    if (!j || j->type != gw::DomainPduType::kChannelJoinConfirm || j->result != 0) {
      return "channel " + std::to_string(id) + " not joined";
    }
  }

  // The Client Info PDU with the analyst's own (typed) credentials.
  gw::ClientInfo info;
  info.flags |= gw::kInfoAutologon;
  info.user_name = options.user;
  info.password = options.password;
  gw::SendDataHeader h;
  h.indication = false;
  h.initiator = m.user_id;
  h.channel_id = m.io_channel;
  Bytes user_data = must(gw::encode_client_info(info), "Client Info");
  if (!send(must(gw::encode_send_data(h, user_data), "Client Info PDU"))) {
    return "writing the Client Info PDU";
  }
  return std::nullopt;
}

std::uint16_t RdpRawClient::user_id() const {
  return impl_->user_id;
}

std::uint16_t RdpRawClient::io_channel() const {
  return impl_->io_channel;
}

bool RdpRawClient::send(ByteSpan bytes) {
  return impl_->ssl && write_all(impl_->fd, impl_->ssl.get(), bytes);
}

bool RdpRawClient::send_input() {
  // fpInputHeader: FASTPATH_INPUT_ACTION_FASTPATH, numEvents 1; length 3; one
  // FASTPATH_INPUT_EVENT_SYNC (eventCode 3 << 5) with no toggle flags.
  const Bytes pdu{0x04, 0x03, 0x60};
  return send(pdu);
}

RdpRawClient::Ending RdpRawClient::read_until_closed(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  Ending e;
  e.received = std::move(m.inbox);
  m.inbox.clear();
  if (!m.ssl) {
    e.closed = true;
    return e;
  }
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto r = read_some(m.fd, m.ssl.get(), e.received, deadline, nullptr);
    if (r == ReadStatus::kData) continue;
    if (r == ReadStatus::kTimeout) return e;
    e.close_notify = r == ReadStatus::kCloseNotify;
    if (e.close_notify) {
      // After close_notify the TCP connection must end too.
      std::uint8_t b;
      pollfd p{m.fd, POLLIN, 0};
      e.closed = ::poll(&p, 1, 5000) > 0 && ::recv(m.fd, &b, 1, MSG_DONTWAIT) <= 0;
    } else {
      e.closed = true;
    }
    return e;
  }
}

bool RdpRawClient::still_open(std::chrono::milliseconds wait) {
  Impl& m = *impl_;
  if (!m.ssl) return false;
  auto r = read_some(m.fd, m.ssl.get(), m.inbox, Clock::now() + wait, nullptr);
  return r == ReadStatus::kData || r == ReadStatus::kTimeout;
}

void RdpRawClient::drain_and_close() {
  Impl& m = *impl_;
  std::array<std::uint8_t, 64 * 1024> sink;
  while (m.fd >= 0 && ::recv(m.fd, sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
  }
  close();
}

void RdpRawClient::close() {
  Impl& m = *impl_;
  m.ssl.reset();
  m.ctx.reset();
  if (m.fd >= 0) ::close(m.fd);
  m.fd = -1;
}

}  // namespace enclave::testing
