// What the download server answers, with no I/O: which requests name a download link, the
// status every other request gets, and the bytes of each response head. One request per
// connection: every response says Connection: close.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "exitcontrol/download/http_request.hpp"

namespace enclave::exitcontrol::download {

enum class HttpStatus : int {
  kOk = 200,
  kBadRequest = 400,
  kNotFound = 404,
  kMethodNotAllowed = 405,
  kRequestTimeout = 408,
  kGone = 410,
  kUriTooLong = 414,
  kHeaderFieldsTooLarge = 431,
  kServiceUnavailable = 503,
  kVersionNotSupported = 505,
};

inline constexpr std::string_view kDownloadPathPrefix = "/download/";
inline constexpr std::size_t kTokenHexDigits = 64;

// The status a request head that does not parse is answered with.
HttpStatus status_for(const RequestError& error);

// The link's token when the request is `GET /download/<64 lowercase hex>` (nothing after it,
// no query); otherwise the status to answer: 404 for any other target, 405 for another
// method on a download path.
Result<std::string, HttpStatus> download_token(const RequestHead& head);

// A complete response (head and a short text/plain body) for every status but 200. 410 says
// the same for an unknown, an expired and a used link; 405 carries Allow: GET.
std::string error_response(HttpStatus status, std::chrono::system_clock::time_point now);

// The head of a download: 200, application/x-tar, Content-Length, Content-Disposition
// attachment with the file name (quoted, with anything that cannot stand in a quoted string
// replaced by '_'; a name that needed that also goes in filename* as UTF-8, RFC 6266), and
// Cache-Control: no-store.
std::string download_response_head(std::string_view file_name, std::uint64_t size,
                                   std::chrono::system_clock::time_point now);

// A short, non-reversible name of a token for log lines: the first 12 hex digits of its
// SHA-256. Tokens themselves never reach a log.
std::string token_log_name(std::string_view token);

}  // namespace enclave::exitcontrol::download
