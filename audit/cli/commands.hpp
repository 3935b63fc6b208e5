// The auditors' tool, enclave-audit. It reads the audit database read-only (auditors never
// hold the write handle) plus the off-box copies and the pinned verifier key, and prints
// aligned tables for people or JSON for scripts (--json).
//
// Exit codes: 0 done (verify: intact), 1 verify found a problem, 2 could not run.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "audit/core/note.hpp"
#include "audit/service/daemon.hpp"
#include "audit/service/log_store.hpp"
#include "common/cli.hpp"

namespace enclave::audit::cli {

using enclave::cli::exit_code;

// Options every subcommand shares; paths default to what policies/audit.toml says.
struct Context {
  enclave::cli::CommonOptions common;
  std::filesystem::path database;      // --db
  std::filesystem::path verifier_key;  // --key
  bool json = false;

  // Resolves the defaults from the policy (only when a path was not given).
  Expected<DaemonConfig> config() const;
  Expected<LogStore> open_store() const;
  Expected<note::Verifier> verifier() const;
};

// Query filters shared by query, export and forward.
struct Filters {
  std::string user, site, device, session, type, outcome, since, until;
  std::optional<std::uint64_t> limit;

  void add_to(CLI::App& command);
  Expected<Query> to_query() const;
};

void add_verify(CLI::App& app, Context& context);
void add_query(CLI::App& app, Context& context);   // query, timeline, report
void add_export(CLI::App& app, Context& context);  // export, forward, verify-export

}  // namespace enclave::audit::cli
