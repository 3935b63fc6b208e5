// enclavectl, the operators' admin tool: one subcommand group per service, each speaking that
// service's framed protocol over its Unix socket. Later services add their groups here.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/cli.hpp"

namespace enclave::ctl {

struct Context {
  cli::CommonOptions common;
  bool json = false;
  int exit_code = 0;
};

// Calls one method on a service's socket; prints the result as JSON (--json) or through
// `show`. Returns the exit code.
int call_service(Context& ctx, const std::filesystem::path& socket, const std::string& method,
                 nlohmann::json params, std::chrono::milliseconds timeout,
                 const std::function<void(const nlohmann::json&)>& show);

void add_audit_commands(CLI::App& app, Context& context);
void add_session_commands(CLI::App& app, Context& context);

}  // namespace enclave::ctl
