#include "gateway/core/pdu.hpp"

#include <string>

namespace enclave::gateway {

std::string PduError::describe() const {
  std::string out = pdu.empty() ? std::string("PDU") : pdu;
  if (!field.empty()) out += " " + field;
  switch (kind) {
    case Kind::kNotEnoughBytes:
      out += ": not enough bytes (received " + std::to_string(received) + ", expected " +
             std::to_string(expected) + ")";
      break;
    case Kind::kInvalidField:
      out += ": invalid";
      break;
    case Kind::kUnexpectedMessage:
      out += ": unexpected message";
      break;
    case Kind::kTooLarge:
      out +=
          ": too large (" + std::to_string(received) + " > limit " + std::to_string(expected) + ")";
      break;
  }
  if (!reason.empty()) out += ": " + reason;
  return out;
}

PduError not_enough_bytes(std::string_view pdu, std::string_view field, std::size_t received,
                          std::size_t expected) {
  PduError e;
  e.kind = PduError::Kind::kNotEnoughBytes;
  e.pdu = std::string(pdu);
  e.field = std::string(field);
  e.received = received;
  e.expected = expected;
  return e;
}

PduError invalid_field(std::string_view pdu, std::string_view field, std::string_view reason) {
  PduError e;
  e.kind = PduError::Kind::kInvalidField;
  e.pdu = std::string(pdu);
  e.field = std::string(field);
  e.reason = std::string(reason);
  return e;
}

PduError unexpected_message(std::string_view pdu, std::string_view reason) {
  PduError e;
  e.kind = PduError::Kind::kUnexpectedMessage;
  e.pdu = std::string(pdu);
  e.reason = std::string(reason);
  return e;
}

PduError too_large(std::string_view pdu, std::string_view field, std::size_t size,
                   std::size_t limit) {
  PduError e;
  e.kind = PduError::Kind::kTooLarge;
  e.pdu = std::string(pdu);
  e.field = std::string(field);
  e.received = size;
  e.expected = limit;
  return e;
}

// ---- PduReader ----

PduResult<void> PduReader::ensure(std::size_t n, std::string_view field) const {
  if (remaining() < n) return fail(not_enough_bytes(pdu_, field, remaining(), n));
  return {};
}

PduResult<std::uint8_t> PduReader::u8(std::string_view field) {
  if (remaining() < 1) return fail(not_enough_bytes(pdu_, field, remaining(), 1));
  return data_[pos_++];
}

PduResult<std::uint16_t> PduReader::u16le(std::string_view field) {
  if (remaining() < 2) return fail(not_enough_bytes(pdu_, field, remaining(), 2));
  auto v = static_cast<std::uint16_t>(data_[pos_] | (data_[pos_ + 1] << 8));
  pos_ += 2;
  return v;
}

PduResult<std::uint16_t> PduReader::u16be(std::string_view field) {
  if (remaining() < 2) return fail(not_enough_bytes(pdu_, field, remaining(), 2));
  auto v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
  pos_ += 2;
  return v;
}

PduResult<std::uint32_t> PduReader::u32le(std::string_view field) {
  if (remaining() < 4) return fail(not_enough_bytes(pdu_, field, remaining(), 4));
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | data_[pos_ + static_cast<std::size_t>(i)];
  pos_ += 4;
  return v;
}

PduResult<std::uint32_t> PduReader::u32be(std::string_view field) {
  if (remaining() < 4) return fail(not_enough_bytes(pdu_, field, remaining(), 4));
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | data_[pos_ + i];
  pos_ += 4;
  return v;
}

PduResult<ByteSpan> PduReader::take(std::size_t n, std::string_view field) {
  if (remaining() < n) return fail(not_enough_bytes(pdu_, field, remaining(), n));
  ByteSpan out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

PduResult<void> PduReader::skip(std::size_t n, std::string_view field) {
  if (remaining() < n) return fail(not_enough_bytes(pdu_, field, remaining(), n));
  pos_ += n;
  return {};
}

// ---- PduWriter ----

void PduWriter::u16le(std::uint16_t v) {
  out_.push_back(static_cast<std::uint8_t>(v));
  out_.push_back(static_cast<std::uint8_t>(v >> 8));
}

void PduWriter::u16be(std::uint16_t v) {
  out_.push_back(static_cast<std::uint8_t>(v >> 8));
  out_.push_back(static_cast<std::uint8_t>(v));
}

void PduWriter::u32le(std::uint32_t v) {
  for (int shift = 0; shift < 32; shift += 8) out_.push_back(static_cast<std::uint8_t>(v >> shift));
}

void PduWriter::u32be(std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out_.push_back(static_cast<std::uint8_t>(v >> shift));
}

void PduWriter::patch_u16be(std::size_t at, std::uint16_t v) {
  // INVARIANT: callers patch a field they wrote earlier.
  if (at + 2 > out_.size()) return;
  out_[at] = static_cast<std::uint8_t>(v >> 8);
  out_[at + 1] = static_cast<std::uint8_t>(v);
}

// ---- UTF-16LE ----

PduResult<std::string> utf16le_to_utf8(ByteSpan utf16, std::string_view pdu,
                                       std::string_view field) {
  if (utf16.size() % 2 != 0) return fail(invalid_field(pdu, field, "odd number of bytes"));
  std::string out;
  out.reserve(utf16.size() / 2);  // bounded by the input the caller already holds
  std::size_t i = 0;
  auto unit = [&](std::size_t at) {
    return static_cast<std::uint16_t>(utf16[at] | (utf16[at + 1] << 8));
  };
  while (i < utf16.size()) {
    char32_t cp = unit(i);
    i += 2;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (i >= utf16.size()) return fail(invalid_field(pdu, field, "unpaired high surrogate"));
      char32_t low = unit(i);
      if (low < 0xDC00 || low > 0xDFFF)
        return fail(invalid_field(pdu, field, "unpaired high surrogate"));
      i += 2;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
      return fail(invalid_field(pdu, field, "unpaired low surrogate"));
    }
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }
  return out;
}

Bytes utf8_to_utf16le(std::string_view utf8) {
  // Invalid UTF-8 sequences become U+FFFD, one per undecodable byte.
  Bytes out;
  out.reserve(utf8.size() * 2);
  auto put = [&](std::uint16_t u) {
    out.push_back(static_cast<std::uint8_t>(u));
    out.push_back(static_cast<std::uint8_t>(u >> 8));
  };
  std::size_t at = 0;
  while (at < utf8.size()) {
    auto cp = utf8_next(utf8, at);
    if (!cp) {
      put(0xFFFD);
      ++at;
      continue;
    }
    if (*cp < 0x10000) {
      put(static_cast<std::uint16_t>(*cp));
    } else {
      char32_t v = *cp - 0x10000;
      put(static_cast<std::uint16_t>(0xD800 + (v >> 10)));
      put(static_cast<std::uint16_t>(0xDC00 + (v & 0x3FF)));
    }
  }
  return out;
}

}  // namespace enclave::gateway
