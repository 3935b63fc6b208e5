// strongSwan's VICI protocol (src/libcharon/plugins/vici/README.md), spoken directly: the
// gateway asks charon whether an IKE SA of a site holds the address a kiosk connects from.
// Pure functions, no I/O (gateway/service/vici_client does the socket).
//
// Transport: segments of  u32 length (big-endian, data only) | length bytes.
// Packet (one segment): u8 type | [u8 name length | name] (named types) | [message].
//   CMD_REQUEST, EVENT_REGISTER, EVENT_UNREGISTER and EVENT are named; CMD_REQUEST,
//   CMD_RESPONSE and EVENT carry a message; the other types are the type byte alone.
// Message: a sequence of elements, each a u8 type, then for SECTION_START, KEY_VALUE and
//   LIST_START a name (u8 length | bytes), then for KEY_VALUE and LIST_ITEM a value
//   (u16 big-endian length | bytes). Sections nest and must balance; a list holds only
//   LIST_ITEMs, lists do not nest; names are unique within a section.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/bytes.hpp"
#include "common/net/ip.hpp"
#include "common/result.hpp"

namespace enclave::gateway::vici {

inline constexpr std::size_t kLengthSize = 4;
// The largest segment accepted or produced: charon's own limit ("currently limited to 512KB").
inline constexpr std::size_t kMaxSegment = 512 * 1024;
// Sections nested deeper than this are refused before anything is allocated for them.
// list-sa events use three levels (IKE SA, child-sas, CHILD SA).
inline constexpr std::size_t kMaxDepth = 16;
inline constexpr std::size_t kMaxName = 0xff;     // u8 length
inline constexpr std::size_t kMaxValue = 0xffff;  // u16 length

enum class PacketType : std::uint8_t {
  kCmdRequest = 0,       // named request message
  kCmdResponse = 1,      // unnamed response message
  kCmdUnknown = 2,       // the server has no such command
  kEventRegister = 3,    // named
  kEventUnregister = 4,  // named
  kEventConfirm = 5,     // (un)registration done
  kEventUnknown = 6,     // (un)registration failed: no such event
  kEvent = 7,            // named event message
};

enum class ElementType : std::uint8_t {
  kSectionStart = 1,
  kSectionEnd = 2,
  kKeyValue = 3,
  kListStart = 4,
  kListItem = 5,
  kListEnd = 6,
};

struct ViciError {
  enum class Kind {
    kTruncated,          // a type, name, value or length runs past the end of the bytes
    kBadPacketType,      // a packet type outside 0..7
    kBadElementType,     // an element type outside 1..6
    kMisplacedElement,   // LIST_ITEM outside a list, anything but LIST_ITEM/LIST_END in one
    kUnbalanced,         // an END without its START, or the message ends inside one
    kTooDeep,            // sections nested deeper than kMaxDepth
    kDuplicateName,      // two entries of one section share a name
    kNameTooLong,        // (encode) a name over kMaxName bytes
    kValueTooLong,       // (encode) a value over kMaxValue bytes
    kTooLarge,           // a segment, packet or message over kMaxSegment bytes
    kUnexpectedContent,  // bytes after a packet of a type without name or message; (encode)
                         // a name or message on such a type
  };
  Kind kind = Kind::kTruncated;
  std::string what;        // the field or element, e.g. "KEY_VALUE value"
  std::size_t offset = 0;  // decode: where in the decoded bytes the problem starts

  // One line for logs and error messages: kind, element and offset.
  std::string describe() const;
};

template <class T>
using ViciResult = Result<T, ViciError>;

using List = std::vector<std::string>;
struct Entry;

// A section of a message, or the implicit root section (the message itself).
struct Section {
  std::vector<Entry> entries;  // in wire order

  // The entry named `name` if it is of that kind, else nullptr.
  const std::string* value(std::string_view name) const;
  const List* list(std::string_view name) const;
  const Section* section(std::string_view name) const;

  // Appends an entry (names are checked for uniqueness by encode_message, not here).
  Section& add_value(std::string name, std::string value);
  Section& add_list(std::string name, List items);
  Section& add_section(std::string name, Section section);

  bool operator==(const Section& other) const;
};

struct Entry {
  std::string name;
  std::variant<std::string, List, Section> value;  // KEY_VALUE, LIST_START..END, SECTION

  bool operator==(const Entry&) const = default;
};

inline bool Section::operator==(const Section& other) const {
  return entries == other.entries;
}

struct Packet {
  PacketType type = PacketType::kCmdRequest;
  std::string name;  // named types only
  Section message;   // CMD_REQUEST, CMD_RESPONSE and EVENT only

  bool operator==(const Packet&) const = default;
};

bool is_named(PacketType type);
bool carries_message(PacketType type);

// One complete segment at the start of a buffer.
struct Segment {
  ByteSpan packet;
  std::size_t consumed = 0;  // kLengthSize + packet.size()
};

// Looks for one segment at the start of `buffered`: nullopt while more bytes are needed,
// kTooLarge as soon as the length announces more than kMaxSegment. Never allocates.
ViciResult<std::optional<Segment>> next_segment(ByteSpan buffered);

// Decodes one packet (a segment's data, without the length). Errors: an empty packet
// (kTruncated), an unknown type, a truncated name, bytes after a type that carries no
// message, and every error of decode_message.
ViciResult<Packet> decode_packet(ByteSpan packet);

// Encodes a packet with its length prefix, ready to send. Errors: an unknown type, a name or
// message on a type without them, a name over kMaxName, a segment over kMaxSegment, and every
// error of encode_message.
ViciResult<Bytes> encode_packet(const Packet& packet);

// Decodes a message into its tree. Iterative: the nesting depth is checked before a section
// is opened, so hostile input cannot exhaust the stack.
ViciResult<Section> decode_message(ByteSpan message);

// Encodes a tree. The encoding is canonical: decode_message(encode_message(t)) == t and, for
// bytes that decode, encode_message(decode_message(b)) == b.
ViciResult<Bytes> encode_message(const Section& message);

// Addresses are common/net's: "192.0.2.7" and "::ffff:192.0.2.7", or two spellings of one
// IPv6 address, compare equal.
using net::IpAddress;

// A remote-vip as charon prints it; nullopt for anything that is not an address.
inline std::optional<IpAddress> parse_ip_address(std::string_view text) {
  auto address = IpAddress::parse(text);
  if (!address) return std::nullopt;
  return *address;
}

// From one list-sa event (a root section per IKE SA, named by its configuration): whether an
// IKE SA in state ESTABLISHED whose remote-id is exactly `ike_identity` (as charon prints it)
// holds `address` among its remote-vips, the virtual IPs it assigned to that peer.
bool ike_sa_holds(const Section& list_sa_event, std::string_view ike_identity,
                  const IpAddress& address);

}  // namespace enclave::gateway::vici
