#include "exitcontrol/core/table.hpp"

#include <algorithm>
#include <bit>
#include <cassert>

namespace enclave::exitcontrol {

const char* table_kind_name(TableKind kind) {
  switch (kind) {
    case TableKind::kFrequency:
      return "frequency";
    case TableKind::kMagnitude:
      return "magnitude";
    case TableKind::kExtract:
      return "extract";
    case TableKind::kModel:
      return "model";
  }
  return "unknown";
}

std::optional<TableKind> table_kind_from_name(std::string_view name) {
  for (TableKind kind :
       {TableKind::kFrequency, TableKind::kMagnitude, TableKind::kExtract, TableKind::kModel}) {
    if (name == table_kind_name(kind)) return kind;
  }
  return std::nullopt;
}

std::optional<std::uint32_t> Dimension::find(std::string_view label) const {
  auto it = ids_.find(std::string(label));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::uint32_t Dimension::intern(std::string_view label) {
  auto [it, inserted] = ids_.try_emplace(std::string(label), 0);
  if (!inserted) return it->second;
  auto id = static_cast<std::uint32_t>(categories.size());
  it->second = id;
  categories.emplace_back(label);
  parent.push_back(-1);
  children.emplace_back();
  return id;
}

bool Dimension::set_parent(std::uint32_t child, std::uint32_t parent_id) {
  assert(child < categories.size() && parent_id < categories.size());
  if (parent[child] == static_cast<std::int32_t>(parent_id)) return true;
  if (parent[child] != -1) return false;
  // A cycle would arise if child is parent_id or one of its ancestors.
  for (std::int32_t up = static_cast<std::int32_t>(parent_id); up != -1; up = parent[up]) {
    if (static_cast<std::uint32_t>(up) == child) return false;
  }
  parent[child] = static_cast<std::int32_t>(parent_id);
  children[parent_id].push_back(child);
  return true;
}

std::vector<std::uint32_t> Dimension::leaves(std::uint32_t category) const {
  std::vector<std::uint32_t> out;
  std::vector<std::uint32_t> stack{category};
  while (!stack.empty()) {
    auto c = stack.back();
    stack.pop_back();
    if (children[c].empty()) {
      out.push_back(c);
      continue;
    }
    // Reversed so the leaves come out in the order the children were declared.
    for (auto it = children[c].rbegin(); it != children[c].rend(); ++it) stack.push_back(*it);
  }
  return out;
}

std::size_t Table::add_cell(std::span<const std::uint32_t> coordinates, CellOrigin where) {
  assert(coordinates.size() == dims.size());
  coords.insert(coords.end(), coordinates.begin(), coordinates.end());
  value.push_back(kMissing);
  contributors.push_back(kMissing);
  top1.push_back(kMissing);
  top2.push_back(kMissing);
  institutions.push_back(kMissing);
  insurers.push_back(kMissing);
  origin.push_back(where);
  return value.size() - 1;
}

bool Table::is_margin(std::size_t cell) const {
  auto c = coord(cell);
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (!dims[d].is_leaf(c[d])) return true;
  }
  return false;
}

std::string Table::label(std::size_t cell) const {
  std::string out;
  auto c = coord(cell);
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (d > 0) out += ", ";
    out += dims[d].name;
    out += '=';
    out += dims[d].categories[c[d]];
  }
  return out;
}

namespace {

// A plain loop: std::equal becomes a memcmp call, slower than comparing two to four words.
bool same_coordinates(std::span<const std::uint32_t> a, const std::uint32_t* b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

std::uint64_t Table::hash_coordinates(std::span<const std::uint32_t> coordinates) const {
  // Multiply-xorshift per coordinate (from splitmix64): cheap and spreads small integers.
  std::uint64_t h = 0x9e3779b97f4a7c15ull;
  for (auto c : coordinates) {
    h ^= c + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
  }
  return h;
}

std::optional<std::pair<std::size_t, std::size_t>> Table::build_index() {
  std::optional<std::pair<std::size_t, std::size_t>> duplicate;
  const std::size_t width = dims.size();
  strides_.clear();
  extent_.clear();
  slots_.clear();

  // Dense when the full cross product is small next to the cell count.
  const std::uint64_t dense_limit = std::max<std::uint64_t>(1 << 16, 4 * std::uint64_t{size()});
  std::uint64_t product = 1;
  bool dense = true;
  for (const auto& dim : dims) {
    const std::uint64_t n = std::max<std::size_t>(dim.categories.size(), 1);
    if (product > dense_limit / n) {
      dense = false;
      break;
    }
    product *= n;
  }
  if (dense) {
    strides_.resize(width);
    extent_.resize(width);
    std::uint64_t stride = 1;
    for (std::size_t d = width; d-- > 0;) {
      strides_[d] = stride;
      extent_[d] = static_cast<std::uint32_t>(dims[d].categories.size());
      stride *= std::max<std::size_t>(dims[d].categories.size(), 1);
    }
    slots_.assign(product, kNoCell);
    for (std::size_t cell = 0; cell < size(); ++cell) {
      auto c = coord(cell);
      std::uint64_t at = 0;
      for (std::size_t d = 0; d < width; ++d) at += c[d] * strides_[d];
      if (slots_[at] == kNoCell) {
        slots_[at] = static_cast<std::uint32_t>(cell);
      } else if (!duplicate) {
        duplicate = std::pair<std::size_t, std::size_t>{slots_[at], cell};
      }
    }
    return duplicate;
  }

  std::size_t capacity = std::bit_ceil(std::max<std::size_t>(16, size() * 2));
  slots_.assign(capacity, kNoCell);
  const std::size_t mask = capacity - 1;
  for (std::size_t cell = 0; cell < size(); ++cell) {
    auto c = coord(cell);
    for (std::size_t slot = hash_coordinates(c) & mask;; slot = (slot + 1) & mask) {
      std::uint32_t occupant = slots_[slot];
      if (occupant == kNoCell) {
        slots_[slot] = static_cast<std::uint32_t>(cell);
        break;
      }
      if (same_coordinates(c, coords.data() + std::size_t{occupant} * width)) {
        if (!duplicate) duplicate = std::pair<std::size_t, std::size_t>{occupant, cell};
        break;
      }
    }
  }
  return duplicate;
}

std::optional<std::size_t> Table::find(std::span<const std::uint32_t> coordinates) const {
  if (slots_.empty() || coordinates.size() != dims.size()) return std::nullopt;
  const std::size_t width = dims.size();
  if (!strides_.empty()) {
    std::uint64_t at = 0;
    for (std::size_t d = 0; d < width; ++d) {
      // A category added after build_index has no cell.
      if (coordinates[d] >= extent_[d]) return std::nullopt;
      at += coordinates[d] * strides_[d];
    }
    std::uint32_t cell = slots_[at];
    if (cell == kNoCell) return std::nullopt;
    return cell;
  }
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t slot = hash_coordinates(coordinates) & mask;; slot = (slot + 1) & mask) {
    std::uint32_t occupant = slots_[slot];
    if (occupant == kNoCell) return std::nullopt;
    if (same_coordinates(coordinates, coords.data() + std::size_t{occupant} * width)) {
      return occupant;
    }
  }
}

std::vector<Table::Equation> Table::equations() const {
  std::vector<Equation> out;
  const std::size_t width = dims.size();
  std::vector<std::uint32_t> probe(width);
  std::vector<std::uint32_t> parts;
  for (std::size_t cell = 0; cell < size(); ++cell) {
    auto c = coord(cell);
    for (std::size_t d = 0; d < width; ++d) {
      const auto& kids = dims[d].children[c[d]];
      if (kids.empty()) continue;
      std::copy(c.begin(), c.end(), probe.begin());
      parts.clear();
      for (auto child : kids) {
        probe[d] = child;
        auto part = find(probe);
        if (!part) break;
        parts.push_back(static_cast<std::uint32_t>(*part));
      }
      if (parts.size() != kids.size()) continue;
      out.push_back(
          Equation{static_cast<std::uint32_t>(cell), static_cast<std::uint32_t>(d), parts});
    }
  }
  return out;
}

}  // namespace enclave::exitcontrol
