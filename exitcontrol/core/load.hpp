// Builds a Table from a CSV file and its metadata, long or wide form.
//
// Dimensions: the categories of each dimension column are interned in the order they appear.
// The total label (meta.total_label) is the root of its dimension and every top-level
// category is its child; the sidecar's hierarchy puts categories under parents, and a parent
// that appears as a row is a subtotal. A declared parent the table does not show is skipped
// (its children hang from the nearest shown ancestor), so the additive structure is exactly
// what the published cells imply. A declared child the table does not show is still a
// category, so its parent's equation is left out rather than claimed wrongly.
//
// Values: an empty field, NA, NaN or "." is missing (kMissing). A number is an optional minus
// sign, digits, an optional fraction and exponent, and may group its integer digits by
// thousands with commas ("1,234,567"; "12,34" is refused). Anything else, including inf and
// nan spellings, is an error "FILE:ROW:COL (column \"name\"): ...". A field equal to one of
// LoadOptions::suppression_markers is a cell already suppressed in the input (a published
// table under audit): its value is missing and the cell is listed in LoadedTable::marked.
//
// Frequency: contributors = value unless a contributors column is declared. Magnitude:
// contributors, top1, top2 (and institutions, insurers when declared) from their columns; a
// table of means (meta.mean) gets value = mean x contributors, the sum the checks need.
// Extracts and models build no cells: an extract's declared columns are checked to exist (the
// k-anonymity check reads the rows from the document); a model's residual_dof_column is read
// into meta.residual_dof (its smallest value).
//
// Errors (kInvalidArgument) name the file, row and column; a column named in the metadata but
// absent from the header names the sidecar key; a duplicate cell names both rows. Every
// header column must be declared: an undeclared column would leave the checks unaware of it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol {

// The file, its parse and the table built from it. The document views into bytes, which sit
// behind a unique_ptr so that moving a LoadedTable leaves the views valid; it cannot be
// copied.
struct LoadedTable {
  std::string name;  // the file, for messages
  std::unique_ptr<const std::string> bytes;
  csv::Document document;
  TableMeta meta;
  Table table;
  std::vector<std::uint32_t> marked;  // cells given as a suppression marker, ascending

  // Long form: the column index of the value and statistics columns (nullopt when not
  // declared). Wide form: all nullopt; a cell's value field is table.origin[cell].
  struct Columns {
    std::optional<std::size_t> value, contributors, top1, top2, institutions, insurers;
  } columns;
};

struct LoadOptions {
  std::vector<std::string> suppression_markers;  // e.g. the profile's marker "-"
  std::uint64_t max_file_bytes = 1ull << 30;     // load_table_file refuses larger files
  csv::ParseLimits limits;
};

Expected<LoadedTable> load_table(std::string bytes, TableMeta meta, std::string name,
                                 const LoadOptions& options = {});

// Reads csv_path; without meta, reads its sidecar (meta_path_for).
Expected<LoadedTable> load_table_file(const std::filesystem::path& csv_path,
                                      std::optional<TableMeta> meta = std::nullopt,
                                      const LoadOptions& options = {});

// A value field as the loader reads it: a number, kMissing, or nullopt when it is neither.
std::optional<double> parse_value(std::string_view field);

}  // namespace enclave::exitcontrol
