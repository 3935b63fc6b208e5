#include "exitcontrol/download/http_request.hpp"

namespace enclave::exitcontrol::download {
namespace {

using Kind = RequestError::Kind;
using Parsed = Result<std::optional<RequestHead>, RequestError>;

Unexpected<RequestError> error(Kind kind, std::string field, std::string message) {
  return {RequestError{kind, std::move(field), std::move(message)}};
}

// RFC 9110 section 5.6.2: tchar.
bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

bool is_visible_ascii(char c) {
  return c >= 0x21 && c <= 0x7e;
}

// VCHAR, obs-text, SP or HTAB (RFC 9110 section 5.5): no other control character.
bool is_field_value_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  return c == ' ' || c == '\t' || (u >= 0x21 && u != 0x7f);
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

struct Line {
  std::string_view text;  // without its CRLF
  std::size_t next = 0;   // where the following line starts
};

// The line starting at `at`, if its CRLF is in `view`. A bare CR or LF is an error as soon as
// it is seen, and so is a line longer than `limit` (whether or not its end has arrived), so
// that more bytes never turn an error into something else.
Result<std::optional<Line>, RequestError> next_line(std::string_view view, std::size_t at,
                                                    std::size_t limit, Kind too_long,
                                                    const std::string& field) {
  for (std::size_t i = at; i < view.size(); ++i) {
    if (i - at > limit) {
      return error(too_long, field, "longer than " + std::to_string(limit) + " bytes");
    }
    if (view[i] == '\n') return error(Kind::kMalformed, field, "bare LF (lines end in CRLF)");
    if (view[i] != '\r') continue;
    if (i + 1 == view.size()) return std::optional<Line>{};
    if (view[i + 1] != '\n') return error(Kind::kMalformed, field, "bare CR (lines end in CRLF)");
    return std::optional<Line>{Line{view.substr(at, i - at), i + 2}};
  }
  if (view.size() - at > limit) {
    return error(too_long, field, "longer than " + std::to_string(limit) + " bytes");
  }
  return std::optional<Line>{};
}

// request-line = method SP request-target SP HTTP-version
Result<RequestHead, RequestError> parse_request_line(std::string_view line) {
  RequestHead head;
  const std::size_t first_space = line.find(' ');
  if (first_space == std::string_view::npos) {
    return error(Kind::kMalformed, "request-line", "expected method SP request-target SP version");
  }
  const std::string_view method = line.substr(0, first_space);
  if (!is_token(method)) return error(Kind::kMalformed, "method", "not a token");
  const std::size_t second_space = line.find(' ', first_space + 1);
  if (second_space == std::string_view::npos) {
    return error(Kind::kMalformed, "request-line", "expected method SP request-target SP version");
  }
  const std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
  if (target.empty()) return error(Kind::kMalformed, "request-target", "empty");
  for (char c : target) {
    if (!is_visible_ascii(c)) {
      return error(Kind::kMalformed, "request-target", "holds a byte that is not visible ASCII");
    }
  }
  const std::string_view version = line.substr(second_space + 1);
  // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[5] < '0' ||
      version[5] > '9' || version[6] != '.' || version[7] < '0' || version[7] > '9') {
    return error(Kind::kMalformed, "HTTP-version", "expected HTTP/DIGIT.DIGIT");
  }
  if (version[5] != '1' || (version[7] != '0' && version[7] != '1')) {
    return error(Kind::kUnsupportedVersion, "HTTP-version", "only HTTP/1.0 and HTTP/1.1");
  }
  head.method = std::string(method);
  head.target = std::string(target);
  head.version_minor = version[7] - '0';
  return head;
}

// field-line = field-name ":" OWS field-value OWS
Result<HeaderField, RequestError> parse_field_line(std::string_view line,
                                                   const std::string& field) {
  if (line.front() == ' ' || line.front() == '\t') {
    return error(Kind::kMalformed, field, "obsolete line folding");
  }
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return error(Kind::kMalformed, field, "no colon");
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) {
    // Also whitespace between name and colon, which RFC 9112 section 5.1 requires refusing.
    return error(Kind::kMalformed, field, "the field name is not a token");
  }
  std::string_view value = line.substr(colon + 1);
  for (char c : value) {
    if (!is_field_value_char(c)) {
      return error(Kind::kMalformed, field, "a control character in the field value");
    }
  }
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return HeaderField{std::string(name), std::string(value)};
}

// RFC 9112 section 3.2: HTTP/1.1 requests carry exactly one Host; none carries two.
Result<void, RequestError> check_host(const RequestHead& head) {
  std::size_t hosts = 0;
  for (const HeaderField& f : head.fields) {
    if (equals_ignoring_case(f.name, "Host")) ++hosts;
  }
  if (hosts > 1) return error(Kind::kMalformed, "Host", "more than one");
  if (hosts == 0 && head.version_minor == 1) {
    return error(Kind::kMalformed, "Host", "missing (HTTP/1.1 requires it)");
  }
  return {};
}

}  // namespace

std::string RequestError::describe() const {
  return field + ": " + message;
}

const HeaderField* RequestHead::find(std::string_view name) const {
  for (const HeaderField& f : fields) {
    if (equals_ignoring_case(f.name, name)) return &f;
  }
  return nullptr;
}

Parsed parse_request_head(ByteSpan buffered) {
  // Only the first kMaxHeadBytes can belong to a head we accept.
  const std::string_view all = as_chars(buffered);
  const std::string_view view = all.substr(0, kMaxHeadBytes);
  auto incomplete = [&]() -> Parsed {
    if (all.size() >= kMaxHeadBytes) {
      return error(Kind::kHeadTooLarge, "head",
                   "no end within " + std::to_string(kMaxHeadBytes) + " bytes");
    }
    return std::optional<RequestHead>{};
  };

  auto request_line =
      next_line(view, 0, kMaxRequestLineBytes, Kind::kRequestLineTooLong, "request-line");
  if (!request_line) return error_of(request_line);
  if (!*request_line) return incomplete();
  auto parsed = parse_request_line((*request_line)->text);
  if (!parsed) return error_of(parsed);
  RequestHead head = std::move(parsed).value();

  std::size_t at = (*request_line)->next;
  for (;;) {
    const std::string field = "field line " + std::to_string(head.fields.size() + 1);
    auto line = next_line(view, at, kMaxFieldLineBytes, Kind::kHeadTooLarge, field);
    if (!line) return error_of(line);
    if (!*line) return incomplete();
    at = (*line)->next;
    if ((*line)->text.empty()) break;
    if (head.fields.size() == kMaxFields) {
      return error(Kind::kHeadTooLarge, "head",
                   "more than " + std::to_string(kMaxFields) + " fields");
    }
    auto parsed_field = parse_field_line((*line)->text, field);
    if (!parsed_field) return error_of(parsed_field);
    head.fields.push_back(std::move(parsed_field).value());
  }
  if (auto host = check_host(head); !host) return error_of(host);
  head.size = at;
  return std::optional<RequestHead>{std::move(head)};
}

}  // namespace enclave::exitcontrol::download
