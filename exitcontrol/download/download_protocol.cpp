#include "exitcontrol/download/download_protocol.hpp"

#include <cstdio>
#include <ctime>

#include "common/bytes.hpp"

namespace enclave::exitcontrol::download {
namespace {

using SystemTime = std::chrono::system_clock::time_point;

const char* reason_phrase(HttpStatus status) {
  switch (status) {
    case HttpStatus::kOk:
      return "OK";
    case HttpStatus::kBadRequest:
      return "Bad Request";
    case HttpStatus::kNotFound:
      return "Not Found";
    case HttpStatus::kMethodNotAllowed:
      return "Method Not Allowed";
    case HttpStatus::kRequestTimeout:
      return "Request Timeout";
    case HttpStatus::kGone:
      return "Gone";
    case HttpStatus::kUriTooLong:
      return "URI Too Long";
    case HttpStatus::kHeaderFieldsTooLarge:
      return "Request Header Fields Too Large";
    case HttpStatus::kServiceUnavailable:
      return "Service Unavailable";
    case HttpStatus::kVersionNotSupported:
      return "HTTP Version Not Supported";
  }
  return "Error";
}

const char* body_text(HttpStatus status) {
  switch (status) {
    case HttpStatus::kOk:
      return "";
    case HttpStatus::kBadRequest:
      return "the request is malformed\n";
    case HttpStatus::kNotFound:
      return "not found: download links have the form /download/<64 hex digits>\n";
    case HttpStatus::kMethodNotAllowed:
      return "a download link is fetched with GET\n";
    case HttpStatus::kRequestTimeout:
      return "the request did not arrive in time\n";
    case HttpStatus::kGone:
      return "this link is not valid: it is unknown, has expired or was already used\n";
    case HttpStatus::kUriTooLong:
      return "the request line is too long\n";
    case HttpStatus::kHeaderFieldsTooLarge:
      return "the request head is too large\n";
    case HttpStatus::kServiceUnavailable:
      return "the download service is unavailable: try again later\n";
    case HttpStatus::kVersionNotSupported:
      return "only HTTP/1.0 and HTTP/1.1 are served\n";
  }
  return "error\n";
}

// IMF-fixdate (RFC 9110 section 5.6.7), in English whatever the process locale.
std::string http_date(SystemTime now) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string status_line_and_common_fields(HttpStatus status, SystemTime now) {
  return "HTTP/1.1 " + std::to_string(static_cast<int>(status)) + " " + reason_phrase(status) +
         "\r\nDate: " + http_date(now) +
         "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n";
}

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

// RFC 8187 attr-char: what filename* carries without percent-encoding.
bool is_attr_char(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$&+-.^_`|~").find(c) != std::string_view::npos;
}

std::string content_disposition(std::string_view file_name) {
  std::string quoted;
  bool replaced = false;
  bool has_control = false;
  for (char c : file_name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) has_control = true;
    // Inside the quotes: printable ASCII without the quote, backslash (escapes are read
    // differently by different clients) or a path separator.
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\' || c == '/') {
      quoted += '_';
      replaced = true;
    } else {
      quoted += c;
    }
  }
  std::string field = "attachment; filename=\"" + quoted + "\"";
  if (replaced && !has_control && is_valid_utf8(file_name) &&
      file_name.find_first_of("/\\") == std::string_view::npos) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    field += "; filename*=UTF-8''";
    for (char c : file_name) {
      if (is_attr_char(c)) {
        field += c;
      } else {
        const auto u = static_cast<unsigned char>(c);
        field += '%';
        field += kHex[u >> 4];
        field += kHex[u & 0x0f];
      }
    }
  }
  return field;
}

}  // namespace

HttpStatus status_for(const RequestError& error) {
  switch (error.kind) {
    case RequestError::Kind::kMalformed:
      return HttpStatus::kBadRequest;
    case RequestError::Kind::kUnsupportedVersion:
      return HttpStatus::kVersionNotSupported;
    case RequestError::Kind::kRequestLineTooLong:
      return HttpStatus::kUriTooLong;
    case RequestError::Kind::kHeadTooLarge:
      return HttpStatus::kHeaderFieldsTooLarge;
  }
  return HttpStatus::kBadRequest;
}

Result<std::string, HttpStatus> download_token(const RequestHead& head) {
  const std::string_view target = head.target;
  if (!target.starts_with(kDownloadPathPrefix)) return fail(HttpStatus::kNotFound);
  const std::string_view token = target.substr(kDownloadPathPrefix.size());
  if (token.size() != kTokenHexDigits) return fail(HttpStatus::kNotFound);
  for (char c : token) {
    if (!is_lower_hex(c)) return fail(HttpStatus::kNotFound);
  }
  if (head.method != "GET") return fail(HttpStatus::kMethodNotAllowed);
  return std::string(token);
}

std::string error_response(HttpStatus status, SystemTime now) {
  const std::string_view body = body_text(status);
  std::string response = status_line_and_common_fields(status, now);
  if (status == HttpStatus::kMethodNotAllowed) response += "Allow: GET\r\n";
  response +=
      "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  response += body;
  return response;
}

std::string download_response_head(std::string_view file_name, std::uint64_t size, SystemTime now) {
  return status_line_and_common_fields(HttpStatus::kOk, now) +
         "Content-Type: application/x-tar\r\nContent-Length: " + std::to_string(size) +
         "\r\nContent-Disposition: " + content_disposition(file_name) + "\r\n\r\n";
}

std::string token_log_name(std::string_view token) {
  return sha256_hex(as_bytes(token)).substr(0, 12);
}

}  // namespace enclave::exitcontrol::download
