// The session lifecycle and the limits on starting one. No I/O; the caller passes the time.
//
//   issued ──redeem──▶ active ──disconnect──▶ disconnected ──redeem (fresh ticket)──▶ active
//     │                  │                        │
//     └── ticket expired, operator end, maximum time, grace expired, gateway "ended" ──▶ ended
//
// A session is issued with its first ticket and its desktop. Redeeming a ticket makes it
// active (the gateway connects the client to the desktop). A disconnect keeps the desktop for
// the tier's grace period; a new ticket for the same user resumes the same session on the same
// desktop. Ended is final; the desktop is released.
//
// Starting a session (plan_issue): one open session per user and compartment at most, which
// is reused (an unredeemed ticket is replaced, a disconnected session resumed); a user with an
// active session gets no second one; the tier's caps per compartment and per user; its time
// windows and site classes.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/result.hpp"
#include "sessionmgr/core/policy.hpp"
#include "sessionmgr/core/ticket.hpp"

namespace enclave::sessionmgr {

enum class SessionState { kIssued, kActive, kDisconnected, kEnded };

const char* state_name(SessionState state);  // "issued", "active", "disconnected", "ended"
std::optional<SessionState> state_from_name(std::string_view name);

struct Session {
  std::string id;
  std::string user, device, source, compartment, tier, desktop_id;
  SessionState state = SessionState::kIssued;
  TimePoint created_at{};
  std::optional<TimePoint> started_at;  // first redeemed: the maximum time counts from here
  TimePoint updated_at{};
  std::optional<TimePoint> grace_until;  // kDisconnected
  std::optional<TimePoint> ended_at;
  std::string end_reason;
  int connects = 0;  // times the gateway reported the client connected
  // Hex SHA-256 of the export token in the session's outbox (outbox.hpp); empty for a session
  // recorded before outboxes existed.
  std::string export_token_sha256;
};

// Why a session ended (the audit event's reason and the list's column).
namespace end_reason {
inline constexpr const char* kTicketExpired = "ticket expired";
inline constexpr const char* kGraceExpired = "grace period expired";
inline constexpr const char* kMaxTime = "maximum session time";
inline constexpr const char* kOperator = "ended by operator";
inline constexpr const char* kDesktopFailed = "desktop failed";
inline constexpr const char* kRestart = "session manager restarted";
}  // namespace end_reason

// Redemption: issued or disconnected -> active. Returns true when it resumes a session that
// was active before. kConflict from any other state.
Expected<bool> on_redeemed(Session& session, TimePoint now);
// The gateway connected the client: counted; the session must be active.
Status on_connected(Session& session, TimePoint now);
// The gateway lost the client. ended (or a tier without grace): -> ended with reason;
// otherwise -> disconnected until now + grace. An already ended session stays as it is.
Status on_disconnected(Session& session, TimePoint now, std::chrono::seconds grace, bool ended,
                       const std::string& reason);
// Any open state -> ended. false when it had already ended.
bool end_session(Session& session, TimePoint now, const std::string& reason);

// Why the clock ends this session now, if it does: its grace period passed, or its maximum
// time. (An issued session whose ticket expired is ended by the service, which knows the
// tickets.)
std::optional<std::string> due_end(const Session& session, const Tier& tier, TimePoint now);
// Seconds of the maximum time left (the whole of it before the first redemption).
std::int64_t remaining_seconds(const Session& session, const Tier& tier, TimePoint now);

// True when now falls in one of the tier's time windows (always, without windows).
bool in_time_windows(const Tier& tier, TimePoint now);

struct IssueRequest {
  std::string user, device, source, compartment;
  std::string site_class;  // may be empty: required only by tiers that list site classes
};

struct IssuePlan {
  enum class Kind {
    kNew,            // a new session; the service picks a desktop
    kReplaceTicket,  // the user's issued session: its unredeemed ticket is replaced
    kResume,         // the user's disconnected session: a fresh ticket for the same desktop
  } kind = Kind::kNew;
  std::string session_id;  // kReplaceTicket, kResume
};

// Decides whether the request may start (or resume) a session, given every open session.
// Errors: kNotFound (unknown compartment), kInvalidArgument (a malformed field), kPermission
// (outside the tier's time windows or site classes), kConflict (the user has an active
// session, or an open one in another compartment that a new one would exceed the cap with),
// kUnavailable (the compartment's or the user's cap is reached).
Expected<IssuePlan> plan_issue(const SessionPolicy& policy, const IssueRequest& request,
                               const std::vector<Session>& open_sessions, TimePoint now);

}  // namespace enclave::sessionmgr
