// enclavectl: the operators' admin tool (see enclavectl/commands.hpp).
#include "enclavectl/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"enclavectl: operate the enclave's services"};
  enclave::ctl::Context context;
  enclave::cli::add_common_options(app, context.common);
  app.add_flag("--json", context.json, "JSON output for scripts");
  app.require_subcommand(1);
  app.fallthrough();
  enclave::ctl::add_audit_commands(app, context);
  enclave::ctl::add_session_commands(app, context);
  enclave::ctl::add_registry_commands(app, context);
  enclave::ctl::add_export_commands(app, context);
  CLI11_PARSE(app, argc, argv);
  return context.exit_code;
}
