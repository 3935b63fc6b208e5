// enclave-exitcheck: the exit-control engine's tool (see exitcontrol/cli/commands.hpp).
#include "exitcontrol/cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace enclave::exitcontrol;
  CLI::App app{"enclave-exitcheck: disclosure checks, safe versions and the release ledger"};
  cli::Context context;
  enclave::cli::add_common_options(app, context.common);
  app.add_option("--profile", context.profile, "export profile in POLICIES/exitcontrol/")
      ->capture_default_str();
  app.add_option("--tier", context.tier, "tier overrides of the profile to apply");
  app.add_option("--ledger", context.ledger,
                 "release ledger (default: STATE_DIR/exitcontrol/ledger.db)");
  app.add_flag("--json", context.json, "JSON output for scripts");
  app.require_subcommand(1);
  app.fallthrough();  // the global options may also follow the subcommand
  cli::add_check(app, context);
  cli::add_audit(app, context);
  cli::add_tabulate(app, context);
  cli::add_ledger(app, context);
  cli::add_release(app, context);
  CLI11_PARSE(app, argc, argv);
  return cli::exit_code();
}
