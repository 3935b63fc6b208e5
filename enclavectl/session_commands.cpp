// enclavectl ticket issue | session list | session end: the session manager (enclave-sessiond).
#include <iostream>

#include "common/x509.hpp"
#include "enclavectl/commands.hpp"
#include "sessionmgr/core/policy.hpp"
#include "sessionmgr/service/methods.hpp"

namespace enclave::ctl {

namespace {

namespace methods = sessionmgr::methods;

struct IssueOptions {
  std::string user, device, source, compartment, site_class;
};

// The pin for the gateway's certificate as xfreerdp takes it, read from gateway.toml's
// certificate; empty when this host has no readable gateway certificate.
std::string gateway_pin_argument(const Context& ctx) {
  auto files = gateway_files(ctx);
  if (!files) return {};
  auto fingerprint = x509::xfreerdp_fingerprint_of_file(files->certificate);
  return fingerprint ? "/cert:fingerprint:sha256:" + *fingerprint : std::string();
}

}  // namespace

Expected<sessionmgr::SessionPolicy> load_sessions_policy(const Context& ctx) {
  auto document = cli::load_policy(ctx.common, "sessions.toml");
  if (!document) return error_of(document);
  return sessionmgr::load_session_policy(*document, ctx.common.state_dir);
}

int call_sessiond(Context& ctx, const char* method, nlohmann::json params,
                  const std::function<void(const nlohmann::json&)>& show) {
  auto policy = load_sessions_policy(ctx);
  if (!policy) return cli::report_error(policy.error());
  return call_service(ctx, policy->sessiond.socket, method, std::move(params),
                      std::chrono::minutes(2), show);
}

void add_session_commands(CLI::App& app, Context& ctx) {
  auto* ticket = app.add_subcommand("ticket", "one-time tickets (enclave-sessiond)");
  ticket->require_subcommand(1);
  auto o = std::make_shared<IssueOptions>();
  auto* issue = ticket->add_subcommand(
      "issue", "issue a one-time ticket for a user's session in a compartment");
  issue->add_option("--user", o->user, "the analyst")->required();
  issue->add_option("--device", o->device, "the thin client's device id")->required();
  issue->add_option("--source", o->source, "the client's IP address as the gateway will see it")
      ->required();
  issue->add_option("--compartment", o->compartment, "compartment name")->required();
  issue->add_option("--site-class", o->site_class,
                    "the remote site's class, for tiers that list them");
  issue->callback([&ctx, o] {
    nlohmann::json params = {{"user", o->user},
                             {"device", o->device},
                             {"source", o->source},
                             {"compartment", o->compartment}};
    if (!o->site_class.empty()) params["site_class"] = o->site_class;
    ctx.exit_code = call_sessiond(ctx, methods::kTicketIssue, params, [&ctx](const auto& r) {
      std::string pin = gateway_pin_argument(ctx);
      const auto& desktop = r["desktop"];
      std::cout << "ticket      " << cli::field(r, "ticket") << "\n"
                << "expires at  " << cli::field(r, "expires_at") << "\n"
                << "session     " << cli::field(r, "session_id")
                << (r.value("resumed", false) ? " (resumed)" : "") << "\n"
                << "desktop     " << cli::field(desktop, "id") << " ("
                << cli::field(desktop, "host") << ":" << cli::field(desktop, "port") << ")\n"
                << "connect with:\n  xfreerdp /v:" << cli::field(r, "gateway")
                << " /pcb:" << cli::field(r, "ticket") << " "
                << (pin.empty() ? "/cert:fingerprint:sha256:<the gateway certificate's>" : pin)
                << " /sec:tls\n";
    });
  });

  auto* session = app.add_subcommand("session", "sessions (enclave-sessiond)");
  session->require_subcommand(1);
  auto all = std::make_shared<bool>(false);
  auto* list = session->add_subcommand("list", "open sessions (with --all, ended ones too)");
  list->add_flag("--all", *all, "include ended sessions");
  list->callback([&ctx, all] {
    ctx.exit_code = call_sessiond(ctx, methods::kSessionList, {{"all", *all}}, [](const auto& r) {
      cli::TextTable table({"SESSION", "USER", "DEVICE", "COMPARTMENT", "TIER", "DESKTOP", "STATE",
                            "STARTED", "UPDATED"});
      for (const auto& s : r["sessions"]) {
        table.add({cli::field(s, "session_id"), cli::field(s, "user"), cli::field(s, "device"),
                   cli::field(s, "compartment"), cli::field(s, "tier"), cli::field(s, "desktop"),
                   cli::field(s, "state"), cli::field(s, "started_at"),
                   cli::field(s, "updated_at")});
      }
      if (table.empty()) {
        std::cout << "no sessions\n";
      } else {
        table.print(std::cout);
      }
    });
  });

  auto id = std::make_shared<std::string>();
  auto reason = std::make_shared<std::string>();
  auto* end = session->add_subcommand(
      "end", "end a session now: the gateway cuts it and its desktop is released");
  end->add_option("session", *id, "session id")->required();
  end->add_option("--reason", *reason, "why (recorded in the audit trail)");
  end->callback([&ctx, id, reason] {
    ctx.exit_code = call_sessiond(
        ctx, methods::kSessionEnd, {{"session_id", *id}, {"reason", *reason}}, [id](const auto& r) {
          std::cout << "ended " << *id << "; " << cli::field(r, "gateway") << "\n";
        });
  });
}

}  // namespace enclave::ctl
