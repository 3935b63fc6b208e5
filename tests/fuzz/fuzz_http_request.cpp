// The download server's HTTP request head. Oracles: a parsed head lies within what was given
// and within kMaxHeadBytes; the head alone parses the same as the head with what followed it;
// a strict prefix of it asks for more bytes; written back compactly (no optional whitespace)
// it parses to the same fields; a download token is 64 lowercase hex digits of a GET; every
// error maps to an error status whose response says so.
#include <cstdint>
#include <string>

#include "exitcontrol/download/download_protocol.hpp"
#include "exitcontrol/download/http_request.hpp"

using namespace enclave;
using namespace enclave::exitcontrol::download;

namespace {

bool same_head(const RequestHead& a, const RequestHead& b) {
  if (a.method != b.method || a.target != b.target || a.version_minor != b.version_minor ||
      a.fields.size() != b.fields.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.fields.size(); ++i) {
    if (a.fields[i].name != b.fields[i].name || a.fields[i].value != b.fields[i].value) {
      return false;
    }
  }
  return true;
}

std::string compact(const RequestHead& head) {
  std::string out =
      head.method + " " + head.target + " HTTP/1." + std::to_string(head.version_minor) + "\r\n";
  for (const HeaderField& f : head.fields) out += f.name + ":" + f.value + "\r\n";
  return out + "\r\n";
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteSpan in(data, size);
  auto parsed = parse_request_head(in);
  if (!parsed) {
    const HttpStatus status = status_for(parsed.error());
    const std::string response = error_response(status, std::chrono::system_clock::now());
    const std::string status_line = "HTTP/1.1 " + std::to_string(static_cast<int>(status)) + " ";
    if (static_cast<int>(status) < 400 || !response.starts_with(status_line)) {
      __builtin_trap();
    }
    (void)parsed.error().describe();
    return 0;
  }
  if (!parsed->has_value()) {
    if (size >= kMaxHeadBytes) __builtin_trap();  // an incomplete head this long is too large
    return 0;
  }
  const RequestHead& head = **parsed;
  if (head.size > size || head.size > kMaxHeadBytes || head.fields.size() > kMaxFields) {
    __builtin_trap();
  }
  auto alone = parse_request_head(in.first(head.size));
  if (!alone || !alone->has_value() || !same_head(**alone, head) || (*alone)->size != head.size) {
    __builtin_trap();
  }
  for (std::size_t cut : {head.size - 1, head.size / 2}) {
    auto prefix = parse_request_head(in.first(cut));
    if (!prefix || prefix->has_value()) __builtin_trap();
  }
  const std::string written = compact(head);
  auto again = parse_request_head(as_bytes(written));
  if (!again || !again->has_value() || !same_head(**again, head) ||
      (*again)->size != written.size()) {
    __builtin_trap();
  }
  auto token = download_token(head);
  if (token) {
    if (head.method != "GET" || token->size() != kTokenHexDigits ||
        head.target != std::string(kDownloadPathPrefix) + *token ||
        token->find_first_not_of("0123456789abcdef") != std::string::npos) {
      __builtin_trap();
    }
  } else if (token.error() != HttpStatus::kNotFound &&
             token.error() != HttpStatus::kMethodNotAllowed) {
    __builtin_trap();
  }
  return 0;
}
