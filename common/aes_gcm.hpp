// 256-bit symmetric keys at rest: AES-256-GCM (OpenSSL EVP) with caller-chosen nonces and
// additional authenticated data, and raw key files (exactly 32 bytes, owner-only) as the
// print vault and the export key rings keep them.
#pragma once

#include <cstddef>
#include <filesystem>
#include <span>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::crypto {

inline constexpr std::size_t kAes256KeyBytes = 32;
inline constexpr std::size_t kGcmNonceBytes = 12;
inline constexpr std::size_t kGcmTagBytes = 16;

// ciphertext || tag. A nonce must never repeat under one key; callers make it random or
// unique by construction. kInvalidArgument for a key or nonce of the wrong size or a plaintext
// of 2 GiB or more (EVP counts in int).
Expected<Bytes> aes256_gcm_seal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext);

// The plaintext of ciphertext || tag, or kCorrupt "authentication failed" (a changed byte,
// another key, nonce or aad, too short). Never returns unauthenticated bytes.
Expected<Bytes> aes256_gcm_open(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed);

// Reads a raw key file through one descriptor (the checks apply to the file that is read):
// not a symbolic link, a regular file, no access for group or others, exactly key.size()
// bytes. Errors name the file and `what` ("print vault key"): kNotFound, kPermission (its
// mode, with the chmod that fixes it, or unreadable), kInvalidArgument (a symbolic link, not a
// regular file, the wrong size), kIo.
Status read_key_file(const std::filesystem::path& path, std::span<std::uint8_t> key,
                     std::string_view what);

// Creates path holding `bytes` random bytes, mode 0600, synced; never replaces an existing
// file (kAlreadyExists). The parent directory must exist.
Status create_key_file(const std::filesystem::path& path, std::size_t bytes);

}  // namespace enclave::crypto
