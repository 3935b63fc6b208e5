// The local CA: what `enclavectl ca init` makes, the device and server certificates it issues,
// verification against it (and against another CA), and what is read back from a certificate.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <fstream>
#include <set>

#include "common/files.hpp"
#include "common/x509.hpp"
#include "tests/support/process.hpp"

namespace enclave::x509 {
namespace {

using testing::TempDir;

mode_t mode_of(const std::filesystem::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

struct X509Free {
  void operator()(X509* c) const { X509_free(c); }
};
std::unique_ptr<X509, X509Free> parse(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* c = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return std::unique_ptr<X509, X509Free>(c);
}

bool critical(X509* c, int nid) {
  const int at = X509_get_ext_by_NID(c, nid, -1);
  return at >= 0 && X509_EXTENSION_get_critical(X509_get_ext(c, at)) == 1;
}

class LocalCa : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(create_ca(cert_path(), key_path(), "enclave test CA"));
    auto ca = CertificateAuthority::load(cert_path(), key_path());
    ASSERT_TRUE(ca) << ca.error().describe();
    ca_ = std::make_unique<CertificateAuthority>(std::move(ca).value());
  }
  std::filesystem::path cert_path() const { return dir_ / "keys/ca/ca.crt"; }
  std::filesystem::path key_path() const { return dir_ / "keys/ca/ca.key"; }
  std::string ca_pem() const { return read_file(cert_path()).value(); }

  IssuedCertificate device(const std::string& id) {
    auto issued = ca_->issue({Purpose::kClient, id, {}, {}, 825});
    EXPECT_TRUE(issued) << issued.error().describe();
    return issued ? std::move(issued).value() : IssuedCertificate{};
  }

  TempDir dir_;
  std::unique_ptr<CertificateAuthority> ca_;
};

// The hash a certificate's signature was made with: what FreeRDP derives the TLS channel
// binding from (NID_undef for Ed25519, and then it refuses the connection).
int signature_digest(X509* cert) {
  int digest = NID_undef;
  OBJ_find_sigid_algs(X509_get_signature_nid(cert), &digest, nullptr);
  return digest;
}

TEST_F(LocalCa, IsASelfSignedEcdsaP256CaForTenYears) {
  EXPECT_EQ(mode_of(key_path()), 0600u);
  auto ca = parse(ca_pem());
  ASSERT_TRUE(ca);
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(ca.get())), EVP_PKEY_EC);
  EXPECT_EQ(signature_digest(ca.get()), NID_sha256);
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_TRUE(critical(ca.get(), NID_basic_constraints));
  EXPECT_TRUE(critical(ca.get(), NID_key_usage));
  EXPECT_EQ(X509_get_key_usage(ca.get()),
            static_cast<std::uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_check_issued(ca.get(), ca.get()), X509_V_OK) << "self-signed";
  int days = 0, secs = 0;
  ASSERT_EQ(
      ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(ca.get()), X509_get0_notAfter(ca.get())), 1);
  EXPECT_GE(days, 3652);
  EXPECT_LE(days, 3653);
}

TEST_F(LocalCa, IsNeverOverwritten) {
  const std::string before = ca_pem();
  auto again = create_ca(cert_path(), key_path(), "another");
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  EXPECT_NE(again.error().message.find(cert_path().string()), std::string::npos);
  EXPECT_EQ(ca_pem(), before);
  // Half of a CA (only the key left) is not overwritten either.
  std::filesystem::remove(cert_path());
  EXPECT_FALSE(create_ca(cert_path(), key_path(), "another"));
  EXPECT_FALSE(std::filesystem::exists(cert_path()));
}

TEST_F(LocalCa, RefusesAKeyOthersMayRead) {
  std::filesystem::permissions(key_path(), std::filesystem::perms::group_read,
                               std::filesystem::perm_options::add);
  auto ca = CertificateAuthority::load(cert_path(), key_path());
  ASSERT_FALSE(ca);
  EXPECT_EQ(ca.error().code, Errc::kPermission);
  EXPECT_NE(ca.error().message.find("mode 0640"), std::string::npos) << ca.error().message;
}

TEST_F(LocalCa, RefusesAKeyBehindASymbolicLinkOrOfAnotherType) {
  // The CA's key goes through the one key-file loader (common/ed25519).
  std::filesystem::create_symlink(key_path(), dir_ / "link.key");
  auto linked = CertificateAuthority::load(cert_path(), dir_ / "link.key");
  ASSERT_FALSE(linked);
  EXPECT_EQ(linked.error().code, Errc::kPermission);
  EXPECT_NE(linked.error().message.find("link.key"), std::string::npos) << linked.error().message;

  // An X25519 key (key agreement only) cannot be a CA's.
  TempDir other;
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> x25519(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519"), EVP_PKEY_free);
  ASSERT_TRUE(x25519);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(
      PEM_write_bio_PrivateKey(bio.get(), x25519.get(), nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio.get(), &data);
  ASSERT_TRUE(write_file_atomically(other / "x25519.key",
                                    std::string(data, static_cast<std::size_t>(size)), 0600));
  auto x = CertificateAuthority::load(cert_path(), other / "x25519.key");
  ASSERT_FALSE(x);
  EXPECT_EQ(x.error().code, Errc::kInvalidArgument);
  EXPECT_NE(x.error().message.find("x25519.key"), std::string::npos) << x.error().message;
  EXPECT_NE(x.error().message.find("not this type"), std::string::npos) << x.error().message;
}

TEST_F(LocalCa, RefusesAKeyThatIsNotTheCertificates) {
  TempDir other;
  ASSERT_TRUE(create_ca(other / "ca.crt", other / "ca.key", "other CA"));
  auto mixed = CertificateAuthority::load(cert_path(), other / "ca.key");
  ASSERT_FALSE(mixed);
  EXPECT_EQ(mixed.error().code, Errc::kInvalidArgument);
}

TEST_F(LocalCa, DeviceCertificateChainsAndSaysWhatItIs) {
  IssuedCertificate kit = device("kiosk-7");
  EXPECT_TRUE(verify_issued_by(kit.certificate_pem, ca_pem(), Purpose::kClient));
  auto wrong_purpose = verify_issued_by(kit.certificate_pem, ca_pem(), Purpose::kServer);
  ASSERT_FALSE(wrong_purpose) << "a device certificate is no server certificate";
  EXPECT_EQ(wrong_purpose.error().code, Errc::kPermission);

  auto cert = parse(kit.certificate_pem);
  ASSERT_TRUE(cert);
  EXPECT_EQ(X509_check_ca(cert.get()), 0);
  EXPECT_TRUE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_CLIENT);
  EXPECT_FALSE(X509_get_extended_key_usage(cert.get()) & XKU_SSL_SERVER);

  auto info = inspect(kit.certificate_pem);
  ASSERT_TRUE(info) << info.error().describe();
  EXPECT_EQ(info->common_name, "kiosk-7");
  EXPECT_EQ(info->ed25519_public_key.size(), 32u);
  EXPECT_LE(info->serial.size(), 32u);
  EXPECT_GE(info->serial.size(), 20u) << "128 random bits";
  EXPECT_EQ(info->serial.find_first_not_of("0123456789abcdef"), std::string::npos);
  // The digest is the certificate's DER, as certificate_sha256_hex_of_file computes it.
  ASSERT_TRUE(write_file_atomically(dir_ / "device.crt", kit.certificate_pem));
  EXPECT_EQ(info->sha256, certificate_sha256_hex_of_file(dir_ / "device.crt").value());

  // The key issued with it is its key, an Ed25519 one.
  BIO* bio =
      BIO_new_mem_buf(kit.private_key_pem.data(), static_cast<int>(kit.private_key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(X509_check_private_key(cert.get(), key), 1);
  Bytes raw(32);
  std::size_t len = raw.size();
  ASSERT_EQ(EVP_PKEY_get_raw_public_key(key, raw.data(), &len), 1);
  EXPECT_EQ(raw, info->ed25519_public_key);
  EVP_PKEY_free(key);
}

TEST_F(LocalCa, SerialsAreRandom) {
  std::set<std::string> serials;
  for (int i = 0; i < 20; ++i) serials.insert(inspect(device("k").certificate_pem)->serial);
  EXPECT_EQ(serials.size(), 20u);
}

TEST_F(LocalCa, ServerCertificateNamesItsHosts) {
  auto issued = ca_->issue({Purpose::kServer,
                            "gateway.enclave.example",
                            {"gateway.enclave.example"},
                            {"10.0.0.1", "2001:db8::1"},
                            825});
  ASSERT_TRUE(issued) << issued.error().describe();
  EXPECT_TRUE(verify_issued_by(issued->certificate_pem, ca_pem(), Purpose::kServer));
  EXPECT_FALSE(verify_issued_by(issued->certificate_pem, ca_pem(), Purpose::kClient));
  auto cert = parse(issued->certificate_pem);
  ASSERT_TRUE(cert);
  // ECDSA P-256 signed with SHA-256: what xfreerdp needs to bind its TLS channel.
  EXPECT_EQ(EVP_PKEY_get_base_id(X509_get0_pubkey(cert.get())), EVP_PKEY_EC);
  EXPECT_EQ(signature_digest(cert.get()), NID_sha256);
  EXPECT_EQ(X509_check_host(cert.get(), "gateway.enclave.example", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_host(cert.get(), "other.example", 0, 0, nullptr), 0);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "2001:db8::1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(cert.get(), "10.0.0.2", 0), 0);

  auto nameless = ca_->issue({Purpose::kServer, "gw", {}, {}, 825});
  ASSERT_FALSE(nameless);
  EXPECT_EQ(nameless.error().code, Errc::kInvalidArgument);
  auto bad_ip = ca_->issue({Purpose::kServer, "gw", {}, {"10.0.0.300"}, 825});
  ASSERT_FALSE(bad_ip);
  EXPECT_EQ(bad_ip.error().message, "\"10.0.0.300\" is not an IP address");
  auto injected = ca_->issue({Purpose::kServer, "gw", {"a.example,IP:1.2.3.4"}, {}, 825});
  EXPECT_FALSE(injected) << "a name cannot smuggle another subjectAltName entry";
}

TEST_F(LocalCa, AnotherCasCertificateFails) {
  TempDir other_dir;
  ASSERT_TRUE(create_ca(other_dir / "ca.crt", other_dir / "ca.key", "enclave test CA"));
  auto other = CertificateAuthority::load(other_dir / "ca.crt", other_dir / "ca.key");
  ASSERT_TRUE(other);
  auto foreign = other->issue({Purpose::kClient, "kiosk-7", {}, {}, 825});
  ASSERT_TRUE(foreign);
  auto r = verify_issued_by(foreign->certificate_pem, ca_pem(), Purpose::kClient);
  ASSERT_FALSE(r) << "same subject name, another key";
  EXPECT_EQ(r.error().code, Errc::kPermission);
  EXPECT_NE(r.error().message.find("does not verify against the CA"), std::string::npos);
}

TEST_F(LocalCa, TheCaItselfOrATamperedCertificateFails) {
  auto self = verify_issued_by(ca_pem(), ca_pem(), Purpose::kClient);
  ASSERT_FALSE(self);
  EXPECT_EQ(self.error().code, Errc::kPermission);

  // Change one byte of the signed part (the CN): the signature no longer holds.
  IssuedCertificate kit = device("kiosk-7");
  auto cert = parse(kit.certificate_pem);
  unsigned char* der = nullptr;
  const int n = i2d_X509(cert.get(), &der);
  ASSERT_GT(n, 0);
  Bytes bytes(der, der + n);
  OPENSSL_free(der);
  const std::string cn = "kiosk-7";
  auto at = std::search(bytes.begin(), bytes.end(), cn.begin(), cn.end());
  ASSERT_NE(at, bytes.end());
  at[6] = '8';
  const unsigned char* p = bytes.data();
  std::unique_ptr<X509, X509Free> tampered(d2i_X509(nullptr, &p, static_cast<long>(bytes.size())));
  ASSERT_TRUE(tampered);
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(out, tampered.get());
  char* data = nullptr;
  long len = BIO_get_mem_data(out, &data);
  const std::string tampered_pem(data, static_cast<std::size_t>(len));
  BIO_free(out);
  EXPECT_EQ(inspect(tampered_pem)->common_name, "kiosk-8");
  EXPECT_FALSE(verify_issued_by(tampered_pem, ca_pem(), Purpose::kClient));

  auto garbage =
      verify_issued_by("-----BEGIN CERTIFICATE-----\nAAAA\n", ca_pem(), Purpose::kClient);
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, Errc::kInvalidArgument);
  EXPECT_FALSE(inspect("not a certificate"));
}

}  // namespace
}  // namespace enclave::x509
