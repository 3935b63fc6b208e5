#include "exitcontrol/service/export_engine.hpp"

#include <optional>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "exitcontrol/service/checker.hpp"

namespace enclave::exitcontrol {
namespace {

constexpr const char* kEngineVersion = "enclave-exportd 0.1.0";

// At most this many cells per list in a stored report: a steward reads the first ones, and the
// counts per rule are complete.
constexpr std::size_t kReportCells = 1000;

// results.json's entry for one file, as enclave-exitcheck writes it, without the passing cells
// and with at most kReportCells in each list (ReportLimits).
std::string report_entry(const FileReport& report, const Profile& profile) {
  RunInfo run{kEngineVersion, profile.name, profile.source, utc_now_rfc3339()};
  auto json =
      results_json({report}, run, ReportLimits{.ok_cells = false, .max_cells = kReportCells});
  return json["results"]["output_0"].dump();
}

}  // namespace

CheckFile engine_check(std::filesystem::path policies_dir, std::filesystem::path ledger_path) {
  return [policies_dir = std::move(policies_dir), ledger_path = std::move(ledger_path)](
             const std::filesystem::path& file, const std::string& profile_name,
             const std::string& project) -> Expected<FileCheck> {
    auto profile = load_profile(policies_dir, profile_name);
    if (!profile) return error_of(profile);
    // One read-only connection per check: checks run on several workers at once.
    std::optional<Ledger> ledger;
    LedgerSource source = [&]() -> Expected<Ledger*> {
      if (ledger) return &*ledger;
      std::error_code ec;
      if (!std::filesystem::exists(ledger_path, ec)) return nullptr;
      store::OpenOptions options;
      options.access = store::Access::kReadOnly;
      options.create = false;
      auto opened = Ledger::open(ledger_path, options);
      if (!opened) return error_of(opened);
      ledger.emplace(std::move(opened).value());
      return &*ledger;
    };
    CheckSettings settings;
    settings.project = project;
    auto checked = check_output_file(file, *profile, settings, source);
    if (!checked) return error_of(checked);
    FileCheck out;
    out.type = output_type_name(checked->report.type);
    out.outcome = checked->report.outcome;
    out.report_json = report_entry(checked->report, *profile);
    const bool suggestible =
        checked->report.type == OutputType::kTable || checked->report.type == OutputType::kExtract;
    if (out.outcome != Outcome::kFail || !suggestible) return out;
    settings.suggest = true;
    auto safe = check_output_file(file, *profile, settings, source);
    if (!safe) return error_of(safe);
    const std::string wanted = "safe/" + file.filename().string();
    for (auto& output : safe->outputs) {
      if (output.name != wanted) continue;
      out.safe_content = std::move(output.content);
      out.safe_outcome = safe->report.outcome;
    }
    return out;
  };
}

}  // namespace enclave::exitcontrol
