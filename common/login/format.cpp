#include "common/login/format.hpp"

#include <limits>

namespace enclave::login {

const char* format_error_name(FormatError::Kind kind) {
  using Kind = FormatError::Kind;
  switch (kind) {
    case Kind::kFrameTooLarge:
      return "frame too large";
    case Kind::kEmptyFrame:
      return "empty frame";
    case Kind::kBadJson:
      return "bad JSON";
    case Kind::kBadVersion:
      return "bad version";
    case Kind::kUnknownType:
      return "unknown type";
    case Kind::kMissingField:
      return "missing field";
    case Kind::kWrongType:
      return "wrong type";
    case Kind::kBadValue:
      return "bad value";
    case Kind::kUnknownField:
      return "unknown field";
  }
  return "format error";
}

std::string FormatError::describe() const {
  return std::string(format_error_name(kind)) + ": " + message;
}

namespace fields {

namespace {

using Kind = FormatError::Kind;

constexpr std::size_t kMaxNamedBytes = 64;

std::string path_of(std::string_view where, std::string_view key) {
  return std::string(where) + std::string(key);
}

// The field, or a missing-field error naming it.
Result<const json*, FormatError> find_field(const json& object, std::string_view key,
                                            std::string_view where) {
  auto it = object.find(key);
  if (it == object.end()) {
    return format_error(Kind::kMissingField, path_of(where, key),
                        "\"" + path_of(where, key) + "\" is missing");
  }
  return &*it;
}

Unexpected<FormatError> wrong_type(std::string_view where, std::string_view key,
                                   std::string_view expected) {
  return format_error(Kind::kWrongType, path_of(where, key),
                      "\"" + path_of(where, key) + "\" must be " + std::string(expected));
}

Result<std::string, FormatError> checked_string(const json& value, std::string_view key,
                                                std::string_view where, StringRule rule) {
  if (!value.is_string()) return wrong_type(where, key, "a string");
  const auto& text = value.get_ref<const std::string&>();
  if (text.size() < rule.min || text.size() > rule.max) {
    return format_error(Kind::kBadValue, path_of(where, key),
                        "\"" + path_of(where, key) + "\" must be " + std::to_string(rule.min) +
                            ".." + std::to_string(rule.max) + " bytes, not " +
                            std::to_string(text.size()));
  }
  if (text.find('\0') != std::string::npos) {
    return format_error(Kind::kBadValue, path_of(where, key),
                        "\"" + path_of(where, key) + "\" contains a NUL character");
  }
  return text;
}

}  // namespace

Unexpected<FormatError> format_error(FormatError::Kind kind, std::string field,
                                     std::string message) {
  return fail(FormatError{kind, std::move(field), std::move(message)});
}

std::string json_string(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string quoted_name(std::string_view name) {
  if (name.size() <= kMaxNamedBytes) return json_string(name);
  std::size_t cut = kMaxNamedBytes;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return json_string(name.substr(0, cut)) + "...";
}

// nlohmann's parser is iterative and its destructor flattens nested values before freeing
// them, so deeply nested hostile input costs memory bounded by its size, not stack. The
// readers here never copy, compare or dump a parsed value whole, which would recurse.
Result<json, FormatError> parse_object(std::string_view text) {
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return format_error(Kind::kBadJson, "", "text is not UTF-8 JSON");
  if (!doc.is_object()) return format_error(Kind::kBadJson, "", "text is not a JSON object");
  return doc;
}

Result<void, FormatError> check_keys(const json& object,
                                     std::initializer_list<std::string_view> allowed,
                                     std::string_view where) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (std::string_view name : allowed) known = known || key == name;
    if (!known) {
      return format_error(Kind::kUnknownField, path_of(where, key),
                          "unknown field " + quoted_name(path_of(where, key)));
    }
  }
  return {};
}

Result<std::string, FormatError> string_field(const json& object, std::string_view key,
                                              std::string_view where, StringRule rule) {
  auto value = find_field(object, key, where);
  if (!value) return fail(std::move(value.error()));
  return checked_string(**value, key, where, rule);
}

Result<std::optional<std::string>, FormatError> optional_string_field(const json& object,
                                                                      std::string_view key,
                                                                      std::string_view where,
                                                                      StringRule rule) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::optional<std::string>{};
  auto text = checked_string(*it, key, where, rule);
  if (!text) return fail(std::move(text.error()));
  return std::optional<std::string>{std::move(*text)};
}

Result<std::int64_t, FormatError> integer_field(const json& object, std::string_view key,
                                                std::string_view where, std::int64_t min,
                                                std::int64_t max) {
  auto value = find_field(object, key, where);
  if (!value) return fail(std::move(value.error()));
  const json& number = **value;
  std::string range = std::to_string(min) + ".." + std::to_string(max);
  if (!number.is_number_integer()) return wrong_type(where, key, "an integer in " + range);
  bool in_range = false;
  std::int64_t result = 0;
  if (number.is_number_unsigned()) {
    auto u = number.get<std::uint64_t>();
    in_range = u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    result = static_cast<std::int64_t>(u);
  } else {
    result = number.get<std::int64_t>();
    in_range = true;
  }
  if (!in_range || result < min || result > max) {
    return format_error(Kind::kBadValue, path_of(where, key),
                        "\"" + path_of(where, key) + "\" must be in " + range);
  }
  return result;
}

Result<Bytes, FormatError> base64_field(const json& object, std::string_view key,
                                        std::string_view where, std::size_t min_bytes,
                                        std::size_t max_bytes) {
  auto value = find_field(object, key, where);
  if (!value) return fail(std::move(value.error()));
  if (!(*value)->is_string()) return wrong_type(where, key, "a base64 string");
  const auto& text = (*value)->get_ref<const std::string&>();
  // Checked before decoding, so an oversized field costs no allocation.
  if (text.size() / 4 * 3 > max_bytes + 2) {
    return format_error(Kind::kBadValue, path_of(where, key),
                        "\"" + path_of(where, key) + "\" encodes more than " +
                            std::to_string(max_bytes) + " bytes");
  }
  auto bytes = base64_decode(text);
  if (!bytes) {
    return format_error(Kind::kBadValue, path_of(where, key),
                        "\"" + path_of(where, key) + "\" is not canonical padded base64");
  }
  if (bytes->size() < min_bytes || bytes->size() > max_bytes) {
    return format_error(Kind::kBadValue, path_of(where, key),
                        "\"" + path_of(where, key) + "\" must decode to " +
                            std::to_string(min_bytes) + ".." + std::to_string(max_bytes) +
                            " bytes, not " + std::to_string(bytes->size()));
  }
  return std::move(*bytes);
}

Result<const json*, FormatError> object_field(const json& object, std::string_view key,
                                              std::string_view where) {
  auto value = find_field(object, key, where);
  if (!value) return value;
  if (!(*value)->is_object()) return wrong_type(where, key, "an object");
  return value;
}

Result<const json*, FormatError> array_field(const json& object, std::string_view key,
                                             std::string_view where) {
  auto value = find_field(object, key, where);
  if (!value) return value;
  if (!(*value)->is_array()) return wrong_type(where, key, "an array");
  return value;
}

Result<void, FormatError> check_version(const json& object, int version) {
  auto it = object.find("v");
  if (it == object.end()) return format_error(Kind::kBadVersion, "v", "\"v\" is missing");
  if (!it->is_number_integer() || it->get<std::int64_t>() != version) {
    return format_error(Kind::kBadVersion, "v", "\"v\" must be " + std::to_string(version));
  }
  return {};
}

}  // namespace fields
}  // namespace enclave::login
