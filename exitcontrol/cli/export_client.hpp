// enclave-export: the analyst's tool inside the desktop. Results leave the enclave only through
// the session's outbox: the analyst copies files into it and asks enclave-exportd to export
// them; the engine checks them, the analyst answers for the files that failed (accept the safe
// version, ask for an exception, withdraw) and data stewards decide.
//
//   enclave-export request FILE... --justification TEXT [--project P] [--wait]
//   enclave-export status [R-N]
//   enclave-export accept-safe R-N FILE | exception R-N FILE --reason TEXT | withdraw R-N [FILE]
//
// The session proves itself with its export token, read from OUTBOX/.enclave-session (never
// printed). Socket: --socket, else $ENCLAVE_EXPORT_SOCKET, else STATE_DIR/run/exportd.sock.
// Outbox: --outbox, else $ENCLAVE_OUTBOX (the desktop's environment has it). --json prints the
// daemon's answer exactly.
//
// Exit codes: 0 done, 1 enclave-exportd refused (its message printed), 2 usage or connection
// errors (nothing was asked of the daemon, or its answer never came).
#pragma once

#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "common/cli.hpp"
#include "common/result.hpp"

namespace enclave::exitcontrol::exportcli {

inline constexpr int kExitRefused = 1;
inline constexpr int kExitError = 2;

struct Options {
  cli::CommonOptions common;
  std::filesystem::path socket;  // empty: STATE_DIR/run/exportd.sock
  std::filesystem::path outbox;  // empty: not in a session's desktop
  bool json = false;
};

// The session's export token from OUTBOX/.enclave-session (TOML, enclave-sessiond writes it:
// sessionmgr/service/outbox.hpp). Errors name the file, never the token.
Expected<std::string> read_export_token(const std::filesystem::path& outbox);

// The name in the outbox that FILE stands for: a plain name is a name in the outbox; a path must
// lead to a file directly in the outbox (the directory compared after resolving links; the
// file's own name is kept as written: exportd refuses links). kInvalidArgument naming FILE
// otherwise.
Expected<std::string> outbox_name(const std::filesystem::path& outbox, const std::string& file);

// The global options (common ones, --socket, --outbox, --json) and the subcommands; each
// subcommand's callback sets cli::exit_code().
void add_export_commands(CLI::App& app, Options& options);

}  // namespace enclave::exitcontrol::exportcli
