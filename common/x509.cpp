#include "common/x509.hpp"

#include <cstdio>
#include <memory>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include "common/bytes.hpp"
#include "common/files.hpp"

namespace enclave::x509 {
namespace {

struct Free {
  void operator()(X509* p) const { X509_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
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

}  // namespace enclave::x509
