#include "gateway/core/vici.hpp"

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace enclave::gateway::vici {
namespace {

using Kind = ViciError::Kind;

Unexpected<ViciError> error(Kind kind, std::string what, std::size_t offset = 0) {
  return fail(ViciError{kind, std::move(what), offset});
}

const char* kind_text(Kind kind) {
  switch (kind) {
    case Kind::kTruncated:
      return "truncated";
    case Kind::kBadPacketType:
      return "unknown packet type";
    case Kind::kBadElementType:
      return "unknown element type";
    case Kind::kMisplacedElement:
      return "misplaced element";
    case Kind::kUnbalanced:
      return "unbalanced section or list";
    case Kind::kTooDeep:
      return "sections nested too deep";
    case Kind::kDuplicateName:
      return "duplicate name";
    case Kind::kNameTooLong:
      return "name too long";
    case Kind::kValueTooLong:
      return "value too long";
    case Kind::kTooLarge:
      return "too large";
    case Kind::kUnexpectedContent:
      return "unexpected content";
  }
  return "unknown error";
}

template <class T>
const T* find_as(const Section& section, std::string_view name) {
  for (const Entry& entry : section.entries) {
    if (entry.name == name) return std::get_if<T>(&entry.value);
  }
  return nullptr;
}

// Reads the u8-length name of a named element or packet.
ViciResult<std::string_view> read_name(ReadCursor& in, std::string_view what) {
  const std::size_t at = in.position();
  auto length = in.u8();
  if (!length) return error(Kind::kTruncated, std::string(what) + " length", at);
  auto bytes = in.take(*length);
  if (!bytes) return error(Kind::kTruncated, std::string(what), at + 1);
  return as_chars(*bytes);
}

ViciResult<std::string_view> read_value(ReadCursor& in, std::string_view what) {
  const std::size_t at = in.position();
  auto length = in.u16be();
  if (!length) return error(Kind::kTruncated, std::string(what) + " length", at);
  auto bytes = in.take(*length);
  if (!bytes) return error(Kind::kTruncated, std::string(what), at + 2);
  return as_chars(*bytes);
}

const char* element_name(ElementType type) {
  switch (type) {
    case ElementType::kSectionStart:
      return "SECTION_START";
    case ElementType::kSectionEnd:
      return "SECTION_END";
    case ElementType::kKeyValue:
      return "KEY_VALUE";
    case ElementType::kListStart:
      return "LIST_START";
    case ElementType::kListItem:
      return "LIST_ITEM";
    case ElementType::kListEnd:
      return "LIST_END";
  }
  return "element";
}

// A section being decoded, with the names it holds so far (views into the input bytes).
struct OpenSection {
  Section* section;
  std::unordered_set<std::string_view> names;
};

ViciResult<void> put_name(Bytes& out, std::string_view name) {
  if (name.size() > kMaxName) return error(Kind::kNameTooLong, std::string(name.substr(0, 32)));
  out.push_back(static_cast<std::uint8_t>(name.size()));
  WriteCursor(out).put(as_bytes(name));
  return {};
}

ViciResult<void> put_value(Bytes& out, std::string_view name, std::string_view value) {
  if (value.size() > kMaxValue) return error(Kind::kValueTooLong, std::string(name));
  WriteCursor w(out);
  w.u16be(static_cast<std::uint16_t>(value.size()));
  w.put(as_bytes(value));
  return {};
}

void put_type(Bytes& out, ElementType type) {
  out.push_back(static_cast<std::uint8_t>(type));
}

// depth: how many sections enclose `section` (0 for the root).
ViciResult<void> encode_section(const Section& section, std::size_t depth, Bytes& out) {
  std::unordered_set<std::string_view> names;
  for (const Entry& entry : section.entries) {
    if (!names.insert(entry.name).second) return error(Kind::kDuplicateName, entry.name);
    if (const auto* value = std::get_if<std::string>(&entry.value)) {
      put_type(out, ElementType::kKeyValue);
      if (auto r = put_name(out, entry.name); !r) return error_of(r);
      if (auto r = put_value(out, entry.name, *value); !r) return error_of(r);
    } else if (const auto* list = std::get_if<List>(&entry.value)) {
      put_type(out, ElementType::kListStart);
      if (auto r = put_name(out, entry.name); !r) return error_of(r);
      for (const std::string& item : *list) {
        put_type(out, ElementType::kListItem);
        if (auto r = put_value(out, entry.name, item); !r) return error_of(r);
      }
      put_type(out, ElementType::kListEnd);
    } else {
      if (depth + 1 > kMaxDepth) return error(Kind::kTooDeep, entry.name);
      put_type(out, ElementType::kSectionStart);
      if (auto r = put_name(out, entry.name); !r) return error_of(r);
      if (auto r = encode_section(std::get<Section>(entry.value), depth + 1, out); !r) {
        return error_of(r);
      }
      put_type(out, ElementType::kSectionEnd);
    }
    if (out.size() > kMaxSegment) return error(Kind::kTooLarge, "message");
  }
  return {};
}

}  // namespace

std::string ViciError::describe() const {
  return std::string("VICI ") + kind_text(kind) + ": " + what + " (at byte " +
         std::to_string(offset) + ")";
}

const std::string* Section::value(std::string_view name) const {
  return find_as<std::string>(*this, name);
}
const List* Section::list(std::string_view name) const {
  return find_as<List>(*this, name);
}
const Section* Section::section(std::string_view name) const {
  return find_as<Section>(*this, name);
}

Section& Section::add_value(std::string name, std::string value) {
  entries.push_back(Entry{std::move(name), std::move(value)});
  return *this;
}
Section& Section::add_list(std::string name, List items) {
  entries.push_back(Entry{std::move(name), std::move(items)});
  return *this;
}
Section& Section::add_section(std::string name, Section section) {
  entries.push_back(Entry{std::move(name), std::move(section)});
  return *this;
}

bool is_named(PacketType type) {
  return type == PacketType::kCmdRequest || type == PacketType::kEventRegister ||
         type == PacketType::kEventUnregister || type == PacketType::kEvent;
}

bool carries_message(PacketType type) {
  return type == PacketType::kCmdRequest || type == PacketType::kCmdResponse ||
         type == PacketType::kEvent;
}

ViciResult<std::optional<Segment>> next_segment(ByteSpan buffered) {
  if (buffered.size() < kLengthSize) return std::optional<Segment>{};
  const std::uint32_t length = ReadCursor(buffered).u32be().value();
  if (length > kMaxSegment)
    return error(Kind::kTooLarge, "segment length " + std::to_string(length));
  if (buffered.size() - kLengthSize < length) return std::optional<Segment>{};
  return std::optional<Segment>{
      Segment{buffered.subspan(kLengthSize, length), kLengthSize + length}};
}

ViciResult<Packet> decode_packet(ByteSpan bytes) {
  if (bytes.size() > kMaxSegment) return error(Kind::kTooLarge, "packet");
  ReadCursor in(bytes);
  auto type = in.u8();
  if (!type) return error(Kind::kTruncated, "packet type");
  if (*type > static_cast<std::uint8_t>(PacketType::kEvent)) {
    return error(Kind::kBadPacketType, "packet type " + std::to_string(*type));
  }
  Packet packet;
  packet.type = static_cast<PacketType>(*type);
  if (is_named(packet.type)) {
    auto name = read_name(in, "packet name");
    if (!name) return error_of(name);
    packet.name = std::string(*name);
  }
  const std::size_t at = in.position();
  if (!carries_message(packet.type)) {
    if (!in.empty()) return error(Kind::kUnexpectedContent, "bytes after the packet", at);
    return packet;
  }
  auto message = decode_message(*in.take(in.remaining()));
  if (!message) {
    ViciError e = message.error();
    e.offset += at;
    return fail(std::move(e));
  }
  packet.message = std::move(*message);
  return packet;
}

ViciResult<Bytes> encode_packet(const Packet& packet) {
  const auto type = static_cast<std::uint8_t>(packet.type);
  if (type > static_cast<std::uint8_t>(PacketType::kEvent)) {
    return error(Kind::kBadPacketType, "packet type " + std::to_string(type));
  }
  if (!is_named(packet.type) && !packet.name.empty()) {
    return error(Kind::kUnexpectedContent, "a name on an unnamed packet type");
  }
  if (!carries_message(packet.type) && !packet.message.entries.empty()) {
    return error(Kind::kUnexpectedContent, "a message on a packet type without one");
  }
  Bytes out(kLengthSize, 0);
  out.push_back(type);
  if (is_named(packet.type)) {
    if (auto r = put_name(out, packet.name); !r) return error_of(r);
  }
  if (carries_message(packet.type)) {
    auto message = encode_message(packet.message);
    if (!message) return error_of(message);
    WriteCursor(out).put(*message);
  }
  const std::size_t length = out.size() - kLengthSize;
  if (length > kMaxSegment) return error(Kind::kTooLarge, "packet");
  Bytes header;
  WriteCursor(header).u32be(static_cast<std::uint32_t>(length));
  std::copy(header.begin(), header.end(), out.begin());
  return out;
}

ViciResult<Section> decode_message(ByteSpan bytes) {
  if (bytes.size() > kMaxSegment) return error(Kind::kTooLarge, "message");
  Section root;
  // INVARIANT: only the innermost open section gains entries, so pointers to the enclosing
  // sections (and to the open list, the innermost section's last entry) stay valid.
  std::vector<OpenSection> open;
  open.push_back(OpenSection{&root, {}});
  List* list = nullptr;
  ReadCursor in(bytes);
  while (!in.empty()) {
    const std::size_t at = in.position();
    const std::uint8_t raw = in.u8().value();
    if (raw < static_cast<std::uint8_t>(ElementType::kSectionStart) ||
        raw > static_cast<std::uint8_t>(ElementType::kListEnd)) {
      return error(Kind::kBadElementType, "element type " + std::to_string(raw), at);
    }
    const auto type = static_cast<ElementType>(raw);
    const std::string what = element_name(type);
    if ((list != nullptr) != (type == ElementType::kListItem || type == ElementType::kListEnd)) {
      if (type == ElementType::kListEnd) return error(Kind::kUnbalanced, what, at);
      return error(Kind::kMisplacedElement, what + (list ? " inside a list" : " outside a list"),
                   at);
    }
    OpenSection& current = open.back();
    switch (type) {
      case ElementType::kSectionStart:
      case ElementType::kKeyValue:
      case ElementType::kListStart: {
        auto name = read_name(in, what + " name");
        if (!name) return error_of(name);
        if (type == ElementType::kSectionStart && open.size() > kMaxDepth) {
          return error(Kind::kTooDeep, what + " " + std::string(*name), at);
        }
        if (!current.names.insert(*name).second) {
          return error(Kind::kDuplicateName, what + " " + std::string(*name), at);
        }
        std::vector<Entry>& entries = current.section->entries;
        if (type == ElementType::kKeyValue) {
          auto value = read_value(in, what + " value");
          if (!value) return error_of(value);
          entries.push_back(Entry{std::string(*name), std::string(*value)});
        } else if (type == ElementType::kListStart) {
          entries.push_back(Entry{std::string(*name), List{}});
          list = &std::get<List>(entries.back().value);
        } else {
          entries.push_back(Entry{std::string(*name), Section{}});
          open.push_back(OpenSection{&std::get<Section>(entries.back().value), {}});
        }
        break;
      }
      case ElementType::kSectionEnd:
        if (open.size() == 1) return error(Kind::kUnbalanced, what, at);
        open.pop_back();
        break;
      case ElementType::kListItem: {
        auto value = read_value(in, what + " value");
        if (!value) return error_of(value);
        list->emplace_back(*value);
        break;
      }
      case ElementType::kListEnd:
        list = nullptr;
        break;
    }
  }
  if (list) return error(Kind::kUnbalanced, "list not closed", bytes.size());
  if (open.size() > 1) return error(Kind::kUnbalanced, "section not closed", bytes.size());
  return root;
}

ViciResult<Bytes> encode_message(const Section& message) {
  Bytes out;
  if (auto r = encode_section(message, 0, out); !r) return error_of(r);
  return out;
}

bool ike_sa_holds(const Section& list_sa_event, std::string_view ike_identity,
                  const IpAddress& address) {
  for (const Entry& entry : list_sa_event.entries) {
    const auto* ike_sa = std::get_if<Section>(&entry.value);
    if (!ike_sa) continue;
    const std::string* state = ike_sa->value("state");
    const std::string* remote_id = ike_sa->value("remote-id");
    const List* vips = ike_sa->list("remote-vips");
    if (!state || *state != "ESTABLISHED" || !remote_id || *remote_id != ike_identity || !vips) {
      continue;
    }
    for (const std::string& vip : *vips) {
      if (parse_ip_address(vip) == address) return true;
    }
  }
  return false;
}

}  // namespace enclave::gateway::vici
