// One-time tickets (design "The login path", step 5): 256 random bits shown once as 64 hex
// characters, stored only as their SHA-256, bound to one session (and so to its user, device
// and desktop) and to the client's source address, valid for about a minute, used once.
//
// Pure functions: the randomness and the time are passed in. The service makes "used once"
// atomic in SQLite (UPDATE ... WHERE used = 0); check_redemption decides everything else.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace enclave::sessionmgr {

using TimePoint = std::chrono::system_clock::time_point;

inline constexpr std::size_t kTicketBytes = 32;  // 256 bits
inline constexpr std::size_t kTicketChars = 2 * kTicketBytes;

// Fills its argument with cryptographically secure random bytes (OpenSSL RAND_bytes in the
// service; a fixed sequence in tests).
using RandomSource = std::function<void(std::span<std::uint8_t>)>;

// 64 lowercase hex characters.
std::string make_ticket(const RandomSource& random);
// 64 hex characters (either case): anything else is refused before it reaches the database.
bool is_ticket_syntax(std::string_view ticket);
// Lowercase hex SHA-256 of the ticket's lowercase text: the only form that is stored.
std::string ticket_hash(std::string_view ticket);

// An IP address in canonical text ("192.0.2.7", "2001:db8::1"; an IPv4-mapped IPv6 address
// becomes its IPv4 form), or nullopt when the text is not an address (net::IpAddress).
std::optional<std::string> canonical_address(std::string_view address);

// A stored ticket as redemption sees it.
struct TicketRecord {
  std::string session_id;
  std::string source;  // canonical
  TimePoint expires_at;
  bool used = false;
  bool session_open = true;  // the session has not ended
};

enum class Refusal { kUnknown, kExpired, kAlreadyUsed, kWrongSource, kDesktopUnavailable };

// The text after "ticket refused: " in the error, and the audit event's reason.
const char* refusal_text(Refusal refusal);

// In order: the ticket exists, is unused, has not expired (nor has its session ended), comes
// from the address it was issued for, and its desktop is still healthy. nullopt: redeem it.
std::optional<Refusal> check_redemption(const std::optional<TicketRecord>& record,
                                        std::string_view source, TimePoint now,
                                        bool desktop_healthy);

}  // namespace enclave::sessionmgr
