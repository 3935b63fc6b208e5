// Builders of small additive tables for the LP tests (attacker audit, secondary suppression,
// rounding): every combination of categories is a cell, inner cells take given values and
// margins are the sums of the inner cells below them.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol::testing {

// Categories leaves..., then `total` as their parent.
inline Dimension flat_dimension(const std::string& name, const std::vector<std::string>& leaves,
                                const std::string& total = "Total") {
  Dimension d;
  d.name = name;
  for (const auto& leaf : leaves) d.intern(leaf);
  auto t = d.intern(total);
  for (const auto& leaf : leaves) d.set_parent(*d.find(leaf), t);
  return d;
}

// A dimension with one level of groups: {group, {leaves}} under `total`.
inline Dimension grouped_dimension(
    const std::string& name,
    const std::vector<std::pair<std::string, std::vector<std::string>>>& groups,
    const std::string& total = "Total") {
  Dimension d;
  d.name = name;
  auto t = d.intern(total);
  for (const auto& [group, leaves] : groups) {
    auto g = d.intern(group);
    d.set_parent(g, t);
    for (const auto& leaf : leaves) d.set_parent(d.intern(leaf), g);
  }
  return d;
}

// Leaf coordinates -> value for the inner cells.
using InnerValue = std::function<double(std::span<const std::uint32_t>)>;

inline Table cross_table(std::vector<Dimension> dims, const InnerValue& inner,
                         const std::string& name = "fixture.csv") {
  Table t;
  t.name = name;
  t.dims = std::move(dims);
  const std::size_t k = t.dims.size();
  std::vector<std::uint32_t> c(k, 0);
  for (;;) {
    t.add_cell(c);
    std::size_t d = 0;
    while (d < k && ++c[d] == t.dims[d].categories.size()) c[d++] = 0;
    if (d == k) break;
  }
  t.build_index();
  for (std::size_t cell = 0; cell < t.size(); ++cell) t.value[cell] = 0;
  // Each inner value goes to its cell and every margin above it.
  std::vector<std::vector<std::uint32_t>> chains(k);
  std::vector<std::size_t> pick(k);
  std::vector<std::uint32_t> probe(k);
  for (std::size_t cell = 0; cell < t.size(); ++cell) {
    if (t.is_margin(cell)) continue;
    auto coord = t.coord(cell);
    double v = inner(coord);
    for (std::size_t d = 0; d < k; ++d) {
      chains[d].clear();
      for (std::int32_t up = static_cast<std::int32_t>(coord[d]); up != -1;
           up = t.dims[d].parent[up]) {
        chains[d].push_back(static_cast<std::uint32_t>(up));
      }
    }
    std::fill(pick.begin(), pick.end(), 0);
    for (;;) {
      for (std::size_t d = 0; d < k; ++d) probe[d] = chains[d][pick[d]];
      t.value[*t.find(probe)] += v;
      std::size_t d = 0;
      while (d < k && ++pick[d] == chains[d].size()) pick[d++] = 0;
      if (d == k) break;
    }
  }
  for (std::size_t cell = 0; cell < t.size(); ++cell) t.contributors[cell] = t.value[cell];
  return t;
}

// The cell at the given category labels, one per dimension.
inline std::uint32_t cell_at(const Table& t, const std::vector<std::string>& labels) {
  std::vector<std::uint32_t> c;
  for (std::size_t d = 0; d < labels.size(); ++d) c.push_back(*t.dims[d].find(labels[d]));
  return static_cast<std::uint32_t>(*t.find(c));
}

inline std::vector<std::uint8_t> mask_of(const Table& t, const std::vector<std::uint32_t>& cells) {
  std::vector<std::uint8_t> m(t.size(), 0);
  for (auto c : cells) m[c] = 1;
  return m;
}

}  // namespace enclave::exitcontrol::testing
