// What the attacker knows, as linear algebra: unknown cells are variables with bounds, every
// published relation is an equation. The attacker audit asks, for each target combination of
// variables, for the narrowest interval the attacker can prove (two LPs). Used both within one
// table (margins) and across a project's releases (differencing).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace enclave::exitcontrol::lp {

inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

struct Term {
  std::uint32_t var;
  double coef;
};

struct LinearSystem {
  std::vector<double> lower, upper;  // per variable; +-kInfinity when unbounded
  struct Row {
    std::vector<Term> terms;
    double rhs;  // sum of coef * x == rhs
  };
  std::vector<Row> rows;

  std::uint32_t add_variable(double lo, double hi) {
    lower.push_back(lo);
    upper.push_back(hi);
    return static_cast<std::uint32_t>(lower.size() - 1);
  }
};

struct Interval {
  double lo = -kInfinity;
  double hi = kInfinity;
};

struct BoundsOptions {
  double time_limit_s = 60;  // for the whole call; kTimeout when exceeded
  // Called now and then with (targets done, targets in all), for progress bars; from worker
  // threads, one call at a time.
  std::function<void(std::size_t, std::size_t)> progress;
  // Worker threads for large blocks (each with its own LPs); 0: one per core, at most 4.
  unsigned threads = 0;
  // Names a row for error messages (e.g. "the total region=Tohoku"); rows are numbered
  // otherwise.
  std::function<std::string(std::size_t)> describe_row;
};

// For every target (a sparse combination of variables), the minimum and maximum over
// {x : rows hold, lower <= x <= upper}. Independent blocks of variables are solved apart and
// the simplex is warm-started between targets. Most single-variable bounds need no LP of
// their own: interval propagation through the rows gives an outer bound, and a feasible point
// that reaches it (a vertex met on the way, or a batch LP pushing many unrelated variables
// at once) makes it exact. Large blocks are shared among threads.
// kInvalidArgument if the system is infeasible (the published figures contradict each other) or
// malformed (a variable out of range, lower > upper, a value that is not finite); kTimeout past
// options.time_limit_s. Results within 1e-9 (relative) of an integer are snapped to it, so an
// exactly recoverable count comes out as lo == hi.
Expected<std::vector<Interval>> bounds(const LinearSystem& system,
                                       std::span<const std::vector<Term>> targets,
                                       const BoundsOptions& options = {});

}  // namespace enclave::exitcontrol::lp
