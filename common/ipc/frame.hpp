// The framed request/response protocol every service speaks over its Unix socket.
//
// Wire format (one frame):
//   u32 length (big-endian, 1..kMaxFrame) | length bytes of UTF-8 JSON
// Request:  {"v":1,"id":7,"method":"audit.append","params":{...}}
// Response: {"v":1,"id":7,"ok":true,"result":{...}}
//       or  {"v":1,"id":7,"ok":false,"error":{"code":"no_space","message":"..."}}
// id is chosen by the client (unsigned, < 2^53) and echoed; a client may pipeline requests
// and match responses by id. Unknown top-level keys are refused, so a later version is an
// explicit "v":2. Pure functions only: no I/O here, so the fuzzers link this alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::ipc {

inline constexpr std::uint32_t kMaxFrame = 1u << 20;  // 1 MiB
inline constexpr int kProtocolVersion = 1;
inline constexpr std::uint64_t kMaxId = (std::uint64_t{1} << 53) - 1;

struct ProtocolError {
  enum class Kind {
    kFrameTooLarge,  // announced length above kMaxFrame
    kEmptyFrame,     // announced length 0
    kBadJson,        // not UTF-8 JSON, or not an object
    kBadVersion,     // "v" missing or not kProtocolVersion
    kBadField,       // a field missing, of the wrong type or unknown
  };
  Kind kind;
  std::string message;
  std::uint64_t id = 0;  // the message's id when it could be read (for the error reply), else 0

  std::string describe() const;
};

// A complete frame found at the start of a buffer.
struct FrameView {
  ByteSpan payload;
  std::size_t consumed;  // 4 + payload size
};

// Looks for one complete frame at the start of buffer: nullopt when more bytes are needed
// (including fewer than 4), an error when the announced length is 0 or above kMaxFrame.
// Never reads past buffer, never allocates.
Result<std::optional<FrameView>, ProtocolError> next_frame(ByteSpan buffer);

// Appends one frame (header and payload) to out. payload.size() must be 1..kMaxFrame.
void append_frame(std::string_view payload, Bytes& out);

struct Request {
  std::uint64_t id = 0;
  std::string method;
  nlohmann::json params = nlohmann::json::object();
};

struct Response {
  std::uint64_t id = 0;
  bool ok = true;
  nlohmann::json result = nlohmann::json::object();  // when ok
  Errc code = Errc::kInternal;                       // when !ok
  std::string message;                               // when !ok

  static Response success(std::uint64_t id, nlohmann::json result);
  static Response failure(std::uint64_t id, const Error& error);
  Error error() const { return {code, message}; }  // when !ok
};

// 1..64 chars of [a-z0-9._]: what parse_request accepts as a method name.
bool is_valid_method(std::string_view method);

// method: see is_valid_method; params: a JSON object (absent means {}). JSON nested deeper
// than 64 levels is refused as kBadJson.
Result<Request, ProtocolError> parse_request(ByteSpan payload);
Result<Response, ProtocolError> parse_response(ByteSpan payload);
std::string encode_request(const Request& request);
std::string encode_response(const Response& response);

}  // namespace enclave::ipc
