#include "common/login/messages.hpp"

#include <algorithm>

#include "common/ipc/frame.hpp"
#include "common/login/assertion.hpp"

namespace enclave::login {

namespace {

using fields::StringRule;
using nlohmann::json;
using Kind = FormatError::Kind;

constexpr StringRule kNameRule{1, 256};
constexpr StringRule kTextRule{0, kMaxMessageBytes};
constexpr StringRule kCompartmentRule{1, 64};
constexpr StringRule kPrintIdRule{1, kMaxPrintIdBytes};
constexpr std::size_t kHeaderBytes = 4;
// The largest enrol_print: the print in base64, the longest user name escaped, the keys.
static_assert((kMaxPrintBytes + 2) / 3 * 4 + 6 * kNameRule.max + 256 <= kMaxMessageBytes,
              "an enrol_print of the largest print must fit in one message");

template <class T>
Result<T, FormatError> pass(const FormatError& error) {
  return fail(error);
}

std::string dump(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::uint16_t, FormatError> port_field(const json& object, std::string_view where) {
  auto port = fields::integer_field(object, "port", where, 1, 65535);
  if (!port) return fail(std::move(port.error()));
  return static_cast<std::uint16_t>(*port);
}

Result<std::string, FormatError> hex_sha256_field(const json& object, std::string_view key,
                                                  std::string_view where) {
  auto text = fields::string_field(object, key, where, {64, 64});
  if (!text) return text;
  bool hex = std::all_of(text->begin(), text->end(),
                         [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!hex) {
    return fields::format_error(
        Kind::kBadValue, std::string(where) + std::string(key),
        "\"" + std::string(where) + std::string(key) + "\" must be 64 lowercase hex digits");
  }
  return text;
}

// Absent, or 1..64 bytes of [a-z0-9_-]: how sessions.toml names compartments.
Result<std::optional<std::string>, FormatError> compartment_field(const json& object) {
  auto text = fields::optional_string_field(object, "compartment", "", kCompartmentRule);
  if (!text || !*text) return text;
  bool valid = std::all_of((*text)->begin(), (*text)->end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
  });
  if (!valid) {
    return fields::format_error(Kind::kBadValue, "compartment",
                                "\"compartment\" " + fields::quoted_name(**text) +
                                    " is not a compartment name (a-z, 0-9, _ and -)");
  }
  return text;
}

Result<std::string, FormatError> type_of(const json& doc) {
  return fields::string_field(doc, "type", "", {1, 64});
}

Unexpected<FormatError> unknown_type(std::string_view type, const char* direction) {
  return fields::format_error(
      Kind::kUnknownType, "type",
      "no " + std::string(direction) + " has type " + fields::quoted_name(type));
}

Result<Request, FormatError> parse_create_session(const json& doc) {
  if (auto v = fields::check_version(doc, kLoginProtocolVersion); !v)
    return pass<Request>(v.error());
  if (auto keys = fields::check_keys(doc, {"type", "v", "username", "compartment"}); !keys) {
    return pass<Request>(keys.error());
  }
  auto username = fields::string_field(doc, "username", "", kNameRule);
  if (!username) return pass<Request>(username.error());
  auto compartment = compartment_field(doc);
  if (!compartment) return pass<Request>(compartment.error());
  return Request{CreateSession{std::move(*username), std::move(*compartment)}};
}

Result<Request, FormatError> parse_enrol_print(const json& doc) {
  if (auto v = fields::check_version(doc, kLoginProtocolVersion); !v)
    return pass<Request>(v.error());
  if (auto keys = fields::check_keys(doc, {"type", "v", "username", "print"}); !keys) {
    return pass<Request>(keys.error());
  }
  auto username = fields::string_field(doc, "username", "", kNameRule);
  if (!username) return pass<Request>(username.error());
  auto print = fields::base64_field(doc, "print", "", 1, kMaxPrintBytes);
  if (!print) return pass<Request>(print.error());
  return Request{EnrolPrint{std::move(*username), std::move(*print)}};
}

Result<Response, FormatError> parse_success(const json& doc) {
  if (auto keys = fields::check_keys(doc, {"type", "ticket", "expires_at", "desktop", "gateway"});
      !keys) {
    return pass<Response>(keys.error());
  }
  Success s;
  auto ticket = fields::string_field(doc, "ticket", "", kNameRule);
  if (!ticket) return pass<Response>(ticket.error());
  s.ticket = std::move(*ticket);
  auto expires = fields::string_field(doc, "expires_at", "", {1, 64});
  if (!expires) return pass<Response>(expires.error());
  s.expires_at = std::move(*expires);

  auto desktop = fields::object_field(doc, "desktop", "");
  if (!desktop) return pass<Response>(desktop.error());
  const json& d = **desktop;
  if (auto keys = fields::check_keys(d, {"id", "host", "port"}, "desktop."); !keys) {
    return pass<Response>(keys.error());
  }
  auto id = fields::string_field(d, "id", "desktop.", kNameRule);
  if (!id) return pass<Response>(id.error());
  auto host = fields::string_field(d, "host", "desktop.", kNameRule);
  if (!host) return pass<Response>(host.error());
  auto desktop_port = port_field(d, "desktop.");
  if (!desktop_port) return pass<Response>(desktop_port.error());
  s.desktop = {std::move(*id), std::move(*host), *desktop_port};

  auto gateway = fields::object_field(doc, "gateway", "");
  if (!gateway) return pass<Response>(gateway.error());
  const json& g = **gateway;
  if (auto keys = fields::check_keys(g, {"address", "port", "pin_sha256", "xfreerdp_fingerprint"},
                                     "gateway.");
      !keys) {
    return pass<Response>(keys.error());
  }
  auto address = fields::string_field(g, "address", "gateway.", kNameRule);
  if (!address) return pass<Response>(address.error());
  auto gateway_port = port_field(g, "gateway.");
  if (!gateway_port) return pass<Response>(gateway_port.error());
  auto pin = hex_sha256_field(g, "pin_sha256", "gateway.");
  if (!pin) return pass<Response>(pin.error());
  // 32 bytes as "ab:" pairs: 95 characters.
  auto fingerprint = fields::string_field(g, "xfreerdp_fingerprint", "gateway.", {95, 95});
  if (!fingerprint) return pass<Response>(fingerprint.error());
  s.gateway = {std::move(*address), *gateway_port, std::move(*pin), std::move(*fingerprint)};
  return Response{std::move(s)};
}

Result<Response, FormatError> parse_error_reply(const json& doc) {
  if (auto keys = fields::check_keys(doc, {"type", "error_type", "description"}); !keys) {
    return pass<Response>(keys.error());
  }
  auto type = fields::string_field(doc, "error_type", "", {1, 64});
  if (!type) return pass<Response>(type.error());
  ErrorReply reply;
  if (*type == "auth_error") {
    reply.error_type = ErrorType::kAuthError;
  } else if (*type == "error") {
    reply.error_type = ErrorType::kError;
  } else {
    return fields::format_error(
        Kind::kBadValue, "error_type",
        "\"error_type\" must be \"auth_error\" or \"error\", not " + fields::quoted_name(*type));
  }
  auto description = fields::string_field(doc, "description", "", {0, 4096});
  if (!description) return pass<Response>(description.error());
  reply.description = std::move(*description);
  return Response{std::move(reply)};
}

Result<Response, FormatError> parse_enrolled(const json& doc) {
  if (auto keys = fields::check_keys(doc, {"type", "print_id"}); !keys) {
    return pass<Response>(keys.error());
  }
  auto print_id = fields::string_field(doc, "print_id", "", kPrintIdRule);
  if (!print_id) return pass<Response>(print_id.error());
  return Response{Enrolled{std::move(*print_id)}};
}

Result<Response, FormatError> parse_auth_message(const json& doc) {
  if (auto keys = fields::check_keys(doc, {"type", "auth_message_type", "auth_message"}); !keys) {
    return pass<Response>(keys.error());
  }
  auto type_name = fields::string_field(doc, "auth_message_type", "", {1, 64});
  if (!type_name) return pass<Response>(type_name.error());
  auto type = auth_message_type_from_name(*type_name);
  if (!type) {
    return fields::format_error(Kind::kBadValue, "auth_message_type",
                                "\"auth_message_type\" " + fields::quoted_name(*type_name) +
                                    " is not visible, secret, info, error or fingerprint");
  }
  auto text = fields::string_field(doc, "auth_message", "", kTextRule);
  if (!text) return pass<Response>(text.error());
  return Response{AuthMessage{*type, std::move(*text)}};
}

}  // namespace

const char* auth_message_type_name(AuthMessageType type) {
  switch (type) {
    case AuthMessageType::kVisible:
      return "visible";
    case AuthMessageType::kSecret:
      return "secret";
    case AuthMessageType::kInfo:
      return "info";
    case AuthMessageType::kError:
      return "error";
    case AuthMessageType::kFingerprint:
      return "fingerprint";
  }
  return "info";
}

std::optional<AuthMessageType> auth_message_type_from_name(std::string_view name) {
  for (auto type : {AuthMessageType::kVisible, AuthMessageType::kSecret, AuthMessageType::kInfo,
                    AuthMessageType::kError, AuthMessageType::kFingerprint}) {
    if (name == auth_message_type_name(type)) return type;
  }
  return std::nullopt;
}

std::string encode_request(const Request& request) {
  json doc;
  if (const auto* create = std::get_if<CreateSession>(&request)) {
    doc = {
        {"type", "create_session"}, {"v", kLoginProtocolVersion}, {"username", create->username}};
    if (create->compartment) doc["compartment"] = *create->compartment;
  } else if (const auto* enrol = std::get_if<EnrolPrint>(&request)) {
    doc = {{"type", "enrol_print"},
           {"v", kLoginProtocolVersion},
           {"username", enrol->username},
           {"print", base64_encode(enrol->print)}};
  } else if (const auto* answer = std::get_if<PostAuthMessageResponse>(&request)) {
    doc = {{"type", "post_auth_message_response"}};
    if (answer->response) doc["response"] = *answer->response;
  } else {
    doc = {{"type", "cancel_session"}};
  }
  return dump(doc);
}

std::string encode_response(const Response& response) {
  json doc;
  if (const auto* s = std::get_if<Success>(&response)) {
    doc = {
        {"type", "success"},
        {"ticket", s->ticket},
        {"expires_at", s->expires_at},
        {"desktop", {{"id", s->desktop.id}, {"host", s->desktop.host}, {"port", s->desktop.port}}},
        {"gateway",
         {{"address", s->gateway.address},
          {"port", s->gateway.port},
          {"pin_sha256", s->gateway.pin_sha256},
          {"xfreerdp_fingerprint", s->gateway.xfreerdp_fingerprint}}}};
  } else if (const auto* e = std::get_if<ErrorReply>(&response)) {
    doc = {{"type", "error"},
           {"error_type", e->error_type == ErrorType::kAuthError ? "auth_error" : "error"},
           {"description", e->description}};
  } else if (const auto* enrolled = std::get_if<Enrolled>(&response)) {
    doc = {{"type", "enrolled"}, {"print_id", enrolled->print_id}};
  } else {
    const auto& m = std::get<AuthMessage>(response);
    doc = {{"type", "auth_message"},
           {"auth_message_type", auth_message_type_name(m.type)},
           {"auth_message", m.text}};
  }
  return dump(doc);
}

Result<Request, FormatError> parse_request(ByteSpan payload) {
  auto doc = fields::parse_object(as_chars(payload));
  if (!doc) return pass<Request>(doc.error());
  auto type = type_of(*doc);
  if (!type) return pass<Request>(type.error());

  if (*type == "create_session") return parse_create_session(*doc);
  if (*type == "enrol_print") return parse_enrol_print(*doc);
  if (*type == "post_auth_message_response") {
    if (auto keys = fields::check_keys(*doc, {"type", "response"}); !keys) {
      return pass<Request>(keys.error());
    }
    auto response = fields::optional_string_field(*doc, "response", "", kTextRule);
    if (!response) return pass<Request>(response.error());
    return Request{PostAuthMessageResponse{std::move(*response)}};
  }
  if (*type == "cancel_session") {
    if (auto keys = fields::check_keys(*doc, {"type"}); !keys) return pass<Request>(keys.error());
    return Request{CancelSession{}};
  }
  return unknown_type(*type, "request");
}

Result<Response, FormatError> parse_response(ByteSpan payload) {
  auto doc = fields::parse_object(as_chars(payload));
  if (!doc) return pass<Response>(doc.error());
  auto type = type_of(*doc);
  if (!type) return pass<Response>(type.error());

  if (*type == "success") return parse_success(*doc);
  if (*type == "error") return parse_error_reply(*doc);
  if (*type == "auth_message") return parse_auth_message(*doc);
  if (*type == "enrolled") return parse_enrolled(*doc);
  return unknown_type(*type, "response");
}

Result<Bytes, FormatError> frame_payload(std::string_view payload) {
  if (payload.empty()) return fields::format_error(Kind::kEmptyFrame, "", "the payload is empty");
  if (payload.size() > kMaxMessageBytes) {
    return fields::format_error(Kind::kFrameTooLarge, "",
                                "the message is " + std::to_string(payload.size()) +
                                    " bytes; the limit is " + std::to_string(kMaxMessageBytes));
  }
  Bytes out;
  out.reserve(kHeaderBytes + payload.size());
  ipc::append_frame(payload, out);
  return out;
}

Result<Bytes, FormatError> frame_request(const Request& request) {
  return frame_payload(encode_request(request));
}

Result<Bytes, FormatError> frame_response(const Response& response) {
  return frame_payload(encode_response(response));
}

FrameDecoder::~FrameDecoder() {
  secure_wipe(buffer_.data(), buffer_.size());
}

void FrameDecoder::feed(ByteSpan bytes) {
  compact();
  if (buffer_.capacity() < kHeaderBytes + kMaxMessageBytes) {
    buffer_.reserve(kHeaderBytes + kMaxMessageBytes);
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

// Moves the unconsumed bytes to the front and wipes what they leave behind. Growth of the
// vector may leave copies in freed memory; the buffer reserves a whole frame up front so that
// a login's messages normally fit without one.
void FrameDecoder::compact() {
  if (start_ == 0) return;
  std::size_t rest = buffer_.size() - start_;
  std::copy(buffer_.begin() + static_cast<long>(start_), buffer_.end(), buffer_.begin());
  secure_wipe(buffer_.data() + rest, buffer_.size() - rest);
  buffer_.resize(rest);
  start_ = 0;
}

Result<std::optional<std::string>, FormatError> FrameDecoder::next_payload() {
  if (broken_) return fail(*broken_);
  ByteSpan rest = ByteSpan(buffer_).subspan(start_);
  ReadCursor header(rest);
  auto length = header.u32be();
  if (!length) return std::optional<std::string>{};
  if (*length == 0) {
    broken_ = FormatError{Kind::kEmptyFrame, "", "announced length is 0"};
    return fail(*broken_);
  }
  if (*length > kMaxMessageBytes) {
    broken_ = FormatError{Kind::kFrameTooLarge, "",
                          "announced length " + std::to_string(*length) + " exceeds " +
                              std::to_string(kMaxMessageBytes)};
    return fail(*broken_);
  }
  auto frame = ipc::next_frame(rest);
  if (!frame || !frame->has_value()) return std::optional<std::string>{};
  std::string payload(as_chars((*frame)->payload));
  secure_wipe(buffer_.data() + start_, (*frame)->consumed);
  start_ += (*frame)->consumed;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return std::optional<std::string>{std::move(payload)};
}

Result<std::optional<Request>, FormatError> FrameDecoder::next_request() {
  auto payload = next_payload();
  if (!payload) return fail(std::move(payload.error()));
  if (!payload->has_value()) return std::optional<Request>{};
  auto request = parse_request(as_bytes(**payload));
  secure_wipe((*payload)->data(), (*payload)->size());
  if (!request) return fail(std::move(request.error()));
  return std::optional<Request>{std::move(*request)};
}

Result<std::optional<Response>, FormatError> FrameDecoder::next_response() {
  auto payload = next_payload();
  if (!payload) return fail(std::move(payload.error()));
  if (!payload->has_value()) return std::optional<Response>{};
  auto response = parse_response(as_bytes(**payload));
  secure_wipe((*payload)->data(), (*payload)->size());  // a success carries the ticket
  if (!response) return fail(std::move(response.error()));
  return std::optional<Response>{std::move(*response)};
}

}  // namespace enclave::login
