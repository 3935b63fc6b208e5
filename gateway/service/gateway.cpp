#include "gateway/service/gateway.hpp"
#include "gateway/service/login_listener.hpp"

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <csignal>
#include <filesystem>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/ipc/server.hpp"
#include "common/log.hpp"
#include "gateway/service/relay_connection.hpp"
#include "sessionmgr/service/methods.hpp"

namespace enclave::gateway {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

// The control socket: the session manager ends sessions, operators list them.
class ControlHandler : public ipc::Handler {
 public:
  explicit ControlHandler(GatewayContext& ctx) : ctx_(ctx) {}

  void handle(const ipc::PeerCredentials& peer, ipc::Request request,
              ipc::Responder respond) override {
    if (request.method == sessionmgr::methods::kGatewaySessionEnd) {
      return end_session(peer, std::move(request), std::move(respond));
    }
    if (request.method == sessionmgr::methods::kGatewaySessionList) {
      return list_sessions(request.id, std::move(respond));
    }
    respond(ipc::Response::failure(request.id,
                                   {Errc::kInvalidArgument, "unknown method " + request.method}));
  }

  void on_refused(const ipc::PeerCredentials& peer, const std::string& reason) override {
    ctx_.audit.append(audit::refused_connection_event("gateway.control.refused", peer, reason));
  }

 private:
  void end_session(const ipc::PeerCredentials& peer, ipc::Request request, ipc::Responder respond) {
    const auto& p = request.params;
    if (!p.contains("session_id") || !p["session_id"].is_string()) {
      return respond(ipc::Response::failure(
          request.id, {Errc::kInvalidArgument, "session_id: expected a string"}));
    }
    std::string session = p["session_id"].get<std::string>();
    std::string reason = p.value("reason", std::string("ended by an operator"));
    std::shared_ptr<RelayConnection> connection;
    {
      std::lock_guard lock(ctx_.registry_mu);
      auto it = ctx_.registry.find(session);
      if (it != ctx_.registry.end()) connection = it->second.lock();
    }
    if (connection) connection->end(reason, true);
    ctx_.audit.append({{"type", "gateway.session.end_requested"},
                       {"outcome", connection ? "success" : "info"},
                       {"actor_kind", "service"},
                       {"actor", peer.user},
                       {"session", session},
                       {"details", {{"reason", reason}, {"found", connection != nullptr}}}});
    respond(ipc::Response::success(request.id, {{"found", connection != nullptr}}));
  }

  // Each connection describes itself on its own strand; the answer goes out when all have.
  void list_sessions(std::uint64_t id, ipc::Responder respond) {
    std::vector<std::shared_ptr<RelayConnection>> live;
    {
      std::lock_guard lock(ctx_.registry_mu);
      for (auto& [session, weak] : ctx_.registry) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    struct Collect {
      std::mutex mu;
      nlohmann::json sessions = nlohmann::json::array();
      std::size_t left;
      ipc::Responder respond;
      std::uint64_t id;
    };
    auto collect = std::make_shared<Collect>();
    collect->left = live.size();
    collect->respond = std::move(respond);
    collect->id = id;
    if (live.empty()) {
      return collect->respond(ipc::Response::success(id, {{"sessions", collect->sessions}}));
    }
    for (auto& c : live) {
      c->describe([collect](nlohmann::json one) {
        std::lock_guard lock(collect->mu);
        collect->sessions.push_back(std::move(one));
        if (--collect->left == 0) {
          collect->respond(
              ipc::Response::success(collect->id, {{"sessions", std::move(collect->sessions)}}));
        }
      });
    }
  }

  GatewayContext& ctx_;
};

}  // namespace

struct Gateway::Impl {
  Impl(GatewayConfig config, audit::Appender& audit, std::unique_ptr<asio::ssl::context> client_tls)
      : guard(asio::make_work_guard(io)),
        ctx{config,
            io,
            std::move(client_tls),
            HostLegContexts(config.tls_min_version),
            ServiceCaller(config.sessiond_socket, 4),
            audit,
            {},
            {},
            {}},
        acceptor(io),
        control_handler(ctx) {}

  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  GatewayContext ctx;
  tcp::acceptor acceptor;
  ControlHandler control_handler;
  std::unique_ptr<ipc::Server> control;
  std::unique_ptr<LoginListener> login;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) {
        // Out of descriptors or memory: say so and breathe rather than spin.
        spdlog::warn("accept failed: {}", ec.message());
        asio::steady_timer pause(io, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      ctx.counters.accepted++;
      if (ctx.counters.open.load() >= ctx.config.max_sessions) {
        boost::system::error_code ignored;
        auto peer = socket.remote_endpoint(ignored);
        ctx.counters.refused++;
        ctx.audit.append({{"type", "gateway.connection.refused"},
                          {"outcome", "refused"},
                          {"details",
                           {{"reason", "gateway at max_sessions (" +
                                           std::to_string(ctx.config.max_sessions) + ")"},
                            {"client", ignored ? "unknown" : peer.address().to_string()}}}});
        socket.close(ignored);
        continue;
      }
      std::make_shared<RelayConnection>(ctx, std::move(socket))->start();
    }
  }
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gateway::~Gateway() {
  stop();
}

Expected<std::unique_ptr<Gateway>> Gateway::create(GatewayConfig config, audit::Appender& audit) {
  auto tls = make_client_leg_context(config.certificate, config.private_key, config.tls_min_version,
                                     config.tls12_ciphers);
  if (!tls) return error_of(tls);
  std::unique_ptr<asio::ssl::context> login_tls;
  if (config.login.listen_port != 0 && !std::filesystem::exists(config.login.device_ca)) {
    // The relay still serves tickets an operator issues; the log and the audit say why the
    // kiosks' login API is not there.
    const std::string why =
        "no device CA at " + config.login.device_ca.string() + " (enclavectl ca init creates it)";
    spdlog::warn("the login API is off: {}", why);
    audit.append({{"type", "gateway.login.off"},
                  {"outcome", "error"},
                  {"actor_kind", "service"},
                  {"actor", "enclave-gatewayd"},
                  {"object", "login-api"},
                  {"details", {{"reason", why}}}});
    config.login.listen_port = 0;
  }
  if (config.login.listen_port != 0) {
    auto made = make_login_context(config.certificate, config.private_key, config.login.device_ca,
                                   config.tls_min_version, config.tls12_ciphers);
    if (!made) return error_of(made);
    login_tls = std::move(made).value();
  }
  auto impl = std::make_unique<Impl>(std::move(config), audit, std::move(tls).value());
  impl->ctx.login_tls = std::move(login_tls);
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

Status Gateway::start() {
  auto& m = *impl_;
  // OpenSSL writes the relay's sockets with write(2): to a client that has gone, that fails
  // with EPIPE, which would otherwise kill the whole gateway with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(m.ctx.config.listen_address, ec);
  if (ec) {
    return fail(Errc::kInvalidArgument,
                "gateway.listen: not an IP address: " + m.ctx.config.listen_address);
  }
  tcp::endpoint endpoint(address, m.ctx.config.listen_port);
  m.acceptor.open(endpoint.protocol(), ec);
  if (!ec) m.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(endpoint, ec);
  if (!ec) m.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(Errc::kUnavailable, "cannot listen on " + m.ctx.config.listen_address + ":" +
                                        std::to_string(m.ctx.config.listen_port) + ": " +
                                        ec.message());
  }
  m.port = m.acceptor.local_endpoint().port();

  ipc::ServerOptions options;
  options.socket_path = m.ctx.config.control_socket;
  options.socket_mode = 0660;
  m.control = std::make_unique<ipc::Server>(m.io, options, m.control_handler);
  ENCLAVE_TRY(m.control->start());

  if (m.ctx.login_tls) {
    m.login = std::make_unique<LoginListener>(m.ctx);
    ENCLAVE_TRY(m.login->start());
  }
  asio::co_spawn(m.io, m.accept_loop(), asio::detached);
  for (unsigned i = 0; i < m.ctx.config.threads; ++i) {
    m.threads.emplace_back([&m] { m.io.run(); });
  }
  spdlog::info("relaying RDP on {}:{} (control socket {})", m.ctx.config.listen_address, m.port,
               m.ctx.config.control_socket.string());
  return {};
}

void Gateway::wait_for_signal() {
  asio::io_context signals_io;
  asio::signal_set signals(signals_io, SIGINT, SIGTERM);
  signals.async_wait([](boost::system::error_code, int) {});
  signals_io.run();
}

void Gateway::stop() {
  auto& m = *impl_;
  if (m.threads.empty()) return;
  asio::post(m.io, [&m] {
    boost::system::error_code ec;
    m.acceptor.close(ec);
  });
  if (m.control) m.control->stop();
  if (m.login) m.login->stop();
  // Every live session ends with a clean disconnect before the threads go.
  std::vector<std::shared_ptr<RelayConnection>> live;
  {
    std::lock_guard lock(m.ctx.registry_mu);
    for (auto& [session, weak] : m.ctx.registry) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
  }
  for (auto& c : live) c->end("gateway shutting down", false);
  live.clear();
  m.guard.reset();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (m.ctx.counters.open.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  m.io.stop();
  for (auto& t : m.threads) t.join();
  m.threads.clear();
}

std::uint16_t Gateway::port() const {
  return impl_->port;
}

std::uint16_t Gateway::login_port() const {
  return impl_->login ? impl_->login->port() : 0;
}

}  // namespace enclave::gateway
