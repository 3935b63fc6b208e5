#include "sessionmgr/service/daemon.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "audit/client/appender.hpp"
#include "common/bytes.hpp"
#include "common/ipc/client.hpp"
#include "common/ipc/server.hpp"
#include "sessionmgr/service/local_desktop.hpp"
#include "sessionmgr/service/login_admission.hpp"
#include "sessionmgr/service/login_service.hpp"
#include "sessionmgr/service/methods.hpp"
#include "sessionmgr/service/pam_stack.hpp"
#include "sessionmgr/service/params.hpp"
#include "sessionmgr/service/rdp_probe.hpp"
#include "sessionmgr/service/registry_service.hpp"
#include "sessionmgr/service/session_service.hpp"

namespace enclave::sessionmgr {

namespace {

namespace asio = boost::asio;

constexpr std::size_t kWorkers = 4;
// Login calls wait on their PAM transaction's next step: their own threads, so that many
// logins at once never hold up a ticket redemption.
constexpr std::size_t kLoginWorkers = 16;
constexpr auto kTick = std::chrono::seconds(1);

class AppenderSink : public AuditSink {
 public:
  explicit AppenderSink(const std::filesystem::path& socket) : appender_(socket) {}
  bool healthy() const override { return appender_.healthy(); }
  bool append(nlohmann::json event) override { return appender_.append(std::move(event)); }
  Status append_sync(nlohmann::json event) override {
    return appender_.append_sync(std::move(event));
  }
  audit::Appender& appender() { return appender_; }

 private:
  audit::Appender appender_;
};

class LocalHandle : public DesktopHandle {
 public:
  explicit LocalHandle(std::unique_ptr<LocalDesktop> desktop) : desktop_(std::move(desktop)) {}
  const LocalDesktopInfo& info() const override { return desktop_->info(); }
  bool alive() const override { return desktop_->alive(); }

 private:
  std::unique_ptr<LocalDesktop> desktop_;
};

bool listed(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// The gateway's byte counts as flat totals: either an object of counters ({"to_host": N, ...})
// or its per-channel list ([{"name", "to_host", "to_client", "dropped_to_host",
// "dropped_to_client", ...}]), which becomes totals plus "<channel>.<counter>" entries.
Expected<nlohmann::json> byte_counts(const nlohmann::json& bytes) {
  if (bytes.is_object()) return bytes;
  if (!bytes.is_array()) {
    return fail(Errc::kInvalidArgument, "\"bytes\" must be an object or a list of channels");
  }
  nlohmann::json out = nlohmann::json::object();
  auto add = [&](const std::string& key, std::int64_t n) {
    out[key] = out.value(key, std::int64_t{0}) + n;
  };
  for (const auto& channel : bytes) {
    if (!channel.is_object()) continue;
    const std::string name = channel.value("name", "");
    for (const char* counter : {"to_host", "to_client", "dropped_to_host", "dropped_to_client"}) {
      auto it = channel.find(counter);
      if (it == channel.end() || !it->is_number_integer()) continue;
      const auto n = it->get<std::int64_t>();
      if (n < 0) continue;
      add(counter, n);
      if (!name.empty() && name.size() <= 64) add(name + "." + counter, n);
    }
  }
  return out;
}

}  // namespace

struct Daemon::Impl : ipc::Handler {
  SessionPolicy policy;
  uid_t own_uid = ::getuid();
  std::unique_ptr<AppenderSink> audit;
  std::unique_ptr<SessionService> service;
  std::unique_ptr<RegistryService> registry;
  std::unique_ptr<LoginAdmission> admission;
  std::unique_ptr<LoginService> login;  // null when the stack could not be installed
  std::string login_off;                // why (for login.* callers and the start event)

  asio::io_context io;
  asio::thread_pool pool{kWorkers};
  asio::thread_pool login_pool{kLoginWorkers};
  std::unique_ptr<ipc::Server> server;
  asio::steady_timer tick_timer{io};
  asio::steady_timer health_timer{io};
  std::atomic<bool> ticking{false}, checking{false}, stopping{false};

  bool is_operator(const ipc::PeerCredentials& peer) const {
    return peer.uid == own_uid || peer.uid == 0 || listed(policy.sessiond.operators, peer.user);
  }
  bool is_gateway(const ipc::PeerCredentials& peer) const {
    return peer.uid == own_uid || peer.uid == 0 || listed(policy.sessiond.gateways, peer.user);
  }
  bool is_exporter(const ipc::PeerCredentials& peer) const {
    return peer.uid == own_uid || peer.uid == 0 || listed(policy.sessiond.exporters, peer.user);
  }

  void on_refused(const ipc::PeerCredentials& peer, const std::string& reason) override {
    audit->append(audit::refused_connection_event("sessiond.refused", peer, reason));
  }

  void handle(const ipc::PeerCredentials& peer, ipc::Request request,
              ipc::Responder respond) override {
    const std::string& m = request.method;
    const bool operator_method = m == methods::kTicketIssue || m == methods::kSessionList ||
                                 m == methods::kSessionEnd ||
                                 RegistryService::is_operator_method(m);
    const bool gateway_method = m == methods::kTicketRedeem || m == methods::kSessionConnected ||
                                m == methods::kSessionDisconnected || is_login_method(m) ||
                                RegistryService::is_gateway_method(m);
    const bool exporter_method = m == methods::kSessionIdentify;
    if (!operator_method && !gateway_method && !exporter_method) {
      return respond(ipc::Response::failure(
          request.id, {Errc::kInvalidArgument, "unknown method " + m.substr(0, 64)}));
    }
    if ((operator_method && !is_operator(peer)) || (gateway_method && !is_gateway(peer)) ||
        (exporter_method && !is_exporter(peer))) {
      on_refused(peer, m + ": not allowed for " + peer.user);
      return respond(ipc::Response::failure(
          request.id, {Errc::kPermission, m + " is not allowed for " + peer.user}));
    }
    asio::post(is_login_method(m) ? login_pool : pool,
               [this, peer, request = std::move(request), respond = std::move(respond)] {
                 auto result = dispatch(peer, request);
                 respond(result ? ipc::Response::success(request.id, std::move(result).value())
                                : ipc::Response::failure(request.id, result.error()));
               });
  }

  Expected<nlohmann::json> dispatch(const ipc::PeerCredentials& peer, const ipc::Request& r) {
    const auto& p = r.params;
    const std::string& m = r.method;
    if (RegistryService::is_operator_method(m) || RegistryService::is_gateway_method(m)) {
      return registry->call(m, p, peer.user);
    }
    if (is_login_method(m)) return dispatch_login(m, p);
    if (m == methods::kTicketIssue) {
      IssueRequest req;
      auto user = text_param(p, "user", 128);
      if (!user) return error_of(user);
      auto device = text_param(p, "device", 128);
      if (!device) return error_of(device);
      auto source = text_param(p, "source", 64);
      if (!source) return error_of(source);
      auto compartment = text_param(p, "compartment", 64);
      if (!compartment) return error_of(compartment);
      auto site_class = text_param(p, "site_class", 64, false);
      if (!site_class) return error_of(site_class);
      req = {*user, *device, *source, *compartment, *site_class};
      return service->issue(req, peer.user);
    }
    if (m == methods::kTicketRedeem) {
      auto ticket = text_param(p, "ticket", 128);
      if (!ticket) return error_of(ticket);
      auto source = text_param(p, "source", 64);
      if (!source) return error_of(source);
      auto result = service->redeem(*ticket, *source, peer.user);
      secure_wipe(ticket->data(), ticket->size());
      return result;
    }
    if (m == methods::kSessionConnected) {
      auto id = text_param(p, "session_id", 64);
      if (!id) return error_of(id);
      ENCLAVE_TRY(service->connected(*id));
      return nlohmann::json::object();
    }
    if (m == methods::kSessionDisconnected) {
      auto id = text_param(p, "session_id", 64);
      if (!id) return error_of(id);
      auto reason = text_param(p, "reason", 256, false);
      if (!reason) return error_of(reason);
      bool ended = false;
      if (auto it = p.find("ended"); it != p.end()) {
        if (!it->is_boolean()) return fail(Errc::kInvalidArgument, "\"ended\" must be a boolean");
        ended = it->get<bool>();
      }
      auto bytes = byte_counts(p.value("bytes", nlohmann::json::object()));
      if (!bytes) return error_of(bytes);
      ENCLAVE_TRY(service->disconnected(*id, *reason, ended, *bytes));
      return nlohmann::json::object();
    }
    if (m == methods::kSessionIdentify) {
      auto token = text_param(p, "token", 128);
      if (!token) return error_of(token);
      auto result = service->identify(*token, peer.user);
      secure_wipe(token->data(), token->size());
      return result;
    }
    if (m == methods::kSessionList) {
      bool all = false;
      if (auto it = p.find("all"); it != p.end() && it->is_boolean()) all = it->get<bool>();
      return service->list(all);
    }
    // kSessionEnd
    auto id = text_param(p, "session_id", 64);
    if (!id) return error_of(id);
    auto reason = text_param(p, "reason", 200, false);
    if (!reason) return error_of(reason);
    return service->end(*id, *reason, peer.user);
  }

  static bool is_login_method(const std::string& m) {
    return m == methods::kLoginStart || m == methods::kLoginAnswer || m == methods::kLoginCancel;
  }

  Expected<nlohmann::json> dispatch_login(const std::string& m, const nlohmann::json& p) {
    if (!login) return fail(Errc::kUnavailable, "logins are off: " + login_off);
    if (m == methods::kLoginStart) {
      LoginRequest r;
      for (auto [key, out, max, required] :
           {std::tuple{"user", &r.user, 256, true}, std::tuple{"device", &r.device, 128, true},
            std::tuple{"source", &r.source, 64, true},
            std::tuple{"certificate_sha256", &r.certificate_sha256, 64, true},
            std::tuple{"compartment", &r.compartment, 64, false}}) {
        auto v = text_param(p, key, static_cast<std::size_t>(max), required);
        if (!v) return error_of(v);
        *out = std::move(v).value();
      }
      return reply_json(login->start(r));
    }
    auto id = text_param(p, "login_id", 64);
    if (!id) return error_of(id);
    if (m == methods::kLoginCancel) {
      auto reason = text_param(p, "reason", 200, false);
      if (!reason) return error_of(reason);
      ENCLAVE_TRY(login->cancel(*id, *reason));
      return nlohmann::json::object();
    }
    std::optional<std::string> response;
    if (auto it = p.find("response"); it != p.end() && !it->is_null()) {
      auto v = text_param(p, "response", 16 * 1024, false);
      if (!v) return error_of(v);
      response = std::move(v).value();
    }
    return reply_json(login->answer(*id, std::move(response)));
  }

  // A step for the gateway, with the time it may be sent (unix milliseconds).
  static Expected<nlohmann::json> reply_json(Expected<LoginReply> reply) {
    if (!reply) return error_of(reply);
    nlohmann::json body = std::move(reply->body);
    body["not_before_ms"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(reply->not_before.time_since_epoch())
            .count();
    return body;
  }

  // The login service, or why not: without its PAM stack the daemon still serves tickets.
  void open_login() {
    const SessiondSettings& s = policy.sessiond;
    auto confdir = install_pam_stack(s);
    if (!confdir) {
      login_off = confdir.error().describe();
      spdlog::warn("logins are off: {}", login_off);
      return;
    }
    auto opened = LoginAdmission::open(s.registry);
    if (!opened) {
      login_off = "registry " + s.registry.string() + ": " + opened.error().describe();
      spdlog::warn("logins are off: {}", login_off);
      return;
    }
    admission = std::move(opened).value();
    LoginServiceOptions options;
    options.pam_service = s.login.pam_service;
    options.pam_confdir = *confdir;
    options.failure_delay = s.login.failure_delay;
    options.answer_timeout = s.login.answer_timeout;
    options.max_logins = static_cast<std::size_t>(s.login.max_logins);
    LoginDeps deps;
    deps.audit = audit.get();
    deps.check_device = [this](const LoginRequest& r) { return admission->check_device(r); };
    deps.admit = [this](const LoginRequest& r) { return admission->admit(r); };
    deps.issue_ticket = [this](const IssueRequest& r) { return service->issue(r, "login"); };
    login = std::make_unique<LoginService>(std::move(options), std::move(deps));
  }

  void schedule_tick() {
    tick_timer.expires_after(kTick);
    tick_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      if (!ticking.exchange(true)) {
        asio::post(pool, [this] {
          service->tick();
          registry->tick();
          ticking = false;
        });
      }
      schedule_tick();
    });
  }

  void schedule_health() {
    health_timer.expires_after(policy.sessiond.health_interval);
    health_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopping) return;
      if (!checking.exchange(true)) {
        asio::post(pool, [this] {
          service->check_health();
          checking = false;
        });
      }
      schedule_health();
    });
  }
};

Expected<std::unique_ptr<Daemon>> Daemon::open(SessionPolicy policy) {
  auto impl = std::make_unique<Impl>();
  impl->policy = policy;
  impl->audit = std::make_unique<AppenderSink>(policy.sessiond.audit_socket);
  ServiceDeps deps;
  deps.audit = impl->audit.get();
  deps.start_local =
      [](const LocalDesktopOptions& options) -> Expected<std::unique_ptr<DesktopHandle>> {
    auto d = LocalDesktop::start(options);
    if (!d) return error_of(d);
    return std::unique_ptr<DesktopHandle>(std::make_unique<LocalHandle>(std::move(d).value()));
  };
  deps.probe = [](const std::string& host, std::uint16_t port) { return probe_rdp(host, port); };
  deps.provision = [](const StaticHost& host, const std::string& user,
                      const std::string& password) {
    std::string input = user + "\n" + password + "\n";
    auto done =
        run_with_input(host.provision_command, {host.host, std::to_string(host.port)}, input);
    secure_wipe(input.data(), input.size());
    return done;
  };
  deps.end_on_gateway = [socket = policy.sessiond.gateway_socket](
                            const std::string& id, const std::string& reason) -> Expected<bool> {
    auto client = ipc::Client::connect(socket, std::chrono::seconds(1));
    if (!client) return error_of(client);
    auto r = client->call(methods::kGatewaySessionEnd, {{"session_id", id}, {"reason", reason}},
                          std::chrono::seconds(5));
    if (!r) return error_of(r);
    auto found = r->find("found");
    return found != r->end() && found->is_boolean() && found->get<bool>();
  };
  RegistryOptions registry_options;
  registry_options.database = policy.sessiond.registry;
  registry_options.print_key = policy.sessiond.print_key;
  registry_options.ca_certificate = policy.sessiond.ca_certificate;
  registry_options.enrolment_window = policy.sessiond.enrolment_window;
  for (const auto& [name, compartment] : policy.compartments) {
    registry_options.compartments.insert(name);
  }
  auto registry = RegistryService::open(std::move(registry_options), {impl->audit.get(), {}, {}});
  if (!registry) return error_of(registry);
  impl->registry = std::move(registry).value();
  auto service = SessionService::open(std::move(policy), std::move(deps));
  if (!service) return error_of(service);
  impl->service = std::move(service).value();
  impl->open_login();
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Daemon::~Daemon() {
  impl_->pool.join();
  impl_->login_pool.join();
  impl_->login.reset();    // cancels logins in progress before their deps go
  impl_->service.reset();  // stops any local desktop left
}

Status Daemon::run() {
  Impl& d = *impl_;
  // Desktops first: a compartment's hosts are known healthy or not before any ticket.
  d.service->check_health();
  asio::signal_set signals(d.io, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& error, int) {
    if (!error) stop();
  });
  ipc::ServerOptions options;
  options.socket_path = d.policy.sessiond.socket;
  options.authorize = [&d](const ipc::PeerCredentials& peer) {
    return d.is_operator(peer) || d.is_gateway(peer) || d.is_exporter(peer);
  };
  std::error_code ec;
  std::filesystem::create_directories(options.socket_path.parent_path(), ec);
  d.server = std::make_unique<ipc::Server>(d.io, options, d);
  ENCLAVE_TRY(d.server->start());
  d.audit->append({{"type", "sessiond.start"},
                   {"outcome", "success"},
                   {"actor_kind", "service"},
                   {"actor", "enclave-sessiond"},
                   {"object", d.policy.source},
                   {"details",
                    {{"compartments", d.policy.compartments.size()},
                     {"tiers", d.policy.tiers.size()},
                     {"login", d.login ? "on" : "off: " + d.login_off}}}});
  spdlog::info("serving {} compartment(s) at {}", d.policy.compartments.size(),
               d.policy.sessiond.socket.string());
  d.schedule_tick();
  d.schedule_health();
  d.io.run();

  d.login_pool.join();
  d.login.reset();  // cancels the logins left waiting for a kiosk: their PAM threads unwind
  d.pool.join();    // requests in progress finish
  d.service->shutdown();
  d.audit->append({{"type", "sessiond.stop"},
                   {"outcome", "success"},
                   {"actor_kind", "service"},
                   {"actor", "enclave-sessiond"},
                   {"object", d.policy.source}});
  // Waits for a reachable auditd; an unreachable one gets a moment to come back.
  const auto patience = d.audit->healthy() ? std::chrono::seconds(5) : std::chrono::seconds(1);
  if (auto flushed = d.audit->appender().flush(patience); !flushed) {
    spdlog::error("audit events not acknowledged at shutdown: {}", flushed.error().describe());
  }
  spdlog::info("stopped");
  return {};
}

void Daemon::stop() {
  Impl& d = *impl_;
  asio::post(d.io, [&d] {
    d.stopping = true;
    if (d.server) d.server->stop();
    d.tick_timer.cancel();
    d.health_timer.cancel();
    d.io.stop();
  });
}

}  // namespace enclave::sessionmgr
