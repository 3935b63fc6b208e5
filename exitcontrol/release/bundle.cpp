#include "exitcontrol/release/bundle.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <map>
#include <optional>

#include "common/ed25519.hpp"
#include "common/fd.hpp"

namespace enclave::exitcontrol::release {

namespace {

constexpr std::size_t kPiece = 1 << 16;

// Streams one source into the current member, checking it against the manifest as it goes.
Status stream_file(const ManifestFile& file, const std::filesystem::path& source,
                   std::int64_t mtime, TarWriter& tar) {
  const std::string what = "release file " + file.name + " (" + source.string() + ")";
  UniqueFd fd(::open(source.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) return Unexpected<Error>{os_error(what, errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unexpected<Error>{os_error(what, errno)};
  if (!S_ISREG(st.st_mode)) return fail(Errc::kInvalidArgument, what + ": not a regular file");
  if (static_cast<std::uint64_t>(st.st_size) != file.size) {
    return fail(Errc::kCorrupt, what + ": " + std::to_string(st.st_size) +
                                    " bytes, the manifest says " + std::to_string(file.size));
  }
  ENCLAVE_TRY(tar.begin({file.name, file.size, mtime}));
  Sha256Stream hash;
  std::array<std::uint8_t, kPiece> piece{};
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd.get(), piece.data(), piece.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected<Error>{os_error(what, errno)};
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > file.size) {
      return fail(Errc::kCorrupt, what + ": grew past the manifest's " + std::to_string(file.size) +
                                      " bytes while being read");
    }
    const ByteSpan data(piece.data(), static_cast<std::size_t>(n));
    hash.update(data);
    ENCLAVE_TRY(tar.write(data));
  }
  if (total != file.size) {
    return fail(Errc::kCorrupt, what + ": shrank to " + std::to_string(total) +
                                    " bytes while being read; the manifest says " +
                                    std::to_string(file.size));
  }
  const std::string actual = hash.hex_final();
  if (actual != file.sha256) {
    return fail(Errc::kCorrupt, what + ": sha256 " + actual + ", the manifest says " + file.sha256);
  }
  return tar.end();
}

Unexpected<Error> corrupt(const std::string& message) {
  return fail(Errc::kCorrupt, message);
}

// The hex text of a one-line member: the hex digits, optionally followed by one newline.
std::optional<Bytes> hex_member(ByteSpan data) {
  std::string_view text = as_chars(data);
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  return hex_decode(text);
}

struct Mapping {
  void* data = MAP_FAILED;
  std::size_t size = 0;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  Mapping(void* d, std::size_t s) : data(d), size(s) {}
  ~Mapping() {
    if (data != MAP_FAILED) ::munmap(data, size);
  }
};

}  // namespace

Status write_bundle(const SignedManifest& manifest,
                    const std::vector<std::filesystem::path>& sources, std::int64_t mtime,
                    const ByteSink& sink) {
  const auto& files = manifest.manifest.files;
  if (sources.size() != files.size()) {
    return fail(Errc::kInvalidArgument, "release " + manifest.manifest.release + ": " +
                                            std::to_string(files.size()) + " files and " +
                                            std::to_string(sources.size()) + " sources");
  }
  TarWriter tar(sink);
  const std::string signature = manifest.signature_hex + "\n";
  const std::string public_key = manifest.manifest.signer + "\n";
  ENCLAVE_TRY(tar.add({std::string(kManifestMember), manifest.json.size(), mtime},
                      as_bytes(manifest.json)));
  ENCLAVE_TRY(
      tar.add({std::string(kSignatureMember), signature.size(), mtime}, as_bytes(signature)));
  ENCLAVE_TRY(
      tar.add({std::string(kPublicKeyMember), public_key.size(), mtime}, as_bytes(public_key)));
  for (std::size_t i = 0; i < files.size(); ++i) {
    ENCLAVE_TRY(stream_file(files[i], sources[i], mtime, tar));
  }
  return tar.finish();
}

Expected<Manifest> verify_bundle(ByteSpan bundle, ByteSpan public_key) {
  if (public_key.size() != crypto::kEd25519PublicKeyBytes) {
    return fail(Errc::kInvalidArgument, "the export signing public key has " +
                                            std::to_string(public_key.size()) + " bytes, not 32");
  }
  auto entries = read_tar(bundle);
  if (!entries) return fail(Errc::kCorrupt, "not a readable bundle: " + entries.error().describe());
  std::map<std::string_view, const TarEntry*> members;
  for (const auto& e : *entries) members.emplace(e.name, &e);
  auto member = [&](std::string_view name) -> const TarEntry* {
    const auto it = members.find(name);
    return it == members.end() ? nullptr : it->second;
  };
  const TarEntry* manifest_member = member(kManifestMember);
  const TarEntry* signature_member = member(kSignatureMember);
  const TarEntry* key_member = member(kPublicKeyMember);
  for (auto [entry, name] :
       {std::pair{manifest_member, kManifestMember}, std::pair{signature_member, kSignatureMember},
        std::pair{key_member, kPublicKeyMember}}) {
    if (!entry) return corrupt("the bundle has no " + std::string(name));
  }
  const std::string expected_key = hex_encode(public_key);
  const auto bundled_key = hex_member(key_member->data);
  if (!bundled_key || *bundled_key != Bytes(public_key.begin(), public_key.end())) {
    return corrupt(std::string(kPublicKeyMember) + " names the signing key " +
                   (bundled_key ? hex_encode(*bundled_key) : std::string("(not hex)")) +
                   ", not the expected " + expected_key);
  }
  const auto signature = hex_member(signature_member->data);
  if (!signature || !crypto::ed25519_verify(public_key, manifest_member->data, *signature)) {
    return corrupt(std::string(kManifestMember) + ": the signature in " +
                   std::string(kSignatureMember) + " does not verify under " + expected_key);
  }
  auto manifest = parse_manifest(manifest_member->data);
  if (!manifest) return error_of(manifest);
  if (manifest->signer != expected_key) {
    return corrupt("manifest.json names the signer " + manifest->signer + ", not " + expected_key);
  }
  for (const ManifestFile& file : manifest->files) {
    const TarEntry* entry = member(file.name);
    if (!entry) return corrupt("member " + file.name + " is in the manifest but not the bundle");
    if (entry->size != file.size) {
      return corrupt("member " + file.name + ": " + std::to_string(entry->size) +
                     " bytes in the bundle, " + std::to_string(file.size) + " in the manifest");
    }
    const std::string actual = sha256_hex(entry->data);
    if (actual != file.sha256) {
      return corrupt("member " + file.name + ": sha256 " + actual + " in the bundle, " +
                     file.sha256 + " in the manifest");
    }
  }
  if (entries->size() != manifest->files.size() + 3) {
    for (const auto& e : *entries) {
      const bool own =
          e.name == kManifestMember || e.name == kSignatureMember || e.name == kPublicKeyMember;
      const bool listed = std::any_of(manifest->files.begin(), manifest->files.end(),
                                      [&](const ManifestFile& f) { return f.name == e.name; });
      if (!own && !listed) return corrupt("member " + e.name + " is not in the manifest");
    }
  }
  return manifest;
}

Expected<Manifest> verify_bundle_file(const std::filesystem::path& bundle, ByteSpan public_key) {
  const std::string what = "bundle " + bundle.string();
  UniqueFd fd(::open(bundle.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return Unexpected<Error>{os_error(what, errno)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Unexpected<Error>{os_error(what, errno)};
  if (!S_ISREG(st.st_mode)) return fail(Errc::kInvalidArgument, what + ": not a regular file");
  const auto size = static_cast<std::size_t>(st.st_size);
  Mapping map(size == 0 ? MAP_FAILED : ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0),
              size);
  if (size != 0 && map.data == MAP_FAILED) return Unexpected<Error>{os_error(what, errno)};
  const ByteSpan bytes =
      size == 0 ? ByteSpan() : ByteSpan(static_cast<const std::uint8_t*>(map.data), size);
  auto manifest = verify_bundle(bytes, public_key);
  if (!manifest) return fail(manifest.error().code, what + ": " + manifest.error().message);
  return manifest;
}

}  // namespace enclave::exitcontrol::release
