#include "exitcontrol/core/tabulate.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>

#include "exitcontrol/core/flat_index.hpp"
#include "exitcontrol/core/load.hpp"

namespace enclave::exitcontrol {
namespace {

using detail::in_quotes;
using detail::kNone;

// "x.csv:12:3 (column \"cost\"): message", as the loader words it. record is 0-based here.
Unexpected<Error> field_error(const csv::Document& rows, std::string_view file, std::size_t record,
                              std::size_t column, std::string_view message) {
  return fail(Errc::kInvalidArgument, std::string(file) + ":" + std::to_string(record + 1) + ":" +
                                          std::to_string(column + 1) + " (column " +
                                          in_quotes(rows.header()[column]) +
                                          "): " + std::string(message));
}

Expected<std::size_t> require_column(const csv::Document& rows, std::string_view file,
                                     const std::string& name, std::string_view role) {
  if (auto column = rows.column(name)) return *column;
  std::string columns;
  for (std::string_view h : rows.header())
    columns += (columns.empty() ? "" : ", ") + std::string(h);
  return fail(Errc::kInvalidArgument, std::string(file) + ": no column " + in_quotes(name) +
                                          " (named as " + std::string(role) +
                                          "); columns: " + columns);
}

// A dimension's categories in presentation order: numeric when every one is a number, else
// by bytes; the missing label last.
std::vector<std::uint32_t> presentation_order(const std::vector<std::string>& labels,
                                              std::optional<std::uint32_t> missing) {
  std::vector<std::uint32_t> order;
  std::vector<double> number(labels.size(), 0);
  bool numeric = true;
  for (std::uint32_t i = 0; i < labels.size(); ++i) {
    if (missing == i) continue;
    order.push_back(i);
    const auto v = parse_value(labels[i]);
    numeric = numeric && v && !is_missing(*v);
    if (numeric) number[i] = *v;
  }
  std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (numeric && number[a] != number[b]) return number[a] < number[b];
    return labels[a] < labels[b];
  });
  if (missing) order.push_back(*missing);
  return order;
}

// Dimension d of the tabulation from its column: the categories in presentation order under
// the total label, and each row's category written into leaf[r * dims + d].
Expected<Dimension> build_dimension(const csv::Document& rows, std::string_view file,
                                    std::size_t column, const TabulateSpec& spec, std::size_t d,
                                    std::vector<std::uint32_t>& leaf) {
  const std::size_t dims = spec.dimensions.size();
  const std::size_t n = leaf.size() / dims;
  detail::StringIndex index;
  for (std::size_t r = 0; r < n; ++r) {
    const std::string_view label = rows.field(r + 1, column);
    if (label == spec.total_label) {
      return field_error(rows, file, r + 1, column,
                         "the category " + in_quotes(label) +
                             " is the total label; a tabulated dimension cannot contain it");
    }
    leaf[r * dims + d] = index.intern(label);
  }
  std::vector<std::string> labels(index.values().begin(), index.values().end());
  std::optional<std::uint32_t> missing;
  for (std::uint32_t i = 0; i < labels.size(); ++i) {
    if (labels[i].empty()) missing = i;
  }
  if (missing) {
    if (std::find(labels.begin(), labels.end(), spec.missing_label) != labels.end()) {
      return fail(Errc::kInvalidArgument,
                  std::string(file) + ": column " + in_quotes(spec.dimensions[d]) +
                      " has both empty fields and the category " + in_quotes(spec.missing_label) +
                      ", which stands for them");
    }
    labels[*missing] = spec.missing_label;
  }
  const std::vector<std::uint32_t> order = presentation_order(labels, missing);
  std::vector<std::uint32_t> position(labels.size());
  Dimension dim;
  dim.name = spec.dimensions[d];
  for (std::uint32_t p = 0; p < order.size(); ++p) {
    position[order[p]] = p;
    dim.intern(labels[order[p]]);
  }
  const std::uint32_t total = dim.intern(spec.total_label);
  for (std::uint32_t p = 0; p < order.size(); ++p) dim.set_parent(p, total);
  for (std::size_t r = 0; r < n; ++r) leaf[r * dims + d] = position[leaf[r * dims + d]];
  return dim;
}

// The rows as the accumulation reads them: each row's category in every dimension, its leaf
// cell and its value (kMissing when it has none or the statistic is a count).
struct RowSet {
  std::size_t dims = 0;
  std::vector<std::uint32_t> leaf;  // row i, dimension d at i * dims + d
  std::vector<std::uint64_t> leaf_cell;
  std::vector<double> value;

  std::size_t size() const { return value.size(); }
};

// The full cross-classification: cell index = mixed-radix number of the coordinates,
// dimension 0 most significant; the last category of each dimension is its total.
struct Grid {
  std::vector<std::uint64_t> extent;
  std::vector<std::uint64_t> stride;

  // Every cell row i falls in: its leaf cell and each margin over it, 2^dims in all, visited
  // in Gray-code order so each step swaps one coordinate for its total.
  template <class Visit>
  void for_each_cell(const RowSet& rows, std::size_t i, const Visit& visit) const {
    const std::size_t dims = extent.size();
    const std::uint32_t* leaf = rows.leaf.data() + i * dims;
    std::uint64_t at = rows.leaf_cell[i];
    visit(at);
    for (std::uint64_t step = 1; step < (std::uint64_t{1} << dims); ++step) {
      const auto d = static_cast<std::size_t>(std::countr_zero(step));
      const std::uint64_t gray = step ^ (step >> 1);
      const std::uint64_t leaf_part = leaf[d] * stride[d];
      const std::uint64_t total_part = (extent[d] - 1) * stride[d];
      at = (gray >> d & 1) ? at - leaf_part + total_part : at - total_part + leaf_part;
      visit(at);
    }
  }
};

// The rows reordered so that each id's rows are contiguous (rows whose id is kNone left out),
// so that a pass over the groups reads memory in order.
struct GroupedRows {
  RowSet rows;
  std::vector<std::uint32_t> offsets;  // group g: rows offsets[g] .. offsets[g + 1]
};

GroupedRows group_rows_by(const RowSet& rows, const std::vector<std::uint32_t>& ids,
                          std::size_t groups) {
  GroupedRows out;
  out.offsets.assign(groups + 1, 0);
  for (std::uint32_t g : ids)
    if (g != kNone) ++out.offsets[g + 1];
  for (std::size_t g = 0; g < groups; ++g) out.offsets[g + 1] += out.offsets[g];
  const std::size_t kept = out.offsets.back();
  const std::size_t dims = rows.dims;
  out.rows.dims = dims;
  out.rows.leaf.resize(kept * dims);
  out.rows.leaf_cell.resize(kept);
  out.rows.value.resize(kept);
  std::vector<std::uint32_t> next(out.offsets.begin(), out.offsets.end() - 1);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (ids[i] == kNone) continue;
    const std::uint32_t to = next[ids[i]]++;
    std::copy_n(rows.leaf.data() + i * dims, dims, out.rows.leaf.data() + std::size_t{to} * dims);
    out.rows.leaf_cell[to] = rows.leaf_cell[i];
    out.rows.value[to] = rows.value[i];
  }
  return out;
}

// The two largest contributions so far.
void add_contribution(double v, double& top1, double& top2) {
  if (v > top1) {
    top2 = top1;
    top1 = v;
  } else if (v > top2) {
    top2 = v;
  }
}

void append_number(std::string& out, double v) {
  if (is_missing(v)) return;  // an empty field
  if (v == 0) v = 0;          // no "-0"
  char buf[400];              // the longest fixed-notation double is 309 digits and a sign
  const auto written = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  out.append(buf, written.ptr);
}

// A TOML basic string.
std::string toml_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char buf[8];
          const auto code = static_cast<unsigned>(static_cast<unsigned char>(c));
          const char* hex = "0123456789ABCDEF";
          buf[0] = '\\';
          buf[1] = 'u';
          buf[2] = '0';
          buf[3] = '0';
          buf[4] = hex[code >> 4];
          buf[5] = hex[code & 15];
          out.append(buf, 6);
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

}  // namespace

const char* statistic_name(Statistic statistic) {
  switch (statistic) {
    case Statistic::kCount:
      return "count";
    case Statistic::kSum:
      return "sum";
    case Statistic::kMean:
      return "mean";
  }
  return "unknown";
}

std::optional<Statistic> statistic_from_name(std::string_view name) {
  for (Statistic s : {Statistic::kCount, Statistic::kSum, Statistic::kMean}) {
    if (name == statistic_name(s)) return s;
  }
  return std::nullopt;
}

Expected<Tabulation> tabulate(const csv::Document& rows, std::string_view file,
                              const TabulateSpec& spec) {
  const std::string where(file);
  if (spec.dimensions.empty())
    return fail(Errc::kInvalidArgument, where + ": tabulate needs at least one dimension");
  const bool counting = spec.statistic == Statistic::kCount;
  if (counting && !spec.value_column.empty()) {
    return fail(Errc::kInvalidArgument, where + ": a count takes no value column (" +
                                            in_quotes(spec.value_column) + " was named)");
  }
  if (!counting && spec.value_column.empty()) {
    return fail(Errc::kInvalidArgument,
                where + ": a " + statistic_name(spec.statistic) + " needs a value column");
  }
  if (spec.total_label.empty() || spec.missing_label.empty() ||
      spec.total_label == spec.missing_label) {
    return fail(Errc::kInvalidArgument,
                where + ": the total and missing labels must be distinct and not empty");
  }

  // Columns: every named one must exist, and none may serve twice.
  std::vector<std::size_t> used;
  auto claim = [&](const std::string& name, std::string_view role) -> Expected<std::size_t> {
    auto column = require_column(rows, file, name, role);
    if (!column) return column;
    if (std::find(used.begin(), used.end(), *column) != used.end()) {
      return fail(Errc::kInvalidArgument,
                  where + ": column " + in_quotes(name) + " is named twice");
    }
    used.push_back(*column);
    return column;
  };
  const std::size_t dims = spec.dimensions.size();
  std::vector<std::size_t> dim_columns;
  for (const std::string& name : spec.dimensions) {
    auto column = claim(name, "a dimension");
    if (!column) return error_of(column);
    dim_columns.push_back(*column);
  }
  auto optional_column = [&](const std::string& name,
                             std::string_view role) -> Expected<std::optional<std::size_t>> {
    if (name.empty()) return std::optional<std::size_t>{};
    auto column = claim(name, role);
    if (!column) return error_of(column);
    return std::optional<std::size_t>{*column};
  };
  auto value_column = optional_column(spec.value_column, "the value column");
  if (!value_column) return error_of(value_column);
  auto unit_column = optional_column(spec.unit_column, "the unit column");
  if (!unit_column) return error_of(unit_column);
  auto institution_column = optional_column(spec.institution_column, "the institution column");
  if (!institution_column) return error_of(institution_column);
  auto insurer_column = optional_column(spec.insurer_column, "the insurer column");
  if (!insurer_column) return error_of(insurer_column);

  const std::size_t n = rows.records() == 0 ? 0 : rows.records() - 1;
  if (n > std::numeric_limits<std::uint32_t>::max() - 2)
    return fail(Errc::kInvalidArgument, where + ": too many rows");

  Tabulation out;
  out.rows = n;
  out.statistic = spec.statistic;
  out.total_label = spec.total_label;
  Table& table = out.table;
  table.name = spec.output_name;
  table.kind = counting ? TableKind::kFrequency : TableKind::kMagnitude;

  // Dimensions: categories sorted, the total as their parent.
  RowSet data;
  data.dims = dims;
  data.leaf.resize(n * dims);
  Grid grid;
  grid.extent.resize(dims);
  for (std::size_t d = 0; d < dims; ++d) {
    auto dim = build_dimension(rows, file, dim_columns[d], spec, d, data.leaf);
    if (!dim) return error_of(dim);
    grid.extent[d] = dim->categories.size();
    table.dims.push_back(std::move(dim).value());
  }
  std::uint64_t cells = 1;
  for (std::uint64_t e : grid.extent) {
    if (cells > std::min<std::uint64_t>(spec.max_cells, kNone - 1) / e) {
      return fail(Errc::kInvalidArgument,
                  where + ": the table would have more than " + std::to_string(spec.max_cells) +
                      " cells (every combination of the dimensions' categories and totals)");
    }
    cells *= e;
  }
  grid.stride.assign(dims, 1);
  for (std::size_t d = dims - 1; d-- > 0;) grid.stride[d] = grid.stride[d + 1] * grid.extent[d + 1];
  data.leaf_cell.resize(n);
  for (std::size_t r = 0; r < n; ++r) {
    std::uint64_t at = 0;
    for (std::size_t d = 0; d < dims; ++d) at += data.leaf[r * dims + d] * grid.stride[d];
    data.leaf_cell[r] = at;
  }

  // Output columns: dimensions, value, then the statistics that apply.
  out.value_name = counting ? std::string("count")
                            : std::string(statistic_name(spec.statistic)) + "_" + spec.value_column;
  out.has_contributors_column = !counting || unit_column->has_value();
  out.has_top_columns = !counting;
  out.has_institutions = institution_column->has_value();
  out.has_insurers = insurer_column->has_value();
  for (const std::string& stat :
       {out.value_name, std::string("contributors"), std::string("top1"), std::string("top2"),
        std::string("institutions"), std::string("insurers")}) {
    if (std::find(spec.dimensions.begin(), spec.dimensions.end(), stat) != spec.dimensions.end()) {
      return fail(Errc::kInvalidArgument, where + ": a dimension named " + in_quotes(stat) +
                                              " would clash with the output column of that name");
    }
  }
  {
    std::vector<std::uint32_t> coordinates(dims);
    const auto value_field = static_cast<std::uint32_t>(dims + 1);
    for (std::uint64_t i = 0; i < cells; ++i) {
      for (std::size_t d = 0; d < dims; ++d)
        coordinates[d] = static_cast<std::uint32_t>(i / grid.stride[d] % grid.extent[d]);
      table.add_cell(coordinates, {static_cast<std::uint32_t>(i + 2), value_field});
    }
  }

  // Values.
  data.value.assign(n, kMissing);
  if (*value_column) {
    for (std::size_t r = 0; r < n; ++r) {
      const std::string_view field = rows.field(r + 1, **value_column);
      const auto v = parse_value(field);
      if (!v) {
        return field_error(rows, file, r + 1, **value_column,
                           "expected a number, found " + in_quotes(field));
      }
      data.value[r] = *v;
      out.missing_values += is_missing(*v);
    }
  }

  std::vector<double> row_count(cells, 0), with_value(cells, 0), sum(cells, 0);
  std::vector<double> top1(cells, 0), top2(cells, 0), contributors(cells, 0);
  const bool per_row_contributions = !unit_column->has_value();
  for (std::size_t r = 0; r < n; ++r) {
    const double v = data.value[r];
    const bool has_value = !is_missing(v);
    grid.for_each_cell(data, r, [&](std::uint64_t c) {
      row_count[c] += 1;
      if (!has_value) return;
      with_value[c] += 1;
      sum[c] += v;
      if (per_row_contributions) add_contribution(v, top1[c], top2[c]);
    });
  }

  // Per distinct id and cell: rows grouped by id, each group's cells stamped once.
  auto code_ids = [&](std::size_t column, bool empty_is_own_id, std::size_t& groups) {
    detail::StringIndex index;
    std::vector<std::uint32_t> ids(n);
    std::vector<std::size_t> anonymous;
    for (std::size_t r = 0; r < n; ++r) {
      const std::string_view id = rows.field(r + 1, column);
      if (id.empty()) {
        ids[r] = kNone;
        if (empty_is_own_id) anonymous.push_back(r);
      } else {
        ids[r] = index.intern(id);
      }
    }
    groups = index.size();
    for (std::size_t r : anonymous) ids[r] = static_cast<std::uint32_t>(groups++);
    return ids;
  };
  // visit(cell, sum of the group's values in the cell, whether any of them had a value)
  auto per_group_and_cell = [&](const std::vector<std::uint32_t>& ids, std::size_t groups,
                                auto&& visit) {
    const GroupedRows grouped = group_rows_by(data, ids, groups);
    std::vector<std::uint32_t> stamp(cells, kNone);
    std::vector<double> scratch(cells, 0);
    std::vector<std::uint8_t> valued(cells, 0);
    std::vector<std::uint64_t> touched;
    for (std::uint32_t g = 0; g < groups; ++g) {
      touched.clear();
      for (std::uint32_t i = grouped.offsets[g]; i < grouped.offsets[g + 1]; ++i) {
        const double v = grouped.rows.value[i];
        grid.for_each_cell(grouped.rows, i, [&](std::uint64_t c) {
          if (stamp[c] != g) {
            stamp[c] = g;
            scratch[c] = 0;
            valued[c] = 0;
            touched.push_back(c);
          }
          if (!is_missing(v)) {
            scratch[c] += v;
            valued[c] = 1;
          }
        });
      }
      for (std::uint64_t c : touched) visit(c, scratch[c], valued[c] != 0);
    }
  };

  if (*unit_column) {
    // Rows without a unit id are units of their own: nothing says they share one.
    std::size_t groups = 0;
    const auto ids = code_ids(**unit_column, true, groups);
    per_group_and_cell(ids, groups, [&](std::uint64_t c, double unit_sum, bool valued) {
      if (counting) {
        contributors[c] += 1;
      } else if (valued) {
        contributors[c] += 1;
        add_contribution(unit_sum, top1[c], top2[c]);
      }
    });
  } else {
    contributors = counting ? row_count : with_value;
  }
  std::vector<double> institutions, insurers;
  for (auto [column, distinct] :
       {std::pair{*institution_column, &institutions}, std::pair{*insurer_column, &insurers}}) {
    if (!column) continue;
    std::size_t groups = 0;
    const auto ids = code_ids(*column, false, groups);
    distinct->assign(cells, 0);
    per_group_and_cell(ids, groups, [&](std::uint64_t c, double, bool) { (*distinct)[c] += 1; });
  }

  out.sums = counting ? row_count : sum;
  for (std::uint64_t c = 0; c < cells; ++c) {
    switch (spec.statistic) {
      case Statistic::kCount:
        table.value[c] = row_count[c];
        break;
      case Statistic::kSum:
        table.value[c] = sum[c];
        break;
      case Statistic::kMean:
        table.value[c] = contributors[c] > 0 ? sum[c] / contributors[c] : kMissing;
        break;
    }
    table.contributors[c] = contributors[c];
    if (!counting) {
      table.top1[c] = top1[c];
      table.top2[c] = top2[c];
    }
    if (!institutions.empty()) table.institutions[c] = institutions[c];
    if (!insurers.empty()) table.insurers[c] = insurers[c];
  }
  table.build_index();
  return out;
}

TabulatedFiles write_tabulation(const Tabulation& tabulation, std::string_view source_file) {
  const Table& table = tabulation.table;
  TabulatedFiles out;
  std::vector<std::string> header;
  for (const Dimension& dim : table.dims) header.push_back(dim.name);
  header.push_back(tabulation.value_name);
  if (tabulation.has_contributors_column) header.emplace_back("contributors");
  if (tabulation.has_top_columns) {
    header.emplace_back("top1");
    header.emplace_back("top2");
  }
  if (tabulation.has_institutions) header.emplace_back("institutions");
  if (tabulation.has_insurers) header.emplace_back("insurers");
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (i > 0) out.csv += ',';
    csv::append_field(out.csv, header[i]);
  }
  out.csv += '\n';
  for (std::size_t c = 0; c < table.size(); ++c) {
    const auto coordinates = table.coord(c);
    for (std::size_t d = 0; d < table.dims.size(); ++d) {
      csv::append_field(out.csv, table.dims[d].categories[coordinates[d]]);
      out.csv += ',';
    }
    append_number(out.csv, table.value[c]);
    auto column = [&](double v) {
      out.csv += ',';
      append_number(out.csv, v);
    };
    if (tabulation.has_contributors_column) column(table.contributors[c]);
    if (tabulation.has_top_columns) {
      column(table.top1[c]);
      column(table.top2[c]);
    }
    if (tabulation.has_institutions) column(table.institutions[c]);
    if (tabulation.has_insurers) column(table.insurers[c]);
    out.csv += '\n';
  }

  std::string& meta = out.meta_toml;
  std::string source(source_file);
  std::replace_if(
      source.begin(), source.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  meta += "# Tabulated inside the enclave from the rows of " + source + ": " +
          statistic_name(tabulation.statistic) + ".\n";
  if (tabulation.statistic == Statistic::kMean) {
    meta +=
        "# The value is a mean; contributors, top1 and top2 describe the sum behind it,\n"
        "# and the checks work on that sum (statistic = \"mean\").\n";
  }
  meta += "kind = " + toml_string(table_kind_name(table.kind)) + "\n";
  meta += "layout = \"long\"\n";
  meta += "total_label = " + toml_string(tabulation.total_label) + "\n";
  meta += "value = " + toml_string(tabulation.value_name) + "\n";
  if (tabulation.statistic == Statistic::kMean) meta += "statistic = \"mean\"\n";
  if (tabulation.has_contributors_column) meta += "contributors = \"contributors\"\n";
  if (tabulation.has_top_columns) meta += "top1 = \"top1\"\ntop2 = \"top2\"\n";
  if (tabulation.has_institutions) meta += "institutions = \"institutions\"\n";
  if (tabulation.has_insurers) meta += "insurers = \"insurers\"\n";
  for (const Dimension& dim : table.dims)
    meta += "\n[[dimension]]\nname = " + toml_string(dim.name) + "\n";
  return out;
}

}  // namespace enclave::exitcontrol
