// Per-project key-encryption keys (KEKs) for released data at rest. Each project has its own
// keys, never shared with another tenant; a release's random data key (sealed.hpp) is stored
// only wrapped by its project's current KEK. Rotating makes a new current KEK; the caller
// rewraps every data key of the project, then retires the old KEK. Destroying a project's
// KEKs makes all of its releases unreadable (crypto-shredding).
//
// Layout: ROOT/<project>/<key id>.key, 32 raw bytes, mode 0600; ROOT and ROOT/<project> mode
// 0700. ROOT is STATE/keys/exports by default. A key id is "000002-9f3a2b1c": a sequence number
// (the highest is the current key) and 4 random bytes, so an id never names a key of an earlier,
// destroyed incarnation of the project. Project names follow the registry's id rule
// (sessionmgr::registry::is_object_id), so a name cannot leave ROOT.
//
// Wrapped data key (version 1): 0x01 | nonce (12 random bytes) | AES-256-GCM(data key) | tag (16)
// AAD: "enclave-kek-v1" | project | key id, each as a 2-byte big-endian length and its bytes.
//
// One process owns ROOT (enclave-exportd); an internal mutex orders its threads' calls.
#pragma once

#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::exitcontrol::release {

struct WrappedKey {
  std::string key_id;  // the KEK that wrapped it
  Bytes wrapped;

  bool operator==(const WrappedKey&) const = default;
};

// Errors of every method name the project and, where one is meant, the key id or file:
// kInvalidArgument (a project name outside the registry's rule, a malformed key id, a data key
// that is not 32 bytes), kPermission (a key file or directory group or others may read: the
// chmod that fixes it), kNotFound, kNoSpace, kIo.
class KeyRing {
 public:
  static constexpr std::size_t kKeyBytes = 32;
  static constexpr std::size_t kWrappedBytes = 1 + 12 + kKeyBytes + 16;

  explicit KeyRing(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }

  // The project's current key id; its first key is created on first use.
  Expected<std::string> current_key(std::string_view project);
  // The project's key ids, oldest first (empty when it has none).
  Expected<std::vector<std::string>> key_ids(std::string_view project) const;

  // The data key wrapped under the project's current key.
  Expected<WrappedKey> wrap(std::string_view project, ByteSpan data_key);
  // The data key (the caller wipes it after use: secure_wipe). kNotFound naming the key when it
  // was retired or destroyed; kCorrupt when the wrapped bytes fail authentication (changed, or
  // wrapped for another project or key).
  Expected<Bytes> unwrap(std::string_view project, const WrappedKey& wrapped) const;
  // unwrap, then wrap under the current key, the data key never leaving the ring.
  Expected<WrappedKey> rewrap(std::string_view project, const WrappedKey& wrapped);

  // Makes a new current key and returns its id; older keys stay until retired.
  Expected<std::string> rotate(std::string_view project);
  // Wipes and deletes one key. kConflict for the current key (rotate first).
  Status retire(std::string_view project, std::string_view key_id);
  // Wipes and deletes every key of the project and its directory. kNotFound when it has none.
  Status destroy(std::string_view project);

 private:
  std::filesystem::path root_;
  mutable std::mutex mutex_;
};

}  // namespace enclave::exitcontrol::release
