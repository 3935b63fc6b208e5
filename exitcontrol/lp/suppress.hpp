// Secondary suppression (`suggest`): given the primary suppressions, find more cells to
// suppress so that no primary cell can be narrowed by the attacker below its protection
// levels (attacker.hpp), at a small cost.
//
// The model. Let y_j = 1 when cell j is suppressed. The attacker knows each suppressed cell
// lies in [0, M] (M far above any value in the table; for signed tables [a - M, a + M]) and
// every "total = sum of parts" relation. A primary cell i is protected upwards when
// max x_i >= a_i + U_i over that polytope, downwards when min x_i <= a_i - L_i.
// - Heuristic: for each primary cell and side not yet protected, a witness LP finds the
//   cheapest way to move the table away from its true values far enough (cost of a cell per
//   unit of movement; cells already suppressed move almost free) and suppresses every cell
//   the movement touches, so the movement proves the protection (the network-flow heuristic
//   of 2-D tables, in LP form for any number of dimensions and hierarchies). Each movement
//   also proves every other side it reaches. The LP covers a neighbourhood of the cell (its
//   own categories, their ancestors and the most promising siblings, some 600 cells; the
//   whole table when smaller), falling back to the whole table when the neighbourhood has no
//   movement. Since every suppressed cell then lies on a movement, no relation is left with
//   exactly one suppressed cell.
//   A clean-up pass then tries to publish again each secondary cell, most expensive first:
//   the cell goes when every side whose movement used it finds another one within the
//   remaining suppressions (a restricted LP over the unknown cells near it; first the cheap
//   rule: if publishing it would leave a relation with a single suppressed primary cell, it
//   stays). Bounded by time; exact minimality (every remaining secondary cell is needed)
//   where the neighbourhood is the whole table.
// - MILP: minimum cost over binary y by Benders decomposition on Fischetti-Salazar capacity
//   cuts: the attacker LP for a pattern y and a side of a primary cell gives (through its
//   reduced costs alpha - beta) the valid inequality
//     sum_j (alpha_j * (M_j^hi) + beta_j * (M_j^lo)) y_j >= required reach
//   which the pattern violates when the side is unprotected. The master MILP (GLPK, time
//   limited by profile.milp_time_limit_s) is seeded with the heuristic's pattern as incumbent;
//   it is proven optimal when the master's optimum passes every attacker LP.
// Costs are the cells' values (kValue: information lost; ties broken towards fewer cells) or
// one per cell (kCellCount). Margins may be suppressed like any other cell.
//
// Totals. Under TotalsPolicy::kAsPublished margins keep their values and may themselves be
// suppressed. Under kRecompute the safe version publishes each margin as the sum of the
// published inner cells below it (published_values), so no published figure depends on a
// suppressed inner cell: inner primary cells need no secondary suppression at all, and only a
// suppressed margin (which its published parts bound from below) may need more.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/profile.hpp"
#include "exitcontrol/core/table.hpp"
#include "exitcontrol/lp/attacker.hpp"

namespace enclave::exitcontrol::lp {

enum class SuppressionMethod { kHeuristic, kMilp };
const char* suppression_method_name(SuppressionMethod method);  // "heuristic", "milp"

enum class SuppressionCost { kValue, kCellCount };

struct SuppressOptions {
  SuppressionMethod method = SuppressionMethod::kHeuristic;  // kMilp runs the heuristic first
  SuppressionCost cost = SuppressionCost::kValue;
  bool non_negative = true;
  // For the heuristic, its clean-up and the final audit together; the MILP has
  // profile.milp_time_limit_s on top. Past it the heuristic fails with kTimeout; the clean-up
  // stops at half of it (cleanup_complete = false) to leave time for the audit.
  double time_limit_s = 60;
  // (stage, done, all) now and then; stages "heuristic", "clean-up", "audit" (from the
  // audit's worker threads, one call at a time), and "milp" with (master rounds so far, 0).
  std::function<void(std::string_view, std::size_t, std::size_t)> progress;
};

struct MilpReport {
  double cost = 0;              // of the best pattern the MILP phase knows (<= the heuristic's)
  double lower_bound = 0;       // no pattern is cheaper than this
  bool proven_optimal = false;  // cost == lower bound, proven by the attacker LPs
  bool time_limit_hit = false;
  std::size_t rounds = 0;  // master MILPs solved
  std::size_t cuts = 0;    // capacity cuts generated
  double seconds = 0;
};

struct SuppressionResult {
  std::vector<std::uint8_t> suppressed;  // per cell: 1 when suppressed
  std::vector<std::uint32_t> primary;    // ascending
  std::vector<std::uint32_t> secondary;  // ascending
  std::vector<CellAudit> audit;          // every suppressed cell, final attacker audit (true
                                         // model: bounds [0, inf), not the capped one)
  SuppressionMethod method = SuppressionMethod::kHeuristic;
  double cost = 0;  // of the secondary cells (sum of values or count)
  double heuristic_cost = 0;
  bool cleanup_complete = false;   // every secondary cell was tried
  std::optional<MilpReport> milp;  // when method == kMilp
  bool proven_optimal = false;
  double heuristic_seconds = 0;
  double audit_seconds = 0;
};

// primary has one entry per cell. kInvalidArgument when it has the wrong length, a cell has
// no value, the table is not additive (a relation off by more than 1e-6 relative) or a primary
// cell cannot be protected even with every other cell suppressed; kTimeout as above.
Expected<SuppressionResult> suggest_suppression(const Table& table,
                                                std::span<const std::uint8_t> primary,
                                                const Profile& profile,
                                                const SuppressOptions& options = {});

// The figures a safe version publishes: suppressed cells kMissing; under kRecompute every
// margin is the sum of the published inner cells below it (kMissing when some part is absent
// from the table, as it cannot be recomputed).
std::vector<double> published_values(const Table& table, std::span<const std::uint8_t> suppressed,
                                     TotalsPolicy totals);

}  // namespace enclave::exitcontrol::lp
