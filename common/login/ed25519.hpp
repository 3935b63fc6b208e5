// Ed25519 through OpenSSL for the device keys of kitted kiosks: load a private key from a
// PEM file (refused when others may read it), sign, verify with a raw 32-byte public key.
#pragma once

#include <filesystem>
#include <memory>

#include <openssl/evp.h>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::login {

inline constexpr std::size_t kEd25519PublicKeyBytes = 32;
inline constexpr std::size_t kEd25519SignatureBytes = 64;

struct EvpPkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyFree>;

// An unencrypted PEM Ed25519 private key (PKCS#8). Errors name the file, never its content:
// kNotFound, kPermission (also when group or others may read it, as ssh refuses such keys),
// kInvalidArgument (not a PEM private key, or not Ed25519).
Expected<EvpPkeyPtr> load_ed25519_private_key(const std::filesystem::path& pem);

// The raw 32-byte public key of an Ed25519 key (private or public); kInvalidArgument for
// another key type.
Expected<Bytes> ed25519_public_key(EVP_PKEY* key);

// kInvalidArgument when key is not an Ed25519 private key.
Expected<Bytes> ed25519_sign(EVP_PKEY* key, ByteSpan message);

// False for a wrong size of key or signature as for a signature that does not verify.
bool ed25519_verify(ByteSpan public_key, ByteSpan message, ByteSpan signature);

}  // namespace enclave::login
