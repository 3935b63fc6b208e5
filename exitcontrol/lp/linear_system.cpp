#include "exitcontrol/lp/linear_system.hpp"

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <mutex>
#include <numeric>
#include <string>
#include <system_error>
#include <thread>
#include <unordered_map>

#include "exitcontrol/lp/glpk_session.hpp"

namespace enclave::exitcontrol::lp {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::uint32_t kNoBlock = 0xffffffffu;
constexpr unsigned kMaxThreads = 4;
constexpr std::size_t kThreadedBlock = 200;  // unknowns in a block worth splitting over threads
constexpr std::size_t kMinBatch = 8;         // ends worth a batch LP
constexpr std::size_t kMaxBatch = 64;

double snap(double v) {
  if (!std::isfinite(v)) return v;
  double r = std::round(v);
  return std::abs(v - r) <= 1e-9 * std::max(1.0, std::abs(v)) ? r : v;
}

// Sums the coefficients of repeated variables and drops zeros: GLPK refuses duplicates.
std::vector<Term> normalized(const std::vector<Term>& terms) {
  std::vector<Term> out(terms);
  std::sort(out.begin(), out.end(), [](const Term& a, const Term& b) { return a.var < b.var; });
  std::size_t kept = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (kept > 0 && out[kept - 1].var == out[i].var) {
      out[kept - 1].coef += out[i].coef;
    } else {
      out[kept++] = out[i];
    }
  }
  out.resize(kept);
  std::erase_if(out, [](const Term& t) { return t.coef == 0; });
  return out;
}

std::string row_name(const BoundsOptions& options, std::size_t row) {
  if (options.describe_row) return options.describe_row(row);
  return "row " + std::to_string(row);
}

Status validate(const LinearSystem& system, std::span<const std::vector<Term>> targets) {
  const std::size_t n = system.lower.size();
  if (system.upper.size() != n) {
    return fail(Errc::kInvalidArgument, "linear system: " + std::to_string(n) +
                                            " lower bounds but " +
                                            std::to_string(system.upper.size()) + " upper bounds");
  }
  for (std::size_t v = 0; v < n; ++v) {
    double lo = system.lower[v], hi = system.upper[v];
    if (std::isnan(lo) || std::isnan(hi) || lo > hi || lo == kInfinity || hi == -kInfinity) {
      return fail(Errc::kInvalidArgument, "linear system: variable " + std::to_string(v) +
                                              " has bounds [" + std::to_string(lo) + ", " +
                                              std::to_string(hi) + "]");
    }
  }
  auto check_terms = [n](const std::vector<Term>& terms, const std::string& where) -> Status {
    for (const auto& t : terms) {
      if (t.var >= n) {
        return fail(Errc::kInvalidArgument, "linear system: " + where + " uses variable " +
                                                std::to_string(t.var) + " of " + std::to_string(n));
      }
      if (!std::isfinite(t.coef)) {
        return fail(Errc::kInvalidArgument,
                    "linear system: " + where + " has a coefficient that is not finite");
      }
    }
    return {};
  };
  for (std::size_t r = 0; r < system.rows.size(); ++r) {
    ENCLAVE_TRY(check_terms(system.rows[r].terms, "row " + std::to_string(r)));
    if (!std::isfinite(system.rows[r].rhs)) {
      return fail(Errc::kInvalidArgument, "linear system: row " + std::to_string(r) +
                                              " has a right-hand side that is not finite");
    }
  }
  for (std::size_t t = 0; t < targets.size(); ++t) {
    ENCLAVE_TRY(check_terms(targets[t], "target " + std::to_string(t)));
  }
  return {};
}

// Variables joined by a row belong to one block; blocks are solved as separate LPs.
struct Blocks {
  std::vector<std::uint32_t> of_var;  // kNoBlock for a variable in no row
  std::vector<std::vector<std::uint32_t>> vars, rows;
};

Blocks find_blocks(std::size_t n, const std::vector<std::vector<Term>>& rows) {
  std::vector<std::uint32_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0u);
  auto root = [&](std::uint32_t v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  };
  std::vector<std::uint8_t> in_row(n, 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      in_row[row[i].var] = 1;
      if (i > 0) {
        auto a = root(row[0].var), b = root(row[i].var);
        if (a != b) parent[std::max(a, b)] = std::min(a, b);
      }
    }
  }
  Blocks blocks;
  blocks.of_var.assign(n, kNoBlock);
  std::vector<std::uint32_t> block_of_root(n, kNoBlock);
  for (std::uint32_t v = 0; v < n; ++v) {
    if (!in_row[v]) continue;
    auto r = root(v);
    if (block_of_root[r] == kNoBlock) {
      block_of_root[r] = static_cast<std::uint32_t>(blocks.vars.size());
      blocks.vars.emplace_back();
      blocks.rows.emplace_back();
    }
    blocks.of_var[v] = block_of_root[r];
    blocks.vars[block_of_root[r]].push_back(v);
  }
  for (std::uint32_t r = 0; r < rows.size(); ++r) {
    if (!rows[r].empty()) blocks.rows[blocks.of_var[rows[r][0].var]].push_back(r);
  }
  return blocks;
}

// The part of one target that falls in one block.
struct Part {
  std::uint32_t target;
  std::vector<Term> terms;
};

void widen(Interval& seen, double value) {
  seen.lo = std::min(seen.lo, value);
  seen.hi = std::max(seen.hi, value);
}

class BlockSolver {
 public:
  // seen: per variable of the system, the extremes found at feasible points so far.
  BlockSolver(const LinearSystem& system, const std::vector<std::vector<Term>>& rows,
              const std::vector<std::uint32_t>& vars, const std::vector<std::uint32_t>& row_ids,
              std::vector<Interval>& seen)
      : system_(system), rows_(rows), vars_(vars), row_ids_(row_ids), seen_(seen) {}

  Status build() {
    for (std::uint32_t i = 0; i < vars_.size(); ++i) column_[vars_[i]] = static_cast<int>(i + 1);
    std::vector<int> ia{0}, ja{0};
    std::vector<double> ar{0};
    for (std::size_t r = 0; r < row_ids_.size(); ++r) {
      for (const auto& t : rows_[row_ids_[r]]) {
        ia.push_back(static_cast<int>(r + 1));
        ja.push_back(column_.at(t.var));
        ar.push_back(t.coef);
      }
    }
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const int n_rows = static_cast<int>(row_ids_.size());
    const int n_cols = static_cast<int>(vars_.size());
    const int nnz = static_cast<int>(ia.size() - 1);
    const int* ia_p = ia.data();
    const int* ja_p = ja.data();
    const double* ar_p = ar.data();
    const LinearSystem* s = &system_;
    const std::uint32_t* var_p = vars_.data();
    const std::uint32_t* row_p = row_ids_.data();
    bool ok = glpk::guarded([&] {
      glp_add_rows(p, n_rows);
      glp_add_cols(p, n_cols);
      for (int r = 1; r <= n_rows; ++r) {
        double rhs = s->rows[row_p[r - 1]].rhs;
        glp_set_row_bnds(p, r, GLP_FX, rhs, rhs);
      }
      for (int c = 1; c <= n_cols; ++c) {
        double lo = s->lower[var_p[c - 1]], hi = s->upper[var_p[c - 1]];
        int type = std::isinf(lo) ? (std::isinf(hi) ? GLP_FR : GLP_UP)
                                  : (std::isinf(hi) ? GLP_LO : (lo == hi ? GLP_FX : GLP_DB));
        glp_set_col_bnds(p, c, type, std::isinf(lo) ? 0.0 : lo, std::isinf(hi) ? 0.0 : hi);
      }
      glp_load_matrix(p, nnz, ia_p, ja_p, ar_p);
      glp_adv_basis(p, 0);
    });
    if (!ok) return glpk::glpk_failure("linear system");
    return {};
  }

  // Minimum (sense GLP_MIN) or maximum of the part's terms; +-kInfinity when unbounded.
  Expected<double> optimize(const std::vector<Term>& terms, int sense, Clock::time_point deadline,
                            const BoundsOptions& options) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) return fail(Errc::kTimeout, "");
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_OFF;
    parm.tm_lim = static_cast<int>(std::min<std::int64_t>(remaining.count(), INT_MAX));
    int ret = 0, status = 0;
    double value = 0;
    const Term* term_p = terms.data();
    const int n_terms = static_cast<int>(terms.size());
    // Columns are looked up before entering GLPK: nothing in a guarded body may allocate.
    columns_.clear();
    for (const auto& t : terms) columns_.push_back(column_.at(t.var));
    const int* col_p = columns_.data();
    const int n_cols = static_cast<int>(vars_.size());
    point_.resize(vars_.size());
    double* point = point_.data();
    bool ok = glpk::guarded([&] {
      glp_set_obj_dir(p, sense);
      for (int i = 0; i < n_terms; ++i) glp_set_obj_coef(p, col_p[i], term_p[i].coef);
      ret = glpk::simplex_with_restart(p, &parm);
      status = glp_get_status(p);
      value = glp_get_obj_val(p);
      for (int i = 0; i < n_terms; ++i) glp_set_obj_coef(p, col_p[i], 0.0);
      if (ret == 0 && (status == GLP_OPT || status == GLP_UNBND)) {
        for (int c = 1; c <= n_cols; ++c) point[c - 1] = glp_get_col_prim(p, c);
      }
    });
    if (!ok) return glpk::glpk_failure("linear program");
    if (ret == 0 && (status == GLP_OPT || status == GLP_UNBND)) {
      // Every vertex visited is a feasible point: it shows how far each variable can go.
      for (std::size_t i = 0; i < vars_.size(); ++i) widen(seen_[vars_[i]], point_[i]);
    }
    if (ret == GLP_ETMLIM) return fail(Errc::kTimeout, "");
    if (ret != 0) {
      return fail(Errc::kInternal, "the simplex method failed (GLPK code " + std::to_string(ret) +
                                       ") on a block of " + std::to_string(vars_.size()) +
                                       " unknowns");
    }
    switch (status) {
      case GLP_OPT:
        return snap(value);
      case GLP_UNBND:
        return sense == GLP_MIN ? -kInfinity : kInfinity;
      case GLP_NOFEAS:
        return fail(Errc::kInvalidArgument,
                    "the published figures contradict each other: no values of the " +
                        std::to_string(vars_.size()) + " unknowns satisfy every relation (" +
                        row_name(options, row_ids_.front()) + " and " +
                        std::to_string(row_ids_.size() - 1) + " other relations linked to it)");
      default:
        return fail(Errc::kInternal, "the simplex method ended without an optimum (GLPK status " +
                                         std::to_string(status) + ")");
    }
  }

 private:
  const LinearSystem& system_;
  const std::vector<std::vector<Term>>& rows_;
  const std::vector<std::uint32_t>& vars_;
  const std::vector<std::uint32_t>& row_ids_;
  std::vector<Interval>& seen_;
  glpk::Problem problem_;
  std::unordered_map<std::uint32_t, int> column_;
  std::vector<int> columns_;
  std::vector<double> point_;
};

// Interval propagation through the rows: from sum a_j x_j = r, each x_k lies within
// (r - sum of the others' extremes) / a_k. The result contains the feasible set's box (it is
// an outer bound); on tables it is usually the exact bound, which a visited vertex then
// confirms without an LP of its own. Rounds stop when nothing tightens by more than 1e-9
// (relative) or after a fixed number, so slow convergence only costs LPs, never exactness.
std::vector<Interval> propagate(const LinearSystem& system,
                                const std::vector<std::vector<Term>>& rows) {
  std::vector<Interval> box(system.lower.size());
  for (std::size_t v = 0; v < box.size(); ++v) box[v] = {system.lower[v], system.upper[v]};
  for (int round = 0; round < 100; ++round) {
    bool tightened = false;
    for (std::size_t r = 0; r < rows.size(); ++r) {
      // The row's range of sum a_j x_j, counting infinite contributions apart.
      double min_sum = 0, max_sum = 0;
      int min_inf = 0, max_inf = 0;
      for (const auto& t : rows[r]) {
        double lo = t.coef > 0 ? t.coef * box[t.var].lo : t.coef * box[t.var].hi;
        double hi = t.coef > 0 ? t.coef * box[t.var].hi : t.coef * box[t.var].lo;
        if (std::isinf(lo))
          ++min_inf;
        else
          min_sum += lo;
        if (std::isinf(hi))
          ++max_inf;
        else
          max_sum += hi;
      }
      const double rhs = system.rows[r].rhs;
      for (const auto& t : rows[r]) {
        double lo = t.coef > 0 ? t.coef * box[t.var].lo : t.coef * box[t.var].hi;
        double hi = t.coef > 0 ? t.coef * box[t.var].hi : t.coef * box[t.var].lo;
        // a_k x_k = rhs - (the others), whose range follows from the row's sums without k.
        double others_max = max_inf - (std::isinf(hi) ? 1 : 0) > 0
                                ? kInfinity
                                : max_sum - (std::isinf(hi) ? 0 : hi);
        double others_min = min_inf - (std::isinf(lo) ? 1 : 0) > 0
                                ? -kInfinity
                                : min_sum - (std::isinf(lo) ? 0 : lo);
        double term_lo = rhs - others_max, term_hi = rhs - others_min;
        double new_lo = t.coef > 0 ? term_lo / t.coef : term_hi / t.coef;
        double new_hi = t.coef > 0 ? term_hi / t.coef : term_lo / t.coef;
        Interval& b = box[t.var];
        if (new_lo > b.lo + 1e-9 * std::max(1.0, std::abs(new_lo))) {
          b.lo = new_lo;
          tightened = true;
        }
        if (new_hi < b.hi - 1e-9 * std::max(1.0, std::abs(new_hi))) {
          b.hi = new_hi;
          tightened = true;
        }
      }
    }
    if (!tightened) break;
  }
  return box;
}

// Adds coef * [lo, hi] to an interval sum.
void add_scaled(Interval& sum, double coef, double lo, double hi) {
  if (coef > 0) {
    sum.lo += coef * lo;
    sum.hi += coef * hi;
  } else {
    sum.lo += coef * hi;
    sum.hi += coef * lo;
  }
}

// Whether a feasible point seen so far reaches the propagated bound at one end of a single
// variable (then that bound is exact).
bool attained(const Interval& box, const Interval& seen, bool low_end) {
  const double bound = low_end ? box.lo : box.hi;
  const double reached = low_end ? seen.lo : seen.hi;
  return std::isfinite(bound) && std::abs(reached - bound) <= 1e-7 * std::max(1.0, std::abs(bound));
}

// Settles many single-variable ends with few LPs: one LP maximizes the sum of a batch of
// ends (each variable pushed towards one of its ends), and every end its vertex carries to
// the propagated bound is exact. Batch members share no relation, so they seldom compete;
// rounds stop when a batch settles too little. What is left gets its own LP. On a large 3-D
// table this takes a tenth of the LPs and about half the simplex iterations.
Status settle_in_batches(BlockSolver& solver, const std::vector<std::vector<Term>>& rows,
                         const std::vector<std::uint32_t>& row_ids,
                         const std::vector<Interval>& box, std::vector<Interval>& seen,
                         std::span<const Part> parts, Clock::time_point deadline,
                         const BoundsOptions& options) {
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> rows_of;
  for (auto r : row_ids) {
    for (const auto& t : rows[r]) rows_of[t.var].push_back(r);
  }
  std::unordered_map<std::uint32_t, std::uint32_t> stamp;
  for (bool low_end : {false, true}) {
    std::vector<Term> pending;  // var, +1 / -1: the direction to push
    for (const auto& part : parts) {
      if (part.terms.size() != 1) continue;
      const auto& t = part.terms[0];
      const bool var_low = low_end == (t.coef > 0);
      if (!attained(box[t.var], seen[t.var], var_low))
        pending.push_back({t.var, var_low ? -1.0 : 1.0});
    }
    for (std::uint32_t round = 1; pending.size() >= kMinBatch; ++round) {
      std::vector<Term> batch, rest;
      std::vector<std::uint32_t> near;
      for (const auto& end : pending) {
        if (batch.size() >= kMaxBatch) {
          rest.push_back(end);
          continue;
        }
        // The variables sharing a relation with this one.
        near.assign(1, end.var);
        for (auto r : rows_of[end.var]) {
          for (const auto& t : rows[r]) near.push_back(t.var);
        }
        bool clash = false;
        for (auto v : near) clash = clash || stamp[v] == round;
        if (clash) {
          rest.push_back(end);
          continue;
        }
        for (auto v : near) stamp[v] = round;
        batch.push_back(end);
      }
      auto value = solver.optimize(batch, GLP_MAX, deadline, options);
      if (!value) return error_of(value);
      std::size_t settled = 0;
      for (const auto& end : batch) {
        if (attained(box[end.var], seen[end.var], end.coef < 0)) {
          ++settled;
        } else {
          rest.push_back(end);
        }
      }
      pending = std::move(rest);
      if (settled * 4 < batch.size()) break;
    }
  }
  return {};
}

}  // namespace

Expected<std::vector<Interval>> bounds(const LinearSystem& system,
                                       std::span<const std::vector<Term>> targets,
                                       const BoundsOptions& options) {
  const auto start = Clock::now();
  const auto deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(std::max(0.0, options.time_limit_s)));
  ENCLAVE_TRY(validate(system, targets));

  const std::size_t n = system.lower.size();
  std::vector<std::vector<Term>> rows;
  rows.reserve(system.rows.size());
  for (std::size_t r = 0; r < system.rows.size(); ++r) {
    rows.push_back(normalized(system.rows[r].terms));
    if (rows.back().empty() && system.rows[r].rhs != 0) {
      return fail(Errc::kInvalidArgument,
                  "the published figures contradict each other: " + row_name(options, r) +
                      " has no unknowns but is off by " + std::to_string(system.rows[r].rhs));
    }
  }
  Blocks blocks = find_blocks(n, rows);

  std::vector<Interval> result(targets.size(), Interval{0, 0});
  std::vector<std::size_t> parts_left(targets.size(), 0);
  std::vector<std::vector<Part>> parts(blocks.vars.size());
  for (std::uint32_t t = 0; t < targets.size(); ++t) {
    std::unordered_map<std::uint32_t, std::size_t> part_of_block;
    for (const auto& term : normalized(targets[t])) {
      auto b = blocks.of_var[term.var];
      if (b == kNoBlock) {
        add_scaled(result[t], term.coef, system.lower[term.var], system.upper[term.var]);
        continue;
      }
      auto [it, inserted] = part_of_block.try_emplace(b, parts[b].size());
      if (inserted) {
        parts[b].push_back(Part{t, {}});
        ++parts_left[t];
      }
      parts[b][it->second].terms.push_back(term);
    }
  }

  std::size_t done = 0;
  for (std::size_t t = 0; t < targets.size(); ++t) done += parts_left[t] == 0;
  std::mutex progress_mutex;  // guards done, parts_left, last_report and the callback
  auto last_report = Clock::now();
  auto part_done = [&](std::uint32_t target) {
    std::lock_guard lock(progress_mutex);
    if (--parts_left[target] > 0) return;
    ++done;
    auto now = Clock::now();
    if (options.progress && now - last_report >= std::chrono::milliseconds(100)) {
      options.progress(done, targets.size());
      last_report = now;
    }
  };
  auto timed_out = [&] {
    return fail(Errc::kTimeout, "attacker bounds: the time limit of " +
                                    std::to_string(options.time_limit_s) + " s was reached with " +
                                    std::to_string(done) + " of " + std::to_string(targets.size()) +
                                    " targets done");
  };

  const std::vector<Interval> box = propagate(system, rows);
  // Bounds parts [begin, end) of block b with an LP of its own. Each target has at most one
  // part per block, so workers on one block write to distinct results.
  auto solve_parts = [&](std::size_t b, std::size_t begin, std::size_t end) -> Status {
    std::vector<Interval> seen(n, Interval{kInfinity, -kInfinity});
    BlockSolver solver(system, rows, blocks.vars[b], blocks.rows[b], seen);
    ENCLAVE_TRY(solver.build());
    ENCLAVE_TRY(settle_in_batches(solver, rows, blocks.rows[b], box, seen,
                                  std::span(parts[b]).subspan(begin, end - begin), deadline,
                                  options));
    for (std::size_t k = begin; k < end; ++k) {
      const auto& part = parts[b][k];
      Interval& into = result[part.target];
      for (int sense : {GLP_MIN, GLP_MAX}) {
        // A single variable whose propagated bound a visited vertex already reaches needs no
        // LP: the bound is both an outer limit and attained.
        if (part.terms.size() == 1) {
          const auto& t = part.terms[0];
          const bool low_end = (sense == GLP_MIN) == (t.coef > 0);
          if (attained(box[t.var], seen[t.var], low_end)) {
            (sense == GLP_MIN ? into.lo : into.hi) +=
                t.coef * (low_end ? box[t.var].lo : box[t.var].hi);
            continue;
          }
        }
        auto value = solver.optimize(part.terms, sense, deadline, options);
        if (!value) return error_of(value);
        (sense == GLP_MIN ? into.lo : into.hi) += *value;
      }
      part_done(part.target);
    }
    return {};
  };

  const unsigned workers = options.threads > 0
                               ? options.threads
                               : std::clamp(std::thread::hardware_concurrency(), 1u, kMaxThreads);
  for (std::size_t b = 0; b < parts.size(); ++b) {
    if (parts[b].empty()) continue;
    if (Clock::now() >= deadline) return timed_out();
    const std::size_t count = parts[b].size();
    // Small blocks are not worth a second copy of their LP.
    const std::size_t split =
        blocks.vars[b].size() >= kThreadedBlock ? std::min<std::size_t>(workers, count / 8) : 1;
    std::vector<Status> status(std::max<std::size_t>(split, 1));
    std::vector<std::thread> threads;
    for (std::size_t w = 1; w < split; ++w) {
      auto run = [&, w] { status[w] = solve_parts(b, count * w / split, count * (w + 1) / split); };
      try {
        threads.emplace_back([run] {
          run();
          glp_free_env();  // the thread's own GLPK environment; its LPs are gone by now
        });
      } catch (const std::system_error&) {
        run();  // no thread to be had: do the share here
      }
    }
    status[0] = solve_parts(b, 0, split > 1 ? count / split : count);
    for (auto& t : threads) t.join();
    for (const auto& st : status) {
      if (st) continue;
      if (st.error().code == Errc::kTimeout) return timed_out();
      return Unexpected<Error>{st.error()};
    }
  }
  for (auto& interval : result) {
    interval.lo = snap(interval.lo);
    interval.hi = snap(interval.hi);
  }
  if (options.progress) options.progress(done, targets.size());
  return result;
}

}  // namespace enclave::exitcontrol::lp
