#include "common/login/assertion.hpp"

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include "common/ed25519.hpp"
#include "tests/support/process.hpp"

namespace enclave::login {
namespace {

using Kind = AssertionError::Kind;
using crypto::ed25519_public_key;
using crypto::ed25519_sign;
using crypto::ed25519_verify;
using crypto::EvpPkeyPtr;
using crypto::kEd25519SignatureBytes;

constexpr std::int64_t kTime = 1767225600;  // 2026-01-01T00:00:00Z
const std::string kNonce = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

EvpPkeyPtr generate_key(const char* type = "ED25519") {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, type));
  EXPECT_NE(key, nullptr);
  return key;
}

EvpPkeyPtr generate_p256() {
  EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_NE(key, nullptr);
  return key;
}

Bytes public_key_of(EVP_PKEY* key) {
  auto raw = ed25519_public_key(key);
  EXPECT_TRUE(raw.has_value());
  return raw.has_value() ? *raw : Bytes{};
}

void write_pem(EVP_PKEY* key, const std::filesystem::path& path, mode_t mode) {
  FILE* file = std::fopen(path.c_str(), "w");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  std::fclose(file);
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

FingerprintAssertion sample() {
  return {kNonce, "alice", "kiosk-7", "alice-right-index", MatchResult::kMatch, kTime};
}

AssertionExpectation expectation() {
  AssertionExpectation e;
  e.nonce = kNonce;
  e.user = "alice";
  e.device = "kiosk-7";
  e.print_ids = {"alice-left-index", "alice-right-index"};
  e.now = kTime + 3;
  e.max_age = 60;
  e.max_clock_skew = 5;
  return e;
}

std::string sign(const FingerprintAssertion& a, EVP_PKEY* key) {
  auto wire = sign_assertion(a, key);
  EXPECT_TRUE(wire.has_value()) << wire.error().describe();
  return wire.has_value() ? *wire : std::string();
}

AssertionError::Kind refusal(std::string_view wire, ByteSpan public_key,
                             const AssertionExpectation& e) {
  auto verified = verify_assertion(as_bytes(wire), public_key, e);
  EXPECT_FALSE(verified.has_value());
  return verified.has_value() ? Kind::kMalformed : verified.error().kind;
}

// --- canonical form --------------------------------------------------------------------------

TEST(CanonicalAssertion, FixedKeyOrderCompactAndMinimalEscapes) {
  FingerprintAssertion a = sample();
  a.user = "zo\xc3\xab \"q\"\n\x01/";
  a.result = MatchResult::kNoMatch;
  EXPECT_EQ(
      canonical_assertion(a),
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"zoë \"q\"\n\u0001/","device":"kiosk-7","print_id":"alice-right-index","result":"no-match","time":1767225600})");
}

TEST(CanonicalAssertion, ParsesBackToTheSameAssertion) {
  for (MatchResult result : {MatchResult::kMatch, MatchResult::kNoMatch}) {
    FingerprintAssertion a = sample();
    a.result = result;
    a.user = "\xe5\xb1\xb1\xe7\x94\xb0 \"x\"\t";
    auto parsed = parse_canonical_assertion(as_bytes(canonical_assertion(a)));
    ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
    EXPECT_EQ(*parsed, a);
  }
}

TEST(CanonicalAssertion, EveryOtherSpellingIsMalformed) {
  std::string good = canonical_assertion(sample());
  std::string tail =
      R"(","user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600})";
  std::string upper_nonce = kNonce;
  upper_nonce[10] = 'A';
  const std::string cases[] = {
      good + " ",
      " " + good,
      R"({"v":1, "nonce":")" + kNonce + tail,
      R"({"nonce":")" + kNonce +
          R"(","v":1,"user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"\u0061lice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"mallory","user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600})",
      R"({"v":1,"nonce":")" + upper_nonce + tail,
      R"({"v":1,"nonce":")" + kNonce.substr(2) + tail,
      R"({"v":2,"nonce":")" + kNonce + tail,
      R"({"nonce":")" + kNonce + tail,
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600.0})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":-1})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"maybe","time":1767225600})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"alice","device":"kiosk-7","result":"match","time":1767225600})",
      R"({"v":1,"nonce":")" + kNonce +
          R"(","user":"alice","device":"kiosk-7","print_id":"alice-right-index","result":"match","time":1767225600,"extra":1})",
      "[]",
      "",
      "{\"v\":1,\"user\":\"\xff\"}",
  };
  for (const std::string& text : cases) {
    auto parsed = parse_canonical_assertion(as_bytes(text));
    ASSERT_FALSE(parsed.has_value()) << text;
    EXPECT_EQ(parsed.error().kind, Kind::kMalformed) << text;
  }
}

// --- sign and verify -------------------------------------------------------------------------

TEST(VerifyAssertion, AcceptsWhatTheDeviceSigned) {
  auto key = generate_key();
  Bytes pub = public_key_of(key.get());
  for (MatchResult result : {MatchResult::kMatch, MatchResult::kNoMatch}) {
    FingerprintAssertion a = sample();
    a.result = result;
    auto verified = verify_assertion(as_bytes(sign(a, key.get())), pub, expectation());
    ASSERT_TRUE(verified.has_value()) << verified.error().describe();
    EXPECT_EQ(*verified, a);
  }
}

TEST(VerifyAssertion, WireFormIsTheSignedBytesAndSignatureInBase64) {
  auto key = generate_key();
  std::string wire = sign(sample(), key.get());
  auto parsed = parse_signed_assertion(as_bytes(wire));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(as_chars(parsed->assertion), canonical_assertion(sample()));
  EXPECT_EQ(parsed->signature.size(), kEd25519SignatureBytes);
  EXPECT_TRUE(ed25519_verify(public_key_of(key.get()), parsed->assertion, parsed->signature));
  EXPECT_EQ(encode_signed_assertion(*parsed), wire);
}

TEST(VerifyAssertion, EveryFlippedBitOfTheSignatureIsABadSignature) {
  auto key = generate_key();
  Bytes pub = public_key_of(key.get());
  auto s = parse_signed_assertion(as_bytes(sign(sample(), key.get())));
  ASSERT_TRUE(s.has_value());
  for (std::size_t byte = 0; byte < s->signature.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      SignedAssertion altered = *s;
      altered.signature[byte] ^= static_cast<std::uint8_t>(1u << bit);
      EXPECT_EQ(refusal(encode_signed_assertion(altered), pub, expectation()), Kind::kBadSignature)
          << byte << ":" << bit;
    }
  }
}

TEST(VerifyAssertion, EveryAlteredByteOfTheAssertionIsABadSignature) {
  auto key = generate_key();
  Bytes pub = public_key_of(key.get());
  auto s = parse_signed_assertion(as_bytes(sign(sample(), key.get())));
  ASSERT_TRUE(s.has_value());
  for (std::size_t i = 0; i < s->assertion.size(); ++i) {
    SignedAssertion altered = *s;
    altered.assertion[i] ^= 0x01;
    EXPECT_EQ(refusal(encode_signed_assertion(altered), pub, expectation()), Kind::kBadSignature)
        << i;
  }
  SignedAssertion truncated = *s;
  truncated.assertion.pop_back();
  EXPECT_EQ(refusal(encode_signed_assertion(truncated), pub, expectation()), Kind::kBadSignature);
}

TEST(VerifyAssertion, AnotherDevicesKeyIsABadSignature) {
  auto device = generate_key();
  auto other = generate_key();
  std::string wire = sign(sample(), other.get());
  EXPECT_EQ(refusal(wire, public_key_of(device.get()), expectation()), Kind::kBadSignature);
  Bytes short_key = public_key_of(device.get());
  short_key.pop_back();
  EXPECT_EQ(refusal(sign(sample(), device.get()), short_key, expectation()), Kind::kBadSignature);
}

TEST(VerifyAssertion, ValidlySignedButNotCanonicalIsMalformed) {
  auto key = generate_key();
  std::string spaced = canonical_assertion(sample());
  spaced.insert(1, " ");
  auto signature = ed25519_sign(key.get(), as_bytes(spaced));
  ASSERT_TRUE(signature.has_value());
  SignedAssertion s{Bytes(spaced.begin(), spaced.end()), *signature};
  EXPECT_EQ(refusal(encode_signed_assertion(s), public_key_of(key.get()), expectation()),
            Kind::kMalformed);
}

TEST(VerifyAssertion, EachBindingIsChecked) {
  auto key = generate_key();
  Bytes pub = public_key_of(key.get());
  std::string wire = sign(sample(), key.get());

  AssertionExpectation e = expectation();
  auto fresh = new_nonce();
  ASSERT_TRUE(fresh.has_value());
  e.nonce = *fresh;  // a replay: the same assertion answering the next challenge
  EXPECT_EQ(refusal(wire, pub, e), Kind::kWrongNonce);

  e = expectation();
  e.user = "bob";
  EXPECT_EQ(refusal(wire, pub, e), Kind::kWrongUser);

  e = expectation();
  e.device = "kiosk-8";
  EXPECT_EQ(refusal(wire, pub, e), Kind::kWrongDevice);

  e = expectation();
  e.print_ids = {"alice-left-index"};
  EXPECT_EQ(refusal(wire, pub, e), Kind::kWrongPrint);
  e.print_ids.clear();
  EXPECT_EQ(refusal(wire, pub, e), Kind::kWrongPrint);
}

TEST(VerifyAssertion, TimeWindowIsInclusiveAndBothEdgesAreChecked) {
  auto key = generate_key();
  Bytes pub = public_key_of(key.get());
  std::string wire = sign(sample(), key.get());
  AssertionExpectation e = expectation();

  e.now = kTime + e.max_age;
  EXPECT_TRUE(verify_assertion(as_bytes(wire), pub, e).has_value());
  e.now = kTime + e.max_age + 1;
  EXPECT_EQ(refusal(wire, pub, e), Kind::kStale);

  e.now = kTime - e.max_clock_skew;
  EXPECT_TRUE(verify_assertion(as_bytes(wire), pub, e).has_value());
  e.now = kTime - e.max_clock_skew - 1;
  EXPECT_EQ(refusal(wire, pub, e), Kind::kFromFuture);

  // Clocks at the ends of the range: no overflow (UBSan would stop the test).
  e.now = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(refusal(wire, pub, e), Kind::kStale);
  e.now = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(refusal(wire, pub, e), Kind::kFromFuture);
}

TEST(VerifyAssertion, MalformedWireForms) {
  auto key = generate_key();
  Bytes pub = public_key_of(key.get());
  std::string wire = sign(sample(), key.get());
  auto s = parse_signed_assertion(as_bytes(wire));
  ASSERT_TRUE(s.has_value());
  std::string b64_assertion = base64_encode(s->assertion);
  Bytes short_signature(s->signature.begin(), s->signature.end() - 1);
  const std::string cases[] = {
      "",
      "null",
      wire.substr(0, wire.size() - 1),
      R"({"assertion":")" + b64_assertion + R"("})",
      R"({"assertion":")" + b64_assertion + R"(","signature":")" + base64_encode(short_signature) +
          R"("})",
      R"({"assertion":")" + b64_assertion + R"(","signature":")" + base64_encode(s->signature) +
          R"(","key":"x"})",
      R"({"assertion":")" + b64_assertion.substr(0, 4) + R"(\n)" + b64_assertion.substr(4) +
          R"(","signature":")" + base64_encode(s->signature) + R"("})",
      R"({"assertion":1,"signature":")" + base64_encode(s->signature) + R"("})",
      std::string(kMaxAssertionWireBytes + 1, ' '),
  };
  for (const std::string& text : cases) {
    EXPECT_EQ(refusal(text, pub, expectation()), Kind::kMalformed) << text;
  }
}

TEST(SignAssertion, RefusesWhatTheVerifierWouldRefuse) {
  auto key = generate_key();
  FingerprintAssertion a = sample();
  a.nonce = "not hex";
  auto signed_bad = sign_assertion(a, key.get());
  ASSERT_FALSE(signed_bad.has_value());
  EXPECT_EQ(signed_bad.error().code, Errc::kInvalidArgument);
  EXPECT_NE(signed_bad.error().message.find("alice"), std::string::npos);

  a = sample();
  a.print_id = std::string(kMaxPrintIdBytes + 1, 'p');
  EXPECT_FALSE(sign_assertion(a, key.get()).has_value());
  a = sample();
  a.user = "\xff";
  EXPECT_FALSE(sign_assertion(a, key.get()).has_value());

  auto p256 = generate_p256();
  auto wrong_type = sign_assertion(sample(), p256.get());
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_EQ(wrong_type.error().code, Errc::kInvalidArgument);
}

TEST(SignAssertion, WithTheDeviceKeyFile) {
  testing::TempDir dir;
  auto key = generate_key();
  write_pem(key.get(), dir / "device.key", 0600);
  auto wire = sign_assertion(sample(), dir / "device.key");
  ASSERT_TRUE(wire.has_value()) << wire.error().describe();
  EXPECT_TRUE(verify_assertion(as_bytes(*wire), public_key_of(key.get()), expectation()));
}

TEST(SignAssertion, KeyFileRefusals) {
  testing::TempDir dir;
  auto key = generate_key();
  write_pem(key.get(), dir / "readable.key", 0640);
  auto readable = sign_assertion(sample(), dir / "readable.key");
  ASSERT_FALSE(readable.has_value());
  EXPECT_EQ(readable.error().code, Errc::kPermission);
  EXPECT_NE(readable.error().message.find("readable.key"), std::string::npos);
  EXPECT_NE(readable.error().message.find("0640"), std::string::npos);

  auto missing = sign_assertion(sample(), dir / "missing.key");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);

  write_pem(key.get(), dir / "target.key", 0600);
  std::filesystem::create_symlink(dir / "target.key", dir / "link.key");
  auto link = sign_assertion(sample(), dir / "link.key");
  ASSERT_FALSE(link.has_value());
  EXPECT_EQ(link.error().code, Errc::kPermission);

  auto p256 = generate_p256();
  write_pem(p256.get(), dir / "p256.key", 0600);
  auto wrong_type = sign_assertion(sample(), dir / "p256.key");
  ASSERT_FALSE(wrong_type.has_value());
  EXPECT_EQ(wrong_type.error().code, Errc::kInvalidArgument);
  EXPECT_NE(wrong_type.error().message.find("not Ed25519"), std::string::npos);

  FILE* garbage = std::fopen((dir / "garbage.key").c_str(), "w");
  ASSERT_NE(garbage, nullptr);
  std::fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", garbage);
  std::fclose(garbage);
  ASSERT_EQ(::chmod((dir / "garbage.key").c_str(), 0600), 0);
  auto bad = sign_assertion(sample(), dir / "garbage.key");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message.find("AAAA"), std::string::npos);
}

// --- challenge -------------------------------------------------------------------------------

FingerprintChallenge sample_challenge() {
  FingerprintChallenge c;
  c.nonce = kNonce;
  c.user = "alice";
  c.device = "kiosk-7";
  c.prints = {{"alice-left-index", Bytes{1, 2, 3, 0, 255}},
              {"alice-right-index", Bytes(3000, 0x5a)}};
  c.expires_at = kTime + 120;
  return c;
}

TEST(FingerprintChallenge, NonceIsFreshRandomHex) {
  auto a = new_nonce();
  auto b = new_nonce();
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_EQ(a->size(), 2 * kNonceBytes);
  EXPECT_NE(*a, *b);
  EXPECT_TRUE(hex_decode(*a).has_value());
}

TEST(FingerprintChallenge, RoundTrips) {
  auto text = encode_challenge(sample_challenge());
  ASSERT_TRUE(text.has_value()) << text.error().describe();
  auto parsed = parse_challenge(as_bytes(*text));
  ASSERT_TRUE(parsed.has_value()) << parsed.error().describe();
  EXPECT_EQ(*parsed, sample_challenge());
}

TEST(FingerprintChallenge, ExpectationFollowsTheChallenge) {
  AssertionExpectation e = expectation_for(sample_challenge(), kTime, 90);
  EXPECT_EQ(e.nonce, kNonce);
  EXPECT_EQ(e.user, "alice");
  EXPECT_EQ(e.device, "kiosk-7");
  EXPECT_EQ(e.print_ids, (std::vector<std::string>{"alice-left-index", "alice-right-index"}));
  EXPECT_EQ(e.now, kTime);
  EXPECT_EQ(e.max_age, 90);
  auto key = generate_key();
  EXPECT_TRUE(verify_assertion(as_bytes(sign(sample(), key.get())), public_key_of(key.get()), e));
}

TEST(FingerprintChallenge, ParseErrorsAreTypedAndNameTheField) {
  using FKind = FormatError::Kind;
  std::string head = R"({"v":1,"nonce":")" + kNonce + R"(","user":"alice","device":"kiosk-7",)";
  struct Case {
    std::string text;
    FKind kind;
    std::string field;
  };
  const Case cases[] = {
      {"{", FKind::kBadJson, ""},
      {"[1]", FKind::kBadJson, ""},
      {head + R"("expires_at":1})", FKind::kMissingField, "prints"},
      {head + R"("prints":{},"expires_at":1})", FKind::kWrongType, "prints"},
      {head + R"("prints":[],"expires_at":1})", FKind::kBadValue, "prints"},
      {head + R"("prints":[3],"expires_at":1})", FKind::kWrongType, "prints[0]"},
      {head + R"("prints":[{"print_id":"p","data":"AQ="}],"expires_at":1})", FKind::kBadValue,
       "prints[0].data"},
      {head + R"("prints":[{"print_id":"p"}],"expires_at":1})", FKind::kMissingField,
       "prints[0].data"},
      {head + R"("prints":[{"print_id":"p","data":"AQ==","x":1}],"expires_at":1})",
       FKind::kUnknownField, "prints[0].x"},
      {head + R"("prints":[{"print_id":"p","data":"AQ=="}],"expires_at":"soon"})",
       FKind::kWrongType, "expires_at"},
      {head + R"("prints":[{"print_id":"p","data":"AQ=="}],"expires_at":1,"y":2})",
       FKind::kUnknownField, "y"},
      {R"({"nonce":")" + kNonce + R"("})", FKind::kBadVersion, "v"},
  };
  for (const Case& c : cases) {
    auto parsed = parse_challenge(as_bytes(c.text));
    ASSERT_FALSE(parsed.has_value()) << c.text;
    EXPECT_EQ(parsed.error().kind, c.kind) << c.text << " -> " << parsed.error().describe();
    EXPECT_EQ(parsed.error().field, c.field) << c.text;
  }
}

TEST(FingerprintChallenge, LimitsOnPrints) {
  FingerprintChallenge c = sample_challenge();
  c.prints.assign(kMaxPrints + 1, {"p", Bytes{1}});
  EXPECT_FALSE(encode_challenge(c).has_value());

  c.prints.assign(kMaxPrints, {"p", Bytes(kMaxPrintBytes, 7)});  // each fits, all do not
  auto too_large = encode_challenge(c);
  ASSERT_FALSE(too_large.has_value());
  EXPECT_EQ(too_large.error().code, Errc::kInvalidArgument);
  EXPECT_NE(too_large.error().message.find("\"alice\""), std::string::npos);
  EXPECT_NE(too_large.error().message.find("\"kiosk-7\""), std::string::npos);

  c.prints = {{"p", Bytes(kMaxPrintBytes + 1, 7)}};
  EXPECT_FALSE(encode_challenge(c).has_value());
  c.prints = {{"p", Bytes(kMaxPrintBytes, 7)}};
  auto at_limit = encode_challenge(c);
  ASSERT_TRUE(at_limit.has_value()) << at_limit.error().describe();
  EXPECT_TRUE(parse_challenge(as_bytes(*at_limit)).has_value());
  c.prints.clear();
  EXPECT_FALSE(encode_challenge(c).has_value());

  c = sample_challenge();
  c.user = "\xff";  // would go out as U+FFFD and name someone else
  EXPECT_FALSE(encode_challenge(c).has_value());
}

}  // namespace
}  // namespace enclave::login
