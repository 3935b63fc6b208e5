// The statistical table every disclosure check works on: dimensions with hierarchies, cells
// addressed by one category per dimension, and per-cell statistics. Margins (a "Total" or a
// subtotal category in any dimension) are cells too; the additive structure between a margin
// and its parts is what an attacker exploits and what secondary suppression protects.
// No I/O: loaders (load.hpp) build it from CSV, tabulate.hpp from row-level data.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace enclave::exitcontrol {

enum class TableKind { kFrequency, kMagnitude, kExtract, kModel };
const char* table_kind_name(TableKind kind);  // "frequency", ...
std::optional<TableKind> table_kind_from_name(std::string_view name);

inline constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();
inline bool is_missing(double v) {
  return std::isnan(v);
}

// One classification variable. Categories are numbered in the order they are added; parent
// says which category a category is part of (-1 for a root). A category with children is a
// margin: its cells equal the sum of the cells of its children.
struct Dimension {
  std::string name;
  std::vector<std::string> categories;
  std::vector<std::int32_t> parent;
  std::vector<std::vector<std::uint32_t>> children;
  // Optional geographic level of the categories ("prefecture", ...), for the geographic floor.
  std::string geography;

  std::optional<std::uint32_t> find(std::string_view label) const;
  // Returns the id of label, adding it as a root when new.
  std::uint32_t intern(std::string_view label);
  // Makes child a part of parent_id (both already interned). False if that would make a cycle
  // or child already has another parent.
  bool set_parent(std::uint32_t child, std::uint32_t parent_id);
  bool is_leaf(std::uint32_t category) const { return children[category].empty(); }
  // The leaf categories under category (itself when a leaf).
  std::vector<std::uint32_t> leaves(std::uint32_t category) const;

 private:
  std::unordered_map<std::string, std::uint32_t> ids_;
};

// Where a cell's value sits in the source file (1-based CSV record and field), so the safe
// version can be written in the same layout and errors can name the place.
struct CellOrigin {
  std::uint32_t row = 0;
  std::uint32_t column = 0;
};

// Cells in struct-of-arrays form: a million cells must check in well under a second.
// Statistics the input did not provide are kMissing.
struct Table {
  std::string name;  // the file name, for messages
  TableKind kind = TableKind::kFrequency;
  std::vector<Dimension> dims;
  std::vector<std::uint32_t> coords;  // cell i, dimension d at coords[i * dims.size() + d]
  std::vector<double> value;          // the published statistic (a count for frequency tables)
  std::vector<double> contributors;   // units behind the cell (frequency: the count itself)
  std::vector<double> top1, top2;     // the largest two contributions (magnitude tables)
  std::vector<double> institutions;   // distinct institutions behind the cell (NDB rule)
  std::vector<double> insurers;       // distinct insurers behind the cell (NDB rule)
  std::vector<CellOrigin> origin;

  std::size_t size() const { return value.size(); }
  std::span<const std::uint32_t> coord(std::size_t cell) const {
    return {coords.data() + cell * dims.size(), dims.size()};
  }
  // Appends a cell with every statistic missing; returns its index.
  std::size_t add_cell(std::span<const std::uint32_t> coordinates, CellOrigin where = {});
  bool is_margin(std::size_t cell) const;
  // "region=Miyagi, age=0-4", for people.
  std::string label(std::size_t cell) const;

  // Coordinates -> cell. build_index() after the last add_cell; find() before it is an error
  // (returns nullopt). When two cells share coordinates the index keeps the first and
  // build_index returns the first such pair {earlier, later}, for the caller to report.
  std::optional<std::pair<std::size_t, std::size_t>> build_index();
  std::optional<std::size_t> find(std::span<const std::uint32_t> coordinates) const;

  // The additive structure: for every cell whose coordinate in some dimension is a margin
  // category, one equation "total = sum of parts" over the cells that replace that coordinate
  // by each child. Equations with a missing part are left out (the table does not publish
  // them). Each (total, dimension) pair gives at most one equation.
  struct Equation {
    std::uint32_t total;
    std::uint32_t dimension;
    std::vector<std::uint32_t> parts;
  };
  std::vector<Equation> equations() const;

 private:
  // Two index forms, chosen by build_index. Dense: when the product of the category counts is
  // at most a few times the cell count, a direct array indexed by the mixed-radix number of
  // the coordinates (strides_) holds each cell (kNoCell when absent): one memory access per
  // lookup. Sparse: open addressing over cell numbers, slots_ holding cell indices and the
  // coordinates compared in place; capacity a power of two at least twice the cell count.
  static constexpr std::uint32_t kNoCell = 0xffffffffu;
  std::uint64_t hash_coordinates(std::span<const std::uint32_t> coordinates) const;
  std::vector<std::uint64_t> strides_;  // non-empty: the dense form is in use
  std::vector<std::uint32_t> extent_;   // category counts at build time (dense form)
  std::vector<std::uint32_t> slots_;
};

}  // namespace enclave::exitcontrol
