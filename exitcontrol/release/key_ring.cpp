#include "exitcontrol/release/key_ring.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>

#include "common/aes_gcm.hpp"
#include "common/fd.hpp"
#include "sessionmgr/core/registry.hpp"

namespace enclave::exitcontrol::release {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::string_view kAadLabel = "enclave-kek-v1";
constexpr std::string_view kKeyWhat = "export key-encryption key";
constexpr std::string_view kKeySuffix = ".key";
constexpr std::size_t kSeqDigits = 6, kIdBytes = kSeqDigits + 1 + 8;
static_assert(KeyRing::kWrappedBytes ==
              1 + crypto::kGcmNonceBytes + KeyRing::kKeyBytes + crypto::kGcmTagBytes);

// Wipes itself: every KEK read from disk lives in one of these.
struct Kek {
  std::array<std::uint8_t, KeyRing::kKeyBytes> bytes{};
  ~Kek() { secure_wipe(bytes.data(), bytes.size()); }
};

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

Status check_project(std::string_view project) {
  if (sessionmgr::registry::is_object_id(project)) return {};
  return fail(Errc::kInvalidArgument, "project \"" + std::string(project.substr(0, 80)) +
                                          "\": not a project id ([a-z0-9][a-z0-9_.-]{0,63})");
}

bool is_key_id(std::string_view id) {
  if (id.size() != kIdBytes || id[kSeqDigits] != '-') return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    const char c = id[i];
    const bool ok = i < kSeqDigits   ? (c >= '0' && c <= '9')
                    : i > kSeqDigits ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
                                     : true;
    if (!ok) return false;
  }
  return true;
}

Status check_key_id(std::string_view project, std::string_view id) {
  if (is_key_id(id)) return {};
  return fail(Errc::kInvalidArgument, "project " + std::string(project) + ": \"" +
                                          std::string(id.substr(0, 80)) + "\" is not a key id");
}

// A directory only its owner may enter: created 0700 when `create` and missing.
Status private_dir(const std::filesystem::path& dir, bool create) {
  if (create && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Unexpected<Error>{os_error("key directory " + dir.string(), errno)};
  }
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    return Unexpected<Error>{os_error("key directory " + dir.string(), errno)};
  }
  if (!S_ISDIR(st.st_mode)) {
    return fail(Errc::kInvalidArgument, "key directory " + dir.string() + ": not a directory");
  }
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::kPermission, "key directory " + dir.string() + ": mode " +
                                       mode_text(st.st_mode) +
                                       " lets group or others in; chmod 700 it");
  }
  return {};
}

// The key ids in a project's directory, oldest first. Other names (a key being created) are
// not keys.
Expected<std::vector<std::string>> list_keys(const std::filesystem::path& dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return Unexpected<Error>{os_error("key directory " + dir.string(), errno)};
  std::vector<std::string> ids;
  while (const dirent* e = ::readdir(d.get())) {
    const std::string_view name = e->d_name;
    if (name.size() != kIdBytes + kKeySuffix.size() || !name.ends_with(kKeySuffix)) continue;
    const auto id = name.substr(0, kIdBytes);
    if (is_key_id(id)) ids.emplace_back(id);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::filesystem::path key_file(const std::filesystem::path& dir, std::string_view id) {
  return dir / (std::string(id) + std::string(kKeySuffix));
}

Expected<std::string> create_key(const std::filesystem::path& dir, unsigned sequence) {
  if (sequence >= 1'000'000) {
    return fail(Errc::kConflict, "key directory " + dir.string() + ": out of key numbers");
  }
  char seq[kSeqDigits + 1];
  std::snprintf(seq, sizeof seq, "%06u", sequence);
  std::string id = std::string(seq) + "-" + random_hex(4);
  ENCLAVE_TRY(crypto::create_key_file(key_file(dir, id), KeyRing::kKeyBytes));
  return id;
}

unsigned sequence_of(const std::string& id) {
  return static_cast<unsigned>(std::stoul(id.substr(0, kSeqDigits)));
}

Bytes aad_of(std::string_view project, std::string_view id) {
  Bytes aad(kAadLabel.begin(), kAadLabel.end());
  WriteCursor w(aad);
  for (std::string_view field : {project, id}) {  // both bounded by their checks
    w.u16be(static_cast<std::uint16_t>(field.size()));
    w.put(as_bytes(field));
  }
  return aad;
}

// Overwrites a key file with zeros and syncs before unlinking it, so the key's bytes do not
// stay in the file's blocks (on a journaling or flash device a copy may survive elsewhere:
// the overwrite is the part software can do).
Status wipe_file(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return Unexpected<Error>{os_error(path.string(), errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unexpected<Error>{os_error(path.string(), errno)};
  if (S_ISREG(st.st_mode)) {
    const Bytes zeros(static_cast<std::size_t>(st.st_size), 0);
    ENCLAVE_TRY(write_all(fd.get(), zeros, path.string()));
    if (::fsync(fd.get()) != 0) return Unexpected<Error>{os_error(path.string(), errno)};
  }
  fd.reset();
  if (::unlink(path.c_str()) != 0) return Unexpected<Error>{os_error(path.string(), errno)};
  return {};
}

// ---- The operations, called with the mutex held ------------------------------------------------

Expected<std::string> current_key_locked(const std::filesystem::path& root,
                                         std::string_view project) {
  ENCLAVE_TRY(check_project(project));
  std::error_code ec;
  std::filesystem::create_directories(root.parent_path(), ec);
  ENCLAVE_TRY(private_dir(root, true));
  const auto dir = root / project;
  ENCLAVE_TRY(private_dir(dir, true));
  auto ids = list_keys(dir);
  if (!ids) return error_of(ids);
  if (!ids->empty()) return ids->back();
  return create_key(dir, 1);
}

Expected<Bytes> unwrap_locked(const std::filesystem::path& root, std::string_view project,
                              const WrappedKey& wrapped) {
  ENCLAVE_TRY(check_project(project));
  ENCLAVE_TRY(check_key_id(project, wrapped.key_id));
  const std::string what = "project " + std::string(project) + " key " + wrapped.key_id;
  if (wrapped.wrapped.size() != KeyRing::kWrappedBytes || wrapped.wrapped[0] != kVersion) {
    return fail(Errc::kCorrupt, what + ": the wrapped data key is not a version 1 wrapping (" +
                                    std::to_string(wrapped.wrapped.size()) + " bytes)");
  }
  Kek kek;
  if (Status read =
          crypto::read_key_file(key_file(root / project, wrapped.key_id), kek.bytes, kKeyWhat);
      !read) {
    if (read.error().code == Errc::kNotFound) {
      return fail(Errc::kNotFound, what + " was retired or destroyed (" +
                                       key_file(root / project, wrapped.key_id).string() +
                                       " does not exist)");
    }
    return error_of(read);
  }
  const ByteSpan bytes(wrapped.wrapped);
  auto opened = crypto::aes256_gcm_open(kek.bytes, bytes.subspan(1, crypto::kGcmNonceBytes),
                                        aad_of(project, wrapped.key_id),
                                        bytes.subspan(1 + crypto::kGcmNonceBytes));
  if (!opened && opened.error().code == Errc::kCorrupt) {
    return fail(Errc::kCorrupt, what +
                                    ": the wrapped data key fails authentication (changed, "
                                    "or wrapped for another project or key)");
  }
  if (!opened) return fail(opened.error().code, what + ": " + opened.error().message);
  return opened;
}

Expected<WrappedKey> wrap_locked(const std::filesystem::path& root, std::string_view project,
                                 ByteSpan data_key) {
  if (data_key.size() != KeyRing::kKeyBytes) {
    return fail(Errc::kInvalidArgument, "project " + std::string(project) + ": a data key of " +
                                            std::to_string(data_key.size()) + " bytes, not 32");
  }
  auto id = current_key_locked(root, project);
  if (!id) return error_of(id);
  Kek kek;
  ENCLAVE_TRY(crypto::read_key_file(key_file(root / project, *id), kek.bytes, kKeyWhat));
  std::array<std::uint8_t, crypto::kGcmNonceBytes> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    return fail(Errc::kInternal, "RAND_bytes failed");
  }
  auto sealed = crypto::aes256_gcm_seal(kek.bytes, nonce, aad_of(project, *id), data_key);
  if (!sealed) return error_of(sealed);
  // Sized once and filled (GCC 12 at -O2 misreads inserts after a one-byte initialiser).
  WrappedKey out{*id, Bytes(1 + nonce.size() + sealed->size())};
  out.wrapped[0] = kVersion;
  std::copy(nonce.begin(), nonce.end(), out.wrapped.begin() + 1);
  std::copy(sealed->begin(), sealed->end(),
            out.wrapped.begin() + 1 + static_cast<std::ptrdiff_t>(nonce.size()));
  return out;
}

}  // namespace

Expected<std::string> KeyRing::current_key(std::string_view project) {
  std::lock_guard lock(mutex_);
  return current_key_locked(root_, project);
}

Expected<std::vector<std::string>> KeyRing::key_ids(std::string_view project) const {
  std::lock_guard lock(mutex_);
  ENCLAVE_TRY(check_project(project));
  const auto dir = root_ / project;
  if (Status ok = private_dir(dir, false); !ok) {
    if (ok.error().code == Errc::kNotFound) return std::vector<std::string>{};
    return error_of(ok);
  }
  return list_keys(dir);
}

Expected<WrappedKey> KeyRing::wrap(std::string_view project, ByteSpan data_key) {
  std::lock_guard lock(mutex_);
  return wrap_locked(root_, project, data_key);
}

Expected<Bytes> KeyRing::unwrap(std::string_view project, const WrappedKey& wrapped) const {
  std::lock_guard lock(mutex_);
  return unwrap_locked(root_, project, wrapped);
}

Expected<WrappedKey> KeyRing::rewrap(std::string_view project, const WrappedKey& wrapped) {
  std::lock_guard lock(mutex_);
  auto data_key = unwrap_locked(root_, project, wrapped);
  if (!data_key) return error_of(data_key);
  auto rewrapped = wrap_locked(root_, project, *data_key);
  secure_wipe(data_key->data(), data_key->size());
  return rewrapped;
}

Expected<std::string> KeyRing::rotate(std::string_view project) {
  std::lock_guard lock(mutex_);
  auto current = current_key_locked(root_, project);
  if (!current) return error_of(current);
  return create_key(root_ / project, sequence_of(*current) + 1);
}

Status KeyRing::retire(std::string_view project, std::string_view key_id) {
  std::lock_guard lock(mutex_);
  ENCLAVE_TRY(check_project(project));
  ENCLAVE_TRY(check_key_id(project, key_id));
  const auto dir = root_ / project;
  ENCLAVE_TRY(private_dir(dir, false));
  auto ids = list_keys(dir);
  if (!ids) return error_of(ids);
  const std::string what = "project " + std::string(project) + " key " + std::string(key_id);
  if (std::find(ids->begin(), ids->end(), key_id) == ids->end()) {
    return fail(Errc::kNotFound, what + ": no such key");
  }
  if (ids->back() == key_id) {
    return fail(Errc::kConflict, what + " is the current key; rotate before retiring it");
  }
  ENCLAVE_TRY(wipe_file(key_file(dir, key_id)));
  sync_dir(dir);
  return {};
}

Status KeyRing::destroy(std::string_view project) {
  std::lock_guard lock(mutex_);
  ENCLAVE_TRY(check_project(project));
  const auto dir = root_ / project;
  if (Status ok = private_dir(dir, false); !ok) {
    if (ok.error().code == Errc::kNotFound) {
      return fail(Errc::kNotFound, "project " + std::string(project) + " has no keys");
    }
    return ok;
  }
  // Every file goes (a key being created as well as the keys); the keys are overwritten first.
  std::vector<std::string> names;
  {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
    if (!d) return Unexpected<Error>{os_error("key directory " + dir.string(), errno)};
    while (const dirent* e = ::readdir(d.get())) {
      const std::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
  }
  for (const auto& name : names) ENCLAVE_TRY(wipe_file(dir / name));
  sync_dir(dir);
  if (::rmdir(dir.c_str()) != 0) {
    return Unexpected<Error>{os_error("key directory " + dir.string(), errno)};
  }
  sync_dir(root_);
  return {};
}

}  // namespace enclave::exitcontrol::release
