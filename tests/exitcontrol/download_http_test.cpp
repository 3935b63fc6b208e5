// The download server's HTTP without I/O: the request-head parser on good, incomplete and every
// kind of malformed input, and what each request is answered with.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "common/bytes.hpp"
#include "exitcontrol/download/download_protocol.hpp"
#include "exitcontrol/download/http_request.hpp"

namespace enclave::exitcontrol::download {
namespace {

using Kind = RequestError::Kind;

const std::string kToken(64, 'a');
const std::string kGet = "GET /download/" + kToken +
                         " HTTP/1.1\r\nHost: 127.0.0.1:8443\r\nUser-Agent: curl/7.88.1\r\n"
                         "Accept: */*\r\n\r\n";

Result<std::optional<RequestHead>, RequestError> parse(const std::string& text) {
  return parse_request_head(as_bytes(text));
}

RequestHead parsed(const std::string& text) {
  auto r = parse(text);
  EXPECT_TRUE(r) << r.error().describe();
  if (!r || !*r) {
    ADD_FAILURE() << "incomplete";
    return {};
  }
  return **r;
}

RequestError failure(const std::string& text) {
  auto r = parse(text);
  EXPECT_FALSE(r) << "parsed: " << text;
  return r ? RequestError{} : r.error();
}

std::string with_fields(const std::string& fields) {
  return "GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n";
}

TEST(HttpRequest, ParsesWhatCurlSends) {
  RequestHead head = parsed(kGet);
  EXPECT_EQ(head.method, "GET");
  EXPECT_EQ(head.target, "/download/" + kToken);
  EXPECT_EQ(head.version_minor, 1);
  ASSERT_EQ(head.fields.size(), 3u);
  EXPECT_EQ(head.fields[0].name, "Host");
  EXPECT_EQ(head.fields[0].value, "127.0.0.1:8443");
  EXPECT_EQ(head.fields[2].value, "*/*");
  EXPECT_EQ(head.size, kGet.size());
  ASSERT_NE(head.find("user-agent"), nullptr);
  EXPECT_EQ(head.find("USER-AGENT")->value, "curl/7.88.1");
  EXPECT_EQ(head.find("Cookie"), nullptr);
}

TEST(HttpRequest, EndsAtTheEmptyLineWhateverFollows) {
  RequestHead head = parsed(kGet + "body bytes\r\n\r\nGET / HTTP/1.1\r\n");
  EXPECT_EQ(head.size, kGet.size());
  EXPECT_EQ(head.fields.size(), 3u);
}

TEST(HttpRequest, EveryPrefixAsksForMore) {
  for (std::size_t n = 0; n < kGet.size(); ++n) {
    auto r = parse(kGet.substr(0, n));
    ASSERT_TRUE(r) << n << ": " << r.error().describe();
    EXPECT_FALSE(r->has_value()) << n;
  }
}

TEST(HttpRequest, TrimsOptionalWhitespaceAroundValues) {
  RequestHead head = parsed(with_fields("A: \t x y \t\r\nB:\r\nC:z\r\n"));
  EXPECT_EQ(head.find("A")->value, "x y");
  EXPECT_EQ(head.find("B")->value, "");
  EXPECT_EQ(head.find("C")->value, "z");
}

TEST(HttpRequest, KeepsObsTextInValues) {
  RequestHead head = parsed(with_fields("X-Name: r\xc3\xa9sum\xc3\xa9\r\n"));
  EXPECT_EQ(head.find("X-Name")->value, "r\xc3\xa9sum\xc3\xa9");
}

TEST(HttpRequest, AcceptsHttp10WithoutHost) {
  RequestHead head = parsed("GET / HTTP/1.0\r\n\r\n");
  EXPECT_EQ(head.version_minor, 0);
  EXPECT_TRUE(head.fields.empty());
}

struct MalformedCase {
  const char* name;
  std::string text;
  const char* field;
};

TEST(HttpRequest, RefusesEveryMalformedHead) {
  const std::string ok_line = "GET / HTTP/1.1\r\n";
  const MalformedCase cases[] = {
      {"LF-only line endings", "GET / HTTP/1.1\nHost: h\n\n", "request-line"},
      {"bare LF in a field line", ok_line + "Host: h\nX: y\r\n\r\n", "field line 1"},
      {"bare LF ending the head", ok_line + "Host: h\r\n\n", "field line 2"},
      {"bare CR in the request line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", "request-line"},
      {"bare CR in a value", ok_line + "Host: h\rx\r\n\r\n", "field line 1"},
      {"a leading empty line", "\r\n" + ok_line + "Host: h\r\n\r\n", "request-line"},
      {"no spaces", "GET\r\nHost: h\r\n\r\n", "request-line"},
      {"no version", "GET /\r\nHost: h\r\n\r\n", "request-line"},
      {"two spaces", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", "request-target"},
      {"a trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", "HTTP-version"},
      {"an empty method", " / HTTP/1.1\r\nHost: h\r\n\r\n", "method"},
      {"a method that is no token", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", "method"},
      {"a tab in the target", "GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", "request-target"},
      {"a non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", "request-target"},
      {"a NUL in the target", std::string("GET /") + '\0' + " HTTP/1.1\r\nHost: h\r\n\r\n",
       "request-target"},
      {"a lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", "HTTP-version"},
      {"a version without minor", "GET / HTTP/1\r\nHost: h\r\n\r\n", "HTTP-version"},
      {"a two-digit version", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", "HTTP-version"},
      {"obsolete line folding", ok_line + "Host: h\r\nX: a\r\n  b\r\n\r\n", "field line 3"},
      {"a tab-folded line", ok_line + "Host: h\r\n\tb\r\n\r\n", "field line 2"},
      {"space before the colon", ok_line + "Host : h\r\n\r\n", "field line 1"},
      {"no colon", ok_line + "Host h\r\n\r\n", "field line 1"},
      {"an empty field name", ok_line + "Host: h\r\n: x\r\n\r\n", "field line 2"},
      {"a field name that is no token", ok_line + "Ho\"st: h\r\n\r\n", "field line 1"},
      {"a control character in a value", ok_line + "Host: h\x01x\r\n\r\n", "field line 1"},
      {"DEL in a value", ok_line + "Host: h\x7f\r\n\r\n", "field line 1"},
      {"a NUL in a value", ok_line + "Host: h" + '\0' + "\r\n\r\n", "field line 1"},
      {"no Host in HTTP/1.1", ok_line + "Accept: */*\r\n\r\n", "Host"},
      {"two Hosts", ok_line + "Host: a\r\nhost: b\r\n\r\n", "Host"},
      {"two Hosts in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", "Host"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RequestError e = failure(c.text);
    EXPECT_EQ(e.kind, Kind::kMalformed) << e.describe();
    EXPECT_EQ(e.field, c.field) << e.describe();
    EXPECT_EQ(status_for(e), HttpStatus::kBadRequest);
  }
}

TEST(HttpRequest, RefusesOtherVersions) {
  for (const char* version : {"HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.1"}) {
    SCOPED_TRACE(version);
    RequestError e = failure(std::string("GET / ") + version + "\r\nHost: h\r\n\r\n");
    EXPECT_EQ(e.kind, Kind::kUnsupportedVersion);
    EXPECT_EQ(e.field, "HTTP-version");
    EXPECT_EQ(status_for(e), HttpStatus::kVersionNotSupported);
  }
}

TEST(HttpRequest, BoundsTheRequestLine) {
  const std::string fixed = "GET / HTTP/1.1";  // target padded to the limit
  const std::string at_limit =
      "GET /" + std::string(kMaxRequestLineBytes - fixed.size(), 'a') + " HTTP/1.1";
  ASSERT_EQ(at_limit.size(), kMaxRequestLineBytes);
  EXPECT_EQ(parsed(at_limit + "\r\nHost: h\r\n\r\n").target.size(),
            kMaxRequestLineBytes - fixed.size() + 1);
  const std::string over =
      "GET /" + std::string(kMaxRequestLineBytes - fixed.size() + 1, 'a') + " HTTP/1.1";
  RequestError e = failure(over + "\r\nHost: h\r\n\r\n");
  EXPECT_EQ(e.kind, Kind::kRequestLineTooLong);
  EXPECT_EQ(status_for(e), HttpStatus::kUriTooLong);
  // Decided before the line ends: nothing more needs to arrive.
  EXPECT_EQ(failure(over.substr(0, kMaxRequestLineBytes + 1)).kind, Kind::kRequestLineTooLong);
  EXPECT_TRUE(parse(over.substr(0, kMaxRequestLineBytes)));
}

TEST(HttpRequest, BoundsEachFieldLine) {
  const std::string at_limit = "X: " + std::string(kMaxFieldLineBytes - 3, 'v');
  EXPECT_EQ(parsed(with_fields(at_limit + "\r\n")).find("X")->value.size(), kMaxFieldLineBytes - 3);
  RequestError e = failure(with_fields(at_limit + "v\r\n"));
  EXPECT_EQ(e.kind, Kind::kHeadTooLarge);
  EXPECT_EQ(e.field, "field line 2");
  EXPECT_EQ(status_for(e), HttpStatus::kHeaderFieldsTooLarge);
  EXPECT_EQ(failure("GET / HTTP/1.1\r\nHost: h\r\n" + at_limit + "v").kind, Kind::kHeadTooLarge);
}

TEST(HttpRequest, BoundsTheNumberOfFields) {
  std::string fields;
  for (std::size_t i = 1; i < kMaxFields; ++i) fields += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parsed(with_fields(fields)).fields.size(), kMaxFields);
  RequestError e = failure(with_fields(fields + "X-last: v\r\n"));
  EXPECT_EQ(e.kind, Kind::kHeadTooLarge);
  EXPECT_EQ(e.field, "head");
}

TEST(HttpRequest, BoundsTheWholeHead) {
  // Three field lines of 4000 bytes fit each line's bound but not the head's.
  const std::string big = "X: " + std::string(3997, 'v') + "\r\n";
  RequestError e = failure(with_fields(big + big + big));
  EXPECT_EQ(e.kind, Kind::kHeadTooLarge);
  EXPECT_EQ(e.field, "head");

  // Exactly kMaxHeadBytes is accepted; one byte more is not.
  const std::size_t pad = kMaxHeadBytes - with_fields("").size();
  std::string fields;
  while (fields.size() + 4000 < pad) fields += "P: " + std::string(3995, 'p') + "\r\n";
  fields += "X: " + std::string(pad - fields.size() - 5, 'x') + "\r\n";
  const std::string exact = with_fields(fields);
  ASSERT_EQ(exact.size(), kMaxHeadBytes);
  EXPECT_EQ(parsed(exact).size, kMaxHeadBytes);
  const std::string one_over = with_fields("Y: " + fields);
  ASSERT_EQ(one_over.size(), kMaxHeadBytes + 3);
  EXPECT_EQ(failure(one_over).kind, Kind::kHeadTooLarge);
  // Incomplete at the bound is already too large.
  EXPECT_EQ(failure(exact.substr(0, exact.size() - 2) + "X:").kind, Kind::kHeadTooLarge);
}

TEST(HttpRequest, AnErrorStaysAnErrorAsMoreArrives) {
  const std::string bad = "GET / HTTP/1.1\r\nHost: h\nmore";
  RequestError first = failure(bad);
  RequestError later = failure(bad + ": x\r\n\r\n");
  EXPECT_EQ(first.kind, later.kind);
  EXPECT_EQ(first.field, later.field);
}

TEST(HttpRequest, ErrorsNeverQuoteTheRequest) {
  RequestError e = failure("GET /download/" + kToken + " HTTP/9.9\r\nHost: h\r\n\r\n");
  EXPECT_EQ(e.describe().find(kToken), std::string::npos);
  e = failure("GET /download/" + kToken + "\r\nHost: h\r\n\r\n");
  EXPECT_EQ(e.describe().find(kToken), std::string::npos);
  e = failure(with_fields("Authorization: " + kToken + "\x01\r\n"));
  EXPECT_EQ(e.describe().find(kToken), std::string::npos);
}

// ---- Routing and responses --------------------------------------------------------------------

RequestHead request(const std::string& method, const std::string& target) {
  return parsed(method + " " + target + " HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(DownloadProtocol, OnlyGetOfADownloadPathNamesAToken) {
  const std::string hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  auto token = download_token(request("GET", "/download/" + hex));
  ASSERT_TRUE(token);
  EXPECT_EQ(*token, hex);

  const std::string upper = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
  for (const std::string& target :
       {"/download/" + upper, "/download/" + hex.substr(1), "/download/" + hex + "0",
        "/download/" + hex + "?x=1", "/download/" + hex + "/", "/download//" + hex.substr(1),
        "/DOWNLOAD/" + hex, "/" + hex, std::string("/"), std::string("*"),
        "https://h/download/" + hex, "/download/" + hex.substr(0, 63) + "g"}) {
    SCOPED_TRACE(target);
    auto r = download_token(request("GET", target));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpStatus::kNotFound);
  }
  for (const char* method : {"HEAD", "POST", "PUT", "DELETE", "get", "OPTIONS"}) {
    SCOPED_TRACE(method);
    auto r = download_token(request(method, "/download/" + hex));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), HttpStatus::kMethodNotAllowed);
    auto other = download_token(request(method, "/elsewhere"));
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error(), HttpStatus::kNotFound);
  }
}

// A response split into its status code, fields (name: value lines) and body.
struct Response {
  int status = 0;
  std::string fields, body;
};

Response split(const std::string& text) {
  Response r;
  const auto end = text.find("\r\n\r\n");
  EXPECT_NE(end, std::string::npos);
  EXPECT_EQ(text.substr(0, 9), "HTTP/1.1 ");
  r.status = std::stoi(text.substr(9, 3));
  r.fields = text.substr(text.find("\r\n") + 2, end - text.find("\r\n"));
  r.body = text.substr(end + 4);
  return r;
}

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(784111777));

TEST(DownloadProtocol, ErrorResponsesAreCompleteAndClose) {
  for (HttpStatus status :
       {HttpStatus::kBadRequest, HttpStatus::kNotFound, HttpStatus::kMethodNotAllowed,
        HttpStatus::kRequestTimeout, HttpStatus::kGone, HttpStatus::kUriTooLong,
        HttpStatus::kHeaderFieldsTooLarge, HttpStatus::kServiceUnavailable,
        HttpStatus::kVersionNotSupported}) {
    SCOPED_TRACE(static_cast<int>(status));
    Response r = split(error_response(status, kNow));
    EXPECT_EQ(r.status, static_cast<int>(status));
    EXPECT_NE(r.fields.find("Content-Length: " + std::to_string(r.body.size()) + "\r\n"),
              std::string::npos);
    EXPECT_NE(r.fields.find("Connection: close\r\n"), std::string::npos);
    EXPECT_NE(r.fields.find("Cache-Control: no-store\r\n"), std::string::npos);
    EXPECT_NE(r.fields.find("Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), std::string::npos);
    EXPECT_FALSE(r.body.empty());
    EXPECT_EQ(r.fields.find("Allow:") != std::string::npos,
              status == HttpStatus::kMethodNotAllowed);
  }
  EXPECT_NE(
      split(error_response(HttpStatus::kMethodNotAllowed, kNow)).fields.find("Allow: GET\r\n"),
      std::string::npos);
  EXPECT_EQ(split(error_response(HttpStatus::kGone, kNow)).body,
            "this link is not valid: it is unknown, has expired or was already used\n");
}

TEST(DownloadProtocol, DownloadHeadOffersAnAttachment) {
  Response r = split(download_response_head("R-12.tar", 10485760, kNow));
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body.empty());
  for (const char* field : {"Content-Type: application/x-tar\r\n", "Content-Length: 10485760\r\n",
                            "Content-Disposition: attachment; filename=\"R-12.tar\"\r\n",
                            "Cache-Control: no-store\r\n", "Connection: close\r\n"}) {
    EXPECT_NE(r.fields.find(field), std::string::npos) << field;
  }
}

std::string disposition(const std::string& name) {
  const std::string head = download_response_head(name, 1, kNow);
  const auto at = head.find("Content-Disposition: ");
  return head.substr(at + 21, head.find("\r\n", at) - at - 21);
}

TEST(DownloadProtocol, FileNamesCannotBreakTheField) {
  EXPECT_EQ(disposition("a\"b\\c/d.tar"), "attachment; filename=\"a_b_c_d.tar\"");
  EXPECT_EQ(disposition("x.tar\r\nSet-Cookie: y"), "attachment; filename=\"x.tar__Set-Cookie: y\"");
  EXPECT_EQ(disposition("r\xc3\xa9sum\xc3\xa9 1.tar"),
            "attachment; filename=\"r__sum__ 1.tar\"; "
            "filename*=UTF-8''r%C3%A9sum%C3%A9%201.tar");
  EXPECT_EQ(disposition("bad\xff.tar"), "attachment; filename=\"bad_.tar\"");
}

TEST(DownloadProtocol, TokensAreLoggedByAShortHash) {
  const std::string name = token_log_name(kToken);
  EXPECT_EQ(name, sha256_hex(as_bytes(kToken)).substr(0, 12));
  EXPECT_TRUE(std::regex_match(name, std::regex("[0-9a-f]{12}")));
  EXPECT_EQ(kToken.find(name), std::string::npos);
}

}  // namespace
}  // namespace enclave::exitcontrol::download
