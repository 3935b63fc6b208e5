// The fingerprint factor of a login: the challenge the center sends to the kiosk with the
// fingerprint prompt, and the assertion the kiosk signs with its device key after matching
// the finger with libfprint against the prints in the challenge.
//
// Challenge (UTF-8 JSON, at most kMaxChallengeBytes):
//   {"v":1,"nonce":<64 hex>,"user","device","prints":[{"print_id","data":<base64 of the
//    serialised libfprint print>}],"expires_at":<unix seconds>}
// Assertion, canonical form (these bytes are what the device signs; any other spelling of
// the same content is refused, so that signer and verifier can never read different values):
//   {"v":1,"nonce":<64 lowercase hex>,"user":..,"device":..,"print_id":..,
//    "result":"match"|"no-match","time":<unix seconds>}
//   keys in exactly this order, no whitespace, strings escaped as RFC 8259 requires and no
//   more (", \, control characters; \b \f \n \r \t, others \u00xx), UTF-8 otherwise as is.
// On the wire: {"assertion":base64(canonical bytes),"signature":base64(64-byte Ed25519)}.
//
// The nonce is the center's, fresh per challenge and single use (the caller keeps it until
// the challenge expires and forgets it after one verification): that is what makes a replayed
// assertion fail, whatever its time says.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

#include "common/bytes.hpp"
#include "common/login/format.hpp"
#include "common/result.hpp"

namespace enclave::login {

inline constexpr int kChallengeVersion = 1;
inline constexpr int kAssertionVersion = 1;
inline constexpr std::size_t kNonceBytes = 32;
// A challenge travels inside one login message (at most 64 KiB, JSON-escaped once more).
inline constexpr std::size_t kMaxChallengeBytes = 60 * 1024;
inline constexpr std::size_t kMaxPrints = 10;
inline constexpr std::size_t kMaxPrintBytes = 40 * 1024;
inline constexpr std::size_t kMaxAssertionWireBytes = 4096;
// Field limits, in bytes, shared by challenge and assertion.
inline constexpr std::size_t kMaxUserBytes = 256;
inline constexpr std::size_t kMaxDeviceBytes = 256;
inline constexpr std::size_t kMaxPrintIdBytes = 128;

struct EnrolledPrint {
  std::string print_id;
  Bytes data;  // fp_print_serialize's output

  bool operator==(const EnrolledPrint&) const = default;
};

struct FingerprintChallenge {
  std::string nonce;  // 64 lowercase hex digits (kNonceBytes random bytes)
  std::string user;
  std::string device;
  std::vector<EnrolledPrint> prints;  // 1..kMaxPrints
  std::int64_t expires_at = 0;        // unix seconds

  bool operator==(const FingerprintChallenge&) const = default;
};

// kNonceBytes from OpenSSL's CSPRNG as lowercase hex; kUnavailable if it cannot be seeded.
Expected<std::string> new_nonce();

// kInvalidArgument (naming the user and device) when a field breaks the limits parse_challenge
// enforces, or the text would exceed kMaxChallengeBytes.
Expected<std::string> encode_challenge(const FingerprintChallenge& challenge);
Result<FingerprintChallenge, FormatError> parse_challenge(ByteSpan text);

enum class MatchResult { kMatch, kNoMatch };
const char* match_result_name(MatchResult result);  // "match", "no-match"

struct FingerprintAssertion {
  std::string nonce;  // the challenge's
  std::string user;
  std::string device;
  std::string print_id;  // the enrolled print the finger was compared with
  MatchResult result = MatchResult::kNoMatch;
  std::int64_t time = 0;  // unix seconds, the kiosk's clock

  bool operator==(const FingerprintAssertion&) const = default;
};

struct AssertionError {
  enum class Kind {
    kMalformed,     // not the wire form, or the signed bytes are not a canonical assertion
    kBadSignature,  // not signed by this device's key (or altered on the way)
    kWrongNonce,    // answers another challenge: a replay, or a stale or foreign challenge
    kWrongUser,
    kWrongDevice,  // signed by the right key but naming another device
    kWrongPrint,   // a print the challenge did not offer
    kStale,        // older than max_age
    kFromFuture,   // ahead of the center's clock by more than max_clock_skew
  };
  Kind kind = Kind::kMalformed;
  std::string message;

  std::string describe() const;
};

// Stable identifiers for audit events: "malformed", "bad_signature", "wrong_nonce", ...
const char* assertion_error_id(AssertionError::Kind kind);

// The exact bytes a device signs.
std::string canonical_assertion(const FingerprintAssertion& assertion);
// kMalformed unless text is exactly canonical_assertion of what it holds.
Result<FingerprintAssertion, AssertionError> parse_canonical_assertion(ByteSpan text);

// The wire form, decoded but not verified.
struct SignedAssertion {
  Bytes assertion;  // canonical bytes, as signed
  Bytes signature;  // crypto::kEd25519SignatureBytes

  bool operator==(const SignedAssertion&) const = default;
};
std::string encode_signed_assertion(const SignedAssertion& signed_assertion);
Result<SignedAssertion, AssertionError> parse_signed_assertion(ByteSpan wire);

// The wire text. kInvalidArgument for a key that is not an Ed25519 private key, or a field
// beyond the limits the verifier accepts.
Expected<std::string> sign_assertion(const FingerprintAssertion& assertion, EVP_PKEY* device_key);
// The key from a PEM file (crypto::load_ed25519_private_key: 0600, Ed25519).
Expected<std::string> sign_assertion(const FingerprintAssertion& assertion,
                                     const std::filesystem::path& device_key_pem);

struct AssertionExpectation {
  std::string nonce;  // the challenge's
  std::string user;
  std::string device;
  std::vector<std::string> print_ids;  // the prints the challenge offered
  std::int64_t now = 0;                // unix seconds, the center's clock
  std::int64_t max_age = 120;          // seconds
  std::int64_t max_clock_skew = 5;     // seconds the kiosk's clock may run ahead
};

// What the challenge asked for, at `now`.
AssertionExpectation expectation_for(const FingerprintChallenge& challenge, std::int64_t now,
                                     std::int64_t max_age);

// Checks, in this order: the wire form, the signature by device_public_key (raw 32 bytes)
// over the exact bytes, the canonical form, then nonce (constant time), user, device, print,
// and time. A valid "no-match" assertion is returned like a "match": the caller judges.
Result<FingerprintAssertion, AssertionError> verify_assertion(ByteSpan wire,
                                                              ByteSpan device_public_key,
                                                              const AssertionExpectation& expected);

}  // namespace enclave::login
