#include "exitcontrol/core/meta.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/policy.hpp"

namespace enclave::exitcontrol {

std::string TableMeta::locate(const std::string& key) const {
  auto it = where.find(key);
  if (it != where.end()) return it->second;
  return (source.empty() ? std::string("metadata") : source) + ": " + key;
}

namespace {

constexpr double kMaxDof = 1e15;

std::string dimension_key(std::size_t i, std::string_view sub) {
  return "dimension[" + std::to_string(i) + "]." + std::string(sub);
}

Unexpected<Error> error_at(const TableMeta& meta, const std::string& key,
                           const std::string& message) {
  return fail(Errc::kInvalidArgument, meta.locate(key) + ": " + message);
}

Status check_hierarchy(const TableMeta& meta, std::size_t index) {
  const DimensionMeta& dim = meta.dimensions[index];
  const std::string key = dimension_key(index, "hierarchy");
  std::map<std::string, std::string> parent_of;
  for (const auto& [parent, children] : dim.hierarchy) {
    const std::string parent_key = key + "." + parent;
    if (parent.empty()) return error_at(meta, parent_key, "a parent category needs a name");
    if (children.empty()) {
      return error_at(meta, parent_key, "a parent category needs at least one child");
    }
    for (const auto& child : children) {
      if (child == meta.total_label) {
        return error_at(
            meta, parent_key,
            "\"" + child + "\" is the total label; it cannot be a part of \"" + parent + "\"");
      }
      auto [it, inserted] = parent_of.emplace(child, parent);
      if (!inserted) {
        return error_at(meta, parent_key,
                        "\"" + child + "\" is already a part of \"" + it->second +
                            "\"; a category has at most one parent");
      }
    }
  }
  // Walking up from every parent must end; a walk longer than the number of links is a cycle.
  for (const auto& [parent, children] : dim.hierarchy) {
    std::string at = parent;
    for (std::size_t steps = 0;; ++steps) {
      auto it = parent_of.find(at);
      if (it == parent_of.end()) break;
      if (steps > parent_of.size()) {
        return error_at(meta, key + "." + parent,
                        "the hierarchy is a cycle through \"" + parent + "\"");
      }
      at = it->second;
    }
  }
  return {};
}

bool is_named(const std::string& column) {
  return !column.empty();
}

// The sidecar's string keys, read and checked from this one list. Column keys belong to
// frequency and magnitude tables only.
struct StringKey {
  const char* key;
  std::string TableMeta::*member;
  bool tabular_only;
};
constexpr StringKey kStringKeys[] = {
    {"total_label", &TableMeta::total_label, false},
    {"column_dimension", &TableMeta::column_dimension, true},
    {"value", &TableMeta::value_column, true},
    {"contributors", &TableMeta::contributors_column, true},
    {"top1", &TableMeta::top1_column, true},
    {"top2", &TableMeta::top2_column, true},
    {"institutions", &TableMeta::institutions_column, true},
    {"insurers", &TableMeta::insurers_column, true},
    {"route", &TableMeta::route, true},
    {"residual_dof_column", &TableMeta::residual_dof_column, false},
    {"population", &TableMeta::population, false},
};

}  // namespace

Status validate_meta(const TableMeta& meta) {
  if (meta.total_label.empty()) return error_at(meta, "total_label", "must not be empty");
  const bool tabular = meta.kind == TableKind::kFrequency || meta.kind == TableKind::kMagnitude;
  const std::string kind = table_kind_name(meta.kind);

  // Keys that belong to other kinds are refused: a sidecar that says more than the loader
  // uses is probably describing a different file.
  if (!tabular) {
    if (!meta.dimensions.empty()) {
      return error_at(meta, "dimension", "a " + kind + " has no dimensions");
    }
    for (const auto& k : kStringKeys) {
      if (k.tabular_only && is_named(meta.*k.member)) {
        return error_at(meta, k.key, "applies to frequency and magnitude tables, not a " + kind);
      }
    }
    if (meta.layout == Layout::kWide) {
      return error_at(meta, "layout", "a " + kind + " is read in the long form only");
    }
  }
  if (meta.kind != TableKind::kExtract) {
    if (!meta.quasi_identifiers.empty()) {
      return error_at(meta, "quasi_identifiers", "applies to extracts, not a " + kind);
    }
    if (!meta.sensitive.empty()) {
      return error_at(meta, "sensitive", "applies to extracts, not a " + kind);
    }
  }
  if (meta.kind != TableKind::kModel) {
    if (meta.residual_dof) return error_at(meta, "residual_dof", "applies to models only");
    if (is_named(meta.residual_dof_column)) {
      return error_at(meta, "residual_dof_column", "applies to models only");
    }
  }

  if (tabular) {
    if (meta.dimensions.empty()) {
      return error_at(meta, "dimension", "a " + kind + " table needs at least one [[dimension]]");
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < meta.dimensions.size(); ++i) {
      const auto& dim = meta.dimensions[i];
      if (dim.name.empty()) return error_at(meta, dimension_key(i, "name"), "must not be empty");
      if (!names.insert(dim.name).second) {
        return error_at(meta, dimension_key(i, "name"),
                        "dimension \"" + dim.name + "\" is declared twice");
      }
      ENCLAVE_TRY(check_hierarchy(meta, i));
    }
    if (meta.kind == TableKind::kFrequency) {
      if (is_named(meta.top1_column)) {
        return error_at(meta, "top1", "applies to magnitude tables, not a frequency table");
      }
      if (is_named(meta.top2_column)) {
        return error_at(meta, "top2", "applies to magnitude tables, not a frequency table");
      }
    } else if (is_named(meta.route)) {
      return error_at(meta, "route", "applies to frequency tables of units, not a magnitude table");
    }
    if (meta.mean && (meta.kind != TableKind::kMagnitude || meta.layout != Layout::kLong)) {
      return error_at(meta, "statistic", "a mean applies to long-form magnitude tables only");
    }
    if (is_named(meta.route) && meta.route != "oral" && meta.route != "topical" &&
        meta.route != "injection") {
      return error_at(meta, "route",
                      "expected one of oral, topical, injection, found \"" + meta.route + "\"");
    }
    if (meta.layout == Layout::kLong) {
      if (is_named(meta.column_dimension)) {
        return error_at(meta, "column_dimension", "applies to the wide layout only");
      }
      if (!is_named(meta.value_column)) {
        return error_at(meta, "value", "a long-form " + kind + " table needs its value column");
      }
      if (meta.kind == TableKind::kMagnitude) {
        for (const auto& [key, column] :
             {std::pair<const char*, const std::string*>{"contributors", &meta.contributors_column},
              {"top1", &meta.top1_column},
              {"top2", &meta.top2_column}}) {
          if (!is_named(*column)) {
            return error_at(meta, key,
                            "a magnitude table needs this column (the dominance and threshold "
                            "rules read it)");
          }
        }
      }
      for (std::size_t i = 0; i < meta.dimensions.size(); ++i) {
        const auto& name = meta.dimensions[i].name;
        for (const std::string* column :
             {&meta.value_column, &meta.contributors_column, &meta.top1_column, &meta.top2_column,
              &meta.institutions_column, &meta.insurers_column}) {
          if (*column == name) {
            return error_at(meta, dimension_key(i, "name"),
                            "column \"" + name + "\" cannot be both a dimension and a value");
          }
        }
      }
    } else {
      if (!is_named(meta.column_dimension)) {
        return error_at(meta, "column_dimension",
                        "a wide-form table needs the dimension its column headers belong to");
      }
      if (!names.contains(meta.column_dimension)) {
        return error_at(meta, "column_dimension",
                        "\"" + meta.column_dimension + "\" is not a declared [[dimension]]");
      }
      for (const auto& [key, column] :
           {std::pair<const char*, const std::string*>{"value", &meta.value_column},
            {"contributors", &meta.contributors_column},
            {"top1", &meta.top1_column},
            {"top2", &meta.top2_column},
            {"institutions", &meta.institutions_column},
            {"insurers", &meta.insurers_column}}) {
        if (is_named(*column)) {
          return error_at(meta, key,
                          "applies to the long layout only (a wide table holds one value per "
                          "cell)");
        }
      }
    }
  }

  if (meta.kind == TableKind::kExtract) {
    if (meta.quasi_identifiers.empty()) {
      return error_at(meta, "quasi_identifiers",
                      "an extract needs its quasi-identifier columns for k-anonymity");
    }
    std::set<std::string> qis;
    for (const auto& qi : meta.quasi_identifiers) {
      if (qi.empty()) return error_at(meta, "quasi_identifiers", "a column name is empty");
      if (!qis.insert(qi).second) {
        return error_at(meta, "quasi_identifiers", "\"" + qi + "\" is listed twice");
      }
    }
    std::set<std::string> sensitive;
    for (const auto& s : meta.sensitive) {
      if (s.empty()) return error_at(meta, "sensitive", "a column name is empty");
      if (qis.contains(s)) {
        return error_at(meta, "sensitive",
                        "\"" + s + "\" is also a quasi-identifier; a column is one or the other");
      }
      if (!sensitive.insert(s).second) {
        return error_at(meta, "sensitive", "\"" + s + "\" is listed twice");
      }
    }
  }

  if (meta.kind == TableKind::kModel) {
    if (meta.residual_dof && is_named(meta.residual_dof_column)) {
      return error_at(meta, "residual_dof_column",
                      "give residual_dof or residual_dof_column, not both");
    }
    if (!meta.residual_dof && !is_named(meta.residual_dof_column)) {
      return error_at(meta, "residual_dof",
                      "a model needs its residual degrees of freedom (residual_dof, or "
                      "residual_dof_column naming the column that holds them)");
    }
    if (meta.residual_dof && !(*meta.residual_dof >= 0 && *meta.residual_dof <= kMaxDof)) {
      return error_at(meta, "residual_dof", "must be a non-negative number");
    }
  }

  if (meta.population.empty()) return error_at(meta, "population", "must not be empty");
  for (const auto& [dimension, categories] : meta.filter) {
    if (categories.empty()) {
      return error_at(meta, "filter." + dimension,
                      "an empty filter would count nothing; list the categories counted");
    }
  }
  return {};
}

namespace {

Expected<TableMeta> meta_from(const policy::Document& document) {
  const policy::Table root = document.root();
  ENCLAVE_TRY(root.reject_unknown(
      {"kind", "layout", "total_label", "column_dimension", "value", "contributors", "top1", "top2",
       "institutions", "insurers", "route", "statistic", "residual_dof", "residual_dof_column",
       "quasi_identifiers", "sensitive", "population", "dimension", "filter"}));

  TableMeta meta;
  meta.source = document.source();
  for (const auto& key : root.keys()) meta.where[key] = root.where(key);

  auto kind_name = root.string("kind");
  if (!kind_name) return error_of(kind_name);
  auto kind = table_kind_from_name(*kind_name);
  if (!kind) {
    return fail(root.error_at(
        "kind",
        "expected one of frequency, magnitude, extract, model, found \"" + *kind_name + "\""));
  }
  meta.kind = *kind;

  auto statistic = root.string_or("statistic", "sum");
  if (!statistic) return error_of(statistic);
  if (*statistic != "sum" && *statistic != "mean") {
    return fail(root.error_at("statistic", "expected sum or mean, found \"" + *statistic + "\""));
  }
  meta.mean = *statistic == "mean";

  auto layout = root.string_or("layout", "long");
  if (!layout) return error_of(layout);
  if (*layout == "long") {
    meta.layout = Layout::kLong;
  } else if (*layout == "wide") {
    meta.layout = Layout::kWide;
  } else {
    return fail(root.error_at("layout", "expected long or wide, found \"" + *layout + "\""));
  }

  for (const auto& k : kStringKeys) {
    std::string& field = meta.*k.member;
    auto v = root.string_or(k.key, field);
    if (!v) return error_of(v);
    if (root.contains(k.key) && v->empty()) {
      return fail(root.error_at(k.key, "must not be empty"));
    }
    field = std::move(*v);
  }

  if (root.contains("residual_dof")) {
    auto dof = root.number_or("residual_dof", 0, 0, kMaxDof);
    if (!dof) return error_of(dof);
    meta.residual_dof = *dof;
  }
  auto qis = root.strings_or("quasi_identifiers", {});
  if (!qis) return error_of(qis);
  meta.quasi_identifiers = std::move(*qis);
  auto sensitive = root.strings_or("sensitive", {});
  if (!sensitive) return error_of(sensitive);
  meta.sensitive = std::move(*sensitive);

  auto dimensions = root.tables("dimension");
  if (!dimensions) return error_of(dimensions);
  for (std::size_t i = 0; i < dimensions->size(); ++i) {
    const policy::Table& table = (*dimensions)[i];
    ENCLAVE_TRY(table.reject_unknown({"name", "geography", "hierarchy"}));
    DimensionMeta dim;
    meta.where["dimension[" + std::to_string(i) + "]"] = table.where("name");
    for (const auto& key : table.keys()) meta.where[dimension_key(i, key)] = table.where(key);
    auto name = table.string("name");
    if (!name) return error_of(name);
    dim.name = std::move(*name);
    auto geography = table.string_or("geography", "");
    if (!geography) return error_of(geography);
    dim.geography = std::move(*geography);
    auto hierarchy = table.table("hierarchy");
    if (!hierarchy) return error_of(hierarchy);
    if (*hierarchy) {
      const policy::Table& h = **hierarchy;
      for (const auto& parent : h.keys()) {
        meta.where[dimension_key(i, "hierarchy." + parent)] = h.where(parent);
        auto children = h.strings_or(parent, {});
        if (!children) return error_of(children);
        dim.hierarchy[parent] = std::move(*children);
      }
    }
    meta.dimensions.push_back(std::move(dim));
  }

  auto filter = root.table("filter");
  if (!filter) return error_of(filter);
  if (*filter) {
    const policy::Table& f = **filter;
    for (const auto& dimension : f.keys()) {
      meta.where["filter." + dimension] = f.where(dimension);
      auto categories = f.strings_or(dimension, {});
      if (!categories) return error_of(categories);
      meta.filter[dimension] = std::move(*categories);
    }
  }

  ENCLAVE_TRY(validate_meta(meta));
  return meta;
}

}  // namespace

Expected<TableMeta> parse_meta(std::string_view text, const std::string& source_name) {
  auto document = policy::Document::parse(text, source_name);
  if (!document) return error_of(document);
  return meta_from(*document);
}

std::filesystem::path meta_path_for(const std::filesystem::path& file) {
  std::filesystem::path out = file;
  out += ".meta.toml";
  return out;
}

Expected<TableMeta> load_meta_for(const std::filesystem::path& file) {
  const std::filesystem::path path = meta_path_for(file);
  auto doc = policy::Document::load_file(path);
  if (!doc) {
    if (doc.error().code == Errc::kNotFound) {
      return fail(Errc::kNotFound, file.string() + ": no metadata sidecar " + path.string() +
                                       " (declare the table's kind and columns there)");
    }
    return error_of(doc);
  }
  return meta_from(*doc);
}

}  // namespace enclave::exitcontrol
