// Fuzzes the fingerprint factor's formats (common/login/assertion.hpp): the challenge the
// kiosk reads and the signed assertion the center reads. Oracles: a challenge that parses
// encodes and parses back unchanged; a canonical assertion that parses is byte for byte its
// own encoding; a signed assertion that parses re-encodes to the same value; and whatever
// canonical assertion the fuzzer finds, signed by a device key, verifies against exactly its
// own bindings and fails as a bad signature once a bit of the signature flips.
#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/ed25519.hpp"
#include "common/login/assertion.hpp"

namespace {

using namespace enclave;
using namespace enclave::login;

void check(bool condition) {
  if (!condition) __builtin_trap();
}

// A fixed device key, so runs are reproducible.
EVP_PKEY* device_key() {
  static EVP_PKEY* key = [] {
    std::uint8_t seed[32];
    for (std::size_t i = 0; i < sizeof seed; ++i) seed[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed, sizeof seed);
  }();
  return key;
}

void check_challenge(ByteSpan input) {
  auto challenge = parse_challenge(input);
  if (!challenge) return;
  auto encoded = encode_challenge(*challenge);
  check(encoded.has_value());
  auto again = parse_challenge(as_bytes(*encoded));
  check(again.has_value());
  check(*again == *challenge);
}

void check_canonical(ByteSpan input) {
  auto assertion = parse_canonical_assertion(input);
  if (!assertion) return;
  check(canonical_assertion(*assertion) == as_chars(input));

  auto wire = sign_assertion(*assertion, device_key());
  check(wire.has_value());
  auto public_key = crypto::ed25519_public_key(device_key());
  check(public_key.has_value());
  AssertionExpectation expected;
  expected.nonce = assertion->nonce;
  expected.user = assertion->user;
  expected.device = assertion->device;
  expected.print_ids = {assertion->print_id};
  expected.now = assertion->time;
  auto verified = verify_assertion(as_bytes(*wire), *public_key, expected);
  check(verified.has_value());
  check(*verified == *assertion);

  auto signed_assertion = parse_signed_assertion(as_bytes(*wire));
  check(signed_assertion.has_value());
  signed_assertion->signature[input.size() % signed_assertion->signature.size()] ^= 0x20;
  auto forged =
      verify_assertion(as_bytes(encode_signed_assertion(*signed_assertion)), *public_key, expected);
  check(!forged.has_value() && forged.error().kind == AssertionError::Kind::kBadSignature);
}

void check_signed(ByteSpan input) {
  auto signed_assertion = parse_signed_assertion(input);
  if (!signed_assertion) return;
  auto again = parse_signed_assertion(as_bytes(encode_signed_assertion(*signed_assertion)));
  check(again.has_value());
  check(*again == *signed_assertion);
  check_canonical(signed_assertion->assertion);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ByteSpan input(data, size);
  check_challenge(input);
  check_canonical(input);
  check_signed(input);
  return 0;
}
