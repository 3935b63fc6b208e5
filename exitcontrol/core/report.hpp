// The results of an exit check: results.json in ACRO's schema (AI-SDC/ACRO acro/record.py
// finalise_json, acro_tables.py get_table_sdc and get_summary), so tools that read ACRO's
// output read ours, plus what ACRO does not have under "enclave" keys; and a short text
// summary for people. No I/O: the caller hashes the files and writes the results.
//
// results.json:
//   {"version": ..., "results": {"output_0": {"uid", "status", "type", "properties",
//     "files": [{"name", "sdc": {"summary": {"suppressed", "negative", "missing", "threshold",
//                "p-ratio", "nk-rule", "all-values-are-same", ...}, "cells": {rule: [[row,
//                col]]}}}],
//     "outcome": {column: {row: "ok" | "threshold; p-ratio; "}}, "command", "summary",
//     "timestamp", "comments", "exception",
//     "enclave": {"type", "outcome", "counts_per_rule", "cells": [per-cell finding],
//                 "table_findings", "secondary_suppressed", "intervals",
//                 "sha256": {"inputs": {name: hex}, "outputs": {name: hex}}}}},
//    "enclave": {"profile", "profile_source", "outcome", "files"}}
// ACRO's [row, col] positions and outcome keys use CellGrid's two-dimensional view.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "exitcontrol/core/primary.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol {

// What a file in the outbox is.
enum class OutputType {
  kTable,    // a frequency or magnitude table, checked cell by cell
  kModel,    // model or test output, checked by degrees of freedom
  kExtract,  // row-level data, checked by k-anonymity and l-diversity
  kText,     // plain text: passes the gate
  kImage,    // images and PDFs: a steward looks at them
  kRefused,  // archives, executables, spreadsheets with formulas, unknown types
};
const char* output_type_name(OutputType type);  // "table", "model", "extract", "text", ...
// ACRO's "type": "table", "regression"; ACRO files everything it cannot check as "custom".
const char* acro_type_name(OutputType type);

// ACRO's two-dimensional view of a table: the columns are the categories of the last
// dimension, the rows the combinations of the others in order of first appearance (the order
// of the file's rows). A one-dimensional table has its categories as rows and one column "".
struct CellGrid {
  std::vector<std::string> row_labels;     // "region=Miyagi, age=0-4"
  std::vector<std::string> column_labels;  // "sex=F"
  std::vector<std::uint32_t> row, column;  // per cell

  std::string label(std::uint32_t cell) const;  // "region=Miyagi, age=0-4, sex=F"
};
CellGrid cell_grid(const Table& table);

// The attacker's bounds on one suppressed cell after secondary suppression: protected when
// lo <= required_lo and hi >= required_hi.
struct CellInterval {
  std::uint32_t cell;
  double lo, hi;
  double required_lo, required_hi;
  bool is_protected;
};

struct FileDigest {
  std::string name;    // as shown to people: "tables/claims.csv"
  std::string sha256;  // lower-case hex
};

// Everything known about one file of an export request. Table checks fill the grid, cell
// outcomes and findings (table_report); other checks (file gate, k-anonymity, models) report
// through table_findings; the secondary suppression adds secondary and intervals.
struct FileReport {
  std::string name;
  OutputType type = OutputType::kTable;
  Outcome outcome = Outcome::kPass;
  std::map<std::string, std::string> properties;  // ACRO "properties", e.g. {"kind": ...}
  std::string command;                            // what produced the verdict
  std::string timestamp;                          // ISO 8601; empty takes RunInfo::timestamp
  std::vector<std::string> comments;
  std::string exception;    // the analyst's case for releasing a file that does not pass
  bool suppressed = false;  // the safe version hides the failing cells

  CellGrid grid;
  std::vector<Outcome> cell_outcome;
  std::vector<CellFinding> findings;
  std::vector<TableFinding> table_findings;
  std::vector<std::uint32_t> secondary;  // cells hidden by secondary suppression
  std::vector<CellInterval> intervals;   // the attacker audit of every hidden cell

  std::vector<FileDigest> inputs;   // the file itself, its sidecar
  std::vector<FileDigest> outputs;  // the safe version

  // Appends a finding about the whole file and makes the outcome at least as bad.
  void add(TableFinding finding);
  // Findings per rule, cell and table findings together.
  std::map<std::string, std::size_t> counts_per_rule() const;
};

// The report of a checked table: its grid, per-cell outcomes, findings and outcome.
FileReport table_report(std::string name, const Table& table, const PrimaryResult& primary);

struct RunInfo {
  std::string version;         // "enclave-exitcheck 0.1.0": results.json "version"
  std::string profile;         // Profile::name
  std::string profile_source;  // Profile::source
  std::string timestamp;       // ISO 8601, for files that carry none
};

// ACRO's rule name for one of ours, as counted in sdc.summary: a disclosive zero is one of
// ACRO's threshold cells. Rules ACRO does not have keep their name.
const char* acro_rule_name(const std::string& rule);

// ACRO's per-output "summary": "fail; threshold: 3 cells may need suppressing; ".
std::string acro_summary(const FileReport& file);

// How much of a table results.json lists cell by cell. enclave-exitcheck writes everything (the
// ACRO-compatible file); enclave-exportd keeps a bounded report per file, stored with the
// request and signed into the release manifest, so that a 100 MB table's review and release do
// not carry a line for each of its millions of cells. Counts are always complete; what a listing
// leaves out is counted in the file's enclave.listing.
struct ReportLimits {
  bool ok_cells = true;  // "outcome" names passing cells too ("ok")
  std::size_t max_cells = std::numeric_limits<std::size_t>::max();  // per cell list
};

nlohmann::json results_json(const std::vector<FileReport>& files, const RunInfo& run,
                            const ReportLimits& limits = {});

// A few lines per file for people: outcome, counts per rule, the first max_cells failing or
// review cells with their labels, table findings, the audit and the SHA-256 of every file.
std::string human_summary(const std::vector<FileReport>& files, const RunInfo& run,
                          std::size_t max_cells = 5);

}  // namespace enclave::exitcontrol
