#include "common/login/assertion.hpp"

#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <limits>

#include "common/ed25519.hpp"

namespace enclave::login {

namespace {

using fields::StringRule;
using nlohmann::json;
using Kind = AssertionError::Kind;

constexpr std::size_t kNonceHexDigits = 2 * kNonceBytes;
// Large enough for the canonical form with every field at its limit.
constexpr std::size_t kMaxCanonicalBytes = 3000;
constexpr std::int64_t kMaxTime = (std::int64_t{1} << 53) - 1;  // exact in every JSON reader

constexpr StringRule kUserRule{1, kMaxUserBytes};
constexpr StringRule kDeviceRule{1, kMaxDeviceBytes};
constexpr StringRule kPrintIdRule{1, kMaxPrintIdBytes};

Unexpected<AssertionError> assertion_error(Kind kind, std::string message) {
  return fail(AssertionError{kind, std::move(message)});
}

Unexpected<AssertionError> malformed(const FormatError& error) {
  return assertion_error(Kind::kMalformed, error.describe());
}

bool is_lower_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

Result<std::string, FormatError> nonce_field(const json& object) {
  auto nonce = fields::string_field(object, "nonce", "", {kNonceHexDigits, kNonceHexDigits});
  if (!nonce) return nonce;
  if (!is_lower_hex(*nonce)) {
    return fields::format_error(
        FormatError::Kind::kBadValue, "nonce",
        "\"nonce\" must be " + std::to_string(kNonceHexDigits) + " lowercase hex digits");
  }
  return nonce;
}

bool within(std::string_view text, StringRule rule) {
  return text.size() >= rule.min && text.size() <= rule.max &&
         text.find('\0') == std::string_view::npos;
}

// later - earlier for later >= earlier, exact over the whole int64 range (now is the caller's).
std::uint64_t distance(std::int64_t later, std::int64_t earlier) {
  return static_cast<std::uint64_t>(later) - static_cast<std::uint64_t>(earlier);
}

std::uint64_t non_negative(std::int64_t seconds) {
  return seconds < 0 ? 0 : static_cast<std::uint64_t>(seconds);
}

bool is_valid_nonce(std::string_view nonce) {
  return nonce.size() == kNonceHexDigits && is_lower_hex(nonce);
}

// What the verifier accepts, checked before signing: a device must not sign what the center
// would refuse as malformed.
Status check_assertion_fields(const FingerprintAssertion& a) {
  std::string what = "assertion for user " + fields::quoted_name(a.user) + ": ";
  if (!is_valid_nonce(a.nonce)) {
    return fail(Errc::kInvalidArgument, what + "nonce is not 64 lowercase hex digits");
  }
  if (!within(a.user, kUserRule) || !is_valid_utf8(a.user)) {
    return fail(Errc::kInvalidArgument, what + "user must be 1..256 bytes of UTF-8");
  }
  if (!within(a.device, kDeviceRule) || !is_valid_utf8(a.device)) {
    return fail(Errc::kInvalidArgument, what + "device must be 1..256 bytes of UTF-8");
  }
  if (!within(a.print_id, kPrintIdRule) || !is_valid_utf8(a.print_id)) {
    return fail(Errc::kInvalidArgument, what + "print_id must be 1..128 bytes of UTF-8");
  }
  if (a.time < 0 || a.time > kMaxTime) {
    return fail(Errc::kInvalidArgument, what + "time is out of range");
  }
  return {};
}

}  // namespace

// --- challenge -------------------------------------------------------------------------------

Expected<std::string> new_nonce() {
  Bytes nonce(kNonceBytes);
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    ERR_clear_error();
    return fail(Errc::kUnavailable, "the random generator cannot produce a nonce");
  }
  return hex_encode(nonce);
}

Expected<std::string> encode_challenge(const FingerprintChallenge& challenge) {
  std::string what = "fingerprint challenge for user " + fields::quoted_name(challenge.user) +
                     " on device " + fields::quoted_name(challenge.device) + ": ";
  if (!is_valid_nonce(challenge.nonce)) {
    return fail(Errc::kInvalidArgument, what + "nonce is not 64 lowercase hex digits");
  }
  if (!within(challenge.user, kUserRule) || !within(challenge.device, kDeviceRule) ||
      !is_valid_utf8(challenge.user) || !is_valid_utf8(challenge.device)) {
    return fail(Errc::kInvalidArgument, what + "user and device must be 1..256 bytes of UTF-8");
  }
  if (challenge.prints.empty() || challenge.prints.size() > kMaxPrints) {
    return fail(Errc::kInvalidArgument, what + std::to_string(challenge.prints.size()) +
                                            " prints; 1.." + std::to_string(kMaxPrints) +
                                            " are allowed");
  }
  if (challenge.expires_at < 0 || challenge.expires_at > kMaxTime) {
    return fail(Errc::kInvalidArgument, what + "expires_at is out of range");
  }
  json prints = json::array();
  for (const EnrolledPrint& print : challenge.prints) {
    if (!within(print.print_id, kPrintIdRule) || !is_valid_utf8(print.print_id) ||
        print.data.empty() || print.data.size() > kMaxPrintBytes) {
      return fail(Errc::kInvalidArgument,
                  what + "print " + fields::quoted_name(print.print_id) +
                      ": the id must be 1..128 bytes of UTF-8 and the data 1.." +
                      std::to_string(kMaxPrintBytes) + " bytes");
    }
    prints.push_back({{"print_id", print.print_id}, {"data", base64_encode(print.data)}});
  }
  json doc = {{"v", kChallengeVersion},      {"nonce", challenge.nonce},
              {"user", challenge.user},      {"device", challenge.device},
              {"prints", std::move(prints)}, {"expires_at", challenge.expires_at}};
  std::string text = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxChallengeBytes) {
    return fail(Errc::kInvalidArgument, what + "the prints make the challenge " +
                                            std::to_string(text.size()) + " bytes; at most " +
                                            std::to_string(kMaxChallengeBytes) + " fit");
  }
  return text;
}

Result<FingerprintChallenge, FormatError> parse_challenge(ByteSpan text) {
  if (text.size() > kMaxChallengeBytes) {
    return fields::format_error(FormatError::Kind::kBadValue, "",
                                "challenge is " + std::to_string(text.size()) +
                                    " bytes; the limit is " + std::to_string(kMaxChallengeBytes));
  }
  auto doc = fields::parse_object(as_chars(text));
  if (!doc) return fail(std::move(doc.error()));
  if (auto v = fields::check_version(*doc, kChallengeVersion); !v) return fail(v.error());
  if (auto keys =
          fields::check_keys(*doc, {"v", "nonce", "user", "device", "prints", "expires_at"});
      !keys) {
    return fail(keys.error());
  }

  FingerprintChallenge challenge;
  auto nonce = nonce_field(*doc);
  if (!nonce) return fail(std::move(nonce.error()));
  challenge.nonce = std::move(*nonce);
  auto user = fields::string_field(*doc, "user", "", kUserRule);
  if (!user) return fail(std::move(user.error()));
  challenge.user = std::move(*user);
  auto device = fields::string_field(*doc, "device", "", kDeviceRule);
  if (!device) return fail(std::move(device.error()));
  challenge.device = std::move(*device);
  auto expires = fields::integer_field(*doc, "expires_at", "", 0, kMaxTime);
  if (!expires) return fail(std::move(expires.error()));
  challenge.expires_at = *expires;

  auto prints = fields::array_field(*doc, "prints", "");
  if (!prints) return fail(std::move(prints.error()));
  const json& list = **prints;
  if (list.empty() || list.size() > kMaxPrints) {
    return fields::format_error(FormatError::Kind::kBadValue, "prints",
                                "\"prints\" must hold 1.." + std::to_string(kMaxPrints) +
                                    " prints, not " + std::to_string(list.size()));
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    std::string where = "prints[" + std::to_string(i) + "].";
    const json& item = list[i];
    if (!item.is_object()) {
      return fields::format_error(
          FormatError::Kind::kWrongType, where.substr(0, where.size() - 1),
          "\"" + where.substr(0, where.size() - 1) + "\" must be an object");
    }
    if (auto keys = fields::check_keys(item, {"print_id", "data"}, where); !keys) {
      return fail(keys.error());
    }
    auto id = fields::string_field(item, "print_id", where, kPrintIdRule);
    if (!id) return fail(std::move(id.error()));
    auto data = fields::base64_field(item, "data", where, 1, kMaxPrintBytes);
    if (!data) return fail(std::move(data.error()));
    challenge.prints.push_back({std::move(*id), std::move(*data)});
  }
  return challenge;
}

// --- assertion -------------------------------------------------------------------------------

const char* match_result_name(MatchResult result) {
  return result == MatchResult::kMatch ? "match" : "no-match";
}

const char* assertion_error_id(AssertionError::Kind kind) {
  switch (kind) {
    case Kind::kMalformed:
      return "malformed";
    case Kind::kBadSignature:
      return "bad_signature";
    case Kind::kWrongNonce:
      return "wrong_nonce";
    case Kind::kWrongUser:
      return "wrong_user";
    case Kind::kWrongDevice:
      return "wrong_device";
    case Kind::kWrongPrint:
      return "wrong_print";
    case Kind::kStale:
      return "stale";
    case Kind::kFromFuture:
      return "from_future";
  }
  return "malformed";
}

std::string AssertionError::describe() const {
  return std::string(assertion_error_id(kind)) + ": " + message;
}

std::string canonical_assertion(const FingerprintAssertion& a) {
  using fields::json_string;
  return "{\"v\":" + std::to_string(kAssertionVersion) + ",\"nonce\":" + json_string(a.nonce) +
         ",\"user\":" + json_string(a.user) + ",\"device\":" + json_string(a.device) +
         ",\"print_id\":" + json_string(a.print_id) +
         ",\"result\":" + json_string(match_result_name(a.result)) +
         ",\"time\":" + std::to_string(a.time) + "}";
}

Result<FingerprintAssertion, AssertionError> parse_canonical_assertion(ByteSpan text) {
  if (text.size() > kMaxCanonicalBytes) {
    return assertion_error(Kind::kMalformed, "assertion is " + std::to_string(text.size()) +
                                                 " bytes; the limit is " +
                                                 std::to_string(kMaxCanonicalBytes));
  }
  auto doc = fields::parse_object(as_chars(text));
  if (!doc) return malformed(doc.error());
  if (auto v = fields::check_version(*doc, kAssertionVersion); !v) return malformed(v.error());
  if (auto keys =
          fields::check_keys(*doc, {"v", "nonce", "user", "device", "print_id", "result", "time"});
      !keys) {
    return malformed(keys.error());
  }
  FingerprintAssertion a;
  auto nonce = nonce_field(*doc);
  if (!nonce) return malformed(nonce.error());
  a.nonce = std::move(*nonce);
  auto user = fields::string_field(*doc, "user", "", kUserRule);
  if (!user) return malformed(user.error());
  a.user = std::move(*user);
  auto device = fields::string_field(*doc, "device", "", kDeviceRule);
  if (!device) return malformed(device.error());
  a.device = std::move(*device);
  auto print_id = fields::string_field(*doc, "print_id", "", kPrintIdRule);
  if (!print_id) return malformed(print_id.error());
  a.print_id = std::move(*print_id);
  auto result = fields::string_field(*doc, "result", "", {1, 16});
  if (!result) return malformed(result.error());
  if (*result == "match") {
    a.result = MatchResult::kMatch;
  } else if (*result == "no-match") {
    a.result = MatchResult::kNoMatch;
  } else {
    return assertion_error(Kind::kMalformed, "\"result\" must be \"match\" or \"no-match\"");
  }
  auto time = fields::integer_field(*doc, "time", "", 0, kMaxTime);
  if (!time) return malformed(time.error());
  a.time = *time;

  // Key order, whitespace, escapes, duplicate keys, number spelling: all differ in bytes.
  if (canonical_assertion(a) != as_chars(text)) {
    return assertion_error(Kind::kMalformed, "assertion is not in canonical form");
  }
  return a;
}

std::string encode_signed_assertion(const SignedAssertion& s) {
  return "{\"assertion\":\"" + base64_encode(s.assertion) + "\",\"signature\":\"" +
         base64_encode(s.signature) + "\"}";
}

Result<SignedAssertion, AssertionError> parse_signed_assertion(ByteSpan wire) {
  if (wire.size() > kMaxAssertionWireBytes) {
    return assertion_error(Kind::kMalformed, "signed assertion is " + std::to_string(wire.size()) +
                                                 " bytes; the limit is " +
                                                 std::to_string(kMaxAssertionWireBytes));
  }
  auto doc = fields::parse_object(as_chars(wire));
  if (!doc) return malformed(doc.error());
  if (auto keys = fields::check_keys(*doc, {"assertion", "signature"}); !keys) {
    return malformed(keys.error());
  }
  SignedAssertion s;
  auto assertion = fields::base64_field(*doc, "assertion", "", 1, kMaxCanonicalBytes);
  if (!assertion) return malformed(assertion.error());
  s.assertion = std::move(*assertion);
  auto signature = fields::base64_field(*doc, "signature", "", crypto::kEd25519SignatureBytes,
                                        crypto::kEd25519SignatureBytes);
  if (!signature) return malformed(signature.error());
  s.signature = std::move(*signature);
  return s;
}

Expected<std::string> sign_assertion(const FingerprintAssertion& assertion, EVP_PKEY* device_key) {
  ENCLAVE_TRY(check_assertion_fields(assertion));
  SignedAssertion s;
  std::string canonical = canonical_assertion(assertion);
  s.assertion.assign(canonical.begin(), canonical.end());
  auto signature = crypto::ed25519_sign(device_key, s.assertion);
  if (!signature) return error_of(signature);
  s.signature = std::move(*signature);
  return encode_signed_assertion(s);
}

Expected<std::string> sign_assertion(const FingerprintAssertion& assertion,
                                     const std::filesystem::path& device_key_pem) {
  auto key = crypto::load_ed25519_private_key(device_key_pem);
  if (!key) return error_of(key);
  return sign_assertion(assertion, key->get());
}

AssertionExpectation expectation_for(const FingerprintChallenge& challenge, std::int64_t now,
                                     std::int64_t max_age) {
  AssertionExpectation expected;
  expected.nonce = challenge.nonce;
  expected.user = challenge.user;
  expected.device = challenge.device;
  for (const EnrolledPrint& print : challenge.prints) expected.print_ids.push_back(print.print_id);
  expected.now = now;
  expected.max_age = max_age;
  return expected;
}

Result<FingerprintAssertion, AssertionError> verify_assertion(
    ByteSpan wire, ByteSpan device_public_key, const AssertionExpectation& expected) {
  auto s = parse_signed_assertion(wire);
  if (!s) return fail(std::move(s.error()));
  // The signature first: the assertion parser only ever sees bytes the device signed.
  if (!crypto::ed25519_verify(device_public_key, s->assertion, s->signature)) {
    return assertion_error(Kind::kBadSignature, "the signature does not verify with device " +
                                                    fields::quoted_name(expected.device) +
                                                    "'s key");
  }
  auto a = parse_canonical_assertion(s->assertion);
  if (!a) return a;

  if (!constant_time_equal(as_bytes(a->nonce), as_bytes(expected.nonce))) {
    return assertion_error(Kind::kWrongNonce, "the assertion answers another challenge");
  }
  if (a->user != expected.user) {
    return assertion_error(Kind::kWrongUser, "the assertion is for user " +
                                                 fields::quoted_name(a->user) + ", not " +
                                                 fields::quoted_name(expected.user));
  }
  if (a->device != expected.device) {
    return assertion_error(Kind::kWrongDevice, "the assertion names device " +
                                                   fields::quoted_name(a->device) + ", not " +
                                                   fields::quoted_name(expected.device));
  }
  if (std::find(expected.print_ids.begin(), expected.print_ids.end(), a->print_id) ==
      expected.print_ids.end()) {
    return assertion_error(Kind::kWrongPrint, "print " + fields::quoted_name(a->print_id) +
                                                  " was not offered to user " +
                                                  fields::quoted_name(expected.user));
  }
  if (a->time < expected.now && distance(expected.now, a->time) > non_negative(expected.max_age)) {
    return assertion_error(Kind::kStale, "the assertion is " +
                                             std::to_string(distance(expected.now, a->time)) +
                                             " s old; at most " + std::to_string(expected.max_age) +
                                             " s are accepted");
  }
  if (a->time > expected.now &&
      distance(a->time, expected.now) > non_negative(expected.max_clock_skew)) {
    return assertion_error(Kind::kFromFuture, "the assertion is dated " +
                                                  std::to_string(distance(a->time, expected.now)) +
                                                  " s ahead of the center's clock; at most " +
                                                  std::to_string(expected.max_clock_skew) +
                                                  " s are accepted");
  }
  return a;
}

}  // namespace enclave::login
