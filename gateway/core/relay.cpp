#include "gateway/core/relay.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "gateway/core/client_info.hpp"
#include "gateway/core/gcc.hpp"
#include "gateway/core/mcs.hpp"
#include "gateway/core/preconnection.hpp"
#include "gateway/core/vchannel.hpp"
#include "gateway/core/x224.hpp"

namespace enclave::gateway {

namespace {

constexpr std::string_view kRelay = "relay";

// The most bytes kept for one partial PDU per side: a TPKT PDU is at most 0xFFFF bytes and a
// fast-path PDU at most 0x7FFF, so this only guards the invariant.
constexpr std::size_t kMaxPduSize = 64 * 1024 + kTpktHeaderSize;

// TS_SHARECONTROLHEADER pduType values (MS-RDPBCGR 2.2.8.1.1.1.1), low 4 bits.
constexpr std::uint16_t kPduTypeDemandActive = 0x1;
constexpr std::uint16_t kPduTypeData = 0x7;
constexpr std::uint16_t kPduTypeServerRedirect = 0xA;
constexpr std::uint16_t kShareControlFlowPdu = 0x8000;  // totalLength of a T.128 flow PDU
constexpr std::size_t kFlowPduSize = 8;
// TS_SHAREDATAHEADER.pduType2 of a slow-path input PDU (2.2.8.1.1.3).
constexpr std::uint8_t kPduType2Input = 0x1C;
// shareControlHeader (6) + shareId (4) + pad1 (1) + streamId (1) + uncompressedLength (2):
// the offset of pduType2.
constexpr std::size_t kPduType2Offset = 6 + 4 + 1 + 1 + 2;

// CHANNEL_DEF.options (2.2.1.3.4.1): the compression the relay turns off for drdynvc, whose
// data it must be able to read.
constexpr std::uint32_t kChannelOptionCompressRdp = 0x00800000;
constexpr std::uint32_t kChannelOptionCompress = 0x00400000;

constexpr std::size_t kCounterFastPath = 0;
constexpr std::size_t kCounterIo = 1;
constexpr std::size_t kCounterMcs = 2;

std::string hex32(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::uint16_t read_u16le(ByteSpan b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] | (b[at + 1] << 8));
}

std::string protocol_name(std::uint32_t p) {
  switch (p) {
    case kProtocolRdp:
      return "PROTOCOL_RDP (legacy RDP security)";
    case kProtocolSsl:
      return "PROTOCOL_SSL";
    case kProtocolHybrid:
      return "PROTOCOL_HYBRID";
    case kProtocolRdstls:
      return "PROTOCOL_RDSTLS";
    case kProtocolHybridEx:
      return "PROTOCOL_HYBRID_EX";
    case kProtocolRdsAad:
      return "PROTOCOL_RDSAAD";
    default:
      return "protocol " + hex32(p);
  }
}

PduResult<Bytes> negotiation_failure(std::uint32_t code) {
  ConnectionConfirm confirm;
  confirm.failure_code = code;
  return encode_connection_confirm(confirm);
}

}  // namespace

// ---- phase 1 and 2 ----

PduResult<std::optional<Preconnection>> read_preconnection(ByteSpan buffered) {
  auto decoded = decode_preconnection(buffered);
  if (!decoded) return error_of(decoded);
  if (!decoded->has_value()) return std::optional<Preconnection>{};
  const DecodedPreconnection& d = **decoded;
  if (d.size > kMaxPreconnectionSize) {
    return fail(too_large("Preconnection PDU", "cbSize", d.size, kMaxPreconnectionSize));
  }
  Preconnection p;
  p.id = d.pdu.id;
  p.blob = d.pdu.blob;
  p.consumed = d.size;
  return std::optional<Preconnection>(std::move(p));
}

PduResult<std::optional<std::size_t>> complete_tpkt_size(ByteSpan buffered) {
  auto size = tpkt_frame_size(buffered);
  if (!size) return error_of(size);
  if (!size->has_value() || **size > buffered.size()) return std::optional<std::size_t>{};
  return *size;
}

PduResult<NegotiationStep> negotiate_client_request(ByteSpan tpkt) {
  auto request = decode_connection_request(tpkt);
  if (!request) return error_of(request);
  NegotiationStep step;
  if (!request->negotiation.has_value() ||
      (request->negotiation->requested_protocols & kProtocolSsl) == 0) {
    auto failure = negotiation_failure(kSslRequiredByServer);
    if (!failure) return error_of(failure);
    step.to_client = std::move(*failure);
    step.refusal = request->negotiation.has_value()
                       ? "client offers no TLS (requestedProtocols " +
                             hex32(request->negotiation->requested_protocols) +
                             "): legacy RDP security refused"
                       : "client sent no RDP_NEG_REQ: legacy RDP security refused";
    return step;
  }
  // The gateway's own request: TLS only, and nothing of the client's (no cookie, flags or
  // correlation id) reaches the host.
  ConnectionRequest to_host;
  to_host.negotiation = NegotiationRequest{0, kProtocolSsl};
  auto encoded = encode_connection_request(to_host);
  if (!encoded) return error_of(encoded);
  step.to_host = std::move(*encoded);
  return step;
}

PduResult<NegotiationStep> negotiate_host_confirm(ByteSpan tpkt) {
  auto confirm = decode_connection_confirm(tpkt);
  if (!confirm) return error_of(confirm);
  NegotiationStep step;
  std::optional<std::string> refusal;
  std::uint32_t client_failure = kSslNotAllowedByServer;
  if (confirm->failure_code.has_value()) {
    refusal = "host refused the TLS request (RDP_NEG_FAILURE failureCode " +
              hex32(*confirm->failure_code) + ")";
    // A host that cannot do TLS: tell the client the same, any other failure as-is.
    if (*confirm->failure_code >= kSslRequiredByServer &&
        *confirm->failure_code <= kSslWithUserAuthRequiredByServer) {
      client_failure = *confirm->failure_code;
    }
  } else if (!confirm->response.has_value()) {
    refusal = "host selected legacy RDP security (no RDP_NEG_RSP)";
  } else if (confirm->response->selected_protocol != kProtocolSsl) {
    refusal = "host selected " + protocol_name(confirm->response->selected_protocol) +
              ", not PROTOCOL_SSL";
  }
  if (refusal) {
    auto failure = negotiation_failure(client_failure);
    if (!failure) return error_of(failure);
    step.to_client = std::move(*failure);
    step.refusal = std::move(refusal);
    return step;
  }
  ConnectionConfirm to_client;
  to_client.dst_ref = confirm->dst_ref;
  to_client.src_ref = confirm->src_ref;
  to_client.class_option = confirm->class_option;
  // Keep what the host tells about its protocol support (extended client data, the graphics
  // pipeline); drop the authentication modes the gateway does not offer.
  const std::uint8_t kept =
      kNegRspExtendedClientDataSupported | kNegRspDynvcGfxProtocolSupported | kNegRspReserved;
  to_client.response =
      NegotiationResponse{static_cast<std::uint8_t>(confirm->response->flags & kept), kProtocolSsl};
  auto encoded = encode_connection_confirm(to_client);
  if (!encoded) return error_of(encoded);
  step.to_client = std::move(*encoded);
  return step;
}

DesktopCredentials::~DesktopCredentials() {
  wipe_string(password);
}

Bytes disconnect_ultimatum() {
  return encode_disconnect_provider_ultimatum(kReasonUserRequested);
}

// ---- phase 3 ----

namespace {

enum class Dir { kToHost, kToClient };

enum class MessageState { kIdle, kPassing, kDropping };

struct StaticChannel {
  std::string name;  // as the client named it
  bool allowed = false;
  bool drdynvc = false;
  std::uint16_t id = 0;  // 0 until the host assigns it
  std::size_t counter = 0;
  bool data_seen = false;  // a kDeniedChannelData event was recorded
  // drdynvc: the message in progress per direction (chunks without CHANNEL_FLAG_FIRST follow
  // the message of the last first chunk).
  MessageState to_host = MessageState::kIdle;
  MessageState to_client = MessageState::kIdle;
};

}  // namespace

struct RelayMachine::Impl {
  RelayConfig config;
  std::vector<ChannelCounters> counters;
  std::optional<PduError> error;
  Bytes pending_client;
  Bytes pending_host;

  bool connect_initial_seen = false;
  bool connect_response_seen = false;
  bool client_info_seen = false;
  bool credentials_sent = false;
  bool demand_active_seen = false;
  std::optional<std::uint16_t> user_id;
  std::uint16_t io_channel = 0;
  std::optional<std::uint16_t> message_channel;
  std::vector<StaticChannel> channels;
  std::map<std::uint16_t, std::size_t> channel_by_id;  // MCS id -> index in channels
  // drdynvc ids the relay let the host create, and ids it refused. Keyed by the static
  // channel index too, in case a client names drdynvc twice.
  std::set<std::pair<std::size_t, std::uint32_t>> dynamic_open;
  std::set<std::pair<std::size_t, std::uint32_t>> dynamic_refused;

  explicit Impl(RelayConfig c) : config(std::move(c)) {
    // In the order of kCounterFastPath, kCounterIo, kCounterMcs; static channels follow.
    counters.push_back(ChannelCounters{"fastpath", 0, true});
    counters.push_back(ChannelCounters{"io", 0, true});
    counters.push_back(ChannelCounters{"mcs", 0, true});
  }

  PduResult<void> feed(ByteSpan bytes, Dir dir, RelayOutput& out);
  PduResult<void> handle_pdu(ByteSpan pdu, Dir dir, RelayOutput& out);
  PduResult<void> handle_mcs(ByteSpan tpkt, ByteSpan mcs, Dir dir, RelayOutput& out);
  PduResult<void> handle_connect_initial(ByteSpan tpkt, RelayOutput& out);
  PduResult<void> handle_connect_response(ByteSpan tpkt, RelayOutput& out);
  PduResult<void> handle_send_data(ByteSpan tpkt, const DomainPdu& pdu, Dir dir, RelayOutput& out);
  PduResult<void> handle_client_io(ByteSpan tpkt, const DomainPdu& pdu, RelayOutput& out);
  PduResult<void> check_host_io(ByteSpan user_data);
  PduResult<void> handle_drdynvc(ByteSpan tpkt, const DomainPdu& pdu, std::size_t index, Dir dir,
                                 RelayOutput& out);

  std::size_t pass_fast_path(ByteSpan bytes, Dir dir, RelayOutput& out);

  // The size of the whole PDU at the start of `rest`, nullopt while it is incomplete.
  static PduResult<std::optional<std::size_t>> whole_pdu_size(ByteSpan rest) {
    auto frame = split_frame(rest);
    if (!frame) return error_of(frame);
    using Size = std::optional<std::size_t>;
    if (!frame->has_value()) return Size{};
    const std::size_t size = (*frame)->size;
    if (size > kMaxPduSize) return fail(too_large(kRelay, "PDU length", size, kMaxPduSize));
    if (size > rest.size()) return Size{};
    return Size{size};
  }

  void count_relayed(std::size_t size, Dir dir, std::size_t counter) {
    auto& c = counters[counter];
    (dir == Dir::kToHost ? c.to_host : c.to_client) += size;
  }
  void relay(ByteSpan pdu, Dir dir, std::size_t counter, RelayOutput& out) {
    Bytes& to = dir == Dir::kToHost ? out.to_host : out.to_client;
    to.insert(to.end(), pdu.begin(), pdu.end());
    count_relayed(pdu.size(), dir, counter);
  }
  void drop(ByteSpan pdu, Dir dir, std::size_t counter) {
    auto& c = counters[counter];
    (dir == Dir::kToHost ? c.dropped_to_host : c.dropped_to_client) += pdu.size();
  }
};

PduResult<void> RelayMachine::Impl::feed(ByteSpan bytes, Dir dir, RelayOutput& out) {
  if (error) return fail(*error);
  Bytes& pending = dir == Dir::kToHost ? pending_client : pending_host;
  // Complete PDUs are handled straight from `bytes` when nothing is pending; only the partial
  // tail is copied.
  Bytes joined;
  ByteSpan input = bytes;
  if (!pending.empty()) {
    joined = std::move(pending);
    pending.clear();
    joined.insert(joined.end(), bytes.begin(), bytes.end());
    input = joined;
  }
  std::size_t pos = 0;
  while (pos < input.size()) {
    const ByteSpan rest = input.subspan(pos);
    auto size = whole_pdu_size(rest);
    if (!size) {
      error = size.error();
      return fail(*error);
    }
    if (!size->has_value()) break;
    auto handled = handle_pdu(rest.first(**size), dir, out);
    if (!handled) {
      error = handled.error();
      return fail(*error);
    }
    pos += **size;
  }
  pending.assign(input.begin() + static_cast<std::ptrdiff_t>(pos), input.end());
  return {};
}

std::size_t RelayMachine::Impl::pass_fast_path(ByteSpan bytes, Dir dir, RelayOutput& out) {
  const Bytes& pending = dir == Dir::kToHost ? pending_client : pending_host;
  if (error || !pending.empty()) return 0;
  std::size_t pos = 0;
  while (pos < bytes.size() && (bytes[pos] & kFastPathActionMask) == kFastPathActionFastPath) {
    auto size = whole_pdu_size(bytes.subspan(pos));
    if (!size || !size->has_value()) break;  // feed() keeps a partial PDU or reports the error
    count_relayed(**size, dir, kCounterFastPath);
    pos += **size;
  }
  if (pos > 0 && dir == Dir::kToHost) out.client_input = true;
  return pos;
}

PduResult<void> RelayMachine::Impl::handle_pdu(ByteSpan pdu, Dir dir, RelayOutput& out) {
  if ((pdu[0] & kFastPathActionMask) == kFastPathActionFastPath) {
    // Fast-path: graphics from the host, input from the client. Never parsed.
    if (dir == Dir::kToHost) out.client_input = true;
    relay(pdu, dir, kCounterFastPath, out);
    return {};
  }
  auto tpdu_code = x224_tpdu_code(pdu);
  if (!tpdu_code) return error_of(tpdu_code);
  const std::uint8_t code = *tpdu_code;
  if (code == kX224DisconnectRequest) {
    relay(pdu, dir, kCounterMcs, out);
    return {};
  }
  if (code != kX224Data) {
    return fail(unexpected_message("X.224 TPDU", "only Data and Disconnect Request inside TLS"));
  }
  auto mcs = decode_data_tpdu(pdu);
  if (!mcs) return error_of(mcs);
  return handle_mcs(pdu, *mcs, dir, out);
}

PduResult<void> RelayMachine::Impl::handle_mcs(ByteSpan tpkt, ByteSpan mcs, Dir dir,
                                               RelayOutput& out) {
  // BER connect PDUs start with 7F 65 / 7F 66; every PER domain PDU's first byte is a
  // choice index << 2, never 0x7F.
  if (!mcs.empty() && mcs[0] == 0x7F) {
    if (dir == Dir::kToHost) {
      if (connect_initial_seen) {
        return fail(unexpected_message("MCS Connect-Initial", "sent twice"));
      }
      return handle_connect_initial(tpkt, out);
    }
    if (!connect_initial_seen || connect_response_seen) {
      return fail(unexpected_message("MCS Connect-Response", "not after one Connect-Initial"));
    }
    return handle_connect_response(tpkt, out);
  }
  if (dir == Dir::kToHost ? !connect_initial_seen : !connect_response_seen) {
    return fail(unexpected_message("MCS domain PDU", "before the MCS connect exchange"));
  }
  auto pdu = decode_domain_pdu_in_tpkt(tpkt);
  if (!pdu) return error_of(pdu);
  switch (pdu->type) {
    case DomainPduType::kSendDataRequest:
      if (dir != Dir::kToHost) {
        return fail(unexpected_message("MCS Send Data Request", "sent by the host"));
      }
      // No channel exists before the host's Connect-Response (and channel 0 is no I/O
      // channel: a Client Info sent there must not count as the one the relay rewrote).
      if (!connect_response_seen) {
        return fail(unexpected_message("MCS Send Data Request", "before the Connect-Response"));
      }
      if (!user_id && pdu->initiator) user_id = *pdu->initiator;
      return handle_send_data(tpkt, *pdu, dir, out);
    case DomainPduType::kSendDataIndication:
      if (dir != Dir::kToClient) {
        return fail(unexpected_message("MCS Send Data Indication", "sent by the client"));
      }
      return handle_send_data(tpkt, *pdu, dir, out);
    case DomainPduType::kAttachUserConfirm:
      if (dir != Dir::kToClient) {
        return fail(unexpected_message("MCS Attach User Confirm", "sent by the client"));
      }
      if (pdu->result == 0 && pdu->initiator) user_id = *pdu->initiator;
      break;
    default:
      break;
  }
  relay(tpkt, dir, kCounterMcs, out);
  return {};
}

PduResult<void> RelayMachine::Impl::handle_connect_initial(ByteSpan tpkt, RelayOutput& out) {
  auto data = decode_client_connect_initial(tpkt);
  if (!data) return error_of(data);
  Bytes pdu(tpkt.begin(), tpkt.end());
  std::size_t denied = 0;
  for (const ClientChannel& ch : data->channels) {
    StaticChannel sc;
    sc.name = ch.name;
    sc.allowed = config.channels.allows_static(ch.name);
    sc.drdynvc = sc.allowed && iequals(ch.name, "drdynvc");
    if (!sc.allowed) {
      ++denied;
      char renamed[8];
      std::snprintf(renamed, sizeof renamed, "_deny%02zu", denied % 100);
      if (auto ok = rename_channel_in_place(pdu, ch, renamed); !ok) return error_of(ok);
      out.events.push_back(RelayEvent{RelayEvent::Kind::kStaticChannelRefused, ch.name,
                                      "renamed " + std::string(renamed)});
    }
    if (sc.drdynvc) {
      // The relay reads drdynvc messages: no compression on that channel.
      const std::size_t at = ch.name_offset + kChannelNameSize;
      if (at + 4 > pdu.size()) {
        return fail(invalid_field("CS_NET", "options", "outside the PDU"));
      }
      std::uint32_t options = ch.options & ~(kChannelOptionCompressRdp | kChannelOptionCompress);
      for (int i = 0; i < 4; ++i) pdu[at + i] = static_cast<std::uint8_t>(options >> (8 * i));
    }
    sc.counter = counters.size();
    counters.push_back(ChannelCounters{ch.name, 0, sc.allowed});
    channels.push_back(std::move(sc));
  }
  if (auto ok = clear_cluster_redirection(pdu, *data); !ok) return error_of(ok);
  if (auto ok = clear_multitransport(pdu, *data); !ok) return error_of(ok);
  connect_initial_seen = true;
  relay(pdu, Dir::kToHost, kCounterMcs, out);
  return {};
}

PduResult<void> RelayMachine::Impl::handle_connect_response(ByteSpan tpkt, RelayOutput& out) {
  constexpr std::string_view kPdu = "MCS Connect-Response";
  auto data = decode_server_connect_response(tpkt);
  if (!data) return error_of(data);
  if (data->encryption_method != kEncryptionMethodNone ||
      data->encryption_level != kEncryptionLevelNone) {
    return fail(invalid_field(
        "SC_SECURITY", "encryptionMethod",
        "legacy RDP encryption (" + hex32(data->encryption_method) + ") refused: TLS only"));
  }
  if (data->channel_ids.size() != channels.size()) {
    return fail(invalid_field("SC_NET", "channelCount", "not the client's channel count"));
  }
  std::set<std::uint16_t> used;
  auto claim = [&](std::uint16_t id) { return id == 0 || used.insert(id).second; };
  io_channel = data->io_channel_id;
  if (io_channel == 0 || !claim(io_channel)) {
    return fail(invalid_field(kPdu, "MCSChannelId", "invalid I/O channel id"));
  }
  if (data->message_channel_id) {
    if (*data->message_channel_id == 0 || !claim(*data->message_channel_id)) {
      return fail(invalid_field(kPdu, "MCSChannelID", "invalid message channel id"));
    }
    message_channel = *data->message_channel_id;
  }
  for (std::size_t i = 0; i < channels.size(); ++i) {
    const std::uint16_t id = data->channel_ids[i];
    if (!claim(id)) return fail(invalid_field("SC_NET", "channelIdArray", "channel id reused"));
    channels[i].id = id;
    counters[channels[i].counter].id = id;
    if (id != 0) channel_by_id[id] = i;
  }
  counters[kCounterIo].id = io_channel;
  connect_response_seen = true;
  relay(tpkt, Dir::kToClient, kCounterMcs, out);
  return {};
}

PduResult<void> RelayMachine::Impl::handle_send_data(ByteSpan tpkt, const DomainPdu& pdu, Dir dir,
                                                     RelayOutput& out) {
  if (pdu.channel_id == io_channel) {
    if (dir == Dir::kToHost) return handle_client_io(tpkt, pdu, out);
    if (auto ok = check_host_io(pdu.user_data); !ok) return ok;
    relay(tpkt, dir, kCounterIo, out);
    return {};
  }
  if (message_channel && pdu.channel_id == *message_channel) {
    // Message channel PDUs always begin with a security header (2.2.8.1.1.2.1).
    if (pdu.user_data.size() < 4) {
      return fail(not_enough_bytes("message channel PDU", "flags", pdu.user_data.size(), 4));
    }
    const std::uint16_t flags = read_u16le(pdu.user_data, 0);
    if ((flags & kSecEncrypt) != 0) {
      return fail(invalid_field("message channel PDU", "flags",
                                "legacy RDP encryption (SEC_ENCRYPT) refused"));
    }
    if (dir == Dir::kToClient && (flags & kSecRedirectionPkt) != 0) {
      return fail(invalid_field("message channel PDU", "flags", "server redirection blocked"));
    }
    relay(tpkt, dir, kCounterMcs, out);
    return {};
  }
  auto it = channel_by_id.find(pdu.channel_id);
  if (it == channel_by_id.end()) {
    // No channel the client asked for and the host created: nobody should use it.
    drop(tpkt, dir, kCounterMcs);
    return {};
  }
  StaticChannel& ch = channels[it->second];
  if (!ch.allowed) {
    drop(tpkt, dir, ch.counter);
    if (!ch.data_seen) {
      ch.data_seen = true;
      out.events.push_back(RelayEvent{RelayEvent::Kind::kDeniedChannelData, ch.name,
                                      dir == Dir::kToHost ? "to host" : "to client"});
    }
    return {};
  }
  if (ch.drdynvc) return handle_drdynvc(tpkt, pdu, it->second, dir, out);
  relay(tpkt, dir, ch.counter, out);
  return {};
}

PduResult<void> RelayMachine::Impl::handle_client_io(ByteSpan tpkt, const DomainPdu& pdu,
                                                     RelayOutput& out) {
  if (!client_info_seen) {
    // With TLS the client's first PDU on the I/O channel is the Client Info PDU; the host
    // must never see a logon the gateway did not check.
    if (pdu.user_data.size() < 2 || (read_u16le(pdu.user_data, 0) & kSecInfoPkt) == 0) {
      return fail(unexpected_message("Client Info PDU", "expected on the I/O channel first"));
    }
    client_info_seen = true;
    const DesktopCredentials& creds = config.credentials;
    if (creds.user.empty()) {
      auto checked = decode_client_info(pdu.user_data);  // refuses SEC_ENCRYPT
      if (!checked) return error_of(checked);
      relay(tpkt, Dir::kToHost, kCounterIo, out);
      return {};
    }
    auto rewritten = rewrite_client_info(pdu.user_data, creds.domain, creds.user, creds.password);
    if (!rewritten) return error_of(rewritten);
    SendDataHeader header;
    header.indication = false;
    header.initiator = pdu.initiator.value_or(user_id.value_or(kMcsBaseChannelId));
    header.channel_id = io_channel;
    header.data_flags = pdu.data_flags;
    auto encoded = encode_send_data(header, *rewritten);
    secure_wipe(rewritten->data(), rewritten->size());
    if (!encoded) return error_of(encoded);
    relay(*encoded, Dir::kToHost, kCounterIo, out);
    secure_wipe(encoded->data(), encoded->size());
    credentials_sent = true;
    out.events.push_back(
        RelayEvent{RelayEvent::Kind::kCredentialsInjected, creds.user, "Client Info PDU"});
    return {};
  }
  const ByteSpan d = pdu.user_data;
  if (!demand_active_seen) {
    // Licensing (with a security header) until the host's Demand Active; a second Client
    // Info PDU, with the client's own credentials, never reaches the host.
    if (d.size() >= 2) {
      const std::uint16_t flags = read_u16le(d, 0);
      if ((flags & kSecLicensePkt) != 0 && (flags & kSecEncrypt) != 0) {
        return fail(
            invalid_field("licensing PDU", "flags", "legacy RDP encryption (SEC_ENCRYPT) refused"));
      }
      if ((flags & kSecLicensePkt) == 0 && (flags & kSecInfoPkt) != 0) {
        return fail(unexpected_message("Client Info PDU", "sent twice"));
      }
    }
  } else if (d.size() > kPduType2Offset && (read_u16le(d, 2) & 0x0F) == kPduTypeData &&
             d[kPduType2Offset] == kPduType2Input) {
    out.client_input = true;
  }
  relay(tpkt, Dir::kToHost, kCounterIo, out);
  return {};
}

namespace {

struct ShareControlWalk {
  bool consistent = true;  // every totalLength fits in what is left
  bool redirect = false;   // a PDUTYPE_SERVER_REDIR_PKT was met
  bool demand_active = false;
};

// Reads `d` as share control PDUs back to back, the way FreeRDP's client does (it handles
// every one in a slow-path PDU): a totalLength of 0x8000 is an 8-byte flow PDU, below 4 or
// past the end stops the walk.
ShareControlWalk walk_share_control(ByteSpan d) {
  ShareControlWalk w;
  std::size_t pos = 0;
  while (d.size() - pos > 3) {
    const std::uint16_t total = read_u16le(d, pos);
    if (total == kShareControlFlowPdu) {
      if (d.size() - pos < kFlowPduSize) {
        w.consistent = false;
        return w;
      }
      pos += kFlowPduSize;
      continue;
    }
    if (total < 4 || total > d.size() - pos) {
      w.consistent = false;
      return w;
    }
    const std::uint16_t type = read_u16le(d, pos + 2) & 0x0F;
    if (type == kPduTypeServerRedirect) w.redirect = true;
    if (type == kPduTypeDemandActive) w.demand_active = true;
    pos += total;
  }
  return w;  // up to 3 bytes left over are ignored, as FreeRDP does
}

PduError redirection_blocked(std::string_view pdu, std::string_view field) {
  return invalid_field(pdu, field, "server redirection blocked");
}

}  // namespace

// The host's I/O channel PDUs. With TLS and no legacy encryption they carry no security
// header (2.2.8.1.1.2) except the licensing PDUs, which come before the first Demand Active,
// and the standalone Server Redirection PDU (2.2.13.2, SEC_REDIRECTION_PKT). Everything else
// is share control PDUs, possibly several in one slow-path PDU; the Enhanced Security Server
// Redirection PDU (2.2.13.3) is one of them (PDUTYPE_SERVER_REDIR_PKT).
//
// A security header and a share control header cannot be told apart by their bytes (flags
// and totalLength share the first u16), so before the first Demand Active both readings are
// checked: whichever the client takes, it never gets a redirection.
PduResult<void> RelayMachine::Impl::check_host_io(ByteSpan d) {
  constexpr std::string_view kPdu = "Share Control Header";
  if (d.size() < 4) return fail(not_enough_bytes(kPdu, "totalLength", d.size(), 4));
  const ShareControlWalk walk = walk_share_control(d);
  if (walk.redirect) return fail(redirection_blocked(kPdu, "pduType"));
  if (!demand_active_seen) {
    const std::uint16_t flags = read_u16le(d, 0);
    const bool demand_active = walk.consistent && walk.demand_active;
    // SEC_REDIRECTION_PKT is refused unless the bytes are, read the other way, exactly a
    // Demand Active (whose totalLength may have that bit).
    if ((flags & kSecRedirectionPkt) != 0 && !demand_active) {
      return fail(redirection_blocked("security header", "flags"));
    }
    if ((flags & kSecLicensePkt) != 0) {
      // A licensing PDU (or, read the other way, share control PDUs).
      if ((flags & kSecEncrypt) != 0 && !demand_active) {
        return fail(
            invalid_field("licensing PDU", "flags", "legacy RDP encryption (SEC_ENCRYPT) refused"));
      }
      if (demand_active) demand_active_seen = true;
      return {};
    }
    if (demand_active) demand_active_seen = true;
  }
  if (!walk.consistent) return fail(invalid_field(kPdu, "totalLength", "outside the PDU"));
  return {};
}

PduResult<void> RelayMachine::Impl::handle_drdynvc(ByteSpan tpkt, const DomainPdu& pdu,
                                                   std::size_t index, Dir dir, RelayOutput& out) {
  StaticChannel& ch = channels[index];
  auto chunk = decode_channel_pdu(pdu.user_data);
  if (!chunk) return error_of(chunk);
  if (chunk->compressed()) {
    return fail(invalid_field("CHANNEL_PDU_HEADER", "flags",
                              "compressed drdynvc data cannot be inspected"));
  }
  MessageState& state = dir == Dir::kToHost ? ch.to_host : ch.to_client;
  if (!chunk->first()) {
    const bool pass = state == MessageState::kPassing;
    if (chunk->last()) state = MessageState::kIdle;
    if (pass) {
      relay(tpkt, dir, ch.counter, out);
    } else {
      drop(tpkt, dir, ch.counter);
    }
    return {};
  }
  const DynvcFrom from = dir == Dir::kToHost ? DynvcFrom::kClient : DynvcFrom::kServer;
  auto msg = decode_dynvc(chunk->data, from);
  if (!msg) return error_of(msg);
  const auto key = std::make_pair(index, msg->channel_id);
  bool pass = true;
  switch (msg->cmd) {
    case DynvcCmd::kCreate:
      if (dir == Dir::kToClient) {
        if (config.channels.allows_dynamic(msg->channel_name)) {
          dynamic_open.insert(key);
          dynamic_refused.erase(key);
          break;
        }
        pass = false;
        dynamic_open.erase(key);
        dynamic_refused.insert(key);
        if (!user_id) {
          return fail(unexpected_message("drdynvc Create Request", "before Attach User Confirm"));
        }
        // Answer for the client: the host sees the channel refused.
        const Bytes response = encode_dynvc_create_response(msg->channel_id, kStatusAccessDenied);
        Bytes chunk_bytes;
        encode_channel_pdu(static_cast<std::uint32_t>(response.size()),
                           kChannelFlagFirst | kChannelFlagLast, response, chunk_bytes);
        SendDataHeader header;
        header.indication = false;
        header.initiator = *user_id;
        header.channel_id = ch.id;
        auto encoded = encode_send_data(header, chunk_bytes);
        if (!encoded) return error_of(encoded);
        relay(*encoded, Dir::kToHost, ch.counter, out);
        out.events.push_back(RelayEvent{RelayEvent::Kind::kDynamicChannelRefused, msg->channel_name,
                                        "channel id " + std::to_string(msg->channel_id)});
      } else {
        // The client's Create Response: only for channels the relay let the host create.
        pass = dynamic_open.count(key) != 0;
      }
      break;
    case DynvcCmd::kDataFirst:
    case DynvcCmd::kData:
    case DynvcCmd::kDataFirstCompressed:
    case DynvcCmd::kDataCompressed:
      pass = dir == Dir::kToHost ? dynamic_open.count(key) != 0 : dynamic_refused.count(key) == 0;
      break;
    case DynvcCmd::kClose:
      pass = dir == Dir::kToHost ? dynamic_open.count(key) != 0 : dynamic_refused.count(key) == 0;
      if (pass) dynamic_open.erase(key);
      break;
    case DynvcCmd::kCapability:
    case DynvcCmd::kSoftSyncRequest:
    case DynvcCmd::kSoftSyncResponse:
      break;
  }
  state = chunk->last() ? MessageState::kIdle
                        : (pass ? MessageState::kPassing : MessageState::kDropping);
  if (pass) {
    relay(tpkt, dir, ch.counter, out);
  } else {
    drop(tpkt, dir, ch.counter);
  }
  return {};
}

RelayMachine::RelayMachine(RelayConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
RelayMachine::~RelayMachine() = default;

PduResult<void> RelayMachine::from_client(ByteSpan bytes, RelayOutput& out) {
  return impl_->feed(bytes, Dir::kToHost, out);
}
PduResult<void> RelayMachine::from_host(ByteSpan bytes, RelayOutput& out) {
  return impl_->feed(bytes, Dir::kToClient, out);
}
std::size_t RelayMachine::pass_fast_path_from_client(ByteSpan bytes, RelayOutput& out) {
  return impl_->pass_fast_path(bytes, Dir::kToHost, out);
}
std::size_t RelayMachine::pass_fast_path_from_host(ByteSpan bytes, RelayOutput& out) {
  return impl_->pass_fast_path(bytes, Dir::kToClient, out);
}
const std::vector<ChannelCounters>& RelayMachine::counters() const {
  return impl_->counters;
}
bool RelayMachine::failed() const {
  return impl_->error.has_value();
}
bool RelayMachine::credentials_sent() const {
  return impl_->credentials_sent;
}

}  // namespace enclave::gateway
