// Per-project key rings: wrap and unwrap, tenants never sharing a key, rotation with rewrap and
// retirement, destruction (crypto-shredding), project names that cannot leave the directory,
// and key files or directories others may read refused naming them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "exitcontrol/release/key_ring.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol::release {
namespace {

namespace fs = std::filesystem;
using enclave::testing::TempDir;
using ::testing::HasSubstr;

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct KeyRingFixture : ::testing::Test {
  TempDir dir;
  fs::path root = dir / "keys/exports";
  KeyRing ring{root};
  Bytes data_key = Bytes(32, 0);

  void SetUp() override {
    for (std::size_t i = 0; i < data_key.size(); ++i)
      data_key[i] = static_cast<std::uint8_t>(i * 7);
  }
  fs::path key_path(const std::string& project, const std::string& id) {
    return root / project / (id + ".key");
  }
};

TEST_F(KeyRingFixture, WrapsAndUnwrapsUnderTheProjectsOwnKey) {
  auto wrapped = ring.wrap("p-cancer", data_key);
  ASSERT_TRUE(wrapped) << wrapped.error().describe();
  EXPECT_EQ(wrapped->wrapped.size(), KeyRing::kWrappedBytes);
  EXPECT_EQ(wrapped->key_id, ring.current_key("p-cancer").value());
  EXPECT_THAT(wrapped->key_id, ::testing::MatchesRegex("000001-[0-9a-f]{8}"));
  EXPECT_EQ(mode_of(root), 0700u);
  EXPECT_EQ(mode_of(root / "p-cancer"), 0700u);
  EXPECT_EQ(mode_of(key_path("p-cancer", wrapped->key_id)), 0600u);
  EXPECT_EQ(fs::file_size(key_path("p-cancer", wrapped->key_id)), 32u);
  auto back = ring.unwrap("p-cancer", *wrapped);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, data_key);
  EXPECT_NE(ring.wrap("p-cancer", data_key).value(), *wrapped) << "a fresh nonce every time";
  // A second ring over the same directory (a restarted daemon) opens it too.
  EXPECT_EQ(KeyRing(root).unwrap("p-cancer", *wrapped).value(), data_key);

  for (std::size_t i = 0; i < wrapped->wrapped.size(); ++i) {
    WrappedKey bad = *wrapped;
    bad.wrapped[i] ^= 0x01;
    auto r = ring.unwrap("p-cancer", bad);
    ASSERT_FALSE(r) << "byte " << i;
    EXPECT_EQ(r.error().code, Errc::kCorrupt);
  }
  EXPECT_EQ(ring.wrap("p-cancer", Bytes(31, 1)).error().code, Errc::kInvalidArgument);
}

TEST_F(KeyRingFixture, TenantsNeverShareAKey) {
  auto a = ring.wrap("project-a", data_key);
  auto b = ring.wrap("project-b", data_key);
  ASSERT_TRUE(a && b);
  EXPECT_NE(read(key_path("project-a", a->key_id)), read(key_path("project-b", b->key_id)));
  // A's wrapped key under B's name: B has no key of that id.
  auto cross = ring.unwrap("project-b", *a);
  ASSERT_FALSE(cross);
  EXPECT_EQ(cross.error().code, Errc::kNotFound);
  // Even with B's key file given A's id, the project in the AAD keeps A's data key closed.
  fs::copy_file(key_path("project-b", b->key_id), key_path("project-b", a->key_id));
  auto spliced = ring.unwrap("project-b", *a);
  ASSERT_FALSE(spliced);
  EXPECT_EQ(spliced.error().code, Errc::kCorrupt);
  // And a key file copied from A to B does not open B's wrapping either (AAD names A).
  fs::remove(key_path("project-b", a->key_id));
  fs::copy_file(key_path("project-a", a->key_id), key_path("project-b", a->key_id));
  auto copied = ring.unwrap("project-b", *a);
  ASSERT_FALSE(copied);
  EXPECT_EQ(copied.error().code, Errc::kCorrupt);
  EXPECT_THAT(copied.error().message, HasSubstr("project project-b key " + a->key_id));
}

TEST_F(KeyRingFixture, RotateRewrapRetire) {
  const auto old_wrapped = ring.wrap("p1", data_key).value();
  auto next = ring.rotate("p1");
  ASSERT_TRUE(next) << next.error().describe();
  EXPECT_THAT(*next, ::testing::StartsWith("000002-"));
  EXPECT_EQ(ring.current_key("p1").value(), *next);
  EXPECT_EQ(ring.key_ids("p1").value(), (std::vector<std::string>{old_wrapped.key_id, *next}));
  EXPECT_EQ(ring.unwrap("p1", old_wrapped).value(), data_key) << "old keys stay until retired";

  auto retire_current = ring.retire("p1", *next);
  ASSERT_FALSE(retire_current);
  EXPECT_EQ(retire_current.error().code, Errc::kConflict);

  auto rewrapped = ring.rewrap("p1", old_wrapped);
  ASSERT_TRUE(rewrapped) << rewrapped.error().describe();
  EXPECT_EQ(rewrapped->key_id, *next);
  ASSERT_TRUE(ring.retire("p1", old_wrapped.key_id));
  EXPECT_FALSE(fs::exists(key_path("p1", old_wrapped.key_id)));
  EXPECT_EQ(ring.key_ids("p1").value(), std::vector<std::string>{*next});
  EXPECT_EQ(ring.unwrap("p1", *rewrapped).value(), data_key);
  auto gone = ring.unwrap("p1", old_wrapped);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::kNotFound);
  EXPECT_THAT(gone.error().message,
              HasSubstr("project p1 key " + old_wrapped.key_id + " was retired or destroyed"));
  EXPECT_EQ(ring.retire("p1", old_wrapped.key_id).error().code, Errc::kNotFound);
  EXPECT_EQ(ring.retire("p1", "../../x").error().code, Errc::kInvalidArgument);
}

TEST_F(KeyRingFixture, DestroyingAProjectsKeysMakesItsDataUnreadable) {
  const auto wrapped = ring.wrap("p-gone", data_key).value();
  ASSERT_TRUE(ring.rotate("p-gone"));
  const auto other = ring.wrap("p-stays", data_key).value();
  // A key file held open elsewhere sees the zeros written over it before the unlink.
  std::ifstream held(key_path("p-gone", wrapped.key_id), std::ios::binary);
  ASSERT_TRUE(ring.destroy("p-gone"));
  const std::string after(std::istreambuf_iterator<char>(held), {});
  EXPECT_EQ(after, std::string(32, '\0'));
  EXPECT_FALSE(fs::exists(root / "p-gone"));
  auto r = ring.unwrap("p-gone", wrapped);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kNotFound);
  EXPECT_EQ(ring.key_ids("p-gone").value(), std::vector<std::string>{});
  EXPECT_EQ(ring.destroy("p-gone").error().code, Errc::kNotFound);
  EXPECT_EQ(ring.unwrap("p-stays", other).value(), data_key) << "other tenants keep theirs";
  // The project may start over: its new first key has a new id.
  auto fresh = ring.current_key("p-gone");
  ASSERT_TRUE(fresh);
  EXPECT_NE(*fresh, wrapped.key_id);
}

TEST_F(KeyRingFixture, ProjectNamesCannotLeaveTheDirectory) {
  for (const std::string& project :
       {std::string(".."), std::string("../p1"), std::string("p1/../../etc"), std::string(""),
        std::string("/etc"), std::string("P1"), std::string(65, 'p')}) {
    auto r = ring.current_key(project);
    ASSERT_FALSE(r) << project;
    EXPECT_EQ(r.error().code, Errc::kInvalidArgument) << project;
    EXPECT_FALSE(ring.wrap(project, data_key)) << project;
    EXPECT_EQ(ring.destroy(project).error().code, Errc::kInvalidArgument) << project;
  }
  EXPECT_FALSE(fs::exists(dir / "etc"));
  EXPECT_FALSE(fs::exists(root)) << "nothing was created for a refused name";
}

TEST_F(KeyRingFixture, KeyFilesAndDirectoriesOthersMayReadAreRefusedByName) {
  const auto wrapped = ring.wrap("p1", data_key).value();
  const auto key_file = key_path("p1", wrapped.key_id);
  fs::permissions(key_file, fs::perms::group_read | fs::perms::others_read, fs::perm_options::add);
  auto r = ring.unwrap("p1", wrapped);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kPermission);
  EXPECT_EQ(r.error().message, key_file.string() +
                                   ": export key-encryption key: mode 0644 lets group or others "
                                   "read it; chmod 600 it");
  EXPECT_EQ(ring.wrap("p1", data_key).error().code, Errc::kPermission);
  fs::permissions(key_file, fs::perms::owner_read | fs::perms::owner_write,
                  fs::perm_options::replace);
  EXPECT_TRUE(ring.unwrap("p1", wrapped));

  fs::permissions(root / "p1", fs::perms::group_exec, fs::perm_options::add);
  auto dir_open = ring.wrap("p1", data_key);
  ASSERT_FALSE(dir_open);
  EXPECT_EQ(dir_open.error().code, Errc::kPermission);
  EXPECT_THAT(dir_open.error().message, HasSubstr((root / "p1").string() + ": mode 0710"));
  fs::permissions(root / "p1", fs::perms::group_exec, fs::perm_options::remove);

  // A symbolic link in a key's place is not followed.
  fs::rename(key_file, dir / "elsewhere.key");
  fs::create_symlink(dir / "elsewhere.key", key_file);
  auto link = ring.unwrap("p1", wrapped);
  ASSERT_FALSE(link);
  EXPECT_THAT(link.error().message, HasSubstr("a symbolic link"));
}

}  // namespace
}  // namespace enclave::exitcontrol::release
