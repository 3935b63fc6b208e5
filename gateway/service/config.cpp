#include "gateway/service/config.hpp"

#include <charconv>

#include "common/files.hpp"

namespace enclave::gateway {
namespace {

Status text(const policy::Table& t, std::string_view key, std::string fallback, std::string& out) {
  auto v = t.nonempty_string_or(key, std::move(fallback));
  if (!v) return error_of(v);
  out = std::move(v).value();
  return {};
}

Status seconds(const policy::Table& t, std::string_view key, std::chrono::milliseconds& out) {
  auto v = t.number_or(key, static_cast<double>(out.count()) / 1000.0, 0.01, 86400);
  if (!v) return error_of(v);
  out = std::chrono::milliseconds(static_cast<std::int64_t>(*v * 1000));
  return {};
}

// "host:port" with an IPv4 address or a bracketed IPv6 address.
Status parse_listen(const policy::Table& t, const std::string& value, std::string& address,
                    std::uint16_t& port_out) {
  auto colon = value.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Unexpected<Error>{t.error_at("listen", "expected ADDRESS:PORT, e.g. 0.0.0.0:3389")};
  }
  std::string host = value.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto port_text = std::string_view(value).substr(colon + 1);
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return Unexpected<Error>{t.error_at("listen", "port must be 1..65535")};
  }
  address = host;
  port_out = static_cast<std::uint16_t>(port);
  return {};
}

}  // namespace

Expected<GatewayConfig> load_gateway_config(const policy::Document& policy,
                                            const std::filesystem::path& state_dir) {
  auto gateway = policy.root().table("gateway");
  if (!gateway) return error_of(gateway);
  if (!*gateway) {
    return fail(Errc::kInvalidArgument, policy.source() + ": missing [gateway] table");
  }
  const policy::Table& t = **gateway;
  ENCLAVE_TRY(t.reject_unknown({"listen", "certificate", "private_key", "control_socket",
                                "sessiond_socket", "auditd_socket", "max_sessions", "threads",
                                "tls", "timeouts", "buffers", "login"}));
  GatewayConfig c;
  std::string listen, certificate, key, control, sessiond, auditd;
  ENCLAVE_TRY(text(t, "listen", "127.0.0.1:3390", listen));
  ENCLAVE_TRY(parse_listen(t, listen, c.listen_address, c.listen_port));
  ENCLAVE_TRY(text(t, "certificate", "keys/gateway.crt", certificate));
  ENCLAVE_TRY(text(t, "private_key", "keys/gateway.key", key));
  ENCLAVE_TRY(text(t, "control_socket", "run/gatewayd.sock", control));
  ENCLAVE_TRY(text(t, "sessiond_socket", "run/sessiond.sock", sessiond));
  ENCLAVE_TRY(text(t, "auditd_socket", "run/auditd.sock", auditd));
  c.certificate = under_state_dir(state_dir, certificate);
  c.private_key = under_state_dir(state_dir, key);
  c.control_socket = under_state_dir(state_dir, control);
  c.sessiond_socket = under_state_dir(state_dir, sessiond);
  c.auditd_socket = under_state_dir(state_dir, auditd);
  auto max_sessions = t.integer_or("max_sessions", 10000, 1, 1'000'000);
  if (!max_sessions) return error_of(max_sessions);
  c.max_sessions = static_cast<std::size_t>(*max_sessions);
  auto threads = t.integer_or("threads", 2, 1, 256);
  if (!threads) return error_of(threads);
  c.threads = static_cast<unsigned>(*threads);

  auto tls = t.table("tls");
  if (!tls) return error_of(tls);
  if (*tls) {
    const auto& s = **tls;
    ENCLAVE_TRY(s.reject_unknown({"min_version", "tls12_ciphers"}));
    ENCLAVE_TRY(text(s, "min_version", "1.2", c.tls_min_version));
    if (c.tls_min_version != "1.2" && c.tls_min_version != "1.3") {
      return Unexpected<Error>{s.error_at("min_version", "must be \"1.2\" or \"1.3\"")};
    }
    ENCLAVE_TRY(text(s, "tls12_ciphers", c.tls12_ciphers, c.tls12_ciphers));
  }
  auto timeouts = t.table("timeouts");
  if (!timeouts) return error_of(timeouts);
  if (*timeouts) {
    const auto& s = **timeouts;
    ENCLAVE_TRY(s.reject_unknown(
        {"preconnection_s", "handshake_s", "connect_s", "login_s", "write_stall_s"}));
    ENCLAVE_TRY(seconds(s, "preconnection_s", c.timeouts.preconnection));
    ENCLAVE_TRY(seconds(s, "handshake_s", c.timeouts.handshake));
    ENCLAVE_TRY(seconds(s, "connect_s", c.timeouts.connect));
    ENCLAVE_TRY(seconds(s, "login_s", c.timeouts.login));
    ENCLAVE_TRY(seconds(s, "write_stall_s", c.timeouts.write_stall));
  }
  auto login = t.table("login");
  if (!login) return error_of(login);
  if (*login) {
    const auto& s = **login;
    ENCLAVE_TRY(s.reject_unknown({"listen", "device_ca", "vici_socket", "pools_refresh_s",
                                  "handshake_s", "message_s", "max_connections"}));
    std::string login_listen, device_ca;
    ENCLAVE_TRY(text(s, "listen", "127.0.0.1:3391", login_listen));
    ENCLAVE_TRY(parse_listen(s, login_listen, c.login.listen_address, c.login.listen_port));
    ENCLAVE_TRY(text(s, "device_ca", "keys/ca/ca.crt", device_ca));
    c.login.device_ca = under_state_dir(state_dir, device_ca);
    auto vici = s.string_or("vici_socket", "");
    if (!vici) return error_of(vici);
    if (!vici->empty()) c.login.vici_socket = under_state_dir(state_dir, *vici);
    ENCLAVE_TRY(seconds(s, "pools_refresh_s", c.login.pools_refresh));
    ENCLAVE_TRY(seconds(s, "handshake_s", c.login.handshake));
    ENCLAVE_TRY(seconds(s, "message_s", c.login.message));
    auto max = s.integer_or("max_connections", 1000, 1, 100'000);
    if (!max) return error_of(max);
    c.login.max_connections = static_cast<std::size_t>(*max);
  }
  auto buffers = t.table("buffers");
  if (!buffers) return error_of(buffers);
  if (*buffers) {
    const auto& s = **buffers;
    ENCLAVE_TRY(s.reject_unknown({"high_water_kib"}));
    auto kib = s.integer_or("high_water_kib", 256, 16, 1 << 20);
    if (!kib) return error_of(kib);
    c.high_water_bytes = static_cast<std::size_t>(*kib) * 1024;
  }
  return c;
}

}  // namespace enclave::gateway
