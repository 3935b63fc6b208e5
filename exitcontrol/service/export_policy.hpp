// enclave-exportd's settings: policies/exports.toml [exportd], read once at start and checked
// there (errors name file, line and key). Relative paths are under the state directory.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "common/policy.hpp"
#include "common/result.hpp"
#include "exitcontrol/service/spool.hpp"

namespace enclave::exitcontrol {

struct DownloadSettings {
  bool enabled = true;
  std::string listen = "127.0.0.1:8443";   // HOST:PORT of the HTTPS listener
  std::string url;                         // how links begin; default https://<listen>
  std::filesystem::path certificate, key;  // default keys/download.crt and .key
};

struct ExportPolicy {
  std::string source;  // the file read
  std::filesystem::path state_dir, policies_dir;
  std::filesystem::path socket, database, ledger, spool, releases, outbox_root, keys, signing_key,
      registry, sessiond_socket, audit_socket;
  // Who, besides the daemon's own user and root, may act for a named user (a web console
  // that authenticates stewards itself).
  std::vector<std::string> consoles;
  IntakeLimits limits;
  int check_workers = 2;
  std::chrono::seconds link_ttl{std::chrono::hours(24 * 7)};
  std::chrono::seconds max_link_ttl{std::chrono::hours(24 * 30)};
  int retention_days = 90;  // sealed bundles are deleted this long after release
  DownloadSettings download;
};

Expected<ExportPolicy> load_export_policy(const policy::Document& document,
                                          const std::filesystem::path& state_dir);

}  // namespace enclave::exitcontrol
