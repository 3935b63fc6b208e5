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
#include "common/result.hpp"
#include "sessionmgr/core/policy.hpp"

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

// policies/sessions.toml, with paths under the state directory.
Expected<sessionmgr::SessionPolicy> load_sessions_policy(const Context& ctx);
// Calls one method of enclave-sessiond (its socket from sessions.toml), as call_service.
int call_sessiond(Context& ctx, const char* method, nlohmann::json params,
                  const std::function<void(const nlohmann::json&)>& show);
// The gateway's certificate and key as gateway.toml's [gateway] names them (defaults
// keys/gateway.crt and keys/gateway.key), under the state directory.
struct GatewayFiles {
  std::filesystem::path certificate, private_key;
};
Expected<GatewayFiles> gateway_files(const Context& ctx);

void add_audit_commands(CLI::App& app, Context& context);
void add_session_commands(CLI::App& app, Context& context);
// The registry (users, sites, devices, projects, enrolments) and the local CA.
void add_registry_commands(CLI::App& app, Context& context);
// The export review and releases (enclave-exportd): queue, show, approve, reject, link, ...
void add_export_commands(CLI::App& app, Context& context);

}  // namespace enclave::ctl
