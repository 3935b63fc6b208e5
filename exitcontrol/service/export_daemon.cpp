#include "exitcontrol/service/export_daemon.hpp"

#include <unistd.h>

#include <algorithm>
#include <csignal>

#include <spdlog/spdlog.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "audit/client/appender.hpp"
#include "common/files.hpp"
#include "common/ipc/server.hpp"
#include "common/net/ip.hpp"
#include "common/x509.hpp"
#include "exitcontrol/download/download_server.hpp"
#include "exitcontrol/service/export_engine.hpp"
#include "exitcontrol/service/export_service.hpp"
#include "exitcontrol/service/registry_view.hpp"
#include "exitcontrol/service/session_identity.hpp"

namespace enclave::exitcontrol {
namespace {

namespace asio = boost::asio;

constexpr int kRequestWorkers = 4;

bool is_analyst_method(const std::string& m) {
  return m == "export.submit" || m == "export.status" || m == "export.choose";
}
bool is_steward_method(const std::string& m) {
  return m == "export.queue" || m == "export.show" || m == "export.decide" || m == "export.link" ||
         m == "export.releases" || m == "export.key.rotate" || m == "export.project.destroy";
}

// The download listener's certificate: issued by the local CA when there is one (as the
// gateway's is), else self-signed; made once, kept.
Status ensure_download_certificate(const ExportPolicy& policy, const std::string& host) {
  std::error_code ec;
  const auto& d = policy.download;
  if (std::filesystem::exists(d.certificate, ec) && std::filesystem::exists(d.key, ec)) return {};
  std::filesystem::create_directories(d.certificate.parent_path(), ec);
  const auto ca_crt = policy.state_dir / "keys/ca/ca.crt";
  const auto ca_key = policy.state_dir / "keys/ca/ca.key";
  if (!std::filesystem::exists(ca_crt, ec)) {
    return x509::generate_self_signed(d.certificate, d.key, host);
  }
  auto ca = x509::CertificateAuthority::load(ca_crt, ca_key);
  if (!ca) return error_of(ca);
  x509::CertificateRequest request;
  request.purpose = x509::Purpose::kServer;
  request.common_name = host;
  net::IpAddress::parse(host) ? request.ip_addresses.push_back(host)
                              : request.dns_names.push_back(host);
  auto issued = ca->issue(request);
  if (!issued) return error_of(issued);
  ENCLAVE_TRY(write_file_atomically(d.key, issued->private_key_pem, 0600));
  return write_file_atomically(d.certificate, issued->certificate_pem, 0644);
}

}  // namespace

struct ExportDaemon::Impl : ipc::Handler {
  ExportPolicy policy;
  uid_t own_uid = ::getuid();
  std::unique_ptr<audit::Appender> audit;
  std::unique_ptr<SqliteRegistryView> registry;
  std::unique_ptr<ExportService> service;
  asio::io_context io;
  asio::thread_pool pool{kRequestWorkers};
  std::unique_ptr<ipc::Server> server;
  std::unique_ptr<download::DownloadServer> downloads;
  asio::steady_timer retention_timer{io};

  explicit Impl(ExportPolicy p) : policy(std::move(p)) {}

  bool may_act_for_others(const ipc::PeerCredentials& peer) const {
    return peer.uid == own_uid || peer.uid == 0 ||
           std::find(policy.consoles.begin(), policy.consoles.end(), peer.user) !=
               policy.consoles.end();
  }

  void on_refused(const ipc::PeerCredentials& peer, const std::string& reason) override {
    audit->append(audit::refused_connection_event("exportd.refused", peer, reason));
  }

  // The steward a request is for: the peer, or whom a trusted peer names.
  Expected<std::string> acting_user(const ipc::PeerCredentials& peer, const nlohmann::json& p) {
    auto as = p.find("as");
    if (as == p.end() || as->is_null()) return peer.user;
    if (!as->is_string() || as->get<std::string>().empty()) {
      return fail(Errc::kInvalidArgument, "\"as\" must name a user");
    }
    if (!may_act_for_others(peer)) {
      on_refused(peer, "tried to act as " + as->get<std::string>().substr(0, 64));
      return fail(Errc::kPermission, peer.user + " may not act for another user");
    }
    return as->get<std::string>();
  }

  void handle(const ipc::PeerCredentials& peer, ipc::Request request,
              ipc::Responder respond) override {
    const std::string& m = request.method;
    if (!is_analyst_method(m) && !is_steward_method(m)) {
      return respond(ipc::Response::failure(
          request.id, {Errc::kInvalidArgument, "unknown method " + m.substr(0, 64)}));
    }
    asio::post(pool, [this, peer, request = std::move(request), respond = std::move(respond)] {
      auto result = dispatch(peer, request);
      respond(result ? ipc::Response::success(request.id, std::move(result).value())
                     : ipc::Response::failure(request.id, result.error()));
    });
  }

  Expected<nlohmann::json> dispatch(const ipc::PeerCredentials& peer, const ipc::Request& r) {
    const auto& m = r.method;
    if (!r.params.is_object()) return fail(Errc::kInvalidArgument, "params must be an object");
    if (m == "export.submit") return service->submit(r.params);
    if (m == "export.status") return service->status(r.params);
    if (m == "export.choose") return service->choose(r.params);
    auto user = acting_user(peer, r.params);
    if (!user) return error_of(user);
    // The machine's operator: root or this daemon's user, acting for nobody else.
    const bool machine = (peer.uid == 0 || peer.uid == own_uid) && !r.params.contains("as");
    if (m == "export.queue") return service->queue(*user, r.params);
    if (m == "export.show") return service->show(*user, r.params);
    if (m == "export.decide") return service->decide(*user, r.params);
    if (m == "export.link") return service->link(*user, machine, r.params);
    if (m == "export.releases") return service->releases(*user, machine, r.params);
    if (m == "export.key.rotate") return service->rotate_key(*user, machine, r.params);
    return service->destroy_project(*user, machine, r.params);
  }

  void schedule_retention() {
    retention_timer.expires_after(std::chrono::hours(1));
    retention_timer.async_wait([this](const boost::system::error_code& error) {
      if (error) return;
      asio::post(pool, [this] { service->apply_retention(); });
      schedule_retention();
    });
  }
};

ExportDaemon::ExportDaemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ExportDaemon::~ExportDaemon() {
  impl_->pool.join();
  impl_->service.reset();  // its workers finish the check or release in hand
}

Expected<std::unique_ptr<ExportDaemon>> ExportDaemon::open(ExportPolicy policy,
                                                           ExportServiceDeps engine) {
  auto impl = std::make_unique<Impl>(std::move(policy));
  Impl& d = *impl;
  d.audit = std::make_unique<audit::Appender>(d.policy.audit_socket);
  auto registry = SqliteRegistryView::open(d.policy.registry);
  if (!registry) return error_of(registry);
  d.registry = std::move(registry).value();
  if (!engine.check) engine.check = engine_check(d.policy.policies_dir, d.policy.ledger);
  engine.identify = sessiond_identify(d.policy.sessiond_socket);
  engine.registry = d.registry.get();
  engine.audit = d.audit.get();
  auto service = ExportService::open(d.policy, std::move(engine));
  if (!service) return error_of(service);
  d.service = std::move(service).value();
  return std::unique_ptr<ExportDaemon>(new ExportDaemon(std::move(impl)));
}

Status ExportDaemon::run() {
  Impl& d = *impl_;
  // A desktop tool that goes away mid-answer must not take the daemon with it.
  std::signal(SIGPIPE, SIG_IGN);
  asio::signal_set signals(d.io, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& error, int) {
    if (!error) stop();
  });
  ipc::ServerOptions options;
  options.socket_path = d.policy.socket;
  options.socket_mode = 0666;  // the desktops' tools connect; their token proves the session
  options.authorize = [](const ipc::PeerCredentials&) { return true; };
  std::error_code ec;
  std::filesystem::create_directories(options.socket_path.parent_path(), ec);
  d.server = std::make_unique<ipc::Server>(d.io, options, d);
  ENCLAVE_TRY(d.server->start());
  std::string listening = "off";
  if (d.policy.download.enabled) {
    const auto& listen = d.policy.download.listen;
    const auto colon = listen.rfind(':');
    download::DownloadServerOptions o;
    o.address = listen.substr(0, colon);
    o.port = static_cast<std::uint16_t>(std::stoi(listen.substr(colon + 1)));
    o.certificate = d.policy.download.certificate;
    o.private_key = d.policy.download.key;
    ENCLAVE_TRY(ensure_download_certificate(d.policy, o.address));
    d.downloads = std::make_unique<download::DownloadServer>(d.io, o, d.service->downloads());
    ENCLAVE_TRY(d.downloads->start());
    listening = o.address + ":" + std::to_string(d.downloads->port());
  }
  d.service->apply_retention();
  d.schedule_retention();
  d.audit->append({{"type", "exportd.start"},
                   {"outcome", "success"},
                   {"actor_kind", "service"},
                   {"actor", "enclave-exportd"},
                   {"object", d.policy.source},
                   {"details", {{"downloads", listening}}}});
  spdlog::info("serving export requests at {}; downloads {}", d.policy.socket.string(), listening);
  d.io.run();
  d.pool.join();
  d.audit->append({{"type", "exportd.stop"},
                   {"outcome", "success"},
                   {"actor_kind", "service"},
                   {"actor", "enclave-exportd"},
                   {"object", d.policy.source}});
  if (auto flushed = d.audit->flush(std::chrono::seconds(5)); !flushed) {
    spdlog::error("audit events not acknowledged at shutdown: {}", flushed.error().describe());
  }
  return {};
}

void ExportDaemon::stop() {
  Impl& d = *impl_;
  asio::post(d.io, [&d] {
    if (d.server) d.server->stop();
    if (d.downloads) d.downloads->stop();
    d.retention_timer.cancel();
    d.io.stop();
  });
}

}  // namespace enclave::exitcontrol
