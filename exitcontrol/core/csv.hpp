// RFC 4180 CSV over UTF-8 bytes: quoted fields with "" escapes, CRLF or LF line ends, an
// optional UTF-8 byte-order mark. A pure parser: bytes in, records or a typed error out.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace enclave::exitcontrol::csv {

enum class ParseErrc {
  kInvalidUtf8,        // bytes that are not UTF-8
  kUnterminatedQuote,  // a quoted field runs to the end of the input
  kBadQuote,           // a quote inside an unquoted field, or text after a closing quote
  kBadLineEnd,         // a carriage return outside quotes not followed by a line feed
  kRagged,             // a record with a different number of fields than the header
  kEmpty,              // no header record
  kTooLarge,           // beyond ParseLimits
};
const char* parse_errc_name(ParseErrc code);

struct ParseError {
  ParseErrc code;
  std::uint32_t row = 0;     // 1-based record number (the header is record 1)
  std::uint32_t column = 0;  // 1-based field number; 0 when the whole record is meant
  std::string detail;

  // "FILE:ROW:COL: detail" (column omitted when 0).
  std::string describe(std::string_view file) const;
};

struct ParseLimits {
  std::size_t max_records = 50'000'000;
  std::size_t max_fields = 10'000;  // per record
};

// A parsed file. Records share one field table; fields are views into the original bytes
// where no unescaping was needed and into owned storage otherwise, so a Document must not
// outlive the bytes it was parsed from.
class Document {
 public:
  std::size_t records() const { return offsets_.empty() ? 0 : offsets_.size() - 1; }
  std::size_t width() const { return width_; }  // fields per record (the header's)
  std::string_view field(std::size_t record, std::size_t column) const {
    return fields_[offsets_[record] + column];
  }
  const std::vector<std::string_view>& header() const { return header_; }
  // Column index by header name.
  std::optional<std::size_t> column(std::string_view name) const;
  // The bytes of a record as they stand in the input, quotes and line end included (the last
  // record may have none). Record 0 starts after the byte-order mark; the bytes before it and
  // after the last record (the mark, trailing empty lines) are what a rewriter copies as is.
  std::string_view raw_record(std::size_t record) const {
    return {raw_begin_[record],
            static_cast<std::size_t>(raw_begin_[record + 1] - raw_begin_[record])};
  }

 private:
  friend Result<Document, ParseError> parse(std::string_view bytes, const ParseLimits& limits);
  std::vector<std::string_view> fields_;
  std::vector<std::size_t> offsets_;  // records()+1 entries into fields_
  std::vector<std::string_view> header_;
  std::vector<std::unique_ptr<std::string>> unescaped_;  // stable storage for "" fields
  std::vector<const char*> raw_begin_;                   // records()+1 record starts in the input
  std::size_t width_ = 0;
};

// Record 0 is the header. Every record must have the header's width.
Result<Document, ParseError> parse(std::string_view bytes, const ParseLimits& limits = {});

// One field written back as RFC 4180 (quoted when it holds a comma, quote, CR or LF).
void append_field(std::string& out, std::string_view field);

// A record's raw bytes (from Document::raw_record) split into the raw text of each field,
// quotes kept, and the line end ("\r\n", "\n" or ""). Only for records the parser accepted.
struct RawRecord {
  std::vector<std::string_view> fields;
  std::string_view line_end;
};
RawRecord split_raw(std::string_view raw_record);

}  // namespace enclave::exitcontrol::csv
