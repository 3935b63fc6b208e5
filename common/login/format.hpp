// The typed error of the login formats (the fingerprint challenge, the login API's messages)
// and the JSON field readers they share. Every reader names the field it refused, so an
// error says which part of a message was wrong without quoting the message.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::login {

struct FormatError {
  enum class Kind {
    kFrameTooLarge,  // announced length above the cap
    kEmptyFrame,     // announced length 0
    kBadJson,        // not UTF-8 JSON, or not a JSON object
    kBadVersion,     // "v" missing or not the version this build speaks
    kUnknownType,    // "type" names no message of the protocol
    kMissingField,
    kWrongType,     // a field of the wrong JSON type
    kBadValue,      // the right JSON type, a value outside what the field allows
    kUnknownField,  // a key the message does not have
  };
  Kind kind = Kind::kBadJson;
  std::string field;  // the field concerned, dotted ("desktop.port"); empty for the whole text
  std::string message;

  std::string describe() const;
};

const char* format_error_name(FormatError::Kind kind);  // "unknown type", "missing field", ...

namespace fields {

using nlohmann::json;

Unexpected<FormatError> format_error(FormatError::Kind kind, std::string field,
                                     std::string message);

// A name from untrusted input for an error message: at most 64 bytes cut on a character
// boundary, JSON-quoted so that it cannot forge a log line.
std::string quoted_name(std::string_view name);

// Parses UTF-8 JSON text that must be an object. Never throws.
Result<json, FormatError> parse_object(std::string_view text);

// Refuses any key of `object` not in `allowed`; `where` prefixes field names ("desktop.").
Result<void, FormatError> check_keys(const json& object,
                                     std::initializer_list<std::string_view> allowed,
                                     std::string_view where = {});

// Limits on a string field, in bytes. Strings never contain NUL.
struct StringRule {
  std::size_t min = 1;
  std::size_t max = 256;
};

Result<std::string, FormatError> string_field(const json& object, std::string_view key,
                                              std::string_view where, StringRule rule = {});
// Absent and null both mean "not given".
Result<std::optional<std::string>, FormatError> optional_string_field(const json& object,
                                                                      std::string_view key,
                                                                      std::string_view where,
                                                                      StringRule rule = {});
// An integer in [min, max]; JSON numbers with a fraction or exponent are refused.
Result<std::int64_t, FormatError> integer_field(const json& object, std::string_view key,
                                                std::string_view where, std::int64_t min,
                                                std::int64_t max);
// Standard padded base64 (canonical), decoded size in [min_bytes, max_bytes].
Result<Bytes, FormatError> base64_field(const json& object, std::string_view key,
                                        std::string_view where, std::size_t min_bytes,
                                        std::size_t max_bytes);
// The object or array at `key`, by pointer into `object`.
Result<const json*, FormatError> object_field(const json& object, std::string_view key,
                                              std::string_view where);
Result<const json*, FormatError> array_field(const json& object, std::string_view key,
                                             std::string_view where);
// "v" must be present and equal `version`.
Result<void, FormatError> check_version(const json& object, int version);

// Compact JSON text of a string, UTF-8 kept as is: the one escaping every encoder here uses.
std::string json_string(std::string_view text);

}  // namespace fields
}  // namespace enclave::login
