// Source mode: the engine builds the table itself from row-level data inside the enclave, so
// the contributor statistics that dominance needs come from the rows rather than from the
// analyst's numbers.
//
// The table is the full cross-classification of the dimension columns with every margin: each
// dimension gets the total label as its root with every category under it, and every
// combination of categories and totals is a cell (empty combinations included, as zeros).
// Categories are sorted, numerically when every category of the dimension is a number; an
// empty dimension field is the category missing_label.
//
// Statistics per cell:
//   count  (frequency): value = rows; contributors = rows, or distinct units when a unit
//          column is named.
//   sum    (magnitude): value = sum of the value column; contributors = rows with a value (or
//          distinct units); top1, top2 = the two largest contributions (a row's value, or a
//          unit's sum over its rows in the cell), floored at 0: fewer than two contributions,
//          or negative ones, leave 0 (dominance concerns positive magnitudes).
//   mean   (magnitude): value = sum / contributors (rows with a value, or units: a mean per
//          unit), missing where there are none; the sidecar says statistic = "mean".
//          contributors, top1 and top2 describe the underlying sum, which Tabulation::sums
//          holds: a mean is as disclosive as its sum, and dominance is judged on the sum.
//   institutions, insurers: distinct non-empty ids per cell, when those columns are named
//          (the NDB rule).
// Value fields are read as the loader reads them (load.hpp parse_value): an empty field, NA,
// NaN or "." is missing and left out; anything else that is not a number is an error naming
// file, row and column.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol {

enum class Statistic { kCount, kSum, kMean };
const char* statistic_name(Statistic statistic);  // "count", "sum", "mean"
std::optional<Statistic> statistic_from_name(std::string_view name);

struct TabulateSpec {
  std::vector<std::string> dimensions;  // at least one
  Statistic statistic = Statistic::kCount;
  std::string value_column;        // sum and mean: required; count: must be empty
  std::string unit_column;         // optional: the contributing unit (patient, enterprise)
  std::string institution_column;  // optional
  std::string insurer_column;      // optional
  std::string total_label = "Total";
  std::string missing_label = "(missing)";
  std::size_t max_cells = 5'000'000;  // the full cross-classification may not exceed this
  // The tabulated table's file name (Table::name); cells' origins point into its CSV text.
  std::string output_name = "tabulated.csv";
};

struct Tabulation {
  Table table;  // index built; cells in the CSV's row order
  // Per cell: the sum behind the value (the count for count tables, the value for sums, the
  // sum whose mean is the value for means).
  std::vector<double> sums;
  std::size_t rows = 0;            // data rows read
  std::size_t missing_values = 0;  // rows whose value was missing (left out of sums and means)
  Statistic statistic = Statistic::kCount;
  std::string total_label;
  // The CSV header names, for write_tabulation and the sidecar.
  std::string value_name;  // "count", "sum_<value>", "mean_<value>"
  bool has_contributors_column = false;
  bool has_top_columns = false;
  bool has_institutions = false;
  bool has_insurers = false;
};

// Errors (kInvalidArgument) name file, row and column: unknown or repeated columns, a value
// that is not a number, a category equal to the total label, a table beyond max_cells.
Expected<Tabulation> tabulate(const csv::Document& rows, std::string_view file,
                              const TabulateSpec& spec);

// The table in long form (one row per cell: dimensions, value, then contributors, top1, top2,
// institutions, insurers as they apply) and its sidecar FILE.meta.toml (meta.hpp), so the
// output passes through the same checks and release as any other table.
struct TabulatedFiles {
  std::string csv;
  std::string meta_toml;
};
TabulatedFiles write_tabulation(const Tabulation& tabulation, std::string_view source_file);

}  // namespace enclave::exitcontrol
