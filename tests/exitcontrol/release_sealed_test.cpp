// Sealed storage: round trips at every chunk boundary, every kind of damage refused with
// kCorrupt naming the file (a flipped bit anywhere, truncation, reordered or dropped chunks, a
// header from another file, another key or binding), no half-written file under the final
// name, and a real full disk a clean kNoSpace that leaves nothing behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>

#include "exitcontrol/release/sealed.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol::release {
namespace {

namespace fs = std::filesystem;
using enclave::testing::TempDir;
using ::testing::HasSubstr;

constexpr std::size_t kRecord = kSealedChunkBytes + 16;
constexpr std::string_view kBinding = "p-cancer-2024/REL-7";

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  return out;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void put(const fs::path& path, std::string_view content) {
  std::ofstream(path, std::ios::binary).write(content.data(), static_cast<long>(content.size()));
}

std::size_t entries(const fs::path& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

struct Sealed : ::testing::Test {
  TempDir dir;
  Bytes key = random_bytes(kSealedDataKeyBytes, 99);

  // Seals data in pieces of `piece` bytes.
  fs::path seal(const std::string& name, const Bytes& data, std::size_t piece = 10000) {
    auto w = SealedWriter::create(dir / name, key, kBinding);
    EXPECT_TRUE(w) << w.error().describe();
    for (std::size_t at = 0; at < data.size(); at += piece) {
      EXPECT_TRUE(w->append(ByteSpan(data).subspan(at, std::min(piece, data.size() - at))));
    }
    Status done = w->finish();
    EXPECT_TRUE(done) << done.error().describe();
    return dir / name;
  }
  Expected<Bytes> open_all(const fs::path& path, ByteSpan with_key, std::string_view binding) {
    auto r = SealedReader::open(path, with_key, binding);
    if (!r) return error_of(r);
    Bytes out;
    ENCLAVE_TRY(r->read_all([&](ByteSpan chunk) -> Status {
      EXPECT_LE(chunk.size(), kSealedChunkBytes);
      out.insert(out.end(), chunk.begin(), chunk.end());
      return {};
    }));
    return out;
  }
  Expected<Bytes> open_all(const fs::path& path) { return open_all(path, key, kBinding); }
  // The error of opening and reading a damaged copy of a sealed file.
  Error damaged(const std::string& content) {
    put(dir / "damaged", content);
    auto r = open_all(dir / "damaged");
    EXPECT_FALSE(r) << "accepted";
    return r ? Error{} : r.error();
  }
};

TEST_F(Sealed, RoundTripsAtEveryChunkBoundary) {
  for (std::size_t size :
       {std::size_t{0}, std::size_t{1}, kSealedChunkBytes - 1, kSealedChunkBytes,
        kSealedChunkBytes + 1, 3 * kSealedChunkBytes, 3 * kSealedChunkBytes + 5}) {
    const Bytes data = random_bytes(size, static_cast<unsigned>(size));
    const auto path = seal("s" + std::to_string(size), data, size % 7 == 0 ? 4096 : 65537);
    const std::size_t chunks =
        size / kSealedChunkBytes + 1 - (size > 0 && size % kSealedChunkBytes == 0);
    EXPECT_EQ(fs::file_size(path), kSealedHeaderBytes + size + 16 * chunks) << size;
    EXPECT_EQ((fs::status(path).permissions() & fs::perms::all),
              fs::perms::owner_read | fs::perms::owner_write);
    auto r = SealedReader::open(path, key, kBinding);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->plaintext_size(), size);
    auto back = open_all(path);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(*back, data) << size;
  }
  EXPECT_EQ(entries(dir.path()), 7u) << "no temporary files left";
  const std::string text = read(dir / "s1");
  EXPECT_EQ(text.substr(0, 8), "ENCLSEAL");
  EXPECT_EQ(text.substr(8, 5), std::string("\x01\x00\x01\x00\x00", 5)) << "version 1, 65536";
}

TEST_F(Sealed, EveryFlippedBitFailsAuthentication) {
  const Bytes data = random_bytes(2 * kSealedChunkBytes + 100, 1);
  const std::string good = read(seal("f", data));
  std::vector<std::size_t> positions;
  for (std::size_t i = 0; i < kSealedHeaderBytes; ++i) positions.push_back(i);
  for (std::size_t c = 0; c < 3; ++c) {  // first and last bytes of each chunk and of its tag
    const std::size_t at = kSealedHeaderBytes + c * kRecord;
    const std::size_t end = std::min(at + kRecord, good.size());
    for (std::size_t i : {at, at + 1, at + 50, end - 17, end - 16, end - 1}) positions.push_back(i);
  }
  for (std::size_t i : positions) {
    for (int bit : {0, 7}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      const Error e = damaged(bad);
      EXPECT_EQ(e.code, Errc::kCorrupt) << "byte " << i << " bit " << bit;
      EXPECT_THAT(e.message, HasSubstr((dir / "damaged").string())) << "byte " << i;
    }
  }
  // A changed chunk says which one.
  std::string bad = good;
  bad[kSealedHeaderBytes + kRecord + 10] ^= 1;
  EXPECT_THAT(damaged(bad).message, HasSubstr("chunk 1 fails authentication"));
}

TEST_F(Sealed, TruncatedReorderedOrSplicedFilesFail) {
  const Bytes data = random_bytes(3 * kSealedChunkBytes + 100, 2);
  const std::string good = read(seal("t", data));
  // Cut at each chunk boundary (what is left looks whole but its last chunk was not sealed as
  // last), inside chunks, inside the header, and to nothing.
  for (std::size_t cut :
       {kSealedHeaderBytes + kRecord, kSealedHeaderBytes + 2 * kRecord,
        kSealedHeaderBytes + 3 * kRecord, kSealedHeaderBytes + 3 * kRecord + 50, good.size() - 1,
        kSealedHeaderBytes + 10, kSealedHeaderBytes, std::size_t{7}, std::size_t{0}}) {
    const Error e = damaged(good.substr(0, cut));
    EXPECT_EQ(e.code, Errc::kCorrupt) << "cut at " << cut;
  }
  // Chunks 0 and 1 swapped; chunk 1 dropped; chunk 1 twice.
  const std::string header = good.substr(0, kSealedHeaderBytes);
  auto chunk = [&](std::size_t i) {
    return good.substr(kSealedHeaderBytes + i * kRecord, kRecord);
  };
  const std::string tail = good.substr(kSealedHeaderBytes + 3 * kRecord);
  EXPECT_THAT(damaged(header + chunk(1) + chunk(0) + chunk(2) + tail).message,
              HasSubstr("chunk 0 fails authentication"));
  EXPECT_EQ(damaged(header + chunk(0) + chunk(2) + tail).code, Errc::kCorrupt);
  EXPECT_EQ(damaged(header + chunk(0) + chunk(1) + chunk(1) + chunk(2) + tail).code,
            Errc::kCorrupt);
  EXPECT_EQ(damaged(good + std::string(16, '\0')).code, Errc::kCorrupt) << "bytes appended";
  // Another file's header (another nonce prefix) in front of these chunks.
  const std::string other = read(seal("other", data));
  EXPECT_EQ(damaged(other.substr(0, kSealedHeaderBytes) + good.substr(kSealedHeaderBytes)).code,
            Errc::kCorrupt);
  // A reader that failed hands out nothing more.
  put(dir / "cut", good.substr(0, kSealedHeaderBytes + kRecord));
  auto r = SealedReader::open(dir / "cut", key, kBinding);
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->next());
  EXPECT_FALSE(r->done());
}

TEST_F(Sealed, AnotherKeyOrBindingOrAnUnknownFormatFails) {
  const auto path = seal("k", random_bytes(1000, 3));
  auto other_key = open_all(path, random_bytes(32, 4), kBinding);
  ASSERT_FALSE(other_key);
  EXPECT_EQ(other_key.error().code, Errc::kCorrupt);
  EXPECT_THAT(other_key.error().message, HasSubstr(path.string()));
  for (std::string_view binding : {"p-cancer-2024/REL-8", "p-other/REL-7", ""}) {
    auto r = open_all(path, key, binding);
    ASSERT_FALSE(r) << binding;
    EXPECT_EQ(r.error().code, Errc::kCorrupt);
  }
  EXPECT_EQ(SealedReader::open(path, random_bytes(31, 5), kBinding).error().code,
            Errc::kInvalidArgument);
  EXPECT_EQ(SealedWriter::create(dir / "x", random_bytes(16, 5), kBinding).error().code,
            Errc::kInvalidArgument);
  std::string text = read(path);
  text[8] = 2;
  EXPECT_THAT(damaged(text).message, HasSubstr("unknown version 2"));
  EXPECT_THAT(damaged("PK\x03\x04 a zip file").message, HasSubstr("not a sealed file"));
  auto missing = SealedReader::open(dir / "missing", key, kBinding);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST_F(Sealed, NothingHalfWrittenEverStandsUnderTheFinalName) {
  {
    auto w = SealedWriter::create(dir / "abandoned", key, kBinding);
    ASSERT_TRUE(w);
    ASSERT_TRUE(w->append(random_bytes(200000, 6)));
    EXPECT_EQ(entries(dir.path()), 1u) << "the temporary file";
    EXPECT_FALSE(fs::exists(dir / "abandoned")) << "not before finish";
  }
  EXPECT_EQ(entries(dir.path()), 0u) << "an unfinished writer leaves nothing";

  const auto path = seal("once", random_bytes(10, 7));
  const std::string first = read(path);
  auto again = SealedWriter::create(path, key, kBinding);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::kAlreadyExists);
  // The target appears between create and finish: still never replaced.
  auto racing = SealedWriter::create(dir / "race", key, kBinding);
  ASSERT_TRUE(racing);
  put(dir / "race", "someone else's");
  auto finished = racing->finish();
  ASSERT_FALSE(finished);
  EXPECT_EQ(finished.error().code, Errc::kAlreadyExists);
  EXPECT_EQ(read(dir / "race"), "someone else's");
  EXPECT_EQ(read(path), first);
  EXPECT_EQ(entries(dir.path()), 2u);
  EXPECT_EQ(racing->append(as_bytes("x")).error().code, Errc::kConflict);
}

// A real full disk: a 256 KiB tmpfs in a private mount namespace of a child process, so the
// mount never shows outside it. The child reports through its exit code and a pipe.
TEST_F(Sealed, AFullDiskIsACleanNoSpaceErrorThatLeavesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to mount a small tmpfs as the full disk";
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const fs::path small = dir / "small";
  fs::create_directories(small);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    auto report = [&](int code, const std::string& text) {
      (void)!::write(pipe_fds[1], text.data(), text.size());
      ::_exit(code);
    };
    if (::unshare(CLONE_NEWNS) != 0 ||
        ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      report(77, std::string("unshare: ") + std::strerror(errno));
    }
    if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k") != 0) {
      report(77, std::string("mount: ") + std::strerror(errno));
    }
    auto w = SealedWriter::create(small / "REL-1.sealed", key, kBinding);
    if (!w) report(1, "create: " + w.error().describe());
    const Bytes piece = random_bytes(kSealedChunkBytes, 8);
    Status s;
    for (int i = 0; i < 64 && s; ++i) s = w->append(piece);
    if (s) s = w->finish();
    if (s) report(2, "a 4 MiB file fit in 256 KiB");
    std::size_t left = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(small)) ++left;
    if (left != 0) report(3, std::to_string(left) + " files left on the full disk");
    if (s.error().code != Errc::kNoSpace) report(4, "not kNoSpace: " + s.error().describe());
    if (s.error().message.find("REL-1.sealed") == std::string::npos) {
      report(5, "the error does not name the file: " + s.error().describe());
    }
    report(0, s.error().describe());
  }
  ::close(pipe_fds[1]);
  std::string said;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
    said.append(buf, static_cast<std::size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no private tmpfs here: " << said;
  EXPECT_EQ(WEXITSTATUS(status), 0) << said;
  EXPECT_THAT(said, HasSubstr("No space left on device"));
  EXPECT_EQ(entries(small), 0u) << "the mount stayed in the child's namespace";
}

}  // namespace
}  // namespace enclave::exitcontrol::release
