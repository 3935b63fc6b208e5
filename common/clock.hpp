// Wall-clock time as people, reports and the SQLite stores read it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace enclave {

using WallTime = std::chrono::system_clock::time_point;

// Milliseconds since the Unix epoch (how the stores keep times), and back.
std::int64_t to_unix_ms(WallTime t);
WallTime from_unix_ms(std::int64_t ms);

// RFC 3339 UTC to the second: "2026-11-30T12:21:56Z".
std::string format_rfc3339(WallTime t);

// The current UTC time to the second, RFC 3339.
std::string utc_now_rfc3339();

}  // namespace enclave
