// Tickets: shape, hashing, addresses, and every reason a redemption is refused.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "sessionmgr/core/ticket.hpp"

namespace enclave::sessionmgr {
namespace {

using namespace std::chrono_literals;

RandomSource counter(std::uint8_t start) {
  return [n = start](std::span<std::uint8_t> out) mutable {
    for (auto& b : out) b = n++;
  };
}

TEST(Ticket, IsSixtyFourLowercaseHexFromTheRandomSource) {
  auto t = make_ticket(counter(0));
  EXPECT_EQ(t, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  EXPECT_TRUE(is_ticket_syntax(t));
  std::set<std::string> seen;
  std::mt19937 gen(7);
  RandomSource random = [&](std::span<std::uint8_t> out) {
    for (auto& b : out) b = static_cast<std::uint8_t>(gen());
  };
  for (int i = 0; i < 100; ++i) seen.insert(make_ticket(random));
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Ticket, Syntax) {
  EXPECT_TRUE(is_ticket_syntax(std::string(64, 'A')));
  EXPECT_FALSE(is_ticket_syntax(std::string(63, 'a')));
  EXPECT_FALSE(is_ticket_syntax(std::string(65, 'a')));
  EXPECT_FALSE(is_ticket_syntax(std::string(63, 'a') + "g"));
  EXPECT_FALSE(is_ticket_syntax(""));
}

TEST(Ticket, HashIsSha256OfTheLowercaseText) {
  // SHA-256 of 64 '0' characters.
  EXPECT_EQ(ticket_hash(std::string(64, '0')),
            "60e05bd1b195af2f94112fa7197a5c88289058840ce7c6df9693756bc6250f55");
  EXPECT_EQ(ticket_hash(std::string(64, 'A')), ticket_hash(std::string(64, 'a')));
  EXPECT_NE(ticket_hash(std::string(64, 'a')), ticket_hash(std::string(64, 'b')));
}

TEST(Ticket, CanonicalAddresses) {
  EXPECT_EQ(canonical_address("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(canonical_address("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(canonical_address("2001:DB8:0:0::1"), "2001:db8::1");
  EXPECT_FALSE(canonical_address("192.0.2.256"));
  EXPECT_FALSE(canonical_address("example.com"));
  EXPECT_FALSE(canonical_address(""));
  EXPECT_FALSE(canonical_address("192.0.2.7 "));
}

class Redemption : public ::testing::Test {
 protected:
  TimePoint now = TimePoint(1'800'000'000s);
  TicketRecord record{"s-1", "192.0.2.7", now + 60s, false, true};
};

TEST_F(Redemption, GoodTicketIsRedeemed) {
  EXPECT_EQ(check_redemption(record, "192.0.2.7", now, true), std::nullopt);
  EXPECT_EQ(check_redemption(record, "::ffff:192.0.2.7", now + 59s, true), std::nullopt);
}

TEST_F(Redemption, Unknown) {
  EXPECT_EQ(check_redemption(std::nullopt, "192.0.2.7", now, true), Refusal::kUnknown);
}

TEST_F(Redemption, Reused) {
  record.used = true;
  EXPECT_EQ(check_redemption(record, "192.0.2.7", now, true), Refusal::kAlreadyUsed);
}

TEST_F(Redemption, Expired) {
  EXPECT_EQ(check_redemption(record, "192.0.2.7", now + 60s, true), Refusal::kExpired);
  EXPECT_EQ(check_redemption(record, "192.0.2.7", now + 1h, true), Refusal::kExpired);
  record.session_open = false;  // its session ended (operator)
  EXPECT_EQ(check_redemption(record, "192.0.2.7", now, true), Refusal::kExpired);
}

TEST_F(Redemption, WrongSource) {
  EXPECT_EQ(check_redemption(record, "192.0.2.8", now, true), Refusal::kWrongSource);
  EXPECT_EQ(check_redemption(record, "not an address", now, true), Refusal::kWrongSource);
}

TEST_F(Redemption, BoundToAHealthyDesktop) {
  EXPECT_EQ(check_redemption(record, "192.0.2.7", now, false), Refusal::kDesktopUnavailable);
}

TEST_F(Redemption, OrderOfChecks) {
  record.used = true;  // used wins over expired, wrong source and an unhealthy desktop
  EXPECT_EQ(check_redemption(record, "192.0.2.8", now + 1h, false), Refusal::kAlreadyUsed);
  record.used = false;
  EXPECT_EQ(check_redemption(record, "192.0.2.8", now + 1h, false), Refusal::kExpired);
  EXPECT_EQ(check_redemption(record, "192.0.2.8", now, false), Refusal::kWrongSource);
}

TEST(Ticket, RefusalTexts) {
  EXPECT_STREQ(refusal_text(Refusal::kUnknown), "unknown");
  EXPECT_STREQ(refusal_text(Refusal::kExpired), "expired");
  EXPECT_STREQ(refusal_text(Refusal::kAlreadyUsed), "already used");
  EXPECT_STREQ(refusal_text(Refusal::kWrongSource), "wrong source address");
  EXPECT_STREQ(refusal_text(Refusal::kDesktopUnavailable), "desktop unavailable");
}

}  // namespace
}  // namespace enclave::sessionmgr
