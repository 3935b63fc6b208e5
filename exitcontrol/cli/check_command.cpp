// check and suggest: every file through the file gate, then the checks its kind calls for;
// suggest also writes the safe version (secondary suppression, rounding, or record
// suppression for extracts) and audits it. With --project, tables are audited together with
// the project's earlier releases (differencing).
#include <unistd.h>

#include <iostream>

#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/clock.hpp"
#include "common/files.hpp"
#include "exitcontrol/cli/commands.hpp"
#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/file_gate.hpp"
#include "exitcontrol/core/kanon.hpp"
#include "exitcontrol/core/load.hpp"
#include "exitcontrol/core/report.hpp"
#include "exitcontrol/core/safe_output.hpp"
#include "exitcontrol/lp/attacker.hpp"
#include "exitcontrol/lp/rounding.hpp"
#include "exitcontrol/lp/suppress.hpp"
#include "exitcontrol/service/differencing.hpp"
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

GateLimits gate_limits(const Profile& p) {
  return {p.max_file_bytes, p.table_extensions, p.text_extensions, p.review_extensions};
}

// Writes an output of the safe version and records its hash.
Status write_output(const std::filesystem::path& out_dir, const std::string& name,
                    std::string_view content, FileReport& report) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir / "safe", ec);
  if (ec) return fail(Errc::kIo, (out_dir / "safe").string() + ": " + ec.message());
  ENCLAVE_TRY(write_file_atomically(out_dir / "safe" / name, content, 0640));
  report.outputs.push_back({"safe/" + name, sha256_hex(as_bytes(content))});
  return {};
}

// The outcome of a safe version: disclosive cells are hidden now, so what remains is the
// worst of the non-suppressing findings, the file-level findings and the audit.
Outcome outcome_after_suppression(const FileReport& report,
                                  std::span<const std::uint8_t> suppressed) {
  Outcome o = Outcome::kPass;
  for (const auto& f : report.findings) {
    if (f.outcome == Outcome::kFail && suppressed[f.cell]) continue;
    o = worse(o, f.outcome);
  }
  for (const auto& f : report.table_findings) o = worse(o, f.outcome);
  for (const auto& i : report.intervals) {
    if (!i.is_protected) o = Outcome::kFail;
  }
  return o;
}

// The differencing audit of the table as it would leave (cells in suppressed hidden).
Status audit_against_ledger(std::optional<Ledger>& ledger, const std::string& project,
                            const std::filesystem::path& ledger_path, const LoadedTable& loaded,
                            std::span<const std::uint8_t> suppressed, const Profile& profile,
                            FileReport& report) {
  std::error_code ec;
  if (!ledger && std::filesystem::exists(ledger_path, ec)) {
    store::OpenOptions options;
    options.access = store::Access::kReadOnly;
    options.create = false;
    auto opened = Ledger::open(ledger_path, options);
    if (!opened) return error_of(opened);
    ledger.emplace(std::move(opened).value());
  }
  auto view = released_view(loaded.table, loaded.meta, suppressed);
  view.name = std::filesystem::path(loaded.name).filename().string();
  std::vector<ReleasedTable> none;
  auto earlier = ledger ? ledger->comparable(project, view.population, view.measure)
                        : Expected<std::vector<ReleasedTable>>(std::move(none));
  if (!earlier) return error_of(earlier);
  auto diff = audit_differencing(view, *earlier, profile);
  if (!diff) return error_of(diff);
  report.properties["differencing"] = std::to_string(diff->releases) + " earlier release(s) of " +
                                      project + ", " + std::to_string(diff->pairs) +
                                      " nested pairs, " + std::to_string(diff->lp_targets) +
                                      " LP targets";
  for (const auto& f : diff->findings) {
    // A difference names both cells and both files in its reason already.
    const bool named = f.kind == DifferencingFinding::Kind::kDifference;
    std::string where = named || f.candidate_cell.empty() ? "" : f.candidate_cell + ": ";
    std::string with = named || f.release.empty() ? "" : " [" + f.release + "]";
    report.add({f.disclosive ? Outcome::kFail : Outcome::kReview,
                std::string("differencing-") + differencing_kind_name(f.kind),
                where + f.reason + with});
  }
  return {};
}

Expected<FileReport> check_extract(const std::filesystem::path& path, const std::string& content,
                                   const TableMeta& meta, const Profile& profile,
                                   const CheckOptions& options, FileReport report) {
  auto doc = csv::parse(content);
  if (!doc) return fail(Errc::kInvalidArgument, doc.error().describe(path.string()));
  report.type = OutputType::kExtract;
  auto k =
      check_k_anonymity(*doc, path.filename().string(), {meta.quasi_identifiers, meta.sensitive},
                        KAnonOptions::from_profile(profile));
  if (!k) return error_of(k);
  report.properties["rows"] = std::to_string(k->rows);
  report.properties["classes"] = std::to_string(k->classes);
  report.properties["k"] = std::to_string(k->k);
  report.properties["l"] = std::to_string(k->l);
  const std::size_t named = std::min<std::size_t>(k->failing.size(), 5);
  for (std::size_t i = 0; i < named; ++i) {
    auto c = k->failing[i];
    std::string why =
        c.below_k ? "class of " + std::to_string(c.size) + " rows (k=" + std::to_string(k->k) + ")"
                  : "fewer than l=" + std::to_string(k->l) + " sensitive values";
    report.add({Outcome::kFail, c.below_k ? "k-anonymity" : "l-diversity",
                c.label(meta.quasi_identifiers) + ": " + why});
  }
  if (k->failing.size() > named) {
    report.add({Outcome::kFail, "k-anonymity",
                std::to_string(k->failing.size() - named) + " more failing classes (" +
                    std::to_string(k->rows_below_k) + " rows below k, " +
                    std::to_string(k->rows_below_l) + " rows below l in all)"});
  }
  if (options.suggest && !k->pass()) {
    auto safe = suppress_failing_classes(*doc, *k);
    ENCLAVE_TRY(write_output(options.out, path.filename().string(), safe.csv, report));
    report.suppressed = true;
    report.comments.push_back("safe version: " + std::to_string(safe.rows_removed) +
                              " rows of failing classes removed, " +
                              std::to_string(safe.rows_kept) + " kept");
    report.outcome = Outcome::kPass;  // the remaining classes pass both rules
  }
  return report;
}

// content: the file as the gate read it; sidecar: its metadata file's text, when it has one.
Expected<FileReport> check_table(const std::filesystem::path& path, std::string content,
                                 TableMeta meta, const std::optional<std::string>& sidecar,
                                 const Profile& profile, const CheckOptions& options,
                                 const Context& context, std::optional<Ledger>& ledger,
                                 FileReport gate) {
  LoadOptions load_options;
  load_options.max_file_bytes = profile.max_file_bytes;
  auto loaded = load_table(std::move(content), std::move(meta), path.string(), load_options);
  if (!loaded) return error_of(loaded);
  if (loaded->table.size() > profile.max_cells) {
    gate.type = OutputType::kRefused;
    gate.add({Outcome::kFail, "file-gate",
              path.string() + ": refused: " + std::to_string(loaded->table.size()) +
                  " cells, more than the profile's max_cells (" +
                  std::to_string(profile.max_cells) + ")"});
    return gate;
  }
  const auto primary = check_primary(loaded->table, loaded->meta, profile);
  auto report = table_report(path.filename().string(), loaded->table, primary);
  report.inputs = gate.inputs;
  report.properties = gate.properties;
  report.properties["kind"] = table_kind_name(loaded->meta.kind);
  report.properties["cells"] = std::to_string(loaded->table.size());
  if (loaded->meta.kind == TableKind::kModel) report.type = OutputType::kModel;
  const std::string name = path.filename().string();

  std::vector<std::uint8_t> published_mask(loaded->table.size(), 0);
  if (!options.suggest || loaded->meta.kind == TableKind::kModel) {
    if (!options.project.empty() && loaded->meta.kind != TableKind::kModel) {
      ENCLAVE_TRY(audit_against_ledger(ledger, options.project, context.ledger_path(), *loaded,
                                       published_mask, profile, report));
    }
    return report;
  }

  const std::size_t primaries =
      std::count(primary.suppress.begin(), primary.suppress.end(), std::uint8_t{1});
  if (options.method == "rounding") {
    if (!profile.rounding_base) {
      return fail(Errc::kInvalidArgument,
                  "profile " + profile.name + " sets no rounding_base; rounding is not offered");
    }
    auto rounded = lp::round_table(loaded->table, profile, {.progress = progress_line(name)});
    clear_progress();
    if (!rounded) return error_of(rounded);
    auto safe = write_safe(*loaded, published_mask, profile.marker, rounded->values);
    if (!safe) return error_of(safe);
    ENCLAVE_TRY(write_output(options.out, name, *safe, report));
    report.comments.push_back(lp::rounding_summary(*rounded));
    // Rounded tables carry no small exact counts: the threshold findings are answered.
    Outcome o = Outcome::kPass;
    for (const auto& f : report.findings) {
      if (f.outcome == Outcome::kReview) o = worse(o, f.outcome);
    }
    for (const auto& f : report.table_findings) o = worse(o, f.outcome);
    report.outcome = o;
    return report;
  }

  lp::SuppressOptions suppress;
  suppress.method =
      options.method == "milp" ? lp::SuppressionMethod::kMilp : lp::SuppressionMethod::kHeuristic;
  suppress.cost =
      options.cost == "cells" ? lp::SuppressionCost::kCellCount : lp::SuppressionCost::kValue;
  suppress.progress = progress_line(name);
  std::vector<std::uint8_t> mask = primary.suppress;
  if (primaries > 0) {
    auto result = lp::suggest_suppression(loaded->table, primary.suppress, profile, suppress);
    clear_progress();
    if (!result) return error_of(result);
    mask = result->suppressed;
    report.secondary = result->secondary;
    for (const auto& a : result->audit) {
      report.intervals.push_back(
          {a.cell, a.lo, a.hi, a.value - a.need_lo, a.value + a.need_hi, a.is_protected});
    }
    std::string how = std::string(lp::suppression_method_name(result->method)) + ": " +
                      std::to_string(result->primary.size()) + " primary, " +
                      std::to_string(result->secondary.size()) + " secondary cells suppressed";
    if (result->milp) {
      how += result->milp->proven_optimal ? " (proven optimal)"
                                          : " (MILP time limit hit; lower bound " +
                                                format_number(result->milp->lower_bound) + ")";
    }
    report.comments.push_back(how);
  }
  const auto values = lp::published_values(loaded->table, mask, profile.totals);
  std::vector<double> replacements(values.size(), kMissing);
  if (profile.totals == TotalsPolicy::kRecompute) {
    for (std::size_t c = 0; c < values.size(); ++c) {
      if (!mask[c] && !is_missing(values[c]) && values[c] != loaded->table.value[c]) {
        replacements[c] = values[c];
      }
    }
  }
  auto safe = write_safe(*loaded, mask, profile.marker, replacements);
  if (!safe) return error_of(safe);
  ENCLAVE_TRY(write_output(options.out, name, *safe, report));
  if (sidecar) {
    ENCLAVE_TRY(write_output(options.out, name + ".meta.toml", *sidecar, report));
  }
  report.suppressed = primaries > 0;
  if (!options.project.empty()) {
    ENCLAVE_TRY(audit_against_ledger(ledger, options.project, context.ledger_path(), *loaded, mask,
                                     profile, report));
  }
  report.outcome = outcome_after_suppression(report, mask);
  return report;
}

Expected<FileReport> check_file(const std::filesystem::path& path, const Profile& profile,
                                const CheckOptions& options, const Context& context,
                                std::optional<Ledger>& ledger) {
  FileReport report;
  report.name = path.filename().string();
  report.command = options.suggest ? "suggest" : "check";
  // Read once: the gate, the hash, the parser and the safe version all see the same bytes.
  auto gated = classify_path(path, options.meta.given(), gate_limits(profile));
  if (!gated) return error_of(gated);
  const GateDecision& gate = gated->decision;
  report.properties["gate"] = gate.kind;
  report.command += " (" + std::string(file_class_name(gate.verdict)) + ")";
  if (gate.verdict != FileClass::kRefused) {
    report.inputs.push_back({report.name, sha256_hex(as_bytes(gated->content))});
  }
  switch (gate.verdict) {
    case FileClass::kRefused:
      report.type = OutputType::kRefused;
      report.add({Outcome::kFail, "file-gate", gate.reason});
      return report;
    case FileClass::kReview:
      report.type = OutputType::kImage;
      report.add({Outcome::kReview, "file-gate", gate.reason});
      return report;
    case FileClass::kText:
      report.type = OutputType::kText;
      return report;
    case FileClass::kTable:
      break;
  }
  std::optional<std::string> sidecar;  // kept for its hash and the safe version's copy
  auto meta = [&]() -> Expected<TableMeta> {
    if (options.meta.given()) return options.meta.to_meta();
    const auto sidecar_path = meta_path_for(path);
    auto text = read_file(sidecar_path);
    if (!text) return error_of(text);
    sidecar = std::move(text).value();
    report.inputs.push_back({sidecar_path.filename().string(), sha256_hex(as_bytes(*sidecar))});
    return parse_meta(*sidecar, sidecar_path.string());
  }();
  if (!meta) return error_of(meta);
  if (meta->kind == TableKind::kExtract) {
    return check_extract(path, gated->content, *meta, profile, options, std::move(report));
  }
  return check_table(path, std::move(gated->content), std::move(meta).value(), sidecar, profile,
                     options, context, ledger, std::move(report));
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
  std::vector<FileReport> reports;
  std::optional<Ledger> ledger;  // opened on first use
  Outcome worst = Outcome::kPass;
  for (const auto& f : options.files) {
    auto report = check_file(f, *profile, options, context, ledger);
    if (!report) {
      exit_code() = enclave::cli::report_error(report.error());
      return;
    }
    worst = worse(worst, report->outcome);
    reports.push_back(std::move(report).value());
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
