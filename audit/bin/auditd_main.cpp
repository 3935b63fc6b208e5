// enclave-auditd: serves the audit log (run), or creates its signing key (keygen).
#include <iostream>

#include "audit/service/daemon.hpp"
#include "common/cli.hpp"

int main(int argc, char** argv) {
  using namespace enclave;
  cli::DaemonCommand command("enclave-auditd", "the tamper-evident audit log's only writer");
  CLI::App& app = command.app;
  const cli::CommonOptions& common = command.common;
  auto* run = app.add_subcommand("run", "serve the audit log until SIGTERM");
  auto* keygen = app.add_subcommand("keygen", "create the Ed25519 signing key and verifier key");
  if (auto done = command.start(argc, argv)) return *done;

  auto policy = cli::load_policy(common, "audit.toml");
  if (!policy) return cli::report_error(policy.error());
  auto config = audit::load_daemon_config(*policy, common.state_dir);
  if (!config) return cli::report_error(config.error());

  if (*keygen) {
    if (auto made = audit::generate_signing_key(*config); !made) {
      return cli::report_error(made.error());
    }
    std::cout << "signing key:  " << config->signing_key.string() << "\n"
              << "verifier key: " << config->verifier_key.string() << "\n";
    return 0;
  }
  (void)run;
  auto daemon = audit::Daemon::open(std::move(config).value());
  if (!daemon) return cli::report_error(daemon.error());
  if (auto served = (*daemon)->run(); !served) return cli::report_error(served.error());
  return 0;
}
