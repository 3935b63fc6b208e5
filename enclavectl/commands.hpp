// enclavectl, the operators' admin tool: one subcommand group per service, each speaking that
// service's framed protocol over its Unix socket. Later services add their groups here.
#pragma once

#include <CLI/CLI.hpp>

#include "common/cli.hpp"

namespace enclave::ctl {

struct Context {
  cli::CommonOptions common;
  bool json = false;
  int exit_code = 0;
};

void add_audit_commands(CLI::App& app, Context& context);
void add_session_commands(CLI::App& app, Context& context);

}  // namespace enclave::ctl
