#include "common/bytes.hpp"

#include <gtest/gtest.h>

#include <set>

#include "common/result.hpp"

namespace enclave {
namespace {

Bytes bytes_of(std::string_view s) {
  ByteSpan b = as_bytes(s);
  return Bytes(b.begin(), b.end());
}

TEST(Hex, EncodesLowercase) {
  EXPECT_EQ(hex_encode(ByteSpan()), "");
  const Bytes data = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xff};
  EXPECT_EQ(hex_encode(data), "00017f80abff");
}

TEST(Hex, DecodesEitherCase) {
  EXPECT_EQ(hex_decode(""), Bytes());
  EXPECT_EQ(hex_decode("00017f80abff"), (Bytes{0x00, 0x01, 0x7f, 0x80, 0xab, 0xff}));
  EXPECT_EQ(hex_decode("ABff"), (Bytes{0xab, 0xff}));
}

TEST(Hex, RejectsOddLengthAndNonHexDigits) {
  for (std::string_view bad : {"0", "abc", "0g", "g0", "zz", " 00", "00 ", "0x00", "-1", "+1"}) {
    EXPECT_EQ(hex_decode(bad), std::nullopt) << bad;
  }
}

TEST(Hex, RoundTripsEveryByte) {
  Bytes all(256);
  for (int i = 0; i < 256; ++i) all[i] = static_cast<std::uint8_t>(i);
  const std::string hex = hex_encode(all);
  EXPECT_EQ(hex.size(), 512u);
  EXPECT_EQ(hex_decode(hex), all);
}

// RFC 4648 section 10 test vectors.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string_view, std::string_view> vectors[] = {
      {"", ""},
      {"f", "Zg=="},
      {"fo", "Zm8="},
      {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="},
      {"fooba", "Zm9vYmE="},
      {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), bytes_of(plain)) << encoded;
  }
}

TEST(Base64, UsesTheStandardAlphabet) {
  const Bytes data = {0xfb, 0xff, 0xbf};
  EXPECT_EQ(base64_encode(data), "+/+/");
  EXPECT_EQ(base64_decode("+/+/"), data);
  EXPECT_EQ(base64_decode("-_-_"), std::nullopt);  // base64url is a different encoding
}

TEST(Base64, RejectsNonCanonicalInput) {
  for (std::string_view bad : {
           "Zg",        // padding missing
           "Zg=",       // padding short
           "Zg===",     // too long
           "Zh==",      // dropped bits not zero
           "Zm9=",      // dropped bits not zero (one pad)
           "Z===",      // three pads
           "====",      // only padding
           "=Zg=",      // pad first
           "Zg=a",      // data after padding
           "Zg==Zg==",  // padding in the middle
           "Zm8=Zm9v",  // padding in the middle
           "Zm9\n",     // whitespace, still a multiple of four long
           "Z m9",      // whitespace
           "Zm9v====",  // a block of padding
           "Zm9*",      // not in the alphabet
       }) {
    EXPECT_EQ(base64_decode(bad), std::nullopt) << bad;
  }
  const std::string with_nul("Zm9\0", 4);
  EXPECT_EQ(base64_decode(with_nul), std::nullopt);
}

TEST(Base64, RoundTripsEveryLengthAndByte) {
  Bytes data;
  for (int n = 0; n < 300; ++n) {
    const std::string encoded = base64_encode(data);
    EXPECT_EQ(encoded.size(), (data.size() + 2) / 3 * 4);
    EXPECT_EQ(base64_decode(encoded), data) << n;
    data.push_back(static_cast<std::uint8_t>(n * 37 + 11));
  }
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  const Bytes a = {1, 2, 3, 4};
  EXPECT_TRUE(constant_time_equal(a, Bytes{1, 2, 3, 4}));
  EXPECT_TRUE(constant_time_equal(ByteSpan(), ByteSpan()));
  EXPECT_FALSE(constant_time_equal(a, Bytes{0, 2, 3, 4}));  // first byte
  EXPECT_FALSE(constant_time_equal(a, Bytes{1, 2, 3, 5}));  // last byte
  EXPECT_FALSE(constant_time_equal(a, Bytes{1, 2, 3}));     // prefix
  EXPECT_FALSE(constant_time_equal(a, Bytes{1, 2, 3, 4, 0}));
  EXPECT_FALSE(constant_time_equal(a, ByteSpan()));
}

TEST(SecureWipe, ZeroesTheBuffer) {
  Bytes secret = {9, 8, 7, 6, 5};
  secure_wipe(secret.data(), secret.size());
  EXPECT_EQ(secret, Bytes(5, 0));
}

TEST(ReadCursor, ReadsBigEndian) {
  const Bytes data = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
                      0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11};
  ReadCursor c(data);
  EXPECT_EQ(c.u8(), 0x01);
  EXPECT_EQ(c.u16be(), 0x0203);
  EXPECT_EQ(c.u32be(), 0x04050607u);
  EXPECT_EQ(c.u64be(), 0x08090a0b0c0d0e0fULL);
  EXPECT_EQ(c.position(), 15u);
  EXPECT_EQ(c.remaining(), 2u);
  auto rest = c.take(2);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(Bytes(rest->begin(), rest->end()), (Bytes{0x10, 0x11}));
  EXPECT_TRUE(c.empty());
}

TEST(ReadCursor, FailedReadsLeaveThePositionAlone) {
  const Bytes data = {0xaa, 0xbb, 0xcc};
  ReadCursor c(data);
  ASSERT_EQ(c.u8(), 0xaa);
  EXPECT_EQ(c.u32be(), std::nullopt);
  EXPECT_EQ(c.u64be(), std::nullopt);
  EXPECT_EQ(c.take(3), std::nullopt);
  EXPECT_EQ(c.take(SIZE_MAX), std::nullopt);  // no overflow in the bounds check
  EXPECT_EQ(c.position(), 1u);
  EXPECT_EQ(c.u16be(), 0xbbcc);
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.u8(), std::nullopt);
  EXPECT_EQ(c.u16be(), std::nullopt);
  auto none = c.take(0);
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(c.position(), 3u);
}

TEST(ReadCursor, EmptyInput) {
  ReadCursor c{ByteSpan()};
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.u8(), std::nullopt);
  EXPECT_EQ(c.take(1), std::nullopt);
}

TEST(WriteCursor, WritesBigEndianAndRoundTrips) {
  Bytes out;
  WriteCursor w(out);
  w.u8(0x01);
  w.u16be(0x0203);
  w.u32be(0x04050607);
  w.u64be(0x08090a0b0c0d0e0fULL);
  w.put(Bytes{0x10, 0x11});
  EXPECT_EQ(hex_encode(out), "0102030405060708090a0b0c0d0e0f1011");
  ReadCursor r(out);
  EXPECT_EQ(r.u8(), 0x01);
  EXPECT_EQ(r.u16be(), 0x0203);
  EXPECT_EQ(r.u32be(), 0x04050607u);
  EXPECT_EQ(r.u64be(), 0x08090a0b0c0d0e0fULL);
  EXPECT_EQ(r.remaining(), 2u);
}

TEST(AsBytes, ViewsTheSameMemory) {
  const std::string s("a\0b", 3);
  ByteSpan b = as_bytes(s);
  EXPECT_EQ(b.size(), 3u);
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(as_chars(b), s);
}

constexpr Errc kAllErrc[] = {Errc::kInvalidArgument, Errc::kNotFound,    Errc::kAlreadyExists,
                             Errc::kCorrupt,         Errc::kIo,          Errc::kNoSpace,
                             Errc::kPermission,      Errc::kUnavailable, Errc::kTimeout,
                             Errc::kConflict,        Errc::kInternal};

TEST(Errc, IdsRoundTripAndAreDistinctSnakeCase) {
  std::set<std::string> ids;
  for (Errc c : kAllErrc) {
    const std::string id = errc_id(c);
    EXPECT_EQ(errc_from_id(id), c) << id;
    EXPECT_TRUE(ids.insert(id).second) << "duplicate id " << id;
    for (char ch : id) EXPECT_TRUE((ch >= 'a' && ch <= 'z') || ch == '_') << id;
    EXPECT_NE(std::string(errc_name(c)), "unknown");
  }
  EXPECT_EQ(errc_id(Errc::kNoSpace), std::string("no_space"));
  EXPECT_EQ(errc_from_id("No_Space"), std::nullopt);
  EXPECT_EQ(errc_from_id(""), std::nullopt);
  EXPECT_EQ(errc_from_id("bogus"), std::nullopt);
}

TEST(Error, DescribeNamesTheCode) {
  Error e{Errc::kNoSpace, "db: full"};
  EXPECT_EQ(e.describe(), "no space left: db: full");
}

Expected<int> parse_positive(int v) {
  if (v <= 0) return fail(Errc::kInvalidArgument, "not positive");
  return v;
}

Status check_both(int a, int b) {
  ENCLAVE_TRY(parse_positive(a));
  ENCLAVE_TRY(parse_positive(b));
  return {};
}

Expected<std::string> passes_error_on(int v) {
  auto parsed = parse_positive(v);
  if (!parsed) return error_of(parsed);
  return std::to_string(*parsed);
}

TEST(Result, ValuesErrorsAndPropagation) {
  auto ok = parse_positive(3);
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(*ok, 3);
  auto bad = parse_positive(0);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(bad.error().message, "not positive");

  EXPECT_TRUE(check_both(1, 2).has_value());
  auto second = check_both(1, -2);
  ASSERT_FALSE(second.has_value());
  EXPECT_EQ(second.error().message, "not positive");

  EXPECT_EQ(passes_error_on(7).value(), "7");
  auto passed = passes_error_on(-1);
  ASSERT_FALSE(passed.has_value());
  EXPECT_EQ(passed.error().code, Errc::kInvalidArgument);
}

TEST(Sha256, MatchesPublishedVectors) {
  // FIPS 180-2 examples.
  EXPECT_EQ(sha256_hex(as_bytes("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(as_bytes("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

}  // namespace
}  // namespace enclave

namespace enclave {
namespace {

TEST(Sha256Stream, PiecesHashLikeTheWholeAndTheStreamStartsOver) {
  const std::string text = "The quick brown fox jumps over the lazy dog";
  Sha256Stream stream;
  for (std::size_t at = 0; at < text.size(); at += 7) {
    stream.update(as_bytes(std::string_view(text).substr(at, 7)));
  }
  EXPECT_EQ(stream.hex_final(), "d7a8fbb307d7809469ca9abcb0082e4f8d5651e46d3cdb762d02d0bf37c9e592");
  EXPECT_EQ(stream.hex_final(), sha256_hex({}));
}

TEST(Utf8Prefix, CutsBetweenCharactersOnly) {
  const std::string text = "ab\u3042\u3044c";  // a, b, two 3-byte characters, c: 9 bytes
  EXPECT_EQ(utf8_prefix(text, 100), text);
  EXPECT_EQ(utf8_prefix(text, 9), text);
  EXPECT_EQ(utf8_prefix(text, 8), "ab\u3042\u3044");
  EXPECT_EQ(utf8_prefix(text, 7), "ab\u3042");  // not the first two bytes of \u3044
  EXPECT_EQ(utf8_prefix(text, 6), "ab\u3042");
  EXPECT_EQ(utf8_prefix(text, 4), "ab");
  EXPECT_EQ(utf8_prefix(text, 2), "ab");
  EXPECT_EQ(utf8_prefix(text, 0), "");
  for (std::size_t n = 0; n <= text.size(); ++n) {
    EXPECT_TRUE(is_valid_utf8(utf8_prefix(text, n))) << n;
  }
}

}  // namespace
}  // namespace enclave
