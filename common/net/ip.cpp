#include "common/net/ip.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <optional>

namespace enclave::net {

namespace {

using Kind = IpError::Kind;

// The longest text of an address ("0000:0000:0000:0000:0000:ffff:255.255.255.255").
constexpr std::size_t kMaxAddressText = INET6_ADDRSTRLEN - 1;
constexpr std::size_t kMaxQuoted = 64;

constexpr std::array<std::uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

Unexpected<IpError> ip_error(Kind kind, std::string_view text) {
  std::string shown(text.substr(0, kMaxQuoted));
  std::replace_if(
      shown.begin(), shown.end(),
      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }, '?');
  return fail(IpError{kind, std::move(shown)});
}

struct RawAddress {
  IpAddress::Family family = IpAddress::Family::kV4;
  std::array<std::uint8_t, 16> bytes{};
};

// inet_pton over a string_view, without folding IPv4-mapped addresses. inet_pton reads a C
// string: an embedded NUL would cut the text short, so such text is refused here.
std::optional<RawAddress> parse_raw(std::string_view text) {
  if (text.empty() || text.size() > kMaxAddressText || text.find('\0') != std::string_view::npos) {
    return std::nullopt;
  }
  char terminated[kMaxAddressText + 1] = {};
  std::memcpy(terminated, text.data(), text.size());
  RawAddress raw;
  if (::inet_pton(AF_INET, terminated, raw.bytes.data()) == 1) return raw;
  raw.bytes.fill(0);
  if (::inet_pton(AF_INET6, terminated, raw.bytes.data()) != 1) return std::nullopt;
  raw.family = IpAddress::Family::kV6;
  return raw;
}

bool is_v4_mapped(const std::array<std::uint8_t, 16>& bytes) {
  return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), bytes.begin());
}

// Leading bits of a and b agree for `bits` bits.
bool same_prefix(ByteSpan a, ByteSpan b, int bits) {
  for (std::size_t i = 0; bits > 0; ++i, bits -= 8) {
    const int take = std::min(bits, 8);
    const auto mask = static_cast<std::uint8_t>(0xFF << (8 - take));
    if ((a[i] & mask) != (b[i] & mask)) return false;
  }
  return true;
}

}  // namespace

std::string IpError::describe() const {
  const std::string quoted = "\"" + text + "\"";
  switch (kind) {
    case Kind::kNotAnAddress:
      return quoted + " is not an IP address";
    case Kind::kNoPrefix:
      return quoted + " is not a network: expected ADDRESS/PREFIX, e.g. 10.8.0.0/24";
    case Kind::kBadAddress:
      return quoted + ": the part before \"/\" is not an IPv4 or IPv6 address";
    case Kind::kBadPrefix:
      return quoted + ": the prefix length must be 0..32 for IPv4 and 0..128 for IPv6";
    case Kind::kHostBitsSet:
      return quoted + ": bits beyond the prefix are set (write the network's first address)";
  }
  return quoted;
}

IpResult<IpAddress> IpAddress::parse(std::string_view text) {
  const auto raw = parse_raw(text);
  if (!raw) return ip_error(Kind::kNotAnAddress, text);
  if (raw->family == Family::kV4) {
    IpAddress a;
    std::copy_n(raw->bytes.begin(), 4, a.bytes_.begin());
    return a;
  }
  return from_v6_bytes(raw->bytes);
}

IpAddress IpAddress::from_v4_bytes(const std::array<std::uint8_t, 4>& bytes) {
  IpAddress a;
  std::copy(bytes.begin(), bytes.end(), a.bytes_.begin());
  return a;
}

IpAddress IpAddress::from_v6_bytes(const std::array<std::uint8_t, 16>& bytes) {
  IpAddress a;
  if (is_v4_mapped(bytes)) {
    std::copy_n(bytes.begin() + 12, 4, a.bytes_.begin());
    return a;
  }
  a.family_ = Family::kV6;
  a.bytes_ = bytes;
  return a;
}

std::string IpAddress::text() const {
  char out[INET6_ADDRSTRLEN] = {};
  if (!::inet_ntop(is_v4() ? AF_INET : AF_INET6, bytes_.data(), out, sizeof out)) return {};
  return out;
}

IpResult<IpNetwork> IpNetwork::parse(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return ip_error(Kind::kNoPrefix, text);
  const std::string_view digits = text.substr(slash + 1);
  // A network's address is written as such: "::ffff:10.8.0.0/120" is refused rather than
  // guessed at.
  const auto raw = parse_raw(text.substr(0, slash));
  if (!raw || (raw->family == IpAddress::Family::kV6 && is_v4_mapped(raw->bytes))) {
    return ip_error(Kind::kBadAddress, text);
  }
  IpNetwork n;
  n.base_.family_ = raw->family;
  n.base_.bytes_ = raw->bytes;
  const int max = raw->family == IpAddress::Family::kV4 ? 32 : 128;
  // Decimal without sign or leading zeros: "24", "0"; not "024", "+24", " 24".
  if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits[0] == '0')) {
    return ip_error(Kind::kBadPrefix, text);
  }
  int prefix = -1;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (ec != std::errc() || end != digits.data() + digits.size() || prefix < 0 || prefix > max) {
    return ip_error(Kind::kBadPrefix, text);
  }
  n.prefix_ = prefix;
  const ByteSpan bytes = n.base_.bytes();
  for (int bit = prefix; bit < max; ++bit) {
    if (bytes[static_cast<std::size_t>(bit / 8)] & (0x80 >> (bit % 8))) {
      return ip_error(Kind::kHostBitsSet, text);
    }
  }
  return n;
}

bool IpNetwork::contains(const IpAddress& address) const {
  if (address.family() != base_.family()) return false;
  return same_prefix(address.bytes(), base_.bytes(), prefix_);
}

bool IpNetwork::overlaps(const IpNetwork& other) const {
  if (base_.family() != other.base_.family()) return false;
  return same_prefix(base_.bytes(), other.base_.bytes(), std::min(prefix_, other.prefix_));
}

std::string IpNetwork::text() const {
  return base_.text() + "/" + std::to_string(prefix_);
}

}  // namespace enclave::net
