// The head of an HTTP/1.1 request (RFC 9112 sections 2 to 5), parsed from untrusted bytes with
// no I/O: what the download server reads before it decides anything. Only the grammar the
// server needs, strictly:
//   request-line = method SP request-target SP HTTP-version CRLF
//   field-line   = field-name ":" OWS field-value OWS CRLF
//   the head ends with an empty line (CRLF)
// Every line ends in CRLF: a bare CR or bare LF is refused (no lenient line endings, which is
// where request smuggling lives), as are obsolete line folding, whitespace before a field's
// colon, control characters in a value, and a message without exactly one Host (HTTP/1.1) or
// with two (HTTP/1.0). Sizes are bounded before anything grows: the whole head, each line and
// the number of fields.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::exitcontrol::download {

inline constexpr std::size_t kMaxHeadBytes = 8192;  // request line to the empty line, inclusive
inline constexpr std::size_t kMaxRequestLineBytes = 2048;  // without its CRLF
inline constexpr std::size_t kMaxFieldLineBytes = 4096;    // without its CRLF
inline constexpr std::size_t kMaxFields = 64;

struct RequestError {
  enum class Kind {
    kMalformed,           // the grammar above is broken (answered 400)
    kUnsupportedVersion,  // HTTP/x.y other than 1.0 and 1.1 (505)
    kRequestLineTooLong,  // above kMaxRequestLineBytes (414)
    kHeadTooLarge,        // above kMaxHeadBytes, kMaxFields or kMaxFieldLineBytes (431)
  };
  Kind kind = Kind::kMalformed;
  // The part at fault: "request-line", "method", "request-target", "HTTP-version",
  // "field line 3", "Host", "head". Never the peer's bytes: a target may carry a token.
  std::string field;
  std::string message;

  std::string describe() const;  // "field: message"
};

struct HeaderField {
  std::string name;   // as sent (names compare case-insensitively)
  std::string value;  // without the optional whitespace around it
};

struct RequestHead {
  std::string method;     // case-sensitive, as sent ("GET")
  std::string target;     // the request-target as sent, not decoded
  int version_minor = 1;  // HTTP/1.0 or HTTP/1.1
  std::vector<HeaderField> fields;
  std::size_t size = 0;  // bytes of the buffer the head took, the final empty line included

  // The first field with this name (ASCII case-insensitive), or nullptr.
  const HeaderField* find(std::string_view name) const;
};

// Parses the head at the start of `buffered` (a body or anything else may follow it; its
// size says where the head ends). nullopt: the head is not complete yet and nothing seen so
// far is wrong, so read more and parse again from the start. An error is final: the same
// bytes with more appended fail the same way.
Result<std::optional<RequestHead>, RequestError> parse_request_head(ByteSpan buffered);

}  // namespace enclave::exitcontrol::download
