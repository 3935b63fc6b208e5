#include "common/x509.hpp"

#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "common/bytes.hpp"
#include "common/ed25519.hpp"
#include "common/files.hpp"
#include "common/net/ip.hpp"

namespace enclave::x509 {
namespace {

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Free>;

Expected<Owned<X509>> read_certificate(const std::filesystem::path& pem) {
  auto text = read_file(pem, 1 << 20);
  if (!text) return error_of(text);
  Owned<BIO> bio(BIO_new_mem_buf(text->data(), static_cast<int>(text->size())));
  Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return fail(Errc::kInvalidArgument, pem.string() + ": not a PEM certificate");
  return cert;
}

std::string sha256_of_der(int (*encode)(X509*, unsigned char**), X509* cert) {
  unsigned char* der = nullptr;
  int n = encode(cert, &der);
  if (n <= 0) return {};
  std::string hex = sha256_hex(ByteSpan(der, static_cast<std::size_t>(n)));
  OPENSSL_free(der);
  return hex;
}

int encode_spki(X509* cert, unsigned char** out) {
  return i2d_PUBKEY(X509_get0_pubkey(cert), out);
}
int encode_certificate(X509* cert, unsigned char** out) {
  return i2d_X509(cert, out);
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

}  // namespace

std::string spki_sha256_hex(X509* certificate) {
  return sha256_of_der(encode_spki, certificate);
}

Expected<std::string> spki_sha256_hex_of_file(const std::filesystem::path& pem) {
  auto cert = read_certificate(pem);
  if (!cert) return error_of(cert);
  return spki_sha256_hex(cert->get());
}

Expected<std::string> certificate_sha256_hex_of_file(const std::filesystem::path& pem) {
  auto cert = read_certificate(pem);
  if (!cert) return error_of(cert);
  return sha256_of_der(encode_certificate, cert->get());
}

Expected<std::string> xfreerdp_fingerprint_of_file(const std::filesystem::path& pem) {
  auto hex = certificate_sha256_hex_of_file(pem);
  if (!hex) return hex;
  std::string out;
  for (std::size_t i = 0; i < hex->size(); i += 2) {
    if (i) out += ':';
    out += hex->substr(i, 2);
  }
  return out;
}

Status generate_self_signed(const std::filesystem::path& certificate,
                            const std::filesystem::path& private_key,
                            const std::string& common_name, int days, bool rsa) {
  Owned<EVP_PKEY> key(rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256"));
  if (!key) return fail(Errc::kInternal, "key generation failed");
  Owned<X509> cert(X509_new());
  if (!cert) return fail(Errc::kInternal, "X509_new failed");
  X509_set_version(cert.get(), 2);
  Bytes serial(16);
  if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) {
    return fail(Errc::kInternal, "RAND_bytes failed");
  }
  serial[0] &= 0x7f;
  BIGNUM* bn = BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key.get());
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  const std::string san = "DNS:" + common_name;
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, san.c_str()},
                            std::pair{NID_basic_constraints, "critical,CA:FALSE"},
                            std::pair{NID_ext_key_usage, "serverAuth"}}) {
    Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
      return fail(Errc::kInternal, "adding a certificate extension failed");
    }
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return fail(Errc::kInternal, "signing the certificate failed");
  }
  Owned<BIO> key_bio(BIO_new(BIO_s_mem()));
  Owned<BIO> cert_bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) {
    return fail(Errc::kInternal, "encoding the key or certificate failed");
  }
  std::string key_pem = bio_text(key_bio.get());
  Status written = write_file_atomically(private_key, key_pem, 0600);
  secure_wipe(key_pem.data(), key_pem.size());
  ENCLAVE_TRY(written);
  return write_file_atomically(certificate, bio_text(cert_bio.get()), 0644);
}

// ---- The local CA -------------------------------------------------------------------------

namespace {

Expected<Owned<X509>> parse_certificate(std::string_view pem) {
  if (pem.size() > (1 << 20)) return fail(Errc::kInvalidArgument, "certificate larger than 1 MiB");
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) return fail(Errc::kInvalidArgument, "not a PEM certificate");
  return cert;
}

std::string pem_of(X509* cert) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return {};
  return bio_text(bio.get());
}

enum class KeyType { kEd25519, kEcdsaP256 };

Expected<Owned<EVP_PKEY>> new_key(KeyType type) {
  Owned<EVP_PKEY> key(type == KeyType::kEd25519
                          ? EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")
                          : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) {
    ERR_clear_error();
    return fail(Errc::kInternal, type == KeyType::kEd25519 ? "Ed25519 key generation failed"
                                                           : "ECDSA P-256 key generation failed");
  }
  return key;
}

// What X509_sign hashes with: SHA-256 for ECDSA; none for Ed25519, which signs the message
// itself. The CA signs with ECDSA because FreeRDP derives the TLS channel binding (RFC 5929
// tls-server-end-point) from the hash of the gateway certificate's signature, and refuses the
// connection when there is none, as with an Ed25519 signature.
const EVP_MD* digest_for(EVP_PKEY* signer) {
  return EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
}

Status set_random_serial(X509* cert) {
  Owned<BIGNUM> serial(BN_new());
  if (!serial) return fail(Errc::kInternal, "BN_new failed");
  do {
    if (BN_rand(serial.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return fail(Errc::kInternal, "BN_rand failed");
    }
  } while (BN_is_zero(serial.get()));
  if (!BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert))) {
    return fail(Errc::kInternal, "setting the serial number failed");
  }
  return {};
}

Status add_extensions(X509* cert, X509* issuer,
                      std::initializer_list<std::pair<int, std::string>> extensions) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
      ERR_clear_error();
      return fail(Errc::kInternal, std::string("adding the certificate extension ") +
                                       OBJ_nid2sn(nid) + " = " + value + " failed");
    }
  }
  return {};
}

// A certificate for `key` with subject CN = common_name, issued by issuer_name, its serial,
// validity and public key set; extensions and signature are the caller's.
Expected<Owned<X509>> new_certificate(EVP_PKEY* key, const std::string& common_name,
                                      X509_NAME* issuer_name, int days) {
  Owned<X509> cert(X509_new());
  if (!cert) return fail(Errc::kInternal, "X509_new failed");
  X509_set_version(cert.get(), 2);
  ENCLAVE_TRY(set_random_serial(cert.get()));
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1) {
    ERR_clear_error();
    return fail(Errc::kInvalidArgument, "\"" + common_name + "\" is not a usable common name");
  }
  X509_set_issuer_name(cert.get(), issuer_name != nullptr ? issuer_name : name);
  return cert;
}

std::string private_key_pem(EVP_PKEY* key) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  std::string pem = bio_text(bio.get());
  // The BIO's own buffer held the key too.
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  if (n > 0) secure_wipe(data, static_cast<std::size_t>(n));
  return pem;
}

}  // namespace

IssuedCertificate::~IssuedCertificate() {
  secure_wipe(private_key_pem.data(), private_key_pem.size());
}

Status create_ca(const std::filesystem::path& certificate, const std::filesystem::path& private_key,
                 const std::string& common_name, int days) {
  for (const auto& p : {certificate, private_key}) {
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::symlink_status(p, ec))) {
      return fail(Errc::kAlreadyExists,
                  p.string() + " exists: a CA is never overwritten (move it away first)");
    }
  }
  auto key = new_key(KeyType::kEcdsaP256);
  if (!key) return error_of(key);
  auto cert = new_certificate(key->get(), common_name, nullptr, days);
  if (!cert) return error_of(cert);
  X509* c = cert->get();
  ENCLAVE_TRY(add_extensions(c, c,
                             {{NID_basic_constraints, "critical,CA:TRUE"},
                              {NID_key_usage, "critical,keyCertSign,cRLSign"},
                              {NID_subject_key_identifier, "hash"}}));
  if (X509_sign(c, key->get(), digest_for(key->get())) <= 0) {
    ERR_clear_error();
    return fail(Errc::kInternal, "signing the CA certificate failed");
  }
  std::string key_pem = private_key_pem(key->get());
  if (key_pem.empty()) return fail(Errc::kInternal, "encoding the CA key failed");
  std::error_code ec;
  std::filesystem::create_directories(private_key.parent_path(), ec);
  std::filesystem::create_directories(certificate.parent_path(), ec);
  Status written = write_file_atomically(private_key, key_pem, 0600);
  secure_wipe(key_pem.data(), key_pem.size());
  ENCLAVE_TRY(written);
  Status cert_written = write_file_atomically(certificate, pem_of(c), 0644);
  if (!cert_written) {
    std::filesystem::remove(private_key, ec);
    return cert_written;
  }
  return {};
}

struct CertificateAuthority::Impl {
  Owned<X509> certificate;
  Owned<EVP_PKEY> key;
};

CertificateAuthority::CertificateAuthority(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CertificateAuthority::CertificateAuthority(CertificateAuthority&&) noexcept = default;
CertificateAuthority& CertificateAuthority::operator=(CertificateAuthority&&) noexcept = default;
CertificateAuthority::~CertificateAuthority() = default;

Expected<CertificateAuthority> CertificateAuthority::load(
    const std::filesystem::path& certificate, const std::filesystem::path& private_key) {
  auto cert = read_certificate(certificate);
  if (!cert) return error_of(cert);
  // The loader every key file goes through checks it is owner-only, bounds and wipes what it
  // reads, and names the file in its errors. ECDSA P-256 (create_ca); Ed25519 for a CA an
  // earlier version made.
  auto key = crypto::load_private_key(private_key);
  if (!key) return error_of(key);
  if (const int type = EVP_PKEY_get_base_id(key->get());
      type != EVP_PKEY_EC && type != EVP_PKEY_ED25519) {
    return fail(Errc::kInvalidArgument,
                private_key.string() + ": a CA key is ECDSA P-256 (or Ed25519), not this type");
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return fail(Errc::kInvalidArgument,
                private_key.string() + " is not the key of " + certificate.string());
  }
  if (X509_check_ca(cert->get()) == 0) {
    return fail(Errc::kInvalidArgument, certificate.string() + " is not a CA certificate");
  }
  auto impl = std::make_unique<Impl>();
  impl->certificate = std::move(cert).value();
  impl->key.reset(key->release());
  return CertificateAuthority(std::move(impl));
}

std::string CertificateAuthority::certificate_pem() const {
  return pem_of(impl_->certificate.get());
}

Expected<IssuedCertificate> CertificateAuthority::issue(const CertificateRequest& request) const {
  if (request.common_name.empty()) {
    return fail(Errc::kInvalidArgument, "a certificate needs a common name");
  }
  if (request.days < 1 || request.days > 3652) {
    return fail(Errc::kInvalidArgument, "a certificate's validity must be 1 to 3652 days");
  }
  std::string san;
  if (request.purpose == Purpose::kServer) {
    if (request.dns_names.empty() && request.ip_addresses.empty()) {
      return fail(Errc::kInvalidArgument, "a server certificate needs a DNS name or IP address");
    }
    for (const auto& name : request.dns_names) {
      if (name.empty() || name.find_first_of(", \t\r\n") != std::string::npos) {
        return fail(Errc::kInvalidArgument, "\"" + name + "\" is not a DNS name");
      }
      san += (san.empty() ? "DNS:" : ",DNS:") + name;
    }
    for (const auto& ip : request.ip_addresses) {
      auto address = net::IpAddress::parse(ip);
      if (!address) return fail(Errc::kInvalidArgument, address.error().describe());
      san += (san.empty() ? "IP:" : ",IP:") + address->text();
    }
  }
  // A device's key is Ed25519: the same key signs its fingerprint assertions. The gateway's is
  // ECDSA P-256, which every RDP client's TLS stack takes.
  auto key = new_key(request.purpose == Purpose::kServer ? KeyType::kEcdsaP256 : KeyType::kEd25519);
  if (!key) return error_of(key);
  X509* ca = impl_->certificate.get();
  auto cert =
      new_certificate(key->get(), request.common_name, X509_get_subject_name(ca), request.days);
  if (!cert) return error_of(cert);
  X509* c = cert->get();
  ENCLAVE_TRY(add_extensions(c, ca,
                             {{NID_basic_constraints, "critical,CA:FALSE"},
                              {NID_key_usage, "critical,digitalSignature"},
                              {NID_subject_key_identifier, "hash"},
                              {NID_authority_key_identifier, "keyid:always"}}));
  if (request.purpose == Purpose::kServer) {
    ENCLAVE_TRY(
        add_extensions(c, ca, {{NID_ext_key_usage, "serverAuth"}, {NID_subject_alt_name, san}}));
  } else {
    ENCLAVE_TRY(add_extensions(c, ca, {{NID_ext_key_usage, "clientAuth"}}));
  }
  if (X509_sign(c, impl_->key.get(), digest_for(impl_->key.get())) <= 0) {
    ERR_clear_error();
    return fail(Errc::kInternal, "signing the certificate failed");
  }
  IssuedCertificate out;
  out.certificate_pem = pem_of(c);
  out.private_key_pem = private_key_pem(key->get());
  if (out.certificate_pem.empty() || out.private_key_pem.empty()) {
    return fail(Errc::kInternal, "encoding the certificate or its key failed");
  }
  return out;
}

Status verify_issued_by(std::string_view certificate_pem, std::string_view ca_pem,
                        Purpose purpose) {
  auto cert = parse_certificate(certificate_pem);
  if (!cert) return error_of(cert);
  auto ca = parse_certificate(ca_pem);
  if (!ca) {
    return fail(Errc::kInvalidArgument, "the CA certificate: " + ca.error().message);
  }
  if (X509_check_ca(cert->get()) != 0) {
    return fail(Errc::kPermission,
                "the certificate is a CA certificate, not a " +
                    std::string(purpose == Purpose::kClient ? "device" : "server") +
                    " certificate");
  }
  Owned<X509_STORE> store(X509_STORE_new());
  Owned<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || X509_STORE_add_cert(store.get(), ca->get()) != 1 ||
      X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr) != 1) {
    ERR_clear_error();
    return fail(Errc::kInternal, "setting up certificate verification failed");
  }
  X509_STORE_CTX_set_purpose(
      ctx.get(), purpose == Purpose::kClient ? X509_PURPOSE_SSL_CLIENT : X509_PURPOSE_SSL_SERVER);
  const int ok = X509_verify_cert(ctx.get());
  const int why = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (ok != 1) {
    return fail(Errc::kPermission, std::string("the certificate does not verify against the CA: ") +
                                       X509_verify_cert_error_string(why));
  }
  return {};
}

Expected<CertificateInfo> inspect(std::string_view certificate_pem) {
  auto cert = parse_certificate(certificate_pem);
  if (!cert) return error_of(cert);
  X509* c = cert->get();
  CertificateInfo info;
  Owned<BIGNUM> serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
  if (serial) {
    char* hex = BN_bn2hex(serial.get());
    if (hex != nullptr) {
      info.serial = hex;
      OPENSSL_free(hex);
      for (char& ch : info.serial) {
        if (ch >= 'A' && ch <= 'F') ch = static_cast<char>(ch - 'A' + 'a');
      }
    }
  }
  X509_NAME* subject = X509_get_subject_name(c);
  const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (at >= 0) {
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
    unsigned char* utf8 = nullptr;
    const int n = ASN1_STRING_to_UTF8(&utf8, data);
    if (n >= 0) {
      info.common_name.assign(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(n));
      OPENSSL_free(utf8);
    }
  }
  info.sha256 = sha256_of_der(encode_certificate, c);
  EVP_PKEY* key = X509_get0_pubkey(c);
  if (key != nullptr && EVP_PKEY_get_id(key) == EVP_PKEY_ED25519) {
    std::size_t len = 32;
    info.ed25519_public_key.resize(len);
    if (EVP_PKEY_get_raw_public_key(key, info.ed25519_public_key.data(), &len) != 1 || len != 32) {
      info.ed25519_public_key.clear();
    }
  }
  ERR_clear_error();
  return info;
}

}  // namespace enclave::x509
