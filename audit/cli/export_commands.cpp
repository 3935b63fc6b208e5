// enclave-audit export / verify-export / forward: events leaving the audit store, either with
// the inclusion proofs that let a recipient check them against a signed checkpoint, or as
// syslog / OCSF for a SIEM.
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "audit/cli/commands.hpp"
#include "audit/core/formats.hpp"
#include "audit/core/note.hpp"
#include "audit/core/tiles.hpp"
#include "audit/service/sinks.hpp"

namespace enclave::audit::cli {

namespace {

struct ExportOptions {
  Filters filters;
  std::string format = "jsonl";
  std::filesystem::path out;
  std::string to;  // forward: udp://HOST:PORT or unix://PATH
};

// Where output goes: a file when --out is given (written whole, then renamed), else stdout.
class Output {
 public:
  explicit Output(std::filesystem::path path) : path_(std::move(path)) {}
  std::ostream& stream() { return path_.empty() ? std::cout : buffer_; }
  Status finish() {
    if (path_.empty()) return {};
    auto tmp = path_;
    tmp += ".tmp";
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f << buffer_.str();
    f.close();
    if (!f) return fail(Errc::kIo, tmp.string() + ": write failed");
    std::error_code ec;
    std::filesystem::rename(tmp, path_, ec);
    if (ec) return fail(Errc::kIo, path_.string() + ": " + ec.message());
    return {};
  }

 private:
  std::filesystem::path path_;
  std::ostringstream buffer_;
};

std::string csv_field(std::string_view s) {
  bool quote = s.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) return std::string(s);
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string proof_text(const std::vector<merkle::Hash>& proof) {
  std::string out;
  for (const auto& h : proof) out += (out.empty() ? "" : ";") + base64_encode(h);
  return out;
}

// A signed checkpoint from the database, opened with the pinned key: the one of `size`, or
// the latest. nullopt when there is none (of that size, or at all).
struct SealedCheckpoint {
  note::Checkpoint checkpoint;
  std::string note;  // the signed note as stored
};
Expected<std::optional<SealedCheckpoint>> find_checkpoint(LogStore& store,
                                                          const note::Verifier& key,
                                                          std::optional<std::uint64_t> size) {
  auto checkpoints = store.checkpoints();
  if (!checkpoints) return error_of(checkpoints);
  const StoredCheckpoint* chosen = nullptr;
  for (const auto& c : *checkpoints) {
    if (!size || c.size == *size) chosen = &c;
  }
  if (!chosen) return std::optional<SealedCheckpoint>();
  auto opened = note::open_checkpoint(as_bytes(chosen->note), key, key.name());
  if (!opened) {
    return fail(Errc::kCorrupt, "the checkpoint of size " + std::to_string(chosen->size) +
                                    " does not verify (" + opened.error().describe() +
                                    "); run `enclave-audit verify`");
  }
  return std::optional<SealedCheckpoint>(SealedCheckpoint{*opened, chosen->note});
}

// Proofs read straight from the database (tiles.hpp): the stored tree nodes, and the
// compact range of the archived prefix in place of the leaves that are gone.
class StoredTree {
 public:
  static Expected<StoredTree> open(LogStore& store) {
    auto archives = store.archives();
    if (!archives) return error_of(archives);
    return StoredTree(store, archived_prefix(*archives));
  }
  tiles::NodeReader& reader() { return reader_; }
  tiles::KnownRanges known() const { return {prefix_ ? &*prefix_ : nullptr, nullptr}; }

 private:
  StoredTree(LogStore& store, std::optional<merkle::CompactRange> prefix)
      : reader_(store), prefix_(std::move(prefix)) {}
  StoreNodeReader reader_;
  std::optional<merkle::CompactRange> prefix_;
};

int run_export(const Context& ctx, const ExportOptions& o) {
  if (o.format != "jsonl" && o.format != "csv") {
    return enclave::cli::report_error({Errc::kInvalidArgument, "--format is jsonl or csv"});
  }
  auto query = o.filters.to_query();
  if (!query) return enclave::cli::report_error(query.error());
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  auto key = ctx.verifier();
  if (!key) return enclave::cli::report_error(key.error());
  auto latest = find_checkpoint(*store, *key, std::nullopt);
  if (!latest) return enclave::cli::report_error(latest.error());
  std::optional<note::Checkpoint> seal;
  if (*latest) seal = (*latest)->checkpoint;
  // Proofs come from the stored tree nodes: a few reads each, however large the log. The
  // stored nodes must reproduce the checkpoint, or the export stops here.
  auto tree = StoredTree::open(*store);
  if (!tree) return enclave::cli::report_error(tree.error());
  if (seal) {
    auto root = tiles::root(tree->reader(), seal->size, tree->known());
    if (!root || *root != seal->root) {
      return enclave::cli::report_error(
          {Errc::kCorrupt,
           "the stored tree does not reproduce the latest checkpoint; run "
           "`enclave-audit verify` before exporting"});
    }
  }
  auto events = store->query(*query);
  if (!events) return enclave::cli::report_error(events.error());

  Output output(o.out);
  std::ostream& out = output.stream();
  std::uint64_t unproven = 0;
  if (o.format == "jsonl") {
    nlohmann::json header = {{"type", "checkpoint"},
                             {"verifier_key", key->verifier_key()},
                             {"note", *latest ? (*latest)->note : ""}};
    out << header.dump() << "\n";
  } else {
    out << "index,time,type,outcome,actor_kind,actor,site,device,session,object,source,details,"
           "leaf,tree_size,proof\n";
  }
  for (const auto& s : *events) {
    const Event& e = s.event;
    auto leaf = encode_leaf(e);
    std::optional<std::vector<merkle::Hash>> proof;
    if (seal && s.index < seal->size) {
      auto p = tiles::inclusion_proof(tree->reader(), s.index, seal->size, tree->known());
      if (p &&
          merkle::verify_inclusion(s.index, seal->size, merkle::leaf_hash(leaf), *p, seal->root)) {
        proof = std::move(p).value();
      }
    }
    if (!proof) ++unproven;
    if (o.format == "jsonl") {
      nlohmann::json line = {
          {"type", "event"}, {"event", event_to_json(e, s.index)}, {"leaf", base64_encode(leaf)}};
      if (proof) {
        nlohmann::json hashes = nlohmann::json::array();
        for (const auto& h : *proof) hashes.push_back(base64_encode(h));
        line["proof"] = {{"tree_size", seal->size}, {"leaf_index", s.index}, {"hashes", hashes}};
      } else {
        line["proof"] = nullptr;
      }
      out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    } else {
      const std::string fields[] = {std::to_string(s.index),
                                    format_time_us(e.time_us),
                                    e.type,
                                    e.outcome,
                                    e.actor_kind,
                                    e.actor,
                                    e.site,
                                    e.device,
                                    e.session,
                                    e.object,
                                    e.source,
                                    e.details,
                                    base64_encode(leaf),
                                    proof ? std::to_string(seal->size) : "",
                                    proof ? proof_text(*proof) : ""};
      std::string row;
      for (const auto& f : fields) row += (row.empty() ? "" : ",") + csv_field(f);
      out << row << "\n";
    }
  }
  if (auto written = output.finish(); !written) return enclave::cli::report_error(written.error());
  if (o.format == "csv" && !o.out.empty() && *latest) {
    // CSV has no place for the checkpoint the proofs lead to: it goes beside the file.
    Output note(o.out.string() + ".checkpoint");
    note.stream() << (*latest)->note;
    if (auto written = note.finish(); !written) {
      return enclave::cli::report_error(written.error());
    }
  }
  std::cerr << "exported " << events->size() << " events";
  if (unproven) std::cerr << " (" << unproven << " not yet sealed, exported without a proof)";
  std::cerr << "\n";
  return 0;
}

// Checks one event line of an export against the checkpoint the export starts with (none when
// nothing was sealed yet). Returns the problem, if any; `proven` tells whether it had a proof.
std::optional<std::string> check_export_event(const nlohmann::json& j,
                                              const std::optional<note::Checkpoint>& seal,
                                              bool& proven) {
  proven = false;
  auto type = j.find("type");
  if (type == j.end() || *type != "event") return "not an event record";
  auto leaf_text = j.find("leaf");
  if (leaf_text == j.end() || !leaf_text->is_string()) return "the leaf is missing";
  auto leaf = base64_decode(leaf_text->get_ref<const std::string&>());
  if (!leaf) return "the leaf is not base64";
  auto event = decode_leaf(*leaf);
  if (!event) return "the leaf is not an event: " + event.error().describe();
  auto shown = j.find("event");
  if (shown == j.end() || !shown->is_object()) return "the event is missing";
  auto index_field = shown->find("index");
  if (index_field == shown->end() || !index_field->is_number_unsigned()) {
    return "the event has no index";
  }
  const auto index = index_field->get<std::uint64_t>();
  if (*shown != event_to_json(*event, index)) return "the event shown differs from its leaf";
  auto p = j.find("proof");
  if (p == j.end()) return "the proof is missing";
  if (p->is_null()) {
    if (seal && index < seal->size) {
      return "entry " + std::to_string(index) + " is sealed by the checkpoint but has no proof";
    }
    return std::nullopt;  // exported before it was sealed
  }
  if (!seal) return "a proof, but the export has no checkpoint";
  auto tree_size = p->is_object() ? p->find("tree_size") : p->end();
  auto leaf_index = p->is_object() ? p->find("leaf_index") : p->end();
  auto hashes_field = p->is_object() ? p->find("hashes") : p->end();
  if (!p->is_object() || tree_size == p->end() || leaf_index == p->end() ||
      hashes_field == p->end() || !hashes_field->is_array() || *tree_size != seal->size ||
      *leaf_index != index) {
    return "malformed proof";
  }
  std::vector<merkle::Hash> hashes;
  for (const auto& h : *hashes_field) {
    auto raw = h.is_string() ? base64_decode(h.get_ref<const std::string&>()) : std::nullopt;
    auto hash = raw ? merkle::hash_from_bytes(*raw) : std::nullopt;
    if (!hash) return "malformed proof";
    hashes.push_back(*hash);
  }
  auto ok =
      merkle::verify_inclusion(index, seal->size, merkle::leaf_hash(*leaf), hashes, seal->root);
  if (!ok) return "event " + std::to_string(index) + " is not in the log: " + ok.error().describe();
  proven = true;
  return std::nullopt;
}

// Checks a JSONL export: it starts with a checkpoint that verifies with the pinned key, and
// every event's leaf says what its line says and is in the checkpoint's tree.
int run_verify_export(const Context& ctx, const std::filesystem::path& file) {
  auto key = ctx.verifier();
  if (!key) return enclave::cli::report_error(key.error());
  std::ifstream in(file, std::ios::binary);
  if (!in) return enclave::cli::report_error({Errc::kNotFound, file.string() + ": cannot read it"});
  std::string line;
  std::size_t number = 0, proven = 0, unproven = 0;
  std::vector<std::string> problems;
  std::optional<note::Checkpoint> seal;
  while (std::getline(in, line)) {
    ++number;
    auto where = file.string() + " line " + std::to_string(number);
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (number == 1) {
      auto note = j.is_object() ? j.find("note") : j.end();
      if (!j.is_object() || j.value("type", nlohmann::json()) != "checkpoint" || note == j.end() ||
          !note->is_string()) {
        problems.push_back(where + ": the export does not start with its checkpoint");
        break;
      }
      if (note->get_ref<const std::string&>().empty()) continue;  // nothing was sealed
      auto opened =
          note::open_checkpoint(as_bytes(note->get_ref<const std::string&>()), *key, key->name());
      if (!opened) {
        problems.push_back(where + ": checkpoint: " + opened.error().describe());
        break;
      }
      seal = *opened;
      continue;
    }
    if (j.is_discarded() || !j.is_object()) {
      problems.push_back(where + ": not an export record");
      continue;
    }
    bool had_proof = false;
    if (auto problem = check_export_event(j, seal, had_proof)) {
      problems.push_back(where + ": " + *problem);
    } else {
      ++(had_proof ? proven : unproven);
    }
  }
  if (number == 0) problems.push_back(file.string() + ": empty, not an export");
  if (ctx.json) {
    std::cout << nlohmann::json{{"ok", problems.empty()},
                                {"proven", proven},
                                {"unproven", unproven},
                                {"problems", problems}}
                     .dump(2)
              << "\n";
  } else {
    for (const auto& p : problems) std::cout << "FAIL " << p << "\n";
    std::cout << proven << " events proven in the log sealed at size "
              << (seal ? std::to_string(seal->size) : "?") << ", " << unproven
              << " without a proof (not sealed when exported), " << problems.size()
              << " problems\n";
  }
  return problems.empty() ? 0 : 1;
}

// A checkpoint that must exist, for prove and consistency.
Expected<SealedCheckpoint> require_checkpoint(LogStore& store, const note::Verifier& key,
                                              std::optional<std::uint64_t> size) {
  auto found = find_checkpoint(store, key, size);
  if (!found) return error_of(found);
  if (!*found) {
    return fail(Errc::kNotFound, size ? "no checkpoint of size " + std::to_string(*size)
                                      : std::string("nothing is sealed yet"));
  }
  return std::move(**found);
}

void print_hashes(const char* label, const nlohmann::json& hashes) {
  for (std::size_t i = 0; i < hashes.size(); ++i) {
    std::cout << "  " << label << " " << (i < 10 ? " " : "") << i << "  "
              << hashes[i].get<std::string>() << "\n";
  }
}

// One entry's inclusion proof against a signed checkpoint: the latest, or the one of `size`.
int run_prove(const Context& ctx, std::uint64_t index, std::optional<std::uint64_t> size) {
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  auto key = ctx.verifier();
  if (!key) return enclave::cli::report_error(key.error());
  auto sealed = require_checkpoint(*store, *key, size);
  if (!sealed) return enclave::cli::report_error(sealed.error());
  const note::Checkpoint& seal = sealed->checkpoint;
  auto row = store->get(index);
  if (!row) return enclave::cli::report_error(row.error());
  if (!*row) {
    return enclave::cli::report_error(
        {Errc::kNotFound, "entry " + std::to_string(index) + " is not in the database"});
  }
  auto tree = StoredTree::open(*store);
  if (!tree) return enclave::cli::report_error(tree.error());
  auto proof = tiles::inclusion_proof(tree->reader(), index, seal.size, tree->known());
  if (!proof) {
    return enclave::cli::report_error({Errc::kInvalidArgument, proof.error().describe()});
  }
  auto leaf = encode_leaf((*row)->event);
  bool proven =
      merkle::verify_inclusion(index, seal.size, merkle::leaf_hash(leaf), *proof, seal.root)
          .has_value();
  nlohmann::json hashes = nlohmann::json::array();
  for (const auto& h : *proof) hashes.push_back(base64_encode(h));
  if (ctx.json) {
    std::cout << nlohmann::json{{"index", index},
                                {"tree_size", seal.size},
                                {"leaf", base64_encode(leaf)},
                                {"hashes", hashes},
                                {"verified", proven},
                                {"checkpoint", sealed->note}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "entry " << index << ": " << formats::summary((*row)->event) << "\n"
              << "sealed by the checkpoint of size " << seal.size << ", root "
              << base64_encode(seal.root) << "\n";
    print_hashes("path", hashes);
    std::cout << (proven ? "verified: the entry, as stored, is in the signed tree\n"
                         : "DOES NOT VERIFY: the entry or the stored tree was changed; run "
                           "`enclave-audit verify`\n");
  }
  return proven ? 0 : 1;
}

// The consistency proof between two signed checkpoints: the later tree extends the earlier
// one, so nothing sealed by the first was changed before the second was signed.
int run_consistency(const Context& ctx, std::uint64_t size1, std::optional<std::uint64_t> size2) {
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  auto key = ctx.verifier();
  if (!key) return enclave::cli::report_error(key.error());
  auto older = require_checkpoint(*store, *key, size1);
  if (!older) return enclave::cli::report_error(older.error());
  auto newer = require_checkpoint(*store, *key, size2);
  if (!newer) return enclave::cli::report_error(newer.error());
  const note::Checkpoint& from = older->checkpoint;
  const note::Checkpoint& to = newer->checkpoint;
  if (from.size > to.size) {
    return enclave::cli::report_error(
        {Errc::kInvalidArgument, "the first size must not exceed the second"});
  }
  auto tree = StoredTree::open(*store);
  if (!tree) return enclave::cli::report_error(tree.error());
  auto proof = tiles::consistency_proof(tree->reader(), from.size, to.size, tree->known());
  if (!proof) return enclave::cli::report_error({Errc::kInvalidArgument, proof.error().describe()});
  auto checked = merkle::verify_consistency(from.size, to.size, *proof, from.root, to.root);
  nlohmann::json hashes = nlohmann::json::array();
  for (const auto& h : *proof) hashes.push_back(base64_encode(h));
  if (ctx.json) {
    std::cout << nlohmann::json{{"size1", from.size},
                                {"size2", to.size},
                                {"hashes", hashes},
                                {"verified", checked.has_value()}}
                     .dump(2)
              << "\n";
  } else {
    std::cout << "from the checkpoint of size " << from.size << " (root "
              << base64_encode(from.root) << ")\nto the checkpoint of size " << to.size << " (root "
              << base64_encode(to.root) << ")\n";
    print_hashes("proof", hashes);
    std::cout << (checked ? "verified: the later log extends the earlier one unchanged\n"
                          : "DOES NOT VERIFY: " + checked.error().describe() + "\n");
  }
  return checked ? 0 : 1;
}

int run_forward(const Context& ctx, const ExportOptions& o) {
  if (o.format != "syslog" && o.format != "ocsf") {
    return enclave::cli::report_error({Errc::kInvalidArgument, "--format is syslog or ocsf"});
  }
  auto query = o.filters.to_query();
  if (!query) return enclave::cli::report_error(query.error());
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  auto events = store->query(*query);
  if (!events) return enclave::cli::report_error(events.error());
  formats::SyslogOptions options;
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) == 0) options.hostname = host;
  std::optional<SyslogSink> sink;
  if (!o.to.empty()) {
    auto opened = SyslogSink::open(o.to, options);
    if (!opened) return enclave::cli::report_error(opened.error());
    sink = std::move(opened).value();
  }
  Output output(o.out);
  for (const auto& s : *events) {
    std::string message = o.format == "syslog" ? formats::rfc5424(s.event, s.index, options)
                                               : formats::ocsf(s.event, s.index).dump();
    if (sink) {
      if (auto sent = sink->send(message); !sent) return enclave::cli::report_error(sent.error());
    } else {
      output.stream() << message << "\n";
    }
  }
  if (auto written = output.finish(); !written) return enclave::cli::report_error(written.error());
  std::cerr << "forwarded " << events->size() << " events as " << o.format << "\n";
  return 0;
}

}  // namespace

void add_export(CLI::App& app, Context& ctx) {
  auto exp = std::make_shared<ExportOptions>();
  auto* export_cmd =
      app.add_subcommand("export", "events with inclusion proofs against the latest checkpoint");
  exp->filters.add_to(*export_cmd);
  export_cmd->add_option("--format", exp->format, "jsonl or csv")->capture_default_str();
  export_cmd->add_option("--out", exp->out, "file to write (default: standard output)");
  export_cmd->callback([&ctx, exp] { exit_code() = run_export(ctx, *exp); });

  auto file = std::make_shared<std::filesystem::path>();
  auto* check = app.add_subcommand("verify-export", "check a JSONL export's proofs");
  check->add_option("file", *file, "the export")->required();
  check->callback([&ctx, file] { exit_code() = run_verify_export(ctx, *file); });

  auto index = std::make_shared<std::uint64_t>(0);
  auto size = std::make_shared<std::optional<std::uint64_t>>();
  auto* prove = app.add_subcommand("prove", "one entry's inclusion proof, checked");
  prove->add_option("index", *index, "the entry's index")->required();
  prove->add_option("--size", *size,
                    "the size of the checkpoint to prove against (default: the latest)");
  prove->callback([&ctx, index, size] { exit_code() = run_prove(ctx, *index, *size); });

  auto size1 = std::make_shared<std::uint64_t>(0);
  auto size2 = std::make_shared<std::optional<std::uint64_t>>();
  auto* consistency = app.add_subcommand(
      "consistency", "prove that a later checkpoint extends an earlier one unchanged");
  consistency->add_option("size1", *size1, "the earlier checkpoint's size")->required();
  consistency->add_option("size2", *size2, "the later checkpoint's size (default: the latest)");
  consistency->callback(
      [&ctx, size1, size2] { exit_code() = run_consistency(ctx, *size1, *size2); });

  auto fwd = std::make_shared<ExportOptions>();
  fwd->format = "syslog";
  auto* forward = app.add_subcommand("forward", "events as RFC 5424 syslog or OCSF JSON");
  fwd->filters.add_to(*forward);
  forward->add_option("--format", fwd->format, "syslog or ocsf")->capture_default_str();
  forward->add_option("--to", fwd->to, "send to udp://HOST:PORT or unix://PATH");
  forward->add_option("--out", fwd->out, "write to a file (default: standard output)");
  forward->callback([&ctx, fwd] { exit_code() = run_forward(ctx, *fwd); });
}

}  // namespace enclave::audit::cli
