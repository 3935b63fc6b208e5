// The print vault: the key file (created 0600, refused when others may read it), sealing and
// opening, and every corruption or wrong binding failing instead of yielding bytes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/files.hpp"
#include "sessionmgr/service/print_vault.hpp"
#include "tests/support/process.hpp"

namespace enclave::sessionmgr {
namespace {

using testing::TempDir;
using KeyFile = PrintVault::KeyFile;

const PrintBinding kAlice{"alice", "kiosk-7", "p-0123456789abcdef"};

Bytes print_bytes() {
  Bytes b(2000);
  for (std::size_t i = 0; i < b.size(); ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

class Vault : public ::testing::Test {
 protected:
  std::filesystem::path key() const { return dir_ / "keys" / "prints.key"; }
  PrintVault vault() {
    auto v = PrintVault::load(key(), KeyFile::kCreateIfMissing);
    EXPECT_TRUE(v) << v.error().describe();
    return std::move(v).value();
  }
  TempDir dir_;
};

TEST_F(Vault, CreatesAPrivateKeyOnceAndReusesIt) {
  const Bytes sealed = vault().seal(print_bytes(), kAlice).value();
  struct stat st {};
  ASSERT_EQ(::stat(key().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  auto reopened = PrintVault::load(key(), KeyFile::kMustExist);
  ASSERT_TRUE(reopened) << reopened.error().describe();
  auto opened = reopened->open(sealed, kAlice);
  ASSERT_TRUE(opened) << opened.error().describe();
  EXPECT_EQ(*opened, print_bytes());
  EXPECT_EQ(sealed.size(), print_bytes().size() + PrintVault::kOverhead);
  EXPECT_NE(vault().seal(print_bytes(), kAlice).value(), sealed) << "a fresh nonce every time";
}

TEST_F(Vault, AMissingKeyIsNotCreatedWhenItMustExist) {
  auto v = PrintVault::load(key(), KeyFile::kMustExist);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().code, Errc::kNotFound);
  EXPECT_NE(v.error().message.find(key().string()), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(key()));
}

TEST_F(Vault, RefusesAKeyFileOthersMayReadOrOfTheWrongShape) {
  vault();
  std::filesystem::permissions(key(), std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto readable = PrintVault::load(key(), KeyFile::kCreateIfMissing);
  ASSERT_FALSE(readable);
  EXPECT_EQ(readable.error().code, Errc::kPermission);
  EXPECT_EQ(readable.error().message, key().string() +
                                          ": print vault key: mode 0604 lets group or others "
                                          "read it; chmod 600 it");
  std::filesystem::permissions(key(), std::filesystem::perms::owner_read,
                               std::filesystem::perm_options::replace);
  EXPECT_TRUE(PrintVault::load(key(), KeyFile::kMustExist)) << "0400 is fine";

  ASSERT_TRUE(write_file_atomically(dir_ / "short.key", std::string(31, 'k'), 0600));
  auto short_key = PrintVault::load(dir_ / "short.key", KeyFile::kMustExist);
  ASSERT_FALSE(short_key);
  EXPECT_EQ(short_key.error().code, Errc::kInvalidArgument);
  EXPECT_NE(short_key.error().message.find("31 bytes, not 32"), std::string::npos);

  std::filesystem::create_symlink(key(), dir_ / "link.key");
  EXPECT_FALSE(PrintVault::load(dir_ / "link.key", KeyFile::kMustExist));
  std::filesystem::create_directories(dir_ / "dir.key");
  EXPECT_FALSE(PrintVault::load(dir_ / "dir.key", KeyFile::kMustExist));
}

TEST_F(Vault, EveryChangedByteFailsToOpen) {
  PrintVault v = vault();
  Bytes small(40, 0x5a);
  const Bytes sealed = v.seal(small, kAlice).value();
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (std::uint8_t flip : {0x01, 0x80}) {
      Bytes tampered = sealed;
      tampered[i] ^= flip;
      auto r = v.open(tampered, kAlice);
      ASSERT_FALSE(r) << "byte " << i << " flipped with " << int(flip);
      EXPECT_EQ(r.error().code, Errc::kCorrupt);
    }
  }
  Bytes truncated(sealed.begin(), sealed.end() - 1);
  EXPECT_FALSE(v.open(truncated, kAlice));
  Bytes padded = sealed;
  padded.push_back(0);
  EXPECT_FALSE(v.open(padded, kAlice));
  EXPECT_FALSE(v.open(Bytes(PrintVault::kOverhead, 1), kAlice));
  EXPECT_FALSE(v.open({}, kAlice));
  auto version = sealed;
  version[0] = 2;
  auto r = v.open(version, kAlice);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message,
            "print p-0123456789abcdef of alice on device kiosk-7: unknown sealed-print version 2");
}

TEST_F(Vault, ABindingToAnotherUserDeviceOrPrintFails) {
  PrintVault v = vault();
  const Bytes sealed = v.seal(print_bytes(), {"ab", "c", "p1"}).value();
  EXPECT_TRUE(v.open(sealed, {"ab", "c", "p1"}));
  for (const PrintBinding& other :
       {PrintBinding{"bob", "c", "p1"}, PrintBinding{"ab", "kiosk-8", "p1"},
        PrintBinding{"ab", "c", "p2"}, PrintBinding{"a", "bc", "p1"}, PrintBinding{"ab", "cp", "1"},
        PrintBinding{"", "abc", "p1"}}) {
    auto r = v.open(sealed, other);
    ASSERT_FALSE(r) << other.user << "/" << other.device << "/" << other.print_id;
    EXPECT_EQ(r.error().code, Errc::kCorrupt);
    EXPECT_NE(r.error().message.find("authentication failed"), std::string::npos);
  }
}

TEST_F(Vault, AnotherKeyFailsToOpen) {
  const Bytes sealed = vault().seal(print_bytes(), kAlice).value();
  auto other = PrintVault::load(dir_ / "other.key", KeyFile::kCreateIfMissing);
  ASSERT_TRUE(other);
  EXPECT_FALSE(other->open(sealed, kAlice));
  EXPECT_FALSE(vault().seal({}, kAlice)) << "an empty print is refused";
}

}  // namespace
}  // namespace enclave::sessionmgr
