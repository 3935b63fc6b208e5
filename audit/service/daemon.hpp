// enclave-auditd: the only process that holds the audit log's write handle and signing key.
//
// Services append events over its Unix socket ("audit.append"); the daemon stamps the time and
// the source (from the socket's peer credentials), and a single writer thread commits queued
// appends in batches (group commit): each request is acknowledged only after the transaction
// holding it is on disk. Every `every_entries` entries or `every_seconds` seconds (and at
// shutdown) the writer signs a checkpoint of the Merkle tree, stores it, and copies it with
// the new leaf hashes to every off-box sink.
//
// Methods: audit.append {event} -> {index, leaf_hash, time}
//          audit.status {}      -> sizes, queue, sinks, counters
//          audit.checkpoint {}  -> {size, note}            (admins; once copied off the box)
//          audit.archive {before} -> {file, first, end, sha256} (admins)
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/ipc/server.hpp"
#include "common/policy.hpp"
#include "common/result.hpp"

namespace enclave::audit {

struct DaemonConfig {
  std::string origin;  // checkpoint origin line, and the signing key's name
  std::filesystem::path database;
  std::filesystem::path socket;
  std::filesystem::path signing_key;
  std::filesystem::path verifier_key;  // the public key file auditors pin
  std::filesystem::path archive_dir;
  std::uint64_t checkpoint_every_entries = 1000;
  std::chrono::milliseconds checkpoint_every{std::chrono::seconds(5)};
  std::size_t max_batch = 4096;
  std::size_t max_queue = 65536;
  std::chrono::microseconds gather{250};  // longest wait for a batch's stragglers
  std::vector<std::filesystem::path> offbox_files;
  std::vector<std::string> offbox_syslog;
  std::vector<std::string> writers;  // user names that may append, besides the daemon's own
  std::vector<std::string> admins;   // user names that may checkpoint and archive
};

// Reads [audit] from policies/audit.toml; relative paths are taken under state_dir.
Expected<DaemonConfig> load_daemon_config(const policy::Document& policy,
                                          const std::filesystem::path& state_dir);

// Creates the signing key and writes the verifier key beside it (refuses to overwrite).
Status generate_signing_key(const DaemonConfig& config);

class Daemon {
 public:
  // Opens the database and the key and checks them against each other and against the log's
  // latest checkpoint; refuses to start on any mismatch, naming it.
  static Expected<std::unique_ptr<Daemon>> open(DaemonConfig config);
  ~Daemon();

  // Serves until stop(): binds the socket, runs the writer, and on stop drains the queue and
  // seals the tail with a last checkpoint.
  Status run();
  void stop();  // from any thread; run() then returns once the tail is sealed

 private:
  struct Impl;
  explicit Daemon(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::audit
