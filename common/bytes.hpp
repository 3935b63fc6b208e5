// Byte helpers shared by every parser: a bounded read cursor, hex and base64, and
// constant-time comparison for secrets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace enclave {

using Bytes = std::vector<std::uint8_t>;
using ByteSpan = std::span<const std::uint8_t>;

inline ByteSpan as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}
inline std::string_view as_chars(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string hex_encode(ByteSpan data);
std::optional<Bytes> hex_decode(std::string_view hex);

// Standard base64 (RFC 4648 section 4) with padding; decode rejects anything non-canonical.
std::string base64_encode(ByteSpan data);
std::optional<Bytes> base64_decode(std::string_view text);

// Decodes the UTF-8 sequence at text[at] and advances `at` past it; nullopt for anything that
// is not UTF-8 (truncated, overlong, a surrogate, past U+10FFFF), leaving `at` unchanged.
// Requires at < text.size().
std::optional<char32_t> utf8_next(std::string_view text, std::size_t& at);
bool is_valid_utf8(std::string_view text);
// The longest prefix of `text` of at most max_bytes that ends between code points (of valid
// UTF-8 text: a cut never splits a character).
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes);

// Compares secrets without leaking the position of the first difference. Lengths are public.
bool constant_time_equal(ByteSpan a, ByteSpan b);

// SHA-256 of data as 64 lowercase hex digits: how files are named in reports and manifests.
std::string sha256_hex(ByteSpan data);

// SHA-256 over data that arrives in pieces (a file copied or streamed in chunks).
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void update(ByteSpan data);
  std::string hex_final();  // 64 lowercase hex digits; the stream starts over afterwards

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Overwrites memory the optimiser may not elide (OPENSSL_cleanse underneath).
void secure_wipe(void* data, std::size_t size);

// Bounded big-endian reader over untrusted bytes. Every read checks the remaining length
// first; a failed read leaves the cursor where it was and returns nullopt.
class ReadCursor {
 public:
  explicit ReadCursor(ByteSpan data) : data_(data) {}

  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

  std::optional<std::uint8_t> u8();
  std::optional<std::uint16_t> u16be();
  std::optional<std::uint32_t> u32be();
  std::optional<std::uint64_t> u64be();
  std::optional<ByteSpan> take(std::size_t n);

 private:
  ByteSpan data_;
  std::size_t pos_ = 0;
};

// Big-endian writer into a growing buffer.
class WriteCursor {
 public:
  explicit WriteCursor(Bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16be(std::uint16_t v);
  void u32be(std::uint32_t v);
  void u64be(std::uint64_t v);
  void put(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }

 private:
  Bytes& out_;
};

}  // namespace enclave
