#include "common/ipc/frame.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace enclave::ipc {
namespace {

using Kind = ProtocolError::Kind;
using nlohmann::json;

Bytes frame_of(std::string_view payload) {
  Bytes out;
  append_frame(payload, out);
  return out;
}

Bytes header(std::uint32_t length) {
  Bytes out;
  WriteCursor(out).u32be(length);
  return out;
}

// --- next_frame and append_frame -------------------------------------------------------------

TEST(NextFrame, AppendFrameWritesBigEndianLengthThenPayload) {
  Bytes frame = frame_of("{}");
  EXPECT_EQ(frame, (Bytes{0, 0, 0, 2, '{', '}'}));
}

TEST(NextFrame, EveryStrictPrefixNeedsMoreBytes) {
  Bytes frame = frame_of(R"({"v":1})");
  for (std::size_t n = 0; n < frame.size(); ++n) {
    // A heap copy of exactly n bytes, so ASan reports any read past the buffer.
    std::vector<std::uint8_t> prefix(frame.begin(), frame.begin() + static_cast<long>(n));
    auto result = next_frame(ByteSpan(prefix.data(), prefix.size()));
    ASSERT_TRUE(result.has_value()) << "prefix of " << n;
    EXPECT_FALSE(result->has_value()) << "prefix of " << n;
  }
  auto complete = next_frame(frame);
  ASSERT_TRUE(complete.has_value());
  ASSERT_TRUE(complete->has_value());
  EXPECT_EQ(as_chars((*complete)->payload), R"({"v":1})");
  EXPECT_EQ((*complete)->consumed, frame.size());
}

TEST(NextFrame, ConsumesBackToBackFramesOneAtATime) {
  Bytes stream = frame_of("first");
  append_frame("second!", stream);
  stream.push_back(0);  // the start of a third header

  ByteSpan rest(stream);
  auto a = next_frame(rest);
  ASSERT_TRUE(a.has_value() && a->has_value());
  EXPECT_EQ(as_chars((*a)->payload), "first");
  rest = rest.subspan((*a)->consumed);
  auto b = next_frame(rest);
  ASSERT_TRUE(b.has_value() && b->has_value());
  EXPECT_EQ(as_chars((*b)->payload), "second!");
  rest = rest.subspan((*b)->consumed);
  EXPECT_EQ(rest.size(), 1u);
  auto c = next_frame(rest);
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->has_value());
}

TEST(NextFrame, RefusesZeroLength) {
  auto result = next_frame(header(0));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, Kind::kEmptyFrame);
}

TEST(NextFrame, RefusesLengthAboveMaxFromTheHeaderAlone) {
  auto result = next_frame(header(kMaxFrame + 1));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kind, Kind::kFrameTooLarge);
  EXPECT_NE(result.error().message.find(std::to_string(kMaxFrame + 1)), std::string::npos);

  auto huge = next_frame(header(0xffffffffu));
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().kind, Kind::kFrameTooLarge);
}

TEST(NextFrame, MaxLengthIsAcceptedAndWaitsForItsBytes) {
  Bytes partial = header(kMaxFrame);
  partial.resize(partial.size() + 1000, 'x');
  auto waiting = next_frame(partial);
  ASSERT_TRUE(waiting.has_value());
  EXPECT_FALSE(waiting->has_value());

  std::string payload(kMaxFrame, 'x');
  Bytes full = frame_of(payload);
  auto complete = next_frame(full);
  ASSERT_TRUE(complete.has_value() && complete->has_value());
  EXPECT_EQ((*complete)->payload.size(), kMaxFrame);
  EXPECT_EQ((*complete)->consumed, kMaxFrame + 4);
}

// --- requests ------------------------------------------------------------------------------

Result<Request, ProtocolError> parse_request_text(std::string_view text) {
  return parse_request(as_bytes(text));
}

TEST(Request, EncodesCompactJsonInAFixedKeyOrder) {
  Request request{7, "audit.append", {{"type", "login"}, {"n", 2}}};
  EXPECT_EQ(encode_request(request),
            R"({"id":7,"method":"audit.append","params":{"n":2,"type":"login"},"v":1})");
}

TEST(Request, RoundTripsThroughEncodeAndParse) {
  Request request{kMaxId, "a.b_c.9",
                  json::parse(R"({"s":"caf\u00e9 \u0000 \ud83d\ude00","f":1.5e-300,"i":-3,
                                  "u":18446744073709551615,"a":[null,true,{"x":[]}]})")};
  auto parsed = parse_request_text(encode_request(request));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(parsed->id, request.id);
  EXPECT_EQ(parsed->method, request.method);
  EXPECT_EQ(parsed->params, request.params);
}

TEST(Request, AbsentParamsMeanEmptyObject) {
  auto parsed = parse_request_text(R"({"v":1,"id":0,"method":"x"})");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(parsed->id, 0u);
  EXPECT_EQ(parsed->params, json::object());
}

TEST(Request, AcceptsMethodOfSixtyFourCharacters) {
  std::string method(64, 'm');
  auto parsed = parse_request_text(R"({"v":1,"id":1,"method":")" + method + R"("})");
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(parsed->method, method);
}

struct BadCase {
  std::string payload;
  Kind kind;
  std::string message_part;
};

void expect_request_refused(const BadCase& c) {
  auto parsed = parse_request_text(c.payload);
  ASSERT_FALSE(parsed.has_value()) << c.payload;
  EXPECT_EQ(parsed.error().kind, c.kind) << c.payload << " -> " << parsed.error().describe();
  EXPECT_NE(parsed.error().message.find(c.message_part), std::string::npos)
      << c.payload << " -> " << parsed.error().message;
}

TEST(Request, RefusesPayloadsThatAreNotJsonObjects) {
  const std::vector<BadCase> cases = {
      {"", Kind::kBadJson, "not UTF-8 JSON"},
      {"{", Kind::kBadJson, "not UTF-8 JSON"},
      {R"({"v":1,"id":1,"method":"x"} trailing)", Kind::kBadJson, "not UTF-8 JSON"},
      {"[1,2]", Kind::kBadJson, "not a JSON object"},
      {"\"text\"", Kind::kBadJson, "not a JSON object"},
      // Invalid UTF-8 inside a string, an overlong encoding and a lone surrogate escape.
      {"{\"v\":1,\"id\":1,\"method\":\"x\",\"params\":{\"s\":\"\xff\"}}", Kind::kBadJson,
       "not UTF-8 JSON"},
      {"{\"v\":1,\"id\":1,\"method\":\"x\",\"params\":{\"s\":\"\xc0\xaf\"}}", Kind::kBadJson,
       "not UTF-8 JSON"},
      {R"({"v":1,"id":1,"method":"x","params":{"s":"\ud800"}})", Kind::kBadJson, "not UTF-8 JSON"},
      // nlohmann refuses a number that overflows a double rather than storing infinity, which
      // it would write back as null.
      {R"({"v":1,"id":1,"method":"x","params":{"n":1e400}})", Kind::kBadJson, "not UTF-8 JSON"},
  };
  for (const auto& c : cases) expect_request_refused(c);
}

TEST(Request, RefusesNestingDeeperThanTheLimitButNotBracketsInStrings) {
  std::string deep = R"({"v":1,"id":1,"method":"x","params":{"a":)" + std::string(63, '[') +
                     std::string(63, ']') + "}}";
  expect_request_refused({deep, Kind::kBadJson, "nested deeper than 64"});

  std::string limit = R"({"v":1,"id":1,"method":"x","params":{"a":)" + std::string(62, '[') +
                      std::string(62, ']') + R"(,"s":"[[[[\"[[[[[[[[[[[[[[[[[[[[[["}})";
  auto parsed = parse_request_text(limit);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
}

TEST(Request, RefusesMissingOrWrongVersion) {
  const std::vector<BadCase> cases = {
      {R"({"id":1,"method":"x"})", Kind::kBadVersion, "\"v\" is missing"},
      {R"({"v":2,"id":1,"method":"x"})", Kind::kBadVersion, "must be 1"},
      {R"({"v":"1","id":1,"method":"x"})", Kind::kBadVersion, "must be 1"},
      {R"({"v":1.0,"id":1,"method":"x"})", Kind::kBadVersion, "must be 1"},
      {R"({"v":-1,"id":1,"method":"x"})", Kind::kBadVersion, "must be 1"},
  };
  for (const auto& c : cases) expect_request_refused(c);
}

TEST(Request, RefusesBadFieldsNamingTheField) {
  const std::vector<BadCase> cases = {
      {R"({"v":1,"method":"x"})", Kind::kBadField, "\"id\" is missing"},
      {R"({"v":1,"id":-1,"method":"x"})", Kind::kBadField, "\"id\""},
      {R"({"v":1,"id":1.0,"method":"x"})", Kind::kBadField, "\"id\""},
      {R"({"v":1,"id":"1","method":"x"})", Kind::kBadField, "\"id\""},
      {R"({"v":1,"id":9007199254740992,"method":"x"})", Kind::kBadField, "\"id\""},
      {R"({"v":1,"id":1})", Kind::kBadField, "\"method\" is missing"},
      {R"({"v":1,"id":1,"method":""})", Kind::kBadField, "\"method\""},
      {R"({"v":1,"id":1,"method":"Audit.append"})", Kind::kBadField, "\"method\""},
      {R"({"v":1,"id":1,"method":"a b"})", Kind::kBadField, "\"method\""},
      {R"({"v":1,"id":1,"method":"a-b"})", Kind::kBadField, "\"method\""},
      {R"({"v":1,"id":1,"method":7})", Kind::kBadField, "\"method\""},
      {R"({"v":1,"id":1,"method":")" + std::string(65, 'm') + "\"}", Kind::kBadField, "\"method\""},
      {R"({"v":1,"id":1,"method":"x","params":[]})", Kind::kBadField, "\"params\""},
      {R"({"v":1,"id":1,"method":"x","params":null})", Kind::kBadField, "\"params\""},
      {R"({"v":1,"id":1,"method":"x","extra":true})", Kind::kBadField, "unknown field \"extra\""},
  };
  for (const auto& c : cases) expect_request_refused(c);
}

TEST(Request, UnknownKeyIsNamedTruncatedAndEscaped) {
  std::string key = "line\nbreak" + std::string(100, 'k');
  auto parsed = parse_request_text(R"({"v":1,"id":1,"method":"x",)" + json(key).dump() + ":0}");
  ASSERT_FALSE(parsed.has_value());
  const std::string& message = parsed.error().message;
  EXPECT_NE(message.find(R"("line\nbreak)"), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_EQ(message.find(std::string(60, 'k')), std::string::npos) << "not truncated: " << message;
  EXPECT_NE(message.find(std::string(54, 'k') + "\"..."), std::string::npos) << message;
}

TEST(Request, TruncationOfAKeyKeepsWholeUtf8Characters) {
  std::string key = std::string(63, 'k') + "\u00e9\u00e9";  // byte 64 is inside the first é
  auto parsed = parse_request_text(R"({"v":1,"id":1,"method":"x",")" + key + R"(":0})");
  ASSERT_FALSE(parsed.has_value());
  EXPECT_NE(parsed.error().message.find(std::string(63, 'k') + "\"..."), std::string::npos)
      << parsed.error().message;
}

TEST(Request, ErrorCarriesTheIdWhenItWasReadable) {
  auto bad_method = parse_request_text(R"({"v":1,"id":42,"method":"BAD"})");
  ASSERT_FALSE(bad_method.has_value());
  EXPECT_EQ(bad_method.error().id, 42u);

  auto bad_version = parse_request_text(R"({"v":3,"id":43,"method":"x"})");
  ASSERT_FALSE(bad_version.has_value());
  EXPECT_EQ(bad_version.error().id, 43u);

  auto bad_id = parse_request_text(R"({"v":1,"id":-5,"method":"x"})");
  ASSERT_FALSE(bad_id.has_value());
  EXPECT_EQ(bad_id.error().id, 0u);
}

TEST(Method, ValidityMatchesTheParser) {
  EXPECT_TRUE(is_valid_method("audit.append"));
  EXPECT_TRUE(is_valid_method("a_0.9"));
  EXPECT_TRUE(is_valid_method(std::string(64, 'z')));
  EXPECT_FALSE(is_valid_method(""));
  EXPECT_FALSE(is_valid_method(std::string(65, 'z')));
  EXPECT_FALSE(is_valid_method("Audit"));
  EXPECT_FALSE(is_valid_method("a/b"));
  EXPECT_FALSE(is_valid_method(std::string("a\0b", 3)));
}

// --- responses -----------------------------------------------------------------------------

Result<Response, ProtocolError> parse_response_text(std::string_view text) {
  return parse_response(as_bytes(text));
}

TEST(Response, SuccessRoundTrips) {
  Response response = Response::success(9, {{"leaf", 12}, {"hash", "ab"}});
  EXPECT_EQ(encode_response(response),
            R"({"id":9,"ok":true,"result":{"hash":"ab","leaf":12},"v":1})");
  auto parsed = parse_response_text(encode_response(response));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(parsed->id, 9u);
  EXPECT_TRUE(parsed->ok);
  EXPECT_EQ(parsed->result, response.result);
}

TEST(Response, SuccessWithNullResultMeansEmptyObject) {
  Response response = Response::success(1, {});
  EXPECT_TRUE(response.ok);
  EXPECT_EQ(response.result, json::object());
  EXPECT_EQ(encode_response(response), R"({"id":1,"ok":true,"result":{},"v":1})");
}

TEST(Response, FailureRoundTripsForEveryErrorCode) {
  for (Errc code : {Errc::kInvalidArgument, Errc::kNotFound, Errc::kAlreadyExists, Errc::kCorrupt,
                    Errc::kIo, Errc::kNoSpace, Errc::kPermission, Errc::kUnavailable,
                    Errc::kTimeout, Errc::kConflict, Errc::kInternal}) {
    Response response = Response::failure(3, Error{code, "went \"wrong\""});
    EXPECT_FALSE(response.ok);
    auto parsed = parse_response_text(encode_response(response));
    ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
    EXPECT_EQ(parsed->id, 3u);
    EXPECT_FALSE(parsed->ok);
    EXPECT_EQ(parsed->code, code);
    EXPECT_EQ(parsed->message, "went \"wrong\"");
    EXPECT_EQ(parsed->error().code, code);
  }
  EXPECT_EQ(encode_response(Response::failure(4, Error{Errc::kNoSpace, "disk"})),
            R"({"error":{"code":"no_space","message":"disk"},"id":4,"ok":false,"v":1})");
}

TEST(Response, InvalidUtf8InAMessageIsReplacedNotThrown) {
  Response response = Response::failure(5, Error{Errc::kIo, "bad \xff byte"});
  std::string encoded = encode_response(response);
  auto parsed = parse_response_text(encoded);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(parsed->message, "bad \ufffd byte");
}

void expect_response_refused(const BadCase& c) {
  auto parsed = parse_response_text(c.payload);
  ASSERT_FALSE(parsed.has_value()) << c.payload;
  EXPECT_EQ(parsed.error().kind, c.kind) << c.payload << " -> " << parsed.error().describe();
  EXPECT_NE(parsed.error().message.find(c.message_part), std::string::npos)
      << c.payload << " -> " << parsed.error().message;
}

TEST(Response, RefusesMalformedResponses) {
  const std::vector<BadCase> cases = {
      {"nope", Kind::kBadJson, "not UTF-8 JSON"},
      {"[]", Kind::kBadJson, "not a JSON object"},
      {R"({"id":1,"ok":true,"result":{}})", Kind::kBadVersion, "missing"},
      {R"({"v":2,"id":1,"ok":true,"result":{}})", Kind::kBadVersion, "must be 1"},
      {R"({"v":1,"ok":true,"result":{}})", Kind::kBadField, "\"id\""},
      {R"({"v":1,"id":1,"result":{}})", Kind::kBadField, "\"ok\""},
      {R"({"v":1,"id":1,"ok":1,"result":{}})", Kind::kBadField, "\"ok\""},
      {R"({"v":1,"id":1,"ok":true})", Kind::kBadField, "\"result\""},
      {R"({"v":1,"id":1,"ok":true,"result":[]})", Kind::kBadField, "\"result\""},
      {R"({"v":1,"id":1,"ok":true,"result":{},"error":{"code":"io","message":""}})",
       Kind::kBadField, "\"error\" is not allowed"},
      {R"({"v":1,"id":1,"ok":false})", Kind::kBadField, "\"error\" must be an object"},
      {R"({"v":1,"id":1,"ok":false,"error":"io"})", Kind::kBadField, "\"error\" must be"},
      {R"({"v":1,"id":1,"ok":false,"result":{},"error":{"code":"io","message":""}})",
       Kind::kBadField, "\"result\" is not allowed"},
      {R"({"v":1,"id":1,"ok":false,"error":{"message":"m"}})", Kind::kBadField, "error.code"},
      {R"({"v":1,"id":1,"ok":false,"error":{"code":5,"message":"m"}})", Kind::kBadField,
       "error.code"},
      {R"({"v":1,"id":1,"ok":false,"error":{"code":"exploded","message":"m"}})", Kind::kBadField,
       "\"exploded\" is not a known error code"},
      {R"({"v":1,"id":1,"ok":false,"error":{"code":"io"}})", Kind::kBadField, "error.message"},
      {R"({"v":1,"id":1,"ok":false,"error":{"code":"io","message":null}})", Kind::kBadField,
       "error.message"},
      {R"({"v":1,"id":1,"ok":false,"error":{"code":"io","message":"","at":3}})", Kind::kBadField,
       "unknown field \"at\" in \"error\""},
      {R"({"v":1,"id":1,"ok":true,"result":{},"method":"x"})", Kind::kBadField,
       "unknown field \"method\""},
  };
  for (const auto& c : cases) expect_response_refused(c);
}

TEST(ProtocolError, DescribeNamesTheKindAndTheMessage) {
  EXPECT_EQ((ProtocolError{Kind::kFrameTooLarge, "m"}).describe(), "frame too large: m");
  EXPECT_EQ((ProtocolError{Kind::kEmptyFrame, "m"}).describe(), "empty frame: m");
  EXPECT_EQ((ProtocolError{Kind::kBadJson, "m"}).describe(), "bad JSON: m");
  EXPECT_EQ((ProtocolError{Kind::kBadVersion, "m"}).describe(), "bad version: m");
  EXPECT_EQ((ProtocolError{Kind::kBadField, "m"}).describe(), "bad field: m");
}

}  // namespace
}  // namespace enclave::ipc
