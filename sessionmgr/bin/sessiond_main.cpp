// enclave-sessiond: serves compartments, desktop pools, sessions and one-time tickets (run), or
// checks policies/sessions.toml and prints what it defines (check).
#include <iostream>
#include <variant>

#include "common/cli.hpp"
#include "sessionmgr/core/policy.hpp"
#include "sessionmgr/service/daemon.hpp"

int main(int argc, char** argv) {
  using namespace enclave;
  cli::DaemonCommand command("enclave-sessiond",
                             "compartments, desktop pools, sessions and one-time tickets");
  CLI::App& app = command.app;
  const cli::CommonOptions& common = command.common;
  auto* run = app.add_subcommand("run", "serve until SIGTERM");
  auto* check = app.add_subcommand("check", "validate policies/sessions.toml and summarise it");
  if (auto done = command.start(argc, argv)) return *done;

  auto document = cli::load_policy(common, "sessions.toml");
  if (!document) return cli::report_error(document.error());
  auto policy = sessionmgr::load_session_policy(*document, common.state_dir);
  if (!policy) return cli::report_error(policy.error());
  if (auto profiles = sessionmgr::check_export_profiles(*document, *policy); !profiles) {
    return cli::report_error(profiles.error());
  }

  if (*check) {
    cli::TextTable table({"COMPARTMENT", "TIER", "POOL", "DESKTOPS"});
    for (const auto& [name, c] : policy->compartments) {
      if (const auto* hosts = std::get_if<std::vector<sessionmgr::StaticHost>>(&c.pool)) {
        table.add({name, c.tier, "static", std::to_string(hosts->size())});
      } else {
        const auto& local = std::get<sessionmgr::LocalPool>(c.pool);
        table.add({name, c.tier,
                   local.kind == sessionmgr::LocalKind::kXrdp ? "local xrdp" : "local shadow",
                   std::to_string(local.max_desktops)});
      }
    }
    std::cout << policy->source << ": " << policy->tiers.size() << " tier(s), "
              << policy->compartments.size() << " compartment(s)\n";
    table.print(std::cout);
    return 0;
  }
  (void)run;
  auto daemon = sessionmgr::Daemon::open(std::move(policy).value());
  if (!daemon) return cli::report_error(daemon.error());
  if (auto served = (*daemon)->run(); !served) return cli::report_error(served.error());
  return 0;
}
