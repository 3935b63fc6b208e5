// Keys and certificates the services make and pin: self-signed certificates (local desktops,
// and the gateway's until the local CA issues one), the center's local CA (ECDSA P-256) that issues
// the kiosks' device certificates and the gateway's server certificate, and the SHA-256 pins
// policies name.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509.h>

#include "common/bytes.hpp"
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

// ---- The local CA -------------------------------------------------------------------------

// What a certificate issued by the CA is for.
enum class Purpose {
  kClient,  // a kiosk's device certificate: extendedKeyUsage clientAuth, CN = the device id
  kServer,  // the gateway's: serverAuth, subjectAltName DNS and IP entries
};

struct CertificateRequest {
  Purpose purpose = Purpose::kClient;
  std::string common_name;
  std::vector<std::string> dns_names;     // kServer: subjectAltName DNS entries
  std::vector<std::string> ip_addresses;  // kServer: subjectAltName IP entries
  int days = 825;
};

// A certificate and its fresh private key, both PEM. The key's text is wiped on destruction.
struct IssuedCertificate {
  std::string certificate_pem;
  std::string private_key_pem;

  IssuedCertificate() = default;
  IssuedCertificate(IssuedCertificate&&) noexcept = default;
  IssuedCertificate& operator=(IssuedCertificate&&) noexcept = default;
  ~IssuedCertificate();
};

// Creates the CA: an ECDSA P-256 key and a self-signed certificate signed with SHA-256
// (basicConstraints CA:TRUE and keyUsage keyCertSign, cRLSign, both critical), valid `days`
// (ten years). kAlreadyExists when either file exists: a CA is never overwritten. The key is
// written at mode 0600 first, the certificate last, each atomically; if the certificate cannot be
// written the key is removed.
Status create_ca(const std::filesystem::path& certificate, const std::filesystem::path& private_key,
                 const std::string& common_name, int days = 3652);

// The CA loaded for issuing.
class CertificateAuthority {
 public:
  // kPermission when group or others may read the key (as ssh refuses such keys).
  static Expected<CertificateAuthority> load(const std::filesystem::path& certificate,
                                             const std::filesystem::path& private_key);
  CertificateAuthority(CertificateAuthority&&) noexcept;
  CertificateAuthority& operator=(CertificateAuthority&&) noexcept;
  ~CertificateAuthority();

  // A fresh key (Ed25519 for a device, whose assertions it signs; ECDSA P-256 for the gateway)
  // and a certificate for it, signed by the CA (SHA-256), with a random 128-bit serial.
  // kInvalidArgument for an empty common name, a kServer request without names, or a malformed IP
  // address.
  Expected<IssuedCertificate> issue(const CertificateRequest& request) const;
  std::string certificate_pem() const;

 private:
  struct Impl;
  explicit CertificateAuthority(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks that the certificate was issued by the CA (signature, validity now, the CA's
// constraints), is no CA itself and is fit for the purpose. kPermission saying which check
// failed (OpenSSL's reason); kInvalidArgument for text that is no PEM certificate.
Status verify_issued_by(std::string_view certificate_pem, std::string_view ca_pem, Purpose purpose);

struct CertificateInfo {
  std::string serial;        // lowercase hex
  std::string common_name;   // the subject's CN ("" when it has none)
  std::string sha256;        // lowercase hex SHA-256 of the DER
  Bytes ed25519_public_key;  // raw 32 bytes; empty for another key type
};

// Reads one PEM certificate. kInvalidArgument for anything else.
Expected<CertificateInfo> inspect(std::string_view certificate_pem);

}  // namespace enclave::x509
