// Back-off after failed fingerprint matches (NIST SP 800-63B, 5.2.3): after `free_attempts`
// consecutive failures each further attempt waits at least `first_delay`, doubling with every
// failure after that, up to `max_delay`. A success resets the count. Pure: pam_enclave_fingerprint
// keeps the state per user in its own SQLite file.
#pragma once

#include <chrono>

namespace enclave::sessionmgr {

struct BackoffPolicy {
  int free_attempts = 5;
  std::chrono::seconds first_delay{30};
  std::chrono::seconds max_delay{std::chrono::hours(1)};
};

struct BackoffState {
  using TimePoint = std::chrono::system_clock::time_point;
  int consecutive_failures = 0;
  TimePoint locked_until{};  // no attempt before this
};

// How long until the next attempt is allowed (zero: now).
std::chrono::seconds backoff_remaining(const BackoffState& state, BackoffState::TimePoint now);
// The state after a failed match at `now`.
BackoffState backoff_after_failure(BackoffState state, BackoffState::TimePoint now,
                                   const BackoffPolicy& policy);

}  // namespace enclave::sessionmgr
