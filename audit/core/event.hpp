// The audit event: what every service appends, and the exact bytes that become a Merkle leaf.
//
// Leaf encoding, version 1 (all integers big-endian):
//   u8  version = 1
//   i64 time_us          microseconds since the Unix epoch, stamped by enclave-auditd
//   then ten fields, each u32 length + UTF-8 bytes, in this order:
//   source               the appending service, from its socket peer credentials (not the client's
//   word) actor_kind           "user" or "service" actor, site, device, session, type, outcome,
//   object details              canonical JSON object text (keys sorted, no whitespace)
// The leaf index is not part of the leaf (as in RFC 9162): a row moved to another position
// keeps its hash, which is how the verifier tells "reordered" from "modified".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::audit {

struct Event {
  std::int64_t time_us = 0;
  std::string source;
  std::string actor_kind = "user";  // "user" or "service"
  std::string actor;
  std::string site;
  std::string device;
  std::string session;
  std::string type;
  std::string outcome;
  std::string object;
  std::string details = "{}";

  bool operator==(const Event&) const = default;
};

// Limits that keep one event from costing the log much (and bound every allocation the
// decoder makes).
inline constexpr std::size_t kMaxShortField = 256;
inline constexpr std::size_t kMaxDetails = 64 * 1024;
inline constexpr std::size_t kMaxDetailsDepth = 16;
inline constexpr std::size_t kMaxLeafSize = 1 + 8 + 10 * 4 + 9 * kMaxShortField + kMaxDetails;

struct EventError {
  enum class Kind { kTruncated, kBadVersion, kTooLong, kBadField, kMissingField, kTrailingBytes };
  Kind kind;
  std::string field;
  std::string message;

  std::string describe() const;
};

bool is_known_actor_kind(std::string_view kind);
// The outcomes an event may carry; anything else is refused at append.
bool is_known_outcome(std::string_view outcome);

Bytes encode_leaf(const Event& event);
void encode_leaf_into(const Event& event, Bytes& out);
Result<Event, EventError> decode_leaf(ByteSpan leaf);

// Parses and validates an event submitted by a service (the params of "audit.append").
// time_us and source are not taken from the client: the daemon stamps them.
// Expected shape: {"actor": "u123", "actor_kind": "user", "site": "...", "device": "...",
//   "session": "...", "type": "login.attempt", "outcome": "success", "object": "...",
//   "details": {...}}; only type and outcome are required.
Result<Event, EventError> event_from_json(const nlohmann::json& params);

// The event as auditors see it in JSON output; index is its leaf position.
nlohmann::json event_to_json(const Event& event, std::uint64_t index);

// RFC 3339 UTC with microseconds, e.g. 2026-11-22T15:30:58.123456Z.
std::string format_time_us(std::int64_t time_us);
// Accepts RFC 3339 (Z or offset), "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM[:SS]".
std::optional<std::int64_t> parse_time_us(std::string_view text);

}  // namespace enclave::audit
