#include "audit/core/offbox.hpp"

#include <nlohmann/json.hpp>

#include "audit/core/event.hpp"

namespace enclave::audit::offbox {

namespace {

using jsonl::line_error;

Result<void, ParseError> parse_leaves(const nlohmann::json& j, std::size_t line, Copy& copy) {
  auto first = j.find("first");
  auto hashes = j.find("hashes");
  if (first == j.end() || !first->is_number_unsigned()) {
    return line_error(line, "leaves record needs \"first\" (an unsigned integer)");
  }
  if (hashes == j.end() || !hashes->is_string()) {
    return line_error(line, "leaves record needs \"hashes\" (base64 text)");
  }
  if (j.size() != 3) return line_error(line, "leaves record has unknown keys");
  auto expected_first = static_cast<std::uint64_t>(copy.leaf_hashes.size());
  if (first->get<std::uint64_t>() != expected_first) {
    return line_error(line, "leaves record starts at entry " +
                                std::to_string(first->get<std::uint64_t>()) + ", expected " +
                                std::to_string(expected_first) + " (records must be contiguous)");
  }
  const auto& text = hashes->get_ref<const std::string&>();
  if (text.size() > (kMaxHashesPerRecord * 32 + 2) / 3 * 4) {
    return line_error(
        line, "leaves record holds more than " + std::to_string(kMaxHashesPerRecord) + " hashes");
  }
  auto bytes = base64_decode(text);
  if (!bytes || bytes->size() % 32 != 0) {
    return line_error(line, "\"hashes\" is not base64 of whole 32-byte hashes");
  }
  for (std::size_t at = 0; at < bytes->size(); at += 32) {
    copy.leaf_hashes.push_back(*merkle::hash_from_bytes(ByteSpan(*bytes).subspan(at, 32)));
  }
  return {};
}

Result<void, ParseError> parse_checkpoint(const nlohmann::json& j, std::size_t line, Copy& copy) {
  auto time = j.find("time");
  auto note = j.find("note");
  if (time == j.end() || !time->is_string()) {
    return line_error(line, "checkpoint record needs \"time\" (RFC 3339 text)");
  }
  if (note == j.end() || !note->is_string()) {
    return line_error(line, "checkpoint record needs \"note\" (text)");
  }
  if (j.size() != 3) return line_error(line, "checkpoint record has unknown keys");
  auto time_us = parse_time_us(time->get_ref<const std::string&>());
  if (!time_us) return line_error(line, "checkpoint record has an unreadable time");
  copy.checkpoints.push_back({line, *time_us, note->get<std::string>()});
  return {};
}

}  // namespace

Result<Copy, ParseError> parse(ByteSpan text) {
  Copy copy;
  auto torn = jsonl::read(text,
                          [&](std::size_t line, const nlohmann::json& record,
                              const std::string& type) -> Result<void, ParseError> {
                            if (type == "leaves") return parse_leaves(record, line, copy);
                            if (type == "checkpoint") return parse_checkpoint(record, line, copy);
                            return line_error(line, "unknown record type");
                          });
  if (!torn) return error_of(torn);
  // A write that died mid-line: everything before it stands.
  copy.torn_tail = *torn;
  return copy;
}

std::string format_leaves(std::uint64_t first, std::span<const merkle::Hash> hashes) {
  Bytes joined;
  joined.reserve(hashes.size() * 32);
  for (const auto& h : hashes) joined.insert(joined.end(), h.begin(), h.end());
  return R"({"type":"leaves","first":)" + std::to_string(first) + R"(,"hashes":")" +
         base64_encode(joined) + "\"}\n";
}

std::string format_checkpoint(std::int64_t time_us, std::string_view note) {
  nlohmann::json j = {{"type", "checkpoint"}, {"time", format_time_us(time_us)}, {"note", note}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace enclave::audit::offbox
