// strongSwan's VICI protocol: the README's encoding example byte for byte, packets of every
// type, the segment splitter, every decode and encode error, and the list-sa check.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/core/vici.hpp"

namespace enclave::gateway::vici {
namespace {

using Kind = ViciError::Kind;

Bytes bytes_of(std::initializer_list<int> values) {
  Bytes out;
  for (int v : values) out.push_back(static_cast<std::uint8_t>(v));
  return out;
}

Bytes cat(std::initializer_list<std::string_view> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The README's "Encoding example" (src/libcharon/plugins/vici/README.md):
//   key1 = value1
//   section1 = { sub-section = { key2 = value2 }  list1 = [ item1, item2 ] }
const Bytes kReadmeExample = cat({
    std::string_view("\x03\x04key1\x00\x06value1", 14),
    "\x01\x08section1",
    "\x01\x0bsub-section",
    std::string_view("\x03\x04key2\x00\x06value2", 14),
    "\x02",
    "\x04\x05list1",
    std::string_view("\x05\x00\x05item1", 8),
    std::string_view("\x05\x00\x05item2", 8),
    "\x06",
    "\x02",
});

// A list-sa event packet (with its length) as strongSwan 5.9.8's charon sent it to the
// client of tests/gateway/vici_test.cpp: the center's IKE SA "sites" with site-a, which it
// assigned 10.123.0.1 from its pool.
constexpr std::string_view kCharonListSaEvent =
    "000001d207076c6973742d7361010573697465730308756e697175656964000131030776657273696f6e0001"
    "3203057374617465000b45535441424c4953484544030a6c6f63616c2d686f7374000931302e39392e302e31"
    "030a6c6f63616c2d706f727400043435303003086c6f63616c2d6964001363656e7465722e656e636c617665"
    "2e74657374030b72656d6f74652d686f7374000931302e39392e302e32030b72656d6f74652d706f72740004"
    "34353030030972656d6f74652d69640013736974652d612e656e636c6176652e74657374030d696e69746961"
    "746f722d737069001061623566316433616134623137356266030d726573706f6e6465722d73706900106366"
    "36663335643963373532396563320308656e63722d616c6700074145535f434243030c656e63722d6b657973"
    "697a6500033132380309696e7465672d616c670011484d41435f534841325f3235365f31323803077072662d"
    "616c6700115052465f484d41435f534841325f323536030864682d67726f757000094d4f44505f3230343803"
    "0b65737461626c6973686564000130030a72656b65792d74696d6500053134303731040b72656d6f74652d76"
    "69707305000a31302e3132332e302e310601096368696c642d7361730202";

Section readme_tree() {
  Section sub;
  sub.add_value("key2", "value2");
  Section section1;
  section1.add_section("sub-section", sub).add_list("list1", {"item1", "item2"});
  Section root;
  root.add_value("key1", "value1").add_section("section1", section1);
  return root;
}

Kind decode_error(const Bytes& message) {
  auto decoded = decode_message(message);
  EXPECT_FALSE(decoded) << "decoded unexpectedly";
  return decoded ? Kind::kTruncated : decoded.error().kind;
}

Kind encode_error(const Section& message) {
  auto encoded = encode_message(message);
  EXPECT_FALSE(encoded) << "encoded unexpectedly";
  return encoded ? Kind::kTruncated : encoded.error().kind;
}

Section nested(std::size_t depth) {
  Section inner;
  inner.add_value("k", "v");
  for (std::size_t i = 0; i < depth; ++i) {
    Section outer;
    outer.add_section("s", std::move(inner));
    inner = std::move(outer);
  }
  return inner;
}

TEST(Vici, ReadmeExampleEncodesToItsBytes) {
  auto encoded = encode_message(readme_tree());
  ASSERT_TRUE(encoded) << encoded.error().describe();
  EXPECT_EQ(hex_encode(*encoded), hex_encode(kReadmeExample));
}

TEST(Vici, ReadmeExampleDecodesToItsTree) {
  auto decoded = decode_message(kReadmeExample);
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(*decoded, readme_tree());
  EXPECT_EQ(*decoded->value("key1"), "value1");
  const Section* section1 = decoded->section("section1");
  ASSERT_NE(section1, nullptr);
  EXPECT_EQ(*section1->section("sub-section")->value("key2"), "value2");
  EXPECT_EQ(*section1->list("list1"), (List{"item1", "item2"}));
}

TEST(Vici, DecodesAListSaEventAsCharonSendsIt) {
  const Bytes stream = hex_decode(kCharonListSaEvent).value();
  auto segment = next_segment(stream);
  ASSERT_TRUE(segment && segment->has_value());
  EXPECT_EQ((*segment)->consumed, stream.size());
  auto packet = decode_packet((*segment)->packet);
  ASSERT_TRUE(packet) << packet.error().describe();
  EXPECT_EQ(packet->type, PacketType::kEvent);
  EXPECT_EQ(packet->name, "list-sa");
  const Section* sa = packet->message.section("sites");
  ASSERT_NE(sa, nullptr);
  EXPECT_EQ(*sa->value("state"), "ESTABLISHED");
  EXPECT_EQ(*sa->value("remote-id"), "site-a.enclave.test");
  EXPECT_EQ(*sa->list("remote-vips"), List{"10.123.0.1"});
  EXPECT_NE(sa->section("child-sas"), nullptr);
  EXPECT_TRUE(
      ike_sa_holds(packet->message, "site-a.enclave.test", parse_ip_address("10.123.0.1").value()));
  EXPECT_FALSE(
      ike_sa_holds(packet->message, "center.enclave.test", parse_ip_address("10.123.0.1").value()));
  EXPECT_EQ(encode_packet(*packet).value(), stream);
}

TEST(Vici, LookupsOfTheWrongKindFindNothing) {
  const Section tree = readme_tree();
  EXPECT_EQ(tree.list("key1"), nullptr);
  EXPECT_EQ(tree.section("key1"), nullptr);
  EXPECT_EQ(tree.value("section1"), nullptr);
  EXPECT_EQ(tree.value("absent"), nullptr);
}

TEST(Vici, EmptyMessagesValuesAndListsRoundTrip) {
  Section tree;
  tree.add_value("", "").add_list("empty", {}).add_list("blank", {""}).add_section("s", {});
  tree.add_value("bin", std::string("\x00\xff\n", 3));
  auto encoded = encode_message(tree);
  ASSERT_TRUE(encoded);
  auto decoded = decode_message(*encoded);
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(*decoded, tree);
  EXPECT_EQ(encode_message(Section{}).value(), Bytes{});
  EXPECT_EQ(decode_message(Bytes{}).value(), Section{});
}

TEST(Vici, PacketsHaveTheReadmeLayout) {
  auto request = encode_packet({PacketType::kCmdRequest, "list-sas", {}});
  ASSERT_TRUE(request);
  EXPECT_EQ(*request, cat({std::string_view("\x00\x00\x00\x0a\x00\x08list-sas", 14)}));
  auto reg = encode_packet({PacketType::kEventRegister, "list-sa", {}});
  ASSERT_TRUE(reg);
  EXPECT_EQ(*reg, cat({std::string_view("\x00\x00\x00\x09\x03\x07list-sa", 13)}));
  EXPECT_EQ(encode_packet({PacketType::kEventConfirm, "", {}}).value(), bytes_of({0, 0, 0, 1, 5}));
  Section args;
  args.add_value("noblock", "yes");
  auto with_message = encode_packet({PacketType::kCmdRequest, "list-sas", args});
  ASSERT_TRUE(with_message);
  EXPECT_EQ(*with_message, cat({std::string_view("\x00\x00\x00\x18\x00\x08list-sas"
                                                 "\x03\x07noblock\x00\x03yes",
                                                 28)}));
}

TEST(Vici, EveryPacketTypeRoundTrips) {
  Section message = readme_tree();
  const std::vector<Packet> packets = {
      {PacketType::kCmdRequest, "list-sas", message},
      {PacketType::kCmdResponse, "", message},
      {PacketType::kCmdUnknown, "", {}},
      {PacketType::kEventRegister, "list-sa", {}},
      {PacketType::kEventUnregister, "list-sa", {}},
      {PacketType::kEventConfirm, "", {}},
      {PacketType::kEventUnknown, "", {}},
      {PacketType::kEvent, "list-sa", message},
      {PacketType::kEvent, "", {}},
  };
  for (const Packet& packet : packets) {
    auto encoded = encode_packet(packet);
    ASSERT_TRUE(encoded) << encoded.error().describe();
    auto segment = next_segment(*encoded);
    ASSERT_TRUE(segment && segment->has_value());
    EXPECT_EQ((*segment)->consumed, encoded->size());
    auto decoded = decode_packet((*segment)->packet);
    ASSERT_TRUE(decoded) << decoded.error().describe();
    EXPECT_EQ(*decoded, packet) << static_cast<int>(packet.type);
  }
}

TEST(Vici, SegmentSplitterWaitsForWholeSegments) {
  Bytes stream = encode_packet({PacketType::kEvent, "list-sa", readme_tree()}).value();
  const std::size_t first = stream.size();
  const Bytes second = encode_packet({PacketType::kCmdResponse, "", {}}).value();
  stream.insert(stream.end(), second.begin(), second.end());
  for (std::size_t n = 0; n < first; ++n) {
    auto partial = next_segment(ByteSpan(stream).first(n));
    ASSERT_TRUE(partial);
    EXPECT_FALSE(partial->has_value()) << n;
  }
  auto one = next_segment(stream);
  ASSERT_TRUE(one && one->has_value());
  EXPECT_EQ((*one)->consumed, first);
  EXPECT_EQ((*one)->packet.size(), first - kLengthSize);
  auto two = next_segment(ByteSpan(stream).subspan(first));
  ASSERT_TRUE(two && two->has_value());
  EXPECT_EQ(decode_packet((*two)->packet).value().type, PacketType::kCmdResponse);
}

TEST(Vici, SegmentLengthAboveTheCapIsRefusedFromItsHeader) {
  auto at_cap = next_segment(bytes_of({0x00, 0x08, 0x00, 0x00}));  // 512 KiB: wait for it
  ASSERT_TRUE(at_cap);
  EXPECT_FALSE(at_cap->has_value());
  auto over = next_segment(bytes_of({0x00, 0x08, 0x00, 0x01}));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().kind, Kind::kTooLarge);
  auto huge = next_segment(bytes_of({0xff, 0xff, 0xff, 0xff}));
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().kind, Kind::kTooLarge);
}

TEST(Vici, EveryProperPrefixOfTheExampleFailsUnlessItIsAWholeMessage) {
  for (std::size_t n = 1; n < kReadmeExample.size(); ++n) {
    auto decoded = decode_message(ByteSpan(kReadmeExample).first(n));
    if (n == 14) {  // exactly "key1 = value1"
      EXPECT_TRUE(decoded);
      continue;
    }
    ASSERT_FALSE(decoded) << n;
    EXPECT_TRUE(decoded.error().kind == Kind::kTruncated ||
                decoded.error().kind == Kind::kUnbalanced)
        << n << ": " << decoded.error().describe();
  }
}

TEST(Vici, TruncatedNamesValuesAndLengths) {
  EXPECT_EQ(decode_error(bytes_of({3})), Kind::kTruncated);                     // name length
  EXPECT_EQ(decode_error(bytes_of({3, 4, 'k', 'e'})), Kind::kTruncated);        // name
  EXPECT_EQ(decode_error(bytes_of({3, 1, 'k', 0})), Kind::kTruncated);          // value length
  EXPECT_EQ(decode_error(bytes_of({3, 1, 'k', 0, 5, 'a'})), Kind::kTruncated);  // value
  EXPECT_EQ(decode_error(bytes_of({4, 1, 'l', 5, 0})), Kind::kTruncated);       // item length
  auto error = decode_message(bytes_of({3, 1, 'k', 0, 0, 3, 4, 'k', 'e'}));
  ASSERT_FALSE(error);
  EXPECT_EQ(error.error().offset, 7u);  // the second name, after its type and length bytes
  EXPECT_NE(error.error().describe().find("KEY_VALUE name"), std::string::npos);
}

TEST(Vici, UnknownElementTypes) {
  for (int type : {0, 7, 0x80, 0xff}) {
    auto error = decode_message(bytes_of({3, 1, 'k', 0, 0, type}));
    ASSERT_FALSE(error);
    EXPECT_EQ(error.error().kind, Kind::kBadElementType) << type;
    EXPECT_EQ(error.error().offset, 5u);
  }
}

TEST(Vici, MisplacedElements) {
  EXPECT_EQ(decode_error(bytes_of({5, 0, 0})), Kind::kMisplacedElement);  // item outside a list
  EXPECT_EQ(decode_error(bytes_of({4, 1, 'l', 3, 1, 'k', 0, 0, 6})), Kind::kMisplacedElement);
  EXPECT_EQ(decode_error(bytes_of({4, 1, 'l', 4, 1, 'm', 6, 6})), Kind::kMisplacedElement);
  EXPECT_EQ(decode_error(bytes_of({4, 1, 'l', 1, 1, 's', 2, 6})), Kind::kMisplacedElement);
  EXPECT_EQ(decode_error(bytes_of({1, 1, 's', 4, 1, 'l', 2, 6, 2})), Kind::kMisplacedElement);
}

TEST(Vici, UnbalancedSectionsAndLists) {
  EXPECT_EQ(decode_error(bytes_of({2})), Kind::kUnbalanced);
  EXPECT_EQ(decode_error(bytes_of({6})), Kind::kUnbalanced);
  EXPECT_EQ(decode_error(bytes_of({1, 1, 's'})), Kind::kUnbalanced);
  EXPECT_EQ(decode_error(bytes_of({1, 1, 's', 2, 2})), Kind::kUnbalanced);
  EXPECT_EQ(decode_error(bytes_of({4, 1, 'l', 5, 0, 0})), Kind::kUnbalanced);
  EXPECT_EQ(decode_error(bytes_of({4, 1, 'l', 6, 6})), Kind::kUnbalanced);
}

TEST(Vici, NestingIsCappedOnBothSides) {
  auto deepest = encode_message(nested(kMaxDepth));
  ASSERT_TRUE(deepest) << deepest.error().describe();
  auto decoded = decode_message(*deepest);
  ASSERT_TRUE(decoded) << decoded.error().describe();
  EXPECT_EQ(*decoded, nested(kMaxDepth));

  EXPECT_EQ(encode_error(nested(kMaxDepth + 1)), Kind::kTooDeep);
  Bytes too_deep;
  for (std::size_t i = 0; i <= kMaxDepth; ++i) {
    const Bytes open = bytes_of({1, 1, 's'});
    too_deep.insert(too_deep.end(), open.begin(), open.end());
  }
  for (std::size_t i = 0; i <= kMaxDepth; ++i) too_deep.push_back(2);
  auto refused = decode_message(too_deep);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, Kind::kTooDeep);
  EXPECT_EQ(refused.error().offset, 3 * kMaxDepth);
  // Far deeper input fails the same way, without recursion.
  Bytes hostile;
  for (int i = 0; i < 100000; ++i) {
    for (std::uint8_t b : {1, 0}) hostile.push_back(b);
  }
  EXPECT_EQ(decode_error(hostile), Kind::kTooDeep);
}

TEST(Vici, NamesAreUniqueWithinASection) {
  EXPECT_EQ(decode_error(bytes_of({3, 1, 'a', 0, 0, 3, 1, 'a', 0, 0})), Kind::kDuplicateName);
  EXPECT_EQ(decode_error(bytes_of({3, 1, 'a', 0, 0, 4, 1, 'a', 6})), Kind::kDuplicateName);
  EXPECT_EQ(decode_error(bytes_of({1, 1, 'a', 2, 1, 1, 'a', 2})), Kind::kDuplicateName);
  // The same name in different sections is fine.
  auto ok = decode_message(bytes_of({3, 1, 'a', 0, 0, 1, 1, 's', 3, 1, 'a', 0, 0, 2}));
  ASSERT_TRUE(ok) << ok.error().describe();

  Section duplicate;
  duplicate.add_value("a", "1").add_list("a", {});
  EXPECT_EQ(encode_error(duplicate), Kind::kDuplicateName);
  Section inner_duplicate;
  inner_duplicate.add_section("s", duplicate);
  EXPECT_EQ(encode_error(inner_duplicate), Kind::kDuplicateName);
}

TEST(Vici, NameAndValueLengthsAreBoundedByTheirFields) {
  Section longest;
  longest.add_value(std::string(kMaxName, 'n'), std::string(kMaxValue, 'v'));
  longest.add_list("l", {std::string(kMaxValue, 'i')});
  auto encoded = encode_message(longest);
  ASSERT_TRUE(encoded);
  EXPECT_EQ(decode_message(*encoded).value(), longest);

  Section long_name;
  long_name.add_section(std::string(kMaxName + 1, 'n'), {});
  EXPECT_EQ(encode_error(long_name), Kind::kNameTooLong);
  Section long_value;
  long_value.add_value("k", std::string(kMaxValue + 1, 'v'));
  EXPECT_EQ(encode_error(long_value), Kind::kValueTooLong);
  Section long_item;
  long_item.add_list("l", {"ok", std::string(kMaxValue + 1, 'i')});
  EXPECT_EQ(encode_error(long_item), Kind::kValueTooLong);
  auto long_packet_name = encode_packet({PacketType::kEvent, std::string(kMaxName + 1, 'e'), {}});
  ASSERT_FALSE(long_packet_name);
  EXPECT_EQ(long_packet_name.error().kind, Kind::kNameTooLong);
}

TEST(Vici, SizeIsCappedAtTheSegmentLimit) {
  Section big;
  for (int i = 0; i < 9; ++i) big.add_value("k" + std::to_string(i), std::string(kMaxValue, 'v'));
  EXPECT_EQ(encode_error(big), Kind::kTooLarge);

  // A message exactly at the cap encodes, but not as a packet (the type byte comes on top).
  Section at_cap;
  std::size_t size = 0;
  for (char c = 'a'; size + 6 + kMaxValue <= kMaxSegment; ++c) {
    at_cap.add_value(std::string(2, c), std::string(kMaxValue, 'v'));
    size += 6 + kMaxValue;  // type, name length, two-byte name, value length, value
  }
  at_cap.add_value("z", std::string(kMaxSegment - size - 5, 'v'));
  auto message = encode_message(at_cap);
  ASSERT_TRUE(message) << message.error().describe();
  EXPECT_EQ(message->size(), kMaxSegment);
  auto packet = encode_packet({PacketType::kCmdResponse, "", at_cap});
  ASSERT_FALSE(packet);
  EXPECT_EQ(packet.error().kind, Kind::kTooLarge);

  Bytes oversized(kMaxSegment + 1, 0);
  EXPECT_EQ(decode_error(oversized), Kind::kTooLarge);
  auto oversized_packet = decode_packet(oversized);
  ASSERT_FALSE(oversized_packet);
  EXPECT_EQ(oversized_packet.error().kind, Kind::kTooLarge);
}

TEST(Vici, PacketErrors) {
  auto empty = decode_packet(Bytes{});
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().kind, Kind::kTruncated);
  auto unknown = decode_packet(bytes_of({8}));
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, Kind::kBadPacketType);
  auto no_name = decode_packet(bytes_of({3}));
  ASSERT_FALSE(no_name);
  EXPECT_EQ(no_name.error().kind, Kind::kTruncated);
  auto short_name = decode_packet(bytes_of({7, 3, 'a'}));
  ASSERT_FALSE(short_name);
  EXPECT_EQ(short_name.error().kind, Kind::kTruncated);
  auto trailing = decode_packet(bytes_of({5, 0}));
  ASSERT_FALSE(trailing);
  EXPECT_EQ(trailing.error().kind, Kind::kUnexpectedContent);
  auto trailing_after_name = decode_packet(bytes_of({3, 1, 'e', 1}));
  ASSERT_FALSE(trailing_after_name);
  EXPECT_EQ(trailing_after_name.error().kind, Kind::kUnexpectedContent);
  // A message error inside a packet is reported at its offset in the packet.
  auto bad_message = decode_packet(bytes_of({7, 1, 'e', 3, 1, 'k', 0, 0, 9}));
  ASSERT_FALSE(bad_message);
  EXPECT_EQ(bad_message.error().kind, Kind::kBadElementType);
  EXPECT_EQ(bad_message.error().offset, 8u);

  auto bad_type = encode_packet({static_cast<PacketType>(8), "", {}});
  ASSERT_FALSE(bad_type);
  EXPECT_EQ(bad_type.error().kind, Kind::kBadPacketType);
  auto named_response = encode_packet({PacketType::kCmdResponse, "name", {}});
  ASSERT_FALSE(named_response);
  EXPECT_EQ(named_response.error().kind, Kind::kUnexpectedContent);
  auto confirm_with_message = encode_packet({PacketType::kEventConfirm, "", readme_tree()});
  ASSERT_FALSE(confirm_with_message);
  EXPECT_EQ(confirm_with_message.error().kind, Kind::kUnexpectedContent);
}

TEST(Vici, ParsesAddressesIntoOneForm) {
  EXPECT_EQ(parse_ip_address("192.0.2.7"), parse_ip_address("::ffff:192.0.2.7"));
  EXPECT_EQ(parse_ip_address("2001:DB8:0:0::1"), parse_ip_address("2001:db8::1"));
  EXPECT_NE(parse_ip_address("192.0.2.7"), parse_ip_address("192.0.2.8"));
  EXPECT_NE(parse_ip_address("::192.0.2.7"), parse_ip_address("192.0.2.7"));
  for (std::string_view bad :
       {std::string_view(""), std::string_view("192.0.2"), std::string_view("192.0.2.7 "),
        std::string_view("192.0.2.7\0junk", 14), std::string_view("fe80::1%eth0"),
        std::string_view("site-a.enclave.test"),
        std::string_view("1111:2222:3333:4444:5555:6666:7777:8888:9999")}) {
    EXPECT_FALSE(parse_ip_address(bad)) << bad;
  }
}

// One IKE SA of a list-sa event, with the fields charon 5.9.8 sends (abridged) for a site
// that was assigned remote_vips.
Section ike_sa(std::string state, std::string remote_id, List remote_vips) {
  Section sa;
  sa.add_value("uniqueid", "1").add_value("version", "2").add_value("state", std::move(state));
  sa.add_value("local-host", "10.99.0.1").add_value("local-id", "center.enclave.test");
  sa.add_value("remote-host", "10.99.0.2").add_value("remote-id", std::move(remote_id));
  sa.add_list("local-vips", {"10.200.0.9"});
  sa.add_list("remote-vips", std::move(remote_vips)).add_section("child-sas", {});
  return sa;
}

Section list_sa_event(std::string state, std::string remote_id, List remote_vips) {
  Section event;
  event.add_section("sites",
                    ike_sa(std::move(state), std::move(remote_id), std::move(remote_vips)));
  return event;
}

TEST(Vici, IkeSaHoldsItsAssignedAddress) {
  const IpAddress vip = parse_ip_address("10.123.0.1").value();
  const Section event = list_sa_event("ESTABLISHED", "site-a.enclave.test", {"10.123.0.1"});
  EXPECT_TRUE(ike_sa_holds(event, "site-a.enclave.test", vip));
  EXPECT_TRUE(
      ike_sa_holds(event, "site-a.enclave.test", parse_ip_address("::ffff:10.123.0.1").value()));
  // Survives the wire.
  EXPECT_TRUE(ike_sa_holds(decode_message(encode_message(event).value()).value(),
                           "site-a.enclave.test", vip));
}

TEST(Vici, IkeSaDoesNotHoldOtherAddressesIdentitiesOrStates) {
  const IpAddress vip = parse_ip_address("10.123.0.1").value();
  const Section event = list_sa_event("ESTABLISHED", "site-a.enclave.test", {"10.123.0.1"});
  EXPECT_FALSE(ike_sa_holds(event, "site-a.enclave.test", parse_ip_address("10.123.0.2").value()));
  EXPECT_FALSE(ike_sa_holds(event, "site-b.enclave.test", vip));
  EXPECT_FALSE(ike_sa_holds(event, "site-a.enclave.tes", vip));
  EXPECT_FALSE(ike_sa_holds(event, "SITE-A.enclave.test", vip));
  // The center's own virtual IP (local-vips) is not the peer's.
  EXPECT_FALSE(ike_sa_holds(event, "site-a.enclave.test", parse_ip_address("10.200.0.9").value()));
  for (const char* state : {"CREATED", "CONNECTING", "REKEYING", "DELETING", "DESTROYING"}) {
    EXPECT_FALSE(ike_sa_holds(list_sa_event(state, "site-a.enclave.test", {"10.123.0.1"}),
                              "site-a.enclave.test", vip))
        << state;
  }
  EXPECT_FALSE(ike_sa_holds(list_sa_event("ESTABLISHED", "site-a.enclave.test", {}),
                            "site-a.enclave.test", vip));
  EXPECT_FALSE(ike_sa_holds(Section{}, "site-a.enclave.test", vip));
  // A remote-vips that is not a list, or an entry that is not a section, proves nothing.
  Section malformed;
  malformed.add_value("sites", "state=ESTABLISHED remote-id=site-a.enclave.test");
  Section flat;
  flat.add_value("state", "ESTABLISHED").add_value("remote-id", "site-a.enclave.test");
  flat.add_value("remote-vips", "10.123.0.1");
  malformed.add_section("flat", flat);
  EXPECT_FALSE(ike_sa_holds(malformed, "site-a.enclave.test", vip));
}

TEST(Vici, AnyOfSeveralIkeSasAndVipsMayHoldTheAddress) {
  Section event = list_sa_event("CONNECTING", "site-a.enclave.test", {"10.123.0.1"});
  event.add_section("sites-2", ike_sa("ESTABLISHED", "site-a.enclave.test",
                                      {"fd00::7", "not an address", "10.123.0.1"}));
  EXPECT_TRUE(ike_sa_holds(event, "site-a.enclave.test", parse_ip_address("10.123.0.1").value()));
  EXPECT_TRUE(ike_sa_holds(event, "site-a.enclave.test", parse_ip_address("fd00:0::7").value()));
  EXPECT_FALSE(ike_sa_holds(event, "site-a.enclave.test", parse_ip_address("fd00::8").value()));
}

}  // namespace
}  // namespace enclave::gateway::vici
