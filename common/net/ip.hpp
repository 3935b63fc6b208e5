// IPv4 and IPv6 addresses and CIDR networks: the one implementation the registry (site pools),
// the gateway (login admission, the VICI check) and tickets (the source binding) share.
// Pure: no I/O, no Boost; parsing goes through inet_pton, printing through inet_ntop.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::net {

struct IpError {
  enum class Kind {
    kNotAnAddress,  // IpAddress::parse: not an IPv4 or IPv6 address
    kNoPrefix,      // IpNetwork::parse: no "/N"
    kBadAddress,    // the part before "/" is no IPv4 or IPv6 address (or an IPv4-mapped one)
    kBadPrefix,     // not a decimal number within 0..32 (IPv4) or 0..128 (IPv6)
    kHostBitsSet,   // "10.8.0.1/24": bits beyond the prefix are set
  };
  Kind kind = Kind::kNotAnAddress;
  // What was parsed: at most its first 64 bytes, control characters shown as '?' (the text
  // may come from a peer and ends up in logs).
  std::string text;

  std::string describe() const;  // names the text and what is wrong with it
};

template <class T>
using IpResult = Result<T, IpError>;

// An IPv4 or IPv6 address. An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is its IPv4 address:
// that is how a dual-stack socket reports an IPv4 client, so "192.0.2.7" and
// "::ffff:192.0.2.7" compare equal.
class IpAddress {
 public:
  enum class Family : std::uint8_t { kV4, kV6 };

  // A dotted quad ("192.0.2.7") or RFC 4291 text ("2001:db8::1"): no zone ("%eth0"), no
  // surrounding space, no NUL. kNotAnAddress for anything else.
  static IpResult<IpAddress> parse(std::string_view text);
  // Network-order bytes as a socket API hands them over.
  static IpAddress from_v4_bytes(const std::array<std::uint8_t, 4>& bytes);
  static IpAddress from_v6_bytes(const std::array<std::uint8_t, 16>& bytes);  // folds IPv4-mapped

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // 4 bytes (IPv4) or 16 (IPv6), network order.
  ByteSpan bytes() const { return ByteSpan(bytes_.data(), is_v4() ? 4 : 16); }
  std::string text() const;  // canonical: "192.0.2.7", "2001:db8::1"

  // Every IPv4 address orders before every IPv6 one, then by bytes.
  bool operator==(const IpAddress&) const = default;
  std::strong_ordering operator<=>(const IpAddress&) const = default;

 private:
  friend class IpNetwork;  // parses a network's base address without the IPv4-mapped folding
  Family family_ = Family::kV4;
  std::array<std::uint8_t, 16> bytes_{};  // INVARIANT: bytes 4..15 are zero for IPv4
};

// A CIDR network: "10.8.0.0/24", "2001:db8:5::/64". The address is the network's first one:
// "10.8.0.1/24" is refused (kHostBitsSet) as a typo rather than read as 10.8.0.0/24.
class IpNetwork {
 public:
  static IpResult<IpNetwork> parse(std::string_view text);

  bool contains(const IpAddress& address) const;  // false across families
  bool overlaps(const IpNetwork& other) const;    // false across families
  int prefix() const { return prefix_; }
  const IpAddress& base() const { return base_; }
  std::string text() const;  // canonical, e.g. "2001:db8:5::/64"
  bool operator==(const IpNetwork&) const = default;

 private:
  IpAddress base_;
  int prefix_ = 0;
};

}  // namespace enclave::net
