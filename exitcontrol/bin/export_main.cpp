// enclave-export: the analyst's export requests (see exitcontrol/cli/export_client.hpp).
#include "exitcontrol/cli/export_client.hpp"

int main(int argc, char** argv) {
  using namespace enclave::exitcontrol::exportcli;
  CLI::App app{"enclave-export: ask for results in the outbox to leave the enclave"};
  Options options;
  add_export_commands(app, options);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help is a "parse error" that exits 0; every other one is a usage error.
    return app.exit(e) == 0 ? 0 : kExitError;
  }
  return enclave::cli::exit_code();
}
