// Fingerprint prints at rest: AES-256-GCM (OpenSSL EVP) under a 32-byte key file, with the
// additional authenticated data binding each print to its user, device (the kiosk's reader)
// and print id. A ciphertext copied to another user's row, another reader's or another print's
// fails to open instead of standing in for someone else's finger; a changed byte fails too.
//
// Sealed form (version 1):  0x01 | nonce (12 random bytes) | ciphertext | tag (16 bytes)
// AAD:                      "enclave-print-v1" | user | device | print id, each of the three as
//                           a 2-byte big-endian length and its bytes (no ambiguity between
//                           ("ab", "c") and ("a", "bc")).
//
// The key file holds exactly 32 raw bytes and must be a regular file only its owner may read
// (mode 0600 or 0400): enclave-sessiond creates it when missing; pam_enclave_fingerprint opens
// it without creating it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::sessionmgr {

struct PrintBinding {
  std::string user;
  std::string device;
  std::string print_id;
};

class PrintVault {
 public:
  static constexpr std::size_t kKeyBytes = 32;
  static constexpr std::size_t kNonceBytes = 12;
  static constexpr std::size_t kTagBytes = 16;
  static constexpr std::size_t kOverhead = 1 + kNonceBytes + kTagBytes;

  enum class KeyFile { kCreateIfMissing, kMustExist };

  // Errors name the file: kNotFound (kMustExist), kPermission (group or others may read it, or
  // it cannot be read), kInvalidArgument (not a regular file, not 32 bytes).
  static Expected<PrintVault> load(const std::filesystem::path& key_file, KeyFile mode);

  PrintVault(PrintVault&& other) noexcept;
  PrintVault& operator=(PrintVault&& other) noexcept;
  PrintVault(const PrintVault&) = delete;
  PrintVault& operator=(const PrintVault&) = delete;
  ~PrintVault();  // wipes the key

  // kInvalidArgument for an empty print or a binding field longer than 65535 bytes.
  Expected<Bytes> seal(ByteSpan print, const PrintBinding& binding) const;
  // The print (the caller wipes it after use), or kCorrupt naming the binding: too short, an
  // unknown version, or authentication failed (tampered, or bound to another user, device or
  // print). Never unauthenticated bytes.
  Expected<Bytes> open(ByteSpan sealed, const PrintBinding& binding) const;

 private:
  PrintVault() = default;
  std::array<std::uint8_t, kKeyBytes> key_{};
};

}  // namespace enclave::sessionmgr
