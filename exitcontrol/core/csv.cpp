#include "exitcontrol/core/csv.hpp"

#include <array>
#include <cstdio>

#include "common/bytes.hpp"

namespace enclave::exitcontrol::csv {

const char* parse_errc_name(ParseErrc code) {
  switch (code) {
    case ParseErrc::kInvalidUtf8:
      return "invalid UTF-8";
    case ParseErrc::kUnterminatedQuote:
      return "unterminated quote";
    case ParseErrc::kBadQuote:
      return "misplaced quote";
    case ParseErrc::kBadLineEnd:
      return "bare carriage return";
    case ParseErrc::kRagged:
      return "wrong number of fields";
    case ParseErrc::kEmpty:
      return "empty file";
    case ParseErrc::kTooLarge:
      return "too large";
  }
  return "unknown";
}

std::string ParseError::describe(std::string_view file) const {
  std::string out(file);
  if (row > 0) {
    out += ':' + std::to_string(row);
    if (column > 0) out += ':' + std::to_string(column);
  }
  out += ": ";
  out += detail;
  return out;
}

std::optional<std::size_t> Document::column(std::string_view name) const {
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return std::nullopt;
}

namespace {

// Bytes an unquoted field cannot simply run over: the delimiters, a quote, and the first byte
// of a multi-byte UTF-8 sequence (validated on the slow path).
constexpr std::array<bool, 256> kSpecial = [] {
  std::array<bool, 256> t{};
  t[','] = t['"'] = t['\r'] = t['\n'] = true;
  for (int c = 0x80; c < 256; ++c) t[c] = true;
  return t;
}();

std::string describe_byte(unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", c);
  return buf;
}

class Parser {
 public:
  Parser(std::string_view bytes, const ParseLimits& limits) : bytes_(bytes), limits_(limits) {}

  Result<void, ParseError> run() {
    const char* p = bytes_.data();
    const char* end = p + bytes_.size();
    if (bytes_.starts_with("\xEF\xBB\xBF")) p += 3;
    // Trailing line ends belong to no record: "a\n" is one record, and so is "a\n\r\n".
    while (end > p && end[-1] == '\n') {
      --end;
      if (end > p && end[-1] == '\r') --end;
    }
    if (p == end) return fail(ParseError{ParseErrc::kEmpty, 0, 0, "no header record"});
    // A rough guess that avoids most regrowth on tables of short fields.
    output.fields.reserve(static_cast<std::size_t>(end - p) / 6 + 1);

    while (p < end) {
      const std::size_t record = output.offsets.size();
      if (record >= limits_.max_records) {
        return error(ParseErrc::kTooLarge, record, 0,
                     "more than " + std::to_string(limits_.max_records) + " records");
      }
      output.raw_begin.push_back(p);
      output.offsets.push_back(output.fields.size());
      std::size_t column = 0;
      for (;;) {
        if (++column > limits_.max_fields) {
          return error(ParseErrc::kTooLarge, record, column,
                       "more than " + std::to_string(limits_.max_fields) + " fields");
        }
        if (p < end && *p == '"') {
          if (auto st = quoted_field(p, end, record, column); !st) return fail(st.error());
        } else {
          const char* start = p;
          while (p < end) {
            auto c = static_cast<unsigned char>(*p);
            if (!kSpecial[c]) {
              ++p;
            } else if (c >= 0x80) {
              if (auto st = check_utf8(p, record, column); !st) return fail(st.error());
            } else {
              break;
            }
          }
          if (p < end && *p == '"') {
            return error(ParseErrc::kBadQuote, record, column,
                         "a quote inside an unquoted field (quote the whole field and double "
                         "the quote)");
          }
          output.fields.emplace_back(start, static_cast<std::size_t>(p - start));
        }
        if (p == end) break;
        if (*p == ',') {
          ++p;
          continue;
        }
        if (*p == '\n') {
          ++p;
          break;
        }
        // *p == '\r' (quoted_field and the unquoted scan stop at nothing else).
        if (p + 1 < end && p[1] == '\n') {
          p += 2;
          break;
        }
        return error(ParseErrc::kBadLineEnd, record, column,
                     "a carriage return not followed by a line feed");
      }
      const std::size_t count = output.fields.size() - output.offsets.back();
      if (record == 0) {
        output.width = count;
      } else if (count != output.width) {
        return error(ParseErrc::kRagged, record, 0,
                     "the record has " + std::to_string(count) + " field" +
                         (count == 1 ? "" : "s") + ", the header has " +
                         std::to_string(output.width));
      }
    }
    output.raw_begin.push_back(end);
    output.offsets.push_back(output.fields.size());
    return {};
  }

  // What run() found, moved into the Document by parse().
  struct Output {
    std::vector<std::string_view> fields;
    std::vector<std::size_t> offsets;
    std::vector<std::unique_ptr<std::string>> unescaped;
    std::vector<const char*> raw_begin;
    std::size_t width = 0;
  } output;

 private:
  static Unexpected<ParseError> error(ParseErrc code, std::size_t record, std::size_t column,
                                      std::string detail) {
    return fail(ParseError{code, static_cast<std::uint32_t>(record + 1),
                           static_cast<std::uint32_t>(column), std::move(detail)});
  }

  // Validates the multi-byte sequence at p and steps over it.
  Result<void, ParseError> check_utf8(const char*& p, std::size_t record, std::size_t column) {
    std::size_t at = static_cast<std::size_t>(p - bytes_.data());
    if (!utf8_next(bytes_, at)) {
      return error(ParseErrc::kInvalidUtf8, record, column,
                   "invalid UTF-8 (byte " + describe_byte(static_cast<unsigned char>(*p)) +
                       " at offset " + std::to_string(p - bytes_.data()) +
                       "); save the file as UTF-8, not Shift_JIS or another encoding");
    }
    p = bytes_.data() + at;
    return {};
  }

  // p is at the opening quote; leaves p after the closing one, at a delimiter or the end.
  Result<void, ParseError> quoted_field(const char*& p, const char* end, std::size_t record,
                                        std::size_t column) {
    const char* start = ++p;
    bool escaped = false;
    for (;;) {
      if (p == end) {
        return error(ParseErrc::kUnterminatedQuote, record, column,
                     "a quoted field is not closed before the end of the file");
      }
      auto c = static_cast<unsigned char>(*p);
      if (c == '"') {
        if (p + 1 < end && p[1] == '"') {
          escaped = true;
          p += 2;
          continue;
        }
        break;
      }
      if (c >= 0x80) {
        if (auto st = check_utf8(p, record, column); !st) return st;
      } else {
        ++p;
      }
    }
    std::string_view content(start, static_cast<std::size_t>(p - start));
    ++p;  // the closing quote
    if (p < end && *p != ',' && *p != '\n' && *p != '\r') {
      return error(ParseErrc::kBadQuote, record, column, "text after a closing quote");
    }
    if (!escaped) {
      output.fields.push_back(content);
      return {};
    }
    auto owned = std::make_unique<std::string>();
    owned->reserve(content.size());
    for (std::size_t i = 0; i < content.size(); ++i) {
      owned->push_back(content[i]);
      if (content[i] == '"') ++i;  // the second quote of a "" pair
    }
    output.fields.emplace_back(*owned);
    output.unescaped.push_back(std::move(owned));
    return {};
  }

  std::string_view bytes_;
  const ParseLimits& limits_;
};

}  // namespace

Result<Document, ParseError> parse(std::string_view bytes, const ParseLimits& limits) {
  Parser parser(bytes, limits);
  if (auto st = parser.run(); !st) return fail(st.error());
  Document doc;
  doc.fields_ = std::move(parser.output.fields);
  doc.offsets_ = std::move(parser.output.offsets);
  doc.unescaped_ = std::move(parser.output.unescaped);
  doc.raw_begin_ = std::move(parser.output.raw_begin);
  doc.width_ = parser.output.width;
  doc.header_.assign(doc.fields_.begin(), doc.fields_.begin() + doc.width_);
  return doc;
}

void append_field(std::string& out, std::string_view field) {
  if (field.find_first_of(",\"\r\n") == std::string_view::npos) {
    out += field;
    return;
  }
  out += '"';
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

RawRecord split_raw(std::string_view raw) {
  RawRecord out;
  std::size_t i = 0;
  for (;;) {
    std::size_t start = i;
    if (i < raw.size() && raw[i] == '"') {
      for (++i; i < raw.size(); ++i) {
        if (raw[i] != '"') continue;
        if (i + 1 < raw.size() && raw[i + 1] == '"') {
          ++i;
          continue;
        }
        ++i;  // past the closing quote
        break;
      }
    } else {
      while (i < raw.size() && raw[i] != ',' && raw[i] != '\r' && raw[i] != '\n') ++i;
    }
    out.fields.push_back(raw.substr(start, i - start));
    if (i < raw.size() && raw[i] == ',') {
      ++i;
      continue;
    }
    out.line_end = raw.substr(i);
    return out;
  }
}

}  // namespace enclave::exitcontrol::csv
