#include "gateway/service/relay_connection.hpp"

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/log.hpp"
#include "gateway/core/relay.hpp"
#include "gateway/service/gateway.hpp"
#include "gateway/service/tls_socket.hpp"
#include "sessionmgr/service/methods.hpp"

namespace enclave::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Stream = TlsSocket;
using Strand = asio::strand<asio::io_context::executor_type>;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
constexpr int kReadsBeforeYield = 16;

// What the session manager granted for one redeemed ticket.
struct Grant {
  std::string session_id, user, device, compartment, tier;
  std::string desktop_id, host;
  std::uint16_t port = 0;
  HostTrust trust;
  ChannelPolicy channels;
  DesktopCredentials credentials;
  std::chrono::seconds idle{0}, remaining{0};
};

Expected<Grant> parse_grant(const nlohmann::json& j) {
  try {
    Grant g;
    g.session_id = j.at("session_id").get<std::string>();
    g.user = j.at("user").get<std::string>();
    g.device = j.value("device", "");
    g.compartment = j.value("compartment", "");
    g.tier = j.value("tier", "");
    const auto& d = j.at("desktop");
    g.desktop_id = d.value("id", "");
    g.host = d.at("host").get<std::string>();
    int port = d.at("port").get<int>();
    if (port <= 0 || port > 65535) return fail(Errc::kInternal, "grant: bad desktop port");
    g.port = static_cast<std::uint16_t>(port);
    g.trust.pin_sha256 = d.value("pin_sha256", "");
    std::transform(g.trust.pin_sha256.begin(), g.trust.pin_sha256.end(), g.trust.pin_sha256.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    g.trust.ca_file = d.value("ca_file", "");
    g.trust.server_name = d.value("server_name", "");
    if (g.trust.pin_sha256.empty() && g.trust.ca_file.empty()) {
      return fail(Errc::kInternal, "grant: the desktop has neither pin_sha256 nor ca_file");
    }
    const auto& c = j.at("credentials");
    g.credentials.domain = c.value("domain", "");
    g.credentials.user = c.value("user", "");
    g.credentials.password = c.value("password", "");
    for (const auto& name : j.at("channels").at("static")) {
      std::string n = name.get<std::string>();
      std::transform(n.begin(), n.end(), n.begin(),
                     [](unsigned char ch) { return std::tolower(ch); });
      g.channels.static_allowed.insert(std::move(n));
    }
    for (const auto& name : j.at("channels").at("dynamic")) {
      g.channels.dynamic_allowed.insert(name.get<std::string>());
    }
    const auto& l = j.at("limits");
    g.idle = std::chrono::seconds(l.value("idle_s", 0));
    g.remaining = std::chrono::seconds(l.value("remaining_s", l.value("max_s", 0)));
    return g;
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInternal, std::string("grant from the session manager: ") + e.what());
  }
}

// Unsent bytes for one side, written by that side's writer coroutine.
struct Outbox {
  explicit Outbox(const Strand& strand) : wake(strand), space(strand) {}
  Bytes queued;   // appended by readers
  Bytes writing;  // owned by the writer while a write is in flight
  bool busy = false;
  bool idle = false;  // the writer waits on `wake`
  Clock::time_point write_started{};
  asio::steady_timer wake;   // cancelled to wake the writer
  asio::steady_timer space;  // cancelled when the writer drained (readers wait on it)
  std::size_t pending() const { return queued.size() + writing.size(); }
};

enum class Side { kClient, kHost };
const char* side_name(Side s) {
  return s == Side::kClient ? "client" : "desktop";
}

}  // namespace

struct RelayConnection::State {
  State(GatewayContext& c, tcp::socket socket)
      : ctx(c),
        strand(asio::make_strand(c.io)),
        client(std::move(socket)),
        stage_timer(strand),
        supervisor_timer(strand),
        to_client(strand),
        to_host(strand) {
    boost::system::error_code ec;
    auto ep = client.tcp().remote_endpoint(ec);
    client_address = ec ? "unknown" : ep.address().to_string();
    accepted_at = Clock::now();
  }

  GatewayContext& ctx;
  Strand strand;
  Stream client;
  std::optional<Stream> host;
  asio::steady_timer stage_timer;
  asio::steady_timer supervisor_timer;
  Outbox to_client, to_host;
  std::string client_address;
  Clock::time_point accepted_at, relay_started, last_input;
  std::chrono::system_clock::time_point relay_started_wall;
  std::optional<Grant> grant;
  std::unique_ptr<RelayMachine> machine;
  std::int64_t ticket_to_first_byte_us = -1;

  bool credentials_written = false;  // the Client Info PDU has left and every copy is wiped
  bool relaying = false;
  bool closing = false;
  bool final_end = false;
  bool flush_client = false;  // send the queued bytes (an ultimatum) before closing the client
  std::string end_reason;
  std::string stage = "preconnection";
  int tasks = 0;  // relay coroutines still running
  bool finished = false;
};

RelayConnection::RelayConnection(GatewayContext& context, tcp::socket client)
    : s_(std::make_unique<State>(context, std::move(client))) {
  s_->ctx.counters.open++;
}

RelayConnection::~RelayConnection() {
  s_->ctx.counters.open--;
}

// The coroutines are static members of a friend class so they reach State without widening
// the header.
class RelayDriver {
 public:
  using Self = std::shared_ptr<RelayConnection>;
  using S = RelayConnection::State;

  static S& st(const Self& self) { return *self->s_; }

  static nlohmann::json audit_base(S& s, std::string type, std::string outcome) {
    nlohmann::json e{
        {"type", std::move(type)}, {"outcome", std::move(outcome)}, {"actor_kind", "user"}};
    if (s.grant) {
      e["actor"] = s.grant->user;
      e["device"] = s.grant->device;
      e["session"] = s.grant->session_id;
      e["object"] = s.grant->desktop_id;
    }
    return e;
  }

  static void audit(S& s, nlohmann::json event) {
    if (!s.ctx.audit.append(std::move(event))) {
      spdlog::warn("audit queue full: an event of a relay session was not recorded");
    }
  }

  static Stream& stream(S& s, Side side) { return side == Side::kClient ? s.client : *s.host; }
  static Outbox& outbox(S& s, Side side) { return side == Side::kClient ? s.to_client : s.to_host; }

  static void wake_all(S& s) {
    for (Outbox* box : {&s.to_client, &s.to_host}) {
      box->wake.cancel();
      box->space.cancel();
    }
    s.supervisor_timer.cancel();
    s.stage_timer.cancel();
  }

  static void close_socket(Stream& stream) { stream.close(); }

  // Ends the connection once: records why, tells the client when asked (a Disconnect
  // Provider Ultimatum once the relay runs), closes the desktop leg at once.
  static void close(S& s, std::string reason, bool notify_client, bool final_end) {
    if (s.closing) return;
    s.closing = true;
    s.end_reason = std::move(reason);
    s.final_end = final_end;
    if (s.host) close_socket(*s.host);
    if (notify_client && s.relaying) {
      Bytes bye = disconnect_ultimatum();
      s.to_client.queued.insert(s.to_client.queued.end(), bye.begin(), bye.end());
      s.flush_client = true;
      // Do not wait forever for a client that does not read.
      s.stage_timer.expires_after(std::chrono::seconds(2));
      s.stage_timer.async_wait([&s](boost::system::error_code ec) {
        if (!ec) close_socket(s.client);
      });
      s.to_client.wake.cancel();
      s.to_client.space.cancel();
      s.to_host.wake.cancel();
      s.to_host.space.cancel();
      s.supervisor_timer.cancel();
    } else {
      close_socket(s.client);
      wake_all(s);
    }
  }

  // A set-up stage gets a deadline; missing it closes the connection naming the stage.
  static void arm_stage(const Self& self, std::string stage, std::chrono::milliseconds limit) {
    S& s = st(self);
    s.stage = std::move(stage);
    s.stage_timer.expires_after(limit);
    s.stage_timer.async_wait([self](boost::system::error_code ec) {
      S& s = st(self);
      if (ec || s.closing) return;
      if (s.relaying) {
        close(s, "timeout during " + s.stage, true, false);  // gateway.session.end says why
      } else {
        refuse(self, "timeout during " + s.stage);
      }
    });
  }

  static void refuse(const Self& self, const std::string& reason) {
    S& s = st(self);
    s.ctx.counters.refused++;
    auto e = audit_base(s, "gateway.connection.refused", "refused");
    e["details"] = {{"reason", reason}, {"client", s.client_address}, {"stage", s.stage}};
    audit(s, std::move(e));
    spdlog::info("refused connection from {}: {}", s.client_address, reason);
    if (s.grant) {
      // The ticket was redeemed but no relay came of it: the session manager keeps the
      // session resumable.
      unregister_session(self);
      report_disconnected(s, reason, false, nlohmann::json::array());
    }
    close(s, reason, false, false);
  }

  // Reads from the plain TCP leg until `complete` finds a whole PDU in buffer.
  template <class Complete>
  static awaitable<bool> read_plain(const Self& self, tcp::socket& socket, Bytes& buffer,
                                    std::size_t limit, Complete complete) {
    S& s = st(self);
    std::array<std::uint8_t, 1024> chunk;
    while (!s.closing) {
      if (complete(buffer)) co_return true;
      if (buffer.size() >= limit) co_return false;
      boost::system::error_code ec;
      std::size_t n = co_await socket.async_read_some(
          asio::buffer(chunk.data(), std::min(chunk.size(), limit - buffer.size())),
          asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return false;
      buffer.insert(buffer.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    }
    co_return false;
  }

  static awaitable<bool> write_plain(tcp::socket& socket, const Bytes& bytes) {
    boost::system::error_code ec;
    co_await asio::async_write(socket, asio::buffer(bytes),
                               asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
  }

  static awaitable<void> run(Self self) {
    S& s = st(self);
    const auto& timeouts = s.ctx.config.timeouts;

    // 1. The preconnection PDU with the ticket, before anything else is looked at.
    arm_stage(self, "preconnection", timeouts.preconnection);
    Bytes inbox;
    std::optional<Preconnection> pcb;
    std::optional<PduError> bad;
    bool got = co_await read_plain(self, s.client.tcp(), inbox, kMaxPreconnectionSize,
                                   [&](const Bytes& b) {
                                     auto r = read_preconnection(b);
                                     if (!r) {
                                       bad = r.error();
                                       return true;
                                     }
                                     pcb = *r;
                                     return pcb.has_value();
                                   });
    if (s.closing) co_return;
    if (bad) co_return refuse(self, "not a preconnection PDU: " + bad->describe());
    if (!got || !pcb) co_return refuse(self, "no preconnection PDU with a ticket");
    inbox.erase(inbox.begin(), inbox.begin() + static_cast<std::ptrdiff_t>(pcb->consumed));

    // 2. Redeem the ticket: no desktop is contacted for a bad, expired or reused one.
    s.stage = "ticket";
    if (!s.ctx.audit.healthy()) co_return refuse(self, "audit log unavailable: failing closed");
    const auto redeem_started = Clock::now();
    std::string ticket = std::move(pcb->blob);
    nlohmann::json redeem = nlohmann::json::object();
    redeem["ticket"] = ticket;
    redeem["source"] = s.client_address;
    Expected<nlohmann::json> granted =
        co_await s.ctx.sessiond.async_call(sessionmgr::methods::kTicketRedeem, std::move(redeem),
                                           std::chrono::seconds(5), asio::use_awaitable);
    secure_wipe(ticket.data(), ticket.size());
    if (s.closing) co_return;
    if (!granted) co_return refuse(self, granted.error().message);
    auto grant = parse_grant(*granted);
    if (!grant) co_return refuse(self, grant.error().message);
    s.grant = std::move(grant).value();
    register_session(self);

    // 3. The client's X.224 Connection Request: TLS or nothing.
    arm_stage(self, "X.224 negotiation", timeouts.handshake);
    std::optional<std::size_t> cr_size;
    got = co_await read_plain(self, s.client.tcp(), inbox, 4096, [&](const Bytes& b) {
      auto r = complete_tpkt_size(b);
      if (!r) {
        bad = r.error();
        return true;
      }
      cr_size = *r;
      return cr_size.has_value();
    });
    if (s.closing) co_return;
    if (bad) co_return refuse(self, "bad X.224 Connection Request: " + bad->describe());
    if (!got || !cr_size) co_return refuse(self, "no X.224 Connection Request");
    auto client_step = negotiate_client_request(ByteSpan(inbox.data(), *cr_size));
    if (!client_step) co_return refuse(self, client_step.error().describe());
    if (client_step->refusal) {
      co_await write_plain(s.client.tcp(), client_step->to_client);
      co_return refuse(self, *client_step->refusal);
    }
    if (inbox.size() != *cr_size) {
      co_return refuse(self, "client sent data before the X.224 Connection Confirm");
    }

    // 4. The desktop: TCP, our own X.224 request, its confirm.
    auto host_ctx = s.ctx.host_tls.context_for(s.grant->trust);
    if (!host_ctx) co_return refuse(self, host_ctx.error().message);
    s.host.emplace(tcp::socket(s.strand));
    arm_stage(self, "connect to the desktop", timeouts.connect);
    boost::system::error_code ec;
    auto address = asio::ip::make_address(s.grant->host, ec);
    if (ec) {
      tcp::resolver resolver(s.strand);
      auto found = co_await resolver.async_resolve(s.grant->host, std::to_string(s.grant->port),
                                                   asio::redirect_error(asio::use_awaitable, ec));
      if (!ec) {
        co_await asio::async_connect(s.host->tcp(), found,
                                     asio::redirect_error(asio::use_awaitable, ec));
      }
    } else {
      co_await s.host->tcp().async_connect(tcp::endpoint(address, s.grant->port),
                                           asio::redirect_error(asio::use_awaitable, ec));
    }
    if (s.closing) co_return;
    if (ec) {
      co_return refuse(self, "desktop " + s.grant->desktop_id + " unreachable: " + ec.message());
    }
    boost::system::error_code opt_ec;
    s.host->tcp().set_option(tcp::no_delay(true), opt_ec);
    s.host->tcp().set_option(asio::socket_base::keep_alive(true), opt_ec);
    arm_stage(self, "X.224 negotiation with the desktop", timeouts.handshake);
    if (!co_await write_plain(s.host->tcp(), client_step->to_host)) {
      co_return refuse(self, "desktop closed the connection during negotiation");
    }
    s.ticket_to_first_byte_us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - redeem_started)
            .count();
    Bytes host_inbox;
    std::optional<std::size_t> cc_size;
    got = co_await read_plain(self, s.host->tcp(), host_inbox, 4096, [&](const Bytes& b) {
      auto r = complete_tpkt_size(b);
      if (!r) {
        bad = r.error();
        return true;
      }
      cc_size = *r;
      return cc_size.has_value();
    });
    if (s.closing) co_return;
    if (bad)
      co_return refuse(self, "desktop sent a bad X.224 Connection Confirm: " + bad->describe());
    if (!got || !cc_size) co_return refuse(self, "desktop sent no X.224 Connection Confirm");
    auto host_step = negotiate_host_confirm(ByteSpan(host_inbox.data(), *cc_size));
    if (!host_step) co_return refuse(self, "desktop: " + host_step.error().describe());
    if (host_step->refusal) {
      co_await write_plain(s.client.tcp(), host_step->to_client);
      co_return refuse(self, *host_step->refusal);
    }
    if (!co_await write_plain(s.client.tcp(), host_step->to_client)) {
      co_return refuse(self, "client closed the connection during negotiation");
    }

    // 5. TLS on both legs; the desktop must present its pinned key (or a CA-issued name).
    s.stage = "TLS with the desktop";
    if (auto started = s.host->start_tls((*host_ctx)->native_handle()); !started) {
      co_return refuse(self, started.error().message);
    }
    if (auto prepared = prepare_host_leg(s.host->ssl(), s.grant->trust); !prepared) {
      co_return refuse(self, prepared.error().message);
    }
    ec = co_await s.host->handshake(false);
    if (s.closing) co_return;
    if (ec) co_return refuse(self, "TLS with the desktop failed: " + ec.message());
    if (auto checked = check_host_leg(s.host->ssl(), s.grant->trust); !checked) {
      co_return refuse(self, checked.error().message);
    }
    s.stage = "TLS with the client";
    if (auto started = s.client.start_tls(s.ctx.client_tls->native_handle()); !started) {
      co_return refuse(self, started.error().message);
    }
    ec = co_await s.client.handshake(true);
    if (s.closing) co_return;
    if (ec) co_return refuse(self, "TLS with the client failed: " + ec.message());

    // 6. Relay until one side ends. The login stage lasts until the credentials are sent.
    arm_stage(self, "login (credentials not yet sent to the desktop)", timeouts.login);
    RelayConfig config;
    config.channels = s.grant->channels;
    config.credentials.domain = s.grant->credentials.domain;
    config.credentials.user = s.grant->credentials.user;
    config.credentials.password = std::move(s.grant->credentials.password);
    secure_wipe(s.grant->credentials.password.data(), s.grant->credentials.password.size());
    s.machine = std::make_unique<RelayMachine>(std::move(config));
    s.relaying = true;
    s.relay_started = s.last_input = Clock::now();
    s.relay_started_wall = std::chrono::system_clock::now();
    s.ctx.counters.relayed++;
    {
      auto e = audit_base(s, "gateway.session.start", "success");
      e["details"] = {{"client", s.client_address},
                      {"desktop", s.grant->host + ":" + std::to_string(s.grant->port)},
                      {"compartment", s.grant->compartment},
                      {"tier", s.grant->tier},
                      {"ticket_to_first_byte_us", s.ticket_to_first_byte_us}};
      audit(s, std::move(e));
    }
    s.ctx.sessiond.post_call(sessionmgr::methods::kSessionConnected,
                             {{"session_id", s.grant->session_id}}, [](Expected<nlohmann::json> r) {
                               if (!r) spdlog::warn("session.connected: {}", r.error().describe());
                             });
    s.tasks = 5;
    auto spawn = [&](awaitable<void> task) {
      asio::co_spawn(s.strand, std::move(task), asio::detached);
    };
    spawn(writer(self, Side::kClient));
    spawn(writer(self, Side::kHost));
    spawn(reader(self, Side::kClient));
    spawn(reader(self, Side::kHost));
    spawn(supervise(self));
  }

  static void register_session(const Self& self) {
    S& s = st(self);
    std::shared_ptr<RelayConnection> previous;
    {
      std::lock_guard lock(s.ctx.registry_mu);
      auto& slot = s.ctx.registry[s.grant->session_id];
      previous = slot.lock();
      slot = self;
    }
    // A reconnect with a fresh ticket takes the session over from a connection that lingers.
    if (previous && previous != self) previous->end("replaced by a new connection", false);
  }

  static void unregister_session(const Self& self) {
    S& s = st(self);
    if (!s.grant) return;
    std::lock_guard lock(s.ctx.registry_mu);
    auto it = s.ctx.registry.find(s.grant->session_id);
    if (it != s.ctx.registry.end() && it->second.lock() == self) s.ctx.registry.erase(it);
  }

  static void handle_events(S& s, std::vector<RelayEvent>& events) {
    for (auto& ev : events) {
      nlohmann::json e;
      switch (ev.kind) {
        case RelayEvent::Kind::kStaticChannelRefused:
          e = audit_base(s, "gateway.channel.refused", "refused");
          e["details"] = {{"kind", "static"}, {"channel", ev.name}, {"detail", ev.detail}};
          break;
        case RelayEvent::Kind::kDynamicChannelRefused:
          e = audit_base(s, "gateway.channel.refused", "refused");
          e["details"] = {{"kind", "dynamic"}, {"channel", ev.name}, {"detail", ev.detail}};
          break;
        case RelayEvent::Kind::kDeniedChannelData:
          e = audit_base(s, "gateway.channel.dropped", "refused");
          e["details"] = {{"channel", ev.name}, {"direction", ev.detail}};
          break;
        case RelayEvent::Kind::kCredentialsInjected:
          e = audit_base(s, "gateway.credentials.injected", "success");
          e["details"] = {{"desktop_user", ev.name}};
          break;
      }
      audit(s, std::move(e));
    }
    events.clear();
  }

  // Hands bytes to a side. When that side's writer is idle the socket usually takes them at
  // once: writing here saves waking the writer for every record, and a copy. The writer gets
  // what the socket did not take (`owned`, the bytes' own buffer, is moved rather than
  // copied). Until the Client Info PDU is out the writer sends everything, as it wipes the
  // credentials it wrote.
  static void deliver(S& s, Side side, ByteSpan bytes, Bytes* owned = nullptr) {
    Outbox& box = outbox(s, side);
    ByteSpan rest = bytes;
    if (box.idle && box.queued.empty() && !s.closing &&
        (side == Side::kClient || s.credentials_written)) {
      boost::system::error_code ec;
      rest = rest.subspan(stream(s, side).write_now(rest, ec));
      if (ec && ec != asio::error::would_block) {
        write_failed(s, side, ec);
        return;
      }
      if (rest.empty()) return;
    }
    if (owned != nullptr && box.queued.empty() && rest.size() == owned->size()) {
      box.queued.swap(*owned);
    } else {
      box.queued.insert(box.queued.end(), rest.begin(), rest.end());
    }
    if (box.idle) box.wake.cancel();
  }

  static void write_failed(S& s, Side side, const boost::system::error_code& ec) {
    if (side == Side::kHost) {
      close(s, "desktop stopped accepting data (" + ec.message() + ")", true, false);
    } else {
      close(s, "client gone (" + ec.message() + ")", false, false);
    }
  }

  static awaitable<void> reader(Self self, Side from) {
    S& s = st(self);
    const Side to = from == Side::kClient ? Side::kHost : Side::kClient;
    // One read buffer per I/O thread, not per session: the bytes are fed and copied out
    // before this coroutine next suspends.
    thread_local std::array<std::uint8_t, kReadChunk> buffer;
    // Read first, and wait for readiness only when nothing is there: under load the next
    // record is usually in the socket already, and every wait costs re-arming epoll (a system
    // call) and a trip through the reactor. After kReadsBeforeYield reads in a row the
    // coroutine yields, so that one busy session does not starve the others on its thread.
    int reads_in_a_row = 0;
    while (!s.closing) {
      if (++reads_in_a_row > kReadsBeforeYield) {
        reads_in_a_row = 0;
        co_await asio::post(s.strand, asio::use_awaitable);
        if (s.closing) break;
      }
      boost::system::error_code ec;
      std::size_t n = stream(s, from).read_now(buffer, ec);
      if (ec == asio::error::would_block) {
        reads_in_a_row = 0;
        ec = co_await stream(s, from).wait_readable();
        if (!ec) continue;
      }
      if (s.closing) break;
      if (ec) {
        if (from == Side::kHost) {
          close(s, "desktop closed the connection (" + ec.message() + ")", true, false);
        } else {
          close(s, "client disconnected (" + ec.message() + ")", false, false);
        }
        break;
      }
      RelayOutput out;
      ByteSpan bytes(buffer.data(), n);
      const std::size_t passed = from == Side::kClient
                                     ? s.machine->pass_fast_path_from_client(bytes, out)
                                     : s.machine->pass_fast_path_from_host(bytes, out);
      if (passed > 0) deliver(s, to, bytes.first(passed));
      bytes = bytes.subspan(passed);
      auto fed = from == Side::kClient ? s.machine->from_client(bytes, out)
                                       : s.machine->from_host(bytes, out);
      if (out.client_input) s.last_input = Clock::now();
      handle_events(s, out.events);
      for (auto [side, data] :
           {std::pair{Side::kClient, &out.to_client}, std::pair{Side::kHost, &out.to_host}}) {
        if (!data->empty()) deliver(s, side, *data, data);
      }
      // The Client Info PDU carries the injected password: no copy of it outlives its write.
      if (!s.credentials_written) secure_wipe(out.to_host.data(), out.to_host.size());
      if (!fed) {
        auto e = audit_base(s, "gateway.session.protocol_error", "refused");
        e["details"] = {{"from", side_name(from)}, {"error", fed.error().describe()}};
        audit(s, std::move(e));
        close(s,
              std::string("protocol error from the ") + side_name(from) + ": " +
                  fed.error().describe(),
              true, false);
        break;
      }
      if (s.stage.starts_with("login") && s.machine->credentials_sent()) {
        s.stage = "relay";
        s.stage_timer.cancel();
      }
      // Backpressure: do not read more from this side while the other side is behind.
      Outbox& dest = outbox(s, to);
      while (!s.closing && dest.pending() > s.ctx.config.high_water_bytes) {
        dest.space.expires_at(Clock::time_point::max());
        co_await dest.space.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
    task_done(self);
  }

  static awaitable<void> writer(Self self, Side side) {
    S& s = st(self);
    Outbox& box = outbox(s, side);
    for (;;) {
      const bool flushing = side == Side::kClient && s.flush_client;
      if (s.closing && !flushing) break;
      if (box.queued.empty()) {
        if (s.closing) break;  // flushed
        boost::system::error_code ec;
        box.wake.expires_at(Clock::time_point::max());
        box.idle = true;
        co_await box.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        box.idle = false;
        continue;
      }
      std::swap(box.queued, box.writing);
      box.busy = true;
      box.write_started = Clock::now();
      boost::system::error_code ec = co_await stream(s, side).write_all(box.writing);
      box.busy = false;
      if (side == Side::kHost && !s.credentials_written) {
        secure_wipe(box.writing.data(), box.writing.size());
        s.credentials_written = s.machine->credentials_sent() && box.queued.empty();
      }
      box.writing.clear();
      box.space.cancel();
      if (ec) {
        write_failed(s, side, ec);
        break;
      }
    }
    if (side == Side::kClient && s.flush_client) {
      // The ultimatum went out (or the client is gone): end the TLS session and the socket.
      s.flush_client = false;
      s.client.send_close_notify();
      close_socket(s.client);
      wake_all(s);
    }
    task_done(self);
  }

  // Idle time, maximum session time and a peer that stopped reading.
  static awaitable<void> supervise(Self self) {
    S& s = st(self);
    const auto stall = s.ctx.config.timeouts.write_stall;
    while (!s.closing) {
      const auto now = Clock::now();
      auto next = now + std::chrono::hours(24);
      if (s.grant->idle.count() > 0) {
        auto idle_end = s.last_input + s.grant->idle;
        if (idle_end <= now) {
          close(s, "idle for " + std::to_string(s.grant->idle.count()) + " s", true, false);
          break;
        }
        next = std::min(next, idle_end);
      }
      if (s.grant->remaining.count() > 0) {
        auto max_end = s.relay_started + s.grant->remaining;
        if (max_end <= now) {
          close(s, "maximum session time reached", true, true);
          break;
        }
        next = std::min(next, max_end);
      }
      for (Side side : {Side::kClient, Side::kHost}) {
        Outbox& box = outbox(s, side);
        if (!box.busy) continue;
        auto stall_end = box.write_started + stall;
        if (stall_end <= now) {
          close(s,
                std::string(side_name(side)) + " stopped reading for " +
                    std::to_string(stall.count() / 1000) + " s",
                side == Side::kHost, false);
          break;
        }
        next = std::min(next, stall_end);
      }
      if (s.closing) break;
      // Re-check writes that start later at least every stall period.
      next = std::min(next, now + stall);
      s.supervisor_timer.expires_at(next);
      boost::system::error_code ec;
      co_await s.supervisor_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    task_done(self);
  }

  static nlohmann::json channel_json(const RelayMachine& machine) {
    nlohmann::json channels = nlohmann::json::array();
    for (const auto& c : machine.counters()) {
      channels.push_back({{"name", c.name},
                          {"id", c.id},
                          {"allowed", c.allowed},
                          {"to_host", c.to_host},
                          {"to_client", c.to_client},
                          {"dropped_to_host", c.dropped_to_host},
                          {"dropped_to_client", c.dropped_to_client}});
    }
    return channels;
  }

  static void task_done(const Self& self) {
    S& s = st(self);
    if (--s.tasks > 0 || s.finished) return;
    s.finished = true;
    finish(self);
  }

  // After the relay ran: the session's end with byte counts, to the audit log and sessiond.
  static void finish(const Self& self) {
    S& s = st(self);
    unregister_session(self);
    nlohmann::json channels = channel_json(*s.machine);
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - s.relay_started).count();
    auto e = audit_base(s, "gateway.session.end", "info");
    e["details"] = {{"reason", s.end_reason},
                    {"final", s.final_end},
                    {"seconds", seconds},
                    {"channels", channels}};
    audit(s, std::move(e));
    report_disconnected(s, s.end_reason, s.final_end, std::move(channels));
    spdlog::info("session {} of {} ended: {}", s.grant->session_id, s.grant->user, s.end_reason);
  }

  static void report_disconnected(S& s, const std::string& reason, bool ended,
                                  nlohmann::json bytes) {
    s.ctx.sessiond.post_call(sessionmgr::methods::kSessionDisconnected,
                             {{"session_id", s.grant->session_id},
                              {"reason", reason},
                              {"ended", ended},
                              {"bytes", std::move(bytes)}},
                             [](Expected<nlohmann::json> r) {
                               if (!r)
                                 spdlog::warn("session.disconnected: {}", r.error().describe());
                             });
  }

  static void describe(const Self& self, nlohmann::json& out) {
    S& s = st(self);
    out = {{"client", s.client_address}, {"stage", s.stage}};
    if (s.grant) {
      out["session_id"] = s.grant->session_id;
      out["user"] = s.grant->user;
      out["desktop"] = s.grant->desktop_id;
    }
    if (s.relaying) {
      auto now = Clock::now();
      out["since"] =
          std::chrono::duration_cast<std::chrono::seconds>(s.relay_started_wall.time_since_epoch())
              .count();
      out["idle_s"] = std::chrono::duration_cast<std::chrono::seconds>(now - s.last_input).count();
      out["channels"] = channel_json(*s.machine);
    }
  }
};

void RelayConnection::start() {
  auto self = shared_from_this();
  boost::system::error_code ec;
  s_->client.tcp().set_option(tcp::no_delay(true), ec);
  s_->client.tcp().set_option(asio::socket_base::keep_alive(true), ec);
  asio::co_spawn(s_->strand, RelayDriver::run(self), asio::detached);
}

void RelayConnection::end(std::string reason, bool final) {
  auto self = shared_from_this();
  asio::post(s_->strand, [self, reason = std::move(reason), final]() mutable {
    RelayDriver::close(*self->s_, std::move(reason), true, final);
  });
}

void RelayConnection::describe(std::function<void(nlohmann::json)> done) {
  auto self = shared_from_this();
  asio::post(s_->strand, [self, done = std::move(done)] {
    nlohmann::json out;
    RelayDriver::describe(self, out);
    done(std::move(out));
  });
}

}  // namespace enclave::gateway
