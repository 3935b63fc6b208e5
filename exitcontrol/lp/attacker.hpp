// The attacker audit of one table: what a careful reader can prove about each suppressed cell
// from everything published in the same table (the cells left in, the margins and subtotals,
// and the knowledge that counts are not negative). Suppressed cells are the unknowns, every
// "total = sum of parts" relation of the table is an equation, and two LPs per cell give the
// narrowest interval [lo, hi] the reader can prove. A cell is protected when that interval
// reaches far enough on both sides of its true value (Profile's protection levels).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/profile.hpp"
#include "exitcontrol/core/table.hpp"
#include "exitcontrol/lp/linear_system.hpp"

namespace enclave::exitcontrol::lp {

// How far the attacker's interval must reach from a suppressed cell's true value a:
// upper = max(upper% of |a|, protection_min); lower = max(lower% of |a|, protection_min),
// capped at a for non-negative tables (the attacker knows the cell is at least 0, so it can
// never be pushed lower; a zero cell needs the upper side only).
struct Protection {
  double lower = 0;
  double upper = 0;
};
Protection required_protection(double value, const Profile& profile, bool non_negative = true);

struct AuditOptions {
  bool non_negative = true;  // the attacker knows every cell is >= 0 (counts, amounts)
  BoundsOptions bounds;      // time limit, progress and threads of the LPs
};

// The cells the attacker does not know: the suppressed ones, cells without a value, and under
// TotalsPolicy::kRecompute every margin. With kRecompute the published margins are the sums of
// the published parts only, so they say nothing about a suppressed cell; the true margins are
// unknown and the equations "true total = sum of true parts" still bind them (which matters
// when a margin itself is suppressed: its published parts bound it from below).
// suppressed has one entry per cell.
std::vector<std::uint8_t> unknown_cells(const Table& table,
                                        std::span<const std::uint8_t> suppressed,
                                        TotalsPolicy totals);

// The attacker's linear system: one variable per unknown cell (bounds [0, inf) for
// non-negative tables, else free), one row per equation of the table that involves an
// unknown cell, with the published cells moved to the right-hand side.
inline constexpr std::uint32_t kPublishedCell = 0xffffffffu;
struct AttackerSystem {
  LinearSystem system;
  std::vector<std::uint32_t> cell_of_var;
  std::vector<std::uint32_t> var_of_cell;   // kPublishedCell for a cell the attacker knows
  std::vector<std::uint32_t> total_of_row;  // the equation's total cell, for messages
  std::vector<std::uint32_t> dimension_of_row;
};
// kInvalidArgument when unknown has the wrong length, a known cell's value is not finite, or
// the table's coordinate index has not been built (Table::build_index).
Expected<AttackerSystem> attacker_system(const Table& table, std::span<const std::uint8_t> unknown,
                                         bool non_negative);

// The audit of one suppressed cell whose true value is known (the engine's own suppression).
struct CellAudit {
  std::uint32_t cell = 0;
  double value = 0;           // the true value a
  double lo = 0, hi = 0;      // the attacker's interval
  double need_lo = 0;         // L: lo must be <= value - need_lo
  double need_hi = 0;         // U: hi must be >= value + need_hi
  bool exact = false;         // lo == hi: the attacker recovers the value
  bool is_protected = false;  // both sides reach far enough
};

// Audits every cell with suppressed[cell] != 0, in cell order. Protection is judged for every
// suppressed cell; only primary cells must be protected (secondary cells are reported for
// information). profile.totals decides whether margins are known (kAsPublished) or recomputed
// (kRecompute, see unknown_cells). kInvalidArgument when a suppressed cell has no value, when
// a non-negative audit meets a negative value, or when the table contradicts itself.
Expected<std::vector<CellAudit>> audit_suppression(const Table& table,
                                                   std::span<const std::uint8_t> suppressed,
                                                   const Profile& profile,
                                                   const AuditOptions& options = {});

// The audit of a table as published by someone else (the CLI's `audit`): the suppressed
// cells are the ones written as the marker and their true values are unknown, so nothing can
// be "protected" against a known value. Instead each interval is judged on its own:
// - exact: lo == hi, the cell is disclosed;
// - protectable: some true value v in [lo, hi] would meet the profile's protection levels
//   (hi >= v + U(v) and lo <= v - L(v)); when none does, the interval is so narrow that the
//   cell is given away whatever it is (exact cells are never protectable);
// - known_small: for frequency tables, hi < profile.threshold: the reader can prove the cell
//   is a small count (often the marker's own meaning; reported, not a failure by itself).
struct PublishedCellAudit {
  std::uint32_t cell = 0;
  double lo = 0, hi = 0;
  bool exact = false;
  bool protectable = false;
  bool known_small = false;
};
// The values of suppressed cells are ignored (they may be kMissing).
Expected<std::vector<PublishedCellAudit>> audit_published(const Table& table,
                                                          std::span<const std::uint8_t> suppressed,
                                                          const Profile& profile,
                                                          const AuditOptions& options = {});

}  // namespace enclave::exitcontrol::lp
