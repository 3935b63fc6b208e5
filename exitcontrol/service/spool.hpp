// The export spool: the service's own copy of every submitted file. At submission each named
// file is copied out of the session's outbox (and hashed while it is copied), so what is
// checked, reviewed and released is exactly what was submitted, whatever happens to the outbox
// afterwards. The copy is hashed again before each decision and at release: a copy changed on
// disk is refused, named with both hashes.
//
// Layout: SPOOL/<request id>/<name> (0600; directories 0700). A submission is copied into
// SPOOL/.incoming-<random>/ first and renamed to its request's id only once the request is
// stored, so a crash or a full disk never leaves a half-copied request under a request's name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace enclave::exitcontrol {

struct SpooledFile {
  std::string name;
  std::uint64_t size = 0;
  std::string sha256;
  bool sidecar = false;  // NAME.meta.toml copied along with the table NAME
};

// A file name an analyst may submit: a plain name in the outbox (no directory, no "..", not
// hidden, at most 100 bytes of printable UTF-8, not a name the release bundle
// keeps for itself). kInvalidArgument naming it otherwise.
Status check_outbox_name(std::string_view name);

struct IntakeLimits {
  std::uint64_t max_file_bytes = 1ull << 30;
  std::uint64_t max_request_bytes = 4ull << 30;
  std::size_t max_files = 64;
};

class Spool {
 public:
  explicit Spool(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }

  // Copies `names` (and each one's NAME.meta.toml when the outbox has it) from `outbox` into a
  // new incoming directory. Files are opened without following symbolic links, relative to the
  // outbox directory, and must be regular files. Returns the incoming directory and what was
  // copied (sidecars after the file they describe). On any error nothing is left behind: kNotFound
  // (a name the outbox lacks), kInvalidArgument (a bad name, not a regular file, too large, too
  // many), kNoSpace (the spool's disk is full), kIo.
  struct Intake {
    std::filesystem::path incoming;
    std::vector<SpooledFile> files;
  };
  Expected<Intake> take_in(const std::filesystem::path& outbox,
                           const std::vector<std::string>& names, const IntakeLimits& limits);
  // Gives an incoming directory its request's name, or removes it (the request was not stored).
  Status commit(const std::filesystem::path& incoming, std::int64_t request);
  void discard(const std::filesystem::path& incoming);
  // Removes incoming directories and request directories for which `known` says no (after a
  // crash between copying and storing).
  void sweep(const std::function<bool(std::int64_t)>& known);

  std::filesystem::path file(std::int64_t request, std::string_view name) const;
  std::filesystem::path dir(std::int64_t request) const;
  // Writes a file the service made for a request (a safe version) the same way: 0600, synced,
  // under its final name only when complete.
  Status write(std::int64_t request, std::string_view name, std::string_view content);
  // Hashes the spooled file now and compares: kCorrupt naming the file and both hashes when it
  // changed, kNotFound when it is gone.
  Status verify(std::int64_t request, std::string_view name, const std::string& sha256) const;

 private:
  std::filesystem::path root_;
};

// SHA-256 (hex) and size of a file, read in chunks.
Expected<std::pair<std::string, std::uint64_t>> hash_file(const std::filesystem::path& path);

}  // namespace enclave::exitcontrol
