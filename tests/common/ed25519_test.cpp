// The Ed25519 key-file loader every key file goes through (device keys, the local CA, the audit
// signer): the size bound at its edge, what is not a regular file, symbolic links, other key
// types; and the raw public key it exports. Mode and garbage refusals through a caller:
// login_assertion_test (SignAssertion.KeyFileRefusals) and x509_test (LocalCa).
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <sys/stat.h>

#include <string>

#include "common/ed25519.hpp"
#include "common/files.hpp"
#include "tests/support/process.hpp"

namespace enclave::crypto {
namespace {

using testing::TempDir;

EvpPkeyPtr generate(const char* type) {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  EXPECT_NE(key, nullptr) << type;
  return key;
}

std::string pem_of(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  return pem;
}

void write_key_file(const std::filesystem::path& path, const std::string& text) {
  ASSERT_TRUE(write_file_atomically(path, text, 0600));
}

TEST(Ed25519KeyFile, LoadsAndExportsTheRawPublicKey) {
  TempDir dir;
  auto key = generate("ED25519");
  write_key_file(dir / "device.key", pem_of(key.get()));
  auto loaded = load_ed25519_private_key(dir / "device.key");
  ASSERT_TRUE(loaded) << loaded.error().describe();
  auto exported = ed25519_public_key(loaded->get());
  ASSERT_TRUE(exported);
  EXPECT_EQ(exported->size(), kEd25519PublicKeyBytes);
  EXPECT_EQ(*exported, ed25519_public_key(key.get()).value());
  // What it signs verifies under the exported key.
  const std::string message = "checkpoint";
  auto signature = ed25519_sign(loaded->get(), as_bytes(message));
  ASSERT_TRUE(signature);
  EXPECT_TRUE(ed25519_verify(*exported, as_bytes(message), *signature));
}

TEST(Ed25519KeyFile, SixteenKiBAndNotOneByteMore) {
  TempDir dir;
  const std::string pem = pem_of(generate("ED25519").get());
  // Text after the PEM block is ignored by OpenSSL; it makes the file as large as wanted.
  const std::size_t limit = 16 * 1024;
  write_key_file(dir / "at-limit.key", pem + std::string(limit - pem.size(), '\n'));
  EXPECT_TRUE(load_ed25519_private_key(dir / "at-limit.key"));
  write_key_file(dir / "over.key", pem + std::string(limit + 1 - pem.size(), '\n'));
  auto over = load_ed25519_private_key(dir / "over.key");
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, Errc::kInvalidArgument);
  EXPECT_NE(over.error().message.find("over.key"), std::string::npos) << over.error().message;
  EXPECT_NE(over.error().message.find("larger than 16384 bytes"), std::string::npos);
}

TEST(Ed25519KeyFile, RefusesWhatIsNotARegularFileOrIsALink) {
  TempDir dir;
  std::filesystem::create_directory(dir / "a-directory.key");
  auto directory = load_ed25519_private_key(dir / "a-directory.key");
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, Errc::kInvalidArgument);
  EXPECT_NE(directory.error().message.find("not a regular file"), std::string::npos);

  // Without a writer, a blocking open() of a FIFO would never return.
  ASSERT_EQ(::mkfifo((dir / "fifo.key").c_str(), 0600), 0);
  auto fifo = load_ed25519_private_key(dir / "fifo.key");
  ASSERT_FALSE(fifo);
  EXPECT_EQ(fifo.error().code, Errc::kInvalidArgument);

  write_key_file(dir / "target.key", pem_of(generate("ED25519").get()));
  std::filesystem::create_symlink(dir / "target.key", dir / "link.key");
  auto link = load_ed25519_private_key(dir / "link.key");
  ASSERT_FALSE(link);
  EXPECT_EQ(link.error().code, Errc::kPermission);
  EXPECT_NE(link.error().message.find("link.key"), std::string::npos);
  EXPECT_NE(link.error().message.find("symbolic link"), std::string::npos);
}

TEST(Ed25519KeyFile, OtherKeyTypesAreRefusedByName) {
  TempDir dir;
  EvpPkeyPtr p256_key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(p256_key, nullptr);
  write_key_file(dir / "p256.key", pem_of(p256_key.get()));
  auto p256 = load_ed25519_private_key(dir / "p256.key");
  ASSERT_FALSE(p256);
  EXPECT_EQ(p256.error().code, Errc::kInvalidArgument);
  EXPECT_NE(p256.error().message.find("not Ed25519"), std::string::npos);
  auto x25519 = generate("X25519");
  EXPECT_FALSE(ed25519_public_key(x25519.get()));
  EXPECT_FALSE(ed25519_sign(x25519.get(), as_bytes("m")));
}

}  // namespace
}  // namespace enclave::crypto
