// The session manager's requests over its Unix socket (common/ipc framing), and the gateway's
// control requests the session manager sends back. One place so both sides agree.
//
// enclave-sessiond socket (default var/run/sessiond.sock):
//   ticket.issue    (operators via `enclavectl ticket issue`; the login service later)
//       params  {"user", "device", "source" (IP address), "compartment"}
//       result  {"ticket" (64 hex chars), "expires_at" (RFC 3339), "session_id",
//                "desktop": {"id", "host", "port"}}
//       Picks the desktop now (the ticket is bound to it). A user with a session in its
//       disconnect grace period gets that session and desktop back.
//   ticket.redeem   (gatewayd only)
//       params  {"ticket", "source" (the client's IP address as the gateway saw it)}
//       result  {"session_id", "user", "device", "compartment", "tier",
//                "desktop": {"id", "host", "port", "server_name",
//                            "pin_sha256" (hex SHA-256 of the host certificate's
//                            SubjectPublicKeyInfo, DER) and/or "ca_file"},
//                "credentials": {"domain", "user", "password"},
//                "channels": {"static": [...], "dynamic": [...]},
//                "limits": {"idle_s", "max_s", "remaining_s"}}
//       error   permission: "ticket refused: <unknown|expired|already used|wrong source
//               address|desktop unavailable>" (audited by sessiond as ticket.refused)
//   session.connected     (gatewayd)  {"session_id"}  -> {}
//   session.disconnected  (gatewayd)  {"session_id", "reason", "ended" (bool: the session
//       must not be resumed: operator end, maximum time), "bytes": the per-channel counters
//       as in gateway.session.list's "channels" (an object of totals is accepted too)}  -> {}
//       Not ended: the desktop is kept for the tier's grace period for a reconnect.
//   session.list    (operators)  {}  -> {"sessions": [{"session_id", "user", "device",
//       "compartment", "tier", "desktop", "state" (issued|active|disconnected|ended),
//       "started_at", "updated_at"}]}
//   session.end     (operators)  {"session_id", "reason"}  -> {"ended", "gateway"}
//       Ends the session, tells the gateway to cut it at once, releases the desktop.
//
//   login.start     (gatewayd: the kiosk's create_session)
//       params  {"user", "device" (the id in its verified certificate), "source" (IP address),
//                "certificate_sha256" (hex SHA-256 of the device certificate, DER)}
//       result  {"login_id" (32 hex chars), "step": see below, "not_before_ms" (unix ms: send
//                the step to the kiosk no earlier)}
//   login.answer    (gatewayd)  {"login_id", "response" (absent for info/error)} -> as start
//   login.cancel    (gatewayd)  {"login_id", "reason"} -> {}
//       step: {"type": "auth_message", "auth_message_type": visible|secret|info|error|
//       fingerprint, "auth_message"} | {"type": "error", "error_type": "auth_error",
//       "description"} | {"type": "success", "ticket", "expires_at", "session_id",
//       "desktop": {"id", "host", "port"}}. Every failure is the same error step, sent after
//       the same delay; the audit log has the reason.
//   registry.pools  (gatewayd)  {} -> {"version", "sites": [{"site", "ike_identity",
//       "pools": ["10.8.0.0/24", ...]}] (approved, unexpired sites only),
//       "revoked_certificates": [hex SHA-256 of each revoked device certificate, DER]}
//
// enclave-gatewayd control socket (default var/run/gatewayd.sock):
//   gateway.session.end   (sessiond)  {"session_id", "reason"}  -> {"found": bool}
//   gateway.session.list  (sessiond, operators)  {}  -> {"sessions": [{"session_id",
//       "user", "client", "desktop", "since", "idle_s", "channels": [{"name", "id",
//       "allowed", "to_host", "to_client", "dropped_to_host", "dropped_to_client"}]}]}
#pragma once

namespace enclave::sessionmgr::methods {

inline constexpr const char* kTicketIssue = "ticket.issue";
inline constexpr const char* kTicketRedeem = "ticket.redeem";
inline constexpr const char* kSessionConnected = "session.connected";
inline constexpr const char* kSessionDisconnected = "session.disconnected";
inline constexpr const char* kSessionList = "session.list";
inline constexpr const char* kSessionEnd = "session.end";
inline constexpr const char* kLoginStart = "login.start";
inline constexpr const char* kLoginAnswer = "login.answer";
inline constexpr const char* kLoginCancel = "login.cancel";
inline constexpr const char* kRegistryPools = "registry.pools";
inline constexpr const char* kGatewaySessionEnd = "gateway.session.end";
inline constexpr const char* kGatewaySessionList = "gateway.session.list";

}  // namespace enclave::sessionmgr::methods
