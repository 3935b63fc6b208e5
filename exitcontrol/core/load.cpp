#include "exitcontrol/core/load.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <tuple>
#include <unordered_map>

#include "common/files.hpp"

namespace enclave::exitcontrol {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// A field quoted for a message: at most 40 bytes, cut at a character boundary.
std::string quote_field(std::string_view field) {
  constexpr std::size_t kMax = 40;
  if (field.size() <= kMax) return "\"" + std::string(field) + "\"";
  std::size_t cut = kMax;
  while (cut > 0 && (static_cast<unsigned char>(field[cut]) & 0xC0) == 0x80) --cut;
  return "\"" + std::string(field.substr(0, cut)) + "...\"";
}

class Loader {
 public:
  Loader(LoadedTable& out, const LoadOptions& options) : out_(out), options_(options) {}

  Status run() {
    const auto& doc = out_.document;
    ENCLAVE_TRY(check_header());
    switch (out_.meta.kind) {
      case TableKind::kFrequency:
      case TableKind::kMagnitude:
        out_.table.dims.resize(out_.meta.dimensions.size());
        interned_.resize(out_.meta.dimensions.size());
        for (std::size_t d = 0; d < out_.meta.dimensions.size(); ++d) {
          out_.table.dims[d].name = out_.meta.dimensions[d].name;
          out_.table.dims[d].geography = out_.meta.dimensions[d].geography;
        }
        if (out_.meta.layout == Layout::kLong) {
          ENCLAVE_TRY(load_long());
        } else {
          ENCLAVE_TRY(load_wide());
        }
        for (std::size_t d = 0; d < out_.meta.dimensions.size(); ++d) {
          ENCLAVE_TRY(apply_hierarchy(d));
        }
        if (auto dup = out_.table.build_index()) {
          const auto& [first, second] = *dup;
          return fail(Errc::kInvalidArgument,
                      out_.name + ":" + std::to_string(out_.table.origin[second].row) +
                          ": duplicate cell " + out_.table.label(second) + " (first at row " +
                          std::to_string(out_.table.origin[first].row) + ")");
        }
        return {};
      case TableKind::kExtract:
        for (const auto& qi : out_.meta.quasi_identifiers) {
          ENCLAVE_TRY(require_column(qi, "quasi_identifiers").status);
        }
        for (const auto& s : out_.meta.sensitive) {
          ENCLAVE_TRY(require_column(s, "sensitive").status);
        }
        return {};
      case TableKind::kModel:
        if (!out_.meta.residual_dof_column.empty()) {
          auto column = require_column(out_.meta.residual_dof_column, "residual_dof_column");
          ENCLAVE_TRY(column.status);
          std::optional<double> smallest;
          for (std::size_t r = 1; r < doc.records(); ++r) {
            auto v = number(r, *column.index);
            if (!v) return fail(v.error());
            if (!is_missing(*v)) smallest = std::min(smallest.value_or(*v), *v);
          }
          if (!smallest) {
            return fail(Errc::kInvalidArgument, out_.name + " (column \"" +
                                                    out_.meta.residual_dof_column +
                                                    "\"): no degrees of freedom given (named by " +
                                                    out_.meta.locate("residual_dof_column") + ")");
          }
          out_.meta.residual_dof = smallest;
        }
        return {};
    }
    return fail(Errc::kInternal, "unknown table kind");
  }

 private:
  struct Column {
    Status status;
    std::optional<std::size_t> index;
  };

  Unexpected<Error> field_error(std::size_t record, std::size_t column,
                                const std::string& message) const {
    return fail(Errc::kInvalidArgument, out_.name + ":" + std::to_string(record + 1) + ":" +
                                            std::to_string(column + 1) + " (column \"" +
                                            std::string(out_.document.header()[column]) +
                                            "\"): " + message);
  }

  Status check_header() {
    const auto& header = out_.document.header();
    std::unordered_map<std::string_view, std::size_t> seen;
    for (std::size_t j = 0; j < header.size(); ++j) {
      auto [it, inserted] = seen.emplace(header[j], j);
      // Wide-form row-label headers may be empty and repeat; the check below covers them.
      if (!inserted && !header[j].empty()) {
        return fail(Errc::kInvalidArgument, out_.name + ":1:" + std::to_string(j + 1) +
                                                ": column \"" + std::string(header[j]) +
                                                "\" appears twice (also column " +
                                                std::to_string(it->second + 1) + ")");
      }
    }
    return {};
  }

  Column require_column(const std::string& name, const std::string& key) {
    auto index = out_.document.column(name);
    if (!index) {
      return {fail(Errc::kInvalidArgument, out_.name + ":1: column \"" + name +
                                               "\" is not in the header (named by " +
                                               out_.meta.locate(key) + ")"),
              std::nullopt};
    }
    return {{}, index};
  }

  // An optional declared column: nullopt index when the key is not set.
  Column optional_column(const std::string& name, const std::string& key) {
    if (name.empty()) return {{}, std::nullopt};
    return require_column(name, key);
  }

  Expected<double> number(std::size_t record, std::size_t column) {
    std::string_view field = out_.document.field(record, column);
    auto v = parse_value(field);
    if (!v) return field_error(record, column, "expected a number, found " + quote_field(field));
    return *v;
  }

  // The published value: a number, missing, or a suppression marker (missing, and marked).
  Expected<double> value(std::size_t record, std::size_t column, std::size_t cell) {
    std::string_view field = out_.document.field(record, column);
    if (!field.empty() &&
        std::find(options_.suppression_markers.begin(), options_.suppression_markers.end(),
                  field) != options_.suppression_markers.end()) {
      out_.marked.push_back(static_cast<std::uint32_t>(cell));
      return kMissing;
    }
    return number(record, column);
  }

  // Interns the category in field (record, column) of dimension d.
  Expected<std::uint32_t> category(std::size_t d, std::size_t record, std::size_t column) {
    std::string_view label = out_.document.field(record, column);
    auto& ids = interned_[d];
    auto it = ids.find(label);
    if (it != ids.end()) return it->second;
    if (label.empty()) {
      return field_error(record, column, "a dimension field must name a category");
    }
    auto id = out_.table.dims[d].intern(label);
    ids.emplace(label, id);
    return id;
  }

  Status load_long() {
    const auto& doc = out_.document;
    const auto& meta = out_.meta;
    const std::size_t dims = meta.dimensions.size();
    std::vector<std::size_t> dim_column(dims);
    std::set<std::size_t> declared;
    for (std::size_t d = 0; d < dims; ++d) {
      auto c = require_column(meta.dimensions[d].name, "dimension[" + std::to_string(d) + "].name");
      ENCLAVE_TRY(c.status);
      dim_column[d] = *c.index;
      declared.insert(*c.index);
    }
    auto& cols = out_.columns;
    for (auto [name, key, slot] :
         {std::tuple{&meta.value_column, "value", &cols.value},
          std::tuple{&meta.contributors_column, "contributors", &cols.contributors},
          std::tuple{&meta.top1_column, "top1", &cols.top1},
          std::tuple{&meta.top2_column, "top2", &cols.top2},
          std::tuple{&meta.institutions_column, "institutions", &cols.institutions},
          std::tuple{&meta.insurers_column, "insurers", &cols.insurers}}) {
      auto c = optional_column(*name, key);
      ENCLAVE_TRY(c.status);
      *slot = c.index;
      if (c.index) declared.insert(*c.index);
    }
    ENCLAVE_TRY(check_all_declared(declared));

    Table& table = out_.table;
    const std::size_t rows = doc.records() - 1;
    table.coords.reserve(rows * dims);
    for (auto* v : {&table.value, &table.contributors, &table.top1, &table.top2,
                    &table.institutions, &table.insurers}) {
      v->reserve(rows);
    }
    table.origin.reserve(rows);
    std::vector<std::uint32_t> coords(dims);
    for (std::size_t r = 1; r < doc.records(); ++r) {
      for (std::size_t d = 0; d < dims; ++d) {
        auto id = category(d, r, dim_column[d]);
        if (!id) return fail(id.error());
        coords[d] = *id;
      }
      const auto cell = table.add_cell(
          coords, {static_cast<std::uint32_t>(r + 1), static_cast<std::uint32_t>(*cols.value + 1)});
      auto v = value(r, *cols.value, cell);
      if (!v) return fail(v.error());
      table.value[cell] = *v;
      for (auto [column, stat] :
           {std::pair{cols.contributors, &table.contributors}, std::pair{cols.top1, &table.top1},
            std::pair{cols.top2, &table.top2}, std::pair{cols.institutions, &table.institutions},
            std::pair{cols.insurers, &table.insurers}}) {
        if (!column) continue;
        auto s = number(r, *column);
        if (!s) return fail(s.error());
        (*stat)[cell] = *s;
      }
      if (meta.kind == TableKind::kFrequency && !cols.contributors) {
        table.contributors[cell] = table.value[cell];
      }
      if (meta.mean) table.value[cell] *= table.contributors[cell];  // NaN stays missing
    }
    return {};
  }

  Status load_wide() {
    const auto& doc = out_.document;
    const auto& meta = out_.meta;
    const auto& header = doc.header();
    const std::size_t dims = meta.dimensions.size();
    std::size_t column_dim = 0;
    std::vector<std::size_t> row_dims;
    for (std::size_t d = 0; d < dims; ++d) {
      if (meta.dimensions[d].name == meta.column_dimension) {
        column_dim = d;
      } else {
        row_dims.push_back(d);
      }
    }
    const std::size_t k = row_dims.size();
    if (header.size() <= k) {
      return fail(Errc::kInvalidArgument,
                  out_.name + ":1: a wide table with " + std::to_string(k) +
                      " row dimension(s) needs at least one column of values after them");
    }
    for (std::size_t i = 0; i < k; ++i) {
      const auto& name = meta.dimensions[row_dims[i]].name;
      if (!header[i].empty() && header[i] != name) {
        return fail(Errc::kInvalidArgument,
                    out_.name + ":1:" + std::to_string(i + 1) + ": expected the row dimension \"" +
                        name + "\" (or an empty field), found " + quote_field(header[i]) +
                        " (the order of [[dimension]] in " + out_.meta.locate("dimension") + ")");
      }
    }
    std::vector<std::uint32_t> column_category(header.size());
    for (std::size_t j = k; j < header.size(); ++j) {
      auto id = category(column_dim, 0, j);
      if (!id) return fail(id.error());
      column_category[j] = *id;
    }

    Table& table = out_.table;
    const std::size_t cells = (doc.records() - 1) * (header.size() - k);
    table.coords.reserve(cells * dims);
    std::vector<std::uint32_t> coords(dims);
    for (std::size_t r = 1; r < doc.records(); ++r) {
      for (std::size_t i = 0; i < k; ++i) {
        auto id = category(row_dims[i], r, i);
        if (!id) return fail(id.error());
        coords[row_dims[i]] = *id;
      }
      for (std::size_t j = k; j < header.size(); ++j) {
        coords[column_dim] = column_category[j];
        const auto cell = table.add_cell(
            coords, {static_cast<std::uint32_t>(r + 1), static_cast<std::uint32_t>(j + 1)});
        auto v = value(r, j, cell);
        if (!v) return fail(v.error());
        table.value[cell] = *v;
        if (meta.kind == TableKind::kFrequency) table.contributors[cell] = *v;
      }
    }
    return {};
  }

  Status check_all_declared(const std::set<std::size_t>& declared) {
    const auto& header = out_.document.header();
    for (std::size_t j = 0; j < header.size(); ++j) {
      if (declared.contains(j)) continue;
      return fail(Errc::kInvalidArgument,
                  out_.name + ":1:" + std::to_string(j + 1) + " (column \"" +
                      std::string(header[j]) + "\"): not declared in " +
                      (out_.meta.source.empty() ? std::string("the metadata") : out_.meta.source) +
                      "; every column must be a dimension or a declared value column, or the "
                      "checks would not see it");
    }
    return {};
  }

  // See load.hpp: declared children always exist; declared parents only when shown.
  Status apply_hierarchy(std::size_t d) {
    Dimension& dim = out_.table.dims[d];
    const DimensionMeta& dm = out_.meta.dimensions[d];
    const std::string& total = out_.meta.total_label;
    std::unordered_map<std::string, std::string> parent_of;
    for (const auto& [parent, children] : dm.hierarchy) {
      for (const auto& child : children) parent_of.emplace(child, parent);
    }
    for (const auto& [parent, children] : dm.hierarchy) {
      for (const auto& child : children) {
        if (!dim.find(child) && !dm.hierarchy.contains(child)) dim.intern(child);
      }
    }
    const std::size_t count = dim.categories.size();
    for (std::uint32_t c = 0; c < count; ++c) {
      if (dim.categories[c] == total) continue;
      std::string up = dim.categories[c];
      std::optional<std::uint32_t> parent;
      // Bounded by the number of links: validate_meta has refused cycles already.
      for (std::size_t steps = 0; steps <= parent_of.size(); ++steps) {
        auto it = parent_of.find(up);
        up = it == parent_of.end() ? total : it->second;
        if ((parent = dim.find(up))) break;
        if (up == total) break;
      }
      if (!parent) continue;  // no shown ancestor: a root
      if (!dim.set_parent(c, *parent)) {
        return fail(Errc::kInvalidArgument,
                    out_.name + ": dimension \"" + dim.name + "\": \"" + dim.categories[c] +
                        "\" cannot be a part of \"" + dim.categories[*parent] + "\" (a cycle in " +
                        out_.meta.locate("dimension[" + std::to_string(d) + "].hierarchy") + ")");
      }
    }
    return {};
  }

  LoadedTable& out_;
  const LoadOptions& options_;
  // Per dimension: label -> category, keyed by views into the document (no allocation).
  std::vector<std::unordered_map<std::string_view, std::uint32_t>> interned_;
};

}  // namespace

std::optional<double> parse_value(std::string_view field) {
  while (!field.empty() && (field.front() == ' ' || field.front() == '\t')) field.remove_prefix(1);
  while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) field.remove_suffix(1);
  if (field.empty() || field == "NA" || field == "NaN" || field == ".") return kMissing;

  // Grammar: -? int ( . digits )? ( [eE] [+-]? digits )?, int = digits | 1-3 digits (,ddd)+.
  // Commas are dropped into buf; from_chars then reads the plain number.
  char buf[128];
  std::size_t n = 0;
  std::size_t i = 0;
  auto put = [&](char c) {
    if (n == sizeof buf) return false;
    buf[n++] = c;
    return true;
  };
  if (field[i] == '-' && !put(field[i++])) return std::nullopt;
  std::size_t int_digits = 0, group = 0;
  bool grouped = false;
  for (; i < field.size(); ++i) {
    char c = field[i];
    if (is_digit(c)) {
      if (!put(c)) return std::nullopt;
      ++int_digits;
      ++group;
    } else if (c == ',') {
      // The first group has 1 to 3 digits, every later one exactly 3.
      if (group == 0 || (grouped ? group != 3 : group > 3)) return std::nullopt;
      grouped = true;
      group = 0;
    } else {
      break;
    }
  }
  if (grouped && group != 3) return std::nullopt;
  std::size_t frac_digits = 0;
  if (i < field.size() && field[i] == '.') {
    if (!put(field[i++])) return std::nullopt;
    for (; i < field.size() && is_digit(field[i]); ++i, ++frac_digits) {
      if (!put(field[i])) return std::nullopt;
    }
  }
  if (int_digits + frac_digits == 0) return std::nullopt;
  if (i < field.size() && (field[i] == 'e' || field[i] == 'E')) {
    if (!put(field[i++])) return std::nullopt;
    if (i < field.size() && (field[i] == '+' || field[i] == '-') && !put(field[i++])) {
      return std::nullopt;
    }
    std::size_t exp_digits = 0;
    for (; i < field.size() && is_digit(field[i]); ++i, ++exp_digits) {
      if (!put(field[i])) return std::nullopt;
    }
    if (exp_digits == 0) return std::nullopt;
  }
  if (i != field.size()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(buf, buf + n, v);
  if (ec != std::errc() || end != buf + n || !std::isfinite(v)) return std::nullopt;
  return v;
}

Expected<LoadedTable> load_table(std::string bytes, TableMeta meta, std::string name,
                                 const LoadOptions& options) {
  ENCLAVE_TRY(validate_meta(meta));
  LoadedTable out;
  out.name = std::move(name);
  out.bytes = std::make_unique<const std::string>(std::move(bytes));
  auto doc = csv::parse(*out.bytes, options.limits);
  if (!doc) return fail(Errc::kInvalidArgument, doc.error().describe(out.name));
  out.document = std::move(*doc);
  out.meta = std::move(meta);
  out.table.name = out.name;
  out.table.kind = out.meta.kind;
  ENCLAVE_TRY(Loader(out, options).run());
  return out;
}

Expected<LoadedTable> load_table_file(const std::filesystem::path& csv_path,
                                      std::optional<TableMeta> meta, const LoadOptions& options) {
  const std::string name = csv_path.string();
  if (!meta) {
    auto sidecar = load_meta_for(csv_path);
    if (!sidecar) return error_of(sidecar);
    meta = std::move(*sidecar);
  }
  auto bytes = read_file(csv_path, options.max_file_bytes);
  if (!bytes) return error_of(bytes);
  return load_table(std::move(bytes).value(), std::move(*meta), name, options);
}

}  // namespace enclave::exitcontrol
