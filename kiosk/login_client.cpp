#include "kiosk/login_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <optional>

#include <openssl/ssl.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>

#include "common/bytes.hpp"
#include "kiosk/fingerprint.hpp"

namespace enclave::kiosk {

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

DeviceKit DeviceKit::in(const std::filesystem::path& dir) {
  return {dir / "device.crt", dir / "device.key", dir / "ca.crt"};
}

namespace {

using Stream = ssl::stream<tcp::socket>;

// One mutual-TLS connection to the gateway's login API, made with the device's kit: what a
// login and an enrolment both speak over.
class GatewayLink {
 public:
  // Reads the kit: its files are checked before anything else happens.
  Status load_kit(const DeviceKit& kit);
  // Connects and shakes hands; every later read and write waits at most options.timeout.
  Status connect(const LoginOptions& options);
  Status send(const login::Request& request);
  Expected<login::Response> receive();

 private:
  asio::io_context io_;
  ssl::context tls_{ssl::context::tls_client};
  std::optional<Stream> stream_;  // made once the context is complete: SSL_new copies it
  login::FrameDecoder decoder_;
};

Status GatewayLink::load_kit(const DeviceKit& kit) {
  SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  tls_.load_verify_file(kit.ca.string(), ec);
  if (ec) return fail(Errc::kNotFound, kit.ca.string() + ": " + ec.message());
  tls_.use_certificate_chain_file(kit.certificate.string(), ec);
  if (ec) return fail(Errc::kNotFound, kit.certificate.string() + ": " + ec.message());
  tls_.use_private_key_file(kit.private_key.string(), ssl::context::pem, ec);
  if (ec) return fail(Errc::kNotFound, kit.private_key.string() + ": " + ec.message());
  tls_.set_verify_mode(ssl::verify_peer, ec);
  if (ec) return fail(Errc::kInternal, "TLS peer verification: " + ec.message());
  return {};
}

Status GatewayLink::connect(const LoginOptions& options) {
  Stream& stream = stream_.emplace(io_, tls_);
  boost::system::error_code ec;
  tcp::resolver resolver(io_);
  auto endpoints = resolver.resolve(options.gateway_host, std::to_string(options.gateway_port), ec);
  if (!ec) asio::connect(stream.next_layer(), endpoints, ec);
  const std::string where = options.gateway_host + ":" + std::to_string(options.gateway_port);
  if (ec)
    return fail(Errc::kUnavailable, "cannot reach the gateway at " + where + ": " + ec.message());
  // Every read and write waits at most `timeout` (the center is slow, or gone).
  const auto ms = options.timeout.count();
  timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  ::setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  // Each message is one small write answered by the center: Nagle's algorithm would hold it
  // for the previous segment's delayed ACK (40 ms on Linux) on every step of the login.
  stream.next_layer().set_option(tcp::no_delay(true), ec);
  const std::string name = options.server_name.empty() ? options.gateway_host : options.server_name;
  SSL_set_tlsext_host_name(stream.native_handle(), name.c_str());
  SSL_set1_host(stream.native_handle(), name.c_str());
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) return fail(Errc::kPermission, "TLS with the gateway at " + where + ": " + ec.message());
  return {};
}

Status GatewayLink::send(const login::Request& request) {
  auto frame = login::frame_request(request);
  if (!frame) return fail(Errc::kInvalidArgument, "login request: " + frame.error().describe());
  boost::system::error_code ec;
  asio::write(*stream_, asio::buffer(*frame), ec);
  secure_wipe(frame->data(), frame->size());
  if (ec) return fail(Errc::kIo, "sending to the gateway: " + ec.message());
  return {};
}

Expected<login::Response> GatewayLink::receive() {
  std::array<std::uint8_t, 4096> buffer;
  for (;;) {
    auto next = decoder_.next_response();
    if (!next) return fail(Errc::kInternal, "from the gateway: " + next.error().describe());
    if (next->has_value()) return std::move(**next);
    boost::system::error_code ec;
    const std::size_t n = stream_->read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      return fail(Errc::kTimeout, "the gateway sent nothing in time");
    }
    if (ec) return fail(Errc::kIo, "reading from the gateway: " + ec.message());
    decoder_.feed(ByteSpan(buffer.data(), n));
  }
}

// The person's or the reader's answer to one message; nullopt: cancel the login.
Expected<std::optional<std::string>> answer_of(const login::AuthMessage& m,
                                               const LoginOptions& options, Person& person,
                                               FingerprintMatcher& reader) {
  using T = login::AuthMessageType;
  switch (m.type) {
    case T::kVisible:
    case T::kSecret: {
      auto typed = person.answer(m.text, m.type == T::kSecret);
      if (!typed) return std::optional<std::string>();
      return std::optional<std::string>(std::move(typed));
    }
    case T::kInfo:
    case T::kError:
      person.tell(m.text, m.type == T::kError);
      return std::optional<std::string>(std::string());  // acknowledged (no response field)
    case T::kFingerprint: {
      auto challenge = login::parse_challenge(as_bytes(m.text));
      if (!challenge) {
        return fail(Errc::kInternal, "fingerprint challenge: " + challenge.error().describe());
      }
      auto verdict = reader.match(challenge->prints);
      if (!verdict) return error_of(verdict);
      login::FingerprintAssertion assertion;
      assertion.nonce = challenge->nonce;
      assertion.user = challenge->user;
      assertion.device = challenge->device;
      assertion.print_id = verdict->print_id;
      assertion.result = verdict->result;
      assertion.time = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
      auto wire = login::sign_assertion(assertion, options.kit.private_key);
      if (!wire) return error_of(wire);
      return std::optional<std::string>(std::move(wire).value());
    }
  }
  return fail(Errc::kInternal, "unknown auth message type");
}

}  // namespace

Expected<FingerprintVerdict> ReaderMatcher::match(const std::vector<login::EnrolledPrint>& prints) {
  if (prints.empty()) return fail(Errc::kInternal, "the fingerprint challenge offers no print");
  for (const auto& print : prints) {
    for (int attempt = 1;; ++attempt) {
      auto verdict = reader_.verify(print.data);
      if (verdict) {
        if (*verdict == VerifyResult::kMatch) {
          return FingerprintVerdict{print.print_id, login::MatchResult::kMatch};
        }
        break;  // not this print: the next one, with a new scan
      }
      const FingerprintError& e = verdict.error();
      if (e.kind != FingerprintError::Kind::kRetry || attempt == 3) {
        return fail(Errc::kUnavailable, e.describe());
      }
      person_.tell(retry_advice(e.retry.value_or(RetryReason::kGeneral)), true);
    }
  }
  return FingerprintVerdict{prints.front().print_id, login::MatchResult::kNoMatch};
}

Expected<LoginOutcome> run_login(const LoginOptions& options, Person& person,
                                 FingerprintMatcher& reader) {
  GatewayLink link;
  ENCLAVE_TRY(link.load_kit(options.kit));
  ENCLAVE_TRY(link.connect(options));
  ENCLAVE_TRY(link.send(login::CreateSession{options.user, options.compartment}));
  for (;;) {
    auto response = link.receive();
    if (!response) return error_of(response);
    if (auto* success = std::get_if<login::Success>(&*response)) return LoginOutcome(*success);
    if (auto* refused = std::get_if<login::ErrorReply>(&*response)) return LoginOutcome(*refused);
    const auto* message = std::get_if<login::AuthMessage>(&*response);
    if (!message) return fail(Errc::kInternal, "the gateway answered a login with \"enrolled\"");
    auto answer = answer_of(*message, options, person, reader);
    if (!answer) {
      (void)link.send(login::CancelSession{});
      return error_of(answer);
    }
    if (!*answer) {
      ENCLAVE_TRY(link.send(login::CancelSession{}));
      return LoginOutcome(login::ErrorReply{login::ErrorType::kError, "login cancelled"});
    }
    login::PostAuthMessageResponse reply;
    if (message->needs_answer()) reply.response = std::move(**answer);
    Status sent = link.send(reply);
    if (reply.response) secure_wipe(reply.response->data(), reply.response->size());
    if (!sent) return error_of(sent);
  }
}

Expected<Bytes> enrol_finger(FingerprintReader& reader, Person& person, const std::string& user) {
  auto print = reader.enroll(user, [&person](const EnrollProgress& progress) {
    if (progress.retry) {
      person.tell(retry_advice(*progress.retry), true);
    } else {
      person.tell("Scan " + std::to_string(progress.completed_stages) + " of " +
                      std::to_string(progress.total_stages) + " done.",
                  false);
    }
  });
  if (!print) return fail(Errc::kUnavailable, print.error().describe());
  return std::move(print).value();
}

Expected<EnrolmentOutcome> run_enrolment(const LoginOptions& options, Person& person,
                                         FingerprintReader& reader) {
  GatewayLink link;
  ENCLAVE_TRY(link.load_kit(options.kit));
  auto print = enrol_finger(reader, person, options.user);
  if (!print) return error_of(print);
  login::EnrolPrint enrol{options.user, std::move(print).value()};
  struct Wipe {
    Bytes& bytes;
    ~Wipe() { secure_wipe(bytes.data(), bytes.size()); }
  } wipe{enrol.print};
  if (enrol.print.size() > login::kMaxPrintBytes) {
    // The center could never send it down again in a fingerprint challenge.
    return fail(Errc::kInvalidArgument,
                "the reader's print is " + std::to_string(enrol.print.size()) +
                    " bytes; a login can carry at most " + std::to_string(login::kMaxPrintBytes));
  }
  ENCLAVE_TRY(link.connect(options));
  ENCLAVE_TRY(link.send(enrol));
  auto response = link.receive();
  if (!response) return error_of(response);
  if (auto* enrolled = std::get_if<login::Enrolled>(&*response)) {
    return EnrolmentOutcome(*enrolled);
  }
  if (auto* refused = std::get_if<login::ErrorReply>(&*response)) {
    return EnrolmentOutcome(*refused);
  }
  return fail(Errc::kInternal, "the gateway answered enrol_print with neither enrolled nor error");
}

std::vector<std::string> xfreerdp_arguments(const login::Success& success) {
  return {"xfreerdp", "/v:" + success.gateway.address + ":" + std::to_string(success.gateway.port),
          "/pcb:" + success.ticket,
          "/cert:fingerprint:sha256:" + success.gateway.xfreerdp_fingerprint, "/sec:tls"};
}

}  // namespace enclave::kiosk
