#include "exitcontrol/service/checker.hpp"

#include <algorithm>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/file_gate.hpp"
#include "exitcontrol/core/kanon.hpp"
#include "exitcontrol/core/safe_output.hpp"
#include "exitcontrol/lp/attacker.hpp"
#include "exitcontrol/lp/rounding.hpp"
#include "exitcontrol/service/differencing.hpp"

namespace enclave::exitcontrol {
namespace {

GateLimits gate_limits(const Profile& p) {
  return {p.max_file_bytes, p.table_extensions, p.text_extensions, p.review_extensions};
}

// Keeps a file of the safe version and lists it, with its hash, in the report.
void add_output(CheckedFile& checked, const std::string& name, std::string content) {
  CheckOutput output{"safe/" + name, std::move(content), {}};
  output.sha256 = sha256_hex(as_bytes(output.content));
  checked.report.outputs.push_back({output.name, output.sha256});
  checked.outputs.push_back(std::move(output));
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
Status audit_against_ledger(const LedgerSource& ledger_source, const std::string& project,
                            const LoadedTable& loaded, std::span<const std::uint8_t> suppressed,
                            const Profile& profile, FileReport& report) {
  Ledger* ledger = nullptr;
  if (ledger_source) {
    auto source = ledger_source();
    if (!source) return error_of(source);
    ledger = *source;
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

Expected<CheckedFile> check_extract(const std::filesystem::path& path, const std::string& content,
                                    const TableMeta& meta, const Profile& profile,
                                    const CheckSettings& settings, FileReport report) {
  auto doc = csv::parse(content);
  if (!doc) return fail(Errc::kInvalidArgument, doc.error().describe(path.string()));
  CheckedFile checked{std::move(report), {}};
  FileReport& r = checked.report;
  r.type = OutputType::kExtract;
  auto k =
      check_k_anonymity(*doc, path.filename().string(), {meta.quasi_identifiers, meta.sensitive},
                        KAnonOptions::from_profile(profile));
  if (!k) return error_of(k);
  r.properties["rows"] = std::to_string(k->rows);
  r.properties["classes"] = std::to_string(k->classes);
  r.properties["k"] = std::to_string(k->k);
  r.properties["l"] = std::to_string(k->l);
  const std::size_t named = std::min<std::size_t>(k->failing.size(), 5);
  for (std::size_t i = 0; i < named; ++i) {
    auto c = k->failing[i];
    std::string why =
        c.below_k ? "class of " + std::to_string(c.size) + " rows (k=" + std::to_string(k->k) + ")"
                  : "fewer than l=" + std::to_string(k->l) + " sensitive values";
    r.add({Outcome::kFail, c.below_k ? "k-anonymity" : "l-diversity",
           c.label(meta.quasi_identifiers) + ": " + why});
  }
  if (k->failing.size() > named) {
    r.add({Outcome::kFail, "k-anonymity",
           std::to_string(k->failing.size() - named) + " more failing classes (" +
               std::to_string(k->rows_below_k) + " rows below k, " +
               std::to_string(k->rows_below_l) + " rows below l in all)"});
  }
  if (settings.suggest && !k->pass()) {
    auto safe = suppress_failing_classes(*doc, *k);
    add_output(checked, path.filename().string(), std::move(safe.csv));
    r.suppressed = true;
    r.comments.push_back("safe version: " + std::to_string(safe.rows_removed) +
                         " rows of failing classes removed, " + std::to_string(safe.rows_kept) +
                         " kept");
    r.outcome = Outcome::kPass;  // the remaining classes pass both rules
  }
  return checked;
}

// content: the file as the gate read it; sidecar: its metadata file's text, when it has one.
Expected<CheckedFile> check_table(const std::filesystem::path& path, std::string content,
                                  TableMeta meta, const std::optional<std::string>& sidecar,
                                  const Profile& profile, const CheckSettings& settings,
                                  const LedgerSource& ledger, FileReport gate) {
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
    return CheckedFile{std::move(gate), {}};
  }
  const auto primary = check_primary(loaded->table, loaded->meta, profile);
  const std::string name = path.filename().string();
  CheckedFile checked{table_report(name, loaded->table, primary), {}};
  FileReport& report = checked.report;
  report.inputs = gate.inputs;
  report.properties = gate.properties;
  report.properties["kind"] = table_kind_name(loaded->meta.kind);
  report.properties["cells"] = std::to_string(loaded->table.size());
  if (loaded->meta.kind == TableKind::kModel) report.type = OutputType::kModel;

  std::vector<std::uint8_t> published_mask(loaded->table.size(), 0);
  if (!settings.suggest || loaded->meta.kind == TableKind::kModel) {
    if (!settings.project.empty() && loaded->meta.kind != TableKind::kModel) {
      ENCLAVE_TRY(
          audit_against_ledger(ledger, settings.project, *loaded, published_mask, profile, report));
    }
    return checked;
  }

  const std::size_t primaries =
      std::count(primary.suppress.begin(), primary.suppress.end(), std::uint8_t{1});
  if (settings.method == SafeMethod::kRounding) {
    if (!profile.rounding_base) {
      return fail(Errc::kInvalidArgument,
                  "profile " + profile.name + " sets no rounding_base; rounding is not offered");
    }
    auto rounded = lp::round_table(loaded->table, profile, {.progress = settings.progress});
    if (!rounded) return error_of(rounded);
    auto safe = write_safe(*loaded, published_mask, profile.marker, rounded->values);
    if (!safe) return error_of(safe);
    add_output(checked, name, std::move(safe).value());
    report.comments.push_back(lp::rounding_summary(*rounded));
    // Rounded tables carry no small exact counts: the threshold findings are answered.
    Outcome o = Outcome::kPass;
    for (const auto& f : report.findings) {
      if (f.outcome == Outcome::kReview) o = worse(o, f.outcome);
    }
    for (const auto& f : report.table_findings) o = worse(o, f.outcome);
    report.outcome = o;
    return checked;
  }

  lp::SuppressOptions suppress;
  suppress.method = settings.method == SafeMethod::kMilp ? lp::SuppressionMethod::kMilp
                                                         : lp::SuppressionMethod::kHeuristic;
  suppress.cost = settings.cost;
  suppress.progress = settings.progress;
  std::vector<std::uint8_t> mask = primary.suppress;
  if (primaries > 0) {
    auto result = lp::suggest_suppression(loaded->table, primary.suppress, profile, suppress);
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
  add_output(checked, name, std::move(safe).value());
  if (sidecar) add_output(checked, name + ".meta.toml", *sidecar);
  report.suppressed = primaries > 0;
  if (!settings.project.empty()) {
    ENCLAVE_TRY(audit_against_ledger(ledger, settings.project, *loaded, mask, profile, report));
  }
  report.outcome = outcome_after_suppression(report, mask);
  return checked;
}

}  // namespace

Expected<CheckedFile> check_output_file(const std::filesystem::path& file, const Profile& profile,
                                        const CheckSettings& settings, const LedgerSource& ledger) {
  FileReport report;
  report.name = file.filename().string();
  report.command = settings.suggest ? "suggest" : "check";
  // Read once: the gate, the hash, the parser and the safe version all see the same bytes.
  auto gated = classify_path(file, settings.meta.has_value(), gate_limits(profile));
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
      return CheckedFile{std::move(report), {}};
    case FileClass::kReview:
      report.type = OutputType::kImage;
      report.add({Outcome::kReview, "file-gate", gate.reason});
      return CheckedFile{std::move(report), {}};
    case FileClass::kText:
      report.type = OutputType::kText;
      return CheckedFile{std::move(report), {}};
    case FileClass::kTable:
      break;
  }
  std::optional<std::string> sidecar;  // kept for its hash and the safe version's copy
  auto meta = [&]() -> Expected<TableMeta> {
    if (settings.meta) return *settings.meta;
    const auto sidecar_path = meta_path_for(file);
    auto text = read_file(sidecar_path);
    if (!text) return error_of(text);
    sidecar = std::move(text).value();
    report.inputs.push_back({sidecar_path.filename().string(), sha256_hex(as_bytes(*sidecar))});
    return parse_meta(*sidecar, sidecar_path.string());
  }();
  if (!meta) return error_of(meta);
  if (meta->kind == TableKind::kExtract) {
    return check_extract(file, gated->content, *meta, profile, settings, std::move(report));
  }
  return check_table(file, std::move(gated->content), std::move(meta).value(), sidecar, profile,
                     settings, ledger, std::move(report));
}

Expected<CheckedFile> check_output_file(const std::filesystem::path& file, const Profile& profile,
                                        const CheckSettings& settings, Ledger* ledger) {
  return check_output_file(file, profile, settings,
                           [ledger]() -> Expected<Ledger*> { return ledger; });
}

Expected<LoadedTable> load_published_table(const std::filesystem::path& file,
                                           std::optional<TableMeta> meta, const Profile& profile) {
  LoadOptions options;
  options.suppression_markers = {profile.marker};
  options.max_file_bytes = profile.max_file_bytes;
  return load_table_file(file, std::move(meta), options);
}

Expected<ReleaseRecord> record_released_file(Ledger& ledger, const std::string& project,
                                             const std::filesystem::path& file,
                                             std::optional<TableMeta> meta, const Profile& profile,
                                             const std::string& request) {
  auto loaded = load_published_table(file, std::move(meta), profile);
  if (!loaded) return error_of(loaded);
  std::vector<std::uint8_t> hidden(loaded->table.size(), 0);
  for (auto c : loaded->marked) hidden[c] = 1;
  auto view = released_view(loaded->table, loaded->meta, hidden);
  view.name = file.filename().string();
  return ledger.record(project, view, sha256_hex(as_bytes(*loaded->bytes)), request);
}

}  // namespace enclave::exitcontrol
