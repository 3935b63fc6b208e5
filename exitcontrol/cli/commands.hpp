// enclave-exitcheck, the exit-control engine's command-line tool: check output files against
// an export profile, suggest a safe version (secondary suppression or rounding), audit a
// table someone already published, tabulate row-level data inside the enclave, and keep the
// per-project release ledger; the recipient of a release verifies its bundle. People get aligned
// tables and a short summary; --json prints results.json (ACRO's schema) for scripts.
//
// Exit codes: 0 every file passes, 1 a file fails, 3 nothing fails but a steward must review,
// 2 could not run (bad input, bad policy).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "common/cli.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/primary.hpp"
#include "exitcontrol/core/profile.hpp"

namespace enclave::exitcontrol::cli {

using enclave::cli::exit_code;

inline constexpr int kExitFail = 1;
inline constexpr int kExitError = 2;
inline constexpr int kExitReview = 3;

// The metadata given on the command line instead of a sidecar (all files of the call).
struct MetaFlags {
  std::string kind, layout, total_label, column_dimension, value, contributors, top1, top2;
  std::string institutions, insurers, route, population;
  std::vector<std::string> dimensions, quasi_identifiers, sensitive;
  std::optional<double> residual_dof;

  bool given() const { return !kind.empty(); }
  Expected<TableMeta> to_meta() const;
  void add_to(CLI::App& command);
};

struct Context {
  enclave::cli::CommonOptions common;
  std::string profile = "acro-default";
  std::string tier;
  std::filesystem::path ledger;  // default: STATE_DIR/exitcontrol/ledger.db
  bool json = false;

  Expected<Profile> load_profile() const;
  std::filesystem::path ledger_path() const;
};

void add_check(CLI::App& app, Context& context);     // check, suggest
void add_audit(CLI::App& app, Context& context);     // audit
void add_tabulate(CLI::App& app, Context& context);  // tabulate
void add_ledger(CLI::App& app, Context& context);    // ledger record|list|audit
void add_release(CLI::App& app, Context& context);   // release verify

int exit_code_for(Outcome outcome);

}  // namespace enclave::exitcontrol::cli
