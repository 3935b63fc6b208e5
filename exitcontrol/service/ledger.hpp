// The per-project release ledger: every table that left the enclave, as released (suppressed
// cells unknown), with the contributor counts behind each cell kept inside. A new table is
// audited against every earlier release of the same project, population and measure
// (differencing.hpp), so that two individually safe tables cannot be subtracted to expose a
// small group. Lives in SQLite (state-dir/exitcontrol/ledger.db).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.hpp"
#include "common/store.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/core/table.hpp"

namespace enclave::exitcontrol {

// A table as the outside world sees it, plus what the enclave knows behind each cell.
struct ReleasedTable {
  std::string name;        // file name
  std::string population;  // what is counted (sidecar `population`)
  std::string measure;     // "count" for frequency tables, else the value column
  std::string total_label;
  struct Dim {
    std::string name;
    std::vector<std::string> categories;
    std::vector<std::int32_t> parent;  // -1 for a root
  };
  std::vector<Dim> dims;
  // Dimensions the table does not show but restricts (sidecar `filter`).
  std::map<std::string, std::vector<std::string>> filter;
  std::vector<std::uint32_t> coords;  // cell i, dimension d at coords[i * dims.size() + d]
  std::vector<double> published;      // kMissing where the cell was suppressed
  std::vector<double> contributors;   // known inside the enclave; kMissing when unknown
  std::vector<double> value;          // the true value (candidate tables only; kMissing in ledger)

  std::size_t size() const { return published.size(); }
  std::string label(std::size_t cell) const;
};

// The release view of a checked table: cells flagged in suppressed are not published.
ReleasedTable released_view(const Table& table, const TableMeta& meta,
                            std::span<const std::uint8_t> suppressed);

nlohmann::json to_json(const ReleasedTable& table);
Expected<ReleasedTable> released_from_json(const nlohmann::json& json);

struct ReleaseRecord {
  std::int64_t id = 0;
  std::string project, population, measure, name, sha256, released_at, request;
  std::uint64_t cells = 0, suppressed = 0;
};

class Ledger {
 public:
  static Expected<Ledger> open(const std::filesystem::path& path, store::OpenOptions options = {});

  // Records a release. The same file (by SHA-256) recorded twice for a project is kAlreadyExists.
  Expected<ReleaseRecord> record(const std::string& project, const ReleasedTable& table,
                                 const std::string& sha256, const std::string& request);
  Expected<std::vector<ReleaseRecord>> list(const std::string& project);
  // Every earlier release of project over the same population and measure, oldest first.
  Expected<std::vector<ReleasedTable>> comparable(const std::string& project,
                                                  const std::string& population,
                                                  const std::string& measure);

 private:
  explicit Ledger(store::Database db) : db_(std::move(db)) {}
  store::Database db_;
};

}  // namespace enclave::exitcontrol
