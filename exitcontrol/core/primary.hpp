// The primary disclosure rules: each cell of a table, on its own, against the profile
// (threshold, zeros, negatives, missing values, dominance, the NDB minima), plus the
// table-level rules (totals consistent with their parts, degrees of freedom of models, the
// geographic floor). Cells failing a disclosure rule are the primary suppressions; whether the
// remaining cells let an attacker recover them is the secondary audit's question (lp/).
// Pure functions over a Table: no I/O, no allocation per passing cell.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/profile.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol {

// Ordered by severity: the outcome of a cell or a file is the worst of its findings.
enum class Outcome : std::uint8_t { kPass, kReview, kFail };
const char* outcome_name(Outcome outcome);  // "pass", "review", "fail" (ACRO's status strings)
inline Outcome worse(Outcome a, Outcome b) {
  return a > b ? a : b;
}

// Rule names. Where ACRO has the rule, ACRO's spelling in results.json (sdc.summary keys).
namespace rules {
inline constexpr const char* kThreshold = "threshold";  // ACRO
inline constexpr const char* kPRatio = "p-ratio";       // ACRO
inline constexpr const char* kNkRule = "nk-rule";       // ACRO
inline constexpr const char* kNegative = "negative";    // ACRO
inline constexpr const char* kMissing = "missing";      // ACRO
// Ours. ACRO counts a zero cell under "threshold"; the report does the same in ACRO's keys.
inline constexpr const char* kZeros = "zeros";
inline constexpr const char* kDominance = "dominance";  // magnitude cell without top1/top2
inline constexpr const char* kTotals = "totals";
inline constexpr const char* kDof = "dof";
inline constexpr const char* kNdbUnits = "ndb-units";
inline constexpr const char* kNdbInstitutions = "ndb-institutions";
inline constexpr const char* kNdbInsurers = "ndb-insurers";
inline constexpr const char* kGeographicFloor = "geographic-floor";
}  // namespace rules

struct CellFinding {
  std::uint32_t cell;
  Outcome outcome;
  std::string rule;
  std::string reason;
};

// A finding about the file as a whole (a model's degrees of freedom, a too-fine geography, a
// k-anonymity result, the file gate's verdict).
struct TableFinding {
  Outcome outcome;
  std::string rule;
  std::string reason;
};

struct PrimaryResult {
  Outcome outcome = Outcome::kPass;   // worst of every cell and table finding
  std::vector<Outcome> cell_outcome;  // per cell
  // Per cell, 1 when the cell fails a disclosure rule (threshold, zeros, dominance, units):
  // the primary suppressions. Review findings and inconsistent totals do not suppress.
  std::vector<std::uint8_t> suppress;
  std::vector<CellFinding> findings;  // every finding that is not a pass, in rule order
  std::vector<TableFinding> table_findings;
  std::map<std::string, std::size_t> counts_per_rule;  // cells (or tables) per rule

  // Records a finding: updates the cell's outcome, the counts and, for a failing disclosure
  // rule, the suppression mask.
  void add(std::uint32_t cell, Outcome outcome, const char* rule, std::string reason,
           bool suppresses);
  void add_table(Outcome outcome, const char* rule, std::string reason);
};

// One function per rule, each appending to result (sized by check_primary). They assume
// result.cell_outcome and result.suppress have table.size() entries.

// Cells below profile.threshold contributors fail; for frequency tables the count is the
// value. A count of 0 follows profile.zeros (rule "zeros"). A missing count fails when missing
// values are not sent to review (the count is unknown: fail closed). Cells governed by the NDB
// units rule are left to check_ndb_units.
void check_threshold(const Table& table, const TableMeta& meta, const Profile& profile,
                     PrimaryResult& result);
// Negative values to review (profile.negatives_to_review).
void check_negative(const Table& table, const Profile& profile, PrimaryResult& result);
// Cells without a value to review (profile.missing_to_review).
void check_missing(const Table& table, const Profile& profile, PrimaryResult& result);
// Every margin equals the sum of its parts within profile.totals_tolerance (plus floating-point
// rounding); a mismatch fails the total cell. Requires table.build_index() to have been run.
void check_totals(const Table& table, const Profile& profile, PrimaryResult& result);
// Magnitude tables: the n-k rule and the p% rule as ACRO computes them (acro_tables.py agg_nk,
// agg_p_percent), on the cell value as total and the largest two contributions.
void check_dominance(const Table& table, const Profile& profile, PrimaryResult& result);
// Models: residual degrees of freedom at least profile.min_dof.
void check_dof(const Table& table, const TableMeta& meta, const Profile& profile,
               PrimaryResult& result);
// NDB: units of a drug where the patient count is unknown, by meta.route. The patient count
// is known where the sidecar declares a contributors column and the cell has a value there.
void check_ndb_units(const Table& table, const TableMeta& meta, const Profile& profile,
                     PrimaryResult& result);
// NDB: fewer institutions or insurers than the minimum behind a cell go to review.
void check_ndb_institutions(const Table& table, const Profile& profile, PrimaryResult& result);
// A dimension at a geographic level finer than profile.geographic_floor fails the table; a
// level the profile does not list goes to review.
void check_geographic_floor(const Table& table, const TableMeta& meta, const Profile& profile,
                            PrimaryResult& result);

// Runs every rule that applies to the table's kind. Extracts get no cell rules here (see
// kanon.hpp).
PrimaryResult check_primary(const Table& table, const TableMeta& meta, const Profile& profile);

// "1000", "0.25", "-3": numbers in reasons and summaries, integers without a decimal point.
std::string format_number(double value);

}  // namespace enclave::exitcontrol
