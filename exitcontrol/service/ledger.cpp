#include "exitcontrol/service/ledger.hpp"

#include <nlohmann/json.hpp>

#include "common/clock.hpp"

namespace enclave::exitcontrol {
namespace {

constexpr store::Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE releases (
  id          INTEGER PRIMARY KEY,
  project     TEXT NOT NULL,
  population  TEXT NOT NULL,
  measure     TEXT NOT NULL,
  name        TEXT NOT NULL,
  sha256      TEXT NOT NULL,
  released_at TEXT NOT NULL,
  request     TEXT NOT NULL,
  cells       INTEGER NOT NULL,
  suppressed  INTEGER NOT NULL,
  content     TEXT NOT NULL,  -- ReleasedTable as JSON
  UNIQUE (project, sha256)
);
CREATE INDEX releases_comparable ON releases (project, population, measure, id);
)sql"},
};

// Suppressed and unknown figures are JSON null.
nlohmann::json numbers(const std::vector<double>& values) {
  auto out = nlohmann::json::array();
  for (double v : values)
    out.push_back(is_missing(v) ? nlohmann::json(nullptr) : nlohmann::json(v));
  return out;
}

Expected<std::vector<double>> numbers_from(const nlohmann::json& array, std::size_t expect,
                                           const char* key) {
  if (!array.is_array() || array.size() != expect) {
    return fail(Errc::kCorrupt, std::string("ledger entry: \"") + key + "\" must hold " +
                                    std::to_string(expect) + " numbers");
  }
  std::vector<double> out;
  out.reserve(expect);
  for (const auto& v : array) {
    if (v.is_null()) {
      out.push_back(kMissing);
    } else if (v.is_number()) {
      out.push_back(v.get<double>());
    } else {
      return fail(Errc::kCorrupt, std::string("ledger entry: \"") + key + "\" holds a non-number");
    }
  }
  return out;
}

ReleaseRecord record_from(store::Statement& s) {
  ReleaseRecord r;
  r.id = s.column_int64(0);
  r.project = s.column_text(1);
  r.population = s.column_text(2);
  r.measure = s.column_text(3);
  r.name = s.column_text(4);
  r.sha256 = s.column_text(5);
  r.released_at = s.column_text(6);
  r.request = s.column_text(7);
  r.cells = static_cast<std::uint64_t>(s.column_int64(8));
  r.suppressed = static_cast<std::uint64_t>(s.column_int64(9));
  return r;
}

}  // namespace

std::string ReleasedTable::label(std::size_t cell) const {
  std::string out;
  for (std::size_t d = 0; d < dims.size(); ++d) {
    if (d) out += ", ";
    out += dims[d].name + "=" + dims[d].categories[coords[cell * dims.size() + d]];
  }
  for (const auto& [dim, categories] : filter) {
    out += out.empty() ? "" : ", ";
    out += dim + " in {";
    for (std::size_t i = 0; i < categories.size(); ++i) out += (i ? "," : "") + categories[i];
    out += "}";
  }
  return out;
}

ReleasedTable released_view(const Table& table, const TableMeta& meta,
                            std::span<const std::uint8_t> suppressed) {
  ReleasedTable r;
  r.name = table.name;
  r.population = meta.population;
  r.measure = table.kind == TableKind::kFrequency ? "count" : meta.value_column;
  r.total_label = meta.total_label;
  for (const auto& d : table.dims) r.dims.push_back({d.name, d.categories, d.parent});
  r.filter = meta.filter;
  r.coords = table.coords;
  r.value = table.value;
  r.contributors = table.contributors;
  r.published = table.value;
  for (std::size_t c = 0; c < table.size(); ++c) {
    if (c < suppressed.size() && suppressed[c]) r.published[c] = kMissing;
  }
  return r;
}

nlohmann::json to_json(const ReleasedTable& t) {
  nlohmann::json dims = nlohmann::json::array();
  for (const auto& d : t.dims) {
    dims.push_back({{"name", d.name}, {"categories", d.categories}, {"parent", d.parent}});
  }
  return {{"name", t.name},
          {"population", t.population},
          {"measure", t.measure},
          {"total_label", t.total_label},
          {"dimensions", dims},
          {"filter", t.filter},
          {"coords", t.coords},
          {"published", numbers(t.published)},
          {"contributors", numbers(t.contributors)}};
}

Expected<ReleasedTable> released_from_json(const nlohmann::json& j) {
  try {
    ReleasedTable t;
    t.name = j.at("name").get<std::string>();
    t.population = j.at("population").get<std::string>();
    t.measure = j.at("measure").get<std::string>();
    t.total_label = j.at("total_label").get<std::string>();
    for (const auto& d : j.at("dimensions")) {
      ReleasedTable::Dim dim{d.at("name").get<std::string>(),
                             d.at("categories").get<std::vector<std::string>>(),
                             d.at("parent").get<std::vector<std::int32_t>>()};
      if (dim.parent.size() != dim.categories.size()) {
        return fail(Errc::kCorrupt, "ledger entry " + t.name + ": dimension " + dim.name +
                                        " has a parent list of the wrong length");
      }
      for (auto p : dim.parent) {
        if (p < -1 || p >= static_cast<std::int32_t>(dim.categories.size())) {
          return fail(Errc::kCorrupt,
                      "ledger entry " + t.name + ": dimension " + dim.name + " has a bad parent");
        }
      }
      t.dims.push_back(std::move(dim));
    }
    t.filter = j.at("filter").get<std::map<std::string, std::vector<std::string>>>();
    t.coords = j.at("coords").get<std::vector<std::uint32_t>>();
    const std::size_t cells = t.dims.empty() ? 0 : t.coords.size() / t.dims.size();
    if (t.dims.empty() || t.coords.size() != cells * t.dims.size()) {
      return fail(Errc::kCorrupt, "ledger entry " + t.name + ": coordinates do not fit");
    }
    for (std::size_t i = 0; i < t.coords.size(); ++i) {
      if (t.coords[i] >= t.dims[i % t.dims.size()].categories.size()) {
        return fail(Errc::kCorrupt, "ledger entry " + t.name + ": coordinate out of range");
      }
    }
    auto published = numbers_from(j.at("published"), cells, "published");
    if (!published) return error_of(published);
    auto contributors = numbers_from(j.at("contributors"), cells, "contributors");
    if (!contributors) return error_of(contributors);
    t.published = std::move(*published);
    t.contributors = std::move(*contributors);
    t.value.assign(cells, kMissing);
    return t;
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kCorrupt, std::string("ledger entry: ") + e.what());
  }
}

Expected<Ledger> Ledger::open(const std::filesystem::path& path, store::OpenOptions options) {
  auto db = store::Database::open(path, kMigrations, options);
  if (!db) return error_of(db);
  return Ledger(std::move(db).value());
}

Expected<ReleaseRecord> Ledger::record(const std::string& project, const ReleasedTable& table,
                                       const std::string& sha256, const std::string& request) {
  if (project.empty()) return fail(Errc::kInvalidArgument, "a release needs a project");
  ReleaseRecord r;
  r.project = project;
  r.population = table.population;
  r.measure = table.measure;
  r.name = table.name;
  r.sha256 = sha256;
  r.released_at = utc_now_rfc3339();
  r.request = request;
  r.cells = table.size();
  for (double v : table.published) r.suppressed += is_missing(v) ? 1 : 0;
  auto s = db_.prepare(
      "INSERT INTO releases (project, population, measure, name, sha256, released_at, request, "
      "cells, suppressed, content) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
  if (!s) return error_of(s);
  const std::string content = to_json(table).dump();
  s->bind(1, r.project)
      .bind(2, r.population)
      .bind(3, r.measure)
      .bind(4, r.name)
      .bind(5, r.sha256)
      .bind(6, r.released_at)
      .bind(7, r.request)
      .bind(8, static_cast<std::int64_t>(r.cells))
      .bind(9, static_cast<std::int64_t>(r.suppressed))
      .bind(10, content);
  auto done = s->run();
  if (!done) {
    if (done.error().code == Errc::kAlreadyExists) {
      return fail(Errc::kAlreadyExists, "project " + project + " already released " + table.name +
                                            " (sha256 " + sha256.substr(0, 16) + "…)");
    }
    return error_of(done);
  }
  r.id = db_.last_insert_rowid();
  return r;
}

Expected<std::vector<ReleaseRecord>> Ledger::list(const std::string& project) {
  auto s = db_.prepare(
      "SELECT id, project, population, measure, name, sha256, released_at, request, cells, "
      "suppressed FROM releases WHERE ?1 = '' OR project = ?1 ORDER BY id");
  if (!s) return error_of(s);
  s->bind(1, project);
  std::vector<ReleaseRecord> out;
  for (;;) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    out.push_back(record_from(*s));
  }
  return out;
}

Expected<std::vector<ReleasedTable>> Ledger::comparable(const std::string& project,
                                                        const std::string& population,
                                                        const std::string& measure) {
  auto s = db_.prepare(
      "SELECT id, content FROM releases WHERE project = ?1 AND population = ?2 AND measure = ?3 "
      "ORDER BY id");
  if (!s) return error_of(s);
  s->bind(1, project).bind(2, population).bind(3, measure);
  std::vector<ReleasedTable> out;
  for (;;) {
    auto row = s->step();
    if (!row) return error_of(row);
    if (!*row) break;
    const auto id = s->column_int64(0);
    auto json = nlohmann::json::parse(s->column_text(1), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) {
      return fail(Errc::kCorrupt, db_.path().string() + ": release " + std::to_string(id) +
                                      " holds unreadable JSON");
    }
    auto table = released_from_json(json);
    if (!table) {
      return fail(Errc::kCorrupt, db_.path().string() + ": release " + std::to_string(id) + ": " +
                                      table.error().message);
    }
    out.push_back(std::move(table).value());
  }
  return out;
}

}  // namespace enclave::exitcontrol
