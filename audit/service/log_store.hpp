// The audit log's SQLite database: events (one row per Merkle leaf, idx = leaf index),
// signed checkpoints, archived ranges, and a little metadata. enclave-auditd opens it
// read-write and is its only writer; the auditors' CLI opens it read-only.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "audit/core/event.hpp"
#include "audit/core/merkle.hpp"
#include "audit/core/tiles.hpp"
#include "common/result.hpp"
#include "common/store.hpp"

namespace enclave::audit {

struct StoredCheckpoint {
  std::uint64_t size = 0;
  std::int64_t time_us = 0;
  std::string note;
};

struct ArchiveRecord {
  std::uint64_t first = 0;  // entries [first, end) went to the file
  std::uint64_t end = 0;
  std::int64_t time_us = 0;
  std::string file;
  std::string sha256_hex;
  merkle::CompactRange prefix;  // the compact range of [0, end): what the live log builds on
};

// Query filters; empty strings and unset times match everything. Times are [since, until).
struct Query {
  std::string actor, site, device, session, type, outcome;
  std::optional<std::int64_t> since_us, until_us;
  std::optional<std::uint64_t> limit;
  bool newest_first = false;
};

struct StoredEvent {
  std::uint64_t index = 0;
  Event event;
  merkle::Hash stored_hash{};
};

class LogStore {
 public:
  static Expected<LogStore> open(const std::filesystem::path& path, store::OpenOptions options);

  store::Database& database() { return db_; }

  // Appends events at indexes first, first+1, ... with their leaf hashes, the tree nodes they
  // complete (tiles::TileWriter) and, when given, the checkpoint that seals them, in one
  // transaction, which is durable when this returns (synchronous=FULL). On any error nothing
  // is written.
  Status append(std::uint64_t first, std::span<const Event> events,
                std::span<const merkle::Hash> leaf_hashes, std::span<const tiles::StoredNode> nodes,
                const StoredCheckpoint* checkpoint = nullptr);

  Status add_checkpoint(const StoredCheckpoint& checkpoint);
  Expected<std::vector<StoredCheckpoint>> checkpoints();
  Expected<std::optional<StoredCheckpoint>> latest_checkpoint();

  // One past the largest idx (0 when empty), and the smallest idx present (nullopt if none).
  Expected<std::uint64_t> end_index();
  Expected<std::optional<std::uint64_t>> first_index();

  // Every row with idx >= from, in idx order; stop by returning false from the callback.
  Status scan(std::uint64_t from, const std::function<bool(const StoredEvent&)>& visit);
  // Only the stored leaf hashes with idx >= from, in idx order (cheap: no event decoding).
  Status scan_hashes(std::uint64_t from,
                     const std::function<void(std::uint64_t, const merkle::Hash&)>& visit);
  Expected<std::vector<StoredEvent>> query(const Query& query);
  Expected<std::optional<StoredEvent>> get(std::uint64_t index);

  Expected<std::vector<ArchiveRecord>> archives();
  // Records an archive and deletes its rows in one transaction.
  Status drop_archived(const ArchiveRecord& record);

  Expected<std::optional<std::string>> meta(std::string_view key);
  Status set_meta(std::string_view key, std::string_view value);

 private:
  explicit LogStore(store::Database db) : db_(std::move(db)) {}
  store::Database db_;
};

// Proofs straight from the database: leaf hashes from events, stored nodes from tree_nodes.
class StoreNodeReader : public tiles::NodeReader {
 public:
  explicit StoreNodeReader(LogStore& store) : store_(store) {}
  Expected<std::vector<merkle::Hash>> leaves(std::uint64_t first, std::uint64_t count) override;
  Expected<std::vector<merkle::Hash>> nodes(int level, std::uint64_t first,
                                            std::uint64_t count) override;

 private:
  LogStore& store_;
};

// The leaf hash of each event.
std::vector<merkle::Hash> leaf_hashes(std::span<const Event> events);

// The archived prefix the live log starts from: the newest archive's compact range, if any.
std::optional<merkle::CompactRange> archived_prefix(const std::vector<ArchiveRecord>& archives);

}  // namespace enclave::audit
