#include "gateway/core/relay.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gateway/core/client_info.hpp"
#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "gateway/core/preconnection.hpp"
#include "gateway/core/vchannel.hpp"
#include "gateway/core/x224.hpp"

namespace enclave::gateway {
namespace {

using Kind = RelayEvent::Kind;

// The ids the host assigns in these sessions.
constexpr std::uint16_t kIo = 1003;
constexpr std::uint16_t kCliprdr = 1004;
constexpr std::uint16_t kRdpdr = 1005;
constexpr std::uint16_t kRdpsnd = 1006;
constexpr std::uint16_t kDrdynvc = 1007;
constexpr std::uint16_t kMsg = 1008;
constexpr std::uint16_t kUser = 1009;
constexpr std::uint16_t kServer = 1002;

constexpr std::uint32_t kChannelOptions = 0x80000000 | 0x40000000 | 0x00800000;  // + COMPRESS_RDP

void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v));
  b.push_back(static_cast<std::uint8_t>(v >> 8));
}
void put32(Bytes& b, std::uint32_t v) {
  put16(b, static_cast<std::uint16_t>(v));
  put16(b, static_cast<std::uint16_t>(v >> 16));
}
Bytes cat(std::initializer_list<ByteSpan> parts) {
  Bytes out;
  for (auto p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

template <class T>
T ok(PduResult<T> r) {
  EXPECT_TRUE(r.has_value()) << r.error().describe();
  return std::move(r).value();
}

// ---- PDU builders (H1's encoders and ours) ----

ClientConnectData client_data() {
  ClientConnectData d;
  d.encryption_methods = 0;
  for (const char* name : {"cliprdr", "rdpdr", "rdpsnd", "drdynvc"}) {
    ClientChannel ch;
    ch.name = name;
    ch.options = kChannelOptions;
    d.channels.push_back(ch);
  }
  d.cluster_flags = kClusterRedirectionSupported | 0x0C;  // + REDIRECTION_VERSION4
  d.message_channel_flags = 0;
  d.multitransport_flags = 0x00000305;
  return d;
}

Bytes connect_initial() {
  const Bytes blocks = ok(encode_client_data_blocks(client_data()));
  return ok(encode_connect_initial(ConnectInitial{}, blocks));
}

ServerConnectData server_data() {
  ServerConnectData d;
  d.client_requested_protocols = kProtocolSsl;
  d.io_channel_id = kIo;
  d.channel_ids = {kCliprdr, kRdpdr, kRdpsnd, kDrdynvc};
  d.message_channel_id = kMsg;
  return d;
}

Bytes connect_response(const ServerConnectData& d = server_data()) {
  const Bytes blocks = ok(encode_server_data_blocks(d));
  return ok(encode_connect_response(ConnectResponse{}, blocks));
}

Bytes domain(DomainPdu pdu) {
  return ok(encode_data_tpdu(ok(encode_domain_pdu(pdu))));
}

Bytes erect_domain() {
  DomainPdu p;
  p.type = DomainPduType::kErectDomainRequest;
  return domain(p);
}
Bytes attach_user_request() {
  DomainPdu p;
  p.type = DomainPduType::kAttachUserRequest;
  return domain(p);
}
Bytes attach_user_confirm() {
  DomainPdu p;
  p.type = DomainPduType::kAttachUserConfirm;
  p.result = 0;
  p.initiator = kUser;
  return domain(p);
}

Bytes to_host(std::uint16_t channel, ByteSpan user_data) {
  return ok(encode_send_data(SendDataHeader{false, kUser, channel}, user_data));
}
Bytes to_client(std::uint16_t channel, ByteSpan user_data) {
  return ok(encode_send_data(SendDataHeader{true, kServer, channel}, user_data));
}

Bytes client_info_data(std::uint16_t sec_flags = kSecInfoPkt) {
  ClientInfo info;
  info.security_flags = sec_flags;
  info.flags = kInfoMouse | kInfoUnicode | 0x00010000;
  info.domain = "";
  info.user_name = "analyst";
  info.password = "";
  info.extra_info = {0x02, 0x00, 0x02, 0x00, 0x00, 0x00};
  return ok(encode_client_info(info));
}

// A licensing PDU (License Error, STATUS_VALID_CLIENT) with its security header.
Bytes license_valid_client() {
  Bytes b;
  put16(b, kSecLicensePkt);
  put16(b, 0);
  b.insert(b.end(), {0xFF, 0x03, 0x10, 0x00});  // ERROR_ALERT, version 3, wMsgSize 16
  put32(b, 0x00000007);                         // STATUS_VALID_CLIENT
  put32(b, 0x00000002);                         // ST_NO_TRANSITION
  put16(b, 0x0004);                             // BB_ERROR_BLOB
  put16(b, 0);
  return b;
}

Bytes share_control(std::uint16_t type, std::uint16_t source, ByteSpan body) {
  Bytes b;
  put16(b, static_cast<std::uint16_t>(6 + body.size()));
  put16(b, static_cast<std::uint16_t>(type | 0x10));
  put16(b, source);
  b.insert(b.end(), body.begin(), body.end());
  return b;
}

Bytes demand_active() {
  Bytes body;
  put32(body, 0x000103EA);  // shareId
  put16(body, 4);           // lengthSourceDescriptor
  put16(body, 4);           // lengthCombinedCapabilities
  body.insert(body.end(), {'R', 'D', 'P', 0});
  put16(body, 0);  // numberCapabilities
  put16(body, 0);  // pad2Octets
  put32(body, 0);  // sessionId
  return share_control(0x1, kServer, body);
}

// A slow-path input PDU (share data PDU, pduType2 INPUT) with one scancode event.
Bytes slow_path_input() {
  Bytes body;
  put32(body, 0x000103EA);  // shareId
  body.push_back(0);        // pad1
  body.push_back(1);        // streamId
  put16(body, 16);          // uncompressedLength
  body.push_back(0x1C);     // pduType2 INPUT
  body.push_back(0);
  put16(body, 0);
  put16(body, 1);  // numEvents
  put16(body, 0);
  put32(body, 0);       // eventTime
  put16(body, 0x0004);  // INPUT_EVENT_SCANCODE
  put16(body, 0);       // keyboardFlags
  put16(body, 0x1E);    // keyCode
  put16(body, 0);       // pad2Octets
  return share_control(0x7, kUser, body);
}

Bytes vc(ByteSpan data, std::uint32_t flags = kChannelFlagFirst | kChannelFlagLast,
         std::optional<std::uint32_t> length = std::nullopt) {
  Bytes out;
  encode_channel_pdu(length.value_or(static_cast<std::uint32_t>(data.size())), flags, data, out);
  return out;
}

Bytes dyn_create(std::uint32_t id, std::string_view name) {
  DynvcPdu p;
  p.cmd = DynvcCmd::kCreate;
  p.channel_id = id;
  p.channel_name = std::string(name);
  return encode_dynvc(p, DynvcFrom::kServer);
}
Bytes dyn_data(std::uint32_t id, std::string_view payload) {
  return cat({Bytes{0x30, static_cast<std::uint8_t>(id)}, as_bytes(payload)});
}

Bytes fast_path_update() {  // server fast-path output: one orders update, 1-byte length
  return Bytes{0x00, 0x08, 0x00, 0x02, 0x00, 0xAA, 0xBB, 0xCC};
}
Bytes fast_path_input() {  // client fast-path input: numEvents 1 in the header, a scancode
  return Bytes{0x04, 0x05, 0x00, 0x1E, 0x00};
}

RelayConfig config(std::string user = "svc-desk-07", std::string password = "S3cret!pw") {
  RelayConfig c;
  c.channels = ChannelPolicy::display_only();
  c.credentials.domain = "ENCLAVE";
  c.credentials.user = std::move(user);
  c.credentials.password = std::move(password);
  return c;
}

// One step of a session: which side sends which bytes.
struct Step {
  bool from_client;
  Bytes bytes;
};

// Up to the Client Info PDU: what the licensing and redirection tests start from.
std::vector<Step> until_client_info() {
  return {{true, connect_initial()},
          {false, connect_response()},
          {false, attach_user_confirm()},
          {true, to_host(kIo, client_info_data())}};
}

std::vector<Step> cat_steps(std::vector<Step> a, const std::vector<Step>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<Step> handshake() {
  return {
      {true, connect_initial()},
      {false, connect_response()},
      {true, erect_domain()},
      {true, attach_user_request()},
      {false, attach_user_confirm()},
      {true, to_host(kIo, client_info_data())},
      {false, to_client(kIo, license_valid_client())},
      {false, to_client(kIo, demand_active())},
  };
}

struct Session {
  RelayMachine machine;
  RelayOutput out;

  explicit Session(RelayConfig c = config()) : machine(std::move(c)) {}

  PduResult<void> feed(const Step& s) {
    return s.from_client ? machine.from_client(s.bytes, out) : machine.from_host(s.bytes, out);
  }
  void run(const std::vector<Step>& steps) {
    for (const auto& s : steps) {
      auto r = feed(s);
      ASSERT_TRUE(r.has_value()) << r.error().describe();
    }
  }
  // Runs steps and returns what came out of this call alone.
  RelayOutput step(bool from_client, ByteSpan bytes) {
    RelayOutput o;
    auto r = from_client ? machine.from_client(bytes, o) : machine.from_host(bytes, o);
    EXPECT_TRUE(r.has_value()) << r.error().describe();
    return o;
  }
  const ChannelCounters& counter(std::string_view name) const {
    for (const auto& c : machine.counters()) {
      if (c.name == name) return c;
    }
    static const ChannelCounters none;
    ADD_FAILURE() << "no counter " << name;
    return none;
  }
};

std::vector<std::pair<Kind, std::string>> events_of(const RelayOutput& o) {
  std::vector<std::pair<Kind, std::string>> out;
  for (const auto& e : o.events) out.emplace_back(e.kind, e.name);
  return out;
}

// The PDUs of a relayed stream, split as a peer would.
std::vector<Bytes> split(ByteSpan stream) {
  std::vector<Bytes> out;
  while (!stream.empty()) {
    auto frame = split_frame(stream);
    EXPECT_TRUE(frame.has_value() && frame->has_value());
    if (!frame || !*frame || (*frame)->size > stream.size()) {
      ADD_FAILURE() << "stream does not split into whole PDUs";
      break;
    }
    out.emplace_back(stream.begin(), stream.begin() + static_cast<long>((*frame)->size));
    stream = stream.subspan((*frame)->size);
  }
  return out;
}

// ---- phase 1 and 2 ----

TEST(Negotiation, ClientOfferingTlsGetsATlsOnlyRequestToTheHost) {
  for (std::uint32_t offered : {kProtocolSsl, kProtocolSsl | kProtocolHybrid,
                                kProtocolSsl | kProtocolHybrid | kProtocolHybridEx}) {
    ConnectionRequest cr;
    cr.cookie = "Cookie: mstshash=analyst";
    cr.negotiation = NegotiationRequest{0, offered};
    auto step = negotiate_client_request(ok(encode_connection_request(cr)));
    ASSERT_TRUE(step.has_value()) << step.error().describe();
    EXPECT_FALSE(step->refusal.has_value());
    EXPECT_TRUE(step->to_client.empty());
    auto host = ok(decode_connection_request(step->to_host));
    EXPECT_FALSE(host.cookie.has_value());
    ASSERT_TRUE(host.negotiation.has_value());
    EXPECT_EQ(host.negotiation->requested_protocols, kProtocolSsl);
  }
}

TEST(Negotiation, ClientWithoutTlsIsRefused) {
  std::vector<ConnectionRequest> requests(2);
  requests[0].negotiation = NegotiationRequest{0, kProtocolRdp};
  requests[1].cookie = "Cookie: mstshash=old";  // no RDP_NEG_REQ at all
  for (const auto& cr : requests) {
    auto step = negotiate_client_request(ok(encode_connection_request(cr)));
    ASSERT_TRUE(step.has_value());
    ASSERT_TRUE(step->refusal.has_value());
    EXPECT_TRUE(step->to_host.empty());
    auto cc = ok(decode_connection_confirm(step->to_client));
    ASSERT_TRUE(cc.failure_code.has_value());
    EXPECT_EQ(*cc.failure_code, kSslRequiredByServer);
  }
  // HYBRID without SSL is refused too: the gateway terminates TLS, not CredSSP.
  ConnectionRequest hybrid;
  hybrid.negotiation = NegotiationRequest{0, kProtocolHybrid};
  auto step = negotiate_client_request(ok(encode_connection_request(hybrid)));
  ASSERT_TRUE(step.has_value());
  EXPECT_TRUE(step->refusal.has_value());
}

TEST(Negotiation, MalformedRequestIsAnError) {
  EXPECT_FALSE(
      negotiate_client_request(Bytes{0x03, 0x00, 0x00, 0x07, 0x02, 0xF0, 0x80}).has_value());
}

TEST(Negotiation, HostSelectingTlsGivesTheClientATlsConfirm) {
  ConnectionConfirm cc;
  cc.response = NegotiationResponse{static_cast<std::uint8_t>(kNegRspExtendedClientDataSupported |
                                                              kNegRspDynvcGfxProtocolSupported |
                                                              kNegRspRestrictedAdminModeSupported),
                                    kProtocolSsl};
  auto step = negotiate_host_confirm(ok(encode_connection_confirm(cc)));
  ASSERT_TRUE(step.has_value());
  EXPECT_FALSE(step->refusal.has_value());
  auto to_client = ok(decode_connection_confirm(step->to_client));
  ASSERT_TRUE(to_client.response.has_value());
  EXPECT_EQ(to_client.response->selected_protocol, kProtocolSsl);
  EXPECT_EQ(to_client.response->flags,
            kNegRspExtendedClientDataSupported | kNegRspDynvcGfxProtocolSupported);
}

TEST(Negotiation, HostSelectingAnythingElseIsRefused) {
  struct Case {
    ConnectionConfirm cc;
    std::string named;
  };
  std::vector<Case> cases(4);
  cases[0].cc.response = NegotiationResponse{0, kProtocolHybrid};
  cases[0].named = "PROTOCOL_HYBRID";
  cases[1].named = "legacy RDP security";  // no RDP_NEG_RSP
  cases[2].cc.failure_code = kHybridRequiredByServer;
  cases[2].named = "0x00000005";
  cases[3].cc.response = NegotiationResponse{0, kProtocolRdp};
  cases[3].named = "PROTOCOL_RDP";
  for (const auto& c : cases) {
    auto step = negotiate_host_confirm(ok(encode_connection_confirm(c.cc)));
    ASSERT_TRUE(step.has_value());
    ASSERT_TRUE(step->refusal.has_value()) << c.named;
    EXPECT_NE(step->refusal->find(c.named), std::string::npos) << *step->refusal;
    auto to_client = ok(decode_connection_confirm(step->to_client));
    EXPECT_TRUE(to_client.failure_code.has_value());
    EXPECT_FALSE(to_client.response.has_value());
  }
}

TEST(Preconnection, ReadsTheTicketAndReportsWhatItTook) {
  PreconnectionPdu pdu;
  pdu.id = 7;
  pdu.blob = "ticket-abc";
  const Bytes bytes = ok(encode_preconnection(pdu));
  const Bytes with_more = cat({bytes, Bytes{0x03, 0x00}});
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto partial = read_preconnection(ByteSpan(with_more).first(n));
    ASSERT_TRUE(partial.has_value()) << n;
    EXPECT_FALSE(partial->has_value()) << n;
  }
  auto full = read_preconnection(with_more);
  ASSERT_TRUE(full.has_value() && full->has_value());
  EXPECT_EQ((*full)->blob, "ticket-abc");
  EXPECT_EQ((*full)->id, 7u);
  EXPECT_EQ((*full)->consumed, bytes.size());
  EXPECT_FALSE(read_preconnection(Bytes(16, 0xFF)).has_value());
}

TEST(CompleteTpktSize, WaitsForTheWholePdu) {
  ConnectionRequest cr;
  cr.negotiation = NegotiationRequest{};
  const Bytes pdu = ok(encode_connection_request(cr));
  for (std::size_t n = 0; n < pdu.size(); ++n) {
    auto size = complete_tpkt_size(ByteSpan(pdu).first(n));
    ASSERT_TRUE(size.has_value());
    EXPECT_FALSE(size->has_value()) << n;
  }
  auto size = complete_tpkt_size(cat({pdu, pdu}));
  ASSERT_TRUE(size.has_value() && size->has_value());
  EXPECT_EQ(**size, pdu.size());
  EXPECT_FALSE(complete_tpkt_size(Bytes{0x16, 0x03, 0x01, 0x00}).has_value());  // TLS, not TPKT
}

TEST(DisconnectUltimatum, IsUserRequested) {
  EXPECT_EQ(disconnect_ultimatum(), (Bytes{0x03, 0x00, 0x00, 0x09, 0x02, 0xF0, 0x80, 0x21, 0x80}));
}

// ---- phase 3 ----

TEST(Relay, ConnectInitialRenamesDeniedChannelsInPlace) {
  Session s;
  const Bytes ci = connect_initial();
  RelayOutput o = s.step(true, ci);
  ASSERT_EQ(o.to_host.size(), ci.size());
  EXPECT_TRUE(o.to_client.empty());
  auto host = ok(decode_client_connect_initial(o.to_host));
  ASSERT_EQ(host.channels.size(), 4u);
  EXPECT_EQ(host.channels[0].name, "_deny01");
  EXPECT_EQ(host.channels[1].name, "_deny02");
  EXPECT_EQ(host.channels[2].name, "_deny03");
  EXPECT_EQ(host.channels[3].name, "drdynvc");
  // The options of denied channels are kept; drdynvc loses compression (the relay reads it).
  EXPECT_EQ(host.channels[0].options, kChannelOptions);
  EXPECT_EQ(host.channels[3].options, kChannelOptions & ~0x00800000u);
  ASSERT_TRUE(host.cluster_flags.has_value());
  EXPECT_EQ(*host.cluster_flags & kClusterRedirectionSupported, 0u);
  EXPECT_EQ(*host.cluster_flags, 0x0Cu);
  ASSERT_TRUE(host.multitransport_flags.has_value());
  EXPECT_EQ(*host.multitransport_flags, 0u);
  // Nothing else changed.
  std::size_t differing = 0;
  for (std::size_t i = 0; i < ci.size(); ++i) differing += ci[i] != o.to_host[i];
  EXPECT_LE(differing, 3u * 7 + 1 + 1 + 2);

  EXPECT_EQ(events_of(o),
            (std::vector<std::pair<Kind, std::string>>{{Kind::kStaticChannelRefused, "cliprdr"},
                                                       {Kind::kStaticChannelRefused, "rdpdr"},
                                                       {Kind::kStaticChannelRefused, "rdpsnd"}}));
  const auto& counters = s.machine.counters();
  std::vector<std::pair<std::string, bool>> named;
  for (const auto& c : counters) named.emplace_back(c.name, c.allowed);
  EXPECT_EQ(named, (std::vector<std::pair<std::string, bool>>{{"fastpath", true},
                                                              {"io", true},
                                                              {"mcs", true},
                                                              {"cliprdr", false},
                                                              {"rdpdr", false},
                                                              {"rdpsnd", false},
                                                              {"drdynvc", true}}));
}

TEST(Relay, AllowedStaticChannelsKeepTheirNames) {
  RelayConfig c = config();
  c.channels.static_allowed.insert("rdpsnd");
  Session s(std::move(c));
  RelayOutput o = s.step(true, connect_initial());
  auto host = ok(decode_client_connect_initial(o.to_host));
  EXPECT_EQ(host.channels[1].name, "_deny02");
  EXPECT_EQ(host.channels[2].name, "rdpsnd");
  EXPECT_EQ(o.events.size(), 2u);
}

TEST(Relay, ConnectResponseMapsChannelIds) {
  Session s;
  s.step(true, connect_initial());
  const Bytes cr = connect_response();
  RelayOutput o = s.step(false, cr);
  EXPECT_EQ(o.to_client, cr);
  EXPECT_EQ(s.counter("io").id, kIo);
  EXPECT_EQ(s.counter("cliprdr").id, kCliprdr);
  EXPECT_EQ(s.counter("rdpdr").id, kRdpdr);
  EXPECT_EQ(s.counter("rdpsnd").id, kRdpsnd);
  EXPECT_EQ(s.counter("drdynvc").id, kDrdynvc);
}

TEST(Relay, ConnectResponseWithReusedIdsFails) {
  Session s;
  s.step(true, connect_initial());
  ServerConnectData d = server_data();
  d.channel_ids[0] = kDrdynvc;  // cliprdr and drdynvc on one id
  RelayOutput o;
  EXPECT_FALSE(s.machine.from_host(connect_response(d), o).has_value());
  EXPECT_TRUE(s.machine.failed());
}

TEST(Relay, ConnectResponseWithLegacyEncryptionFails) {
  Session s;
  s.step(true, connect_initial());
  // SC_SECURITY with ENCRYPTION_METHOD_128BIT / level CLIENT_COMPATIBLE, no random/cert.
  Bytes sc_security;
  put16(sc_security, kScSecurity);
  put16(sc_security, 20);
  put32(sc_security, 0x00000002);
  put32(sc_security, 0x00000002);
  put32(sc_security, 0);
  put32(sc_security, 0);
  Bytes blocks = ok(encode_server_data_blocks(server_data()));
  // Replace the encoded SC_SECURITY block (type 0x0C02) with the one above.
  for (std::size_t at = 0; at + 4 <= blocks.size();) {
    const std::uint16_t type = static_cast<std::uint16_t>(blocks[at] | (blocks[at + 1] << 8));
    const std::uint16_t len = static_cast<std::uint16_t>(blocks[at + 2] | (blocks[at + 3] << 8));
    if (type == kScSecurity) {
      blocks.erase(blocks.begin() + static_cast<long>(at),
                   blocks.begin() + static_cast<long>(at + len));
      blocks.insert(blocks.begin() + static_cast<long>(at), sc_security.begin(), sc_security.end());
      break;
    }
    at += len;
  }
  ASSERT_EQ(ok(decode_server_data_blocks(blocks)).encryption_method, 2u);
  RelayOutput o;
  auto r = s.machine.from_host(ok(encode_connect_response(ConnectResponse{}, blocks)), o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().describe().find("legacy RDP encryption"), std::string::npos);
  EXPECT_TRUE(o.to_client.empty());
}

TEST(Relay, ClientInfoGetsTheDesktopCredentials) {
  Session s;
  s.run({{true, connect_initial()},
         {false, connect_response()},
         {true, erect_domain()},
         {true, attach_user_request()},
         {false, attach_user_confirm()}});
  EXPECT_FALSE(s.machine.credentials_sent());
  RelayOutput o = s.step(true, to_host(kIo, client_info_data()));
  ASSERT_TRUE(s.machine.credentials_sent());
  auto pdu = ok(decode_domain_pdu_in_tpkt(o.to_host));
  EXPECT_EQ(pdu.type, DomainPduType::kSendDataRequest);
  EXPECT_EQ(pdu.channel_id, kIo);
  EXPECT_EQ(pdu.initiator, kUser);
  auto info = ok(decode_client_info(pdu.user_data));
  EXPECT_EQ(info.domain, "ENCLAVE");
  EXPECT_EQ(info.user_name, "svc-desk-07");
  EXPECT_EQ(info.password, "S3cret!pw");
  EXPECT_NE(info.flags & kInfoAutologon, 0u);
  EXPECT_NE(info.flags & kInfoUnicode, 0u);
  EXPECT_EQ(info.extra_info, (Bytes{0x02, 0x00, 0x02, 0x00, 0x00, 0x00}));
  ASSERT_EQ(o.events.size(), 1u);
  EXPECT_EQ(o.events[0].kind, Kind::kCredentialsInjected);
  EXPECT_EQ(o.events[0].name, "svc-desk-07");
  EXPECT_EQ(o.events[0].detail.find("S3cret"), std::string::npos);
}

TEST(Relay, WithoutCredentialsTheClientInfoPassesUnchanged) {
  Session s(config("", ""));
  s.run({{true, connect_initial()}, {false, connect_response()}, {false, attach_user_confirm()}});
  const Bytes info = to_host(kIo, client_info_data());
  RelayOutput o = s.step(true, info);
  EXPECT_EQ(o.to_host, info);
  EXPECT_FALSE(s.machine.credentials_sent());
}

TEST(Relay, EncryptedClientInfoFails) {
  for (const char* user : {"svc", ""}) {
    Session s(config(user, "pw"));
    s.run({{true, connect_initial()}, {false, connect_response()}, {false, attach_user_confirm()}});
    RelayOutput o;
    EXPECT_FALSE(s.machine.from_client(to_host(kIo, client_info_data(kSecInfoPkt | kSecEncrypt)), o)
                     .has_value());
    EXPECT_TRUE(o.to_host.empty());
    EXPECT_TRUE(s.machine.failed());
  }
}

TEST(Relay, FirstIoPduMustBeTheClientInfo) {
  Session s;
  s.run({{true, connect_initial()}, {false, connect_response()}, {false, attach_user_confirm()}});
  RelayOutput o;
  EXPECT_FALSE(s.machine.from_client(to_host(kIo, slow_path_input()), o).has_value());
}

TEST(Relay, ClientInfoCannotSlipPastTheRewrite) {
  // Before the Connect-Response no channel exists (io id still unknown).
  Session early;
  early.step(true, connect_initial());
  RelayOutput o;
  EXPECT_FALSE(early.machine.from_client(to_host(0, client_info_data()), o).has_value());
  EXPECT_FALSE(early.machine.credentials_sent());
  // A second Client Info after the rewritten one.
  Session s;
  s.run(until_client_info());
  RelayOutput o2;
  EXPECT_FALSE(s.machine.from_client(to_host(kIo, client_info_data()), o2).has_value());
  EXPECT_TRUE(o2.to_host.empty());
}

TEST(Relay, DeniedStaticChannelDataIsDroppedBothWays) {
  Session s;
  s.run(handshake());
  const Bytes up = to_host(kCliprdr, vc(as_bytes("format list")));
  const Bytes down = to_client(kCliprdr, vc(as_bytes("clipboard data!")));
  RelayOutput o1 = s.step(true, up);
  RelayOutput o2 = s.step(false, down);
  RelayOutput o3 = s.step(true, up);
  EXPECT_TRUE(o1.to_host.empty() && o2.to_client.empty() && o3.to_host.empty());
  const auto& c = s.counter("cliprdr");
  EXPECT_EQ(c.dropped_to_host, 2 * up.size());
  EXPECT_EQ(c.dropped_to_client, down.size());
  EXPECT_EQ(c.to_host + c.to_client, 0u);
  ASSERT_EQ(o1.events.size(), 1u);
  EXPECT_EQ(o1.events[0].kind, Kind::kDeniedChannelData);
  EXPECT_EQ(o1.events[0].name, "cliprdr");
  EXPECT_TRUE(o2.events.empty());
  EXPECT_TRUE(o3.events.empty());
  // Another denied channel records its own first drop.
  RelayOutput o4 = s.step(false, to_client(kRdpdr, vc(as_bytes("announce"))));
  ASSERT_EQ(o4.events.size(), 1u);
  EXPECT_EQ(o4.events[0].name, "rdpdr");
}

TEST(Relay, DataOnAnUnknownChannelIdIsDropped) {
  Session s;
  s.run(handshake());
  RelayOutput o = s.step(true, to_host(1020, vc(as_bytes("x"))));
  EXPECT_TRUE(o.to_host.empty());
  EXPECT_GT(s.counter("mcs").dropped_to_host, 0u);
}

TEST(Relay, IoChannelTrafficIsCounted) {
  Session s;
  s.run(handshake());
  const auto& io = s.counter("io");
  EXPECT_GT(io.to_host, 0u);
  EXPECT_GT(io.to_client, 0u);
  EXPECT_GT(s.counter("mcs").to_host, 0u);
}

TEST(Relay, DisallowedDynamicChannelIsRefusedTowardTheHost) {
  Session s;
  s.run(handshake());
  const Bytes create = to_client(kDrdynvc, vc(dyn_create(5, "URBDRC")));
  RelayOutput o = s.step(false, create);
  EXPECT_TRUE(o.to_client.empty());
  ASSERT_FALSE(o.to_host.empty());
  auto pdu = ok(decode_domain_pdu_in_tpkt(o.to_host));
  EXPECT_EQ(pdu.type, DomainPduType::kSendDataRequest);
  EXPECT_EQ(pdu.initiator, kUser);
  EXPECT_EQ(pdu.channel_id, kDrdynvc);
  auto chunk = ok(decode_channel_pdu(pdu.user_data));
  EXPECT_EQ(chunk.flags, kChannelFlagFirst | kChannelFlagLast);
  EXPECT_EQ(chunk.length, chunk.data.size());
  auto response = ok(decode_dynvc(chunk.data, DynvcFrom::kClient));
  EXPECT_EQ(response.cmd, DynvcCmd::kCreate);
  EXPECT_EQ(response.channel_id, 5u);
  EXPECT_EQ(response.creation_status, kStatusAccessDenied);
  EXPECT_EQ(events_of(o),
            (std::vector<std::pair<Kind, std::string>>{{Kind::kDynamicChannelRefused, "URBDRC"}}));

  // Later traffic on the refused id goes nowhere, either way.
  RelayOutput d1 = s.step(false, to_client(kDrdynvc, vc(dyn_data(5, "usb"))));
  RelayOutput d2 = s.step(true, to_host(kDrdynvc, vc(dyn_data(5, "usb"))));
  RelayOutput d3 = s.step(false, to_client(kDrdynvc, vc(encode_dynvc_close(5))));
  EXPECT_TRUE(d1.to_client.empty() && d2.to_host.empty() && d3.to_client.empty());
  EXPECT_GT(s.counter("drdynvc").dropped_to_client, 0u);
  EXPECT_GT(s.counter("drdynvc").dropped_to_host, 0u);
}

TEST(Relay, AllowedDynamicChannelPasses) {
  Session s;
  s.run(handshake());
  const Bytes caps = to_client(kDrdynvc, vc(Bytes{0x50, 0x00, 0x03, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(s.step(false, caps).to_client, caps);
  const Bytes caps_rsp = to_host(kDrdynvc, vc(Bytes{0x50, 0x00, 0x03, 0x00}));
  EXPECT_EQ(s.step(true, caps_rsp).to_host, caps_rsp);
  const Bytes create = to_client(kDrdynvc, vc(dyn_create(6, "Microsoft::Windows::RDS::Graphics")));
  RelayOutput o = s.step(false, create);
  EXPECT_EQ(o.to_client, create);
  EXPECT_TRUE(o.to_host.empty());
  EXPECT_TRUE(o.events.empty());
  const Bytes ok_rsp = to_host(kDrdynvc, vc(encode_dynvc_create_response(6, 0)));
  EXPECT_EQ(s.step(true, ok_rsp).to_host, ok_rsp);
  const Bytes up = to_host(kDrdynvc, vc(dyn_data(6, "caps advertise")));
  EXPECT_EQ(s.step(true, up).to_host, up);
  const Bytes down = to_client(kDrdynvc, vc(dyn_data(6, "frame")));
  EXPECT_EQ(s.step(false, down).to_client, down);
  EXPECT_GT(s.counter("drdynvc").to_client, 0u);
}

TEST(Relay, ChunksFollowTheirFirstChunk) {
  Session s;
  s.run(handshake());
  s.step(false, to_client(kDrdynvc, vc(dyn_create(5, "URBDRC"))));
  s.step(false, to_client(kDrdynvc, vc(dyn_create(6, "Microsoft::Windows::RDS::Graphics"))));
  s.step(true, to_host(kDrdynvc, vc(encode_dynvc_create_response(6, 0))));
  // A three-chunk message on the refused id: every chunk dropped.
  const Bytes first = dyn_data(5, "0123456789");
  for (const Bytes& pdu : {to_client(kDrdynvc, vc(first, kChannelFlagFirst, 30)),
                           to_client(kDrdynvc, vc(as_bytes("abcdefghij"), 0, 30)),
                           to_client(kDrdynvc, vc(as_bytes("ABCDEFGH"), kChannelFlagLast, 30))}) {
    EXPECT_TRUE(s.step(false, pdu).to_client.empty());
  }
  // The same on the allowed id: every chunk passes.
  const Bytes first6 = dyn_data(6, "0123456789");
  for (const Bytes& pdu : {to_client(kDrdynvc, vc(first6, kChannelFlagFirst, 30)),
                           to_client(kDrdynvc, vc(as_bytes("abcdefghij"), 0, 30)),
                           to_client(kDrdynvc, vc(as_bytes("ABCDEFGH"), kChannelFlagLast, 30))}) {
    EXPECT_EQ(s.step(false, pdu).to_client, pdu);
  }
  // A middle chunk with no message begun is dropped.
  EXPECT_TRUE(s.step(false, to_client(kDrdynvc, vc(as_bytes("stray"), 0, 30))).to_client.empty());
}

TEST(Relay, CreateRequestNameCutByTheChunkFails) {
  Session s;
  s.run(handshake());
  Bytes head = {0x10, 0x05, 'U', 'R', 'B'};
  RelayOutput o;
  EXPECT_FALSE(
      s.machine.from_host(to_client(kDrdynvc, vc(head, kChannelFlagFirst, 20)), o).has_value());
  EXPECT_TRUE(o.to_client.empty());
}

TEST(Relay, CompressedDrdynvcFails) {
  Session s;
  s.run(handshake());
  RelayOutput o;
  EXPECT_FALSE(
      s.machine
          .from_host(to_client(kDrdynvc, vc(dyn_data(6, "x"), kChannelFlagFirst | kChannelFlagLast |
                                                                  kChannelPacketCompressed)),
                     o)
          .has_value());
}

TEST(Relay, FastPathPassesUntouched) {
  Session s;
  s.run(handshake());
  const Bytes down = fast_path_update();
  RelayOutput o1 = s.step(false, down);
  EXPECT_EQ(o1.to_client, down);
  EXPECT_FALSE(o1.client_input);
  const Bytes up = fast_path_input();
  RelayOutput o2 = s.step(true, up);
  EXPECT_EQ(o2.to_host, up);
  EXPECT_TRUE(o2.client_input);
  // A long fast-path PDU (2-byte length).
  Bytes big = {0x00, 0x81, 0x2C};
  big.resize(0x12C, 0x5A);
  EXPECT_EQ(s.step(false, big).to_client, big);
  EXPECT_EQ(s.counter("fastpath").to_client, down.size() + big.size());
  EXPECT_EQ(s.counter("fastpath").to_host, up.size());
}

TEST(Relay, SlowPathInputIsClientInput) {
  Session s;
  s.run(handshake());
  RelayOutput o = s.step(true, to_host(kIo, slow_path_input()));
  EXPECT_TRUE(o.client_input);
  EXPECT_FALSE(o.to_host.empty());
  Bytes confirm_active = share_control(0x3, kUser, Bytes(20, 0));
  EXPECT_FALSE(s.step(true, to_host(kIo, confirm_active)).client_input);
}

std::vector<Step> whole_session() {
  auto steps = handshake();
  auto add = [&](bool c, Bytes b) { steps.push_back({c, std::move(b)}); };
  add(false, fast_path_update());
  add(true, fast_path_input());
  add(true, to_host(kCliprdr, vc(as_bytes("formats"))));
  add(false, to_client(kCliprdr, vc(as_bytes("data"))));
  add(false, to_client(kDrdynvc, vc(Bytes{0x50, 0x00, 0x01, 0x00})));
  add(false, to_client(kDrdynvc, vc(dyn_create(3, "URBDRC"))));
  add(false, to_client(kDrdynvc, vc(dyn_create(4, "Microsoft::Windows::RDS::Graphics"))));
  add(true, to_host(kDrdynvc, vc(encode_dynvc_create_response(4, 0))));
  add(false, to_client(kDrdynvc, vc(dyn_data(4, "frame"))));
  add(false, to_client(kDrdynvc, vc(dyn_data(3, "usb"))));
  add(true, to_host(kIo, slow_path_input()));
  add(true, disconnect_ultimatum());
  return steps;
}

TEST(Relay, EverySplitOfTheInputGivesTheSameOutput) {
  const auto steps = whole_session();
  Session whole;
  whole.run(steps);
  ASSERT_FALSE(whole.machine.failed());

  Session bytewise;
  for (const auto& st : steps) {
    for (std::uint8_t b : st.bytes) {
      const ByteSpan one(&b, 1);
      auto r = st.from_client ? bytewise.machine.from_client(one, bytewise.out)
                              : bytewise.machine.from_host(one, bytewise.out);
      ASSERT_TRUE(r.has_value()) << r.error().describe();
    }
  }
  EXPECT_EQ(bytewise.out.to_host, whole.out.to_host);
  EXPECT_EQ(bytewise.out.to_client, whole.out.to_client);
  EXPECT_EQ(events_of(bytewise.out), events_of(whole.out));
  EXPECT_EQ(bytewise.out.client_input, whole.out.client_input);

  // The relayed streams are whole PDUs, and no host-bound PDU uses a denied channel id.
  for (const Bytes& pdu : split(whole.out.to_host)) {
    if (pdu[0] != 0x03) continue;
    auto domain_pdu = decode_domain_pdu_in_tpkt(pdu);
    if (!domain_pdu) continue;  // the connect PDU
    EXPECT_NE(domain_pdu->channel_id, kCliprdr);
    EXPECT_NE(domain_pdu->channel_id, kRdpdr);
    EXPECT_NE(domain_pdu->channel_id, kRdpsnd);
  }
  EXPECT_FALSE(split(whole.out.to_client).empty());
}

// What the gateway does with every read: the leading fast-path PDUs pass as they are, the
// rest goes through from_client/from_host.
RelayOutput pass_then_feed(RelayMachine& m, bool from_client, ByteSpan bytes, Bytes& passed) {
  RelayOutput o;
  const std::size_t n =
      from_client ? m.pass_fast_path_from_client(bytes, o) : m.pass_fast_path_from_host(bytes, o);
  passed.assign(bytes.begin(), bytes.begin() + static_cast<long>(n));
  auto r = from_client ? m.from_client(bytes.subspan(n), o) : m.from_host(bytes.subspan(n), o);
  EXPECT_TRUE(r.has_value()) << r.error().describe();
  return o;
}

TEST(Relay, FastPathPrefixPassesWithoutTheMachineCopyingIt) {
  Session s;
  s.run(handshake());
  const Bytes a = fast_path_update(), b = fast_path_update();
  const Bytes slow = to_client(kIo, demand_active());
  Bytes passed;
  // Two whole fast-path PDUs, then a slow-path one and the first byte of a fast-path one:
  // the prefix is the two; the machine relays the slow-path PDU and keeps the partial.
  const Bytes read = cat({a, b, slow, Bytes{fast_path_update()[0]}});
  RelayOutput o = pass_then_feed(s.machine, false, read, passed);
  EXPECT_EQ(passed, cat({a, b}));
  EXPECT_EQ(o.to_client, slow);
  EXPECT_EQ(s.counter("fastpath").to_client, a.size() + b.size());
  // Pending bytes from the host: nothing passes until the partial PDU is complete.
  const Bytes update = fast_path_update();
  const Bytes rest(update.begin() + 1, update.end());
  o = pass_then_feed(s.machine, false, cat({rest, a}), passed);
  EXPECT_TRUE(passed.empty());
  EXPECT_EQ(o.to_client, cat({fast_path_update(), a}));
  // Client fast-path is input for idle detection.
  o = pass_then_feed(s.machine, true, fast_path_input(), passed);
  EXPECT_EQ(passed, fast_path_input());
  EXPECT_TRUE(o.client_input);
  EXPECT_TRUE(o.to_host.empty());
  EXPECT_EQ(s.counter("fastpath").to_host, fast_path_input().size());
}

TEST(Relay, FastPathPrefixStopsAtWhatTheMachineMustJudge) {
  Session s;
  s.run(handshake());
  Bytes passed;
  RelayOutput o;
  // A fast-path length shorter than its own header is left to from_host, which fails.
  const Bytes bogus{0x00, 0x01, 0x00};
  EXPECT_EQ(s.machine.pass_fast_path_from_host(bogus, o), 0u);
  EXPECT_FALSE(s.machine.from_host(bogus, o).has_value());
  // After a failure nothing passes.
  EXPECT_EQ(s.machine.pass_fast_path_from_host(fast_path_update(), o), 0u);
  EXPECT_EQ(s.machine.pass_fast_path_from_client(fast_path_input(), o), 0u);
}

TEST(Relay, PassingFastPathFirstGivesTheSameStreamsAsFeedingEverything) {
  auto steps = whole_session();
  // Fast-path between slow-path PDUs in one read, as a busy desktop sends them.
  steps.insert(
      steps.end() - 1,
      {false, cat({fast_path_update(), to_client(kIo, demand_active()), fast_path_update()})});
  Session whole;
  whole.run(steps);
  RelayMachine passing(config());
  Bytes to_host, to_client, passed;
  std::vector<std::pair<Kind, std::string>> events;
  for (const auto& st : steps) {
    RelayOutput o = pass_then_feed(passing, st.from_client, st.bytes, passed);
    Bytes& same_way = st.from_client ? to_host : to_client;
    same_way.insert(same_way.end(), passed.begin(), passed.end());
    to_host.insert(to_host.end(), o.to_host.begin(), o.to_host.end());
    to_client.insert(to_client.end(), o.to_client.begin(), o.to_client.end());
    for (auto& e : events_of(o)) events.push_back(e);
  }
  EXPECT_EQ(to_host, whole.out.to_host);
  EXPECT_EQ(to_client, whole.out.to_client);
  EXPECT_EQ(events, events_of(whole.out));
  ASSERT_EQ(passing.counters().size(), whole.machine.counters().size());
  for (std::size_t i = 0; i < passing.counters().size(); ++i) {
    EXPECT_EQ(passing.counters()[i].to_host, whole.machine.counters()[i].to_host) << i;
    EXPECT_EQ(passing.counters()[i].to_client, whole.machine.counters()[i].to_client) << i;
  }
}

TEST(Relay, PduSplitAcrossCallsIsHeldUntilComplete) {
  Session s;
  const Bytes ci = connect_initial();
  RelayOutput o1 = s.step(true, ByteSpan(ci).first(10));
  EXPECT_TRUE(o1.to_host.empty());
  RelayOutput o2 = s.step(true, ByteSpan(ci).subspan(10));
  EXPECT_EQ(o2.to_host.size(), ci.size());
}

TEST(Relay, StandaloneServerRedirectionFails) {
  Session s;
  s.run(until_client_info());
  Bytes redirect;
  put16(redirect, kSecRedirectionPkt);
  put16(redirect, 0);
  put16(redirect, kSecRedirectionPkt);  // RDP_SERVER_REDIRECTION_PACKET.flags
  put16(redirect, 12);                  // length
  put32(redirect, 1);                   // sessionId
  put32(redirect, 0);                   // redirFlags
  RelayOutput o;
  auto r = s.machine.from_host(to_client(kIo, redirect), o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().describe().find("server redirection blocked"), std::string::npos);
  EXPECT_TRUE(o.to_client.empty());
  EXPECT_TRUE(s.machine.failed());
  // Stays failed, whatever comes next.
  RelayOutput later;
  EXPECT_FALSE(s.machine.from_client(fast_path_input(), later).has_value());
  EXPECT_FALSE(s.machine.from_host(fast_path_update(), later).has_value());
  EXPECT_TRUE(later.to_client.empty() && later.to_host.empty());
}

TEST(Relay, EnhancedSecurityServerRedirectionFails) {
  Bytes body;
  put16(body, 0);                   // pad
  put16(body, kSecRedirectionPkt);  // RDP_SERVER_REDIRECTION_PACKET.flags
  put16(body, 12);
  put32(body, 1);
  put32(body, 0);
  body.push_back(0);
  const Bytes redirect = share_control(0xA, kServer, body);
  // Before the Demand Active (instead of licensing) and after it.
  {
    Session s;
    s.run(until_client_info());
    RelayOutput o;
    EXPECT_FALSE(s.machine.from_host(to_client(kIo, redirect), o).has_value());
  }
  {
    Session s;
    s.run(handshake());
    RelayOutput o;
    EXPECT_FALSE(s.machine.from_host(to_client(kIo, redirect), o).has_value());
    EXPECT_TRUE(o.to_client.empty());
  }
  {
    // Hidden behind another share control PDU in the same Send Data Indication.
    Session s;
    s.run(handshake());
    RelayOutput o;
    const Bytes two = cat({share_control(0x7, kServer, Bytes(14, 0)), redirect});
    EXPECT_FALSE(s.machine.from_host(to_client(kIo, two), o).has_value());
  }
}

// A share control PDU of exactly `total` bytes.
Bytes share_control_of_size(std::uint16_t type, std::size_t total) {
  return share_control(type, kServer, Bytes(total - 6, 0));
}

TEST(Relay, RedirectionWhoseLengthLooksLikeALicensingHeaderFails) {
  // totalLength 0x0090 has SEC_LICENSE_PKT (0x0080) set: a reader in the licensing state
  // sees a licensing PDU, one past it a redirection. Both readings are refused.
  Session s;
  s.run(until_client_info());
  RelayOutput o;
  auto r = s.machine.from_host(to_client(kIo, share_control_of_size(0xA, 0x90)), o);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().describe().find("server redirection blocked"), std::string::npos);
}

TEST(Relay, DemandActiveOfAnyLengthIsRecognised) {
  // Lengths with the bits of SEC_REDIRECTION_PKT (0x400), SEC_LICENSE_PKT (0x80) and
  // SEC_ENCRYPT (0x8): all are Demand Actives.
  for (std::size_t length : {0x4A0, 0x1A0, 0x4A8, 0x420}) {
    Session s;
    s.run(cat_steps(until_client_info(), {{false, to_client(kIo, license_valid_client())}}));
    const Bytes da = to_client(kIo, share_control_of_size(0x1, length));
    EXPECT_EQ(s.step(false, da).to_client, da) << length;
    // After it, share control PDUs of any length pass (a Deactivate All of 0x410 bytes).
    const Bytes later = to_client(kIo, share_control_of_size(0x6, 0x410));
    EXPECT_EQ(s.step(false, later).to_client, later) << length;
    EXPECT_FALSE(s.machine.failed());
  }
}

TEST(Relay, FlowPdusAndTrailingBytesAreTolerated) {
  Session s;
  s.run(handshake());
  Bytes flow = {0x00, 0x80, 0x42, 0x00, 0x01, 0x00, 0xEA, 0x03};  // flow test PDU
  const Bytes pdu = to_client(kIo, cat({flow, share_control_of_size(0x7, 20), Bytes{0, 0}}));
  EXPECT_EQ(s.step(false, pdu).to_client, pdu);
  RelayOutput o;
  EXPECT_FALSE(
      s.machine
          .from_host(to_client(kIo, cat({share_control_of_size(0x7, 20), Bytes{0x40, 0, 7, 0}})), o)
          .has_value());  // a totalLength past the end
}

TEST(Relay, EncryptedHostPdusFail) {
  Session s;
  s.run(until_client_info());
  Bytes license = license_valid_client();
  license[0] |= kSecEncrypt;
  RelayOutput o;
  EXPECT_FALSE(s.machine.from_host(to_client(kIo, license), o).has_value());

  Session m;
  m.run(handshake());
  Bytes autodetect;
  put16(autodetect, kSecAutodetectReq | kSecEncrypt);
  put16(autodetect, 0);
  autodetect.insert(autodetect.end(), {0x06, 0x00, 0x01, 0x00, 0x01, 0x10});
  EXPECT_FALSE(m.machine.from_host(to_client(kMsg, autodetect), o).has_value());
}

TEST(Relay, MessageChannelPassesWithoutEncryption) {
  Session s;
  s.run(handshake());
  Bytes autodetect;
  put16(autodetect, kSecAutodetectReq);
  put16(autodetect, 0);
  autodetect.insert(autodetect.end(), {0x06, 0x00, 0x01, 0x00, 0x01, 0x10});
  const Bytes pdu = to_client(kMsg, autodetect);
  EXPECT_EQ(s.step(false, pdu).to_client, pdu);
}

TEST(Relay, OversizedPdusFail) {
  // A Client Info PDU that the injected credentials would push past what one PDU can carry.
  // Find the most user data one Send Data PDU carries, and fill a Client Info to exactly that.
  std::size_t limit = 0;
  for (std::size_t n : {0x3FFF, 0x7FFF, 0xFFFF - 16}) {
    if (encode_send_data(SendDataHeader{}, Bytes(n, 0)).has_value()) limit = n;
  }
  ASSERT_GT(limit, 0u);
  ClientInfo big;
  big.user_name = "u";
  const std::size_t base = ok(encode_client_info(big)).size();
  big.extra_info.assign(limit - base, 0);
  Bytes data = ok(encode_client_info(big));
  ASSERT_EQ(data.size(), limit);
  Session s;
  s.run({{true, connect_initial()}, {false, connect_response()}, {false, attach_user_confirm()}});
  RelayOutput o;
  auto r = s.machine.from_client(to_host(kIo, data), o);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, PduError::Kind::kTooLarge);
  EXPECT_TRUE(o.to_host.empty());

  // A TPKT header whose length is below the smallest PDU.
  Session t;
  EXPECT_FALSE(t.machine.from_client(Bytes{0x03, 0x00, 0x00, 0x02}, o).has_value());
}

TEST(Relay, MalformedInputFailsAndStaysFailed) {
  Session s;
  RelayOutput o;
  EXPECT_FALSE(s.machine.from_client(Bytes{0x01, 0x02, 0x03}, o).has_value());
  EXPECT_TRUE(s.machine.failed());
  EXPECT_FALSE(s.machine.from_client(connect_initial(), o).has_value());
  EXPECT_TRUE(o.to_host.empty());

  // A domain PDU before the connect exchange.
  Session d;
  EXPECT_FALSE(d.machine.from_client(erect_domain(), o).has_value());
  // A Connect-Response before any Connect-Initial.
  Session r;
  EXPECT_FALSE(r.machine.from_host(connect_response(), o).has_value());
  // An X.224 Connection Request inside TLS.
  Session x;
  ConnectionRequest cr;
  cr.negotiation = NegotiationRequest{};
  EXPECT_FALSE(x.machine.from_client(ok(encode_connection_request(cr)), o).has_value());
}

}  // namespace
}  // namespace enclave::gateway
