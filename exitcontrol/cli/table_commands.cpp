// audit, tabulate and ledger: the attacker audit of a table someone published, tables built
// from row-level data inside the enclave, and the per-project release ledger.
#include <iostream>

#include <nlohmann/json.hpp>

#include "common/files.hpp"
#include "exitcontrol/cli/commands.hpp"
#include "exitcontrol/core/csv.hpp"
#include "exitcontrol/core/tabulate.hpp"
#include "exitcontrol/lp/attacker.hpp"
#include "exitcontrol/service/checker.hpp"
#include "exitcontrol/service/ledger.hpp"

namespace enclave::exitcontrol::cli {
namespace {

// The metadata flags, when given, instead of the file's sidecar.
Expected<std::optional<TableMeta>> meta_of(const MetaFlags& flags) {
  if (!flags.given()) return std::optional<TableMeta>();
  auto meta = flags.to_meta();
  if (!meta) return error_of(meta);
  return std::optional<TableMeta>(std::move(meta).value());
}

Expected<LoadedTable> load_published(const std::filesystem::path& path, const MetaFlags& flags,
                                     const Profile& profile) {
  auto meta = meta_of(flags);
  if (!meta) return error_of(meta);
  return load_published_table(path, std::move(meta).value(), profile);
}

struct AuditOptions {
  std::filesystem::path file;
  MetaFlags meta;
};

void run_audit(const Context& context, const AuditOptions& options) {
  auto profile = context.load_profile();
  if (!profile) {
    exit_code() = enclave::cli::report_error(profile.error());
    return;
  }
  auto loaded = load_published(options.file, options.meta, *profile);
  if (!loaded) {
    exit_code() = enclave::cli::report_error(loaded.error());
    return;
  }
  std::vector<std::uint8_t> hidden(loaded->table.size(), 0);
  for (auto c : loaded->marked) hidden[c] = 1;
  auto audit = lp::audit_published(loaded->table, hidden, *profile);
  if (!audit) {
    exit_code() = enclave::cli::report_error(audit.error());
    return;
  }
  std::size_t disclosed = 0;
  auto verdict = [&](const lp::PublishedCellAudit& a) -> std::string {
    if (a.exact) return "disclosed: exact";
    if (!a.protectable) return "disclosed: interval too narrow";
    if (a.known_small) return "ok (known to be small)";
    return "ok";
  };
  for (const auto& a : *audit) disclosed += (a.exact || !a.protectable) ? 1 : 0;
  if (context.json) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& a : *audit) {
      cells.push_back({{"cell", loaded->table.label(a.cell)},
                       {"row", loaded->table.origin[a.cell].row},
                       {"lo", a.lo},
                       {"hi", a.hi},
                       {"exact", a.exact},
                       {"protectable", a.protectable},
                       {"known_small", a.known_small}});
    }
    std::cout << nlohmann::json{{"file", options.file.string()},
                                {"profile", profile->name},
                                {"suppressed", audit->size()},
                                {"disclosed", disclosed},
                                {"cells", cells}}
                     .dump(2)
              << "\n";
  } else {
    enclave::cli::TextTable t({"cell", "row", "attacker's lower", "upper", "verdict"});
    for (const auto& a : *audit) {
      t.add({loaded->table.label(a.cell), std::to_string(loaded->table.origin[a.cell].row),
             format_number(a.lo), std::isinf(a.hi) ? "unbounded" : format_number(a.hi),
             verdict(a)});
    }
    std::cout << options.file.filename().string() << ": " << audit->size()
              << " suppressed cells (marker \"" << profile->marker << "\"), " << disclosed
              << " recoverable from the published margins\n";
    if (!t.empty()) t.print(std::cout);
  }
  exit_code() = disclosed > 0 ? kExitFail : 0;
}

struct TabulateOptions {
  std::filesystem::path rows;
  std::filesystem::path out;
  std::vector<std::string> by;
  std::string stat = "count";
  std::string value, unit, institution, insurer;
  std::string population;
};

void run_tabulate(const Context& context, const TabulateOptions& options) {
  auto profile = context.load_profile();
  if (!profile) {
    exit_code() = enclave::cli::report_error(profile.error());
    return;
  }
  auto bytes = read_file(options.rows, profile->max_file_bytes);
  if (!bytes) {
    exit_code() = enclave::cli::report_error(bytes.error());
    return;
  }
  auto doc = csv::parse(*bytes);
  if (!doc) {
    exit_code() = enclave::cli::report_error(
        {Errc::kInvalidArgument, doc.error().describe(options.rows.string())});
    return;
  }
  TabulateSpec spec;
  spec.dimensions = options.by;
  spec.statistic = *statistic_from_name(options.stat);
  spec.value_column = options.value;
  spec.unit_column = options.unit;
  spec.institution_column = options.institution;
  spec.insurer_column = options.insurer;
  spec.max_cells = profile->max_cells;
  spec.output_name = options.out.filename().string();
  auto tab = tabulate(*doc, options.rows.string(), spec);
  if (!tab) {
    exit_code() = enclave::cli::report_error(tab.error());
    return;
  }
  auto files = write_tabulation(*tab, options.rows.filename().string());
  if (!options.population.empty()) {
    files.meta_toml = "population = \"" + options.population + "\"\n" + files.meta_toml;
  }
  auto written = write_file_atomically(options.out, files.csv, 0640);
  if (written) written = write_file_atomically(meta_path_for(options.out), files.meta_toml, 0640);
  if (!written) {
    exit_code() = enclave::cli::report_error(written.error());
    return;
  }
  std::cout << options.out.string() << ": " << enclave::cli::with_commas(tab->table.size())
            << " cells (" << statistic_name(tab->statistic) << " by";
  for (const auto& d : options.by) std::cout << " " << d;
  std::cout << ", with margins) from " << enclave::cli::with_commas(tab->rows) << " rows";
  if (tab->missing_values) std::cout << "; " << tab->missing_values << " rows had no value";
  std::cout << "\n" << meta_path_for(options.out).string() << ": its sidecar\n";
}

struct LedgerOptions {
  std::string project;
  std::vector<std::filesystem::path> files;
  std::string request;
  MetaFlags meta;
};

void run_ledger_record(const Context& context, const LedgerOptions& options) {
  auto profile = context.load_profile();
  if (!profile) {
    exit_code() = enclave::cli::report_error(profile.error());
    return;
  }
  std::error_code ec;
  std::filesystem::create_directories(context.ledger_path().parent_path(), ec);
  auto ledger = Ledger::open(context.ledger_path());
  if (!ledger) {
    exit_code() = enclave::cli::report_error(ledger.error());
    return;
  }
  enclave::cli::TextTable t({"id", "file", "population", "cells", "suppressed", "sha256"});
  auto meta = meta_of(options.meta);
  if (!meta) {
    exit_code() = enclave::cli::report_error(meta.error());
    return;
  }
  for (const auto& file : options.files) {
    auto r = record_released_file(*ledger, options.project, file, *meta, *profile, options.request);
    if (!r) {
      exit_code() = enclave::cli::report_error(r.error());
      return;
    }
    t.add({std::to_string(r->id), r->name, r->population, std::to_string(r->cells),
           std::to_string(r->suppressed), r->sha256.substr(0, 16)});
  }
  std::cout << "recorded in " << context.ledger_path().string() << " for project "
            << options.project << ":\n";
  t.print(std::cout);
}

void run_ledger_list(const Context& context, const LedgerOptions& options) {
  store::OpenOptions open;
  open.access = store::Access::kReadOnly;
  open.create = false;
  auto ledger = Ledger::open(context.ledger_path(), open);
  if (!ledger) {
    exit_code() = enclave::cli::report_error(ledger.error());
    return;
  }
  auto list = ledger->list(options.project);
  if (!list) {
    exit_code() = enclave::cli::report_error(list.error());
    return;
  }
  if (context.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *list) {
      out.push_back({{"id", r.id},
                     {"project", r.project},
                     {"population", r.population},
                     {"measure", r.measure},
                     {"file", r.name},
                     {"sha256", r.sha256},
                     {"released_at", r.released_at},
                     {"request", r.request},
                     {"cells", r.cells},
                     {"suppressed", r.suppressed}});
    }
    std::cout << out.dump(2) << "\n";
    return;
  }
  enclave::cli::TextTable t(
      {"id", "project", "released", "file", "population", "measure", "cells", "suppressed"});
  for (const auto& r : *list) {
    t.add({std::to_string(r.id), r.project, r.released_at, r.name, r.population, r.measure,
           std::to_string(r.cells), std::to_string(r.suppressed)});
  }
  if (t.empty()) {
    std::cout << "no releases" << (options.project.empty() ? "" : " for " + options.project)
              << "\n";
  } else {
    t.print(std::cout);
  }
}

}  // namespace

void add_audit(CLI::App& app, Context& context) {
  auto options = std::make_shared<AuditOptions>();
  auto* cmd = app.add_subcommand(
      "audit", "the attacker audit of a published table: can its hidden cells be recovered?");
  cmd->add_option("file", options->file, "the table as published, hidden cells as the marker")
      ->required()
      ->check(CLI::ExistingFile);
  options->meta.add_to(*cmd);
  cmd->callback([&context, options] { run_audit(context, *options); });
}

void add_tabulate(CLI::App& app, Context& context) {
  auto options = std::make_shared<TabulateOptions>();
  auto* cmd = app.add_subcommand(
      "tabulate", "build a table with margins and contributor statistics from row-level data");
  cmd->add_option("rows", options->rows, "row-level CSV")->required()->check(CLI::ExistingFile);
  cmd->add_option("--by", options->by, "dimension columns")->required()->delimiter(',');
  cmd->add_option("--stat", options->stat, "count (default), sum or mean")
      ->check(CLI::IsMember({"count", "sum", "mean"}));
  cmd->add_option("--value", options->value, "the column summed or averaged");
  cmd->add_option("--unit", options->unit, "the contributing unit (e.g. patient id)");
  cmd->add_option("--institution", options->institution, "institution id column (NDB rule)");
  cmd->add_option("--insurer", options->insurer, "insurer id column (NDB rule)");
  cmd->add_option("--population", options->population, "what the table counts (ledger)");
  cmd->add_option("--out", options->out, "the table to write (its sidecar goes beside it)")
      ->required();
  cmd->callback([&context, options] { run_tabulate(context, *options); });
}

void add_ledger(CLI::App& app, Context& context) {
  auto* ledger = app.add_subcommand("ledger", "the per-project release ledger");
  ledger->require_subcommand(1);
  auto record = std::make_shared<LedgerOptions>();
  auto* rec = ledger->add_subcommand("record", "record released tables (as published)");
  rec->add_option("--project", record->project, "the project")->required();
  rec->add_option("--request", record->request, "the export request it answered");
  rec->add_option("files", record->files, "released tables, hidden cells as the marker")
      ->required()
      ->check(CLI::ExistingFile);
  record->meta.add_to(*rec);
  rec->callback([&context, record] { run_ledger_record(context, *record); });

  auto list = std::make_shared<LedgerOptions>();
  auto* ls = ledger->add_subcommand("list", "list releases");
  ls->add_option("--project", list->project, "only this project");
  ls->callback([&context, list] { run_ledger_list(context, *list); });
}

}  // namespace enclave::exitcontrol::cli
