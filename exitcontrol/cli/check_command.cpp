// check and suggest: every file through the file gate, then the checks its kind calls for;
// suggest also writes the safe version (secondary suppression, rounding, or record
// suppression for extracts) and audits it. With --project, tables are audited together with
// the project's earlier releases (differencing).
#include <unistd.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "common/clock.hpp"
#include "common/files.hpp"
#include "exitcontrol/cli/commands.hpp"
#include "exitcontrol/core/report.hpp"
#include "exitcontrol/service/checker.hpp"
#include "exitcontrol/service/ledger.hpp"

namespace enclave::exitcontrol::cli {
namespace {

constexpr const char* kVersion = "enclave-exitcheck 0.1.0";

struct CheckOptions {
  std::vector<std::filesystem::path> files;
  std::filesystem::path out;
  std::string project;
  std::string method = "heuristic";  // suggest: heuristic, milp, rounding
  std::string cost = "value";        // suggest: value, cells
  MetaFlags meta;
  bool suggest = false;
};

// Progress for long LP runs, on a terminal only (scripts and logs get the summary).
std::function<void(std::string_view, std::size_t, std::size_t)> progress_line(
    const std::string& file) {
  if (!::isatty(STDERR_FILENO)) return nullptr;
  return [file](std::string_view stage, std::size_t done, std::size_t all) {
    if (all > 0) {
      std::cerr << "\r" << file << ": " << stage << " " << done << "/" << all << "   "
                << std::flush;
    } else {
      std::cerr << "\r" << file << ": " << stage << " round " << done << "   " << std::flush;
    }
  };
}

void clear_progress() {
  if (::isatty(STDERR_FILENO)) std::cerr << "\r\033[K" << std::flush;
}

// Writes the safe version's files under out_dir (safe/...).
Status write_outputs(const std::filesystem::path& out_dir,
                     const std::vector<CheckOutput>& outputs) {
  for (const auto& output : outputs) {
    const auto path = out_dir / output.name;
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) return fail(Errc::kIo, path.parent_path().string() + ": " + ec.message());
    ENCLAVE_TRY(write_file_atomically(path, output.content, 0640));
  }
  return {};
}

// The checker's settings for every file of the call; progress is set per file.
Expected<CheckSettings> settings_for(const CheckOptions& options) {
  CheckSettings settings;
  settings.suggest = options.suggest;
  settings.project = options.project;
  settings.method = options.method == "milp"       ? SafeMethod::kMilp
                    : options.method == "rounding" ? SafeMethod::kRounding
                                                   : SafeMethod::kHeuristic;
  settings.cost =
      options.cost == "cells" ? lp::SuppressionCost::kCellCount : lp::SuppressionCost::kValue;
  if (options.meta.given()) {
    auto meta = options.meta.to_meta();
    if (!meta) return error_of(meta);
    settings.meta = std::move(meta).value();
  }
  return settings;
}

void run_check(const Context& context, CheckOptions options) {
  auto profile = context.load_profile();
  if (!profile) {
    exit_code() = enclave::cli::report_error(profile.error());
    return;
  }
  if (options.suggest && options.out.empty()) {
    exit_code() = enclave::cli::report_error(
        {Errc::kInvalidArgument, "suggest writes the safe versions: give --out DIR"});
    return;
  }
  auto settings = settings_for(options);
  if (!settings) {
    exit_code() = enclave::cli::report_error(settings.error());
    return;
  }
  // Opened read-only when a table is first audited against the project; none yet is no
  // earlier releases.
  std::optional<Ledger> ledger;
  const LedgerSource ledger_source = [&]() -> Expected<Ledger*> {
    std::error_code ec;
    if (!ledger && std::filesystem::exists(context.ledger_path(), ec)) {
      store::OpenOptions open;
      open.access = store::Access::kReadOnly;
      open.create = false;
      auto opened = Ledger::open(context.ledger_path(), open);
      if (!opened) return error_of(opened);
      ledger.emplace(std::move(opened).value());
    }
    return ledger ? &*ledger : nullptr;
  };
  std::vector<FileReport> reports;
  Outcome worst = Outcome::kPass;
  for (const auto& f : options.files) {
    settings->progress = progress_line(f.filename().string());
    auto checked = check_output_file(f, *profile, *settings, ledger_source);
    clear_progress();
    if (!checked) {
      exit_code() = enclave::cli::report_error(checked.error());
      return;
    }
    auto written = write_outputs(options.out, checked->outputs);
    if (!written) {
      exit_code() = enclave::cli::report_error(written.error());
      return;
    }
    worst = worse(worst, checked->report.outcome);
    reports.push_back(std::move(checked->report));
  }
  RunInfo run{kVersion, profile->name, profile->source, utc_now_rfc3339()};
  const auto json = results_json(reports, run);
  if (!options.out.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options.out, ec);
    auto written = write_file_atomically(options.out / "results.json", json.dump(2) + "\n", 0640);
    if (written) {
      written =
          write_file_atomically(options.out / "summary.txt", human_summary(reports, run), 0640);
    }
    if (!written) {
      exit_code() = enclave::cli::report_error(written.error());
      return;
    }
  }
  if (context.json) {
    std::cout << json.dump(2) << "\n";
  } else {
    std::cout << human_summary(reports, run);
  }
  exit_code() = exit_code_for(worst);
}

}  // namespace

void add_check(CLI::App& app, Context& context) {
  for (bool suggest : {false, true}) {
    auto options = std::make_shared<CheckOptions>();
    options->suggest = suggest;
    auto* cmd = app.add_subcommand(
        suggest ? "suggest" : "check",
        suggest ? "write safe versions: primary plus secondary suppression (or rounding), "
                  "audited by the attacker LP"
                : "check output files against the export profile");
    cmd->add_option("files", options->files, "output files (tables with FILE.meta.toml)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("--out", options->out,
                    suggest ? "directory for results.json, summary.txt and safe/"
                            : "directory for results.json and summary.txt");
    cmd->add_option("--project", options->project,
                    "audit tables against this project's earlier releases (differencing)");
    if (suggest) {
      cmd->add_option("--method", options->method, "heuristic (default), milp or rounding")
          ->check(CLI::IsMember({"heuristic", "milp", "rounding"}));
      cmd->add_option("--cost", options->cost, "what suppression minimises: value or cells")
          ->check(CLI::IsMember({"value", "cells"}));
    }
    options->meta.add_to(*cmd);
    cmd->callback([&context, options] { run_check(context, *options); });
  }
}

}  // namespace enclave::exitcontrol::cli
