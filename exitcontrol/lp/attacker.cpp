#include "exitcontrol/lp/attacker.hpp"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <string>

namespace enclave::exitcontrol::lp {
namespace {

std::string where(const Table& table) {
  return table.name.empty() ? std::string("table") : table.name;
}

// Table::equations() silently finds nothing when the coordinate index is missing, which would
// make every suppressed cell look safe; refuse instead.
Status check_index(const Table& table) {
  if (table.size() == 0) return {};
  auto first = table.find(table.coord(0));
  if (!first || *first != 0) {
    return fail(Errc::kInvalidArgument,
                where(table) + ": the table's coordinate index is not built (Table::build_index)");
  }
  return {};
}

Status check_mask(const Table& table, std::span<const std::uint8_t> mask, const char* what) {
  if (mask.size() != table.size()) {
    return fail(Errc::kInvalidArgument, where(table) + ": " + what + " has " +
                                            std::to_string(mask.size()) + " entries for " +
                                            std::to_string(table.size()) + " cells");
  }
  return {};
}

bool close(double a, double b, double scale) {
  return std::abs(a - b) <= 1e-9 * std::max(1.0, std::abs(scale));
}

AuditOptions named_rows(const Table& table, const AttackerSystem& sys, AuditOptions options) {
  options.bounds.describe_row = [&table, &sys](std::size_t row) {
    return "the relation " + table.label(sys.total_of_row[row]) + " = sum over " +
           table.dims[sys.dimension_of_row[row]].name;
  };
  return options;
}

Expected<std::vector<Interval>> cell_bounds(const Table& table, const AttackerSystem& sys,
                                            std::span<const std::uint8_t> suppressed,
                                            const AuditOptions& options) {
  std::vector<std::vector<Term>> targets;
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    if (suppressed[cell]) targets.push_back({Term{sys.var_of_cell[cell], 1.0}});
  }
  auto named = named_rows(table, sys, options);
  auto intervals = bounds(sys.system, targets, named.bounds);
  if (!intervals) {
    return fail(intervals.error().code, where(table) + ": " + intervals.error().message);
  }
  return intervals;
}

// v - L(v) and v + U(v): the furthest the interval must reach for a true value v.
double must_reach_below(double v, const Profile& profile, bool non_negative) {
  return v - required_protection(v, profile, non_negative).lower;
}
double must_reach_above(double v, const Profile& profile, bool non_negative) {
  return v + required_protection(v, profile, non_negative).upper;
}

// Whether some v in [lo, hi] has lo <= v - L(v) and v + U(v) <= hi. Both reaches grow with v
// (protection percentages are at most 100%), so the smallest v whose lower reach clears lo is
// the best candidate for the upper side; found by bisection.
bool protectable(double lo, double hi, const Profile& profile, bool non_negative) {
  if (close(lo, hi, hi)) return false;
  if (std::isinf(lo) || std::isinf(hi)) return true;
  if (must_reach_below(hi, profile, non_negative) < lo) return false;
  double a = lo, b = hi;  // invariant: reach_below(b) >= lo
  if (must_reach_below(a, profile, non_negative) >= lo) b = a;
  for (int i = 0; i < 100 && b - a > 1e-12 * std::max(1.0, std::abs(b)); ++i) {
    double mid = a + (b - a) / 2;
    (must_reach_below(mid, profile, non_negative) >= lo ? b : a) = mid;
  }
  return must_reach_above(b, profile, non_negative) <= hi + 1e-9 * std::max(1.0, std::abs(hi));
}

}  // namespace

Protection required_protection(double value, const Profile& profile, bool non_negative) {
  const double magnitude = std::abs(value);
  Protection p;
  p.upper = std::max(profile.upper_protection_percent / 100 * magnitude, profile.protection_min);
  p.lower = std::max(profile.lower_protection_percent / 100 * magnitude, profile.protection_min);
  if (non_negative) p.lower = std::min(std::max(value, 0.0), p.lower);
  return p;
}

std::vector<std::uint8_t> unknown_cells(const Table& table,
                                        std::span<const std::uint8_t> suppressed,
                                        TotalsPolicy totals) {
  assert(suppressed.size() == table.size());
  std::vector<std::uint8_t> unknown(table.size(), 0);
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    unknown[cell] = suppressed[cell] || is_missing(table.value[cell]) ||
                    (totals == TotalsPolicy::kRecompute && table.is_margin(cell));
  }
  return unknown;
}

Expected<AttackerSystem> attacker_system(const Table& table, std::span<const std::uint8_t> unknown,
                                         bool non_negative) {
  ENCLAVE_TRY(check_mask(table, unknown, "the unknown-cell mask"));
  ENCLAVE_TRY(check_index(table));
  AttackerSystem sys;
  sys.var_of_cell.assign(table.size(), kPublishedCell);
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    if (unknown[cell]) {
      sys.var_of_cell[cell] = sys.system.add_variable(non_negative ? 0.0 : -kInfinity, kInfinity);
      sys.cell_of_var.push_back(static_cast<std::uint32_t>(cell));
    } else if (!std::isfinite(table.value[cell])) {
      return fail(Errc::kInvalidArgument, where(table) + ": cell " + table.label(cell) +
                                              " is published without a finite value");
    }
  }
  for (const auto& eq : table.equations()) {
    LinearSystem::Row row{{}, 0.0};
    auto add = [&](std::uint32_t cell, double coef) {
      if (sys.var_of_cell[cell] != kPublishedCell) {
        row.terms.push_back(Term{sys.var_of_cell[cell], coef});
      } else {
        row.rhs -= coef * table.value[cell];
      }
    };
    add(eq.total, 1.0);
    for (auto part : eq.parts) add(part, -1.0);
    if (row.terms.empty()) continue;
    sys.system.rows.push_back(std::move(row));
    sys.total_of_row.push_back(eq.total);
    sys.dimension_of_row.push_back(eq.dimension);
  }
  return sys;
}

Expected<std::vector<CellAudit>> audit_suppression(const Table& table,
                                                   std::span<const std::uint8_t> suppressed,
                                                   const Profile& profile,
                                                   const AuditOptions& options) {
  ENCLAVE_TRY(check_mask(table, suppressed, "the suppression mask"));
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    if (!suppressed[cell]) continue;
    double v = table.value[cell];
    if (!std::isfinite(v)) {
      return fail(
          Errc::kInvalidArgument,
          where(table) + ": suppressed cell " + table.label(cell) +
              " has no value; audit_published audits tables whose hidden values are unknown");
    }
    if (options.non_negative && v < 0) {
      return fail(Errc::kInvalidArgument, where(table) + ": cell " + table.label(cell) +
                                              " is negative (" + std::to_string(v) +
                                              ") in a table audited as non-negative");
    }
  }
  auto unknown = unknown_cells(table, suppressed, profile.totals);
  auto sys = attacker_system(table, unknown, options.non_negative);
  if (!sys) return error_of(sys);
  auto intervals = cell_bounds(table, *sys, suppressed, options);
  if (!intervals) return error_of(intervals);

  std::vector<CellAudit> out;
  out.reserve(intervals->size());
  std::size_t next = 0;
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    if (!suppressed[cell]) continue;
    const Interval& iv = (*intervals)[next++];
    CellAudit audit;
    audit.cell = static_cast<std::uint32_t>(cell);
    audit.value = table.value[cell];
    audit.lo = iv.lo;
    audit.hi = iv.hi;
    auto need = required_protection(audit.value, profile, options.non_negative);
    audit.need_lo = need.lower;
    audit.need_hi = need.upper;
    audit.exact = close(iv.lo, iv.hi, audit.value);
    const double tol = 1e-7 * std::max(1.0, std::abs(audit.value));
    audit.is_protected =
        iv.hi >= audit.value + need.upper - tol && iv.lo <= audit.value - need.lower + tol;
    out.push_back(audit);
  }
  return out;
}

Expected<std::vector<PublishedCellAudit>> audit_published(const Table& table,
                                                          std::span<const std::uint8_t> suppressed,
                                                          const Profile& profile,
                                                          const AuditOptions& options) {
  ENCLAVE_TRY(check_mask(table, suppressed, "the suppression mask"));
  auto unknown = unknown_cells(table, suppressed, profile.totals);
  auto sys = attacker_system(table, unknown, options.non_negative);
  if (!sys) return error_of(sys);
  auto intervals = cell_bounds(table, *sys, suppressed, options);
  if (!intervals) return error_of(intervals);

  std::vector<PublishedCellAudit> out;
  out.reserve(intervals->size());
  std::size_t next = 0;
  for (std::size_t cell = 0; cell < table.size(); ++cell) {
    if (!suppressed[cell]) continue;
    const Interval& iv = (*intervals)[next++];
    PublishedCellAudit audit;
    audit.cell = static_cast<std::uint32_t>(cell);
    audit.lo = iv.lo;
    audit.hi = iv.hi;
    audit.exact = close(iv.lo, iv.hi, iv.hi);
    audit.protectable = protectable(iv.lo, iv.hi, profile, options.non_negative);
    audit.known_small = table.kind == TableKind::kFrequency && iv.hi < profile.threshold;
    out.push_back(audit);
  }
  return out;
}

}  // namespace enclave::exitcontrol::lp
