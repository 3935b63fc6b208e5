// enclave-audit verify: is the log exactly what was sealed, and if not, which entries changed.
// enclave-audit verify-archive: does each archive file reproduce its own checkpoint, and do the
// archives chain into the live log.
#include <fstream>
#include <iostream>
#include <iterator>

#include "audit/cli/commands.hpp"
#include "audit/core/archive.hpp"
#include "audit/core/formats.hpp"
#include "audit/core/verify.hpp"
#include "audit/service/verify_input.hpp"
#include "common/files.hpp"

namespace enclave::audit::cli {

namespace {

std::string opt(const std::optional<std::uint64_t>& v) {
  return v ? std::to_string(*v) : "-";
}

struct VerifyOptions {
  std::vector<std::filesystem::path> offbox;
  bool no_offbox = false;
  double seal_grace_seconds = -1;  // < 0: twice the policy's checkpoint interval plus 5 s
};

nlohmann::json report_json(const verify::Report& r, const std::string& database) {
  nlohmann::json findings = nlohmann::json::array();
  for (const auto& f : r.findings) {
    nlohmann::json j = {{"kind", verify::finding_name(f.kind)}, {"detail", f.detail}};
    j["index"] = f.index ? nlohmann::json(*f.index) : nlohmann::json();
    j["db_index"] = f.db_index ? nlohmann::json(*f.db_index) : nlohmann::json();
    findings.push_back(j);
  }
  nlohmann::json out = {{"database", database},
                        {"intact", r.clean()},
                        {"archived", r.archived},
                        {"live_entries", r.live_entries},
                        {"genuine_checkpoints", r.genuine_checkpoints},
                        {"unsealed", r.unsealed},
                        {"entry_level", r.entry_level},
                        {"findings", findings}};
  if (r.latest) {
    out["latest_checkpoint"] = {{"size", r.latest->size},
                                {"root", base64_encode(r.latest->root)},
                                {"time", format_time_us(r.latest_time_us)},
                                {"where", r.latest_where}};
  }
  if (r.unsealed) out["oldest_unsealed"] = format_time_us(r.oldest_unsealed_time_us);
  return out;
}

void print_report(const verify::Report& r, const std::string& database, const note::Verifier& key,
                  const std::vector<std::pair<std::string, std::uint64_t>>& copies) {
  std::cout << "audit log     " << database << "\n"
            << "verifier key  " << key.verifier_key() << "\n"
            << "entries       " << enclave::cli::with_commas(r.live_entries) << " live, "
            << enclave::cli::with_commas(r.archived) << " archived\n";
  if (r.latest) {
    std::cout << "sealed        " << enclave::cli::with_commas(r.latest->size)
              << " entries by the checkpoint of " << format_time_us(r.latest_time_us) << " ("
              << r.latest_where << "), " << r.genuine_checkpoints << " genuine checkpoint copies\n";
  } else {
    std::cout << "sealed        nothing: no genuine checkpoint\n";
  }
  std::cout << "off-box       " << (copies.empty() ? std::string("none given") : "");
  for (std::size_t i = 0; i < copies.size(); ++i) {
    std::cout << (i ? ", " : "") << copies[i].first << " ("
              << enclave::cli::with_commas(copies[i].second) << " leaves)";
  }
  std::cout << "\n"
            << "named entries "
            << (r.entry_level ? "yes: every change is named by entry"
                              : "no: changes are bounded by checkpoints")
            << "\n";
  if (r.unsealed) {
    std::cout << "unsealed      " << enclave::cli::with_commas(r.unsealed) << " entries since "
              << format_time_us(r.oldest_unsealed_time_us) << "\n";
  }
  std::cout << "\n";
  if (r.clean()) {
    std::cout << "RESULT: intact. Every sealed entry is exactly as sealed"
              << (r.unsealed ? "; the newest entries await the next checkpoint.\n" : ".\n");
    return;
  }
  enclave::cli::TextTable table({"FINDING", "SEALED#", "ROW#", "DETAIL"});
  for (const auto& f : r.findings) {
    table.add({verify::finding_name(f.kind), opt(f.index), opt(f.db_index), f.detail});
  }
  table.print(std::cout);
  std::cout << "\nRESULT: " << r.findings.size()
            << (r.findings.size() == 1 ? " finding" : " findings")
            << ". The log is not as it was sealed.\n";
}

int run_verify(const Context& ctx, const VerifyOptions& opts) {
  auto config = ctx.config();
  if (!config) return enclave::cli::report_error(config.error());
  auto key = ctx.verifier();
  if (!key) return enclave::cli::report_error(key.error());
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());

  auto paths = opts.offbox;
  if (paths.empty() && !opts.no_offbox) paths = config->offbox_files;
  auto material = load_verify_material(*store, *key, paths);
  if (!material) return enclave::cli::report_error(material.error());
  verify::Input& in = material->input;
  in.now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  double grace = opts.seal_grace_seconds >= 0
                     ? opts.seal_grace_seconds
                     : 2 * std::chrono::duration<double>(config->checkpoint_every).count() + 5;
  in.seal_interval_us = static_cast<std::int64_t>(grace * 1e6);

  auto report = verify::run(in);
  report.findings.insert(report.findings.end(), material->unreadable.begin(),
                         material->unreadable.end());
  if (ctx.json) {
    std::cout << report_json(report, config->database.string()).dump(2) << "\n";
  } else {
    print_report(report, config->database.string(), *key, material->copies);
  }
  return report.clean() ? 0 : 1;
}

int run_verify_archives(const Context& ctx, const std::vector<std::filesystem::path>& files) {
  auto key = ctx.verifier();
  if (!key) return enclave::cli::report_error(key.error());
  enclave::cli::TextTable table({"ARCHIVE", "ENTRIES", "RESULT"});
  nlohmann::json results = nlohmann::json::array();
  bool all_good = true;
  std::optional<merkle::CompactRange> previous_end;
  auto add = [&](const std::string& file, const std::string& entries, const std::string& result,
                 bool good) {
    all_good = all_good && good;
    table.add({file, entries, result});
    results.push_back({{"file", file}, {"entries", entries}, {"ok", good}, {"result", result}});
  };
  for (const auto& path : files) {
    auto text = read_file(path);
    if (!text) {
      add(path.string(), "-", text.error().message, false);
      continue;
    }
    auto parsed = archive::parse(as_bytes(*text));
    if (!parsed) {
      add(path.string(), "-", "unreadable: " + parsed.error().describe(), false);
      continue;
    }
    auto entries = std::to_string(parsed->first) + " to " + std::to_string(parsed->end - 1);
    auto checked = archive::check(*parsed, *key);
    if (!checked) {
      add(path.string(), entries, "does not verify: " + checked.error(), false);
      previous_end.reset();
      continue;
    }
    if (previous_end && !(parsed->prefix == *previous_end)) {
      add(path.string(), entries, "verifies alone, but does not continue the previous archive",
          false);
    } else {
      add(path.string(), entries, "sealed and intact", true);
    }
    previous_end = *checked;
  }
  // The live log must build on the last archive given, when it is the newest one.
  if (auto store = ctx.open_store(); store && previous_end) {
    auto archives = store->archives();
    if (archives && !archives->empty() && archives->back().end == previous_end->size() &&
        !(archives->back().prefix == *previous_end)) {
      add("(live database)", "-", "does not build on the last archive", false);
    }
  }
  if (ctx.json) {
    std::cout << nlohmann::json{{"ok", all_good}, {"archives", results}}.dump(2) << "\n";
  } else {
    table.print(std::cout);
  }
  return all_good ? 0 : 1;
}

}  // namespace

void add_verify(CLI::App& app, Context& ctx) {
  auto opts = std::make_shared<VerifyOptions>();
  auto* verify = app.add_subcommand(
      "verify", "check the log against its signed checkpoints and off-box copies");
  verify->add_option("--offbox", opts->offbox,
                     "off-box copy to trust (repeatable; default: the files in audit.toml)");
  verify->add_flag("--no-offbox", opts->no_offbox, "use no off-box copy");
  verify->add_option("--seal-grace", opts->seal_grace_seconds,
                     "seconds an entry may stay unsealed before it is a finding");
  verify->callback([&ctx, opts] { exit_code() = run_verify(ctx, *opts); });

  auto files = std::make_shared<std::vector<std::filesystem::path>>();
  auto* archives = app.add_subcommand("verify-archive", "check sealed archive files, oldest first");
  archives->add_option("files", *files, "archive files")->required();
  archives->callback([&ctx, files] { exit_code() = run_verify_archives(ctx, *files); });
}

}  // namespace enclave::audit::cli
