#include "exitcontrol/lp/rounding.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "exitcontrol/core/safe_output.hpp"
#include "exitcontrol/lp/glpk_session.hpp"

namespace enclave::exitcontrol::lp {
namespace {

using Clock = std::chrono::steady_clock;

// The multiple of base at or below v, with a tolerance so 14.999999999 counts as 15.
double floor_to(double v, double base) {
  const double q = v / base;
  const double r = std::round(q);
  return (std::abs(q - r) < 1e-9 ? r : std::floor(q)) * base;
}

bool is_multiple(double v, double base) {
  return std::abs(v - floor_to(v, base)) < 1e-9 * std::max(1.0, std::abs(v));
}

// A cell below the threshold (its count, or its contributors in a magnitude table). Rounding
// such a cell to the nearest multiple would tell the reader which half of [0, base) it was in,
// so its direction is drawn at random instead: up with probability (value - floor) / base,
// which keeps the rounding unbiased.
bool is_small(const Table& table, std::size_t cell, double threshold) {
  const double units =
      table.kind == TableKind::kFrequency ? table.value[cell] : table.contributors[cell];
  return std::isfinite(units) && units > 0 && units < threshold;
}

bool random_up(double value, double base, std::mt19937_64& rng) {
  const double low = floor_to(value, base);
  return std::uniform_real_distribution<double>(0, 1)(rng) < (value - low) / base;
}

bool is_inner(const Table& table, std::size_t cell) {
  const auto at = table.coord(cell);
  for (std::size_t d = 0; d < table.dims.size(); ++d) {
    if (!table.dims[d].is_leaf(at[d])) return false;
  }
  return true;
}

void measure(const Table& table, RoundingResult& r) {
  r.max_deviation = r.total_deviation = 0;
  r.cells_changed = 0;
  for (std::size_t c = 0; c < table.size(); ++c) {
    if (is_missing(table.value[c])) continue;
    const double d = std::abs(r.values[c] - table.value[c]);
    r.max_deviation = std::max(r.max_deviation, d);
    r.total_deviation += d;
    r.cells_changed += d > 1e-9 ? 1 : 0;
  }
}

// Inner cells to the nearest multiple, margins as the sums of their rounded inner cells. A
// margin with a missing inner cell below it cannot be recomputed and stays missing.
RoundingResult round_inner_and_recompute(const Table& table, double base, double threshold,
                                         std::mt19937_64& rng) {
  RoundingResult r;
  r.base = base;
  r.values.assign(table.size(), kMissing);
  for (std::size_t c = 0; c < table.size(); ++c) {
    if (is_inner(table, c) && !is_missing(table.value[c])) {
      const double v = table.value[c];
      r.values[c] = is_small(table, c, threshold)
                        ? floor_to(v, base) + (random_up(v, base, rng) ? base : 0)
                        : std::round(v / base) * base;
    }
  }
  // Margins from the equations, innermost first: repeat until nothing changes (a margin's
  // parts may themselves be margins one level down).
  const auto equations = table.equations();
  for (bool changed = true; changed;) {
    changed = false;
    for (const auto& e : equations) {
      if (!is_missing(r.values[e.total])) continue;
      double sum = 0;
      bool complete = true;
      for (auto p : e.parts) {
        if (is_missing(r.values[p])) {
          complete = false;
          break;
        }
        sum += r.values[p];
      }
      if (complete) {
        r.values[e.total] = sum;
        changed = true;
      }
    }
  }
  measure(table, r);
  return r;
}

struct Milp {
  bool solved = false;
  bool optimal = false;
  std::vector<double> values;
};

// Binary u_c per cell whose value is not a multiple: rounded = floor + base * u_c. Rows: each
// equation in rounded values. Objective: total deviation, linear in u.
Expected<Milp> controlled_rounding(const Table& table, double base, double threshold,
                                   double time_limit_s, std::mt19937_64& rng) {
  const std::size_t n = table.size();
  std::vector<double> low(n), up_cost(n), down_cost(n);
  std::vector<int> column(n, 0);
  int columns = 0;
  for (std::size_t c = 0; c < n; ++c) {
    const double v = table.value[c];
    low[c] = floor_to(v, base);
    if (!is_multiple(v, base)) {
      column[c] = ++columns;
      up_cost[c] = low[c] + base - v;
      down_cost[c] = v - low[c];
    }
  }
  const auto equations = table.equations();
  Milp out;
  out.values = low;
  if (columns == 0) {
    out.solved = out.optimal = true;
    return out;
  }
  glpk::Problem problem;
  glp_prob* p = problem.get();
  if (p == nullptr) return glpk::glpk_failure("problem");
  // Row: b*u_total - b*sum(u_parts) = sum(low_parts) - low_total.
  std::vector<std::vector<int>> row_index;
  std::vector<std::vector<double>> row_value;
  std::vector<double> row_rhs;
  for (const auto& e : equations) {
    std::vector<int> ind{0};
    std::vector<double> val{0};
    double rhs = -low[e.total];
    if (column[e.total]) {
      ind.push_back(column[e.total]);
      val.push_back(base);
    }
    for (auto part : e.parts) {
      rhs += low[part];
      if (column[part]) {
        ind.push_back(column[part]);
        val.push_back(-base);
      }
    }
    if (ind.size() == 1) continue;  // every cell a multiple already: holds as it is
    row_index.push_back(std::move(ind));
    row_value.push_back(std::move(val));
    row_rhs.push_back(rhs);
  }
  std::vector<double> objective(static_cast<std::size_t>(columns) + 1, 0);
  double constant = 0;
  for (std::size_t c = 0; c < n; ++c) {
    if (!column[c]) continue;
    // Small cells pull towards a direction drawn at random (see is_small); the others towards
    // the nearer multiple.
    objective[static_cast<std::size_t>(column[c])] =
        is_small(table, c, threshold) ? (random_up(table.value[c], base, rng) ? -base : base)
                                      : up_cost[c] - down_cost[c];
    constant += down_cost[c];
  }
  glp_iocp mip;
  glp_init_iocp(&mip);
  mip.msg_lev = GLP_MSG_OFF;
  mip.presolve = GLP_ON;
  mip.tm_lim = std::max(1, static_cast<int>(time_limit_s * 1000));
  int ret = 0, status = 0;
  std::vector<double> u(static_cast<std::size_t>(columns) + 1, 0);
  double* u_p = u.data();
  const double* obj_p = objective.data();
  bool ok = glpk::guarded([&] {
    glp_set_obj_dir(p, GLP_MIN);
    glp_set_obj_coef(p, 0, constant);
    glp_add_cols(p, columns);
    for (int j = 1; j <= columns; ++j) {
      glp_set_col_kind(p, j, GLP_BV);
      glp_set_obj_coef(p, j, obj_p[j]);
    }
    if (!row_rhs.empty()) glp_add_rows(p, static_cast<int>(row_rhs.size()));
    for (std::size_t i = 0; i < row_rhs.size(); ++i) {
      const int row = static_cast<int>(i) + 1;
      glp_set_row_bnds(p, row, GLP_FX, row_rhs[i], row_rhs[i]);
      glp_set_mat_row(p, row, static_cast<int>(row_index[i].size() - 1), row_index[i].data(),
                      row_value[i].data());
    }
    ret = glp_intopt(p, &mip);
    status = glp_mip_status(p);
    if (status == GLP_OPT || status == GLP_FEAS) {
      for (int j = 1; j <= columns; ++j) u_p[j] = glp_mip_col_val(p, j);
    }
  });
  if (!ok) return glpk::glpk_failure("rounding MILP");
  // GLP_ENOPFS / GLP_ENODFS: no additive rounding exists; GLP_ETMLIM: out of time.
  if (status != GLP_OPT && status != GLP_FEAS) return out;
  out.solved = true;
  out.optimal = ret == 0 && status == GLP_OPT;
  for (std::size_t c = 0; c < n; ++c) {
    if (column[c])
      out.values[c] = low[c] + base * std::round(u[static_cast<std::size_t>(column[c])]);
  }
  return out;
}

}  // namespace

Expected<RoundingResult> round_table(const Table& table, const Profile& profile,
                                     const RoundingOptions& options) {
  if (!profile.rounding_base || *profile.rounding_base <= 0) {
    return fail(Errc::kInvalidArgument,
                "profile " + profile.name + " sets no rounding_base: rounding is not offered");
  }
  const double base = *profile.rounding_base;
  if (table.size() > 0 && !table.find(table.coord(0))) {
    return fail(Errc::kInvalidArgument, table.name + ": the table's index is not built");
  }
  bool complete = true;
  for (std::size_t c = 0; c < table.size(); ++c) {
    const double v = table.value[c];
    if (is_missing(v)) {
      complete = false;
      continue;
    }
    if (!std::isfinite(v) || v < 0) {
      return fail(Errc::kInvalidArgument, table.name + ": " + table.label(c) + " is " +
                                              std::to_string(v) +
                                              "; rounding applies to non-negative tables");
    }
  }
  // Unpredictable on purpose: a reader must not be able to replay the draws.
  std::mt19937_64 rng(std::random_device{}());
  const auto start = Clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - start).count(); };
  if (complete) {
    if (options.progress) options.progress("controlled rounding", 0, 0);
    auto milp = controlled_rounding(table, base, profile.threshold, profile.milp_time_limit_s, rng);
    if (!milp) return error_of(milp);
    if (milp->solved) {
      RoundingResult r;
      r.base = base;
      r.values = std::move(milp->values);
      r.controlled = true;
      r.proven_optimal = milp->optimal;
      measure(table, r);
      r.seconds = seconds();
      return r;
    }
  }
  auto r = round_inner_and_recompute(table, base, profile.threshold, rng);
  r.seconds = seconds();
  return r;
}

std::string rounding_summary(const RoundingResult& r) {
  std::string how = r.controlled
                        ? std::string("controlled rounding to base ") + format_value(r.base) +
                              (r.proven_optimal ? " (optimal)" : " (time limit hit)")
                        : "inner cells rounded to base " + format_value(r.base) +
                              ", margins recomputed (no controlled rounding found)";
  return how + ": " + std::to_string(r.cells_changed) + " cells changed, largest deviation " +
         format_value(r.max_deviation);
}

}  // namespace enclave::exitcontrol::lp
