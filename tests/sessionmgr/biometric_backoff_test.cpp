#include <gtest/gtest.h>

#include "sessionmgr/core/biometric_backoff.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;
using TimePoint = BackoffState::TimePoint;

TEST(BiometricBackoff, FiveFailuresAreFreeTheSixthAttemptWaitsThirtySeconds) {
  const BackoffPolicy policy;
  const TimePoint t0 = std::chrono::system_clock::from_time_t(1'800'000'000);
  BackoffState s;
  for (int i = 1; i <= 4; ++i) {
    s = backoff_after_failure(s, t0, policy);
    EXPECT_EQ(backoff_remaining(s, t0), 0s) << i;
  }
  s = backoff_after_failure(s, t0, policy);  // the fifth
  EXPECT_EQ(s.consecutive_failures, 5);
  EXPECT_EQ(backoff_remaining(s, t0), 30s);
  EXPECT_EQ(backoff_remaining(s, t0 + 29s + 500ms), 1s);  // rounded up, never "0 s" early
  EXPECT_EQ(backoff_remaining(s, t0 + 30s), 0s);
}

TEST(BiometricBackoff, TheDelayDoublesAndStopsAtTheCap) {
  const BackoffPolicy policy;
  TimePoint now = std::chrono::system_clock::from_time_t(1'800'000'000);
  BackoffState s;
  for (int i = 0; i < 5; ++i) s = backoff_after_failure(s, now, policy);
  std::vector<std::chrono::seconds> delays;
  for (int i = 0; i < 10; ++i) {
    now = s.locked_until;  // each attempt as soon as allowed, and it fails again
    s = backoff_after_failure(s, now, policy);
    delays.push_back(backoff_remaining(s, now));
  }
  EXPECT_EQ(delays[0], 60s);
  EXPECT_EQ(delays[1], 120s);
  EXPECT_EQ(delays[2], 240s);
  EXPECT_EQ(delays[6], 3600s);  // 30 s * 2^7 = 3840 s, capped at an hour
  EXPECT_EQ(delays[9], 3600s);
  // Thousands of failures do not overflow.
  for (int i = 0; i < 5000; ++i) s = backoff_after_failure(s, now, policy);
  EXPECT_EQ(backoff_remaining(s, now), 3600s);
}

}  // namespace
}  // namespace enclave::sessionmgr
