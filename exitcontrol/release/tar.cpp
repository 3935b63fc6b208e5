#include "exitcontrol/release/tar.hpp"

#include <algorithm>
#include <cstring>
#include <optional>

namespace enclave::exitcontrol::release {

namespace {

// Field offsets and sizes (see tar.hpp).
constexpr std::size_t kNameAt = 0, kModeAt = 100, kUidAt = 108, kGidAt = 116, kSizeAt = 124,
                      kMtimeAt = 136, kChksumAt = 148, kTypeAt = 156, kMagicAt = 257,
                      kVersionAt = 263, kDevMajorAt = 329, kDevMinorAt = 337, kPrefixAt = 345;
constexpr std::size_t kPrefixBytes = 155, kChksumBytes = 8;
constexpr std::array<std::uint8_t, 2 * kTarBlockBytes> kZeros{};

// "%0*o" with a NUL at the end of the field, as POSIX and GNU tar write numbers.
void put_octal(TarHeader& h, std::size_t at, std::size_t field, std::uint64_t value) {
  h[at + field - 1] = 0;
  for (std::size_t i = field - 1; i-- > 0;) {
    h[at + i] = static_cast<std::uint8_t>('0' + (value & 7));
    value >>= 3;
  }
}

void put_text(TarHeader& h, std::size_t at, std::string_view text) {
  std::memcpy(h.data() + at, text.data(), text.size());
}

// Leading spaces, at least one octal digit, then NUL, space or the end of the field.
std::optional<std::uint64_t> parse_octal(ByteSpan field) {
  std::size_t i = 0;
  while (i < field.size() && field[i] == ' ') ++i;
  std::uint64_t value = 0;
  std::size_t digits = 0;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (value > (UINT64_MAX >> 3)) return std::nullopt;
    value = (value << 3) | static_cast<std::uint64_t>(field[i] - '0');
  }
  if (digits == 0) return std::nullopt;
  for (; i < field.size(); ++i) {
    if (field[i] != 0 && field[i] != ' ') return std::nullopt;
  }
  return value;
}

bool all_zero(ByteSpan bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

std::string_view c_string(ByteSpan field) {
  const auto text = as_chars(field);
  return text.substr(0, text.find('\0'));
}

}  // namespace

Status check_member_name(std::string_view name) {
  auto bad = [&](const char* why) {
    return fail(Errc::kInvalidArgument,
                "\"" + std::string(name.substr(0, 120)) + "\" cannot be a bundle member: " + why);
  };
  if (name.empty()) return bad("an empty name");
  if (name.size() > kTarNameMaxBytes) return bad("a name longer than 100 bytes");
  if (name.find('/') != std::string_view::npos) return bad("a name with a '/'");
  if (name.find('\0') != std::string_view::npos) return bad("a name with a NUL byte");
  if (name == "." || name == "..") return bad("\".\" and \"..\" are not file names");
  return {};
}

Expected<TarHeader> tar_header(const TarMember& member) {
  ENCLAVE_TRY(check_member_name(member.name));
  if (member.size > kTarMaxNumber) {
    return fail(Errc::kInvalidArgument, member.name + ": " + std::to_string(member.size) +
                                            " bytes, more than a ustar member may hold");
  }
  if (member.mtime < 0 || static_cast<std::uint64_t>(member.mtime) > kTarMaxNumber) {
    return fail(Errc::kInvalidArgument,
                member.name + ": mtime " + std::to_string(member.mtime) + " out of range");
  }
  TarHeader h{};
  put_text(h, kNameAt, member.name);
  put_octal(h, kModeAt, 8, 0644);
  put_octal(h, kUidAt, 8, 0);
  put_octal(h, kGidAt, 8, 0);
  put_octal(h, kSizeAt, 12, member.size);
  put_octal(h, kMtimeAt, 12, static_cast<std::uint64_t>(member.mtime));
  h[kTypeAt] = '0';
  put_text(h, kMagicAt, std::string_view("ustar\0", 6));
  put_text(h, kVersionAt, "00");
  put_octal(h, kDevMajorAt, 8, 0);
  put_octal(h, kDevMinorAt, 8, 0);
  // Six digits, NUL, space: the form POSIX leaves open and every tar reads.
  put_octal(h, kChksumAt, 7, tar_checksum(h));
  h[kChksumAt + 7] = ' ';
  return h;
}

std::uint32_t tar_checksum(const TarHeader& header) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < header.size(); ++i) {
    const bool in_chksum = i >= kChksumAt && i < kChksumAt + kChksumBytes;
    sum += in_chksum ? ' ' : header[i];
  }
  return sum;
}

std::size_t tar_padding(std::uint64_t size) {
  return static_cast<std::size_t>((kTarBlockBytes - size % kTarBlockBytes) % kTarBlockBytes);
}

// ---- TarWriter ---------------------------------------------------------------------------------

Status TarWriter::refuse(Errc code, std::string message) {
  state_ = State::kFailed;
  return fail(code, std::move(message));
}

Status TarWriter::emit(ByteSpan data) {
  Status sent = sink_(data);
  if (!sent) {
    state_ = State::kFailed;
    return sent;
  }
  written_ += data.size();
  return {};
}

Status TarWriter::begin(const TarMember& member) {
  if (state_ != State::kBetween) {
    return refuse(Errc::kConflict, "tar: " + member.name + " begun while " +
                                       (state_ == State::kInMember ? member_ + " is unfinished"
                                                                   : "the archive is closed"));
  }
  auto header = tar_header(member);
  if (!header) return refuse(header.error().code, header.error().message);
  if (!names_.insert(member.name).second) {
    return refuse(Errc::kInvalidArgument, "tar: " + member.name + " is already in the archive");
  }
  ENCLAVE_TRY(emit(*header));
  state_ = State::kInMember;
  member_ = member.name;
  size_ = member.size;
  remaining_ = member.size;
  return {};
}

Status TarWriter::write(ByteSpan data) {
  if (state_ != State::kInMember) {
    return refuse(Errc::kConflict, "tar: data written outside a member");
  }
  if (data.size() > remaining_) {
    return refuse(Errc::kInvalidArgument,
                  "tar: " + member_ + " declared " + std::to_string(size_) + " bytes and got more");
  }
  remaining_ -= data.size();
  return emit(data);
}

Status TarWriter::end() {
  if (state_ != State::kInMember) return refuse(Errc::kConflict, "tar: end outside a member");
  if (remaining_ != 0) {
    return refuse(Errc::kInvalidArgument, "tar: " + member_ + " declared " + std::to_string(size_) +
                                              " bytes and got " +
                                              std::to_string(size_ - remaining_));
  }
  ENCLAVE_TRY(emit(ByteSpan(kZeros.data(), tar_padding(size_))));
  state_ = State::kBetween;
  return {};
}

Status TarWriter::add(const TarMember& member, ByteSpan data) {
  ENCLAVE_TRY(begin(member));
  ENCLAVE_TRY(write(data));
  return end();
}

Status TarWriter::finish() {
  if (state_ != State::kBetween) {
    return refuse(Errc::kConflict, state_ == State::kInMember
                                       ? "tar: finished while " + member_ + " is unfinished"
                                       : std::string("tar: the archive is closed"));
  }
  ENCLAVE_TRY(emit(kZeros));
  state_ = State::kFinished;
  return {};
}

// ---- Reading -----------------------------------------------------------------------------------

const char* tar_errc_name(TarErrc code) {
  switch (code) {
    case TarErrc::kTruncated:
      return "truncated";
    case TarErrc::kBadChecksum:
      return "bad checksum";
    case TarErrc::kBadHeader:
      return "bad header";
    case TarErrc::kBadName:
      return "bad name";
    case TarErrc::kNotRegular:
      return "not a regular file";
    case TarErrc::kDuplicate:
      return "duplicate";
    case TarErrc::kTooMany:
      return "too many members";
    case TarErrc::kNoEnd:
      return "no end marker";
    case TarErrc::kTrailingData:
      return "trailing data";
  }
  return "?";
}

std::string TarError::describe() const {
  std::string out = "offset " + std::to_string(offset);
  if (!member.empty()) out += ", member " + member;
  return out + ": " + detail;
}

Result<std::vector<TarEntry>, TarError> read_tar(ByteSpan archive, const TarLimits& limits) {
  std::vector<TarEntry> entries;
  std::set<std::string, std::less<>> names;
  std::uint64_t at = 0;
  auto error = [&](TarErrc code, std::string member, std::string detail) {
    return fail(TarError{code, at, std::move(member), std::move(detail)});
  };
  for (;;) {
    const std::uint64_t left = archive.size() - at;
    if (left == 0) return error(TarErrc::kNoEnd, "", "the archive ends without its end marker");
    if (left < kTarBlockBytes) {
      return error(TarErrc::kTruncated, "",
                   "a partial block of " + std::to_string(left) + " bytes");
    }
    const ByteSpan block = archive.subspan(at, kTarBlockBytes);
    if (all_zero(block)) {
      if (left < 2 * kTarBlockBytes ||
          !all_zero(archive.subspan(at + kTarBlockBytes, kTarBlockBytes))) {
        return error(TarErrc::kNoEnd, "", "one zero block where the end marker has two");
      }
      if (!all_zero(archive.subspan(at + 2 * kTarBlockBytes))) {
        return error(TarErrc::kTrailingData, "", "bytes after the end marker");
      }
      return entries;
    }
    TarHeader header;
    std::copy(block.begin(), block.end(), header.begin());
    const std::string name(c_string(block.subspan(kNameAt, kTarNameMaxBytes)));
    const auto stored = parse_octal(block.subspan(kChksumAt, kChksumBytes));
    if (!stored || *stored != tar_checksum(header)) {
      return error(TarErrc::kBadChecksum, name,
                   "header checksum " + (stored ? std::to_string(*stored) : "unreadable") +
                       ", the header sums to " + std::to_string(tar_checksum(header)));
    }
    if (as_chars(block.subspan(kMagicAt, 8)) != std::string_view("ustar\0"
                                                                 "00",
                                                                 8)) {
      return error(TarErrc::kBadHeader, name, "not a POSIX ustar header");
    }
    const std::uint8_t type = block[kTypeAt];
    if (type != '0' && type != 0) {
      return error(TarErrc::kNotRegular, name,
                   "type '" + std::string(1, static_cast<char>(type)) + "', not a regular file");
    }
    if (!c_string(block.subspan(kPrefixAt, kPrefixBytes)).empty()) {
      return error(TarErrc::kBadName, name, "a directory prefix; members are plain names");
    }
    if (Status ok = check_member_name(name); !ok) {
      return error(TarErrc::kBadName, name, ok.error().message);
    }
    const auto size = parse_octal(block.subspan(kSizeAt, 12));
    const auto mtime = parse_octal(block.subspan(kMtimeAt, 12));
    if (!size || !mtime || *size > kTarMaxNumber || *mtime > kTarMaxNumber ||
        !parse_octal(block.subspan(kModeAt, 8))) {
      return error(TarErrc::kBadHeader, name, "a size, mtime or mode that is not octal");
    }
    if (entries.size() == limits.max_members) {
      return error(TarErrc::kTooMany, name,
                   "more than " + std::to_string(limits.max_members) + " members");
    }
    if (!names.insert(name).second)
      return error(TarErrc::kDuplicate, name, "a second member of this name");
    const std::uint64_t padded = *size + tar_padding(*size);
    if (padded > left - kTarBlockBytes) {
      return error(TarErrc::kTruncated, name,
                   std::to_string(*size) + " bytes declared, " +
                       std::to_string(left - kTarBlockBytes) + " left in the archive");
    }
    entries.push_back({name, *size, static_cast<std::int64_t>(*mtime),
                       archive.subspan(at + kTarBlockBytes, *size)});
    at += kTarBlockBytes + padded;
  }
}

}  // namespace enclave::exitcontrol::release
