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
//   session.identify  (enclave-exportd: the daemon's own uid, root, or [sessiond] exporters)
//       params  {"token" (the 64 hex chars of .enclave-session in the session's outbox)}
//       result  {"session_id", "user", "device", "compartment", "tier",
//                "state" (issued|active|disconnected|ended: an ended session still identifies),
//                "outbox" (absolute path of <outbox_root>/<session_id>),
//                "export": {"profile" (policies/exitcontrol/<profile>.toml), "stewards" (1|2:
//                distinct approvals each file needs)}}
//       error   invalid_argument for a token that is not 64 hex digits; permission "unknown
//               export token". Both audited as session.identify refused (never the token).
//       Every new session (ticket.issue, a login's ticket) gets its outbox and token; a
//       resumed one keeps them.
//
//   login.start     (gatewayd: the kiosk's create_session)
//       params  {"user", "device" (the id in its verified certificate), "source" (IP address),
//                "certificate_sha256" (hex SHA-256 of the device certificate, DER),
//                "compartment" (optional, only when the kiosk named one: for a user whose
//                projects grant several; absent, the only one they grant)}
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
//       "revoked_certificates": [hex SHA-256 of each revoked device certificate, DER],
//       "revoked_serials": [hex serial of each]}. "version" changes with every change of the
//       registry, an approval lapsing included.
//
//   The registry (registry_service.hpp), for operators (`enclavectl user|site|device|project|
//   enrolment ...`). Times are RFC 3339 UTC ("2027-03-31T00:00:00Z"); a request may give a
//   date alone ("2027-03-31", midnight UTC). Every change answers with the changed object as
//   its list shows it, and is refused with invalid_argument, not_found, already_exists,
//   conflict or permission naming the field or object; changes and refusals are audited.
//   registry.user.add        {"user", "name", "roles": [analyst|steward|auditor|
//                             site_manager|operator]}
//   registry.user.set_roles  {"user", "roles"}
//   registry.user.disable    {"user"}
//   registry.user.list       {} -> {"users": [{"user", "name", "roles", "disabled",
//                             "created_at", "updated_at"}]}
//   registry.site.add        {"site", "name", "ike_identity", "site_class" (default
//                             "security-room"), "pools": ["10.8.0.0/24", "2001:db8:5::/64"]}
//   registry.site.approve    {"site", "expires", "audited" (the security audit's date; default
//                             now)}: from registered, suspended or approved (renewal)
//   registry.site.suspend    {"site", "reason"}: approved -> suspended
//   registry.site.revoke     {"site", "reason"}: final
//   registry.site.list       {} -> {"sites": [{"site", "name", "ike_identity", "site_class",
//                             "pools", "state", "audited_at", "expires_at", "may_log_in"}]}
//   registry.device.add      {"device", "site", "certificate" (PEM, CN = device, issued by the
//                             local CA for clientAuth)} -> {"device", "site", "state", "serial",
//                             "certificate_sha256", "public_key" (hex), "created_at"}
//   registry.device.revoke   {"device", "reason"}: also revokes its enrolments and prints
//   registry.device.list     {"site" (optional)} -> {"devices": [...]}
//   registry.project.add     {"project", "title", "valid_from", "valid_until"}
//   registry.project.add_member | remove_member  {"project", "user"}
//   registry.project.grant   {"project", "compartment" (one sessions.toml defines)}
//   registry.project.list    {} -> {"projects": [{"project", "title", "valid_from",
//                             "valid_until", "valid_now", "members", "compartments"}]}
//   registry.enrolment.approve  {"user", "device", "approver" (a steward, not the user)}: the
//                             kiosk may record one print within the enrolment window
//                             ([sessiond] enrolment_window_s, 30 minutes by default) of the
//                             approval; approving an enrolled one re-enrols, approving one
//                             whose window passed unused renews it
//   registry.enrolment.revoke   {"user", "device", "reason"}: the print's ciphertext is deleted
//   registry.enrolment.list     {"user" (optional)} -> {"enrolments": [{"id", "user",
//                             "device", "state", "approved_by", "approved_at",
//                             "approval_expires_at" (while approved), "enrolled_at",
//                             "revoked_at", "print_id"}]}
//   registry.enrolment.record   (gatewayd: the kiosk enrolled a finger) {"user", "device"
//                             (from its verified certificate), "print" (base64 of the serialised
//                             libfprint print, at most 40 KiB)} -> {"print_id"}; needs an
//                             approved enrolment whose window has not passed (permission:
//                             "the enrolment approval of U on D expired at T; a steward must
//                             approve again"), replaces the previous print
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
inline constexpr const char* kSessionIdentify = "session.identify";
inline constexpr const char* kLoginStart = "login.start";
inline constexpr const char* kLoginAnswer = "login.answer";
inline constexpr const char* kLoginCancel = "login.cancel";
inline constexpr const char* kRegistryPools = "registry.pools";
inline constexpr const char* kRegistryUserAdd = "registry.user.add";
inline constexpr const char* kRegistryUserSetRoles = "registry.user.set_roles";
inline constexpr const char* kRegistryUserDisable = "registry.user.disable";
inline constexpr const char* kRegistryUserList = "registry.user.list";
inline constexpr const char* kRegistrySiteAdd = "registry.site.add";
inline constexpr const char* kRegistrySiteApprove = "registry.site.approve";
inline constexpr const char* kRegistrySiteSuspend = "registry.site.suspend";
inline constexpr const char* kRegistrySiteRevoke = "registry.site.revoke";
inline constexpr const char* kRegistrySiteList = "registry.site.list";
inline constexpr const char* kRegistryDeviceAdd = "registry.device.add";
inline constexpr const char* kRegistryDeviceRevoke = "registry.device.revoke";
inline constexpr const char* kRegistryDeviceList = "registry.device.list";
inline constexpr const char* kRegistryProjectAdd = "registry.project.add";
inline constexpr const char* kRegistryProjectAddMember = "registry.project.add_member";
inline constexpr const char* kRegistryProjectRemoveMember = "registry.project.remove_member";
inline constexpr const char* kRegistryProjectGrant = "registry.project.grant";
inline constexpr const char* kRegistryProjectList = "registry.project.list";
inline constexpr const char* kRegistryEnrolmentApprove = "registry.enrolment.approve";
inline constexpr const char* kRegistryEnrolmentRevoke = "registry.enrolment.revoke";
inline constexpr const char* kRegistryEnrolmentList = "registry.enrolment.list";
inline constexpr const char* kRegistryEnrolmentRecord = "registry.enrolment.record";
inline constexpr const char* kGatewaySessionEnd = "gateway.session.end";
inline constexpr const char* kGatewaySessionList = "gateway.session.list";

}  // namespace enclave::sessionmgr::methods
