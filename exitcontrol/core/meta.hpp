// The metadata sidecar (or the same keys from CLI flags): what kind of output a file is and how
// to read it. The sidecar of tables/x.csv is tables/x.csv.meta.toml. Errors name the sidecar
// file, line, column and key. Every key but `kind` is optional; unknown keys are refused.
//
//   kind = "frequency"            # frequency | magnitude | extract | model
//   layout = "long"               # long (one row per cell) | wide (a crosstab); default long
//   total_label = "Total"         # the label of margins and subtotals; default "Total"
//   column_dimension = "sex"      # wide form: the dimension whose categories head the columns
//
//   # Value columns (long form). Frequency: value is the count; contributors defaults to it.
//   # Magnitude: value is the total, and contributors, top1, top2 are required.
//   value = "patients"
//   contributors = "n"
//   top1 = "max1"                 # the largest contribution to the cell
//   top2 = "max2"                 # the second largest
//   institutions = "n_inst"       # NDB: distinct institutions per cell
//   insurers = "n_ins"            # NDB: distinct insurers per cell
//   route = "oral"                # NDB units rule: oral | topical | injection
//   statistic = "mean"            # magnitude: the value is a mean over the contributors (default
//                                 # "sum"); the checks then work on mean x contributors
//
//   residual_dof = 120            # model: residual degrees of freedom, or
//   residual_dof_column = "df"    #   the column that holds them (the smallest value counts)
//
//   quasi_identifiers = ["age", "sex", "prefecture"]  # extract: required
//   sensitive = ["diagnosis"]                         # extract: for l-diversity
//
//   population = "ndb-2023-outpatients"  # release ledger: what the table counts
//
//   [[dimension]]                 # long form: one per dimension column, in column order
//   name = "region"
//   geography = "prefecture"      # optional, checked against the profile's geographic floor
//   [dimension.hierarchy]         # parent = [children]; categories under no parent sit
//   "Tohoku" = ["Aomori", "Iwate", "Miyagi", "Akita", "Yamagata", "Fukushima"]  # under Total
//
//   [filter]                      # the table counts only these categories of a dimension
//   age = ["20-39", "40-64"]      # it does not show
//
// Wide form: the dimensions are declared in the same way; the ones other than
// column_dimension are the leading row-label columns, in declaration order, and every other
// header is a category of column_dimension (the total label among them is the row margin).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol {

enum class Layout { kLong, kWide };

struct DimensionMeta {
  std::string name;
  // parent category -> its child categories; categories under no parent sit under the total.
  std::map<std::string, std::vector<std::string>> hierarchy;
  std::string geography;  // optional geographic level, checked against the profile's floor
};

struct TableMeta {
  TableKind kind = TableKind::kFrequency;
  Layout layout = Layout::kLong;
  std::string total_label = "Total";  // marks margins and subtotals in every dimension
  // Long form: the dimension columns. Wide form: the row-label columns first, then the one
  // dimension whose categories are the column headers (named by column_dimension).
  std::vector<DimensionMeta> dimensions;
  std::string column_dimension;  // wide form only

  // Value columns (long form). value_column is the published statistic.
  std::string value_column;
  std::string contributors_column;  // magnitude: units per cell; frequency: defaults to value
  std::string top1_column, top2_column;
  std::string institutions_column, insurers_column;

  // Magnitude tables of means (sidecar statistic = "mean"): margins of means do not add up,
  // the sums behind them do, and a mean is as disclosive as its sum. The loader turns each
  // value into mean x contributors so every check and the attacker audit see the sums.
  bool mean = false;

  // NDB units rule: the administration route of the drug counted ("oral", "topical",
  // "injection"), when the value is a quantity of units rather than patients.
  std::string route;

  // Models: residual degrees of freedom, given or read from a column by the loader (which
  // then fills residual_dof).
  std::optional<double> residual_dof;
  std::string residual_dof_column;

  // Row-level extracts.
  std::vector<std::string> quasi_identifiers;
  std::vector<std::string> sensitive;

  // Release ledger: the population the table counts, and the restriction of a dimension the
  // table does not show (e.g. {"age": ["20-39", "40-64"]}: only those ages are counted).
  std::string population = "default";
  std::map<std::string, std::vector<std::string>> filter;

  // Where the metadata came from ("x.csv.meta.toml", "command line"), and for each key that
  // was set, where it was set ("x.csv.meta.toml:3:1: value"), so a loader that finds a named
  // column missing can point at the key. Keys: "value", "dimension[0].name", ...
  std::string source;
  std::map<std::string, std::string> where;

  // "x.csv.meta.toml:3:1: value" when known, else "SOURCE: key".
  std::string locate(const std::string& key) const;
};

// Parses sidecar text; source_name stands in for the file in messages.
Expected<TableMeta> parse_meta(std::string_view text, const std::string& source_name);
// The sidecar path of a file: FILE.meta.toml.
std::filesystem::path meta_path_for(const std::filesystem::path& file);
// Reads the sidecar of file; kNotFound when there is none.
Expected<TableMeta> load_meta_for(const std::filesystem::path& file);
// The consistency rules parse_meta applies, for metadata built another way (CLI flags):
// value column for long-form frequency and magnitude tables, column_dimension for the wide
// form, quasi-identifiers for extracts, degrees of freedom for models, distinct dimension
// names, acyclic hierarchies. Messages name the key via meta.locate().
Status validate_meta(const TableMeta& meta);

}  // namespace enclave::exitcontrol
