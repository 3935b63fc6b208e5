#include "gateway/service/login_listener.hpp"

#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <array>
#include <chrono>
#include <map>
#include <optional>

#include <openssl/x509.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "common/bytes.hpp"
#include "common/log.hpp"
#include "common/login/messages.hpp"
#include "common/x509.hpp"
#include "gateway/service/gateway.hpp"
#include "gateway/service/tls_socket.hpp"
#include "gateway/service/vici_client.hpp"
#include "sessionmgr/service/methods.hpp"

namespace enclave::gateway {

namespace asio = boost::asio;
using asio::awaitable;
using asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
namespace methods = sessionmgr::methods;

namespace {

constexpr std::chrono::seconds kServiceTimeout{30};
// Logins one connection may try before it must reconnect (a kiosk retrying a mistyped
// password does so on the same connection).
constexpr int kLoginsPerConnection = 5;

// The device certificate the handshake verified: its subject CN (the device id) and the
// SHA-256 of its DER (what the registry holds and revocation names).
struct DeviceIdentity {
  std::string device, certificate_sha256;
};

std::optional<DeviceIdentity> device_identity(SSL* ssl) {
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return std::nullopt;
  std::array<char, 256> cn{};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn.data(),
                                          static_cast<int>(cn.size()));
  if (n <= 0) return std::nullopt;
  unsigned char* der = nullptr;
  const int size = i2d_X509(cert, &der);
  if (size <= 0) return std::nullopt;
  std::string hash = sha256_hex(ByteSpan(der, static_cast<std::size_t>(size)));
  OPENSSL_free(der);
  return DeviceIdentity{std::string(cn.data(), static_cast<std::size_t>(n)), std::move(hash)};
}

// A step from login.start / login.answer as the kiosk's Response.
Expected<login::Response> response_of(const nlohmann::json& step,
                                      const login::GatewayEndpoint& gateway) {
  try {
    const std::string type = step.at("type").get<std::string>();
    if (type == "auth_message") {
      auto kind =
          login::auth_message_type_from_name(step.at("auth_message_type").get<std::string>());
      if (!kind) return fail(Errc::kInternal, "login step: unknown auth_message_type");
      return login::Response{login::AuthMessage{*kind, step.at("auth_message").get<std::string>()}};
    }
    if (type == "error") {
      return login::Response{login::ErrorReply{login::ErrorType::kAuthError,
                                               step.at("description").get<std::string>()}};
    }
    if (type == "success") {
      login::Success ok;
      ok.ticket = step.at("ticket").get<std::string>();
      ok.expires_at = step.at("expires_at").get<std::string>();
      const auto& d = step.at("desktop");
      ok.desktop = {d.value("id", ""), d.at("host").get<std::string>(),
                    d.at("port").get<std::uint16_t>()};
      ok.gateway = gateway;
      return login::Response{std::move(ok)};
    }
    return fail(Errc::kInternal, "login step: unknown type " + type);
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInternal, std::string("login step from the session manager: ") + e.what());
  }
}

// Built outside the coroutine: GCC 12 miscompiles braced lists holding string literals in a
// coroutine frame ("array used as initializer").
login::Response error_reply(std::string description) {
  return login::ErrorReply{login::ErrorType::kError, std::move(description)};
}

nlohmann::json start_params(const login::CreateSession& create, const DeviceIdentity& identity,
                            const std::string& client) {
  nlohmann::json params{{"user", create.username},
                        {"device", identity.device},
                        {"source", client},
                        {"certificate_sha256", identity.certificate_sha256}};
  if (create.compartment) params["compartment"] = *create.compartment;
  return params;
}

// The device is the verified certificate's, whatever the kiosk might claim.
nlohmann::json enrol_params(login::EnrolPrint& enrol, const DeviceIdentity& identity) {
  nlohmann::json params{
      {"user", enrol.username}, {"device", identity.device}, {"print", base64_encode(enrol.print)}};
  secure_wipe(enrol.print.data(), enrol.print.size());
  return params;
}

// The kiosk's answer to enrol_print. The registry's refusals ("no approved enrolment of ...",
// "... expired at ...") are meant for the steward at the kiosk; anything else is logged here
// and the kiosk told only that it failed.
login::Response enrolment_response(const Expected<nlohmann::json>& reply,
                                   const DeviceIdentity& identity) {
  if (reply) {
    auto print_id = reply->find("print_id");
    if (print_id != reply->end() && print_id->is_string() && !print_id->empty()) {
      return login::Enrolled{print_id->get<std::string>()};
    }
    spdlog::warn("enrolment on device {}: the session manager's answer has no print_id",
                 identity.device);
    return error_reply("the enrolment could not be recorded");
  }
  switch (reply.error().code) {
    case Errc::kInvalidArgument:
    case Errc::kNotFound:
    case Errc::kPermission:
    case Errc::kConflict:
      return error_reply(reply.error().message);
    default:
      spdlog::warn("enrolment on device {}: {}", identity.device, reply.error().describe());
      return error_reply("the enrolment service is unavailable");
  }
}

nlohmann::json answer_params(const std::string& login_id, std::optional<std::string>& response) {
  nlohmann::json params{{"login_id", login_id}};
  if (response) {
    params["response"] = *response;
    secure_wipe(response->data(), response->size());
  }
  return params;
}

nlohmann::json cancel_params(const std::string& login_id, const std::string& reason) {
  return {{"login_id", login_id}, {"reason", reason}};
}

}  // namespace

struct LoginListener::Impl : std::enable_shared_from_this<LoginListener::Impl> {
  explicit Impl(GatewayContext& c) : ctx(c), acceptor(c.io), refresh_timer(c.io) {}

  GatewayContext& ctx;
  tcp::acceptor acceptor;
  asio::steady_timer refresh_timer;
  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> open{0};
  login::GatewayEndpoint endpoint;  // the RDP relay, for success replies

  void refused(const std::string& client, const std::string& reason,
               const std::string& device = {}) {
    nlohmann::json event{
        {"type", "gateway.login.refused"}, {"outcome", "refused"},
        {"actor_kind", "service"},         {"actor", "enclave-gatewayd"},
        {"object", "login-api"},           {"details", {{"reason", reason}, {"client", client}}}};
    if (!device.empty()) event["device"] = device;
    if (!ctx.audit.append(std::move(event))) {
      spdlog::warn("audit queue full: a login refusal was not recorded");
    }
    spdlog::info("login connection from {} refused: {}", client, reason);
  }

  awaitable<void> refresh_loop() {
    auto self = shared_from_this();
    while (!stopping) {
      Expected<nlohmann::json> reply =
          co_await ctx.sessiond.async_call(methods::kRegistryPools, nlohmann::json::object(),
                                           std::chrono::seconds(5), asio::use_awaitable);
      if (!reply) {
        spdlog::warn("cannot refresh the approved site pools from the session manager: {}{}",
                     reply.error().describe(),
                     ctx.pools.loaded() ? " (keeping the last table)" : " (refusing every login)");
      } else if (auto updated = ctx.pools.update(*reply); !updated) {
        spdlog::warn("{}", updated.error().describe());
      }
      refresh_timer.expires_after(ctx.config.login.pools_refresh);
      error_code ec;
      co_await refresh_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  awaitable<void> accept_loop() {
    auto self = shared_from_this();
    for (;;) {
      error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open() || stopping) co_return;
      if (ec) {
        spdlog::warn("login accept failed: {}", ec.message());
        asio::steady_timer pause(ctx.io, std::chrono::milliseconds(100));
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        continue;
      }
      auto peer = socket.remote_endpoint(ec);
      const std::string client = ec ? "unknown" : peer.address().to_string();
      // Refused before any TLS work: no handshake, no certificate parsing for strangers.
      std::optional<SiteMatch> site;
      if (!ec) site = ctx.pools.site_for(peer.address());
      if (!site) {
        socket.close(ec);
        refused(client, ctx.pools.loaded() ? "address outside every approved site's pool"
                                           : "the approved site pools are not loaded yet");
        continue;
      }
      if (open >= ctx.config.login.max_connections) {
        socket.close(ec);
        refused(client, "login connections at max_connections");
        continue;
      }
      // Small messages, each waited for by the kiosk: no Nagle delay on them.
      socket.set_option(tcp::no_delay(true), ec);
      auto strand = asio::make_strand(ctx.io);
      asio::co_spawn(strand, serve(std::move(socket), client, *site), asio::detached);
    }
  }

  // One kiosk connection, on its own strand.
  awaitable<void> serve(tcp::socket tcp_socket, std::string client, SiteMatch site) {
    auto self = shared_from_this();
    ++open;
    struct Closer {
      Impl& m;
      ~Closer() { --m.open; }
    } closer{*this};
    const auto executor = co_await asio::this_coro::executor;
    TlsSocket socket(std::move(tcp_socket));
    asio::steady_timer deadline(executor);
    auto arm = [&](std::chrono::milliseconds limit) {
      deadline.expires_after(limit);
      deadline.async_wait([&socket](error_code ec) {
        if (!ec) socket.close();
      });
    };
    // strongSwan, where configured, must hold an IKE SA of this site with this address.
    if (!ctx.config.login.vici_socket.empty()) {
      auto vici = ctx.config.login.vici_socket;
      Expected<bool> held = co_await ctx.sessiond.async_run<Expected<bool>>(
          [vici, identity = site.ike_identity, client] {
            return confirm_address(vici, identity, client, std::chrono::seconds(2));
          },
          asio::use_awaitable);
      if (!held || !*held) {
        refused(client, !held ? "VICI: " + held.error().describe()
                              : "no IKE SA of site " + site.site + " (" + site.ike_identity +
                                    ") holds this address");
        co_return;
      }
    }
    if (auto started = socket.start_tls(ctx.login_tls->native_handle()); !started) {
      refused(client, started.error().describe());
      co_return;
    }
    arm(ctx.config.login.handshake);
    if (error_code ec = co_await socket.handshake(true)) {
      refused(client, "TLS handshake: " + ec.message());
      co_return;
    }
    error_code ec_ignored;
    auto identity = device_identity(socket.ssl());
    if (!identity) {
      refused(client, "the device certificate has no common name");
      co_return;
    }
    if (ctx.pools.revoked(identity->certificate_sha256)) {
      refused(client, "revoked device certificate", identity->device);
      co_return;
    }

    // Where this kiosk reaches the relay: the address it reached us at.
    login::GatewayEndpoint relay = endpoint;
    if (auto local = socket.tcp().local_endpoint(ec_ignored); !ec_ignored) {
      relay.address = local.address().to_string();
    }
    login::FrameDecoder decoder;
    std::string login_id;
    int logins = 0;
    Bytes buffer(4096);
    auto send = [&](const login::Response& r) -> awaitable<bool> {
      auto frame = login::frame_response(r);
      if (!frame) co_return false;
      co_return !(co_await socket.write_all(*frame));
    };
    for (;;) {
      arm(ctx.config.login.message);
      auto next = decoder.next_request();
      if (!next) {
        refused(client, "login protocol: " + next.error().describe(), identity->device);
        break;
      }
      if (!next->has_value()) {
        error_code ec = co_await socket.wait_readable();
        std::size_t n = 0;
        if (!ec) n = socket.read_now(buffer, ec);
        if (ec == asio::error::would_block) continue;
        if (ec) break;  // the kiosk went away (or the deadline closed the socket)
        decoder.feed(ByteSpan(buffer.data(), n));
        secure_wipe(buffer.data(), n);
        continue;
      }
      login::Request request = std::move(**next);
      nlohmann::json params;
      const char* method = nullptr;
      if (auto* create = std::get_if<login::CreateSession>(&request)) {
        if (!login_id.empty() || ++logins > kLoginsPerConnection) {
          co_await send(error_reply(login_id.empty() ? "too many logins on one connection"
                                                     : "a login is already in progress"));
          break;
        }
        method = methods::kLoginStart;
        params = start_params(*create, *identity, client);
      } else if (auto* enrol = std::get_if<login::EnrolPrint>(&request)) {
        // One enrolment is a connection of its own: no login before it, nothing after it.
        if (logins > 0) {
          refused(client, "login protocol: enrol_print after a login on the same connection",
                  identity->device);
          co_await send(error_reply("enrol_print must be the first message on its connection"));
          break;
        }
        deadline.cancel();
        Expected<nlohmann::json> recorded = co_await ctx.sessiond.async_call(
            methods::kRegistryEnrolmentRecord, enrol_params(*enrol, *identity), kServiceTimeout,
            asio::use_awaitable);
        co_await send(enrolment_response(recorded, *identity));
        break;
      } else if (auto* answer = std::get_if<login::PostAuthMessageResponse>(&request)) {
        if (login_id.empty()) {
          co_await send(error_reply("no login in progress"));
          continue;
        }
        method = methods::kLoginAnswer;
        params = answer_params(login_id, answer->response);
      } else {
        if (!login_id.empty()) {
          co_await ctx.sessiond.async_call(methods::kLoginCancel,
                                           cancel_params(login_id, "kiosk cancelled"),
                                           kServiceTimeout, asio::use_awaitable);
          login_id.clear();
        }
        continue;
      }
      deadline.cancel();  // the session manager's own timeouts apply while PAM works
      Expected<nlohmann::json> reply = co_await ctx.sessiond.async_call(
          method, std::move(params), kServiceTimeout, asio::use_awaitable);
      if (!reply) {
        spdlog::warn("login for device {}: {}", identity->device, reply.error().describe());
        login_id.clear();
        if (!co_await send(error_reply("the login service is unavailable"))) {
          break;
        }
        continue;
      }
      login_id = reply->value("login_id", "");
      const nlohmann::json& step = (*reply)["step"];
      if (step.value("type", "") != "auth_message") login_id.clear();  // the login is over
      // Every failure leaves after the same delay, whatever caused it.
      if (auto at = reply->find("not_before_ms"); at != reply->end() && at->is_number()) {
        const auto due = std::chrono::system_clock::time_point(
            std::chrono::milliseconds(at->get<std::int64_t>()));
        const auto wait = due - std::chrono::system_clock::now();
        if (wait > std::chrono::milliseconds(0)) {
          asio::steady_timer pause(executor, wait);
          error_code ec;
          co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        }
      }
      auto response = response_of(step, relay);
      if (!response) {
        spdlog::warn("login for device {}: {}", identity->device, response.error().describe());
        break;
      }
      if (!co_await send(*response)) break;
    }
    deadline.cancel();
    if (!login_id.empty()) {
      ctx.sessiond.post_call(methods::kLoginCancel,
                             cancel_params(login_id, "kiosk connection closed"),
                             [](const Expected<nlohmann::json>&) {});
    }
    socket.send_close_notify();
    socket.close();
  }
};

LoginListener::LoginListener(GatewayContext& ctx) : impl_(std::make_shared<Impl>(ctx)) {}

LoginListener::~LoginListener() {
  stop();
}

Status LoginListener::start() {
  Impl& m = *impl_;
  const auto& config = m.ctx.config;
  error_code ec;
  auto address = asio::ip::make_address(config.login.listen_address, ec);
  if (ec) {
    return fail(Errc::kInvalidArgument,
                "gateway.login.listen: not an IP address: " + config.login.listen_address);
  }
  tcp::endpoint endpoint(address, config.login.listen_port);
  m.acceptor.open(endpoint.protocol(), ec);
  if (!ec) m.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) m.acceptor.bind(endpoint, ec);
  if (!ec) m.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return fail(Errc::kUnavailable, "cannot listen for logins on " + config.login.listen_address +
                                        ":" + std::to_string(config.login.listen_port) + ": " +
                                        ec.message());
  }
  auto pin = x509::spki_sha256_hex_of_file(config.certificate);
  if (!pin) return error_of(pin);
  auto fingerprint = x509::xfreerdp_fingerprint_of_file(config.certificate);
  if (!fingerprint) return error_of(fingerprint);
  m.endpoint = {config.listen_address, config.listen_port, *pin, *fingerprint};
  asio::co_spawn(m.ctx.io, m.refresh_loop(), asio::detached);
  asio::co_spawn(m.ctx.io, m.accept_loop(), asio::detached);
  return {};
}

void LoginListener::stop() {
  Impl& m = *impl_;
  if (m.stopping.exchange(true)) return;
  asio::post(m.ctx.io, [impl = impl_] {
    error_code ec;
    impl->acceptor.close(ec);
    impl->refresh_timer.cancel();
  });
}

std::uint16_t LoginListener::port() const {
  error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

}  // namespace enclave::gateway
