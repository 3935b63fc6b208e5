#include "common/ipc/frame.hpp"

#include <cassert>
#include <string>

namespace enclave::ipc {

namespace {

using nlohmann::json;
using Kind = ProtocolError::Kind;

// nlohmann's parser is iterative, but copying, comparing and dumping a value recurse; a bound
// on nesting keeps a hostile 1 MiB payload of '[' from exhausting a thread's stack.
constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxMethod = 64;
constexpr std::size_t kMaxNamedKey = 64;

Unexpected<ProtocolError> protocol_error(Kind kind, std::string message, std::uint64_t id) {
  return fail(ProtocolError{kind, std::move(message), id});
}

// Linear scan of the raw bytes: true when no array or object opens deeper than kMaxDepth.
// Brackets inside strings do not count; malformed JSON is left for the parser to refuse.
bool nesting_within_limit(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return false;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return true;
}

std::string quoted(std::string_view text) {
  return json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Names an unknown key in an error message: at most kMaxNamedKey bytes, cut on a UTF-8
// character boundary, quoted and escaped so that it cannot forge a log line.
std::string key_name(std::string_view key) {
  if (key.size() <= kMaxNamedKey) return quoted(key);
  std::size_t cut = kMaxNamedKey;
  while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;
  return quoted(key.substr(0, cut)) + "...";
}

// Parses the payload into a JSON object whose "v" is kProtocolVersion and whose keys are all
// in `allowed`. id_out receives the "id" as soon as it is readable, for the error reply.
Result<json, ProtocolError> parse_envelope(ByteSpan payload,
                                           std::initializer_list<std::string_view> allowed,
                                           std::uint64_t& id_out) {
  std::string_view text = as_chars(payload);
  if (!nesting_within_limit(text)) {
    return protocol_error(Kind::kBadJson,
                          "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels", 0);
  }
  json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return protocol_error(Kind::kBadJson, "payload is not UTF-8 JSON", 0);
  if (!doc.is_object()) return protocol_error(Kind::kBadJson, "payload is not a JSON object", 0);

  auto id = doc.find("id");
  if (id != doc.end() && id->is_number_unsigned() && id->get<std::uint64_t>() <= kMaxId) {
    id_out = id->get<std::uint64_t>();
  }

  auto version = doc.find("v");
  if (version == doc.end()) return protocol_error(Kind::kBadVersion, "\"v\" is missing", id_out);
  if (!version->is_number_integer() || version->get<std::int64_t>() != kProtocolVersion) {
    return protocol_error(Kind::kBadVersion, "\"v\" must be " + std::to_string(kProtocolVersion),
                          id_out);
  }

  for (const auto& [key, value] : doc.items()) {
    bool known = false;
    for (std::string_view name : allowed) known = known || key == name;
    if (!known) return protocol_error(Kind::kBadField, "unknown field " + key_name(key), id_out);
  }

  if (id == doc.end()) return protocol_error(Kind::kBadField, "\"id\" is missing", id_out);
  if (!id->is_number_unsigned() || id->get<std::uint64_t>() > kMaxId) {
    return protocol_error(Kind::kBadField, "\"id\" must be an unsigned integer below 2^53", id_out);
  }
  return doc;
}

std::string dump_compact(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace

std::string ProtocolError::describe() const {
  const char* name = "protocol error";
  switch (kind) {
    case Kind::kFrameTooLarge:
      name = "frame too large";
      break;
    case Kind::kEmptyFrame:
      name = "empty frame";
      break;
    case Kind::kBadJson:
      name = "bad JSON";
      break;
    case Kind::kBadVersion:
      name = "bad version";
      break;
    case Kind::kBadField:
      name = "bad field";
      break;
  }
  return std::string(name) + ": " + message;
}

Result<std::optional<FrameView>, ProtocolError> next_frame(ByteSpan buffer) {
  ReadCursor cursor(buffer);
  auto length = cursor.u32be();
  if (!length) return std::optional<FrameView>{};
  if (*length == 0) return protocol_error(Kind::kEmptyFrame, "announced length is 0", 0);
  if (*length > kMaxFrame) {
    return protocol_error(
        Kind::kFrameTooLarge,
        "announced length " + std::to_string(*length) + " exceeds " + std::to_string(kMaxFrame), 0);
  }
  auto payload = cursor.take(*length);
  if (!payload) return std::optional<FrameView>{};
  return std::optional<FrameView>{FrameView{*payload, cursor.position()}};
}

void append_frame(std::string_view payload, Bytes& out) {
  assert(!payload.empty() && payload.size() <= kMaxFrame);
  WriteCursor writer(out);
  writer.u32be(static_cast<std::uint32_t>(payload.size()));
  writer.put(as_bytes(payload));
}

bool is_valid_method(std::string_view method) {
  if (method.empty() || method.size() > kMaxMethod) return false;
  for (char c : method) {
    bool allowed = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_';
    if (!allowed) return false;
  }
  return true;
}

Response Response::success(std::uint64_t id, nlohmann::json result) {
  Response response;
  response.id = id;
  response.ok = true;
  // `success(id, {})` passes null; it means "nothing to report", the empty object.
  if (!result.is_null()) response.result = std::move(result);
  return response;
}

Response Response::failure(std::uint64_t id, const Error& error) {
  Response response;
  response.id = id;
  response.ok = false;
  response.code = error.code;
  response.message = error.message;
  return response;
}

Result<Request, ProtocolError> parse_request(ByteSpan payload) {
  std::uint64_t id = 0;
  auto doc = parse_envelope(payload, {"v", "id", "method", "params"}, id);
  if (!doc) return fail(std::move(doc.error()));

  Request request;
  request.id = id;
  auto method = doc->find("method");
  if (method == doc->end()) return protocol_error(Kind::kBadField, "\"method\" is missing", id);
  if (!method->is_string() || !is_valid_method(method->get_ref<const std::string&>())) {
    return protocol_error(Kind::kBadField, "\"method\" must be 1..64 characters of [a-z0-9._]", id);
  }
  request.method = method->get<std::string>();

  auto params = doc->find("params");
  if (params != doc->end()) {
    if (!params->is_object()) {
      return protocol_error(Kind::kBadField, "\"params\" must be an object", id);
    }
    request.params = std::move(*params);
  }
  return request;
}

Result<Response, ProtocolError> parse_response(ByteSpan payload) {
  std::uint64_t id = 0;
  auto doc = parse_envelope(payload, {"v", "id", "ok", "result", "error"}, id);
  if (!doc) return fail(std::move(doc.error()));

  Response response;
  response.id = id;
  auto ok = doc->find("ok");
  if (ok == doc->end() || !ok->is_boolean()) {
    return protocol_error(Kind::kBadField, "\"ok\" must be true or false", id);
  }
  response.ok = ok->get<bool>();
  auto result = doc->find("result");
  auto error = doc->find("error");

  if (response.ok) {
    if (error != doc->end()) {
      return protocol_error(Kind::kBadField, "\"error\" is not allowed when \"ok\" is true", id);
    }
    if (result == doc->end() || !result->is_object()) {
      return protocol_error(Kind::kBadField, "\"result\" must be an object when \"ok\" is true",
                            id);
    }
    response.result = std::move(*result);
    return response;
  }

  if (result != doc->end()) {
    return protocol_error(Kind::kBadField, "\"result\" is not allowed when \"ok\" is false", id);
  }
  if (error == doc->end() || !error->is_object()) {
    return protocol_error(Kind::kBadField, "\"error\" must be an object when \"ok\" is false", id);
  }
  for (const auto& [key, value] : error->items()) {
    if (key != "code" && key != "message") {
      return protocol_error(Kind::kBadField, "unknown field " + key_name(key) + " in \"error\"",
                            id);
    }
  }
  auto code = error->find("code");
  if (code == error->end() || !code->is_string()) {
    return protocol_error(Kind::kBadField, "\"error.code\" must be a string", id);
  }
  auto errc = errc_from_id(code->get_ref<const std::string&>());
  if (!errc) {
    return protocol_error(Kind::kBadField,
                          "\"error.code\" " + key_name(code->get_ref<const std::string&>()) +
                              " is not a known error code",
                          id);
  }
  auto message = error->find("message");
  if (message == error->end() || !message->is_string()) {
    return protocol_error(Kind::kBadField, "\"error.message\" must be a string", id);
  }
  response.code = *errc;
  response.message = message->get<std::string>();
  return response;
}

// Written by hand rather than through a json object so that params and result are not copied;
// keys in nlohmann's (sorted) order, so the output equals dump() of the parsed message.
std::string encode_request(const Request& request) {
  return "{\"id\":" + std::to_string(request.id) + ",\"method\":" + dump_compact(request.method) +
         ",\"params\":" + dump_compact(request.params) +
         ",\"v\":" + std::to_string(kProtocolVersion) + "}";
}

std::string encode_response(const Response& response) {
  std::string out;
  if (response.ok) {
    out = "{\"id\":" + std::to_string(response.id) +
          ",\"ok\":true,\"result\":" + dump_compact(response.result);
  } else {
    json error = {{"code", errc_id(response.code)}, {"message", response.message}};
    out = "{\"error\":" + dump_compact(error) + ",\"id\":" + std::to_string(response.id) +
          ",\"ok\":false";
  }
  return out + ",\"v\":" + std::to_string(kProtocolVersion) + "}";
}

}  // namespace enclave::ipc
