#include "common/clock.hpp"

#include <cstdio>
#include <ctime>

namespace enclave {

std::int64_t to_unix_ms(WallTime t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

WallTime from_unix_ms(std::int64_t ms) {
  return WallTime(std::chrono::duration_cast<WallTime::duration>(std::chrono::milliseconds(ms)));
}

std::string format_rfc3339(WallTime t) {
  const std::int64_t ms = to_unix_ms(t);
  const std::int64_t secs = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;  // floor, before 1970 too
  const auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string utc_now_rfc3339() {
  return format_rfc3339(std::chrono::system_clock::now());
}

}  // namespace enclave
