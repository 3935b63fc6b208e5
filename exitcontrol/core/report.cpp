#include "exitcontrol/core/report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <string_view>
#include <unordered_map>

namespace enclave::exitcontrol {

const char* output_type_name(OutputType type) {
  switch (type) {
    case OutputType::kTable:
      return "table";
    case OutputType::kModel:
      return "model";
    case OutputType::kExtract:
      return "extract";
    case OutputType::kText:
      return "text";
    case OutputType::kImage:
      return "image";
    case OutputType::kRefused:
      return "refused";
  }
  return "unknown";
}

const char* acro_type_name(OutputType type) {
  switch (type) {
    case OutputType::kTable:
      return "table";
    case OutputType::kModel:
      return "regression";
    case OutputType::kExtract:
    case OutputType::kText:
    case OutputType::kImage:
    case OutputType::kRefused:
      return "custom";
  }
  return "custom";
}

std::string CellGrid::label(std::uint32_t cell) const {
  const std::string& r = row_labels[row[cell]];
  const std::string& c = column_labels[column[cell]];
  if (r.empty()) return c;
  if (c.empty()) return r;
  return r + ", " + c;
}

CellGrid cell_grid(const Table& table) {
  CellGrid grid;
  const std::size_t width = table.dims.size();
  const std::size_t row_dims = width >= 2 ? width - 1 : width;
  grid.row.resize(table.size());
  grid.column.resize(table.size());
  if (width >= 2) {
    grid.column_labels.reserve(table.dims.back().categories.size());
    for (const auto& category : table.dims.back().categories) {
      grid.column_labels.push_back(table.dims.back().name + "=" + category);
    }
  } else {
    grid.column_labels.emplace_back();
  }
  // Row keys are the raw bytes of the row coordinates.
  std::unordered_map<std::string, std::uint32_t> rows;
  std::string key(row_dims * sizeof(std::uint32_t), '\0');
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    auto c = table.coord(cell);
    if (row_dims > 0) std::memcpy(key.data(), c.data(), key.size());
    auto [it, added] = rows.try_emplace(key, static_cast<std::uint32_t>(grid.row_labels.size()));
    if (added) {
      std::string label;
      for (std::size_t d = 0; d < row_dims; ++d) {
        if (d > 0) label += ", ";
        label += table.dims[d].name + "=" + table.dims[d].categories[c[d]];
      }
      grid.row_labels.push_back(std::move(label));
    }
    grid.row[cell] = it->second;
    grid.column[cell] = width >= 2 ? c[width - 1] : 0;
  }
  return grid;
}

void FileReport::add(TableFinding finding) {
  outcome = worse(outcome, finding.outcome);
  table_findings.push_back(std::move(finding));
}

std::map<std::string, std::size_t> FileReport::counts_per_rule() const {
  std::map<std::string, std::size_t> counts;
  for (const auto& f : findings) ++counts[f.rule];
  for (const auto& f : table_findings) ++counts[f.rule];
  return counts;
}

FileReport table_report(std::string name, const Table& table, const PrimaryResult& primary) {
  FileReport report;
  report.name = std::move(name);
  report.type = table.kind == TableKind::kModel     ? OutputType::kModel
                : table.kind == TableKind::kExtract ? OutputType::kExtract
                                                    : OutputType::kTable;
  report.outcome = primary.outcome;
  report.properties["kind"] = table_kind_name(table.kind);
  report.properties["cells"] = std::to_string(table.size());
  report.grid = cell_grid(table);
  report.cell_outcome = primary.cell_outcome;
  report.findings = primary.findings;
  report.table_findings = primary.table_findings;
  return report;
}

const char* acro_rule_name(const std::string& rule) {
  if (rule == rules::kZeros) return rules::kThreshold;
  for (const char* name :
       {rules::kThreshold, rules::kPRatio, rules::kNkRule, rules::kNegative, rules::kMissing}) {
    if (rule == name) return name;
  }
  return rule.c_str();
}

namespace {

// ACRO's own keys, always present in sdc.summary and sdc.cells, in ACRO's order.
constexpr std::array<const char*, 6> kAcroRules = {"negative", "missing", "threshold",
                                                   "p-ratio",  "nk-rule", "all-values-are-same"};
// The ones ACRO counts as cells to suppress (get_summary), as opposed to review.
constexpr std::array<const char*, 4> kAcroSuppressionRules = {"threshold", "p-ratio", "nk-rule",
                                                              "all-values-are-same"};

bool is_table_like(const FileReport& file) {
  return file.type == OutputType::kTable || file.type == OutputType::kModel;
}

// Findings per rule under ACRO's names.
std::map<std::string, std::size_t> acro_counts(const FileReport& file) {
  std::map<std::string, std::size_t> counts;
  for (const char* rule : kAcroRules) counts[rule] = 0;
  for (const auto& f : file.findings) ++counts[acro_rule_name(f.rule)];
  return counts;
}

// What a report under ReportLimits leaves out of one file's listings.
struct Omitted {
  const ReportLimits& limits;
  std::size_t ok_cells = 0;
  std::size_t cells = 0;

  // Appends `entry` to `list` unless the list is full (then counts it).
  void add(nlohmann::json& list, nlohmann::json entry) {
    if (list.size() < limits.max_cells) {
      list.push_back(std::move(entry));
    } else {
      ++cells;
    }
  }
};

nlohmann::json sdc_json(const FileReport& file, Omitted& omitted) {
  if (!is_table_like(file)) return nlohmann::json::object();
  nlohmann::json summary = nlohmann::json::object();
  summary["suppressed"] = file.suppressed;
  for (const auto& [rule, n] : acro_counts(file)) summary[rule] = n;
  nlohmann::json cells = nlohmann::json::object();
  for (const char* rule : kAcroRules) cells[rule] = nlohmann::json::array();
  for (const auto& f : file.findings) {
    omitted.add(cells[acro_rule_name(f.rule)], {file.grid.row[f.cell], file.grid.column[f.cell]});
  }
  return {{"summary", std::move(summary)}, {"cells", std::move(cells)}};
}

// ACRO's "outcome": per cell "ok" or the rules it trips, "threshold; p-ratio; ".
nlohmann::json outcome_json(const FileReport& file, Omitted& omitted) {
  nlohmann::json out = nlohmann::json::object();
  if (file.type != OutputType::kTable) return out;
  // The flagged cells only, in cell order: a table of millions of cells that passes costs
  // nothing here when its passing cells are left out.
  std::map<std::size_t, std::string> trips;
  for (const auto& f : file.findings) {
    std::string name = acro_rule_name(f.rule);
    std::string& text = trips[f.cell];
    // A cell tripping ours and ACRO's name for the same thing (zeros, threshold) lists it once.
    if (text.find(name + "; ") == std::string::npos) text += name + "; ";
  }
  std::size_t listed = 0;
  auto list = [&](std::size_t cell, std::string text) {
    if (listed == omitted.limits.max_cells) {
      ++omitted.cells;
      return;
    }
    ++listed;
    const std::string& column = file.grid.column_labels[file.grid.column[cell]];
    const std::string& row = file.grid.row_labels[file.grid.row[cell]];
    out[column][row] = std::move(text);
  };
  if (!omitted.limits.ok_cells) {
    omitted.ok_cells += file.grid.row.size() - trips.size();
    for (auto& [cell, text] : trips) list(cell, std::move(text));
    return out;
  }
  auto flagged = trips.begin();
  for (std::size_t cell = 0; cell < file.grid.row.size(); ++cell) {
    if (flagged != trips.end() && flagged->first == cell) {
      list(cell, std::move(flagged->second));
      ++flagged;
    } else {
      list(cell, "ok");
    }
  }
  return out;
}

nlohmann::json digests_json(const std::vector<FileDigest>& digests) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& d : digests) out[d.name] = d.sha256;
  return out;
}

nlohmann::json enclave_json(const FileReport& file, Omitted& omitted) {
  nlohmann::json cells = nlohmann::json::array();
  for (const auto& f : file.findings) {
    omitted.add(cells, {{"cell", f.cell},
                        {"label", file.grid.label(f.cell)},
                        {"position", {file.grid.row[f.cell], file.grid.column[f.cell]}},
                        {"outcome", outcome_name(f.outcome)},
                        {"rule", f.rule},
                        {"reason", f.reason}});
  }
  nlohmann::json table_findings = nlohmann::json::array();
  for (const auto& f : file.table_findings) {
    table_findings.push_back(
        {{"outcome", outcome_name(f.outcome)}, {"rule", f.rule}, {"reason", f.reason}});
  }
  nlohmann::json secondary = nlohmann::json::array();
  for (auto cell : file.secondary) {
    omitted.add(secondary, {{"cell", cell}, {"label", file.grid.label(cell)}});
  }
  nlohmann::json intervals = nlohmann::json::array();
  for (const auto& i : file.intervals) {
    omitted.add(intervals, {{"cell", i.cell},
                            {"label", file.grid.label(i.cell)},
                            {"lo", i.lo},
                            {"hi", i.hi},
                            {"required_lo", i.required_lo},
                            {"required_hi", i.required_hi},
                            {"protected", i.is_protected}});
  }
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [rule, n] : file.counts_per_rule()) counts[rule] = n;
  std::size_t review = 0, failed = 0;
  for (auto o : file.cell_outcome) {
    review += o == Outcome::kReview;
    failed += o == Outcome::kFail;
  }
  return {
      {"type", output_type_name(file.type)},
      {"outcome", outcome_name(file.outcome)},
      {"cell_outcomes",
       {{"pass", file.cell_outcome.size() - review - failed},
        {"review", review},
        {"fail", failed}}},
      {"counts_per_rule", std::move(counts)},
      {"cells", std::move(cells)},
      {"table_findings", std::move(table_findings)},
      {"secondary_suppressed", std::move(secondary)},
      {"intervals", std::move(intervals)},
      {"sha256", {{"inputs", digests_json(file.inputs)}, {"outputs", digests_json(file.outputs)}}}};
}

std::string cells_text(std::size_t n) {
  return std::to_string(n) + (n == 1 ? " cell" : " cells");
}

}  // namespace

std::string acro_summary(const FileReport& file) {
  std::string status = outcome_name(file.outcome);
  std::string text;
  if (is_table_like(file)) {
    auto counts = acro_counts(file);
    if (counts["negative"] > 0) text += "negative values found; ";
    if (counts["missing"] > 0) text += "missing values found; ";
    const char* what = file.suppressed ? "suppressed" : "may need suppressing";
    for (const char* rule : kAcroSuppressionRules) {
      if (counts[rule] > 0) {
        text += std::string(rule) + ": " + std::to_string(counts[rule]) + " cells " + what + "; ";
      }
    }
    for (const auto& [rule, n] : counts) {
      bool acro_own = std::find_if(kAcroRules.begin(), kAcroRules.end(),
                                   [&](const char* r) { return rule == r; }) != kAcroRules.end();
      if (!acro_own && n > 0) text += rule + ": " + std::to_string(n) + " cells; ";
    }
  }
  for (const auto& f : file.table_findings) {
    if (f.outcome != Outcome::kPass) text += f.rule + ": " + f.reason + "; ";
  }
  return text.empty() ? status : status + "; " + text;
}

nlohmann::json results_json(const std::vector<FileReport>& files, const RunInfo& run,
                            const ReportLimits& limits) {
  nlohmann::json results = nlohmann::json::object();
  Outcome overall = Outcome::kPass;
  for (std::size_t i = 0; i < files.size(); ++i) {
    const FileReport& file = files[i];
    overall = worse(overall, file.outcome);
    std::string uid = "output_" + std::to_string(i);
    Omitted omitted{limits};
    nlohmann::json sdc = sdc_json(file, omitted);
    nlohmann::json listed = nlohmann::json::array();
    listed.push_back({{"name", file.name}, {"sdc", sdc}});
    for (const auto& out : file.outputs) listed.push_back({{"name", out.name}, {"sdc", sdc}});
    nlohmann::json properties = nlohmann::json::object();
    for (const auto& [key, value] : file.properties) properties[key] = value;
    results[uid] = {{"uid", uid},
                    {"status", outcome_name(file.outcome)},
                    {"type", acro_type_name(file.type)},
                    {"properties", std::move(properties)},
                    {"files", std::move(listed)},
                    {"outcome", outcome_json(file, omitted)},
                    {"command", file.command},
                    {"summary", acro_summary(file)},
                    {"timestamp", file.timestamp.empty() ? run.timestamp : file.timestamp},
                    {"comments", file.comments},
                    {"exception", file.exception},
                    {"enclave", enclave_json(file, omitted)}};
    if (omitted.ok_cells > 0 || omitted.cells > 0) {
      results[uid]["enclave"]["listing"] = {{"ok_cells_omitted", omitted.ok_cells},
                                            {"cells_omitted", omitted.cells},
                                            {"max_cells", limits.max_cells}};
    }
  }
  return {{"version", run.version},
          {"results", std::move(results)},
          {"enclave",
           {{"profile", run.profile},
            {"profile_source", run.profile_source},
            {"outcome", outcome_name(overall)},
            {"files", files.size()}}}};
}

std::string human_summary(const std::vector<FileReport>& files, const RunInfo& run,
                          std::size_t max_cells) {
  std::array<std::size_t, 3> per_outcome{};
  for (const auto& f : files) ++per_outcome[static_cast<std::size_t>(f.outcome)];
  std::string out = "Exit check, profile " + run.profile + " (" + run.profile_source + ")\n";
  out += std::to_string(files.size()) + (files.size() == 1 ? " file: " : " files: ") +
         std::to_string(per_outcome[0]) + " pass, " + std::to_string(per_outcome[1]) + " review, " +
         std::to_string(per_outcome[2]) + " fail\n";
  for (const auto& file : files) {
    std::string verdict = outcome_name(file.outcome);
    std::transform(verdict.begin(), verdict.end(), verdict.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    out += "\n" + verdict + " " + file.name + " (" + output_type_name(file.type);
    if (!file.cell_outcome.empty()) {
      std::array<std::size_t, 3> cells{};
      for (auto o : file.cell_outcome) ++cells[static_cast<std::size_t>(o)];
      out += ", " + cells_text(file.cell_outcome.size()) + ": " + std::to_string(cells[0]) +
             " pass, " + std::to_string(cells[1]) + " review, " + std::to_string(cells[2]) +
             " fail";
    }
    out += ")\n";
    auto counts = file.counts_per_rule();
    if (!counts.empty()) {
      std::string line;
      for (const auto& [rule, n] : counts) {
        line += (line.empty() ? "" : ", ") + rule + " " + std::to_string(n);
      }
      out += "  rules: " + line + "\n";
    }
    for (const auto& f : file.table_findings) {
      out += "  " + std::string(outcome_name(f.outcome)) + " " + f.rule + ": " + f.reason + "\n";
    }
    // Failing cells first, then review, each in table order.
    std::vector<const CellFinding*> listed;
    for (Outcome wanted : {Outcome::kFail, Outcome::kReview}) {
      for (const auto& f : file.findings) {
        if (listed.size() == max_cells) break;
        if (f.outcome == wanted) listed.push_back(&f);
      }
    }
    for (const auto* f : listed) {
      out += "  " + std::string(outcome_name(f->outcome)) + " " + f->rule + " [" +
             file.grid.label(f->cell) + "]: " + f->reason + "\n";
    }
    if (file.findings.size() > listed.size()) {
      out += "  ... and " + std::to_string(file.findings.size() - listed.size()) +
             " more cell findings in results.json\n";
    }
    for (const auto& c : file.comments) out += "  note: " + c + "\n";
    if (!file.secondary.empty()) {
      out += "  secondary suppression: " + cells_text(file.secondary.size()) + "\n";
    }
    if (!file.intervals.empty()) {
      std::size_t unprotected = 0;
      for (const auto& i : file.intervals) unprotected += !i.is_protected;
      out += "  attacker audit: " + cells_text(file.intervals.size()) + ", " +
             std::to_string(unprotected) + " not protected\n";
      std::size_t shown = 0;
      for (const auto& i : file.intervals) {
        if (i.is_protected || shown == max_cells) continue;
        ++shown;
        out += "    [" + file.grid.label(i.cell) + "]: attacker bounds [" + format_number(i.lo) +
               ", " + format_number(i.hi) + "], needs at least [" + format_number(i.required_lo) +
               ", " + format_number(i.required_hi) + "]\n";
      }
    }
    for (const auto& d : file.inputs) out += "  sha256 " + d.sha256 + "  " + d.name + " (input)\n";
    for (const auto& d : file.outputs) {
      out += "  sha256 " + d.sha256 + "  " + d.name + " (output)\n";
    }
  }
  return out;
}

}  // namespace enclave::exitcontrol
