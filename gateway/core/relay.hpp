// The relay's protocol state machine: what the gateway does with each RDP PDU between the
// analyst's client and the desktop host. No I/O and no clock: the driver (gateway/service)
// reads bytes, feeds them here, writes what comes out, and keeps the time.
//
// A connection goes through three phases, each driven by the functions below:
//  1. Plain TCP from the client: the Preconnection PDU (MS-RDPEPC) carrying the ticket, then
//     the X.224 Connection Request. negotiate_client_request() answers a client that offers
//     no TLS with an RDP_NEG_FAILURE (legacy RDP security is refused) and otherwise produces
//     the gateway's own request to the host (PROTOCOL_SSL only, no cookie from the client).
//  2. The host's X.224 Connection Confirm: negotiate_host_confirm() accepts only
//     PROTOCOL_SSL and produces the confirm the client gets. Then TLS on both legs.
//  3. Inside TLS, RelayMachine sees every PDU: it renames disallowed static channels in the
//     client's MCS Connect-Initial, learns channel ids from the host's Connect-Response,
//     injects the session's desktop credentials into the Client Info PDU, drops data on
//     denied channel ids, refuses disallowed dynamic channels inside drdynvc by name, ends
//     the session on a server redirection, and passes fast-path PDUs through untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "gateway/core/channel_policy.hpp"
#include "gateway/core/pdu.hpp"

namespace enclave::gateway {

// ---- phase 1 and 2: plain TCP ----

struct Preconnection {
  std::uint32_t id = 0;
  std::string blob;          // the ticket (UTF-8 of the PDU's UTF-16 wszPCB, no terminator)
  std::size_t consumed = 0;  // bytes of the buffer the PDU took
};
inline constexpr std::size_t kMaxPreconnectionSize = 4096;

// nullopt: more bytes needed. An error for anything that is not a V1/V2 preconnection PDU of
// at most kMaxPreconnectionSize bytes.
PduResult<std::optional<Preconnection>> read_preconnection(ByteSpan buffered);

// The size of the complete TPKT PDU at the start of buffered, nullopt if more bytes are
// needed; an error if the bytes are not TPKT.
PduResult<std::optional<std::size_t>> complete_tpkt_size(ByteSpan buffered);

struct NegotiationStep {
  Bytes to_client;                     // may be empty
  Bytes to_host;                       // may be empty
  std::optional<std::string> refusal;  // set: send to_client, then close; the reason is audited
};

// tpkt: one complete TPKT PDU from the client (an X.224 Connection Request).
PduResult<NegotiationStep> negotiate_client_request(ByteSpan tpkt);
// tpkt: one complete TPKT PDU from the host (an X.224 Connection Confirm).
PduResult<NegotiationStep> negotiate_host_confirm(ByteSpan tpkt);

// ---- phase 3: inside TLS ----

struct DesktopCredentials {
  std::string domain;
  std::string user;
  std::string password;
  ~DesktopCredentials();  // wipes password
};

struct RelayConfig {
  ChannelPolicy channels;
  DesktopCredentials credentials;
};

// Bytes per static channel (and the I/O channel and fast-path), per direction.
struct ChannelCounters {
  std::string name;      // as the client named it; "io", "fastpath", "mcs" for the others
  std::uint16_t id = 0;  // MCS channel id, 0 until the host assigns it (and for fastpath)
  bool allowed = true;
  std::uint64_t to_host = 0;  // relayed bytes (PDU sizes)
  std::uint64_t to_client = 0;
  std::uint64_t dropped_to_host = 0;  // bytes dropped because the channel is denied
  std::uint64_t dropped_to_client = 0;
};

struct RelayEvent {
  enum class Kind {
    kStaticChannelRefused,   // name: a channel renamed out of the client's network data
    kDynamicChannelRefused,  // name: a drdynvc Create Request refused
    kDeniedChannelData,      // name: first data seen on a denied channel (later drops counted)
    kCredentialsInjected,    // name: the desktop user name
  };
  Kind kind;
  std::string name;
  std::string detail;  // direction or extra context, no secrets
};

struct RelayOutput {
  Bytes to_client;
  Bytes to_host;
  bool client_input = false;  // keyboard or mouse input seen (for idle detection)
  std::vector<RelayEvent> events;
};

class RelayMachine {
 public:
  explicit RelayMachine(RelayConfig config);
  ~RelayMachine();
  RelayMachine(const RelayMachine&) = delete;
  RelayMachine& operator=(const RelayMachine&) = delete;

  // Bytes that arrived from one side (any split: partial PDUs are kept until complete, at
  // most one PDU of 64 KiB per side). Complete PDUs are appended to out. An error means the
  // session must end: the error names the PDU and field (malformed, or forbidden such as a
  // server redirection or legacy RDP encryption); the machine stays failed.
  PduResult<void> from_client(ByteSpan bytes, RelayOutput& out);
  PduResult<void> from_host(ByteSpan bytes, RelayOutput& out);
  // The length of the leading whole fast-path PDUs of bytes, which the caller relays as they
  // are, before passing the rest to from_client/from_host: graphics and input then cross
  // without a copy. They are counted as relayed (and client fast-path as input in out). 0
  // while earlier bytes from that side are pending or after a failure.
  std::size_t pass_fast_path_from_client(ByteSpan bytes, RelayOutput& out);
  std::size_t pass_fast_path_from_host(ByteSpan bytes, RelayOutput& out);

  const std::vector<ChannelCounters>& counters() const;
  bool failed() const;
  // True once the Client Info PDU with the injected credentials has gone to the host.
  bool credentials_sent() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// An MCS Disconnect Provider Ultimatum (reason rn-user-requested) in TPKT/X.224, for a clean
// end of the client's session: operator end, idle or maximum time, dead desktop host.
Bytes disconnect_ultimatum();

}  // namespace enclave::gateway
