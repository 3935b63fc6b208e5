// enclave-auditd: serves the audit log (run), or creates its signing key (keygen).
#include <iostream>

#include "audit/service/daemon.hpp"
#include "common/cli.hpp"
#include "common/log.hpp"

int main(int argc, char** argv) {
  using namespace enclave;
  CLI::App app{"enclave-auditd: the tamper-evident audit log's only writer"};
  cli::CommonOptions common;
  cli::add_common_options(app, common);
  app.require_subcommand(1);
  app.fallthrough();  // the common options may also follow the subcommand
  auto* run = app.add_subcommand("run", "serve the audit log until SIGTERM");
  auto* keygen = app.add_subcommand("keygen", "create the Ed25519 signing key and verifier key");
  CLI11_PARSE(app, argc, argv);

  auto level = log::parse_level(common.log_level);
  if (!level)
    return cli::report_error({Errc::kInvalidArgument, "unknown log level " + common.log_level});
  log::init({"enclave-auditd", *level, std::nullopt});

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
