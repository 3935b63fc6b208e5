#include "audit/core/archive.hpp"

#include <nlohmann/json.hpp>

namespace enclave::audit::archive {

namespace {

using jsonl::line_error;

std::optional<std::uint64_t> unsigned_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return std::nullopt;
  return it->get<std::uint64_t>();
}

std::optional<std::string> string_field(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

Result<Archive, ParseError> parse(ByteSpan bytes) {
  Archive a;
  enum class Expect { kHeader, kPrefix, kBody, kDone } expect = Expect::kHeader;
  std::size_t lines = 0;
  auto torn = jsonl::read(
      bytes,
      [&](std::size_t line, const nlohmann::json& j,
          const std::string& type) -> Result<void, ParseError> {
        lines = line;
        switch (expect) {
          case Expect::kHeader: {
            auto version = unsigned_field(j, "version");
            auto origin = string_field(j, "origin");
            auto first = unsigned_field(j, "first");
            auto last = unsigned_field(j, "end");
            auto created = string_field(j, "created");
            auto created_us = created ? parse_time_us(*created) : std::nullopt;
            if (type != "archive" || version != 1u || !origin || !first || !last || !created_us) {
              return line_error(line, "expected the archive header (version 1)");
            }
            if (*first >= *last) return line_error(line, "archive range is empty");
            a.origin = *origin;
            a.first = *first;
            a.end = *last;
            a.created_us = *created_us;
            expect = Expect::kPrefix;
            return {};
          }
          case Expect::kPrefix: {
            auto nodes = j.find("nodes");
            if (type != "prefix" || nodes == j.end() || !nodes->is_array() || nodes->size() > 64) {
              return line_error(line, "expected the prefix record");
            }
            std::vector<merkle::Hash> hashes;
            for (const auto& n : *nodes) {
              auto raw =
                  n.is_string() ? base64_decode(n.get_ref<const std::string&>()) : std::nullopt;
              auto h = raw ? merkle::hash_from_bytes(*raw) : std::nullopt;
              if (!h) return line_error(line, "prefix node is not a base64 SHA-256 hash");
              hashes.push_back(*h);
            }
            auto prefix = merkle::CompactRange::from_nodes(a.first, std::move(hashes));
            if (!prefix) return line_error(line, "prefix does not cover entries 0 to first");
            a.prefix = std::move(*prefix);
            expect = Expect::kBody;
            return {};
          }
          case Expect::kBody: {
            if (type == "checkpoint") {
              auto note = string_field(j, "note");
              if (!note) return line_error(line, "checkpoint record without a note");
              if (a.events.size() != a.end - a.first) {
                return line_error(line, "archive holds " + std::to_string(a.events.size()) +
                                            " entries, its header announces " +
                                            std::to_string(a.end - a.first));
              }
              a.checkpoint_note = std::move(*note);
              expect = Expect::kDone;
              return {};
            }
            auto index = unsigned_field(j, "index");
            auto leaf = string_field(j, "leaf");
            if (type != "event" || !index || !leaf) return line_error(line, "expected an event");
            if (*index != a.first + a.events.size() || *index >= a.end) {
              return line_error(line, "event " + std::to_string(*index) + " out of order");
            }
            auto raw = base64_decode(*leaf);
            if (!raw) return line_error(line, "event leaf is not base64");
            auto event = decode_leaf(*raw);
            if (!event) return line_error(line, "event leaf: " + event.error().describe());
            a.events.push_back(std::move(event).value());
            return {};
          }
          case Expect::kDone:
            break;
        }
        return line_error(line, "records after the checkpoint");
      });
  if (!torn) return error_of(torn);
  if (*torn) return line_error(lines + 1, "last line has no newline");
  if (expect != Expect::kDone) return line_error(lines, "archive ends before its checkpoint");
  return a;
}

std::string format_header(const Archive& a) {
  nlohmann::json header = {{"type", "archive"},  {"version", 1},
                           {"origin", a.origin}, {"first", a.first},
                           {"end", a.end},       {"created", format_time_us(a.created_us)}};
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& n : a.prefix.nodes()) nodes.push_back(base64_encode(n));
  nlohmann::json prefix = {{"type", "prefix"}, {"nodes", nodes}};
  return header.dump() + "\n" + prefix.dump() + "\n";
}

std::string format_event(std::uint64_t index, const Event& event) {
  return R"({"type":"event","index":)" + std::to_string(index) + R"(,"leaf":")" +
         base64_encode(encode_leaf(event)) + "\"}\n";
}

std::string format_checkpoint(std::string_view note) {
  nlohmann::json j = {{"type", "checkpoint"}, {"note", note}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

Result<merkle::CompactRange, std::string> check(const Archive& a, const note::Verifier& verifier) {
  auto checkpoint = note::open_checkpoint(as_bytes(a.checkpoint_note), verifier, a.origin);
  if (!checkpoint) return fail(checkpoint.error().describe());
  if (checkpoint->size != a.end) {
    return fail("its checkpoint seals " + std::to_string(checkpoint->size) +
                " entries, the archive ends at " + std::to_string(a.end));
  }
  merkle::CompactRange range = a.prefix;
  for (const auto& e : a.events) range.append(merkle::leaf_hash(encode_leaf(e)));
  if (range.root() != checkpoint->root) {
    return fail(
        "its entries do not reproduce the root of its checkpoint (an entry or the "
        "prefix was changed)");
  }
  return range;
}

}  // namespace enclave::audit::archive
