#include "exitcontrol/release/sealed.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <string_view>

#include "common/aes_gcm.hpp"
#include "common/fd.hpp"

namespace enclave::exitcontrol::release {

namespace {

constexpr std::string_view kMagic = "ENCLSEAL";
constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kPrefixBytes = 7;
constexpr std::size_t kRecordBytes = kSealedChunkBytes + crypto::kGcmTagBytes;
static_assert(kMagic.size() + 1 + 4 + kPrefixBytes == kSealedHeaderBytes);
static_assert(kPrefixBytes + 4 + 1 == crypto::kGcmNonceBytes);

using Key = std::array<std::uint8_t, kSealedDataKeyBytes>;

Status copy_key(ByteSpan data_key, Key& key) {
  if (data_key.size() != key.size()) {
    return fail(Errc::kInvalidArgument, "sealed storage: a data key of " +
                                            std::to_string(data_key.size()) + " bytes, not 32");
  }
  std::copy(data_key.begin(), data_key.end(), key.begin());
  return {};
}

std::array<std::uint8_t, crypto::kGcmNonceBytes> chunk_nonce(ByteSpan header, std::uint32_t index,
                                                             bool last) {
  std::array<std::uint8_t, crypto::kGcmNonceBytes> nonce{};
  const ByteSpan prefix = header.subspan(kSealedHeaderBytes - kPrefixBytes);
  std::copy(prefix.begin(), prefix.end(), nonce.begin());
  for (int i = 0; i < 4; ++i) {
    nonce[kPrefixBytes + static_cast<std::size_t>(i)] =
        static_cast<std::uint8_t>(index >> (24 - 8 * i));
  }
  nonce[crypto::kGcmNonceBytes - 1] = last ? 1 : 0;
  return nonce;
}

Bytes aad_of(ByteSpan header, std::string_view binding) {
  Bytes aad(header.begin(), header.end());
  aad.insert(aad.end(), binding.begin(), binding.end());
  return aad;
}

}  // namespace

// ---- SealedWriter ------------------------------------------------------------------------------

struct SealedWriter::State {
  std::filesystem::path target, temp;
  UniqueFd fd;
  Key key{};
  Bytes header, aad;
  Bytes piece;  // plaintext of the chunk being filled
  std::uint32_t index = 0;
  bool failed = false, finished = false;

  ~State() {
    secure_wipe(key.data(), key.size());
    if (!finished) abandon();
  }
  void abandon() {
    if (fd) {
      fd.reset();
      ::unlink(temp.c_str());
    }
  }
  std::string name() const { return "sealed file " + target.string(); }
  Status refuse(Error error) {
    failed = true;
    abandon();
    return Unexpected<Error>{std::move(error)};
  }
  Status seal_chunk(bool last) {
    if (!last && index == UINT32_MAX) {
      return refuse({Errc::kInvalidArgument, name() + ": more chunks than the format counts"});
    }
    const auto nonce = chunk_nonce(header, index, last);
    auto sealed = crypto::aes256_gcm_seal(key, nonce, aad, piece);
    if (!sealed) return refuse({sealed.error().code, name() + ": " + sealed.error().message});
    if (Status w = write_all(fd.get(), *sealed, name()); !w) return refuse(w.error());
    ++index;
    piece.clear();
    return {};
  }
};

SealedWriter::SealedWriter(std::unique_ptr<State> state) : state_(std::move(state)) {}
SealedWriter::SealedWriter(SealedWriter&&) noexcept = default;
SealedWriter& SealedWriter::operator=(SealedWriter&&) noexcept = default;
SealedWriter::~SealedWriter() = default;

Expected<SealedWriter> SealedWriter::create(const std::filesystem::path& target, ByteSpan data_key,
                                            std::string_view binding) {
  auto s = std::make_unique<State>();
  s->finished = true;  // nothing to remove until the temporary file exists
  ENCLAVE_TRY(copy_key(data_key, s->key));
  s->target = target;
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0) {
    return fail(Errc::kAlreadyExists, s->name() + ": exists already");
  }
  s->temp = target.parent_path() / ("." + target.filename().string() + ".partial-" + random_hex(8));
  s->fd.reset(::open(s->temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!s->fd) return Unexpected<Error>{os_error(s->name(), errno)};
  s->finished = false;
  std::array<std::uint8_t, kPrefixBytes> prefix{};
  if (RAND_bytes(prefix.data(), static_cast<int>(prefix.size())) != 1) {
    return fail(Errc::kInternal, s->name() + ": RAND_bytes failed");
  }
  WriteCursor w(s->header);
  w.put(as_bytes(kMagic));
  w.u8(kVersion);
  w.u32be(static_cast<std::uint32_t>(kSealedChunkBytes));
  w.put(prefix);
  s->aad = aad_of(s->header, binding);
  s->piece.reserve(kSealedChunkBytes);
  if (Status written = write_all(s->fd.get(), s->header, s->name()); !written) {
    return error_of(written);  // ~State removes the temporary file
  }
  return SealedWriter(std::move(s));
}

Status SealedWriter::append(ByteSpan plaintext) {
  State& s = *state_;
  if (s.failed || s.finished) {
    return fail(Errc::kConflict,
                s.name() + ": written to after " + (s.failed ? "an error" : "finish"));
  }
  while (!plaintext.empty()) {
    // A full piece is sealed only when more follows: the last chunk must be sealed as last.
    if (s.piece.size() == kSealedChunkBytes) ENCLAVE_TRY(s.seal_chunk(false));
    const std::size_t take = std::min(kSealedChunkBytes - s.piece.size(), plaintext.size());
    s.piece.insert(s.piece.end(), plaintext.begin(), plaintext.begin() + static_cast<long>(take));
    plaintext = plaintext.subspan(take);
  }
  return {};
}

Status SealedWriter::finish() {
  State& s = *state_;
  if (s.failed || s.finished) {
    return fail(Errc::kConflict,
                s.name() + ": finished after " + (s.failed ? "an error" : "finish"));
  }
  ENCLAVE_TRY(s.seal_chunk(true));
  if (::fsync(s.fd.get()) != 0) return s.refuse(os_error(s.name(), errno));
  if (::renameat2(AT_FDCWD, s.temp.c_str(), AT_FDCWD, s.target.c_str(), RENAME_NOREPLACE) != 0) {
    const int err = errno;
    return s.refuse(err == EEXIST ? Error{Errc::kAlreadyExists, s.name() + ": exists already"}
                                  : os_error(s.name(), err));
  }
  s.fd.reset();
  s.finished = true;
  sync_dir(s.target.parent_path());
  return {};
}

ByteSink SealedWriter::sink() {
  return [this](ByteSpan data) { return append(data); };
}

// ---- SealedReader ------------------------------------------------------------------------------

struct SealedReader::State {
  std::filesystem::path path;
  UniqueFd fd;
  Key key{};
  Bytes header, aad;
  std::uint64_t chunks = 0;     // in the file, the last included
  std::uint64_t last_size = 0;  // the last record's bytes, tag included
  std::uint32_t index = 0;
  Bytes record, plaintext;
  bool done = false;

  ~State() { secure_wipe(key.data(), key.size()); }
  std::string name() const { return "sealed file " + path.string(); }
};

SealedReader::SealedReader(std::unique_ptr<State> state) : state_(std::move(state)) {}
SealedReader::SealedReader(SealedReader&&) noexcept = default;
SealedReader& SealedReader::operator=(SealedReader&&) noexcept = default;
SealedReader::~SealedReader() = default;

Expected<SealedReader> SealedReader::open(const std::filesystem::path& path, ByteSpan data_key,
                                          std::string_view binding) {
  auto s = std::make_unique<State>();
  s->path = path;
  ENCLAVE_TRY(copy_key(data_key, s->key));
  s->fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!s->fd) return Unexpected<Error>{os_error(s->name(), errno)};
  struct stat st {};
  if (::fstat(s->fd.get(), &st) != 0) return Unexpected<Error>{os_error(s->name(), errno)};
  if (!S_ISREG(st.st_mode)) return fail(Errc::kCorrupt, s->name() + ": not a regular file");
  s->header.resize(kSealedHeaderBytes);
  const ssize_t got = ::pread(s->fd.get(), s->header.data(), s->header.size(), 0);
  if (got < 0) return Unexpected<Error>{os_error(s->name(), errno)};
  ReadCursor r(ByteSpan(s->header.data(), static_cast<std::size_t>(got)));
  const auto magic = r.take(kMagic.size());
  if (!magic || as_chars(*magic) != kMagic) {
    return fail(Errc::kCorrupt, s->name() + ": not a sealed file");
  }
  const auto version = r.u8();
  const auto chunk = r.u32be();
  if (!version || !chunk || r.remaining() < kPrefixBytes) {
    return fail(Errc::kCorrupt, s->name() + ": truncated in its header");
  }
  if (*version != kVersion) {
    return fail(Errc::kCorrupt, s->name() + ": unknown version " + std::to_string(*version));
  }
  if (*chunk != kSealedChunkBytes) {
    return fail(Errc::kCorrupt, s->name() + ": chunk size " + std::to_string(*chunk) + ", not " +
                                    std::to_string(kSealedChunkBytes));
  }
  if (static_cast<std::uint64_t>(st.st_size) < kSealedHeaderBytes) {
    return fail(Errc::kCorrupt, s->name() + ": truncated in its header");
  }
  const auto body = static_cast<std::uint64_t>(st.st_size) - kSealedHeaderBytes;
  s->chunks = body == 0 ? 0 : (body + kRecordBytes - 1) / kRecordBytes;
  s->last_size = body - (s->chunks == 0 ? 0 : (s->chunks - 1) * kRecordBytes);
  if (s->chunks == 0 || s->last_size < crypto::kGcmTagBytes || s->chunks > UINT32_MAX + 1ull) {
    return fail(Errc::kCorrupt, s->name() + ": truncated (ends before its last chunk)");
  }
  s->aad = aad_of(s->header, binding);
  return SealedReader(std::move(s));
}

std::uint64_t SealedReader::plaintext_size() const {
  const State& s = *state_;
  return (s.chunks - 1) * kSealedChunkBytes + (s.last_size - crypto::kGcmTagBytes);
}

bool SealedReader::done() const {
  return state_->done;
}

Expected<ByteSpan> SealedReader::next() {
  State& s = *state_;
  if (s.done) return fail(Errc::kConflict, s.name() + ": read past its end");
  const bool last = s.index + 1ull == s.chunks;
  const std::size_t size = last ? static_cast<std::size_t>(s.last_size) : kRecordBytes;
  s.record.resize(size);
  std::size_t filled = 0;
  const off_t at = static_cast<off_t>(kSealedHeaderBytes + std::uint64_t{s.index} * kRecordBytes);
  while (filled < size) {
    const ssize_t n = ::pread(s.fd.get(), s.record.data() + filled, size - filled,
                              at + static_cast<off_t>(filled));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected<Error>{os_error(s.name(), errno)};
    if (n == 0) {
      return fail(Errc::kCorrupt, s.name() + ": truncated in chunk " + std::to_string(s.index));
    }
    filled += static_cast<std::size_t>(n);
  }
  const auto nonce = chunk_nonce(s.header, s.index, last);
  auto opened = crypto::aes256_gcm_open(s.key, nonce, s.aad, s.record);
  if (!opened) {
    if (opened.error().code != Errc::kCorrupt) {
      return fail(opened.error().code, s.name() + ": " + opened.error().message);
    }
    return fail(Errc::kCorrupt, s.name() + ": chunk " + std::to_string(s.index) +
                                    " fails authentication (changed, truncated, reordered, or "
                                    "another key or binding)");
  }
  s.plaintext = std::move(opened).value();
  ++s.index;
  s.done = last;
  return ByteSpan(s.plaintext);
}

Status SealedReader::read_all(const ByteSink& sink) {
  while (!done()) {
    auto chunk = next();
    if (!chunk) return error_of(chunk);
    ENCLAVE_TRY(sink(*chunk));
  }
  return {};
}

}  // namespace enclave::exitcontrol::release
