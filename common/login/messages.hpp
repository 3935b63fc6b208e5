// The login API's messages between the kiosk and the gateway, shaped like greetd's IPC
// (greetd-ipc(7)): the kiosk opens a login with create_session, the center answers with
// auth_message prompts (PAM decides which, the kiosk must not assume), the kiosk answers each
// with post_auth_message_response, until success or error. cancel_session ends a login.
// A kiosk records a fingerprint enrolment with enrol_print instead (a steward approved it at
// the center; the device is the one in its TLS certificate, never a field of the message).
//
// Framing, unlike greetd's native byte order: u32 big-endian length (1..kMaxMessageBytes),
// then that many bytes of UTF-8 JSON, one object with a "type".
//
// Requests (kiosk -> center):
//   {"type":"create_session","v":1,"username":..,      the first message of a login: the
//    "compartment":..}                                  version is announced here; compartment
//                                                        (optional, 1..64 of [a-z0-9_-]) for a
//                                                        user whose projects grant several
//   {"type":"enrol_print","v":1,"username":..,         the first and only request of its
//    "print":<base64>}                                  connection: the serialised libfprint
//                                                        print, 1..kMaxPrintBytes (assertion.hpp:
//                                                        what a fingerprint challenge carries)
//   {"type":"post_auth_message_response","response":..}  response absent (or null) for info
//                                                        and error messages
//   {"type":"cancel_session"}
// Responses (center -> kiosk):
//   {"type":"success","ticket":..,"expires_at":<RFC 3339>,
//    "desktop":{"id","host","port"},
//    "gateway":{"address","port","pin_sha256":<64 hex>,"xfreerdp_fingerprint":"ab:cd:.."}}
//   {"type":"enrolled","print_id":..}                    the answer to enrol_print
//   {"type":"error","error_type":"auth_error"|"error","description":..}
//   {"type":"auth_message","auth_message_type":"visible"|"secret"|"info"|"error"|"fingerprint",
//    "auth_message":..}   for "fingerprint", the challenge text (common/login/assertion.hpp);
//                         its answer is the signed assertion's wire text
// Unknown types and unknown keys are refused: a change is a new version.
//
// Pure functions and a buffer: no I/O, so the fuzzers link this alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "common/bytes.hpp"
#include "common/login/format.hpp"

namespace enclave::login {

inline constexpr std::uint32_t kMaxMessageBytes = 64 * 1024;
inline constexpr int kLoginProtocolVersion = 1;

// --- requests --------------------------------------------------------------------------------

struct CreateSession {
  std::string username;                    // 1..256 bytes
  std::optional<std::string> compartment;  // 1..64 bytes of [a-z0-9_-]; absent: the registry
                                           // picks the only one the user's projects grant
  bool operator==(const CreateSession&) const = default;
};

struct EnrolPrint {
  std::string username;  // 1..256 bytes
  Bytes print;           // fp_print_serialize's output, 1..kMaxPrintBytes (assertion.hpp)
  bool operator==(const EnrolPrint&) const = default;
};

struct PostAuthMessageResponse {
  std::optional<std::string> response;  // a password, a visible answer, or a signed assertion
  bool operator==(const PostAuthMessageResponse&) const = default;
};

struct CancelSession {
  bool operator==(const CancelSession&) const = default;
};

using Request = std::variant<CreateSession, EnrolPrint, PostAuthMessageResponse, CancelSession>;

// --- responses -------------------------------------------------------------------------------

struct Desktop {
  std::string id;
  std::string host;
  std::uint16_t port = 0;  // 1..65535
  bool operator==(const Desktop&) const = default;
};

// Where xfreerdp connects with the ticket, and how it pins the gateway's certificate.
struct GatewayEndpoint {
  std::string address;
  std::uint16_t port = 0;            // 1..65535
  std::string pin_sha256;            // hex SHA-256 of the certificate's SubjectPublicKeyInfo
  std::string xfreerdp_fingerprint;  // "ab:cd:..", for /cert:fingerprint:sha256:
  bool operator==(const GatewayEndpoint&) const = default;
};

struct Success {
  std::string ticket;
  std::string expires_at;  // RFC 3339
  Desktop desktop;
  GatewayEndpoint gateway;
  bool operator==(const Success&) const = default;
};

// The print the center recorded for an enrol_print.
struct Enrolled {
  std::string print_id;  // 1..kMaxPrintIdBytes (assertion.hpp)
  bool operator==(const Enrolled&) const = default;
};

enum class ErrorType { kAuthError, kError };

struct ErrorReply {
  ErrorType error_type = ErrorType::kError;
  std::string description;
  bool operator==(const ErrorReply&) const = default;
};

enum class AuthMessageType { kVisible, kSecret, kInfo, kError, kFingerprint };
const char* auth_message_type_name(AuthMessageType type);  // "visible", "secret", ...
std::optional<AuthMessageType> auth_message_type_from_name(std::string_view name);

struct AuthMessage {
  AuthMessageType type = AuthMessageType::kInfo;
  std::string text;
  // Info and error messages are acknowledged with a response-less post_auth_message_response.
  bool needs_answer() const {
    return type != AuthMessageType::kInfo && type != AuthMessageType::kError;
  }
  bool operator==(const AuthMessage&) const = default;
};

using Response = std::variant<Success, ErrorReply, AuthMessage, Enrolled>;

// --- payloads --------------------------------------------------------------------------------

// Compact JSON, keys sorted: parse(encode(x)) == x for every x that parse returns. Bytes of a
// string that are not UTF-8 (a PAM module's Latin-1 prompt) are sent as U+FFFD.
std::string encode_request(const Request& request);
std::string encode_response(const Response& response);
Result<Request, FormatError> parse_request(ByteSpan payload);
Result<Response, FormatError> parse_response(ByteSpan payload);

// --- frames ----------------------------------------------------------------------------------

// Header and payload; kEmptyFrame for an empty payload, kFrameTooLarge above kMaxMessageBytes.
Result<Bytes, FormatError> frame_payload(std::string_view payload);
Result<Bytes, FormatError> frame_request(const Request& request);
Result<Bytes, FormatError> frame_response(const Response& response);

// Splits a byte stream into payloads. A frame error (an announced length of 0 or above
// kMaxMessageBytes) leaves the stream out of step: every later call returns the same error
// and the connection should close. A payload that is not a valid message is consumed and
// reported; the next frame is still readable. The bytes it held are wiped as they are
// consumed (passwords pass through here); the parsed messages are the caller's to wipe.
class FrameDecoder {
 public:
  FrameDecoder() = default;
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  void feed(ByteSpan bytes);
  // The next complete payload; nullopt until one is complete.
  Result<std::optional<std::string>, FormatError> next_payload();
  Result<std::optional<Request>, FormatError> next_request();
  Result<std::optional<Response>, FormatError> next_response();
  // Bytes received and not yet taken as a payload.
  std::size_t buffered() const { return buffer_.size() - start_; }

 private:
  void compact();

  Bytes buffer_;
  std::size_t start_ = 0;  // INVARIANT: bytes before start_ are consumed and already wiped
  std::optional<FormatError> broken_;
};

}  // namespace enclave::login
