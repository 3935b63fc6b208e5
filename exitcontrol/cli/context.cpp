#include <algorithm>

#include "exitcontrol/cli/commands.hpp"

namespace enclave::exitcontrol::cli {

int exit_code_for(Outcome outcome) {
  switch (outcome) {
    case Outcome::kPass:
      return 0;
    case Outcome::kReview:
      return kExitReview;
    case Outcome::kFail:
      return kExitFail;
  }
  return kExitError;
}

Expected<Profile> Context::load_profile() const {
  return exitcontrol::load_profile(common.policies, profile,
                                   tier.empty() ? std::nullopt : std::optional(tier));
}

std::filesystem::path Context::ledger_path() const {
  return ledger.empty() ? common.state_dir / "exitcontrol" / "ledger.db" : ledger;
}

void MetaFlags::add_to(CLI::App& command) {
  auto* g = command.add_option_group("metadata", "instead of a FILE.meta.toml sidecar");
  g->add_option("--kind", kind, "frequency, magnitude, extract or model");
  g->add_option("--layout", layout, "long (default) or wide");
  g->add_option("--dimension", dimensions, "a dimension column (repeat, in column order)");
  g->add_option("--column-dimension", column_dimension, "wide form: the dimension across");
  g->add_option("--value", value, "the value column");
  g->add_option("--contributors", contributors, "magnitude: contributors per cell");
  g->add_option("--top1", top1, "magnitude: the largest contribution");
  g->add_option("--top2", top2, "magnitude: the second largest contribution");
  g->add_option("--institutions", institutions, "distinct institutions per cell (NDB)");
  g->add_option("--insurers", insurers, "distinct insurers per cell (NDB)");
  g->add_option("--route", route, "NDB units rule: oral, topical or injection");
  g->add_option("--total-label", total_label, "label of margins (default Total)");
  g->add_option("--population", population, "what the table counts (release ledger)");
  g->add_option("--qi", quasi_identifiers, "extract: a quasi-identifier column (repeat)");
  g->add_option("--sensitive", sensitive, "extract: a sensitive column (repeat)");
  g->add_option("--residual-dof", residual_dof, "model: residual degrees of freedom");
}

Expected<TableMeta> MetaFlags::to_meta() const {
  TableMeta m;
  m.source = "command line";
  auto k = table_kind_from_name(kind);
  if (!k) {
    return fail(Errc::kInvalidArgument,
                "--kind: expected frequency, magnitude, extract or model, found \"" + kind + "\"");
  }
  m.kind = *k;
  if (layout == "wide") {
    m.layout = Layout::kWide;
  } else if (!layout.empty() && layout != "long") {
    return fail(Errc::kInvalidArgument,
                "--layout: expected long or wide, found \"" + layout + "\"");
  }
  if (!total_label.empty()) m.total_label = total_label;
  if (!population.empty()) m.population = population;
  for (const auto& d : dimensions) m.dimensions.push_back({.name = d});
  m.column_dimension = column_dimension;
  m.value_column = value;
  m.contributors_column = contributors;
  m.top1_column = top1;
  m.top2_column = top2;
  m.institutions_column = institutions;
  m.insurers_column = insurers;
  m.route = route;
  m.quasi_identifiers = quasi_identifiers;
  m.sensitive = sensitive;
  m.residual_dof = residual_dof;
  ENCLAVE_TRY(validate_meta(m));
  return m;
}

}  // namespace enclave::exitcontrol::cli
