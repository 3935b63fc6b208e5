#include "sessionmgr/core/biometric_backoff.hpp"

#include <algorithm>

namespace enclave::sessionmgr {

std::chrono::seconds backoff_remaining(const BackoffState& state, BackoffState::TimePoint now) {
  if (now >= state.locked_until) return std::chrono::seconds(0);
  // Rounded up: "wait 0 s" must never be said while still locked.
  return std::chrono::ceil<std::chrono::seconds>(state.locked_until - now);
}

BackoffState backoff_after_failure(BackoffState state, BackoffState::TimePoint now,
                                   const BackoffPolicy& policy) {
  state.consecutive_failures += 1;
  const int beyond = state.consecutive_failures - policy.free_attempts;
  if (beyond < 0) return state;
  // first_delay * 2^beyond, without overflowing for a user who fails for days.
  std::chrono::seconds delay = policy.first_delay;
  for (int i = 0; i < beyond && delay < policy.max_delay; ++i) delay *= 2;
  state.locked_until = now + std::min(delay, policy.max_delay);
  return state;
}

}  // namespace enclave::sessionmgr
