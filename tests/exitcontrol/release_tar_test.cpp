// The ustar writer and reader of release bundles: header known answers from GNU tar, archives GNU
// tar lists and extracts byte for byte, archives GNU tar writes read back, 100 MB streamed through
// GNU tar without being held, and every malformed archive refused with its own error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <random>

#include "common/bytes.hpp"
#include "exitcontrol/release/tar.hpp"
#include "tests/support/process.hpp"

namespace enclave::exitcontrol::release {
namespace {

namespace fs = std::filesystem;
using enclave::testing::TempDir;
using ::testing::HasSubstr;

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Bytes random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  Bytes out(n);
  for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  return out;
}

ByteSink append_to(Bytes& out) {
  return [&out](ByteSpan data) -> Status {
    out.insert(out.end(), data.begin(), data.end());
    return {};
  };
}

struct Member {
  std::string name;
  Bytes data;
};

Bytes archive_of(const std::vector<Member>& members, std::int64_t mtime = 1700000000) {
  Bytes out;
  TarWriter tar(append_to(out));
  for (const auto& m : members) {
    Status added = tar.add({m.name, m.data.size(), mtime}, m.data);
    EXPECT_TRUE(added) << added.error().describe();
  }
  EXPECT_TRUE(tar.finish());
  EXPECT_EQ(tar.bytes_written(), out.size());
  return out;
}

std::vector<Member> sample_members() {
  return {{"empty.csv", {}},
          {"one.txt", {'x'}},
          {"block-less-one", random_bytes(511, 1)},
          {"block", random_bytes(512, 2)},
          {"block-and-one", random_bytes(513, 3)},
          {"large.bin", random_bytes(300 * 1024 + 17, 4)},
          {std::string(100, 'n'), random_bytes(40, 5)},
          {"集計結果 (2024).csv", random_bytes(64, 6)}};
}

// GNU tar 1.34 on a 12-byte hello.txt: tar --format=ustar --owner=0 --group=0 --numeric-owner
// --mtime=@1700000000 --mode=0644 -cf: its first block.
TEST(TarHeader, MatchesGnuTarByteForByte) {
  auto h = tar_header({"hello.txt", 12, 1700000000});
  ASSERT_TRUE(h) << h.error().describe();
  EXPECT_EQ(tar_checksum(*h), 011106u);
  EXPECT_EQ(as_chars(ByteSpan(*h).subspan(148, 8)), std::string_view("011106\0 ", 8));
  EXPECT_EQ(sha256_hex(*h), "62b3b3ae1dbd5fb73eae32be071eb92f63a26e2b7b5970299b6780b154a71b62");
  // The longest name, empty, mtime 0 (--mtime=@0).
  auto edge = tar_header({std::string(100, 'x'), 0, 0});
  ASSERT_TRUE(edge) << edge.error().describe();
  EXPECT_EQ(tar_checksum(*edge), 036535u);
  EXPECT_EQ(sha256_hex(*edge), "54a866c106a42ec3491590d332ffe549d8077a899fcc7a538d6c7f29d1a54774");
  // The largest size ustar holds.
  auto largest = tar_header({"f", kTarMaxNumber, 0});
  ASSERT_TRUE(largest);
  EXPECT_EQ(as_chars(ByteSpan(*largest).subspan(124, 12)), std::string_view("77777777777\0", 12));
}

TEST(TarHeader, RefusesNamesThatAreNotPlainAndNumbersOutOfRange) {
  for (const std::string& name :
       {std::string(), std::string(101, 'a'), std::string("dir/f.csv"), std::string("/etc/passwd"),
        std::string(".."), std::string("."), std::string("a\0b", 3)}) {
    auto h = tar_header({name, 1, 0});
    ASSERT_FALSE(h) << name;
    EXPECT_EQ(h.error().code, Errc::kInvalidArgument);
  }
  for (const std::string& name : {std::string("a..b.csv"), std::string(".profile"),
                                  std::string("表.csv"), std::string(100, 'a')}) {
    EXPECT_TRUE(check_member_name(name)) << name;
  }
  EXPECT_FALSE(tar_header({"f", kTarMaxNumber + 1, 0}));
  EXPECT_FALSE(tar_header({"f", 1, -1}));
  EXPECT_FALSE(tar_header({"f", 1, static_cast<std::int64_t>(kTarMaxNumber) + 1}));
  EXPECT_EQ(tar_padding(0), 0u);
  EXPECT_EQ(tar_padding(1), 511u);
  EXPECT_EQ(tar_padding(512), 0u);
  EXPECT_EQ(tar_padding(513), 511u);
}

TEST(TarWriter, GnuTarListsAndExtractsEveryMemberByteForByte) {
  TempDir dir;
  const auto members = sample_members();
  const Bytes archive = archive_of(members);
  {
    std::ofstream(dir / "a.tar", std::ios::binary)
        .write(reinterpret_cast<const char*>(archive.data()),
               static_cast<std::streamsize>(archive.size()));
  }
  auto list = enclave::testing::run({"tar", "-tvf", (dir / "a.tar").string()});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_EQ(list.err, "") << "GNU tar warns about nothing";
  for (const auto& m : members) {
    EXPECT_THAT(list.out, HasSubstr(" " + std::to_string(m.data.size()) + " 2023-11-1"));
    EXPECT_THAT(list.out, HasSubstr(m.name + "\n"));
    EXPECT_THAT(list.out, HasSubstr("-rw-r--r--"));
  }
  fs::create_directories(dir / "out");
  auto extract =
      enclave::testing::run({"tar", "-xf", (dir / "a.tar").string(), "-C", (dir / "out").string()});
  ASSERT_EQ(extract.exit_code, 0) << extract.err;
  std::size_t extracted = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "out")) ++extracted;
  EXPECT_EQ(extracted, members.size());
  for (const auto& m : members) {
    const auto text = read(dir / "out" / m.name);
    EXPECT_EQ(Bytes(text.begin(), text.end()), m.data) << m.name;
    struct stat st {};
    ASSERT_EQ(::stat((dir / "out" / m.name).c_str(), &st), 0);
    EXPECT_EQ(st.st_mtime, 1700000000) << m.name;
  }
}

TEST(TarWriter, StreamsAHundredMegabytesThroughGnuTarWithoutHoldingThem) {
  TempDir dir;
  constexpr std::uint64_t kSize = 100ull * 1000 * 1000;
  const auto out = dir / "sha256";
  const std::string command = "tar -xOf - | sha256sum > '" + out.string() + "'";
  std::FILE* pipe = ::popen(command.c_str(), "w");
  ASSERT_NE(pipe, nullptr);
  std::uint64_t largest_piece = 0;
  TarWriter tar([&](ByteSpan data) -> Status {
    largest_piece = std::max<std::uint64_t>(largest_piece, data.size());
    if (std::fwrite(data.data(), 1, data.size(), pipe) != data.size()) {
      return fail(Errc::kIo, "pipe to tar");
    }
    return {};
  });
  ASSERT_TRUE(tar.begin({"big.bin", kSize, 1700000000}));
  Sha256Stream expected;
  Bytes piece(1 << 16);
  std::uint64_t counter = 0;
  for (std::uint64_t sent = 0; sent < kSize;) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(piece.size(), kSize - sent));
    for (std::size_t i = 0; i < n; i += 8) {
      ++counter;
      for (std::size_t k = 0; k < 8 && i + k < n; ++k) {
        piece[i + k] = static_cast<std::uint8_t>((counter * 0x9E3779B97F4A7C15ull) >> (8 * k));
      }
    }
    const ByteSpan data(piece.data(), n);
    expected.update(data);
    ASSERT_TRUE(tar.write(data));
    sent += n;
  }
  ASSERT_TRUE(tar.end());
  ASSERT_TRUE(tar.finish());
  ASSERT_EQ(::pclose(pipe), 0);
  EXPECT_EQ(tar.bytes_written(), 512 + kSize + tar_padding(kSize) + 1024);
  EXPECT_LE(largest_piece, 1u << 16) << "the writer passes pieces on, it does not gather them";
  EXPECT_EQ(read(out).substr(0, 64), expected.hex_final());
}

TEST(TarWriter, RefusesCallsOutOfOrderAndWrongSizes) {
  Bytes out;
  {
    TarWriter tar(append_to(out));
    ASSERT_TRUE(tar.begin({"a", 3, 0}));
    auto more = tar.write(as_bytes("abcd"));
    ASSERT_FALSE(more);
    EXPECT_THAT(more.error().message, HasSubstr("declared 3 bytes and got more"));
    auto after = tar.finish();
    ASSERT_FALSE(after);
    EXPECT_EQ(after.error().code, Errc::kConflict) << "a failed archive is abandoned";
  }
  {
    TarWriter tar(append_to(out));
    ASSERT_TRUE(tar.begin({"a", 3, 0}));
    ASSERT_TRUE(tar.write(as_bytes("ab")));
    auto fewer = tar.end();
    ASSERT_FALSE(fewer);
    EXPECT_THAT(fewer.error().message, HasSubstr("declared 3 bytes and got 2"));
  }
  {
    TarWriter tar(append_to(out));
    ASSERT_TRUE(tar.add({"a", 1, 0}, as_bytes("x")));
    auto twice = tar.add({"a", 1, 0}, as_bytes("y"));
    ASSERT_FALSE(twice);
    EXPECT_THAT(twice.error().message, HasSubstr("a is already in the archive"));
  }
  {
    TarWriter tar(append_to(out));
    ASSERT_TRUE(tar.begin({"a", 1, 0}));
    EXPECT_EQ(tar.finish().error().code, Errc::kConflict);
  }
  {
    TarWriter tar(append_to(out));
    EXPECT_EQ(tar.write(as_bytes("x")).error().code, Errc::kConflict);
  }
  {
    TarWriter tar([](ByteSpan) -> Status { return fail(Errc::kNoSpace, "disk full"); });
    auto full = tar.add({"a", 1, 0}, as_bytes("x"));
    ASSERT_FALSE(full);
    EXPECT_EQ(full.error().code, Errc::kNoSpace) << "the sink's error comes back as it was";
  }
}

TEST(TarReader, ReadsWhatItWritesAndWhatGnuTarWrites) {
  const auto members = sample_members();
  const Bytes ours = archive_of(members, 1234567890);
  auto entries = read_tar(ours);
  ASSERT_TRUE(entries) << entries.error().describe();
  ASSERT_EQ(entries->size(), members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ((*entries)[i].name, members[i].name);
    EXPECT_EQ((*entries)[i].mtime, 1234567890);
    EXPECT_EQ(Bytes((*entries)[i].data.begin(), (*entries)[i].data.end()), members[i].data);
  }

  TempDir dir;
  fs::create_directories(dir / "in");
  std::vector<std::string> argv{"tar", "--format=ustar",     "-cf", (dir / "gnu.tar").string(),
                                "-C",  (dir / "in").string()};
  for (const auto& m : members) {
    std::ofstream(dir / "in" / m.name, std::ios::binary)
        .write(reinterpret_cast<const char*>(m.data.data()),
               static_cast<std::streamsize>(m.data.size()));
    argv.push_back(m.name);
  }
  auto made = enclave::testing::run(argv);
  ASSERT_EQ(made.exit_code, 0) << made.err;
  const auto gnu_text = read(dir / "gnu.tar");
  const Bytes gnu(gnu_text.begin(), gnu_text.end());
  EXPECT_EQ(gnu.size() % 10240, 0u) << "GNU tar pads to its record size";
  auto gnu_entries = read_tar(gnu);
  ASSERT_TRUE(gnu_entries) << gnu_entries.error().describe();
  ASSERT_EQ(gnu_entries->size(), members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    EXPECT_EQ((*gnu_entries)[i].name, members[i].name);
    EXPECT_EQ(Bytes((*gnu_entries)[i].data.begin(), (*gnu_entries)[i].data.end()), members[i].data);
  }
}

// Recomputes a header's checksum after a test changed one of its fields.
void restamp(Bytes& archive, std::size_t header_at) {
  TarHeader h;
  std::copy_n(archive.begin() + static_cast<long>(header_at), h.size(), h.begin());
  char field[8];
  std::snprintf(field, sizeof field, "%06o", tar_checksum(h));
  std::copy_n(field, 7, archive.begin() + static_cast<long>(header_at + 148));
}

TarErrc error_of_reading(const Bytes& archive, const TarLimits& limits = {}) {
  auto r = read_tar(archive, limits);
  EXPECT_FALSE(r) << "accepted";
  return r ? TarErrc::kBadHeader : r.error().code;
}

TEST(TarReader, RefusesEveryMalformedArchiveWithItsOwnError) {
  const Bytes good = archive_of({{"a.csv", random_bytes(700, 7)}, {"b.csv", {'b'}}});
  // Header 0 at 0, its data 512..1211 padded to 1536; header 1 at 1536, data at 2048, end 2560.
  ASSERT_EQ(good.size(), 3584u);

  for (std::size_t i = 0; i < 512; ++i) {  // every byte of the first header
    Bytes bad = good;
    bad[i] ^= 0x01;
    auto r = read_tar(bad);
    ASSERT_FALSE(r) << "header byte " << i;
    EXPECT_EQ(r.error().offset, 0u);
  }
  {
    Bytes bad = good;
    bad[600] ^= 0x01;
    EXPECT_TRUE(read_tar(bad)) << "data is the manifest's business (bundle.hpp), not the tar's";
  }
  for (std::size_t cut = 1; cut < good.size(); cut += 97) {
    Bytes bad(good.begin(), good.begin() + static_cast<long>(cut));
    auto r = read_tar(bad);
    ASSERT_FALSE(r) << "cut at " << cut;
    EXPECT_TRUE(r.error().code == TarErrc::kTruncated || r.error().code == TarErrc::kNoEnd)
        << r.error().describe();
  }
  {
    Bytes bad(good.begin(), good.end() - 512);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kNoEnd) << "one zero block is not the end";
  }
  {
    Bytes bad = good;
    bad.push_back(1);
    bad.resize(bad.size() + 511, 0);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kTrailingData);
    Bytes padded = good;
    padded.resize(good.size() + 10 * 512, 0);
    EXPECT_TRUE(read_tar(padded)) << "zero record padding after the end is fine";
  }
  {
    Bytes bad = good;
    bad[1536 + 156] = '5';  // b.csv becomes a directory
    restamp(bad, 1536);
    auto r = read_tar(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, TarErrc::kNotRegular);
    EXPECT_EQ(r.error().member, "b.csv");
    EXPECT_EQ(r.error().offset, 1536u);
    EXPECT_EQ(r.error().describe(), "offset 1536, member b.csv: type '5', not a regular file");
  }
  {
    Bytes bad = good;
    bad[1536 + 156] = '2';  // a symbolic link
    restamp(bad, 1536);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kNotRegular);
  }
  {
    Bytes bad = good;
    const std::string prefix = "../..";
    std::copy(prefix.begin(), prefix.end(), bad.begin() + 1536 + 345);
    restamp(bad, 1536);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kBadName);
  }
  {
    Bytes bad = good;
    bad[1536 + 1] = '/';  // "b/csv"
    restamp(bad, 1536);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kBadName);
  }
  {
    Bytes bad = good;
    bad[1536] = 'a';  // "a.csv" twice
    restamp(bad, 1536);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kDuplicate);
  }
  {
    Bytes bad = good;
    bad[1536 + 124 + 3] = '9';  // size not octal
    restamp(bad, 1536);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kBadHeader);
  }
  {
    Bytes bad = good;
    const std::string huge = "77777777777";  // 8 GiB declared in a 3.5 KiB archive
    std::copy(huge.begin(), huge.end(), bad.begin() + 1536 + 124);
    restamp(bad, 1536);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kTruncated);
  }
  {
    Bytes bad = good;
    bad[257 + 5] = ' ';  // old GNU magic "ustar  "
    restamp(bad, 0);
    EXPECT_EQ(error_of_reading(bad), TarErrc::kBadHeader);
  }
  EXPECT_EQ(error_of_reading(good, {.max_members = 1}), TarErrc::kTooMany);
  EXPECT_EQ(error_of_reading({}), TarErrc::kNoEnd);
}

}  // namespace
}  // namespace enclave::exitcontrol::release
