// enclave-audit: the auditors' tool (see audit/cli/commands.hpp).
#include "audit/cli/commands.hpp"

int main(int argc, char** argv) {
  using namespace enclave::audit;
  CLI::App app{"enclave-audit: verify, query and export the enclave's audit trail"};
  cli::Context context;
  enclave::cli::add_common_options(app, context.common);
  app.add_option("--db", context.database, "audit database (default: from audit.toml)");
  app.add_option("--key", context.verifier_key,
                 "pinned verifier key file (default: from audit.toml)");
  app.add_flag("--json", context.json, "JSON output for scripts");
  app.require_subcommand(1);
  app.fallthrough();  // --json, --db, --key may also follow the subcommand
  cli::add_verify(app, context);
  cli::add_query(app, context);
  cli::add_export(app, context);
  CLI11_PARSE(app, argc, argv);
  return cli::exit_code();
}
