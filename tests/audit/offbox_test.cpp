#include "audit/core/offbox.hpp"

#include <gtest/gtest.h>

namespace enclave::audit::offbox {
namespace {

std::vector<merkle::Hash> hashes(int n, int salt = 0) {
  std::vector<merkle::Hash> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(merkle::leaf_hash(as_bytes("leaf " + std::to_string(i + salt))));
  }
  return out;
}

TEST(Offbox, RoundTrip) {
  auto a = hashes(3), b = hashes(2, 3);
  std::string text = format_leaves(0, a) +
                     format_checkpoint(1'700'000'000'000'000, "note one\n\n— k x\n") +
                     format_leaves(3, b) + format_checkpoint(1'700'000'001'000'000, "note two\n");
  auto copy = parse(as_bytes(text));
  ASSERT_TRUE(copy) << copy.error().describe();
  auto all = hashes(5);
  EXPECT_EQ(copy->leaf_hashes, all);
  ASSERT_EQ(copy->checkpoints.size(), 2u);
  EXPECT_EQ(copy->checkpoints[0].line, 2u);
  EXPECT_EQ(copy->checkpoints[0].note, "note one\n\n— k x\n");
  EXPECT_EQ(copy->checkpoints[1].time_us, 1'700'000'001'000'000);
  EXPECT_FALSE(copy->torn_tail);
}

TEST(Offbox, TornLastLineIsReportedNotFatal) {
  std::string text = format_leaves(0, hashes(2)) + format_checkpoint(0, "n\n");
  text += format_leaves(2, hashes(1, 2)).substr(0, 20);
  auto copy = parse(as_bytes(text));
  ASSERT_TRUE(copy);
  EXPECT_TRUE(copy->torn_tail);
  EXPECT_EQ(copy->leaf_hashes.size(), 2u);
}

TEST(Offbox, DefectsNameTheirLine) {
  const std::string good = format_leaves(0, hashes(2));
  struct Case {
    std::string text;
    std::size_t line;
    std::string says;
  } cases[] = {
      {good + format_leaves(3, hashes(1)), 2, "contiguous"},
      {good + "not json\n", 2, "not a JSON object"},
      {good + R"({"type":"other"})"
              "\n",
       2, "unknown record type"},
      {"{\"type\":\"leaves\",\"first\":0,\"hashes\":\"AAAA\"}\n", 1, "whole 32-byte hashes"},
      {"{\"type\":\"leaves\",\"first\":0,\"hashes\":\"!!\"}\n", 1, "whole 32-byte hashes"},
      {"{\"type\":\"leaves\",\"first\":0,\"hashes\":[\"AAAA\"]}\n", 1, "base64 text"},
      {"{\"type\":\"leaves\",\"first\":0,\"hashes\":\"\",\"x\":1}\n", 1, "unknown keys"},
      {R"({"type":"checkpoint","time":"yesterday","note":"n"})"
       "\n",
       1, "unreadable time"},
      {R"({"type":"checkpoint","time":"2026-01-01T00:00:00Z"})"
       "\n",
       1, "needs \"note\""},
  };
  for (const auto& c : cases) {
    auto copy = parse(as_bytes(c.text));
    ASSERT_FALSE(copy) << c.text;
    EXPECT_EQ(copy.error().line, c.line) << c.text;
    EXPECT_NE(copy.error().describe().find(c.says), std::string::npos) << copy.error().describe();
  }
}

TEST(Offbox, RecordSizeIsBounded) {
  auto most = hashes(static_cast<int>(kMaxHashesPerRecord));
  EXPECT_TRUE(parse(as_bytes(format_leaves(0, most))));
  most.push_back(most.front());
  auto too_many = parse(as_bytes(format_leaves(0, most)));
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message.find("more than"), std::string::npos);
}

}  // namespace
}  // namespace enclave::audit::offbox
