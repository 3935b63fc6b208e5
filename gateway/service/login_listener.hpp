// The kiosks' login API (design "The login path"): a second listener of enclave-gatewayd.
//
// At accept, before any TLS work, the source address must lie in an approved site's
// virtual-IP pool (SitePools, refreshed from the session manager's registry) and, where a
// VICI socket is configured, strongSwan must hold an IKE SA of that site's identity with that
// address; otherwise the connection is closed and the refusal audited. Then mutual TLS: the
// kiosk presents its device certificate (issued by the local CA; a revoked one is refused).
// Then the login messages (common/login/messages.hpp) are relayed to the session manager's
// login.start / login.answer / login.cancel, which run PAM; a failure is answered when the
// session manager says (every failure after the same delay). On success the kiosk gets the
// ticket and where and how to reach the RDP relay.
//
// Audit events: gateway.login.refused refused {reason, client[, device]} for every
// connection turned away here (address, VICI, TLS, revoked device, protocol error).
#pragma once

#include <cstdint>
#include <memory>

#include "common/result.hpp"

namespace enclave::gateway {

struct GatewayContext;

class LoginListener {
 public:
  // The TLS context (make_login_context) and the pools live in ctx.
  explicit LoginListener(GatewayContext& ctx);
  ~LoginListener();
  LoginListener(const LoginListener&) = delete;
  LoginListener& operator=(const LoginListener&) = delete;

  // Binds ctx.config.login's address and starts accepting (and refreshing the pools).
  Status start();
  // Stops accepting. A login in progress ends with its connection (the session manager
  // cancels it when it hears no more).
  void stop();
  std::uint16_t port() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace enclave::gateway
