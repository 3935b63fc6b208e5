// Test support: scripted RDP peers for driving the gateway's relay with real sockets and TLS.
//
// RdpScriptHost is a desktop host on loopback: a real TLS server (its own threads, OpenSSL,
// a self-signed RSA certificate whose SPKI pin it exposes) that answers the X.224 Connection
// Request with a Connection Confirm selecting PROTOCOL_SSL, does TLS, and plays the server side
// of the RDP connection sequence (MS-RDPBCGR 1.3.1.1) far enough for a scenario: MCS
// Connect-Response (SC_CORE, SC_SECURITY 0/0, SC_NET with the I/O channel 1003 and ids 1004..
// for the client's channels), Attach User Confirm, Channel Join Confirms, then the Client Info
// PDU, whose user and password it records. Then, per scenario:
//   kRedirect  sends an Enhanced Security Server Redirection PDU (2.2.13.3.1) naming
//              redirect_address, then waits;
//   kStream    sends fast-path output PDUs as fast as TCP allows;
//   kIdle      waits (it reads and counts what the client sends).
// Connections that end before TLS (the session manager's health probe) are not recorded.
//
// RdpRawClient is the client side without xfreerdp: the preconnection PDU with a ticket,
// X.224, TLS, and the same connection sequence built with gateway/core's encoders, after
// which the test writes, reads or stops reading as it likes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"

namespace enclave::testing {

enum class HostScenario { kRedirect, kStream, kIdle };

struct ScriptHostOptions {
  HostScenario scenario = HostScenario::kIdle;
  // kRedirect: the TargetNetAddress of the redirection packet (the client would connect there,
  // on the port it used).
  std::string redirect_address = "127.0.0.2";
  // kStream: bytes of each fast-path output PDU (at most 0x7FFF).
  std::size_t stream_pdu_size = 16 * 1024;
};

// What one connection that completed TLS saw and did.
struct HostSession {
  std::vector<std::string> channels;  // the client's CS_NET names, in order
  bool client_info = false;           // a Client Info PDU arrived
  std::string domain, user, password;
  bool redirect_sent = false;
  std::uint64_t streamed = 0;     // kStream: fast-path bytes written
  std::uint64_t from_client = 0;  // bytes of PDUs received after the Client Info PDU
  bool ended = false;             // the script stopped (peer closed, error, drop)
  std::string end;                // why
};

class RdpScriptHost {
 public:
  // Writes host.crt / host.key under dir and listens on 127.0.0.1 (a free port).
  RdpScriptHost(const std::filesystem::path& dir, ScriptHostOptions options);
  ~RdpScriptHost();  // closes every socket and joins every thread
  RdpScriptHost(const RdpScriptHost&) = delete;
  RdpScriptHost& operator=(const RdpScriptHost&) = delete;

  std::uint16_t port() const;
  const std::string& pin_sha256() const;  // hex SHA-256 of the certificate's SPKI

  // A copy of every recorded session, in the order TLS completed.
  std::vector<HostSession> sessions() const;
  // Waits until pred holds for the recorded sessions; false on timeout.
  bool wait_for(const std::function<bool(const std::vector<HostSession>&)>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  // Cuts every open connection at once (the desktop died); keeps listening.
  void drop_connections();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct RawClientOptions {
  std::string user = "mallory";  // what the client puts in its Client Info PDU
  std::string password = "typed-by-the-analyst";
  std::vector<std::string> channels{"drdynvc", "cliprdr"};
  int receive_buffer = 0;  // SO_RCVBUF before connecting (0: the kernel's default)
};

class RdpRawClient {
 public:
  RdpRawClient();
  ~RdpRawClient();
  RdpRawClient(const RdpRawClient&) = delete;
  RdpRawClient& operator=(const RdpRawClient&) = delete;

  // TCP to 127.0.0.1:port, preconnection PDU with the ticket, X.224 CR for PROTOCOL_SSL, the
  // CC, TLS (the gateway's certificate is not checked here), then MCS Connect-Initial /
  // Response, Erect Domain, Attach User, Channel Joins and the Client Info PDU. The error
  // says which step failed.
  std::optional<std::string> connect(std::uint16_t port, const std::string& ticket,
                                     const RawClientOptions& options = {});
  // The MCS user id and channel ids the sequence got.
  std::uint16_t user_id() const;
  std::uint16_t io_channel() const;

  // Writes raw bytes inside TLS. False when the connection is gone.
  bool send(ByteSpan bytes);
  // A fast-path input PDU with one synchronize event (keeps the session from being idle).
  bool send_input();
  // Reads what arrives until the peer ends TLS or the connection closes, or the timeout.
  struct Ending {
    Bytes received;             // every byte read
    bool close_notify = false;  // TLS ended with close_notify (a clean shutdown)
    bool closed = false;        // EOF or error: the connection is gone
  };
  Ending read_until_closed(std::chrono::milliseconds timeout);
  // True while the connection is open and nothing arrives within `wait` (no EOF, no data
  // that ends the session); data that arrives is kept for read_until_closed.
  bool still_open(std::chrono::milliseconds wait = std::chrono::milliseconds(200));
  void close();
  // Reads what the socket holds without waiting, then closes it: with nothing unread the
  // kernel sends FIN rather than a reset, so the peer's next writes meet a closed socket
  // (its first one gets a reset back, the ones after it EPIPE).
  void drain_and_close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The PDU the gateway sends before it closes a client's session (T.125, MS-RDPBCGR 2.2.2.3).
inline const Bytes kUltimatum{0x03, 0x00, 0x00, 0x09, 0x02, 0xF0, 0x80, 0x21, 0x80};
// True when `bytes` ends with the ultimatum.
bool ends_with_ultimatum(const Bytes& bytes);

// Installs a no-op SIGPIPE handler (not SIG_IGN, which children would inherit across exec), so
// writes to a closed socket fail with EPIPE instead of ending the test.
void survive_sigpipe();

}  // namespace enclave::testing
