#include "common/login/messages.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/login/assertion.hpp"

namespace enclave::login {
namespace {

using Kind = FormatError::Kind;

Success sample_success() {
  Success s;
  s.ticket = std::string(64, 'a');
  s.expires_at = "2026-01-01T00:01:00Z";
  s.desktop = {"desk-3", "10.20.0.3", 3389};
  s.gateway = {"gateway.enclave.example", 4443, std::string(64, 'f'), ""};
  for (int i = 0; i < 32; ++i) s.gateway.xfreerdp_fingerprint += i == 0 ? "ab" : ":ab";
  return s;
}

std::vector<Request> all_requests() {
  return {CreateSession{"alice"},
          CreateSession{"alice", "claims-internal_2"},
          EnrolPrint{"alice", Bytes{'F', 'P', '3', 0, 0xff, 0x80}},
          PostAuthMessageResponse{"correct horse \"battery\"\n"},
          PostAuthMessageResponse{std::nullopt},
          PostAuthMessageResponse{""},
          CancelSession{}};
}

std::vector<Response> all_responses() {
  std::vector<Response> out{sample_success(), ErrorReply{ErrorType::kAuthError, "login failed"},
                            ErrorReply{ErrorType::kError, ""},
                            Enrolled{"p-0123456789abcdef0123456789abcdef"}};
  for (auto type : {AuthMessageType::kVisible, AuthMessageType::kSecret, AuthMessageType::kInfo,
                    AuthMessageType::kError, AuthMessageType::kFingerprint}) {
    out.push_back(AuthMessage{type, "Password: \xe2\x9c\x93 {\"x\":1}"});
  }
  return out;
}

Bytes concat(const std::vector<Bytes>& frames) {
  Bytes out;
  for (const Bytes& f : frames) out.insert(out.end(), f.begin(), f.end());
  return out;
}

Bytes framed(const Request& r) {
  auto f = frame_request(r);
  EXPECT_TRUE(f.has_value());
  return f.has_value() ? *f : Bytes{};
}

Bytes framed(const Response& r) {
  auto f = frame_response(r);
  EXPECT_TRUE(f.has_value());
  return f.has_value() ? *f : Bytes{};
}

Bytes header(std::uint32_t length) {
  Bytes out;
  WriteCursor(out).u32be(length);
  return out;
}

// --- payloads --------------------------------------------------------------------------------

TEST(LoginMessages, EveryRequestRoundTrips) {
  for (const Request& request : all_requests()) {
    std::string text = encode_request(request);
    auto parsed = parse_request(as_bytes(text));
    ASSERT_TRUE(parsed.has_value()) << text << ": " << parsed.error().describe();
    EXPECT_EQ(*parsed, request) << text;
  }
}

TEST(LoginMessages, EveryResponseRoundTrips) {
  for (const Response& response : all_responses()) {
    std::string text = encode_response(response);
    auto parsed = parse_response(as_bytes(text));
    ASSERT_TRUE(parsed.has_value()) << text << ": " << parsed.error().describe();
    EXPECT_EQ(*parsed, response) << text;
  }
}

TEST(LoginMessages, EncodingsAsOnTheWire) {
  EXPECT_EQ(encode_request(CreateSession{"alice"}),
            R"({"type":"create_session","username":"alice","v":1})");
  EXPECT_EQ(
      encode_request(CreateSession{"alice", "claims-internal"}),
      R"({"compartment":"claims-internal","type":"create_session","username":"alice","v":1})");
  EXPECT_EQ(encode_request(EnrolPrint{"alice", Bytes{'F', 'P', '3'}}),
            R"({"print":"RlAz","type":"enrol_print","username":"alice","v":1})");
  EXPECT_EQ(encode_response(Enrolled{"p-1"}), R"({"print_id":"p-1","type":"enrolled"})");
  EXPECT_EQ(encode_request(PostAuthMessageResponse{std::nullopt}),
            R"({"type":"post_auth_message_response"})");
  EXPECT_EQ(encode_request(CancelSession{}), R"({"type":"cancel_session"})");
  EXPECT_EQ(encode_response(ErrorReply{ErrorType::kAuthError, "no"}),
            R"({"description":"no","error_type":"auth_error","type":"error"})");
  EXPECT_EQ(encode_response(AuthMessage{AuthMessageType::kFingerprint, "{}"}),
            R"({"auth_message":"{}","auth_message_type":"fingerprint","type":"auth_message"})");
}

TEST(LoginMessages, GreetdStyleAnswersWithoutResponse) {
  for (std::string text : {R"({"type":"post_auth_message_response"})",
                           R"({"type":"post_auth_message_response","response":null})"}) {
    auto parsed = parse_request(as_bytes(text));
    ASSERT_TRUE(parsed.has_value()) << text;
    EXPECT_EQ(*parsed, Request{PostAuthMessageResponse{std::nullopt}});
  }
}

TEST(LoginMessages, AuthMessageSaysWhichNeedAnAnswer) {
  EXPECT_TRUE((AuthMessage{AuthMessageType::kVisible, ""}.needs_answer()));
  EXPECT_TRUE((AuthMessage{AuthMessageType::kSecret, ""}.needs_answer()));
  EXPECT_TRUE((AuthMessage{AuthMessageType::kFingerprint, ""}.needs_answer()));
  EXPECT_FALSE((AuthMessage{AuthMessageType::kInfo, ""}.needs_answer()));
  EXPECT_FALSE((AuthMessage{AuthMessageType::kError, ""}.needs_answer()));
}

struct BadCase {
  std::string text;
  Kind kind;
  std::string field;
};

TEST(LoginMessages, RequestErrorsAreTyped) {
  const BadCase cases[] = {
      {"", Kind::kBadJson, ""},
      {"not json", Kind::kBadJson, ""},
      {"[]", Kind::kBadJson, ""},
      {"{\"type\":\"cancel_session\",\"x\":\"\xc3\x28\"}", Kind::kBadJson, ""},
      {R"({})", Kind::kMissingField, "type"},
      {R"({"type":7})", Kind::kWrongType, "type"},
      {R"({"type":"start_session"})", Kind::kUnknownType, "type"},
      {R"({"type":"success"})", Kind::kUnknownType, "type"},
      {R"({"type":"create_session","username":"alice"})", Kind::kBadVersion, "v"},
      {R"({"type":"create_session","v":2,"username":"alice"})", Kind::kBadVersion, "v"},
      {R"({"type":"create_session","v":1})", Kind::kMissingField, "username"},
      {R"({"type":"create_session","v":1,"username":["alice"]})", Kind::kWrongType, "username"},
      {R"({"type":"create_session","v":1,"username":""})", Kind::kBadValue, "username"},
      {R"({"type":"create_session","v":1,"username":"a\u0000b"})", Kind::kBadValue, "username"},
      {R"({"type":"create_session","v":1,"username":"a","password":"x"})", Kind::kUnknownField,
       "password"},
      {R"({"type":"create_session","v":1,"username":"a","compartment":""})", Kind::kBadValue,
       "compartment"},
      {R"({"type":"create_session","v":1,"username":"a","compartment":"Gold"})", Kind::kBadValue,
       "compartment"},
      {R"({"type":"create_session","v":1,"username":"a","compartment":"a.b"})", Kind::kBadValue,
       "compartment"},
      {R"({"type":"create_session","v":1,"username":"a","compartment":")" + std::string(65, 'c') +
           R"("})",
       Kind::kBadValue, "compartment"},
      {R"({"type":"create_session","v":1,"username":"a","compartment":["x"]})", Kind::kWrongType,
       "compartment"},
      {R"({"type":"enrol_print","username":"a","print":"RlAz"})", Kind::kBadVersion, "v"},
      {R"({"type":"enrol_print","v":1,"print":"RlAz"})", Kind::kMissingField, "username"},
      {R"({"type":"enrol_print","v":1,"username":"a"})", Kind::kMissingField, "print"},
      {R"({"type":"enrol_print","v":1,"username":"a","print":""})", Kind::kBadValue, "print"},
      {R"({"type":"enrol_print","v":1,"username":"a","print":"RlA"})", Kind::kBadValue, "print"},
      {R"({"type":"enrol_print","v":1,"username":"a","print":"RlB="})", Kind::kBadValue, "print"},
      {R"({"type":"enrol_print","v":1,"username":"a","print":7})", Kind::kWrongType, "print"},
      // The device is the one its certificate names, never one the message could claim.
      {R"({"type":"enrol_print","v":1,"username":"a","print":"RlAz","device":"k"})",
       Kind::kUnknownField, "device"},
      {R"({"type":"enrol_print","v":1,"username":"a","print":"RlAz","compartment":"x"})",
       Kind::kUnknownField, "compartment"},
      {R"({"type":"enrolled","print_id":"p-1"})", Kind::kUnknownType, "type"},
      {R"({"type":"post_auth_message_response","response":1})", Kind::kWrongType, "response"},
      {R"({"type":"cancel_session","reason":"x"})", Kind::kUnknownField, "reason"},
  };
  for (const BadCase& c : cases) {
    auto parsed = parse_request(as_bytes(c.text));
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().kind, c.kind) << c.text << " -> " << parsed.error().describe();
    EXPECT_EQ(parsed.error().field, c.field) << c.text;
  }
}

TEST(LoginMessages, ResponseErrorsAreTypedAndNameNestedFields) {
  std::string success = encode_response(sample_success());
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = success;
    auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return text.replace(at, from.size(), to);
  };
  const BadCase cases[] = {
      {R"({"type":"create_session","v":1,"username":"a"})", Kind::kUnknownType, "type"},
      {with(R"("port":3389)", R"("port":0)"), Kind::kBadValue, "desktop.port"},
      {with(R"("port":3389)", R"("port":65536)"), Kind::kBadValue, "desktop.port"},
      {with(R"("port":3389)", R"("port":"3389")"), Kind::kWrongType, "desktop.port"},
      {with(R"("port":3389)", R"("port":3389.0)"), Kind::kWrongType, "desktop.port"},
      {with(R"("host":"10.20.0.3",)", ""), Kind::kMissingField, "desktop.host"},
      {with(R"("port":4443)", R"("port":4443,"tls":false)"), Kind::kUnknownField, "gateway.tls"},
      {with(std::string(64, 'f'), std::string(64, 'F')), Kind::kBadValue, "gateway.pin_sha256"},
      {with(R"("ticket":")", R"("ticket":1,"x":")"), Kind::kUnknownField, "x"},
      {with(R"("desktop":{)", R"("desktop":[{)"), Kind::kBadJson, ""},
      {R"({"type":"error","error_type":"oops","description":""})", Kind::kBadValue, "error_type"},
      {R"({"type":"error","error_type":"error"})", Kind::kMissingField, "description"},
      {R"({"type":"auth_message","auth_message_type":"biometric","auth_message":""})",
       Kind::kBadValue, "auth_message_type"},
      {R"({"type":"auth_message","auth_message_type":"secret"})", Kind::kMissingField,
       "auth_message"},
      {R"({"type":"enrolled"})", Kind::kMissingField, "print_id"},
      {R"({"type":"enrolled","print_id":""})", Kind::kBadValue, "print_id"},
      {R"({"type":"enrolled","print_id":")" + std::string(kMaxPrintIdBytes + 1, 'p') + R"("})",
       Kind::kBadValue, "print_id"},
      {R"({"type":"enrolled","print_id":"p-1","user":"a"})", Kind::kUnknownField, "user"},
      {R"({"type":"enrol_print","v":1,"username":"a","print":"RlAz"})", Kind::kUnknownType, "type"},
  };
  for (const BadCase& c : cases) {
    auto parsed = parse_response(as_bytes(c.text));
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().kind, c.kind) << c.text << " -> " << parsed.error().describe();
    EXPECT_EQ(parsed.error().field, c.field) << c.text;
  }
}

TEST(LoginMessages, UntrustedNamesInErrorsAreQuotedAndBounded) {
  auto type = parse_request(as_bytes(R"({"type":"evil\nline"})"));
  ASSERT_FALSE(type.has_value());
  EXPECT_EQ(type.error().kind, Kind::kUnknownType);
  EXPECT_EQ(type.error().message.find('\n'), std::string::npos);
  EXPECT_NE(type.error().message.find(R"("evil\nline")"), std::string::npos);

  auto key = parse_request(
      as_bytes(R"({"type":"cancel_session","evil\nkey)" + std::string(1000, 'x') + R"(":1})"));
  ASSERT_FALSE(key.has_value());
  EXPECT_EQ(key.error().kind, Kind::kUnknownField);
  EXPECT_EQ(key.error().message.find('\n'), std::string::npos);
  EXPECT_LT(key.error().message.size(), 120u);
  EXPECT_NE(key.error().message.find(R"("evil\nkeyxx)"), std::string::npos);
}

TEST(LoginMessages, DeepNestingIsRefusedWithoutExhaustingTheStack) {
  std::string deep =
      R"({"type":"cancel_session","x":)" + std::string(60000, '[') + std::string(60000, ']') + "}";
  auto parsed = parse_request(as_bytes(deep));
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().kind, Kind::kUnknownField);
  auto open = parse_response(as_bytes(std::string(kMaxMessageBytes, '[')));
  ASSERT_FALSE(open.has_value());
  EXPECT_EQ(open.error().kind, Kind::kBadJson);
}

TEST(LoginMessages, TheLargestChallengeFitsInOneFingerprintPrompt) {
  FingerprintChallenge c;
  c.nonce = std::string(64, '0');
  c.user = std::string(kMaxUserBytes, 'u');
  c.device = std::string(kMaxDeviceBytes, 'd');
  c.expires_at = (std::int64_t{1} << 53) - 1;
  std::size_t per_print = (kMaxChallengeBytes - 4096) / kMaxPrints / 4 * 3;
  for (std::size_t i = 0; i < kMaxPrints; ++i) {
    c.prints.push_back(
        {std::string(kMaxPrintIdBytes, static_cast<char>('a' + i)), Bytes(per_print, 0x42)});
  }
  auto text = encode_challenge(c);
  ASSERT_TRUE(text.has_value()) << text.error().describe();
  EXPECT_GT(text->size(), kMaxChallengeBytes - 4096);
  auto frame = frame_response(AuthMessage{AuthMessageType::kFingerprint, *text});
  ASSERT_TRUE(frame.has_value()) << frame.error().describe();
  FrameDecoder decoder;
  decoder.feed(*frame);
  auto got = decoder.next_response();
  ASSERT_TRUE(got.has_value() && got->has_value());
  const auto& message = std::get<AuthMessage>(**got);
  auto challenge = parse_challenge(as_bytes(message.text));
  ASSERT_TRUE(challenge.has_value()) << challenge.error().describe();
  EXPECT_EQ(*challenge, c);
}

TEST(LoginMessages, TheLargestPrintFitsInOneEnrolmentAndOneMoreByteIsRefused) {
  // The longest user name, escaped six-fold, around the largest print a challenge can carry.
  EnrolPrint largest{std::string(256, '\x01'), Bytes(kMaxPrintBytes, 0xa5)};
  auto frame = frame_request(largest);
  ASSERT_TRUE(frame.has_value()) << frame.error().describe();
  FrameDecoder decoder;
  decoder.feed(*frame);
  auto got = decoder.next_request();
  ASSERT_TRUE(got.has_value()) << got.error().describe();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, Request{largest});

  EnrolPrint over{"alice", Bytes(kMaxPrintBytes + 1, 0xa5)};
  auto parsed = parse_request(as_bytes(encode_request(over)));
  ASSERT_FALSE(parsed.has_value());
  EXPECT_EQ(parsed.error().kind, Kind::kBadValue);
  EXPECT_EQ(parsed.error().field, "print");
}

// --- frames ----------------------------------------------------------------------------------

TEST(LoginFrames, BigEndianLengthThenPayload) {
  auto f = frame_payload("{}");
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(*f, (Bytes{0, 0, 0, 2, '{', '}'}));
}

TEST(LoginFrames, SizeLimits) {
  auto empty = frame_payload("");
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.error().kind, Kind::kEmptyFrame);
  EXPECT_TRUE(frame_payload(std::string(kMaxMessageBytes, ' ')).has_value());
  auto large = frame_payload(std::string(kMaxMessageBytes + 1, ' '));
  ASSERT_FALSE(large.has_value());
  EXPECT_EQ(large.error().kind, Kind::kFrameTooLarge);
  auto huge =
      frame_response(AuthMessage{AuthMessageType::kInfo, std::string(kMaxMessageBytes, 'x')});
  ASSERT_FALSE(huge.has_value());
  EXPECT_EQ(huge.error().kind, Kind::kFrameTooLarge);
}

TEST(FrameDecoder, ByteByByteYieldsEachMessageOnceInOrder) {
  std::vector<Bytes> frames;
  for (const Request& r : all_requests()) frames.push_back(framed(r));
  Bytes stream = concat(frames);

  FrameDecoder decoder;
  std::vector<Request> got;
  for (std::uint8_t byte : stream) {
    decoder.feed(ByteSpan(&byte, 1));
    auto next = decoder.next_request();
    ASSERT_TRUE(next.has_value()) << next.error().describe();
    if (next->has_value()) got.push_back(std::move(**next));
  }
  EXPECT_EQ(got, all_requests());
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, SeveralFramesInOneFeed) {
  std::vector<Bytes> frames;
  for (const Response& r : all_responses()) frames.push_back(framed(r));
  FrameDecoder decoder;
  decoder.feed(concat(frames));
  std::vector<Response> got;
  for (;;) {
    auto next = decoder.next_response();
    ASSERT_TRUE(next.has_value()) << next.error().describe();
    if (!next->has_value()) break;
    got.push_back(std::move(**next));
  }
  EXPECT_EQ(got, all_responses());
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(FrameDecoder, OversizeIsRefusedFromTheHeaderAloneAndStaysRefused) {
  FrameDecoder decoder;
  Bytes h = header(kMaxMessageBytes + 1);
  decoder.feed(ByteSpan(h).first(3));
  auto partial = decoder.next_payload();
  ASSERT_TRUE(partial.has_value());
  EXPECT_FALSE(partial->has_value());
  decoder.feed(ByteSpan(h).subspan(3));
  auto refused = decoder.next_payload();
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, Kind::kFrameTooLarge);
  decoder.feed(framed(Request{CancelSession{}}));
  auto later = decoder.next_request();
  ASSERT_FALSE(later.has_value());
  EXPECT_EQ(later.error().kind, Kind::kFrameTooLarge);
}

TEST(FrameDecoder, EmptyFrameBreaksTheStream) {
  FrameDecoder decoder;
  decoder.feed(header(0));
  auto refused = decoder.next_request();
  ASSERT_FALSE(refused.has_value());
  EXPECT_EQ(refused.error().kind, Kind::kEmptyFrame);
  decoder.feed(framed(Request{CancelSession{}}));
  EXPECT_FALSE(decoder.next_request().has_value());
}

TEST(FrameDecoder, AFrameAtTheLimitIsAccepted) {
  std::string payload = encode_response(AuthMessage{AuthMessageType::kInfo, ""});
  payload.insert(payload.size() - 1, std::string(kMaxMessageBytes - payload.size(), ' '));
  ASSERT_EQ(payload.size(), kMaxMessageBytes);
  auto f = frame_payload(payload);
  ASSERT_TRUE(f.has_value());
  FrameDecoder decoder;
  decoder.feed(*f);
  auto got = decoder.next_response();
  ASSERT_TRUE(got.has_value()) << got.error().describe();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, Response{(AuthMessage{AuthMessageType::kInfo, ""})});
}

TEST(FrameDecoder, AMalformedMessageIsReportedAndTheNextOneStillRead) {
  auto bad = frame_payload(R"({"type":"launch_missiles"})");
  ASSERT_TRUE(bad.has_value());
  FrameDecoder decoder;
  decoder.feed(concat({*bad, framed(Request{CreateSession{"bob"}})}));
  auto first = decoder.next_request();
  ASSERT_FALSE(first.has_value());
  EXPECT_EQ(first.error().kind, Kind::kUnknownType);
  auto second = decoder.next_request();
  ASSERT_TRUE(second.has_value() && second->has_value());
  EXPECT_EQ(**second, Request{CreateSession{"bob"}});
}

}  // namespace
}  // namespace enclave::login
