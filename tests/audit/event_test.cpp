#include "audit/core/event.hpp"

#include <gtest/gtest.h>

namespace enclave::audit {
namespace {

Event sample() {
  Event e;
  e.time_us = 1'763'825'458'123'456;
  e.source = "enclave:enclave-gatewayd";
  e.actor = "alice";
  e.site = "tohoku-room-1";
  e.device = "tc-017";
  e.session = "s-42";
  e.type = "login.attempt";
  e.outcome = "success";
  e.object = "compartment/ndb";
  e.details = R"({"factors":["password","fingerprint"]})";
  return e;
}

TEST(Event, LeafRoundTrip) {
  auto e = sample();
  auto leaf = encode_leaf(e);
  auto back = decode_leaf(leaf);
  ASSERT_TRUE(back) << back.error().describe();
  EXPECT_EQ(*back, e);
}

TEST(Event, LeafEncodingIsFixed) {
  // Version byte, big-endian time, then length-prefixed fields: the leaf bytes are the
  // contract every stored hash depends on.
  Event e;
  e.time_us = 1;
  e.type = "a.b";
  e.outcome = "info";
  auto leaf = encode_leaf(e);
  Bytes expected = {1, 0, 0, 0, 0, 0, 0, 0, 1};
  auto field = [&](std::string_view s) {
    WriteCursor w(expected);
    w.u32be(static_cast<std::uint32_t>(s.size()));
    w.put(as_bytes(s));
  };
  for (auto s : {"", "user", "", "", "", "", "a.b", "info", "", "{}"}) field(s);
  EXPECT_EQ(leaf, expected);
}

TEST(Event, DecodeRefusesMalformedLeaves) {
  auto leaf = encode_leaf(sample());
  EXPECT_EQ(decode_leaf({}).error().kind, EventError::Kind::kTruncated);
  auto bad_version = leaf;
  bad_version[0] = 2;
  EXPECT_EQ(decode_leaf(bad_version).error().kind, EventError::Kind::kBadVersion);
  for (std::size_t cut = 1; cut < leaf.size(); cut += 7) {
    EXPECT_FALSE(decode_leaf(ByteSpan(leaf).first(cut))) << cut;
  }
  auto trailing = leaf;
  trailing.push_back(0);
  EXPECT_EQ(decode_leaf(trailing).error().kind, EventError::Kind::kTrailingBytes);
  auto huge = leaf;
  huge[9] = 0x7f;  // the source field's length
  EXPECT_EQ(decode_leaf(huge).error().kind, EventError::Kind::kTooLong);
}

TEST(Event, FromJsonValidates) {
  auto ok = event_from_json({{"type", "login.attempt"},
                             {"outcome", "failure"},
                             {"actor", "bob"},
                             {"details", {{"z", 1}, {"a", "x"}}}});
  ASSERT_TRUE(ok) << ok.error().describe();
  EXPECT_EQ(ok->details, R"({"a":"x","z":1})");  // canonical: sorted keys, no spaces
  EXPECT_EQ(ok->actor_kind, "user");

  struct Case {
    nlohmann::json params;
    std::string field;
  } cases[] = {
      {{{"outcome", "success"}}, "type"},
      {{{"type", "x"}}, "outcome"},
      {{{"type", "Login"}, {"outcome", "success"}}, "type"},
      {{{"type", "a..b."}, {"outcome", "success"}}, "type"},
      {{{"type", "a"}, {"outcome", "maybe"}}, "outcome"},
      {{{"type", "a"}, {"outcome", "info"}, {"actor", 5}}, "actor"},
      {{{"type", "a"}, {"outcome", "info"}, {"actor", "x\ny"}}, "actor"},
      {{{"type", "a"}, {"outcome", "info"}, {"actor", std::string(300, 'a')}}, "actor"},
      {{{"type", "a"}, {"outcome", "info"}, {"actor_kind", "robot"}}, "actor_kind"},
      {{{"type", "a"}, {"outcome", "info"}, {"details", "text"}}, "details"},
      {{{"type", "a"}, {"outcome", "info"}, {"time_us", 5}}, "time_us"},
      {{{"type", "a"}, {"outcome", "info"}, {"source", "forged"}}, "source"},
  };
  for (const auto& c : cases) {
    auto e = event_from_json(c.params);
    ASSERT_FALSE(e) << c.params.dump();
    EXPECT_EQ(e.error().field, c.field) << c.params.dump();
  }
  EXPECT_FALSE(event_from_json(nlohmann::json::array()));
}

TEST(Event, DeepDetailsAreRefusedWithoutRecursion) {
  nlohmann::json deep = nlohmann::json::object();
  nlohmann::json* at = &deep;
  for (int i = 0; i < 100; ++i) at = &((*at)["k"] = nlohmann::json::object());
  auto e = event_from_json({{"type", "a"}, {"outcome", "info"}, {"details", deep}});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().field, "details");
}

TEST(Event, Times) {
  EXPECT_EQ(format_time_us(1'763'825'458'123'456), "2025-11-22T15:30:58.123456Z");
  EXPECT_EQ(format_time_us(-1), "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(parse_time_us("2025-11-22T15:30:58.123456Z"), 1'763'825'458'123'456);
  EXPECT_EQ(parse_time_us("2025-11-23T00:30:58.123456+09:00"), 1'763'825'458'123'456);
  EXPECT_EQ(parse_time_us("1970-01-02"), 86'400'000'000);
  EXPECT_EQ(parse_time_us("1970-01-01T00:01"), 60'000'000);
  for (auto bad : {"", "2025", "2025-13-01", "2025-01-32", "2025-01-01T25:00", "2025-01-01X",
                   "2025-01-01T00:00:00.Z", "2025-01-01T00:00:00+0900"}) {
    EXPECT_FALSE(parse_time_us(bad)) << bad;
  }
}

}  // namespace
}  // namespace enclave::audit
