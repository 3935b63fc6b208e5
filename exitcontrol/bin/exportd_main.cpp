// enclave-exportd: serves export requests, their review, the releases and their one-time
// download links (run), or checks policies/exports.toml and prints what it sets (check).
#include <iostream>

#include "common/cli.hpp"
#include "exitcontrol/service/export_daemon.hpp"
#include "exitcontrol/service/export_policy.hpp"

int main(int argc, char** argv) {
  using namespace enclave;
  cli::DaemonCommand command("enclave-exportd",
                             "export requests, steward review, releases and downloads");
  CLI::App& app = command.app;
  const cli::CommonOptions& common = command.common;
  auto* run = app.add_subcommand("run", "serve until SIGTERM");
  auto* check = app.add_subcommand("check", "validate policies/exports.toml and summarise it");
  if (auto done = command.start(argc, argv)) return *done;
  auto document = cli::load_policy(common, "exports.toml");
  if (!document) return cli::report_error(document.error());
  auto policy = exitcontrol::load_export_policy(*document, common.state_dir);
  if (!policy) return cli::report_error(policy.error());
  if (*check) {
    cli::TextTable table({"SETTING", "VALUE"});
    table.add({"socket", policy->socket.string()});
    table.add({"outbox_root", policy->outbox_root.string()});
    table.add({"spool", policy->spool.string()});
    table.add({"releases", policy->releases.string()});
    table.add({"downloads", policy->download.enabled ? policy->download.url : "off"});
    table.add(
        {"link_ttl_h",
         std::to_string(std::chrono::duration_cast<std::chrono::hours>(policy->link_ttl).count())});
    table.add({"retention_days", std::to_string(policy->retention_days)});
    std::cout << policy->source << "\n";
    table.print(std::cout);
    return 0;
  }
  (void)run;
  auto daemon = exitcontrol::ExportDaemon::open(std::move(policy).value(), {});
  if (!daemon) return cli::report_error(daemon.error());
  if (auto served = (*daemon)->run(); !served) return cli::report_error(served.error());
  return 0;
}
