// One output file through every check the exit-control engine has, in memory: the file gate,
// the metadata (sidecar or given), then by kind the primary rules, k-anonymity and l-diversity
// for extracts, or degrees of freedom for models; with `suggest`, the safe version (secondary
// suppression audited by the attacker LP, controlled rounding, or record suppression for
// extracts); with a project, the differencing audit against the project's release ledger.
// enclave-exitcheck check|suggest and the export service both call this, so a file gets the
// same verdict whichever way it is checked. Nothing is written: the caller stores the report
// and the outputs where it keeps them.
//
// Also the other end of the ledger: a table as released (hidden cells as the profile's
// marker) entered in the project's ledger, so later tables are audited against it.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/load.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/profile.hpp"
#include "exitcontrol/core/report.hpp"
#include "exitcontrol/lp/suppress.hpp"
#include "exitcontrol/service/ledger.hpp"

namespace enclave::exitcontrol {

// How `suggest` makes a table's safe version.
enum class SafeMethod {
  kHeuristic,  // primary and secondary suppression, the LP heuristic
  kMilp,       // the same at minimum cost (MILP seeded with the heuristic's pattern)
  kRounding,   // controlled rounding to the profile's rounding_base
};

struct CheckSettings {
  // Also make the safe version and audit it; the report's outcome is then the safe version's.
  bool suggest = false;
  // Audit tables together with this project's earlier releases (differencing); "" for none.
  std::string project;
  SafeMethod method = SafeMethod::kHeuristic;
  lp::SuppressionCost cost = lp::SuppressionCost::kValue;
  // The file's metadata instead of its sidecar; also declares the file a table to the gate.
  std::optional<TableMeta> meta;
  // (stage, done, all) now and then during the LP runs (lp::SuppressOptions::progress).
  std::function<void(std::string_view, std::size_t, std::size_t)> progress;
};

// A file of the safe version. report.outputs lists each with the same name and hash.
struct CheckOutput {
  std::string name;  // relative to wherever the caller keeps outputs: "safe/claims.csv"
  std::string content;
  std::string sha256;  // of content, lower-case hex
};

struct CheckedFile {
  FileReport report;
  // With suggest: the safe version ("safe/NAME") and, for suppressed tables with a sidecar,
  // the sidecar's copy beside it ("safe/NAME.meta.toml"). Empty otherwise.
  std::vector<CheckOutput> outputs;
};

// Gives the differencing audit the release ledger, asked only when a table is audited against
// CheckSettings::project (so a caller can open it on first use). nullptr: there is no ledger
// yet, the project has released nothing, and the audit runs against no earlier releases.
using LedgerSource = std::function<Expected<Ledger*>()>;

// Errors (bad metadata, a table that does not parse, I/O, an LP that fails) name the file; a
// file the engine refuses is not an error but a report of type kRefused.
Expected<CheckedFile> check_output_file(const std::filesystem::path& file, const Profile& profile,
                                        const CheckSettings& settings, const LedgerSource& ledger);
// The same with a ledger already open (nullptr: no ledger yet, as above).
Expected<CheckedFile> check_output_file(const std::filesystem::path& file, const Profile& profile,
                                        const CheckSettings& settings, Ledger* ledger);

// A table as published: fields equal to the profile's marker are hidden cells
// (LoadedTable::marked). meta: nullopt reads the file's sidecar.
Expected<LoadedTable> load_published_table(const std::filesystem::path& file,
                                           std::optional<TableMeta> meta, const Profile& profile);

// Enters a released table in project's ledger: its cells as published (hidden cells as the
// marker), the contributor counts behind them, and the file's SHA-256. The same file recorded
// twice for a project is kAlreadyExists.
Expected<ReleaseRecord> record_released_file(Ledger& ledger, const std::string& project,
                                             const std::filesystem::path& file,
                                             std::optional<TableMeta> meta, const Profile& profile,
                                             const std::string& request);

}  // namespace enclave::exitcontrol
