#include "exitcontrol/lp/suppress.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <climits>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "exitcontrol/lp/glpk_session.hpp"

namespace enclave::exitcontrol::lp {
namespace {

using Clock = std::chrono::steady_clock;

Clock::time_point after(Clock::time_point start, double seconds) {
  return start + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(std::max(0.0, seconds)));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// GLPK's time limits are in int milliseconds; <= 0 means the deadline has passed.
int ms_until(Clock::time_point deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<std::int64_t>(ms, 0, INT_MAX));
}

std::string where(const Table& table) {
  return table.name.empty() ? std::string("table") : table.name;
}

// One side of one primary cell: sign +1 asks the attacker's maximum to reach a + need, -1
// asks the minimum to reach a - need.
struct Side {
  std::uint32_t cell;
  int sign;
  double need;
};

// What every model shares.
struct Instance {
  const Table* table = nullptr;
  std::vector<Table::Equation> equations;
  std::vector<double> a;                     // true values
  std::vector<double> cost;                  // reported: value or 1
  std::vector<double> weight;                // optimized: cost plus a tie-break
  double tie = 0;                            // the tie-break per cell
  std::vector<double> room_up, room_down;    // how far an unknown cell may move each way
  std::vector<std::uint8_t> always_unknown;  // primary cells, and margins under kRecompute
  std::vector<std::uint8_t> primary;
  std::vector<Side> sides;
  double epsilon = 0;  // the witness LP's price of moving a cell that is already unknown
};

Expected<Instance> make_instance(const Table& table, std::span<const std::uint8_t> primary,
                                 const Profile& profile, const SuppressOptions& options) {
  const std::size_t n = table.size();
  if (primary.size() != n) {
    return fail(Errc::kInvalidArgument, where(table) + ": the primary mask has " +
                                            std::to_string(primary.size()) + " entries for " +
                                            std::to_string(n) + " cells");
  }
  if (n > 0 && table.find(table.coord(0)) != std::optional<std::size_t>(0)) {
    return fail(Errc::kInvalidArgument,
                where(table) + ": the table's coordinate index is not built (Table::build_index)");
  }
  Instance in;
  in.table = &table;
  in.a = table.value;
  double mass = 0, smallest_positive = kInfinity;
  for (std::size_t j = 0; j < n; ++j) {
    double v = in.a[j];
    if (!std::isfinite(v)) {
      return fail(Errc::kInvalidArgument,
                  where(table) + ": cell " + table.label(j) +
                      " has no value; secondary suppression needs every cell's value");
    }
    if (options.non_negative && v < 0) {
      return fail(Errc::kInvalidArgument, where(table) + ": cell " + table.label(j) +
                                              " is negative (" + std::to_string(v) +
                                              ") in a table treated as non-negative");
    }
    mass += std::abs(v);
    if (std::abs(v) > 0) smallest_positive = std::min(smallest_positive, std::abs(v));
  }
  in.equations = table.equations();
  for (const auto& eq : in.equations) {
    double sum = 0;
    for (auto part : eq.parts) sum += in.a[part];
    double total = in.a[eq.total];
    if (std::abs(total - sum) > 1e-6 * std::max(1.0, std::abs(total))) {
      return fail(Errc::kInvalidArgument,
                  where(table) + ": the total " + table.label(eq.total) + " is " +
                      std::to_string(total) + " but its parts over " +
                      table.dims[eq.dimension].name + " add up to " + std::to_string(sum) +
                      "; secondary suppression needs an additive table");
    }
  }

  // M: no feasible value of the attacker's system needs to go beyond it, so capping unknown
  // cells at M only ever narrows the attacker's intervals (a conservative model).
  const double big =
      (2 + profile.upper_protection_percent / 100) * mass + profile.protection_min + 1;
  in.room_up.resize(n);
  in.room_down.resize(n);
  in.cost.resize(n);
  in.weight.resize(n);
  if (!std::isfinite(smallest_positive)) smallest_positive = 1;
  // Cheaper patterns always win; among equally cheap ones, fewer cells (all ties together
  // stay below the smallest value, so they never outweigh a real difference in counts).
  in.tie =
      options.cost == SuppressionCost::kValue ? smallest_positive / static_cast<double>(n + 1) : 0;
  double lightest = kInfinity;
  for (std::size_t j = 0; j < n; ++j) {
    in.room_up[j] = options.non_negative ? big - in.a[j] : big;
    in.room_down[j] = options.non_negative ? in.a[j] : big;
    in.cost[j] = options.cost == SuppressionCost::kValue ? std::abs(in.a[j]) : 1.0;
    in.weight[j] = in.cost[j] + in.tie;
    lightest = std::min(lightest, in.weight[j]);
  }
  in.epsilon = std::isfinite(lightest) ? lightest * 1e-3 : 1e-3;

  in.primary.assign(primary.begin(), primary.end());
  in.always_unknown.assign(n, 0);
  for (std::size_t j = 0; j < n; ++j) {
    in.always_unknown[j] =
        primary[j] || (profile.totals == TotalsPolicy::kRecompute && table.is_margin(j));
    if (!primary[j]) continue;
    auto need = required_protection(in.a[j], profile, options.non_negative);
    if (need.upper > 0) in.sides.push_back(Side{static_cast<std::uint32_t>(j), +1, need.upper});
    if (need.lower > 0) in.sides.push_back(Side{static_cast<std::uint32_t>(j), -1, need.lower});
  }
  return in;
}

Status glpk_status(bool ok, const char* what) {
  if (!ok) return glpk::glpk_failure(what);
  return {};
}

// The relations as GLPK's sparse triplets over columns column(cell, sign) (1-based).
template <class Column>
void load_relations(glp_prob* p, const Instance& in, Column column, bool* ok) {
  std::vector<int> ia{0}, ja{0};
  std::vector<double> ar{0};
  for (std::size_t r = 0; r < in.equations.size(); ++r) {
    const auto& eq = in.equations[r];
    auto put = [&](std::uint32_t cell, double coef) {
      for (auto [col, sign] : column(cell)) {
        ia.push_back(static_cast<int>(r + 1));
        ja.push_back(col);
        ar.push_back(coef * sign);
      }
    };
    put(eq.total, 1.0);
    for (auto part : eq.parts) put(part, -1.0);
  }
  const int rows = static_cast<int>(in.equations.size());
  const int nnz = static_cast<int>(ia.size() - 1);
  const int* ia_p = ia.data();
  const int* ja_p = ja.data();
  const double* ar_p = ar.data();
  *ok = glpk::guarded([&] {
    if (rows > 0) {
      glp_add_rows(p, rows);
      for (int r = 1; r <= rows; ++r) glp_set_row_bnds(p, r, GLP_FX, 0.0, 0.0);
      glp_load_matrix(p, nnz, ia_p, ja_p, ar_p);
    }
  });
}

// A capacity cut sum coef_j y_j >= rhs over cells that may still change.
struct Cut {
  std::vector<std::pair<std::uint32_t, double>> terms;
  double rhs = 0;
};

// The attacker's LP in x-space over every cell: a known cell is fixed at its value, an
// unknown one ranges over [a - room_down, a + room_up]. Only bounds and the objective change
// between solves, so the simplex starts from the previous basis.
class AttackerLp {
 public:
  explicit AttackerLp(const Instance& in) : in_(in) {}

  Status build(const std::vector<std::uint8_t>& unknown) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const int n = static_cast<int>(in_.a.size());
    bool ok = glpk::guarded([&] {
      glp_set_obj_dir(p, GLP_MAX);
      if (n > 0) glp_add_cols(p, n);
    });
    ENCLAVE_TRY(glpk_status(ok, "attacker columns"));
    load_relations(
        p, in_,
        [](std::uint32_t cell) {
          return std::array<std::pair<int, double>, 1>{{{static_cast<int>(cell) + 1, 1.0}}};
        },
        &ok);
    ENCLAVE_TRY(glpk_status(ok, "attacker relations"));
    unknown_.assign(in_.a.size(), 2);  // neither: forces every bound to be set
    for (std::uint32_t j = 0; j < in_.a.size(); ++j) ENCLAVE_TRY(set_unknown(j, unknown[j]));
    ok = glpk::guarded([&] { glp_adv_basis(p, 0); });
    return glpk_status(ok, "attacker basis");
  }

  Status set_unknown(std::uint32_t cell, bool unknown) {
    if (unknown_[cell] == static_cast<std::uint8_t>(unknown)) return {};
    unknown_[cell] = unknown;
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const double a = in_.a[cell];
    const double lo = unknown ? a - in_.room_down[cell] : a;
    const double hi = unknown ? a + in_.room_up[cell] : a;
    const int col = static_cast<int>(cell) + 1;
    bool ok = glpk::guarded([&] { glp_set_col_bnds(p, col, lo == hi ? GLP_FX : GLP_DB, lo, hi); });
    return glpk_status(ok, "attacker bounds");
  }

  Status set_pattern(const std::vector<std::uint8_t>& unknown) {
    for (std::uint32_t j = 0; j < unknown.size(); ++j) ENCLAVE_TRY(set_unknown(j, unknown[j]));
    return {};
  }

  // max sign * x_cell.
  Expected<double> maximize(const Side& side, Clock::time_point deadline) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.tm_lim = ms_until(deadline);
    if (parm.tm_lim <= 0) return fail(Errc::kTimeout, "");
    const int col = static_cast<int>(side.cell) + 1;
    const double coef = side.sign;
    int ret = 0, status = 0;
    double value = 0;
    bool ok = glpk::guarded([&] {
      glp_set_obj_coef(p, col, coef);
      ret = glpk::simplex_with_restart(p, &parm);
      status = glp_get_status(p);
      value = glp_get_obj_val(p);
      glp_set_obj_coef(p, col, 0.0);
    });
    ENCLAVE_TRY(glpk_status(ok, "attacker LP"));
    if (ret == GLP_ETMLIM) return fail(Errc::kTimeout, "");
    if (ret != 0 || status != GLP_OPT) {
      return fail(Errc::kInternal, "the attacker LP for " + in_.table->label(side.cell) +
                                       " ended with GLPK code " + std::to_string(ret) +
                                       ", status " + std::to_string(status));
    }
    return value;
  }

  // The capacity cut from the reduced costs d of the last maximize(side) (Fischetti and
  // Salazar): with alpha = max(d, 0), beta = max(-d, 0), for every pattern y
  //   max sign * x_i <= sum_j alpha_j * hi_j(y) - beta_j * lo_j(y)
  // (weak duality), so protection needs that sum to reach sign * a_i + need. Cells that may
  // change contribute (alpha_j room_up_j + beta_j room_down_j) y_j; the others are constant.
  Expected<Cut> cut(const Side& side, double optimum) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const int n = static_cast<int>(in_.a.size());
    duals_.resize(in_.a.size());
    double* d = duals_.data();
    bool ok = glpk::guarded([&] {
      for (int j = 1; j <= n; ++j) d[j - 1] = glp_get_col_dual(p, j);
    });
    ENCLAVE_TRY(glpk_status(ok, "attacker duals"));
    Cut cut;
    double constant = 0, at_pattern = 0;
    for (std::uint32_t j = 0; j < in_.a.size(); ++j) {
      double alpha = std::max(d[j], 0.0), beta = std::max(-d[j], 0.0);
      if (alpha == 0 && beta == 0) continue;
      const double a = in_.a[j];
      if (in_.always_unknown[j]) {
        constant += alpha * (a + in_.room_up[j]) - beta * (a - in_.room_down[j]);
        continue;
      }
      constant += (alpha - beta) * a;
      double coef = alpha * in_.room_up[j] + beta * in_.room_down[j];
      if (unknown_[j] == 1) at_pattern += coef;
      if (coef > 0) cut.terms.emplace_back(j, coef);
    }
    // Strong duality: at the current pattern the bound equals the optimum. A mismatch means
    // the dual signs were misread; such a cut could cut off good patterns, so stop here.
    if (std::abs(constant + at_pattern - optimum) > 1e-6 * std::max(1.0, std::abs(optimum))) {
      return fail(Errc::kInternal, "capacity cut for " + in_.table->label(side.cell) +
                                       " does not match its LP (" +
                                       std::to_string(constant + at_pattern) + " vs " +
                                       std::to_string(optimum) + ")");
    }
    cut.rhs = side.sign * in_.a[side.cell] + side.need - constant;
    // For binary y a coefficient above the right-hand side can be lowered to it.
    for (auto& [cell, coef] : cut.terms) coef = std::min(coef, cut.rhs);
    std::erase_if(cut.terms, [&](const auto& t) { return t.second <= 1e-9 * cut.rhs; });
    return cut;
  }

 private:
  const Instance& in_;
  glpk::Problem problem_;
  std::vector<std::uint8_t> unknown_;
  std::vector<double> duals_;
};

// A movement z of the table away from its true values (M z = 0, within the attacker's
// bounds) that only touches unknown cells proves protection for every side it reaches.
struct Witness {
  std::vector<std::uint32_t> cells;  // ascending
  std::vector<double> z;
};

// The witness LP over the whole table: z = z+ - z- per cell, min sum of price * (z+ + z-)
// subject to M z = 0 and the side's reach; every cell may move, known ones at their cost per
// unit. Only bounds change between sides, so the dual simplex restarts from the previous
// optimum. The fallback when a neighbourhood (LocalWitness) has no movement.
class WitnessLp {
 public:
  explicit WitnessLp(const Instance& in) : in_(in) {}

  Status build(const std::vector<std::uint8_t>& unknown) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const int cols = static_cast<int>(2 * in_.a.size());
    bool ok = glpk::guarded([&] {
      glp_set_obj_dir(p, GLP_MIN);
      if (cols > 0) glp_add_cols(p, cols);
    });
    ENCLAVE_TRY(glpk_status(ok, "witness columns"));
    load_relations(
        p, in_,
        [](std::uint32_t cell) {
          int up = static_cast<int>(2 * cell + 1);
          return std::array<std::pair<int, double>, 2>{{{up, 1.0}, {up + 1, -1.0}}};
        },
        &ok);
    ENCLAVE_TRY(glpk_status(ok, "witness relations"));
    unknown_.assign(in_.a.size(), 2);
    for (std::uint32_t j = 0; j < in_.a.size(); ++j) ENCLAVE_TRY(set_unknown(j, unknown[j]));
    ok = glpk::guarded([&] { glp_adv_basis(p, 0); });
    return glpk_status(ok, "witness basis");
  }

  Status set_unknown(std::uint32_t cell, bool unknown) {
    if (unknown_[cell] == static_cast<std::uint8_t>(unknown)) return {};
    unknown_[cell] = unknown;
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const double up = in_.room_up[cell];
    const double down = in_.room_down[cell];
    const double price = unknown ? in_.epsilon : in_.weight[cell];
    const int col = static_cast<int>(2 * cell + 1);
    bool ok = glpk::guarded([&] {
      glp_set_col_bnds(p, col, up > 0 ? GLP_DB : GLP_FX, 0.0, up);
      glp_set_col_bnds(p, col + 1, down > 0 ? GLP_DB : GLP_FX, 0.0, down);
      glp_set_obj_coef(p, col, price);
      glp_set_obj_coef(p, col + 1, price);
    });
    return glpk_status(ok, "witness bounds");
  }

  // The cheapest movement reaching the side; nullopt when none exists.
  Expected<std::optional<Witness>> find(const Side& side, Clock::time_point deadline) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const double room = side.sign > 0 ? in_.room_up[side.cell] : in_.room_down[side.cell];
    const double back_room = side.sign > 0 ? in_.room_down[side.cell] : in_.room_up[side.cell];
    if (side.need > room) return std::optional<Witness>();
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.meth = GLP_DUALP;
    parm.tm_lim = ms_until(deadline);
    if (parm.tm_lim <= 0) return fail(Errc::kTimeout, "");
    // The side's own column must reach the need while the opposite one stays at 0 (else
    // both could rise together and the cell would not move).
    const int col = static_cast<int>(2 * side.cell + 1) + (side.sign > 0 ? 0 : 1);
    const int back = static_cast<int>(2 * side.cell + 1) + (side.sign > 0 ? 1 : 0);
    const double need = side.need;
    const int cols = static_cast<int>(2 * in_.a.size());
    values_.resize(cols);
    double* values = values_.data();
    int ret = 0, status = 0;
    bool ok = glpk::guarded([&] {
      glp_set_col_bnds(p, col, need < room ? GLP_DB : GLP_FX, need, room);
      glp_set_col_bnds(p, back, GLP_FX, 0.0, 0.0);
      ret = glpk::simplex_with_restart(p, &parm);
      status = glp_get_status(p);
      if (status == GLP_OPT) {
        for (int c = 1; c <= cols; ++c) values[c - 1] = glp_get_col_prim(p, c);
      }
      glp_set_col_bnds(p, col, room > 0 ? GLP_DB : GLP_FX, 0.0, room);
      glp_set_col_bnds(p, back, back_room > 0 ? GLP_DB : GLP_FX, 0.0, back_room);
    });
    ENCLAVE_TRY(glpk_status(ok, "witness LP"));
    if (ret == GLP_ETMLIM) return fail(Errc::kTimeout, "");
    if (ret != 0) {
      return fail(Errc::kInternal, "the witness LP for " + in_.table->label(side.cell) +
                                       " ended with GLPK code " + std::to_string(ret));
    }
    if (status == GLP_NOFEAS) return std::optional<Witness>();
    if (status != GLP_OPT) {
      return fail(Errc::kInternal, "the witness LP for " + in_.table->label(side.cell) +
                                       " ended with status " + std::to_string(status));
    }
    Witness w;
    const double tol = 1e-7 * std::max(1.0, side.need);
    for (std::uint32_t j = 0; j < in_.a.size(); ++j) {
      double z = values[2 * j] - values[2 * j + 1];
      if (std::abs(z) > tol) {
        w.cells.push_back(j);
        w.z.push_back(z);
      }
    }
    return std::optional<Witness>(std::move(w));
  }

 private:
  const Instance& in_;
  glpk::Problem problem_;
  std::vector<std::uint8_t> unknown_;
  std::vector<double> values_;
};

using Price = std::function<double(std::uint32_t)>;

// The witness LP restricted to a neighbourhood of the side's cell: per dimension the cell's
// own category, its ancestors, and the best few of its siblings and children (see choose());
// every cell outside is held at its true value. Any movement found is a movement of the whole table
// (the relations through the neighbourhood are all kept, with outside cells fixed), so it proves
// the side just as well; an LP of a few hundred cells instead of the whole table keeps large tables
// fast.
class LocalWitness {
 public:
  explicit LocalWitness(const Instance& in) : in_(in) {
    for (const auto& eq : in.equations) equations_.insert(key(eq.total, eq.dimension));
  }

  // Categories per dimension for a neighbourhood of about `cells` cells.
  std::size_t per_dimension(double cells) const {
    const std::size_t dims = in_.table->dims.size();
    if (dims == 0) return 1;
    return std::max<std::size_t>(
        3, static_cast<std::size_t>(std::floor(std::pow(cells, 1.0 / static_cast<double>(dims)))));
  }

  struct Outcome {
    std::optional<Witness> witness;
    bool whole_table = false;  // the neighbourhood was the whole table: nullopt is final
  };

  // price(cell): the cost per unit of moving the cell. With restricted set only unknown cells
  // may move. per_dimension: categories per dimension (per_dimension()).
  Expected<Outcome> find(const Side& side, const std::vector<std::uint8_t>& unknown,
                         const Price& price, bool restricted, std::size_t per_dimension,
                         Clock::time_point deadline) {
    Outcome out;
    per_dimension_ = per_dimension;
    choose(side, unknown, price, restricted, out.whole_table);
    const Table& t = *in_.table;
    const std::size_t dims = t.dims.size();

    // The neighbourhood's cells that may move.
    std::unordered_map<std::uint32_t, int> local;  // cell -> 0-based index
    cells_.clear();
    std::vector<std::size_t> pick(dims, 0);
    std::vector<std::uint32_t> probe(dims);
    for (bool more = dims > 0; more;) {
      for (std::size_t d = 0; d < dims; ++d) probe[d] = categories_[d][pick[d]];
      if (auto cell = t.find(probe)) {
        auto c = static_cast<std::uint32_t>(*cell);
        if (!restricted || unknown[c]) {
          local.emplace(c, static_cast<int>(cells_.size()));
          cells_.push_back(c);
        }
      }
      std::size_t d = 0;
      while (d < dims && ++pick[d] == categories_[d].size()) pick[d++] = 0;
      more = d < dims;
    }

    // Every relation through a neighbourhood cell, as total or as part.
    std::vector<int> ia{0}, ja{0};
    std::vector<double> ar{0};
    std::unordered_set<std::uint64_t> seen;
    int rows = 0;
    std::vector<std::uint32_t> coord(dims);
    for (std::size_t x = 0; x < cells_.size(); ++x) {
      auto cx = t.coord(cells_[x]);
      for (std::size_t d = 0; d < dims; ++d) {
        const auto& dim = t.dims[d];
        for (int as_part = 0; as_part < 2; ++as_part) {
          std::copy(cx.begin(), cx.end(), coord.begin());
          if (as_part) {
            if (dim.parent[cx[d]] < 0) continue;
            coord[d] = static_cast<std::uint32_t>(dim.parent[cx[d]]);
          } else if (dim.children[cx[d]].empty()) {
            continue;
          }
          auto total = t.find(coord);
          if (!total) continue;
          auto k = key(static_cast<std::uint32_t>(*total), d);
          if (!equations_.contains(k) || !seen.insert(k).second) continue;
          const int row = rows + 1;
          bool any = false;
          auto put = [&](std::uint32_t cell, double coef) {
            auto it = local.find(cell);
            if (it == local.end()) return;
            any = true;
            for (int half = 0; half < 2; ++half) {
              ia.push_back(row);
              ja.push_back(2 * it->second + 1 + half);
              ar.push_back(half == 0 ? coef : -coef);
            }
          };
          put(static_cast<std::uint32_t>(*total), 1.0);
          const std::uint32_t total_category = coord[d];
          for (auto child : dim.children[total_category]) {
            coord[d] = child;
            if (local_category(d, child)) {
              if (auto part = t.find(coord)) put(static_cast<std::uint32_t>(*part), -1.0);
            }
          }
          if (any) ++rows;
        }
      }
    }

    glpk::Problem problem;
    glp_prob* p = problem.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    const int cols = static_cast<int>(2 * cells_.size());
    up_.assign(cols + 1, 0.0);
    price_.assign(cols + 1, 0.0);
    lower_.assign(cols + 1, 0.0);
    for (std::size_t x = 0; x < cells_.size(); ++x) {
      auto c = cells_[x];
      up_[2 * x + 1] = in_.room_up[c];
      up_[2 * x + 2] = in_.room_down[c];
      price_[2 * x + 1] = price_[2 * x + 2] = price(c);
      if (c == side.cell) {
        // The side's own direction must reach the need, the opposite one stays at 0 (else
        // both could rise together and the cell would not move).
        int own = static_cast<int>(2 * x + 1) + (side.sign > 0 ? 0 : 1);
        int back = static_cast<int>(2 * x + 1) + (side.sign > 0 ? 1 : 0);
        lower_[own] = side.need;
        up_[back] = 0;
      }
    }
    glp_smcp parm;
    glp_init_smcp(&parm);
    parm.msg_lev = GLP_MSG_OFF;
    parm.presolve = GLP_ON;
    parm.tm_lim = ms_until(deadline);
    if (parm.tm_lim <= 0) return fail(Errc::kTimeout, "");
    const int nnz = static_cast<int>(ia.size() - 1);
    const int* ia_p = ia.data();
    const int* ja_p = ja.data();
    const double* ar_p = ar.data();
    const double* up = up_.data();
    const double* lo = lower_.data();
    const double* prices = price_.data();
    values_.assign(cols + 1, 0.0);
    double* values = values_.data();
    int ret = 0, status = 0;
    bool ok = glpk::guarded([&] {
      glp_set_obj_dir(p, GLP_MIN);
      glp_add_cols(p, cols);
      if (rows > 0) glp_add_rows(p, rows);
      for (int r = 1; r <= rows; ++r) glp_set_row_bnds(p, r, GLP_FX, 0.0, 0.0);
      for (int c = 1; c <= cols; ++c) {
        glp_set_col_bnds(p, c, lo[c] < up[c] ? GLP_DB : GLP_FX, lo[c], up[c]);
        glp_set_obj_coef(p, c, prices[c]);
      }
      if (nnz > 0) glp_load_matrix(p, nnz, ia_p, ja_p, ar_p);
      ret = glp_simplex(p, &parm);
      status = glp_get_status(p);
      if (ret == 0 && status == GLP_OPT) {
        for (int c = 1; c <= cols; ++c) values[c] = glp_get_col_prim(p, c);
      }
    });
    if (!ok) return glpk::glpk_failure("local witness LP");
    if (ret == GLP_ETMLIM) return fail(Errc::kTimeout, "");
    if (ret == GLP_ENOPFS || (ret == 0 && status == GLP_NOFEAS)) return out;
    if (ret != 0 || status != GLP_OPT) {
      return fail(Errc::kInternal, "the witness LP for " + t.label(side.cell) +
                                       " ended with GLPK code " + std::to_string(ret) +
                                       ", status " + std::to_string(status));
    }
    Witness w;
    const double tol = 1e-7 * std::max(1.0, side.need);
    for (std::size_t x = 0; x < cells_.size(); ++x) {
      double z = values[2 * x + 1] - values[2 * x + 2];
      if (std::abs(z) > tol) {
        w.cells.push_back(cells_[x]);
        w.z.push_back(z);
      }
    }
    std::vector<std::size_t> order(w.cells.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(),
              [&](std::size_t x, std::size_t y) { return w.cells[x] < w.cells[y]; });
    Witness sorted;
    for (auto k : order) {
      sorted.cells.push_back(w.cells[k]);
      sorted.z.push_back(w.z[k]);
    }
    out.witness = std::move(sorted);
    return out;
  }

 private:
  std::uint64_t key(std::uint32_t total, std::size_t dimension) const {
    return std::uint64_t{total} * in_.table->dims.size() + dimension;
  }

  bool local_category(std::size_t d, std::uint32_t category) const {
    return chosen_[d][category] != 0;
  }

  // Per dimension: the side's category and its ancestors, then its siblings and children,
  // the most promising first while there is room. A candidate category x of dimension d is
  // scored by the cell it gives on the line through the side's cell plus, for every other
  // dimension, the cheapest cell of the face spanned with it: a pattern through x needs
  // cells there too. Cells at the price of sharing score almost 0, so patterns share them.
  void choose(const Side& side, const std::vector<std::uint8_t>& unknown, const Price& price,
              bool restricted, bool& whole_table) {
    const Table& t = *in_.table;
    const std::size_t dims = t.dims.size();
    auto coord = t.coord(side.cell);
    std::vector<std::uint32_t> probe(coord.begin(), coord.end());
    auto score_of = [&](bool on_line) {
      auto cell = t.find(probe);
      if (!cell) return kInfinity;
      auto c = static_cast<std::uint32_t>(*cell);
      if (restricted && !unknown[c]) return kInfinity;
      // Moving the side's cell up moves its line partner down: it needs the room.
      if (on_line && side.sign > 0 && in_.room_down[c] < side.need) return 2 * price(c) + 1e6;
      return price(c);
    };
    categories_.assign(dims, {});
    chosen_.resize(dims);
    std::vector<std::vector<std::uint32_t>> candidates(dims), others(dims);
    for (std::size_t d = 0; d < dims; ++d) {
      const auto& dim = t.dims[d];
      chosen_[d].assign(dim.categories.size(), 0);
      for (std::int32_t up = static_cast<std::int32_t>(coord[d]); up >= 0; up = dim.parent[up]) {
        chosen_[d][up] = 1;
        categories_[d].push_back(static_cast<std::uint32_t>(up));
        if (up != static_cast<std::int32_t>(coord[d])) others[d].push_back(up);
      }
      auto consider = [&](std::uint32_t category) {
        if (!chosen_[d][category]) candidates[d].push_back(category);
      };
      if (dim.parent[coord[d]] >= 0) {
        for (auto sibling : dim.children[dim.parent[coord[d]]]) consider(sibling);
      }
      for (auto child : dim.children[coord[d]]) consider(child);
      others[d].insert(others[d].end(), candidates[d].begin(), candidates[d].end());
    }
    whole_table = true;
    std::vector<std::pair<double, std::uint32_t>> pool;
    for (std::size_t d = 0; d < dims; ++d) {
      pool.clear();
      for (auto x : candidates[d]) {
        probe[d] = x;
        double score = score_of(/*on_line=*/true);
        for (std::size_t e = 0; e < dims && std::isfinite(score); ++e) {
          if (e == d) continue;
          double cheapest = kInfinity;
          for (auto y : others[e]) {
            probe[e] = y;
            cheapest = std::min(cheapest, score_of(false));
          }
          probe[e] = coord[e];
          score += cheapest;
        }
        probe[d] = coord[d];
        pool.emplace_back(score, x);
      }
      std::stable_sort(pool.begin(), pool.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (const auto& [score, category] : pool) {
        if (categories_[d].size() >= per_dimension_) break;
        chosen_[d][category] = 1;
        categories_[d].push_back(category);
      }
      if (categories_[d].size() < t.dims[d].categories.size()) whole_table = false;
    }
  }

  const Instance& in_;
  std::size_t per_dimension_ = 1;
  std::unordered_set<std::uint64_t> equations_;  // total * dims + dimension
  std::vector<std::vector<std::uint32_t>> categories_;
  std::vector<std::vector<std::uint8_t>> chosen_;
  std::vector<std::uint32_t> cells_;
  std::vector<double> up_, lower_, price_, values_;
};

// The suppression pattern the heuristic works on, with a proof (witness) per side.
struct Pattern {
  std::vector<std::uint8_t> unknown;          // what the attacker does not know
  std::vector<std::int32_t> witness_of_side;  // -1: not proven yet
  std::vector<Witness> witnesses;
  std::vector<std::uint32_t> uses;                      // cell -> sides whose proof moves it
  std::vector<std::vector<std::uint32_t>> sides_using;  // cell -> sides (may be stale)
};

double pattern_weight(const Instance& in, const std::vector<std::uint8_t>& unknown) {
  double w = 0;
  for (std::size_t j = 0; j < unknown.size(); ++j) {
    if (unknown[j] && !in.always_unknown[j]) w += in.weight[j];
  }
  return w;
}

double pattern_cost(const Instance& in, const std::vector<std::uint8_t>& unknown) {
  double c = 0;
  for (std::size_t j = 0; j < unknown.size(); ++j) {
    if (unknown[j] && !in.always_unknown[j]) c += in.cost[j];
  }
  return c;
}

bool uses(const Witness& w, std::uint32_t cell) {
  return std::binary_search(w.cells.begin(), w.cells.end(), cell);
}

class Heuristic {
 public:
  Heuristic(const Instance& in, const SuppressOptions& options)
      : in_(in), options_(options), local_(in), search_width_(local_.per_dimension(kSearchCells)) {
    lines_of_.resize(in.a.size());
    for (std::uint32_t r = 0; r < in.equations.size(); ++r) {
      lines_of_[in.equations[r].total].push_back(r);
      for (auto part : in.equations[r].parts) lines_of_[part].push_back(r);
    }
    side_of_.assign(2 * in.a.size(), -1);
    for (std::size_t s = 0; s < in.sides.size(); ++s) {
      side_of_[2 * in.sides[s].cell + (in.sides[s].sign > 0 ? 0 : 1)] =
          static_cast<std::int32_t>(s);
    }
  }

  // Makes every side provable from `start` (a superset of the always-unknown cells): each
  // side not proven yet gets the cheapest movement at the current prices (cells already
  // unknown almost free), and every cell it moves is suppressed.
  Expected<Pattern> protect(std::vector<std::uint8_t> start, Clock::time_point deadline) {
    Pattern pattern;
    pattern.unknown = std::move(start);
    pattern.witness_of_side.assign(in_.sides.size(), -1);
    pattern.uses.assign(in_.a.size(), 0);
    pattern.sides_using.assign(in_.a.size(), {});
    Price price = [&](std::uint32_t c) { return pattern.unknown[c] ? in_.epsilon : in_.weight[c]; };
    for (std::size_t s = 0; s < in_.sides.size(); ++s) {
      report("heuristic", s, in_.sides.size());
      if (pattern.witness_of_side[s] >= 0) continue;
      auto found = find_witness(in_.sides[s], pattern.unknown, price, deadline);
      if (!found) return timeout_or(found.error(), "the heuristic");
      if (!found->has_value()) {
        return fail(Errc::kInvalidArgument,
                    where(*in_.table) + ": cell " + in_.table->label(in_.sides[s].cell) +
                        " cannot be protected even with every other cell suppressed");
      }
      ENCLAVE_TRY(suppress(pattern, **found));
      record(pattern, std::move(**found), s);
    }
    report("heuristic", in_.sides.size(), in_.sides.size());
    return pattern;
  }

  // Tries to publish each secondary cell again, most expensive first: a cell goes when every
  // side whose proof moves it finds another movement within the remaining suppressions and
  // the neighbourhood of its cell (exact when the neighbourhood is the whole table; on large
  // tables a cell may be kept that a wider re-route could spare). Returns whether every cell
  // was tried before the deadline.
  Expected<bool> clean_up(Pattern& pattern, Clock::time_point deadline) {
    std::vector<std::uint32_t> order;
    for (std::uint32_t j = 0; j < pattern.unknown.size(); ++j) {
      if (pattern.unknown[j] && !in_.always_unknown[j]) order.push_back(j);
    }
    std::stable_sort(order.begin(), order.end(), [&](std::uint32_t x, std::uint32_t y) {
      return in_.weight[x] > in_.weight[y];
    });
    Price free = [&](std::uint32_t) { return in_.epsilon; };
    // Only unknown cells enter a restricted LP, so its neighbourhood can be much wider.
    const double unknown_share = std::max(
        1e-3, static_cast<double>(std::count(pattern.unknown.begin(), pattern.unknown.end(), 1)) /
                  static_cast<double>(std::max<std::size_t>(1, pattern.unknown.size())));
    const std::size_t width = local_.per_dimension(kCleanUpUnknownCells / unknown_share);
    for (std::size_t k = 0; k < order.size(); ++k) {
      report("clean-up", k, order.size());
      if (Clock::now() >= deadline) return false;
      const std::uint32_t cell = order[k];
      std::vector<std::uint32_t> affected;
      for (auto s : pattern.sides_using[cell]) {
        if (uses(pattern.witnesses[pattern.witness_of_side[s]], cell)) affected.push_back(s);
      }
      std::sort(affected.begin(), affected.end());
      affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
      pattern.sides_using[cell] = affected;

      pattern.unknown[cell] = 0;
      // A primary cell left alone on a relation would be recovered exactly: no LP needed.
      bool all_found = !strands_a_primary(pattern.unknown, cell);
      for (auto s : affected) {
        if (!all_found) break;
        auto found = local_.find(in_.sides[s], pattern.unknown, free, true, width, deadline);
        if (!found) {
          if (found.error().code == Errc::kTimeout) {
            all_found = false;
            break;
          }
          return error_of(found);
        }
        if (!found->witness) {
          all_found = false;
          break;
        }
        // Valid with or without the cell: it does not move it.
        assign(pattern, s, add_witness(pattern, std::move(*found->witness)));
      }
      if (all_found) {
        if (full_) ENCLAVE_TRY(full_->set_unknown(cell, false));
      } else {
        pattern.unknown[cell] = 1;
      }
    }
    report("clean-up", order.size(), order.size());
    return true;
  }

 private:
  // Whether some relation through cell holds exactly one unknown cell, a primary one.
  bool strands_a_primary(const std::vector<std::uint8_t>& unknown, std::uint32_t cell) const {
    for (auto r : lines_of_[cell]) {
      const auto& eq = in_.equations[r];
      std::uint32_t hidden = 0, lone = 0;
      auto count = [&](std::uint32_t c) {
        if (unknown[c]) {
          ++hidden;
          lone = c;
        }
      };
      count(eq.total);
      for (auto part : eq.parts) count(part);
      if (hidden == 1 && in_.primary[lone]) return true;
    }
    return false;
  }

  // The neighbourhood first, then the whole table when the neighbourhood has no movement.
  Expected<std::optional<Witness>> find_witness(const Side& side,
                                                const std::vector<std::uint8_t>& unknown,
                                                const Price& price, Clock::time_point deadline) {
    auto local = local_.find(side, unknown, price, false, search_width_, deadline);
    if (!local) return error_of(local);
    if (local->witness || local->whole_table) return std::move(local->witness);
    if (!full_) {
      full_ = std::make_unique<WitnessLp>(in_);
      ENCLAVE_TRY(full_->build(unknown));
    }
    return full_->find(side, deadline);
  }

  Status suppress(Pattern& pattern, const Witness& w) {
    for (auto cell : w.cells) {
      if (pattern.unknown[cell]) continue;
      pattern.unknown[cell] = 1;
      if (full_) ENCLAVE_TRY(full_->set_unknown(cell, true));
    }
    return {};
  }

  std::int32_t add_witness(Pattern& pattern, Witness w) {
    pattern.witnesses.push_back(std::move(w));
    return static_cast<std::int32_t>(pattern.witnesses.size() - 1);
  }

  // Makes witness the proof of side, keeping the use counts.
  void assign(Pattern& pattern, std::size_t side, std::int32_t witness) {
    if (auto old = pattern.witness_of_side[side]; old >= 0) {
      for (auto c : pattern.witnesses[old].cells) --pattern.uses[c];
    }
    pattern.witness_of_side[side] = witness;
    for (auto c : pattern.witnesses[witness].cells) {
      ++pattern.uses[c];
      pattern.sides_using[c].push_back(static_cast<std::uint32_t>(side));
    }
  }

  Unexpected<Error> timeout_or(const Error& e, const char* what) const {
    if (e.code != Errc::kTimeout) return Unexpected<Error>{e};
    return fail(Errc::kTimeout, where(*in_.table) + ": " + what + " ran out of its " +
                                    std::to_string(options_.time_limit_s) + " s");
  }

  void report(std::string_view stage, std::size_t done, std::size_t all) {
    if (!options_.progress) return;
    auto now = Clock::now();
    if (done == all || now - last_report_ >= std::chrono::milliseconds(100)) {
      options_.progress(stage, done, all);
      last_report_ = now;
    }
  }

  // Records w as the proof of side s and of every other side it reaches, scaled as far as
  // the bounds allow, in either direction.
  void record(Pattern& pattern, Witness w, std::size_t s) {
    double forward = kInfinity, backward = kInfinity;
    for (std::size_t k = 0; k < w.cells.size(); ++k) {
      auto j = w.cells[k];
      double z = w.z[k];
      forward = std::min(forward, z > 0 ? in_.room_up[j] / z : in_.room_down[j] / -z);
      backward = std::min(backward, z > 0 ? in_.room_down[j] / z : in_.room_up[j] / -z);
    }
    std::vector<std::size_t> proven = {s};
    for (std::size_t k = 0; k < w.cells.size(); ++k) {
      auto j = w.cells[k];
      if (!in_.primary[j]) continue;
      for (int dir = 0; dir < 2; ++dir) {
        auto side = side_of_[2 * j + dir];
        if (side < 0 || static_cast<std::size_t>(side) == s) continue;
        if (pattern.witness_of_side[side] >= 0) continue;
        double reach_up = w.z[k] > 0 ? forward * w.z[k] : backward * -w.z[k];
        double reach_down = w.z[k] < 0 ? forward * -w.z[k] : backward * w.z[k];
        double reach = dir == 0 ? reach_up : reach_down;
        if (reach >= in_.sides[side].need * (1 + 1e-9)) proven.push_back(side);
      }
    }
    auto id = add_witness(pattern, std::move(w));
    for (auto side : proven) assign(pattern, side, id);
  }

  // Neighbourhood sizes: cells of a search LP, unknown cells of a clean-up LP.
  static constexpr double kSearchCells = 600;
  static constexpr double kCleanUpUnknownCells = 600;

  const Instance& in_;
  const SuppressOptions& options_;
  LocalWitness local_;
  std::size_t search_width_;
  std::unique_ptr<WitnessLp> full_;    // built on first need
  std::vector<std::int32_t> side_of_;  // 2 * cell + (up ? 0 : 1) -> side, -1 when none
  std::vector<std::vector<std::uint32_t>> lines_of_;  // cell -> relations through it
  Clock::time_point last_report_{};
};

// ---- the exact method: Benders decomposition over capacity cuts ----

struct MasterCallback {
  const double* incumbent = nullptr;  // 1-based column values
  bool offered = false;
  double bound = -kInfinity;
};

extern "C" void master_callback(glp_tree* tree, void* info) {
  auto* state = static_cast<MasterCallback*>(info);
  int best = glp_ios_best_node(tree);
  if (best != 0) state->bound = glp_ios_node_bound(tree, best);
  if (glp_ios_reason(tree) == GLP_IHEUR && !state->offered && state->incumbent != nullptr) {
    state->offered = true;
    glp_ios_heur_sol(tree, state->incumbent);
  }
}

class Master {
 public:
  explicit Master(const Instance& in) : in_(in) {}

  Status build() {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    column_of_.assign(in_.a.size(), 0);
    for (std::uint32_t j = 0; j < in_.a.size(); ++j) {
      if (!in_.always_unknown[j]) {
        cells_.push_back(j);
        column_of_[j] = static_cast<int>(cells_.size());
      }
    }
    const int cols = static_cast<int>(cells_.size());
    const double* w = in_.weight.data();
    const std::uint32_t* cell_p = cells_.data();
    bool ok = glpk::guarded([&] {
      glp_set_obj_dir(p, GLP_MIN);
      if (cols > 0) glp_add_cols(p, cols);
      for (int c = 1; c <= cols; ++c) {
        glp_set_col_kind(p, c, GLP_BV);
        glp_set_obj_coef(p, c, w[cell_p[c - 1]]);
      }
    });
    return glpk_status(ok, "master problem");
  }

  Status add(const Cut& cut) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    std::vector<int> ind{0};
    std::vector<double> val{0};
    for (auto [cell, coef] : cut.terms) {
      ind.push_back(column_of_[cell]);
      val.push_back(coef);
    }
    const int len = static_cast<int>(ind.size() - 1);
    const int* ind_p = ind.data();
    const double* val_p = val.data();
    const double rhs = cut.rhs;
    bool ok = glpk::guarded([&] {
      int row = glp_add_rows(p, 1);
      glp_set_row_bnds(p, row, GLP_LO, rhs, 0.0);
      glp_set_mat_row(p, row, len, ind_p, val_p);
    });
    return glpk_status(ok, "capacity cut");
  }

  struct Outcome {
    bool has_solution = false;
    bool optimal = false;
    std::vector<std::uint8_t> unknown;
    double bound = -kInfinity;
  };

  // Solves the master with `incumbent` (a protected pattern) offered as a starting solution.
  Expected<Outcome> solve(const std::vector<std::uint8_t>& incumbent, Clock::time_point deadline) {
    glp_prob* p = problem_.get();
    if (p == nullptr) return glpk::glpk_failure("problem");
    Outcome out;
    if (ms_until(deadline) <= 0) return out;
    std::vector<double> x(cells_.size() + 1, 0.0);
    for (std::size_t c = 0; c < cells_.size(); ++c) x[c + 1] = incumbent[cells_[c]];
    MasterCallback state;
    state.incumbent = x.data();
    glp_smcp lp;
    glp_init_smcp(&lp);
    lp.msg_lev = GLP_MSG_OFF;
    lp.tm_lim = ms_until(deadline);
    glp_iocp mip;
    glp_init_iocp(&mip);
    mip.msg_lev = GLP_MSG_OFF;
    mip.presolve = GLP_OFF;  // the callback's columns must be ours
    mip.cov_cuts = GLP_ON;
    mip.mir_cuts = GLP_ON;
    mip.cb_func = master_callback;
    mip.cb_info = &state;
    int lp_ret = 0, lp_status = 0, ret = 0, status = 0;
    double relaxation = 0;
    const int cols = static_cast<int>(cells_.size());
    double* values = x.data();
    bool ok = glpk::guarded([&] {
      lp_ret = glpk::simplex_with_restart(p, &lp);
      lp_status = glp_get_status(p);
      relaxation = glp_get_obj_val(p);
      if (lp_ret != 0 || lp_status != GLP_OPT) return;
      mip.tm_lim = std::max(1, ms_until(deadline));  // what the LP left
      ret = glp_intopt(p, &mip);
      status = glp_mip_status(p);
      if (status == GLP_OPT || status == GLP_FEAS) {
        for (int c = 1; c <= cols; ++c) values[c] = glp_mip_col_val(p, c);
      }
    });
    ENCLAVE_TRY(glpk_status(ok, "master MILP"));
    if (lp_ret == GLP_ETMLIM) return out;
    if (lp_ret != 0 || lp_status != GLP_OPT) {
      return fail(Errc::kInternal, "the master LP ended with GLPK code " + std::to_string(lp_ret) +
                                       ", status " + std::to_string(lp_status));
    }
    out.bound = std::max(relaxation, state.bound);
    if (ret != 0 && ret != GLP_ETMLIM) {
      return fail(Errc::kInternal, "the master MILP ended with GLPK code " + std::to_string(ret));
    }
    if (status != GLP_OPT && status != GLP_FEAS) return out;
    out.has_solution = true;
    out.optimal = ret == 0 && status == GLP_OPT;
    out.unknown = in_.always_unknown;
    for (std::size_t c = 0; c < cells_.size(); ++c) out.unknown[cells_[c]] = x[c + 1] > 0.5;
    if (out.optimal) out.bound = pattern_weight(in_, out.unknown);
    return out;
  }

 private:
  const Instance& in_;
  glpk::Problem problem_;
  std::vector<std::uint32_t> cells_;  // column c + 1 -> cell
  std::vector<int> column_of_;
};

// The cuts of every side the pattern leaves unprotected (none: the pattern is protected).
Expected<std::vector<Cut>> separate(const Instance& in, AttackerLp& attacker,
                                    const std::vector<std::uint8_t>& unknown,
                                    Clock::time_point deadline) {
  ENCLAVE_TRY(attacker.set_pattern(unknown));
  std::vector<Cut> cuts;
  for (const auto& side : in.sides) {
    auto best = attacker.maximize(side, deadline);
    if (!best) return error_of(best);
    const double reach = side.sign * in.a[side.cell] + side.need;
    if (*best >= reach - 1e-7 * std::max(1.0, std::abs(reach))) continue;
    auto cut = attacker.cut(side, *best);
    if (!cut) return error_of(cut);
    cuts.push_back(std::move(*cut));
  }
  return cuts;
}

Expected<MilpReport> run_milp(const Instance& in, std::vector<std::uint8_t>& best,
                              Clock::time_point deadline, const SuppressOptions& options) {
  const auto start = Clock::now();
  MilpReport report;
  AttackerLp attacker(in);
  ENCLAVE_TRY(attacker.build(in.always_unknown));
  Master master(in);
  ENCLAVE_TRY(master.build());
  double best_weight = pattern_weight(in, best);
  double lower = 0;
  auto finish = [&](bool timed_out) {
    report.time_limit_hit = timed_out;
    report.cost = pattern_cost(in, best);
    // Lower bound on the weight, turned into one on the cost: the tie-breaks add at most
    // tie per candidate cell.
    double candidates = 0;
    for (auto u : in.always_unknown) candidates += u ? 0 : 1;
    report.lower_bound = std::max(0.0, lower - in.tie * candidates);
    report.proven_optimal = !timed_out && lower >= best_weight - 1e-9 * std::max(1.0, best_weight);
    if (report.proven_optimal) report.lower_bound = report.cost;
    report.seconds = seconds_since(start);
    return report;
  };

  // Seed: the cuts of the pattern with only the primary cells hidden.
  std::vector<std::uint8_t> probe = in.always_unknown;
  for (;;) {
    if (options.progress) options.progress("milp", report.rounds, 0);
    auto cuts = separate(in, attacker, probe, deadline);
    if (!cuts) {
      if (cuts.error().code == Errc::kTimeout) return finish(true);
      return error_of(cuts);
    }
    if (cuts->empty()) {
      double w = pattern_weight(in, probe);
      if (w < best_weight) {
        best = probe;
        best_weight = w;
      }
      // probe is the master's optimum (or the seed with nothing to add): nothing is cheaper.
      lower = std::max(lower, w);
      return finish(false);
    }
    for (const auto& cut : *cuts) ENCLAVE_TRY(master.add(cut));
    report.cuts += cuts->size();
    auto outcome = master.solve(best, deadline);
    if (!outcome) return error_of(outcome);
    ++report.rounds;
    lower = std::max(lower, outcome->bound);
    if (!outcome->has_solution) return finish(true);
    if (!outcome->optimal) {
      // Out of time inside the master: its solution may still be protected and cheaper.
      auto last = separate(in, attacker, outcome->unknown, deadline);
      if (last && last->empty() && pattern_weight(in, outcome->unknown) < best_weight) {
        best = outcome->unknown;
        best_weight = pattern_weight(in, best);
      }
      return finish(true);
    }
    probe = std::move(outcome->unknown);
  }
}

std::vector<std::uint32_t> cells_where(const std::vector<std::uint8_t>& mask,
                                       const std::vector<std::uint8_t>& minus) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t j = 0; j < mask.size(); ++j) {
    if (mask[j] && !minus[j]) out.push_back(j);
  }
  return out;
}

}  // namespace

const char* suppression_method_name(SuppressionMethod method) {
  switch (method) {
    case SuppressionMethod::kHeuristic:
      return "heuristic";
    case SuppressionMethod::kMilp:
      return "milp";
  }
  return "unknown";
}

Expected<SuppressionResult> suggest_suppression(const Table& table,
                                                std::span<const std::uint8_t> primary,
                                                const Profile& profile,
                                                const SuppressOptions& options) {
  const auto start = Clock::now();
  const auto deadline = after(start, options.time_limit_s);
  auto instance = make_instance(table, primary, profile, options);
  if (!instance) return error_of(instance);
  const Instance& in = *instance;

  SuppressionResult result;
  result.method = options.method;
  Heuristic heuristic(in, options);
  auto pattern = heuristic.protect(in.always_unknown, deadline);
  if (!pattern) return error_of(pattern);
  // The clean-up may run until half of the time is gone; the final audit needs the rest.
  auto complete = heuristic.clean_up(*pattern, after(start, 0.5 * options.time_limit_s));
  if (!complete) return error_of(complete);
  result.cleanup_complete = *complete;
  std::vector<std::uint8_t> unknown = std::move(pattern->unknown);
  result.heuristic_cost = pattern_cost(in, unknown);
  result.heuristic_seconds = seconds_since(start);

  if (options.method == SuppressionMethod::kMilp) {
    auto milp_deadline = after(Clock::now(), profile.milp_time_limit_s);
    auto report = run_milp(in, unknown, milp_deadline, options);
    if (!report) return error_of(report);
    result.milp = *report;
    result.proven_optimal = report->proven_optimal;
  }

  // Margins that are unknown only because kRecompute republishes them are not suppressed.
  result.suppressed.assign(table.size(), 0);
  for (std::size_t j = 0; j < table.size(); ++j) {
    result.suppressed[j] = in.primary[j] || (unknown[j] && !in.always_unknown[j]);
  }
  result.primary = cells_where(in.primary, std::vector<std::uint8_t>(table.size(), 0));
  result.secondary = cells_where(result.suppressed, in.primary);
  result.cost = pattern_cost(in, unknown);

  const auto audit_start = Clock::now();
  AuditOptions audit_options;
  audit_options.non_negative = options.non_negative;
  // What the heuristic left of the time, and at least half of it (the MILP's time comes on
  // top of the time limit, the clean-up stops at half of it).
  audit_options.bounds.time_limit_s =
      std::max(0.5 * options.time_limit_s, options.time_limit_s - result.heuristic_seconds);
  if (options.progress) {
    audit_options.bounds.progress = [&](std::size_t done, std::size_t all) {
      options.progress("audit", done, all);
    };
  }
  auto audit = audit_suppression(table, result.suppressed, profile, audit_options);
  if (!audit) return error_of(audit);
  result.audit = std::move(*audit);
  result.audit_seconds = seconds_since(audit_start);
  for (const auto& cell : result.audit) {
    if (in.primary[cell.cell] && !cell.is_protected) {
      return fail(Errc::kInternal, where(table) + ": after secondary suppression the attacker " +
                                       "still narrows " + table.label(cell.cell) + " to [" +
                                       std::to_string(cell.lo) + ", " + std::to_string(cell.hi) +
                                       "]");
    }
  }
  return result;
}

namespace {

// values (one per cell) with every margin replaced by the sum of the inner cells below it,
// through the table's relations; a margin whose parts are not all in the table becomes
// kMissing (it cannot be recomputed).
std::vector<double> with_recomputed_margins(const Table& table, std::vector<double> values) {
  // Margins in order of height (a part is always lower than its total), each the sum of its
  // parts' recomputed values through the first relation that has it as total.
  const std::size_t k = table.dims.size();
  std::vector<std::vector<std::uint32_t>> height(k);
  for (std::size_t d = 0; d < k; ++d) {
    const auto& dim = table.dims[d];
    height[d].assign(dim.categories.size(), 0);
    // Children are numbered in any order; relax until stable (hierarchies are shallow).
    for (bool changed = true; changed;) {
      changed = false;
      for (std::size_t c = 0; c < dim.categories.size(); ++c) {
        for (auto child : dim.children[c]) {
          if (height[d][c] < height[d][child] + 1) {
            height[d][c] = height[d][child] + 1;
            changed = true;
          }
        }
      }
    }
  }
  std::vector<std::uint32_t> level(table.size(), 0);
  std::vector<std::uint32_t> margins;
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    auto c = table.coord(cell);
    for (std::size_t d = 0; d < k; ++d) level[cell] += height[d][c[d]];
    if (level[cell] > 0) {
      margins.push_back(static_cast<std::uint32_t>(cell));
      values[cell] = kMissing;
    }
  }
  auto equations = table.equations();
  std::vector<std::int64_t> equation_of(table.size(), -1);
  for (std::size_t e = 0; e < equations.size(); ++e) {
    auto& slot = equation_of[equations[e].total];
    if (slot < 0) slot = static_cast<std::int64_t>(e);
  }
  std::stable_sort(margins.begin(), margins.end(),
                   [&](std::uint32_t x, std::uint32_t y) { return level[x] < level[y]; });
  for (auto cell : margins) {
    if (equation_of[cell] < 0) continue;
    double sum = 0;
    for (auto part : equations[equation_of[cell]].parts) sum += values[part];
    values[cell] = sum;
  }
  return values;
}

}  // namespace

std::vector<double> published_values(const Table& table, std::span<const std::uint8_t> suppressed,
                                     TotalsPolicy totals) {
  std::vector<double> out(table.value.begin(), table.value.end());
  if (totals == TotalsPolicy::kRecompute) {
    // A suppressed inner cell counts as nothing in the margins above it.
    for (std::size_t cell = 0; cell < table.size(); ++cell) {
      if (suppressed[cell] && !table.is_margin(cell)) out[cell] = 0;
    }
    out = with_recomputed_margins(table, std::move(out));
  }
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    if (suppressed[cell]) out[cell] = kMissing;
  }
  return out;
}

}  // namespace enclave::exitcontrol::lp
