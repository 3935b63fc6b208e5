#include "sessionmgr/core/ticket.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/bytes.hpp"

namespace enclave::sessionmgr {

std::string make_ticket(const RandomSource& random) {
  std::array<std::uint8_t, kTicketBytes> bytes{};
  random(bytes);
  std::string ticket = hex_encode(bytes);
  secure_wipe(bytes.data(), bytes.size());
  return ticket;
}

bool is_ticket_syntax(std::string_view ticket) {
  return ticket.size() == kTicketChars && std::all_of(ticket.begin(), ticket.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
         });
}

std::string ticket_hash(std::string_view ticket) {
  std::string lower(ticket);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return c >= 'A' && c <= 'F' ? static_cast<char>(c + 32) : c; });
  std::string hash = sha256_hex(as_bytes(lower));
  secure_wipe(lower.data(), lower.size());
  return hash;
}

std::optional<std::string> canonical_address(std::string_view address) {
  if (address.empty() || address.size() > 64) return std::nullopt;
  std::string text(address);
  char out[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    if (!::inet_ntop(AF_INET, &v4, out, sizeof out)) return std::nullopt;
    return std::string(out);
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) != 1) return std::nullopt;
  static constexpr std::array<std::uint8_t, 12> kMapped = {0, 0, 0, 0, 0,    0,
                                                           0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped.begin(), kMapped.end(), v6.s6_addr)) {
    std::memcpy(&v4, v6.s6_addr + 12, 4);
    if (!::inet_ntop(AF_INET, &v4, out, sizeof out)) return std::nullopt;
    return std::string(out);
  }
  if (!::inet_ntop(AF_INET6, &v6, out, sizeof out)) return std::nullopt;
  return std::string(out);
}

const char* refusal_text(Refusal refusal) {
  switch (refusal) {
    case Refusal::kUnknown:
      return "unknown";
    case Refusal::kExpired:
      return "expired";
    case Refusal::kAlreadyUsed:
      return "already used";
    case Refusal::kWrongSource:
      return "wrong source address";
    case Refusal::kDesktopUnavailable:
      return "desktop unavailable";
  }
  return "unknown";
}

std::optional<Refusal> check_redemption(const std::optional<TicketRecord>& record,
                                        std::string_view source, TimePoint now,
                                        bool desktop_healthy) {
  if (!record) return Refusal::kUnknown;
  if (record->used) return Refusal::kAlreadyUsed;
  if (now >= record->expires_at || !record->session_open) return Refusal::kExpired;
  auto from = canonical_address(source);
  if (!from || *from != record->source) return Refusal::kWrongSource;
  if (!desktop_healthy) return Refusal::kDesktopUnavailable;
  return std::nullopt;
}

}  // namespace enclave::sessionmgr
