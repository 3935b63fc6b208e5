// Ed25519 through OpenSSL: load a private key from a PEM file (owner-only, bounded, wiped, no
// symbolic links), export its raw public key, sign, verify with a raw 32-byte public key.
// Every private key file the project reads goes through load_private_key: the kiosks' device
// keys and the audit log's signing key (Ed25519), the local CA's key (common/x509, ECDSA).
#pragma once

#include <filesystem>
#include <memory>

#include <openssl/evp.h>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::crypto {

inline constexpr std::size_t kEd25519PublicKeyBytes = 32;
inline constexpr std::size_t kEd25519SignatureBytes = 64;

struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// An unencrypted PEM private key (PKCS#8) of at most 16 KiB, of any type. Errors name the file,
// never its content: kNotFound, kPermission (also when group or others may read it, as ssh
// refuses such keys, or when it is a symbolic link), kInvalidArgument (not a regular file,
// larger than 16 KiB, not a PEM private key), kIo.
Expected<EvpPkeyPtr> load_private_key(const std::filesystem::path& pem);

// load_private_key, and kInvalidArgument for a key that is not Ed25519.
Expected<EvpPkeyPtr> load_ed25519_private_key(const std::filesystem::path& pem);

// The raw 32-byte public key of an Ed25519 key (private or public); kInvalidArgument for
// another key type.
Expected<Bytes> ed25519_public_key(EVP_PKEY* key);

// kInvalidArgument when key is not an Ed25519 private key.
Expected<Bytes> ed25519_sign(EVP_PKEY* key, ByteSpan message);

// False for a wrong size of key or signature as for a signature that does not verify.
bool ed25519_verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);

}  // namespace enclave::crypto
