// Keys and certificates the services make and pin: self-signed certificates for the gateway
// and for local desktops (until the center's CA exists), and the SHA-256 pins policies name.
#pragma once

#include <filesystem>
#include <string>

#include <openssl/x509.h>

#include "common/result.hpp"

namespace enclave::x509 {

// Hex SHA-256 of a certificate's SubjectPublicKeyInfo (DER): the pin policies name
// (pin_sha256). Survives re-issuing the certificate for the same key.
std::string spki_sha256_hex(X509* certificate);
Expected<std::string> spki_sha256_hex_of_file(const std::filesystem::path& pem);
// Hex SHA-256 of the whole certificate (DER).
Expected<std::string> certificate_sha256_hex_of_file(const std::filesystem::path& pem);
// The same as xfreerdp 2.x compares it: "ab:cd:...", for /cert:fingerprint:sha256:...
Expected<std::string> xfreerdp_fingerprint_of_file(const std::filesystem::path& pem);

// A P-256 key (or RSA 2048 when rsa is true: some RDP hosts accept nothing else) and a
// self-signed certificate with CN and subjectAltName = common_name, valid `days`. Both files
// are written atomically, the key at mode 0600.
Status generate_self_signed(const std::filesystem::path& certificate,
                            const std::filesystem::path& private_key,
                            const std::string& common_name, int days = 825, bool rsa = false);

}  // namespace enclave::x509
