// POSIX ustar archives (POSIX.1-2001, pax: "ustar Interchange Format"), the subset a release
// bundle needs: regular files with plain names (no directories) of at most 100 bytes, mode
// 0644, owner and group 0 without names. The writer streams: a member's data goes to the sink
// in whatever pieces the caller has, so a large file never sits in memory. The reader is a pure
// function over the bytes of a whole archive, bounded, with typed errors.
//
// Layout: per member a 512-byte header block, its data, zeros up to the next 512-byte boundary;
// then two zero blocks. Header fields (offset, size): name (0, 100), mode (100, 8), uid (108,
// 8), gid (116, 8), size (124, 12), mtime (136, 12), chksum (148, 8), typeflag (156, 1),
// linkname (157, 100), magic "ustar\0" (257, 6), version "00" (263, 2), uname (265, 32), gname
// (297, 32), devmajor (329, 8), devminor (337, 8), prefix (345, 155). Numbers are octal ASCII.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::exitcontrol::release {

inline constexpr std::size_t kTarBlockBytes = 512;
inline constexpr std::size_t kTarNameMaxBytes = 100;
// Eleven octal digits: the largest size and mtime a ustar header holds.
inline constexpr std::uint64_t kTarMaxNumber = 077777777777;

using TarHeader = std::array<std::uint8_t, kTarBlockBytes>;
// Where written bytes go (a file, a sealed store, a hash); an error stops the writer.
using ByteSink = std::function<Status(ByteSpan)>;

struct TarMember {
  std::string name;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;  // seconds since the Unix epoch
};

// A plain file name: 1 to 100 bytes, no '/', no NUL, not "." or "..". Without a '/' no name can
// leave the directory it is extracted into. kInvalidArgument naming it otherwise.
Status check_member_name(std::string_view name);

// The header block of a regular file; kInvalidArgument for a bad name, or a size or mtime
// outside 0..kTarMaxNumber.
Expected<TarHeader> tar_header(const TarMember& member);

// The header checksum: the unsigned sum of the block's bytes, the chksum field counted as eight
// spaces.
std::uint32_t tar_checksum(const TarHeader& header);

// Zeros after a member's data up to the next block.
std::size_t tar_padding(std::uint64_t size);

// Writes an archive to a sink, member by member:
//   begin(member), write(piece)... (exactly member.size bytes), end(); ...; finish().
// Refuses (kInvalidArgument) a bad or repeated name, more or fewer bytes than declared, and
// (kConflict) calls out of that order or after an error: a failed archive is abandoned.
class TarWriter {
 public:
  explicit TarWriter(ByteSink sink) : sink_(std::move(sink)) {}

  Status begin(const TarMember& member);
  Status write(ByteSpan data);
  Status end();
  // begin, write, end for data held in memory.
  Status add(const TarMember& member, ByteSpan data);
  // The end-of-archive marker: two zero blocks.
  Status finish();

  std::uint64_t bytes_written() const { return written_; }

 private:
  enum class State { kBetween, kInMember, kFinished, kFailed };
  Status emit(ByteSpan data);
  Status refuse(Errc code, std::string message);

  ByteSink sink_;
  State state_ = State::kBetween;
  std::set<std::string, std::less<>> names_;
  std::string member_;
  std::uint64_t remaining_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t written_ = 0;
};

// ---- Reading ---------------------------------------------------------------------------------

enum class TarErrc {
  kTruncated,     // the archive ends inside a header, a member's data or its padding
  kBadChecksum,   // a header's checksum does not match its bytes
  kBadHeader,     // not a POSIX ustar header, or a field that is not an octal number
  kBadName,       // a name check_member_name refuses, or a directory prefix
  kNotRegular,    // a member that is not a regular file (directory, link, device, pax header)
  kDuplicate,     // a name seen before
  kTooMany,       // more members than the limit
  kNoEnd,         // no end-of-archive marker
  kTrailingData,  // bytes other than zeros after the end-of-archive marker
};
const char* tar_errc_name(TarErrc code);

struct TarError {
  TarErrc code = TarErrc::kBadHeader;
  std::uint64_t offset = 0;  // of the header block concerned
  std::string member;        // its name, when known
  std::string detail;

  // "offset 1024, member t.csv: detail".
  std::string describe() const;
};

struct TarEntry {
  std::string name;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  ByteSpan data;  // into the archive given to read_tar
};

struct TarLimits {
  std::size_t max_members = 10'000;
};

// The members of a whole archive, in order. Accepts what TarWriter writes and what GNU tar
// --format=ustar writes for plain files (zero blocks after the end marker are record padding).
Result<std::vector<TarEntry>, TarError> read_tar(ByteSpan archive, const TarLimits& limits = {});

}  // namespace enclave::exitcontrol::release
