#include "kiosk/login_client.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <array>

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

Status send(Stream& stream, const login::Request& request) {
  auto frame = login::frame_request(request);
  if (!frame) return fail(Errc::kInvalidArgument, "login request: " + frame.error().describe());
  boost::system::error_code ec;
  asio::write(stream, asio::buffer(*frame), ec);
  secure_wipe(frame->data(), frame->size());
  if (ec) return fail(Errc::kIo, "sending to the gateway: " + ec.message());
  return {};
}

Expected<login::Response> receive(Stream& stream, login::FrameDecoder& decoder) {
  std::array<std::uint8_t, 4096> buffer;
  for (;;) {
    auto next = decoder.next_response();
    if (!next) return fail(Errc::kInternal, "from the gateway: " + next.error().describe());
    if (next->has_value()) return std::move(**next);
    boost::system::error_code ec;
    const std::size_t n = stream.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      return fail(Errc::kTimeout, "the gateway sent nothing in time");
    }
    if (ec) return fail(Errc::kIo, "reading from the gateway: " + ec.message());
    decoder.feed(ByteSpan(buffer.data(), n));
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
  ssl::context tls(ssl::context::tls_client);
  SSL_CTX* raw = tls.native_handle();
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  boost::system::error_code ec;
  tls.load_verify_file(options.kit.ca.string(), ec);
  if (ec) return fail(Errc::kNotFound, options.kit.ca.string() + ": " + ec.message());
  tls.use_certificate_chain_file(options.kit.certificate.string(), ec);
  if (ec) return fail(Errc::kNotFound, options.kit.certificate.string() + ": " + ec.message());
  tls.use_private_key_file(options.kit.private_key.string(), ssl::context::pem, ec);
  if (ec) return fail(Errc::kNotFound, options.kit.private_key.string() + ": " + ec.message());
  tls.set_verify_mode(ssl::verify_peer, ec);

  asio::io_context io;
  Stream stream(io, tls);
  tcp::resolver resolver(io);
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
  const std::string name = options.server_name.empty() ? options.gateway_host : options.server_name;
  SSL_set_tlsext_host_name(stream.native_handle(), name.c_str());
  SSL_set1_host(stream.native_handle(), name.c_str());
  stream.handshake(ssl::stream_base::client, ec);
  if (ec) return fail(Errc::kPermission, "TLS with the gateway at " + where + ": " + ec.message());

  ENCLAVE_TRY(send(stream, login::CreateSession{options.user}));
  login::FrameDecoder decoder;
  for (;;) {
    auto response = receive(stream, decoder);
    if (!response) return error_of(response);
    if (auto* success = std::get_if<login::Success>(&*response)) return LoginOutcome(*success);
    if (auto* refused = std::get_if<login::ErrorReply>(&*response)) return LoginOutcome(*refused);
    const auto& message = std::get<login::AuthMessage>(*response);
    auto answer = answer_of(message, options, person, reader);
    if (!answer) {
      (void)send(stream, login::CancelSession{});
      return error_of(answer);
    }
    if (!*answer) {
      ENCLAVE_TRY(send(stream, login::CancelSession{}));
      return LoginOutcome(login::ErrorReply{login::ErrorType::kError, "login cancelled"});
    }
    login::PostAuthMessageResponse reply;
    if (message.needs_answer()) reply.response = std::move(**answer);
    Status sent = send(stream, reply);
    if (reply.response) secure_wipe(reply.response->data(), reply.response->size());
    if (!sent) return error_of(sent);
  }
}

std::vector<std::string> xfreerdp_arguments(const login::Success& success) {
  return {"xfreerdp", "/v:" + success.gateway.address + ":" + std::to_string(success.gateway.port),
          "/pcb:" + success.ticket,
          "/cert:fingerprint:sha256:" + success.gateway.xfreerdp_fingerprint, "/sec:tls"};
}

}  // namespace enclave::kiosk
