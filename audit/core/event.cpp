#include "audit/core/event.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <vector>

namespace enclave::audit {

namespace {

constexpr std::uint8_t kLeafVersion = 1;

// Field order of the leaf encoding after time_us; the names are also the JSON keys.
constexpr std::array<std::string_view, 10> kFieldNames = {
    "source",  "actor_kind", "actor",   "site",   "device",
    "session", "type",       "outcome", "object", "details"};

Unexpected<EventError> event_error(EventError::Kind kind, std::string_view field,
                                   std::string message) {
  return {EventError{kind, std::string(field), std::move(message)}};
}

// Short fields are printable single-line UTF-8: no control characters, so that a crafted
// actor or object cannot forge lines in syslog, CSV or the auditor's terminal.
bool is_clean_text(std::string_view s) {
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  return true;
}

// The type is a dotted lowercase name such as "login.factor" or "export.decision".
bool is_valid_type(std::string_view t) {
  if (t.empty() || t.size() > 64 || t.front() == '.' || t.back() == '.') return false;
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_')) return false;
  }
  return true;
}

// Nesting depth of a JSON value, without recursion (the value may come from a client).
std::size_t json_depth(const nlohmann::json& root) {
  std::size_t deepest = 0;
  std::vector<std::pair<const nlohmann::json*, std::size_t>> stack = {{&root, 1}};
  while (!stack.empty()) {
    auto [node, depth] = stack.back();
    stack.pop_back();
    deepest = std::max(deepest, depth);
    if (node->is_structured()) {
      for (const auto& child : *node) stack.emplace_back(&child, depth + 1);
    }
  }
  return deepest;
}

std::array<const std::string*, 10> field_values(const Event& e) {
  return {&e.source,  &e.actor_kind, &e.actor,   &e.site,   &e.device,
          &e.session, &e.type,       &e.outcome, &e.object, &e.details};
}

}  // namespace

bool is_known_actor_kind(std::string_view kind) {
  return kind == "user" || kind == "service";
}

bool is_known_outcome(std::string_view o) {
  return o == "success" || o == "failure" || o == "refused" || o == "error" || o == "info";
}

std::string EventError::describe() const {
  return field.empty() ? message : field + ": " + message;
}

void encode_leaf_into(const Event& e, Bytes& out) {
  WriteCursor w(out);
  w.u8(kLeafVersion);
  w.u64be(static_cast<std::uint64_t>(e.time_us));
  for (const std::string* value : field_values(e)) {
    w.u32be(static_cast<std::uint32_t>(value->size()));
    w.put(as_bytes(*value));
  }
}

Bytes encode_leaf(const Event& e) {
  Bytes out;
  out.reserve(64 + e.details.size() + e.actor.size() + e.object.size() + e.session.size());
  encode_leaf_into(e, out);
  return out;
}

Result<Event, EventError> decode_leaf(ByteSpan leaf) {
  using K = EventError::Kind;
  if (leaf.size() > kMaxLeafSize) {
    return event_error(K::kTooLong, "", "leaf of " + std::to_string(leaf.size()) + " bytes");
  }
  ReadCursor r(leaf);
  auto version = r.u8();
  if (!version) return event_error(K::kTruncated, "version", "empty leaf");
  if (*version != kLeafVersion) {
    return event_error(K::kBadVersion, "version",
                       "unknown leaf version " + std::to_string(*version));
  }
  auto time = r.u64be();
  if (!time) return event_error(K::kTruncated, "time_us", "needs 8 bytes");
  Event e;
  e.time_us = static_cast<std::int64_t>(*time);
  std::array<std::string*, 10> targets = {&e.source, &e.actor_kind, &e.actor, &e.site,
                                          &e.device, &e.session,    &e.type,  &e.outcome,
                                          &e.object, &e.details};
  for (std::size_t i = 0; i < targets.size(); ++i) {
    auto len = r.u32be();
    if (!len) return event_error(K::kTruncated, kFieldNames[i], "length needs 4 bytes");
    std::size_t limit = i == 9 ? kMaxDetails : kMaxShortField;
    if (*len > limit) {
      return event_error(K::kTooLong, kFieldNames[i],
                         std::to_string(*len) + " bytes, limit " + std::to_string(limit));
    }
    auto bytes = r.take(*len);
    if (!bytes) {
      return event_error(K::kTruncated, kFieldNames[i],
                         "announces " + std::to_string(*len) + " bytes, " +
                             std::to_string(r.remaining()) + " left");
    }
    targets[i]->assign(as_chars(*bytes));
  }
  if (!r.empty()) {
    return event_error(K::kTrailingBytes, "",
                       std::to_string(r.remaining()) + " bytes after details");
  }
  if (!is_known_actor_kind(e.actor_kind)) {
    return event_error(K::kBadField, "actor_kind", "must be user or service");
  }
  return e;
}

Result<Event, EventError> event_from_json(const nlohmann::json& params) {
  using K = EventError::Kind;
  if (!params.is_object()) return event_error(K::kBadField, "", "event must be a JSON object");
  Event e;
  std::array<std::pair<std::string_view, std::string*>, 8> short_fields = {
      {{"actor_kind", &e.actor_kind},
       {"actor", &e.actor},
       {"site", &e.site},
       {"device", &e.device},
       {"session", &e.session},
       {"type", &e.type},
       {"outcome", &e.outcome},
       {"object", &e.object}}};
  for (const auto& [key, value] : params.items()) {
    bool known = key == "details";
    for (auto& [name, target] : short_fields) {
      if (key != name) continue;
      known = true;
      if (!value.is_string()) return event_error(K::kBadField, name, "must be a string");
      const auto& s = value.get_ref<const std::string&>();
      if (s.size() > kMaxShortField) {
        return event_error(
            K::kTooLong, name,
            std::to_string(s.size()) + " bytes, limit " + std::to_string(kMaxShortField));
      }
      if (!is_valid_utf8(s) || !is_clean_text(s)) {
        return event_error(K::kBadField, name, "must be UTF-8 without control characters");
      }
      *target = s;
    }
    if (!known) return event_error(K::kBadField, key.substr(0, 64), "unknown field");
  }
  if (e.type.empty()) return event_error(K::kMissingField, "type", "required");
  if (!is_valid_type(e.type)) {
    return event_error(K::kBadField, "type", "must be a dotted lowercase name like login.attempt");
  }
  if (e.outcome.empty()) return event_error(K::kMissingField, "outcome", "required");
  if (!is_known_outcome(e.outcome)) {
    return event_error(K::kBadField, "outcome", "must be success, failure, refused, error or info");
  }
  if (!is_known_actor_kind(e.actor_kind)) {
    return event_error(K::kBadField, "actor_kind", "must be user or service");
  }
  if (auto it = params.find("details"); it != params.end()) {
    if (!it->is_object()) return event_error(K::kBadField, "details", "must be a JSON object");
    if (json_depth(*it) > kMaxDetailsDepth) {
      return event_error(K::kTooLong, "details",
                         "nested deeper than " + std::to_string(kMaxDetailsDepth) + " levels");
    }
    // nlohmann::json keeps object keys sorted, so dump() is canonical for a given value.
    e.details = it->dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    if (e.details.size() > kMaxDetails) {
      return event_error(
          K::kTooLong, "details",
          std::to_string(e.details.size()) + " bytes, limit " + std::to_string(kMaxDetails));
    }
  }
  return e;
}

nlohmann::json event_to_json(const Event& e, std::uint64_t index) {
  nlohmann::json j = {{"index", index},     {"time", format_time_us(e.time_us)},
                      {"source", e.source}, {"actor_kind", e.actor_kind},
                      {"actor", e.actor},   {"site", e.site},
                      {"device", e.device}, {"session", e.session},
                      {"type", e.type},     {"outcome", e.outcome},
                      {"object", e.object}};
  auto details = nlohmann::json::parse(e.details, nullptr, false);
  j["details"] = details.is_discarded() ? nlohmann::json(e.details) : details;
  return j;
}

std::string format_time_us(std::int64_t time_us) {
  std::int64_t secs = time_us >= 0 ? time_us / 1000000 : (time_us - 999999) / 1000000;
  auto micros = static_cast<long>(time_us - secs * 1000000);
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
  return buf;
}

std::optional<std::int64_t> parse_time_us(std::string_view text) {
  auto number = [&](std::size_t pos, std::size_t len) -> std::optional<int> {
    if (pos + len > text.size()) return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(text.data() + pos, text.data() + pos + len, v);
    if (ec != std::errc() || p != text.data() + pos + len) return std::nullopt;
    return v;
  };
  auto year = number(0, 4), month = number(5, 2), day = number(8, 2);
  if (!year || !month || !day || text.size() < 10 || text[4] != '-' || text[7] != '-') {
    return std::nullopt;
  }
  if (*month < 1 || *month > 12 || *day < 1 || *day > 31) return std::nullopt;
  int hour = 0, minute = 0, second = 0;
  std::int64_t micros = 0, offset_s = 0;
  std::size_t pos = 10;
  if (pos < text.size()) {
    if (text[pos] != 'T' && text[pos] != ' ') return std::nullopt;
    auto h = number(pos + 1, 2), m = number(pos + 4, 2);
    if (!h || !m || text.size() < pos + 6 || text[pos + 3] != ':') return std::nullopt;
    hour = *h;
    minute = *m;
    pos += 6;
    if (pos < text.size() && text[pos] == ':') {
      auto s = number(pos + 1, 2);
      if (!s) return std::nullopt;
      second = *s;
      pos += 3;
      if (pos < text.size() && text[pos] == '.') {
        std::size_t start = ++pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        if (pos == start) return std::nullopt;
        std::string frac(text.substr(start, std::min<std::size_t>(pos - start, 6)));
        frac.resize(6, '0');
        micros = std::stoll(frac);
      }
    }
    if (pos < text.size()) {
      if (text[pos] == 'Z' && pos + 1 == text.size()) {
        ++pos;
      } else if ((text[pos] == '+' || text[pos] == '-') && pos + 6 == text.size() &&
                 text[pos + 3] == ':') {
        auto oh = number(pos + 1, 2), om = number(pos + 4, 2);
        if (!oh || !om) return std::nullopt;
        offset_s = (*oh * 3600 + *om * 60) * (text[pos] == '+' ? 1 : -1);
        pos = text.size();
      } else {
        return std::nullopt;
      }
    }
  }
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::tm tm{};
  tm.tm_year = *year - 1900;
  tm.tm_mon = *month - 1;
  tm.tm_mday = *day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::int64_t secs = timegm(&tm) - offset_s;
  return secs * 1000000 + micros;
}

}  // namespace enclave::audit
