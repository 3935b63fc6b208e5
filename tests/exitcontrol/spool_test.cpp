// The export spool: files are copied out of the outbox with their hashes, sidecars come along,
// links and odd files are refused, a failed intake leaves nothing behind, a changed copy is
// caught, and a full disk is a clean error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/bytes.hpp"
#include "exitcontrol/service/spool.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol {
namespace {

using ::testing::HasSubstr;

void put(const std::filesystem::path& path, const std::string& content) {
  std::ofstream(path, std::ios::binary) << content;
}

std::size_t entries(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++n;
  return n;
}

struct SpoolFixture : ::testing::Test {
  testing::TempDir dir;
  std::filesystem::path outbox = dir / "outbox";
  Spool spool{dir / "spool"};
  void SetUp() override {
    std::filesystem::create_directories(outbox);
    std::filesystem::create_directories(spool.root());
  }
};

TEST_F(SpoolFixture, CopiesFilesWithTheirHashesAndSidecars) {
  put(outbox / "t.csv", "region,n\nA,12\n");
  put(outbox / "t.csv.meta.toml", "kind = \"frequency\"\n");
  put(outbox / "fig.png", "PNG...");
  auto in = spool.take_in(outbox, {"t.csv", "fig.png"}, {});
  ASSERT_TRUE(in) << in.error().describe();
  ASSERT_EQ(in->files.size(), 3u);
  EXPECT_EQ(in->files[0].name, "t.csv");
  EXPECT_EQ(in->files[0].sha256, sha256_hex(as_bytes("region,n\nA,12\n")));
  EXPECT_EQ(in->files[0].size, 14u);
  EXPECT_FALSE(in->files[0].sidecar);
  EXPECT_EQ(in->files[1].name, "t.csv.meta.toml");
  EXPECT_TRUE(in->files[1].sidecar);
  EXPECT_EQ(in->files[2].name, "fig.png");
  ASSERT_TRUE(spool.commit(in->incoming, 7));
  EXPECT_FALSE(std::filesystem::exists(in->incoming));
  struct stat st {};
  ASSERT_EQ(::stat(spool.file(7, "t.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(spool.verify(7, "t.csv", in->files[0].sha256));

  // The outbox may change afterwards; the copy is what was submitted.
  put(outbox / "t.csv", "region,n\nA,1\n");
  EXPECT_TRUE(spool.verify(7, "t.csv", in->files[0].sha256));
}

TEST_F(SpoolFixture, AChangedCopyIsCaughtWithBothHashes) {
  put(outbox / "t.csv", "a,b\n1,2\n");
  auto in = spool.take_in(outbox, {"t.csv"}, {});
  ASSERT_TRUE(in);
  ASSERT_TRUE(spool.commit(in->incoming, 3));
  put(spool.file(3, "t.csv"), "a,b\n1,3\n");
  auto changed = spool.verify(3, "t.csv", in->files[0].sha256);
  ASSERT_FALSE(changed);
  EXPECT_EQ(changed.error().code, Errc::kCorrupt);
  EXPECT_THAT(changed.error().message, HasSubstr("R-3 file t.csv changed after submission"));
  EXPECT_THAT(changed.error().message, HasSubstr(in->files[0].sha256));
  EXPECT_THAT(changed.error().message, HasSubstr(sha256_hex(as_bytes("a,b\n1,3\n"))));
  std::filesystem::remove(spool.file(3, "t.csv"));
  EXPECT_EQ(spool.verify(3, "t.csv", in->files[0].sha256).error().code, Errc::kNotFound);
}

TEST_F(SpoolFixture, RefusesWhatIsNotAPlainFileInTheOutboxAndLeavesNothing) {
  put(outbox / "ok.csv", "x\n");
  put(dir / "secret.csv", "x\n");
  std::filesystem::create_symlink(dir / "secret.csv", outbox / "link.csv");
  std::filesystem::create_directories(outbox / "sub");
  ::mkfifo((outbox / "fifo").c_str(), 0600);
  struct Case {
    std::vector<std::string> names;
    Errc code;
    std::string says;
  };
  for (const auto& c : std::vector<Case>{
           {{"ok.csv", "link.csv"}, Errc::kInvalidArgument, "link.csv is a symbolic link"},
           {{"ok.csv", "sub"}, Errc::kInvalidArgument, "sub is not a regular file"},
           {{"fifo"}, Errc::kInvalidArgument, "fifo is not a regular file"},
           {{"../secret.csv"}, Errc::kInvalidArgument, "without a directory"},
           {{".enclave-session"}, Errc::kInvalidArgument, "hidden files"},
           {{"manifest.json"}, Errc::kInvalidArgument, "uses this name for itself"},
           {{std::string(101, 'a')}, Errc::kInvalidArgument, "longer than 100 bytes"},
           {{"ok.csv", "ok.csv"}, Errc::kInvalidArgument, "named twice"},
           {{"ok.csv", "missing.csv"}, Errc::kNotFound, "missing.csv"},
           {{}, Errc::kInvalidArgument, "no files"},
       }) {
    auto in = spool.take_in(outbox, c.names, {});
    ASSERT_FALSE(in) << c.says;
    EXPECT_EQ(in.error().code, c.code) << in.error().describe();
    EXPECT_THAT(in.error().message, HasSubstr(c.says));
    EXPECT_EQ(entries(spool.root()), 0u) << c.says;
  }
  IntakeLimits small;
  small.max_file_bytes = 1;
  EXPECT_THAT(spool.take_in(outbox, {"ok.csv"}, small).error().message,
              HasSubstr("larger than 1 bytes"));
  EXPECT_EQ(entries(spool.root()), 0u);
}

TEST_F(SpoolFixture, SweepRemovesWhatNoRequestOwns) {
  put(outbox / "t.csv", "x\n");
  auto a = spool.take_in(outbox, {"t.csv"}, {});
  auto b = spool.take_in(outbox, {"t.csv"}, {});
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(spool.commit(a->incoming, 1));
  ASSERT_TRUE(spool.commit(b->incoming, 2));
  auto orphan = spool.take_in(outbox, {"t.csv"}, {});  // copied, never stored
  ASSERT_TRUE(orphan);
  spool.sweep([](std::int64_t id) { return id == 1; });
  EXPECT_TRUE(std::filesystem::exists(spool.dir(1)));
  EXPECT_FALSE(std::filesystem::exists(spool.dir(2)));
  EXPECT_FALSE(std::filesystem::exists(orphan->incoming));
}

TEST_F(SpoolFixture, AFullDiskIsACleanNoSpaceError) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs as the full disk";
  const auto small = dir / "small";
  std::filesystem::create_directories(small);
  if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=64k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  put(outbox / "big.csv", std::string(256 * 1024, 'x'));
  Spool full(small / "spool");
  auto in = full.take_in(outbox, {"big.csv"}, {});
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kNoSpace) << in.error().describe();
  EXPECT_THAT(in.error().message, HasSubstr("big.csv"));
  EXPECT_EQ(entries(full.root()), 0u);
  ::umount(small.c_str());
}

}  // namespace
}  // namespace enclave::exitcontrol
