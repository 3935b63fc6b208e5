#include "sessionmgr/core/ticket.hpp"

#include <algorithm>
#include <array>

#include "common/bytes.hpp"
#include "common/net/ip.hpp"

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
  auto parsed = net::IpAddress::parse(address);
  if (!parsed) return std::nullopt;
  return parsed->text();
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
