#include "exitcontrol/core/primary.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

#include "exitcontrol/core/safe_output.hpp"

namespace enclave::exitcontrol {

const char* outcome_name(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass:
      return "pass";
    case Outcome::kReview:
      return "review";
    case Outcome::kFail:
      return "fail";
  }
  return "unknown";
}

std::string format_number(double value) {
  return is_missing(value) ? "missing" : format_value(value);
}

void PrimaryResult::add(std::uint32_t cell, Outcome cell_result, const char* rule,
                        std::string reason, bool suppresses) {
  cell_outcome[cell] = worse(cell_outcome[cell], cell_result);
  if (suppresses && cell_result == Outcome::kFail) suppress[cell] = 1;
  outcome = worse(outcome, cell_result);
  ++counts_per_rule[rule];
  findings.push_back(CellFinding{cell, cell_result, rule, std::move(reason)});
}

void PrimaryResult::add_table(Outcome table_result, const char* rule, std::string reason) {
  outcome = worse(outcome, table_result);
  ++counts_per_rule[rule];
  table_findings.push_back(TableFinding{table_result, rule, std::move(reason)});
}

namespace {

bool is_tabular(const Table& table) {
  return table.kind == TableKind::kFrequency || table.kind == TableKind::kMagnitude;
}

std::string percent(double fraction) {
  return format_number(std::round(fraction * 1000) / 10) + "%";
}

// The profile's minimum units for the table's route, when the NDB units rule governs the
// table: the sidecar names a route and the profile sets a minimum for it.
std::optional<double> units_minimum(const TableMeta& meta, const Profile& profile) {
  if (meta.route.empty() || !profile.has_units_rule()) return std::nullopt;
  if (meta.route == "oral" || meta.route == "topical") return profile.min_units_oral_topical;
  if (meta.route == "injection") return profile.min_units_injection;
  return std::nullopt;
}

// Under the units rule, the patients behind a cell: only a declared contributors column counts
// them (the loader copies a frequency table's value into contributors, and here the value is
// units). Missing when unknown.
double patients(const Table& table, const TableMeta& meta, std::uint32_t cell) {
  return meta.contributors_column.empty() ? kMissing : table.contributors[cell];
}

// A count of zero under the profile's zeros policy.
void add_zero(PrimaryResult& result, std::uint32_t cell, const Profile& profile, const char* what) {
  switch (profile.zeros) {
    case ZerosPolicy::kAllowed:
      return;
    case ZerosPolicy::kDisclosive:
      result.add(cell, Outcome::kFail, rules::kZeros,
                 std::string(what) + " is 0 and zeros are disclosive under this profile", true);
      return;
    case ZerosPolicy::kReview:
      result.add(cell, Outcome::kReview, rules::kZeros,
                 std::string(what) + " is 0; this profile sends zeros to review", false);
      return;
  }
}

}  // namespace

void check_missing(const Table& table, const Profile& profile, PrimaryResult& result) {
  if (!is_tabular(table)) return;
  for (std::uint32_t cell = 0; cell < table.size(); ++cell) {
    if (!is_missing(table.value[cell])) continue;
    if (profile.missing_to_review) {
      result.add(cell, Outcome::kReview, rules::kMissing, "the cell has no value", false);
    } else {
      // Nothing to check, so the cell is handled as hidden: the secondary audit must show it
      // cannot be recovered from the cells that are published.
      result.add(cell, Outcome::kFail, rules::kMissing,
                 "the cell has no value; it is treated as a suppressed cell", true);
    }
  }
}

void check_negative(const Table& table, const Profile& profile, PrimaryResult& result) {
  if (!is_tabular(table) || !profile.negatives_to_review) return;
  for (std::uint32_t cell = 0; cell < table.size(); ++cell) {
    double v = table.value[cell];
    if (v < 0) {  // false for missing values
      result.add(cell, Outcome::kReview, rules::kNegative, "negative value " + format_number(v),
                 false);
    }
  }
}

void check_threshold(const Table& table, const TableMeta& meta, const Profile& profile,
                     PrimaryResult& result) {
  if (!is_tabular(table)) return;
  const bool frequency = table.kind == TableKind::kFrequency;
  // Under the units rule the value counts units, not people: the threshold applies to the
  // patient count where there is one, and check_ndb_units takes the cells without.
  const bool units = units_minimum(meta, profile).has_value();
  const char* noun = frequency && !units ? "count" : "contributor count";
  for (std::uint32_t cell = 0; cell < table.size(); ++cell) {
    double count = units       ? patients(table, meta, cell)
                   : frequency ? table.value[cell]
                               : table.contributors[cell];
    if (is_missing(count)) {
      // A frequency cell without a value is check_missing's; units cells are check_ndb_units'.
      if (frequency || units) continue;
      result.add(cell, Outcome::kReview, rules::kThreshold,
                 "contributor count not given, so the threshold cannot be checked", false);
      continue;
    }
    if (count == 0) {
      add_zero(result, cell, profile, noun);
      continue;
    }
    if (count < profile.threshold) {
      result.add(cell, Outcome::kFail, rules::kThreshold,
                 std::string(noun) + " " + format_number(count) + " is below the threshold " +
                     format_number(profile.threshold),
                 true);
    }
  }
}

void check_ndb_units(const Table& table, const TableMeta& meta, const Profile& profile,
                     PrimaryResult& result) {
  if (!is_tabular(table) || meta.route.empty() || !profile.has_units_rule()) return;
  if (meta.route != "oral" && meta.route != "topical" && meta.route != "injection") {
    result.add_table(Outcome::kReview, rules::kNdbUnits,
                     "route \"" + meta.route +
                         "\" is not oral, topical or injection; the units minimum is unknown");
    return;
  }
  auto minimum = units_minimum(meta, profile);
  if (!minimum) return;  // the profile sets a minimum for other routes only
  for (std::uint32_t cell = 0; cell < table.size(); ++cell) {
    if (!is_missing(patients(table, meta, cell))) continue;  // known: the threshold applies
    double units = table.value[cell];
    if (is_missing(units)) continue;  // check_missing's
    if (units == 0) {
      add_zero(result, cell, profile, "units");
      continue;
    }
    if (units < *minimum) {
      result.add(cell, Outcome::kFail, rules::kNdbUnits,
                 format_number(units) + " units, route " + meta.route + ": fewer than " +
                     format_number(*minimum) + " where the patient count is unknown",
                 true);
    }
  }
}

void check_dominance(const Table& table, const Profile& profile, PrimaryResult& result) {
  if (table.kind != TableKind::kMagnitude) return;
  for (std::uint32_t cell = 0; cell < table.size(); ++cell) {
    const double total = table.value[cell];
    if (is_missing(total)) continue;  // check_missing's
    const double top1 = table.top1[cell];
    const double top2 = table.top2[cell];
    if (is_missing(top1) || is_missing(top2)) {
      result.add(cell, Outcome::kReview, rules::kDominance,
                 "the largest two contributions are not given, so the n-k and p% rules cannot "
                 "be checked",
                 false);
      continue;
    }
    // The rules below divide by top1 and assume it is the largest; anything else is bad input.
    if (top2 > top1 || (total > 0 && top1 <= 0)) {
      result.add(cell, Outcome::kReview, rules::kDominance,
                 "the largest contributions are inconsistent (largest " + format_number(top1) +
                     ", second " + format_number(top2) + ", total " + format_number(total) + ")",
                 false);
      continue;
    }
    // n-k (ACRO agg_nk): the largest n contributions above k of a positive total.
    const double largest = profile.nk_n == 1 ? top1 : top1 + top2;
    // Divisions as ACRO writes them, so that cells on the boundary round the same way.
    if (total > 0 && largest / total > profile.nk_k) {
      result.add(cell, Outcome::kFail, rules::kNkRule,
                 "the largest " + std::to_string(profile.nk_n) + " contribution" +
                     (profile.nk_n == 1 ? " is " : "s are ") + percent(largest / total) +
                     " of the cell total (limit " + percent(profile.nk_k) + ")",
                 true);
    }
    // p% (ACRO agg_p_percent): the second largest contributor estimates the largest to within
    // the rest, total - top1 - top2; too close when that is under p of top1. ACRO treats a
    // non-positive total or a single contributor as a zero cell.
    const double contributors = table.contributors[cell];
    if (total <= 0 || contributors <= 1) {
      if (profile.zeros == ZerosPolicy::kAllowed) continue;
      std::string why = total <= 0 ? "the cell total is " + format_number(total)
                                   : std::string("the cell has a single contributor");
      result.add(cell,
                 profile.zeros == ZerosPolicy::kDisclosive ? Outcome::kFail : Outcome::kReview,
                 rules::kPRatio, why + ", which the p% rule treats as a zero cell",
                 profile.zeros == ZerosPolicy::kDisclosive);
      continue;
    }
    const double rest = total - top1 - top2;
    if (rest / top1 < profile.p_ratio) {
      result.add(cell, Outcome::kFail, rules::kPRatio,
                 "total minus the largest two contributions (" + format_number(rest) +
                     ") is less than " + percent(profile.p_ratio) + " of the largest (" +
                     format_number(top1) + ")",
                 true);
    }
  }
}

void check_ndb_institutions(const Table& table, const Profile& profile, PrimaryResult& result) {
  if (!is_tabular(table)) return;
  struct Rule {
    const std::vector<double>* counts;
    std::optional<int> minimum;
    const char* rule;
    const char* noun;
  };
  const Rule checks[] = {
      {&table.institutions, profile.min_institutions, rules::kNdbInstitutions, "institutions"},
      {&table.insurers, profile.min_insurers, rules::kNdbInsurers, "insurers"},
  };
  for (const auto& check : checks) {
    if (!check.minimum) continue;
    const auto& counts = *check.counts;
    if (std::all_of(counts.begin(), counts.end(), [](double v) { return is_missing(v); })) {
      if (table.size() == 0) continue;
      result.add_table(Outcome::kReview, check.rule,
                       std::string("the table does not give the number of ") + check.noun +
                           " per cell; the profile requires at least " +
                           std::to_string(*check.minimum));
      continue;
    }
    const double minimum = *check.minimum;
    for (std::uint32_t cell = 0; cell < table.size(); ++cell) {
      double n = counts[cell];
      if (is_missing(n)) {
        result.add(cell, Outcome::kReview, check.rule,
                   std::string("number of ") + check.noun + " not given", false);
      } else if (n < minimum) {
        result.add(
            cell, Outcome::kReview, check.rule,
            format_number(n) + " " + check.noun + ", fewer than " + std::to_string(*check.minimum),
            false);
      }
    }
  }
}

void check_totals(const Table& table, const Profile& profile, PrimaryResult& result) {
  if (!is_tabular(table) || !profile.check_totals || table.size() == 0) return;
  // equations() finds parts through the index; without it every margin would look unchecked.
  if (!table.find(table.coord(0))) {
    result.add_table(Outcome::kFail, rules::kTotals,
                     "internal: the table's cell index was not built, so totals were not checked");
    return;
  }
  for (const auto& eq : table.equations()) {
    const double total = table.value[eq.total];
    if (is_missing(total)) continue;
    double sum = 0;
    double scale = std::fabs(total);
    bool complete = true;
    for (auto part : eq.parts) {
      double v = table.value[part];
      if (is_missing(v)) {
        complete = false;
        break;
      }
      sum += v;
      scale += std::fabs(v);
    }
    if (!complete) continue;
    // The relative term only absorbs rounding in summing decimals; the tolerance is the
    // profile's.
    const double difference = total - sum;
    if (std::fabs(difference) <= profile.totals_tolerance + 1e-9 * scale) continue;
    result.add(eq.total, Outcome::kFail, rules::kTotals,
               "total " + format_number(total) + " differs from the sum of its " +
                   std::to_string(eq.parts.size()) + " parts over " +
                   table.dims[eq.dimension].name + " (" + format_number(sum) + ") by " +
                   format_number(difference),
               false);
  }
}

void check_dof(const Table& table, const TableMeta& meta, const Profile& profile,
               PrimaryResult& result) {
  if (table.kind != TableKind::kModel) return;
  if (!meta.residual_dof) {
    result.add_table(Outcome::kReview, rules::kDof,
                     "the model's residual degrees of freedom are not declared");
    return;
  }
  if (*meta.residual_dof < profile.min_dof) {
    result.add_table(Outcome::kFail, rules::kDof,
                     "residual degrees of freedom " + format_number(*meta.residual_dof) +
                         " are fewer than " + std::to_string(profile.min_dof));
  }
}

void check_geographic_floor(const Table& table, const TableMeta& meta, const Profile& profile,
                            PrimaryResult& result) {
  if (profile.geographic_floor.empty()) return;
  const auto& levels = profile.geographic_levels;
  const auto floor_at = std::find(levels.begin(), levels.end(), profile.geographic_floor);
  for (const auto& dim : table.dims) {
    std::string level = dim.geography;
    if (level.empty()) {
      for (const auto& declared : meta.dimensions) {
        if (declared.name == dim.name) level = declared.geography;
      }
    }
    if (level.empty()) continue;
    const auto at = std::find(levels.begin(), levels.end(), level);
    if (at == levels.end()) {
      std::string known;
      for (const auto& l : levels) known += (known.empty() ? "" : ", ") + l;
      result.add_table(Outcome::kReview, rules::kGeographicFloor,
                       "dimension " + dim.name + " is at geographic level \"" + level +
                           "\", which the profile does not list (" + known + ")");
    } else if (at > floor_at) {
      result.add_table(Outcome::kFail, rules::kGeographicFloor,
                       "dimension " + dim.name + " is at " + level + " level, finer than " +
                           profile.geographic_floor + ", the finest level this profile publishes");
    }
  }
}

PrimaryResult check_primary(const Table& table, const TableMeta& meta, const Profile& profile) {
  PrimaryResult result;
  result.cell_outcome.assign(table.size(), Outcome::kPass);
  result.suppress.assign(table.size(), 0);
  check_missing(table, profile, result);
  check_negative(table, profile, result);
  check_threshold(table, meta, profile, result);
  check_ndb_units(table, meta, profile, result);
  check_dominance(table, profile, result);
  check_ndb_institutions(table, profile, result);
  check_totals(table, profile, result);
  check_dof(table, meta, profile, result);
  check_geographic_floor(table, meta, profile, result);
  return result;
}

}  // namespace enclave::exitcontrol
