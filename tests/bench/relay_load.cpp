// relay_load: load for enclave-gatewayd's RDP relay, and HAProxy as its peer.
//
//   relay_load sink --dir DIR [--rdp-ports 6] [--expect-user NAME]
//       the synthetic desktop host. Makes a self-signed P-256 certificate in DIR, prints
//       {"pin", "rdp_ports", "tls_port"} on one line, then serves until SIGTERM (and prints its
//       counters; DIR/sink.env holds the same as shell assignments). An RDP port answers the X.224
//       Connection Request with a Connection Confirm selecting PROTOCOL_SSL, does TLS, then answers
//       the connection sequence a host sends (MCS Connect-Response with SC_CORE, SC_NET (I/O
//       channel 1003 and one id per client channel) and SC_SECURITY without encryption, Attach User
//       Confirm, Channel Join Confirms, and after the Client Info PDU a licensing PDU
//       (STATUS_VALID_CLIENT) and a Demand Active). The TLS port speaks TLS at once (HAProxy's
//       backend, the direct baseline). Data phase, both ports: every fast-path PDU is answered by
//       one of the same size (echo), until a PDU whose first payload byte is 'S': from then on the
//       sink streams 16 KiB fast-path PDUs as fast as TCP takes them (source). Several RDP ports
//       because sessions.toml caps a static host's capacity at 1,000.
//   relay_load throughput --gateway H:P --gateway-pid PID --haproxy H:P --haproxy-pid PID
//                         --sessiond SOCK [--streams 4] [--seconds 8] [--rounds 2]
//       source mode through each relay in turn; MB/s and MB per CPU-second of the relay
//       process (utime + stime from /proc/PID/stat).
//   relay_load latency --gateway H:P --haproxy H:P --direct H:P --sessiond SOCK
//                      [--pings 20000] [--size 64] [--rounds 10]
//       ping-pong of one fast-path PDU (client -> host -> client echo), the three paths
//       interleaved round by round; RTT percentiles and the added latency per direction,
//       (RTT_via - RTT_direct) / 2, at each percentile.
//   relay_load idle --gateway H:P --gateway-pid PID --haproxy H:P --haproxy-pid PID
//                   --sessiond SOCK [--sessions 5000] [--hold 20]
//       opens that many sessions through each relay (a ticket each through the gateway, users
//       user0001...), keeps them idle with a 16-byte input PDU every 10 s, reports the relay's
//       VmRSS growth per session, then checks that every session still answers an echo.
//   relay_load redeem --gateway H:P --sessiond SOCK [--sessions 200]
//       sequential sessions: the time from sending the preconnection PDU and the X.224
//       Connection Request to receiving the Connection Confirm (the ticket is redeemed and the
//       desktop contacted in between), and to the end of the connection sequence.
//   relay_load audit-summary --file F [--actor-prefix P]
//       percentiles of details.ticket_to_first_byte_us over the gateway.session.start events
//       in F (the output of `enclave-audit query --type gateway.session.start --json`).
//   relay_load summary --dir DIR
//       a human summary of the JSON files bench.sh writes (throughput.json, latency.json,
//       redeem.json, ttfb.json, idle.json).
//   relay_load free-ports N
//       N free TCP ports on 127.0.0.1, one per line.
// Output: one JSON object on stdout (the sink: one at start, one at exit).
#include <sys/resource.h>
#include <unistd.h>

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/ipc/client.hpp"
#include "common/x509.hpp"
#include "gateway/core/client_info.hpp"
#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "gateway/core/preconnection.hpp"
#include "gateway/core/x224.hpp"
#include "tests/bench/bench_support.hpp"

namespace {

namespace asio = boost::asio;
namespace gw = enclave::gateway;
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TlsStream = asio::ssl::stream<tcp::socket>;
using enclave::Bytes;
using enclave::ByteSpan;

// The ids the sink assigns (what Windows and FreeRDP servers use).
constexpr std::uint16_t kIoChannel = 1003;
constexpr std::uint16_t kFirstChannel = 1004;
constexpr std::uint16_t kServerUser = 1002;
constexpr std::uint16_t kClientUser = 1007;
// Fast-path first bytes: client input with one event; server output.
constexpr std::uint8_t kFastPathInput = 0x04;
constexpr std::uint8_t kFastPathOutput = 0x00;
// The first payload byte of a client PDU: a ping to echo, or the switch to source mode.
constexpr std::uint8_t kCmdPing = 'P';
constexpr std::uint8_t kCmdSource = 'S';
constexpr std::size_t kSourcePdu = 16 * 1024;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T must(gw::PduResult<T> r, const char* what) {
  if (!r) throw Failure(std::string(what) + ": " + r.error().describe());
  return std::move(r).value();
}

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v));
  put16(b, static_cast<std::uint16_t>(v >> 16));
}
void append(Bytes& to, const Bytes& from) {
  to.insert(to.end(), from.begin(), from.end());
}

// A fast-path PDU of `size` bytes (4 .. 0x7FFF), 2-byte length form.
Bytes fastpath(std::size_t size, std::uint8_t first, std::uint8_t command) {
  Bytes b(size, 0x5A);
  b[0] = first;
  b[1] = static_cast<std::uint8_t>(0x80 | (size >> 8));
  b[2] = static_cast<std::uint8_t>(size & 0xFF);
  b[3] = command;
  return b;
}
bool is_fastpath(ByteSpan pdu) {
  return (pdu[0] & gw::kFastPathActionMask) == gw::kFastPathActionFastPath;
}

Bytes domain_pdu(const gw::DomainPdu& pdu) {
  return must(gw::encode_data_tpdu(must(gw::encode_domain_pdu(pdu), "MCS")), "X.224 Data");
}

// Reads whole PDUs (TPKT or fast-path) from a stream. The span returned stays valid until
// the next call.
class PduReader {
 public:
  template <class Stream>
  awaitable<ByteSpan> next(Stream& stream) {
    for (;;) {
      if (start_ < buf_.size()) {
        ByteSpan rest(buf_.data() + start_, buf_.size() - start_);
        auto frame = gw::split_frame(rest);
        if (!frame) throw Failure("framing: " + frame.error().describe());
        if (frame->has_value() && (*frame)->size <= rest.size()) {
          start_ += (*frame)->size;
          co_return rest.first((*frame)->size);
        }
      }
      if (start_ > 0) {
        buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(start_));
        start_ = 0;
      }
      const std::size_t old = buf_.size();
      buf_.resize(old + 16384);
      std::size_t n =
          co_await stream.async_read_some(asio::buffer(buf_.data() + old, 16384), use_awaitable);
      buf_.resize(old + n);
    }
  }
  bool empty() const { return start_ == buf_.size(); }

 private:
  Bytes buf_;
  std::size_t start_ = 0;
};

void no_delay(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
}

void raise_nofile() {
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
}

tcp::endpoint parse_endpoint(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw Failure("not HOST:PORT: " + text);
  return {asio::ip::make_address(text.substr(0, colon)),
          static_cast<std::uint16_t>(std::stoi(text.substr(colon + 1)))};
}

// ---- /proc ----

using enclave::bench::cpu_times;
using enclave::bench::CpuTimes;

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  throw Failure("no VmRSS for pid " + std::to_string(pid));
}

nlohmann::json percentiles(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    if (v.empty()) return 0.0;
    return v[static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size() - 1))];
  };
  return {{"n", v.size()},  {"p50", pct(50)},    {"p90", pct(90)},
          {"p99", pct(99)}, {"p999", pct(99.9)}, {"max", v.empty() ? 0.0 : v.back()}};
}

// ---- the sink ----

struct SinkCounters {
  std::uint64_t rdp_sessions = 0;  // reached the data phase through an RDP port
  std::uint64_t tls_sessions = 0;  // reached the data phase through the TLS port
  std::uint64_t probes = 0;        // X.224 only (the session manager's health probe)
  std::uint64_t errors = 0;
  std::uint64_t credentials_ok = 0;  // Client Info carried the expected (injected) user
  std::uint64_t credentials_bad = 0;
  std::uint64_t open = 0;
  std::uint64_t max_open = 0;
};

class Sink {
 public:
  Sink(asio::io_context& io, asio::ssl::context& tls, std::string expect_user)
      : io_(io), tls_(tls), expect_user_(std::move(expect_user)) {}

  awaitable<void> accept(tcp::acceptor& acceptor, bool rdp) {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) continue;
      asio::co_spawn(io_, session(std::move(socket), rdp), asio::detached);
    }
  }

  const SinkCounters& counters() const { return c_; }

 private:
  awaitable<void> session(tcp::socket socket, bool rdp) {
    no_delay(socket);
    c_.max_open = std::max(c_.max_open, ++c_.open);
    bool tls_started = false;
    try {
      auto stream = std::make_unique<TlsStream>(std::move(socket), tls_);
      if (rdp) {
        PduReader plain;
        ByteSpan cr = co_await plain.next(stream->next_layer());
        auto request = must(gw::decode_connection_request(cr), "X.224 Connection Request");
        if (!request.negotiation ||
            (request.negotiation->requested_protocols & gw::kProtocolSsl) == 0) {
          throw Failure("client offers no TLS");
        }
        gw::ConnectionConfirm cc;
        cc.response =
            gw::NegotiationResponse{gw::kNegRspExtendedClientDataSupported, gw::kProtocolSsl};
        co_await asio::async_write(stream->next_layer(),
                                   asio::buffer(must(gw::encode_connection_confirm(cc), "CC")),
                                   use_awaitable);
        boost::system::error_code ec;
        co_await stream->async_handshake(asio::ssl::stream_base::server,
                                         asio::redirect_error(use_awaitable, ec));
        if (ec) {
          c_.probes++;  // the health probe closes after the confirm
          c_.open--;
          co_return;
        }
        tls_started = true;
        PduReader in;
        co_await connection_sequence(*stream, in);
        c_.rdp_sessions++;
        co_await data_phase(*stream, in);
      } else {
        co_await stream->async_handshake(asio::ssl::stream_base::server, use_awaitable);
        tls_started = true;
        c_.tls_sessions++;
        PduReader in;
        co_await data_phase(*stream, in);
      }
    } catch (const boost::system::system_error&) {
      // The peer went away: the normal end of a session.
      if (!tls_started) c_.errors++;
    } catch (const std::exception& e) {
      c_.errors++;
      std::cerr << "sink: " << e.what() << "\n";
    }
    c_.open--;
  }

  // The host's side of MCS, up to and including the Client Info PDU.
  awaitable<void> connection_sequence(TlsStream& s, PduReader& in) {
    ByteSpan ci = co_await in.next(s);
    auto client = must(gw::decode_client_connect_initial(ci), "Connect-Initial");
    gw::ServerConnectData server;
    server.client_requested_protocols = gw::kProtocolSsl;
    server.early_capability_flags = 0;
    server.io_channel_id = kIoChannel;
    for (std::size_t i = 0; i < client.channels.size(); ++i) {
      server.channel_ids.push_back(static_cast<std::uint16_t>(kFirstChannel + i));
    }
    Bytes response = must(
        gw::encode_connect_response(gw::ConnectResponse{},
                                    must(gw::encode_server_data_blocks(server), "server blocks")),
        "Connect-Response");
    co_await asio::async_write(s, asio::buffer(response), use_awaitable);
    for (;;) {
      ByteSpan pdu = co_await in.next(s);
      if (is_fastpath(pdu)) throw Failure("fast-path PDU before the Client Info PDU");
      auto d = must(gw::decode_domain_pdu_in_tpkt(pdu), "MCS domain PDU");
      gw::DomainPdu reply;
      switch (d.type) {
        case gw::DomainPduType::kErectDomainRequest:
          continue;
        case gw::DomainPduType::kAttachUserRequest:
          reply.type = gw::DomainPduType::kAttachUserConfirm;
          reply.result = 0;
          reply.initiator = kClientUser;
          co_await asio::async_write(s, asio::buffer(domain_pdu(reply)), use_awaitable);
          continue;
        case gw::DomainPduType::kChannelJoinRequest:
          reply.type = gw::DomainPduType::kChannelJoinConfirm;
          reply.result = 0;
          reply.initiator = d.initiator;
          reply.channel_id = d.channel_id;
          reply.joined_channel_id = d.channel_id;
          co_await asio::async_write(s, asio::buffer(domain_pdu(reply)), use_awaitable);
          continue;
        case gw::DomainPduType::kSendDataRequest: {
          if (d.channel_id != kIoChannel) continue;
          auto info = must(gw::decode_client_info(d.user_data), "Client Info PDU");
          if (expect_user_.empty() || info.user_name == expect_user_) {
            c_.credentials_ok++;
          } else {
            c_.credentials_bad++;
          }
          Bytes out = send_indication(license_valid_client());
          append(out, send_indication(demand_active()));
          co_await asio::async_write(s, asio::buffer(out), use_awaitable);
          co_return;
        }
        case gw::DomainPduType::kDisconnectProviderUltimatum:
          throw boost::system::system_error(asio::error::eof);
        default:
          throw Failure(std::string("unexpected ") + gw::domain_pdu_name(d.type));
      }
    }
  }

  static Bytes send_indication(const Bytes& user_data) {
    return must(gw::encode_send_data(gw::SendDataHeader{true, kServerUser, kIoChannel}, user_data),
                "Send Data Indication");
  }

  // License Error PDU, STATUS_VALID_CLIENT, with its security header (MS-RDPBCGR 2.2.1.12).
  static Bytes license_valid_client() {
    Bytes b;
    put16(b, gw::kSecLicensePkt);
    put16(b, 0);
    b.insert(b.end(), {0xFF, 0x03, 0x10, 0x00});  // ERROR_ALERT, version 3, wMsgSize 16
    put32(b, 0x00000007);                         // STATUS_VALID_CLIENT
    put32(b, 0x00000002);                         // ST_NO_TRANSITION
    put16(b, 0x0004);                             // BB_ERROR_BLOB
    put16(b, 0);
    return b;
  }

  // A Demand Active PDU without capability sets (MS-RDPBCGR 2.2.1.13.1).
  static Bytes demand_active() {
    Bytes b;
    put16(b, 6 + 20);  // totalLength
    put16(b, 0x11);    // PDUTYPE_DEMANDACTIVEPDU | TS_PROTOCOL_VERSION
    put16(b, kServerUser);
    put32(b, 0x000103EA);  // shareId
    put16(b, 4);           // lengthSourceDescriptor
    put16(b, 4);           // lengthCombinedCapabilities
    b.insert(b.end(), {'R', 'D', 'P', 0});
    put16(b, 0);  // numberCapabilities
    put16(b, 0);  // pad2Octets
    put32(b, 0);  // sessionId
    return b;
  }

  awaitable<void> data_phase(TlsStream& s, PduReader& in) {
    for (;;) {
      ByteSpan pdu = co_await in.next(s);
      if (!is_fastpath(pdu)) continue;  // slow-path in the data phase: not answered
      if (pdu.size() >= 4 && pdu[3] == kCmdSource) {
        Bytes block;
        for (int i = 0; i < 4; ++i) append(block, fastpath(kSourcePdu, kFastPathOutput, 'D'));
        for (;;) co_await asio::async_write(s, asio::buffer(block), use_awaitable);
      }
      Bytes echo(pdu.begin(), pdu.end());
      echo[0] = kFastPathOutput;
      co_await asio::async_write(s, asio::buffer(echo), use_awaitable);
    }
  }

  asio::io_context& io_;
  asio::ssl::context& tls_;
  std::string expect_user_;
  SinkCounters c_;
};

int run_sink(const std::filesystem::path& dir, int rdp_ports, const std::string& expect_user) {
  raise_nofile();
  std::filesystem::create_directories(dir);
  const auto cert = dir / "sink.crt", key = dir / "sink.key";
  if (auto made = enclave::x509::generate_self_signed(cert, key, "bench-desktop"); !made) {
    std::cerr << made.error().describe() << "\n";
    return 2;
  }
  auto pin = enclave::x509::spki_sha256_hex_of_file(cert);
  if (!pin) {
    std::cerr << pin.error().describe() << "\n";
    return 2;
  }
  asio::io_context io(1);
  asio::ssl::context tls(asio::ssl::context::tls_server);
  tls.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                  asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                  asio::ssl::context::no_tlsv1_1);
  tls.use_certificate_chain_file(cert.string());
  tls.use_private_key_file(key.string(), asio::ssl::context::pem);
  Sink sink(io, tls, expect_user);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  nlohmann::json ports = nlohmann::json::array();
  const auto loopback = asio::ip::make_address("127.0.0.1");
  for (int i = 0; i <= rdp_ports; ++i) {
    auto a = std::make_unique<tcp::acceptor>(io, tcp::endpoint(loopback, 0));
    a->listen(asio::socket_base::max_listen_connections);
    if (i < rdp_ports) ports.push_back(a->local_endpoint().port());
    asio::co_spawn(io, sink.accept(*a, i < rdp_ports), asio::detached);
    acceptors.push_back(std::move(a));
  }
  const auto tls_port = acceptors.back()->local_endpoint().port();
  {
    // For scripts: shell assignments, written whole before the JSON line announces them.
    std::ofstream env(dir / "sink.env.tmp");
    env << "pin=" << *pin << "\ntls_port=" << tls_port << "\nrdp_ports=\"";
    for (std::size_t i = 0; i < ports.size(); ++i) env << (i ? " " : "") << ports[i].get<int>();
    env << "\"\n";
  }
  std::filesystem::rename(dir / "sink.env.tmp", dir / "sink.env");
  std::cout << nlohmann::json{{"pin", *pin}, {"rdp_ports", ports}, {"tls_port", tls_port}}.dump()
            << std::endl;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code, int) { io.stop(); });
  io.run();
  const auto& c = sink.counters();
  std::cout << nlohmann::json{{"sink",
                               {{"rdp_sessions", c.rdp_sessions},
                                {"tls_sessions", c.tls_sessions},
                                {"probes", c.probes},
                                {"errors", c.errors},
                                {"credentials_injected_ok", c.credentials_ok},
                                {"credentials_unexpected", c.credentials_bad},
                                {"max_open", c.max_open}}}}
                   .dump()
            << std::endl;
  return 0;
}

// ---- clients ----

struct Target {
  std::string name;  // "gateway", "haproxy", "direct"
  bool rdp = false;  // through the gateway: preconnection, X.224 and MCS first
  tcp::endpoint endpoint;
  int pid = 0;  // the relay process, for CPU and memory
};

struct Session {
  Session(asio::io_context& io, asio::ssl::context& tls) : stream(io, tls) {}
  TlsStream stream;
  PduReader in;
  bool alive = true;
  double cr_to_cc_us = 0;  // gateway: preconnection + CR sent -> CC received
  double open_us = 0;      // connect -> data phase
  std::string cipher;
  void close() {
    alive = false;
    boost::system::error_code ec;
    stream.lowest_layer().close(ec);
  }
};

class Tickets {
 public:
  Tickets(std::string socket, std::string compartment)
      : socket_(std::move(socket)), compartment_(std::move(compartment)) {}

  nlohmann::json params(const std::string& user) const {
    return {{"user", user},
            {"device", "bench-kiosk"},
            {"source", "127.0.0.1"},
            {"compartment", compartment_}};
  }

  std::string issue(const std::string& user) {
    connect();
    auto r = client_->call("ticket.issue", params(user));
    if (!r) throw Failure("ticket.issue for " + user + ": " + r.error().describe());
    return r->at("ticket").get<std::string>();
  }

  // Many at once, `window` requests in flight on one connection. Empty string: refused.
  std::vector<std::string> issue_many(const std::vector<std::string>& users, std::size_t window,
                                      std::size_t& refused, std::string& first_error) {
    connect();
    std::vector<std::string> out(users.size());
    std::map<std::uint64_t, std::size_t> index_of;
    std::size_t next = 0, done = 0;
    while (done < users.size()) {
      while (next < users.size() && index_of.size() < window) {
        auto id = client_->send("ticket.issue", params(users[next]));
        if (!id) throw Failure("ticket.issue: " + id.error().describe());
        index_of[*id] = next++;
      }
      auto r = client_->receive();
      if (!r) throw Failure("ticket.issue: " + r.error().describe());
      auto it = index_of.find(r->id);
      if (it == index_of.end()) throw Failure("ticket.issue: unexpected response id");
      if (r->ok) {
        out[it->second] = r->result.at("ticket").get<std::string>();
      } else {
        if (refused++ == 0) first_error = r->message;
      }
      index_of.erase(it);
      ++done;
    }
    return out;
  }

 private:
  void connect() {
    if (client_) return;
    auto c = enclave::ipc::Client::connect(socket_);
    if (!c) throw Failure("sessiond " + socket_ + ": " + c.error().describe());
    client_ = std::make_unique<enclave::ipc::Client>(std::move(c).value());
  }
  std::string socket_, compartment_;
  std::unique_ptr<enclave::ipc::Client> client_;
};

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

// The client's MCS connection sequence through the gateway, up to the host's Demand Active.
awaitable<void> client_connection_sequence(Session& c, const std::string& user) {
  gw::ClientConnectData data;
  data.version = 0x0008000C;
  data.desktop_width = 1920;
  data.desktop_height = 1080;
  data.encryption_methods = 0;
  constexpr std::uint32_t kOptions = 0x80000000 | 0x40000000 | 0x00800000;
  for (const char* name : {"cliprdr", "rdpdr", "rdpsnd", "drdynvc"}) {
    gw::ClientChannel ch;
    ch.name = name;
    ch.options = kOptions;
    data.channels.push_back(ch);
  }
  data.cluster_flags = gw::kClusterRedirectionSupported | 0x0C;
  Bytes ci =
      must(gw::encode_connect_initial(gw::ConnectInitial{},
                                      must(gw::encode_client_data_blocks(data), "client blocks")),
           "Connect-Initial");
  co_await asio::async_write(c.stream, asio::buffer(ci), use_awaitable);
  ByteSpan resp = co_await c.in.next(c.stream);
  auto server = must(gw::decode_server_connect_response(resp), "Connect-Response");

  gw::DomainPdu erect;
  erect.type = gw::DomainPduType::kErectDomainRequest;
  gw::DomainPdu attach;
  attach.type = gw::DomainPduType::kAttachUserRequest;
  Bytes out = domain_pdu(erect);
  append(out, domain_pdu(attach));
  co_await asio::async_write(c.stream, asio::buffer(out), use_awaitable);
  auto confirm = must(gw::decode_domain_pdu_in_tpkt(co_await c.in.next(c.stream)), "Attach User");
  if (confirm.type != gw::DomainPduType::kAttachUserConfirm || confirm.result != 0 ||
      !confirm.initiator) {
    throw Failure("no Attach User Confirm");
  }
  const std::uint16_t user_id = *confirm.initiator;
  std::vector<std::uint16_t> joins{user_id, server.io_channel_id};
  for (auto id : server.channel_ids) {
    if (id != 0) joins.push_back(id);
  }
  for (auto id : joins) {
    gw::DomainPdu join;
    join.type = gw::DomainPduType::kChannelJoinRequest;
    join.initiator = user_id;
    join.channel_id = id;
    co_await asio::async_write(c.stream, asio::buffer(domain_pdu(join)), use_awaitable);
    auto joined = must(gw::decode_domain_pdu_in_tpkt(co_await c.in.next(c.stream)), "Join");
    if (joined.type != gw::DomainPduType::kChannelJoinConfirm || joined.result != 0) {
      throw Failure("channel join refused");
    }
  }
  gw::ClientInfo info;
  info.flags = gw::kInfoMouse | gw::kInfoUnicode | 0x00010000;  // + INFO_LOGONNOTIFY
  info.user_name = user;
  info.extra_info = {0x02, 0x00, 0x02, 0x00, 0x00, 0x00};
  Bytes info_pdu =
      must(gw::encode_send_data(gw::SendDataHeader{false, user_id, server.io_channel_id},
                                must(gw::encode_client_info(info), "Client Info")),
           "Client Info PDU");
  co_await asio::async_write(c.stream, asio::buffer(info_pdu), use_awaitable);
  // Licensing, then the Demand Active.
  for (;;) {
    ByteSpan pdu = co_await c.in.next(c.stream);
    if (is_fastpath(pdu)) throw Failure("fast-path before the Demand Active");
    auto d = must(gw::decode_domain_pdu_in_tpkt(pdu), "server PDU");
    if (d.type == gw::DomainPduType::kDisconnectProviderUltimatum) {
      throw Failure("disconnected by the gateway during the connection sequence");
    }
    if (d.type != gw::DomainPduType::kSendDataIndication || d.channel_id != server.io_channel_id ||
        d.user_data.size() < 4) {
      continue;
    }
    const std::uint16_t first = static_cast<std::uint16_t>(d.user_data[0] | d.user_data[1] << 8);
    if ((first & gw::kSecLicensePkt) != 0) continue;
    if ((d.user_data[2] & 0x0F) == 0x1) co_return;  // PDUTYPE_DEMANDACTIVEPDU
  }
}

awaitable<std::unique_ptr<Session>> open_session(asio::io_context& io, asio::ssl::context& tls,
                                                 const Target& t, const std::string& ticket,
                                                 const std::string& user) {
  auto c = std::make_unique<Session>(io, tls);
  const auto t0 = Clock::now();
  auto& socket = c->stream.next_layer();
  boost::system::error_code ec;
  co_await socket.async_connect(t.endpoint, asio::redirect_error(use_awaitable, ec));
  if (ec)
    throw Failure("connecting to " + t.name + " at " + t.endpoint.address().to_string() + ":" +
                  std::to_string(t.endpoint.port()) + ": " + ec.message());
  no_delay(socket);
  if (t.rdp) {
    gw::PreconnectionPdu pcb;
    pcb.blob = ticket;
    Bytes first = must(gw::encode_preconnection(pcb), "preconnection");
    gw::ConnectionRequest cr;
    cr.cookie = "Cookie: mstshash=" + user;
    cr.negotiation = gw::NegotiationRequest{0, gw::kProtocolSsl};
    append(first, must(gw::encode_connection_request(cr), "X.224 CR"));
    const auto sent = Clock::now();
    co_await asio::async_write(socket, asio::buffer(first), use_awaitable);
    PduReader plain;
    ByteSpan cc_bytes = co_await plain.next(socket);
    c->cr_to_cc_us = us_since(sent);
    auto cc = must(gw::decode_connection_confirm(cc_bytes), "X.224 CC");
    if (!cc.response || cc.response->selected_protocol != gw::kProtocolSsl) {
      throw Failure("the gateway refused the connection (RDP_NEG_FAILURE " +
                    std::to_string(cc.failure_code.value_or(0)) + ")");
    }
  }
  co_await c->stream.async_handshake(asio::ssl::stream_base::client, use_awaitable);
  c->cipher = std::string(SSL_get_version(c->stream.native_handle())) + " " +
              SSL_get_cipher_name(c->stream.native_handle());
  if (t.rdp) co_await client_connection_sequence(*c, user);
  c->open_us = us_since(t0);
  co_return c;
}

// One ping: a fast-path PDU of `size` bytes out, its echo back. Closes the session when the
// echo does not come within `timeout`.
awaitable<bool> ping(Session& c, std::size_t size, std::chrono::milliseconds timeout) {
  if (!c.alive) co_return false;
  asio::steady_timer timer(c.stream.get_executor());
  timer.expires_after(timeout);
  timer.async_wait([&c](boost::system::error_code ec) {
    if (!ec) c.close();
  });
  bool ok = false;
  try {
    Bytes pdu = fastpath(size, kFastPathInput, kCmdPing);
    co_await asio::async_write(c.stream, asio::buffer(pdu), use_awaitable);
    for (;;) {
      ByteSpan echo = co_await c.in.next(c.stream);
      if (is_fastpath(echo)) {
        ok = echo.size() == size;
        break;
      }
    }
  } catch (const std::exception&) {
    ok = false;
  }
  timer.cancel();
  if (!ok) c.close();
  co_return ok;
}

// Waits until `pending` drops to 0 or the deadline passes.
awaitable<void> wait_for(int& pending, Clock::time_point deadline) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  while (pending > 0 && Clock::now() < deadline) {
    t.expires_after(std::chrono::milliseconds(20));
    co_await t.async_wait(use_awaitable);
  }
}

awaitable<void> sleep_for(std::chrono::duration<double> d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(std::chrono::duration_cast<Clock::duration>(d));
  co_await t.async_wait(use_awaitable);
}

struct Context {
  asio::io_context io{1};
  asio::ssl::context tls{asio::ssl::context::tls_client};
  std::optional<Tickets> tickets;
  std::string user_prefix;
  int next_user = 0;

  Context() { tls.set_verify_mode(asio::ssl::verify_none); }

  std::string user(int n, const std::string& prefix) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d", n);
    return user_prefix + prefix + buf;
  }

  awaitable<std::unique_ptr<Session>> open(const Target& t, const std::string& prefix) {
    std::string user = this->user(++next_user, prefix);
    std::string ticket = t.rdp ? tickets->issue(user) : std::string();
    co_return co_await open_session(io, tls, t, ticket, user);
  }

  // Runs a scenario coroutine to completion; rethrows its failure.
  void run(std::function<awaitable<void>()> scenario) {
    std::exception_ptr failed;
    asio::co_spawn(io, scenario(), [&](std::exception_ptr e) { failed = e; });
    io.run();
    io.restart();
    if (failed) std::rethrow_exception(failed);
  }
};

// ---- scenarios ----

awaitable<nlohmann::json> throughput_once(Context& ctx, const Target& t, int streams,
                                          double seconds) {
  std::vector<std::unique_ptr<Session>> sessions;
  for (int i = 0; i < streams; ++i) sessions.push_back(co_await ctx.open(t, "tput"));
  const std::string cipher = sessions.front()->cipher;
  std::uint64_t bytes = 0;
  int readers = 0;
  for (auto& s : sessions) {
    Bytes start = fastpath(16, kFastPathInput, kCmdSource);
    co_await asio::async_write(s->stream, asio::buffer(start), use_awaitable);
    ++readers;
    asio::co_spawn(
        ctx.io,
        [&bytes, &readers, session = s.get()]() -> awaitable<void> {
          std::vector<std::uint8_t> buf(64 * 1024);
          boost::system::error_code ec;
          while (!ec) {
            bytes += co_await session->stream.async_read_some(
                asio::buffer(buf), asio::redirect_error(use_awaitable, ec));
          }
          --readers;
        },
        asio::detached);
  }
  co_await sleep_for(std::chrono::seconds(1));  // warm-up
  const std::uint64_t b0 = bytes;
  const CpuTimes cpu0 = cpu_times(t.pid);
  const auto t0 = Clock::now();
  co_await sleep_for(std::chrono::duration<double>(seconds));
  const std::uint64_t b1 = bytes;
  const CpuTimes cpu1 = cpu_times(t.pid);
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& s : sessions) s->close();
  co_await wait_for(readers, Clock::now() + std::chrono::seconds(5));
  co_await sleep_for(std::chrono::milliseconds(500));  // let the relay tear down
  const double mb = static_cast<double>(b1 - b0) / 1e6;
  const double cpu = cpu1.total() - cpu0.total();
  co_return nlohmann::json{{"relay", t.name},
                           {"streams", streams},
                           {"seconds", elapsed},
                           {"mb", mb},
                           {"mb_per_s", mb / elapsed},
                           {"relay_cpu_s", cpu},
                           {"relay_user_s", cpu1.user - cpu0.user},
                           {"relay_system_s", cpu1.system - cpu0.system},
                           {"relay_cpu_utilization", cpu / elapsed},
                           {"mb_per_cpu_s", cpu > 0 ? mb / cpu : 0.0},
                           {"cipher", cipher}};
}

nlohmann::json throughput(Context& ctx, const std::vector<Target>& targets, int streams,
                          double seconds, int rounds) {
  nlohmann::json runs = nlohmann::json::array();
  ctx.run([&]() -> awaitable<void> {
    // The order alternates between rounds so that a drift of the machine's speed does not
    // favour whichever relay always goes first.
    for (int r = 0; r < rounds; ++r) {
      for (std::size_t i = 0; i < targets.size(); ++i) {
        const auto& t = targets[r % 2 == 0 ? i : targets.size() - 1 - i];
        auto run = co_await throughput_once(ctx, t, streams, seconds);
        run["round"] = r;
        runs.push_back(std::move(run));
      }
    }
  });
  nlohmann::json totals = nlohmann::json::object();
  for (const auto& t : targets) {
    double mb = 0, secs = 0, cpu = 0;
    for (const auto& r : runs) {
      if (r["relay"] != t.name) continue;
      mb += r["mb"].get<double>();
      secs += r["seconds"].get<double>();
      cpu += r["relay_cpu_s"].get<double>();
    }
    totals[t.name] = {{"mb_per_s", mb / secs},
                      {"mb_per_cpu_s", cpu > 0 ? mb / cpu : 0.0},
                      {"relay_cpu_utilization", cpu / secs}};
  }
  nlohmann::json out{{"scenario", "throughput"}, {"runs", runs}, {"totals", totals}};
  if (totals.contains("gateway") && totals.contains("haproxy")) {
    out["ratio_gateway_to_haproxy"] = {
        {"mb_per_s",
         totals["gateway"]["mb_per_s"].get<double>() / totals["haproxy"]["mb_per_s"].get<double>()},
        {"mb_per_cpu_s", totals["gateway"]["mb_per_cpu_s"].get<double>() /
                             totals["haproxy"]["mb_per_cpu_s"].get<double>()}};
    // A shared machine's speed swings by ±15% between rounds of a few seconds; the ratio
    // within each round (the two relays measured back to back) is steadier.
    std::vector<double> per_round;
    for (int r = 0; r < rounds; ++r) {
      double g = 0, h = 0;
      for (const auto& run : runs) {
        if (run["round"] != r) continue;
        (run["relay"] == "gateway" ? g : h) = run["mb_per_cpu_s"].get<double>();
      }
      if (g > 0 && h > 0) per_round.push_back(g / h);
    }
    std::sort(per_round.begin(), per_round.end());
    out["round_ratios_mb_per_cpu_s"] = per_round;
    if (!per_round.empty()) {
      const std::size_t n = per_round.size();
      out["ratio_gateway_to_haproxy"]["mb_per_cpu_s_median_of_rounds"] =
          n % 2 == 1 ? per_round[n / 2] : (per_round[n / 2 - 1] + per_round[n / 2]) / 2;
    }
  }
  return out;
}

nlohmann::json latency(Context& ctx, const std::vector<Target>& targets, int pings,
                       std::size_t size, int rounds) {
  std::map<std::string, std::vector<double>> rtt;
  std::map<std::string, std::string> ciphers;
  int failed = 0;
  ctx.run([&]() -> awaitable<void> {
    std::vector<std::unique_ptr<Session>> sessions;
    for (const auto& t : targets) {
      sessions.push_back(co_await ctx.open(t, "lat"));
      ciphers[t.name] = sessions.back()->cipher;
      for (int i = 0; i < 500; ++i) co_await ping(*sessions.back(), size, std::chrono::seconds(5));
    }
    const int per_round = std::max(1, pings / rounds);
    for (int r = 0; r < rounds; ++r) {
      for (std::size_t i = 0; i < targets.size(); ++i) {
        auto& v = rtt[targets[i].name];
        for (int k = 0; k < per_round; ++k) {
          const auto t0 = Clock::now();
          if (!co_await ping(*sessions[i], size, std::chrono::seconds(5))) {
            ++failed;
            throw Failure("ping through " + targets[i].name + " failed");
          }
          v.push_back(us_since(t0));
        }
      }
    }
    for (auto& s : sessions) s->close();
    co_await sleep_for(std::chrono::milliseconds(300));
  });
  nlohmann::json out{{"scenario", "latency"}, {"pdu_bytes", size}, {"failed", failed}};
  for (const auto& t : targets) {
    out["rtt_us"][t.name] = percentiles(rtt[t.name]);
    out["cipher"][t.name] = ciphers[t.name];
  }
  if (rtt.count("direct")) {
    const auto direct = out["rtt_us"]["direct"];
    for (const auto& t : targets) {
      if (t.name == "direct") continue;
      nlohmann::json added;
      for (const char* p : {"p50", "p90", "p99", "p999"}) {
        added[p] = (out["rtt_us"][t.name][p].get<double>() - direct[p].get<double>()) / 2;
      }
      out["added_per_direction_us"][t.name] = added;
    }
  }
  return out;
}

nlohmann::json idle_once(Context& ctx, const Target& t, int count, double hold, int concurrency) {
  raise_nofile();
  nlohmann::json out{{"relay", t.name}, {"sessions", count}};
  std::vector<std::string> tickets(static_cast<std::size_t>(count));
  std::vector<std::string> users;
  for (int i = 1; i <= count; ++i) users.push_back(ctx.user(i, t.rdp ? "user" : "hauser"));
  if (t.rdp) {
    const auto t0 = Clock::now();
    std::size_t refused = 0;
    std::string first_error;
    tickets = ctx.tickets->issue_many(users, 32, refused, first_error);
    out["tickets"] = {{"issued", count - static_cast<int>(refused)},
                      {"refused", refused},
                      {"seconds", us_since(t0) / 1e6}};
    if (refused) out["tickets"]["first_error"] = first_error;
  }
  const long rss_before = rss_kib(t.pid);
  std::vector<std::unique_ptr<Session>> sessions(static_cast<std::size_t>(count));
  int open_failed = 0;
  std::string first_open_error;
  double open_seconds = 0;
  std::vector<double> open_ms;
  ctx.run([&]() -> awaitable<void> {
    const auto t0 = Clock::now();
    int next = 0, workers = 0;
    for (int w = 0; w < concurrency; ++w) {
      ++workers;
      asio::co_spawn(
          ctx.io,
          [&]() -> awaitable<void> {
            while (next < count) {
              const int i = next++;
              if (t.rdp && tickets[static_cast<std::size_t>(i)].empty()) {
                ++open_failed;
                continue;
              }
              try {
                sessions[static_cast<std::size_t>(i)] =
                    co_await open_session(ctx.io, ctx.tls, t, tickets[static_cast<std::size_t>(i)],
                                          users[static_cast<std::size_t>(i)]);
                open_ms.push_back(sessions[static_cast<std::size_t>(i)]->open_us / 1000);
              } catch (const std::exception& e) {
                if (open_failed++ == 0) first_open_error = e.what();
              }
            }
            --workers;
          },
          asio::detached);
    }
    co_await wait_for(workers, Clock::now() + std::chrono::minutes(5));
    open_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  });
  int opened = 0;
  for (auto& s : sessions) opened += s != nullptr;
  out["opened"] = opened;
  out["open_failed"] = open_failed;
  if (open_failed) out["first_open_error"] = first_open_error;
  out["open_seconds"] = open_seconds;
  out["open_ms"] = percentiles(open_ms);

  // Idle: each session sends a 16-byte input PDU (and reads its echo) every 10 s.
  int keepalive_failed = 0;
  ctx.run([&]() -> awaitable<void> {
    co_await sleep_for(std::chrono::seconds(2));
    out["rss_kib_after_open"] = rss_kib(t.pid);
    const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(hold));
    for (int tick = 0; Clock::now() < end; ++tick) {
      const auto next_tick = Clock::now() + std::chrono::seconds(1);
      for (std::size_t i = static_cast<std::size_t>(tick % 10); i < sessions.size(); i += 10) {
        if (sessions[i] && sessions[i]->alive &&
            !co_await ping(*sessions[i], 16, std::chrono::seconds(5))) {
          ++keepalive_failed;
        }
      }
      co_await sleep_for(next_tick - Clock::now());
    }
  });
  const long rss_after = rss_kib(t.pid);
  out["rss_kib_before"] = rss_before;
  out["rss_kib_after_idle"] = rss_after;
  out["rss_kib_per_session"] = opened ? static_cast<double>(rss_after - rss_before) / opened : 0.0;
  out["keepalive_failed"] = keepalive_failed;

  // Every session must still answer.
  int echo_ok = 0;
  ctx.run([&]() -> awaitable<void> {
    for (auto& s : sessions) {
      if (s && co_await ping(*s, 64, std::chrono::seconds(5))) ++echo_ok;
    }
    for (auto& s : sessions) {
      if (s) s->close();
    }
    co_await sleep_for(std::chrono::seconds(2));
  });
  out["echo_ok"] = echo_ok;
  return out;
}

nlohmann::json redeem(Context& ctx, const Target& t, int count) {
  std::vector<double> cc_ms, open_ms, issue_ms;
  int failed = 0;
  std::string first_error;
  ctx.run([&]() -> awaitable<void> {
    for (int i = 1; i <= count; ++i) {
      const std::string user = ctx.user(i, "redeem");
      try {
        const auto t0 = Clock::now();
        std::string ticket = ctx.tickets->issue(user);
        issue_ms.push_back(us_since(t0) / 1000);
        auto s = co_await open_session(ctx.io, ctx.tls, t, ticket, user);
        cc_ms.push_back(s->cr_to_cc_us / 1000);
        open_ms.push_back(s->open_us / 1000);
        s->close();
      } catch (const std::exception& e) {
        if (failed++ == 0) first_error = e.what();
      }
    }
    co_await sleep_for(std::chrono::seconds(1));
  });
  nlohmann::json out{{"scenario", "redeem"},
                     {"sessions", count},
                     {"failed", failed},
                     {"ticket_issue_ms", percentiles(issue_ms)},
                     {"cr_to_cc_ms", percentiles(cc_ms)},
                     {"connect_to_demand_active_ms", percentiles(open_ms)}};
  if (failed) out["first_error"] = first_error;
  return out;
}

nlohmann::json audit_summary(const std::string& file, const std::string& prefix) {
  std::ifstream f(file);
  nlohmann::json events = nlohmann::json::parse(f);
  std::vector<double> ms;
  for (const auto& e : events) {
    if (!e.value("actor", "").starts_with(prefix)) continue;
    const auto& d = e["details"];
    if (!d.is_object() || !d.contains("ticket_to_first_byte_us")) continue;
    ms.push_back(d["ticket_to_first_byte_us"].get<double>() / 1000);
  }
  return {{"scenario", "ticket_to_first_byte (gateway audit events)"},
          {"actor_prefix", prefix},
          {"ticket_to_first_byte_ms", percentiles(ms)}};
}

// The human summary of the result files bench.sh keeps (any may be missing).
void print_summary(const std::filesystem::path& dir) {
  auto load = [&](const char* name) { return enclave::bench::load_result(dir, name); };
  auto num = [](const nlohmann::json& j, double scale = 1) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", j.get<double>() * scale);
    return std::string(buf);
  };
  auto ratio = [](const nlohmann::json& j) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f", j.get<double>());
    return std::string(buf);
  };
  if (auto t = load("throughput.json")) {
    const auto& g = (*t)["totals"]["gateway"];
    const auto& h = (*t)["totals"]["haproxy"];
    const auto& r = (*t)["ratio_gateway_to_haproxy"];
    std::cout << "throughput: gateway " << num(g["mb_per_s"]) << " MB/s ("
              << num(g["relay_cpu_utilization"], 100) << "% CPU), haproxy " << num(h["mb_per_s"])
              << " MB/s (" << num(h["relay_cpu_utilization"], 100) << "% CPU); ratio "
              << ratio(r["mb_per_s"]) << "\n"
              << "  per CPU-second: gateway " << num(g["mb_per_cpu_s"]) << " MB, haproxy "
              << num(h["mb_per_cpu_s"]) << " MB; ratio " << ratio(r["mb_per_cpu_s"])
              << ", median of the rounds' ratios "
              << ratio(r.value("mb_per_cpu_s_median_of_rounds", 0.0)) << " (target >= 1)\n";
  }
  if (auto l = load("latency.json")) {
    for (const auto& [name, added] : (*l)["added_per_direction_us"].items()) {
      std::cout << "added latency per direction, " << name << ": p50 " << num(added["p50"])
                << " us, p99 " << num(added["p99"]) << " us, p99.9 " << num(added["p999"]) << " us"
                << (name == "gateway" ? " (target p99 <= 200 us)" : "") << "\n";
    }
  }
  if (auto a = load("ttfb.json")) {
    const auto& p = (*a)["ticket_to_first_byte_ms"];
    std::cout << "ticket to first byte at the desktop (gateway audit, " << p["n"].get<int>()
              << " sessions): p50 " << num(p["p50"]) << " ms, p99 " << num(p["p99"])
              << " ms (target <= 50 ms)\n";
  }
  if (auto r = load("redeem.json")) {
    std::cout << "client: preconnection + X.224 CR sent to CC received: p50 "
              << num((*r)["cr_to_cc_ms"]["p50"]) << " ms, p99 " << num((*r)["cr_to_cc_ms"]["p99"])
              << " ms; failed " << (*r)["failed"].get<int>() << "\n";
  }
  if (auto i = load("idle.json")) {
    for (const auto& [name, v] : (*i)["relays"].items()) {
      std::cout << "idle, " << name << ": " << v["opened"].get<int>() << " of "
                << v["sessions"].get<int>() << " open, " << v["echo_ok"].get<int>()
                << " answered the final echo; RSS +" << num(v["rss_kib_per_session"])
                << " KiB per session\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  CLI::App app{"relay_load: load for enclave-gatewayd's RDP relay, with HAProxy as the peer"};
  app.require_subcommand(1);

  std::string dir, expect_user;
  int rdp_ports = 6;
  auto* sink = app.add_subcommand("sink", "the synthetic desktop host");
  sink->add_option("--dir", dir, "where its certificate goes")->required();
  sink->add_option("--rdp-ports", rdp_ports, "RDP listeners")->check(CLI::Range(1, 64));
  sink->add_option("--expect-user", expect_user, "the user the gateway injects");

  int ports = 1;
  auto* free_ports = app.add_subcommand("free-ports", "free TCP ports on 127.0.0.1");
  free_ports->add_option("count", ports)->check(CLI::Range(1, 64));

  std::string gateway, haproxy, direct, sessiond, compartment = "bench", user_prefix;
  int gateway_pid = 0, haproxy_pid = 0;
  auto add_targets = [&](CLI::App* c) {
    c->add_option("--gateway", gateway, "enclave-gatewayd's RDP listener, HOST:PORT");
    c->add_option("--haproxy", haproxy, "HAProxy's TLS listener, HOST:PORT");
    c->add_option("--sessiond", sessiond, "enclave-sessiond's socket (tickets)");
    c->add_option("--compartment", compartment, "the compartment tickets are for");
    c->add_option("--user-prefix", user_prefix, "before every user name (to run a scenario again)");
  };
  int streams = 4, rounds = 2, lat_rounds = 10, pings = 20000, sessions = 5000, concurrency = 32;
  double seconds = 8, hold = 20;
  std::size_t size = 64;
  auto* tput = app.add_subcommand("throughput", "source mode through each relay");
  add_targets(tput);
  tput->add_option("--gateway-pid", gateway_pid);
  tput->add_option("--haproxy-pid", haproxy_pid);
  tput->add_option("--streams", streams)->check(CLI::Range(1, 64));
  tput->add_option("--seconds", seconds)->check(CLI::Range(1.0, 600.0));
  tput->add_option("--rounds", rounds)->check(CLI::Range(1, 20));
  auto* lat = app.add_subcommand("latency", "ping-pong RTT through each path");
  add_targets(lat);
  lat->add_option("--direct", direct, "the sink's TLS port, HOST:PORT");
  lat->add_option("--pings", pings)->check(CLI::Range(100, 10000000));
  lat->add_option("--size", size)->check(CLI::Range(4, 0x7FFF));
  lat->add_option("--rounds", lat_rounds)->check(CLI::Range(1, 1000));
  auto* idle = app.add_subcommand("idle", "many idle sessions: memory and liveness");
  add_targets(idle);
  idle->add_option("--gateway-pid", gateway_pid);
  idle->add_option("--haproxy-pid", haproxy_pid);
  idle->add_option("--sessions", sessions)->check(CLI::Range(1, 9000));
  idle->add_option("--hold", hold, "seconds idle")->check(CLI::Range(0.0, 3600.0));
  idle->add_option("--concurrency", concurrency, "sessions being opened at once")
      ->check(CLI::Range(1, 1000));
  auto* red = app.add_subcommand("redeem", "sequential sessions: ticket to first byte");
  add_targets(red);
  red->add_option("--sessions", sessions)->check(CLI::Range(1, 100000));
  std::string results;
  auto* sum = app.add_subcommand("summary", "a human summary of bench.sh's result files");
  sum->add_option("--dir", results)->required();
  std::string file, prefix = "redeem";
  auto* summary = app.add_subcommand("audit-summary", "ticket_to_first_byte_us from audit events");
  summary->add_option("--file", file)->required();
  summary->add_option("--actor-prefix", prefix);
  CLI11_PARSE(app, argc, argv);

  try {
    if (*sink) return run_sink(dir, rdp_ports, expect_user);
    if (*free_ports) {
      asio::io_context io;
      std::vector<tcp::acceptor> held;
      for (int i = 0; i < ports; ++i) {
        held.emplace_back(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        std::cout << held.back().local_endpoint().port() << "\n";
      }
      return 0;
    }
    if (*sum) {
      print_summary(results);
      return 0;
    }
    if (*summary) {
      std::cout << audit_summary(file, prefix).dump() << "\n";
      return 0;
    }
    raise_nofile();
    Context ctx;
    ctx.user_prefix = user_prefix;
    if (!sessiond.empty()) ctx.tickets.emplace(sessiond, compartment);
    std::vector<Target> targets;
    if (!gateway.empty()) {
      if (sessiond.empty()) throw Failure("--gateway needs --sessiond for tickets");
      targets.push_back({"gateway", true, parse_endpoint(gateway), gateway_pid});
    }
    if (!haproxy.empty())
      targets.push_back({"haproxy", false, parse_endpoint(haproxy), haproxy_pid});
    if (*lat && !direct.empty()) targets.push_back({"direct", false, parse_endpoint(direct), 0});
    if (targets.empty()) throw Failure("give --gateway and/or --haproxy");
    nlohmann::json result;
    if (*tput) {
      for (const auto& t : targets) {
        if (t.pid <= 0) throw Failure("give --" + t.name + "-pid");
      }
      result = throughput(ctx, targets, streams, seconds, rounds);
    } else if (*lat) {
      result = latency(ctx, targets, pings, size, lat_rounds);
    } else if (*idle) {
      result = {{"scenario", "idle"}, {"hold_s", hold}};
      for (const auto& t : targets) {
        if (t.pid <= 0) throw Failure("give --" + t.name + "-pid");
        result["relays"][t.name] = idle_once(ctx, t, sessions, hold, concurrency);
      }
      if (result["relays"].contains("gateway") && result["relays"].contains("haproxy")) {
        const double h = result["relays"]["haproxy"]["rss_kib_per_session"].get<double>();
        if (h > 0) {
          result["ratio_gateway_to_haproxy_rss_per_session"] =
              result["relays"]["gateway"]["rss_kib_per_session"].get<double>() / h;
        }
      }
    } else if (*red) {
      if (gateway.empty()) throw Failure("redeem needs --gateway");
      result = redeem(ctx, targets.front(), sessions);
    }
    std::cout << result.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "relay_load: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
