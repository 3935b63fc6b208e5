// The base of every RDP decoder in gateway/core: typed decode errors and bounded cursors.
//
// Untrusted bytes are read the way IronRDP reads them: a decoder first ensures its fixed
// part is present, every length field is checked against what is left before it is used, and
// no allocation is sized by a number the peer sent unless that number was first bounded.
// Nothing here does I/O, so the fuzz targets link gateway/core alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::gateway {

struct PduError {
  enum class Kind {
    kNotEnoughBytes,     // {received, expected}: the PDU is shorter than its own fields say
    kInvalidField,       // {field, reason}: a value the spec or our policy does not allow
    kUnexpectedMessage,  // a well-formed PDU that is not allowed in this state
    kTooLarge,           // a length above the limit we accept (before any allocation)
  };
  Kind kind = Kind::kInvalidField;
  std::string pdu;    // e.g. "X.224 Connection Request"
  std::string field;  // e.g. "requestedProtocols"
  std::string reason;
  std::size_t received = 0;
  std::size_t expected = 0;

  // One line naming the PDU and field, for audit details and logs.
  std::string describe() const;
};

template <class T>
using PduResult = Result<T, PduError>;

PduError not_enough_bytes(std::string_view pdu, std::string_view field, std::size_t received,
                          std::size_t expected);
PduError invalid_field(std::string_view pdu, std::string_view field, std::string_view reason);
PduError unexpected_message(std::string_view pdu, std::string_view reason);
PduError too_large(std::string_view pdu, std::string_view field, std::size_t size,
                   std::size_t limit);

// Bounded reader over untrusted bytes, little- and big-endian. Reads check the remaining
// length first and fail with kNotEnoughBytes naming the PDU and field; a failed read leaves
// the cursor unchanged.
class PduReader {
 public:
  PduReader(ByteSpan data, std::string_view pdu) : data_(data), pdu_(pdu) {}

  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool empty() const { return pos_ == data_.size(); }
  std::string_view pdu() const { return pdu_; }
  ByteSpan rest() const { return data_.subspan(pos_); }

  // Fails unless at least n bytes remain (the "fixed part" check).
  PduResult<void> ensure(std::size_t n, std::string_view field) const;
  PduResult<std::uint8_t> u8(std::string_view field);
  PduResult<std::uint16_t> u16le(std::string_view field);
  PduResult<std::uint16_t> u16be(std::string_view field);
  PduResult<std::uint32_t> u32le(std::string_view field);
  PduResult<std::uint32_t> u32be(std::string_view field);
  PduResult<ByteSpan> take(std::size_t n, std::string_view field);
  PduResult<void> skip(std::size_t n, std::string_view field);

 private:
  ByteSpan data_;
  std::size_t pos_ = 0;
  std::string_view pdu_;
};

// Appends to a growing buffer.
class PduWriter {
 public:
  explicit PduWriter(Bytes& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16le(std::uint16_t v);
  void u16be(std::uint16_t v);
  void u32le(std::uint32_t v);
  void u32be(std::uint32_t v);
  void put(ByteSpan b) { out_.insert(out_.end(), b.begin(), b.end()); }
  std::size_t size() const { return out_.size(); }
  // Overwrites a u16 big-endian at an earlier position (length fields written last).
  void patch_u16be(std::size_t at, std::uint16_t v);

 private:
  Bytes& out_;
};

// UTF-16LE (as RDP carries strings) to UTF-8 and back. Unpaired surrogates are an error.
PduResult<std::string> utf16le_to_utf8(ByteSpan utf16, std::string_view pdu,
                                       std::string_view field);
Bytes utf8_to_utf16le(std::string_view utf8);

}  // namespace enclave::gateway
