// Sealed storage of a release bundle at rest: chunked AES-256-GCM under a random data key, in
// the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption
// and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015), so a bundle of any size is written and
// read in 64 KiB pieces and every piece is authenticated before its bytes are handed out.
//
//   header   "ENCLSEAL" | version 0x01 | chunk size (u32 big-endian, 65536) | nonce prefix (7
//            random bytes)                                                      = 20 bytes
//   chunk i  AES-256-GCM(plaintext piece i) | tag (16 bytes); every piece holds 65536 bytes
//            but the last, which holds 0 to 65536 (an empty bundle is one empty last chunk)
//   nonce i  nonce prefix | i (u32 big-endian) | 0x01 for the last chunk, else 0x00
//   AAD      the header's 20 bytes | the binding (the caller's name for what this is, e.g.
//            "project/release")
// Truncation at a chunk boundary fails (the new last chunk was sealed as not last), reordering
// fails (the index is in the nonce), and a file moved under another binding or opened with
// another key fails at its first chunk.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "exitcontrol/release/tar.hpp"

namespace enclave::exitcontrol::release {

inline constexpr std::size_t kSealedHeaderBytes = 20;
inline constexpr std::size_t kSealedChunkBytes = 65536;
inline constexpr std::size_t kSealedDataKeyBytes = 32;

// Writes a sealed file: appended plaintext goes to a temporary file in the target's directory
// (".NAME.partial-RANDOM", mode 0600); finish() seals the last chunk, fsyncs, and renames it to
// the target, which never exists half-written. Errors name the target: kAlreadyExists (the
// target exists; it is never replaced), kNoSpace (the disk is full), kIo. After any error, and
// when the writer is destroyed unfinished, the temporary file is removed.
class SealedWriter {
 public:
  // kInvalidArgument for a data key that is not 32 bytes; the directory must exist.
  static Expected<SealedWriter> create(const std::filesystem::path& target, ByteSpan data_key,
                                       std::string_view binding);
  SealedWriter(SealedWriter&&) noexcept;
  SealedWriter& operator=(SealedWriter&&) noexcept;
  ~SealedWriter();  // removes the temporary file unless finished; wipes the key

  Status append(ByteSpan plaintext);
  Status finish();
  // append as a sink, for TarWriter; valid while this writer lives and is not moved.
  ByteSink sink();

 private:
  struct State;
  explicit SealedWriter(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Reads a sealed file chunk by chunk. Errors name the file: kNotFound, kIo; kCorrupt for
// anything that is not an intact sealed file of this key and binding (not sealed, an unknown
// version or chunk size, truncated, a chunk that fails authentication: changed, reordered,
// another key or binding).
class SealedReader {
 public:
  // Reads and checks the header. kInvalidArgument for a data key that is not 32 bytes.
  static Expected<SealedReader> open(const std::filesystem::path& path, ByteSpan data_key,
                                     std::string_view binding);
  SealedReader(SealedReader&&) noexcept;
  SealedReader& operator=(SealedReader&&) noexcept;
  ~SealedReader();  // wipes the key

  // The plaintext size the file's length implies (for a Content-Length); a reader that fails
  // midway has handed out less.
  std::uint64_t plaintext_size() const;
  // True once the last chunk has been authenticated and returned.
  bool done() const;
  // The next chunk's plaintext, authenticated; valid until the next call. kConflict after done.
  Expected<ByteSpan> next();
  // Every remaining chunk to sink, in order.
  Status read_all(const ByteSink& sink);

 private:
  struct State;
  explicit SealedReader(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace enclave::exitcontrol::release
