// Rounding, the alternative to suppression (`suggest --method rounding`): every published
// figure becomes a multiple of the profile's rounding_base, so no small count appears exactly.
//
// Controlled rounding first: each cell, margins included, goes to one of the two multiples of
// the base next to its value (a multiple stays as it is: zero-restricted), chosen by a MILP
// (GLPK, time limited by profile.milp_time_limit_s) so that every "total = sum of parts"
// relation still holds and the total distance from the true values is least. In two
// dimensions such a rounding always exists (Cox 1987); in three or more, or with hierarchies,
// it may not, or the solver may run out of time. Then the fallback: the inner cells are
// rounded to the nearest multiple and every margin is recomputed as the sum of its rounded
// inner cells, which keeps the table additive but lets margins drift further from the truth
// (the result says which was done, and the largest deviation). Cells below the threshold go
// up or down at random (up with probability remainder / base) rather than to the nearer
// multiple, which would betray which half of the interval they were in.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/profile.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol::lp {

struct RoundingOptions {
  // (stage, done, all) now and then: "controlled rounding" while the MILP runs.
  std::function<void(std::string_view, std::size_t, std::size_t)> progress;
};

struct RoundingResult {
  std::vector<double> values;  // per cell; kMissing where the table has no value
  double base = 0;
  bool controlled = false;      // every cell adjacent to its value, table additive
  bool proven_optimal = false;  // controlled, with the least total deviation
  double max_deviation = 0;     // largest |rounded - true| over all cells
  double total_deviation = 0;
  std::size_t cells_changed = 0;
  double seconds = 0;
};

// kInvalidArgument when the profile sets no rounding base, a value is negative or not finite,
// or the table's index is not built.
Expected<RoundingResult> round_table(const Table& table, const Profile& profile,
                                     const RoundingOptions& options = {});

// One line for people: "controlled rounding to base 5 (optimal): 31 cells changed, largest
// deviation 4".
std::string rounding_summary(const RoundingResult& result);

}  // namespace enclave::exitcontrol::lp
