#include "audit/service/verify_input.hpp"

#include <fstream>
#include <iterator>

#include "audit/core/formats.hpp"

namespace enclave::audit {

namespace {

// Reads the off-box copies. They go first: the daemon stores each checkpoint before it copies
// it off the box, so everything they hold is already in the database read afterwards.
void read_offbox(std::span<const std::filesystem::path> offbox, VerifyMaterial& m) {
  for (const auto& path : offbox) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
      m.unreadable.push_back({verify::FindingKind::kOffboxMismatch, std::nullopt, std::nullopt,
                              "off-box copy " + path.string() + " cannot be read"});
      continue;
    }
    std::string text(std::istreambuf_iterator<char>(file), {});
    auto copy = offbox::parse(as_bytes(text));
    if (!copy) {
      m.unreadable.push_back(
          {verify::FindingKind::kOffboxMismatch, std::nullopt, std::nullopt,
           "off-box copy " + path.string() + " is unreadable: " + copy.error().describe()});
      continue;
    }
    for (const auto& c : copy->checkpoints) {
      m.input.checkpoints.push_back(
          {"off-box copy " + path.string() + " line " + std::to_string(c.line), c.note, c.time_us,
           false});
    }
    m.copies.emplace_back(path.string(), copy->leaf_hashes.size());
    m.input.offbox.emplace_back(path.string(), std::move(copy).value());
  }
}

// Archives, rows and checkpoints, all from one snapshot of a database the daemon may be
// appending to.
Status read_database(LogStore& store, verify::Input& in) {
  auto archives = store.archives();
  if (!archives) return error_of(archives);
  in.archived_prefix = archived_prefix(*archives);
  Bytes leaf;
  ENCLAVE_TRY(store.scan(in.archived_prefix ? in.archived_prefix->size() : 0, [&](const StoredEvent&
                                                                                      row) {
    leaf.clear();
    encode_leaf_into(row.event, leaf);
    in.entries.push_back({row.index, merkle::leaf_hash(leaf), row.stored_hash, row.event.time_us});
    return true;
  }));
  auto checkpoints = store.checkpoints();
  if (!checkpoints) return error_of(checkpoints);
  for (const auto& c : *checkpoints) {
    in.checkpoints.push_back(
        {"database checkpoint " + std::to_string(c.size), c.note, c.time_us, true});
  }
  return {};
}

}  // namespace

Expected<VerifyMaterial> load_verify_material(LogStore& store, const note::Verifier& key,
                                              std::span<const std::filesystem::path> offbox) {
  VerifyMaterial m;
  verify::Input& in = m.input;
  in.key = &key;
  in.origin = key.name();
  read_offbox(offbox, m);
  ENCLAVE_TRY(store.database().exec("BEGIN"));
  auto read = read_database(store, in);
  (void)store.database().rollback();  // a read transaction: nothing to keep
  ENCLAVE_TRY(read);
  in.describe = [&store](std::uint64_t index) -> std::string {
    auto row = store.get(index);
    if (!row || !*row) return "row " + std::to_string(index) + " (unreadable)";
    return formats::summary((*row)->event);
  };
  return m;
}

}  // namespace enclave::audit
