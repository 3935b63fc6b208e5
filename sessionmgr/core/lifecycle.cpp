#include "sessionmgr/core/lifecycle.hpp"

#include <algorithm>

#include "common/bytes.hpp"

namespace enclave::sessionmgr {

namespace {

// Non-empty UTF-8 of at most max bytes without control characters: what an audit event's
// short fields accept.
bool printable_field(std::string_view s, std::size_t max) {
  return !s.empty() && s.size() <= max && is_valid_utf8(s) &&
         std::all_of(s.begin(), s.end(),
                     [](char c) { return static_cast<unsigned char>(c) >= 0x20 && c != 0x7f; });
}

Unexpected<Error> conflict(const Session& s, std::string_view what) {
  return fail(Errc::kConflict,
              "session " + s.id + " is " + state_name(s.state) + ": cannot " + std::string(what));
}

}  // namespace

const char* state_name(SessionState state) {
  switch (state) {
    case SessionState::kIssued:
      return "issued";
    case SessionState::kActive:
      return "active";
    case SessionState::kDisconnected:
      return "disconnected";
    case SessionState::kEnded:
      return "ended";
  }
  return "ended";
}

std::optional<SessionState> state_from_name(std::string_view name) {
  for (auto s : {SessionState::kIssued, SessionState::kActive, SessionState::kDisconnected,
                 SessionState::kEnded}) {
    if (name == state_name(s)) return s;
  }
  return std::nullopt;
}

Expected<bool> on_redeemed(Session& session, TimePoint now) {
  if (session.state != SessionState::kIssued && session.state != SessionState::kDisconnected) {
    return conflict(session, "redeem a ticket");
  }
  const bool resumed = session.started_at.has_value();
  if (!session.started_at) session.started_at = now;
  session.state = SessionState::kActive;
  session.grace_until.reset();
  session.updated_at = now;
  return resumed;
}

Status on_connected(Session& session, TimePoint now) {
  if (session.state != SessionState::kActive) return conflict(session, "connect");
  session.connects++;
  session.updated_at = now;
  return {};
}

Status on_disconnected(Session& session, TimePoint now, std::chrono::seconds grace, bool ended,
                       const std::string& reason) {
  if (session.state == SessionState::kEnded) return {};
  if (session.state != SessionState::kActive) return conflict(session, "disconnect");
  if (ended || grace.count() == 0) {
    end_session(session, now, reason.empty() ? "disconnected" : reason);
    return {};
  }
  session.state = SessionState::kDisconnected;
  session.grace_until = now + grace;
  session.updated_at = now;
  return {};
}

bool end_session(Session& session, TimePoint now, const std::string& reason) {
  if (session.state == SessionState::kEnded) return false;
  session.state = SessionState::kEnded;
  session.ended_at = now;
  session.updated_at = now;
  session.grace_until.reset();
  session.end_reason = reason;
  return true;
}

std::optional<std::string> due_end(const Session& session, const Tier& tier, TimePoint now) {
  if (session.state == SessionState::kEnded) return std::nullopt;
  if (session.started_at && now >= *session.started_at + tier.max_session) {
    return std::string(end_reason::kMaxTime);
  }
  if (session.state == SessionState::kDisconnected && session.grace_until &&
      now >= *session.grace_until) {
    return std::string(end_reason::kGraceExpired);
  }
  return std::nullopt;
}

std::int64_t remaining_seconds(const Session& session, const Tier& tier, TimePoint now) {
  if (!session.started_at) return tier.max_session.count();
  auto left = std::chrono::duration_cast<std::chrono::seconds>(*session.started_at +
                                                               tier.max_session - now);
  return std::max<std::int64_t>(0, left.count());
}

bool in_time_windows(const Tier& tier, TimePoint now) {
  if (tier.windows.empty()) return true;
  const std::int64_t local_min =
      std::chrono::duration_cast<std::chrono::minutes>(now.time_since_epoch()).count() +
      tier.utc_offset_minutes;
  const std::int64_t day = local_min >= 0 ? local_min / 1440 : (local_min - 1439) / 1440;
  const int minute = static_cast<int>(local_min - day * 1440);
  // 1970-01-01 was a Thursday (4).
  auto weekday = [](std::int64_t d) { return static_cast<int>(((d % 7) + 7 + 4) % 7); };
  for (const auto& w : tier.windows) {
    const bool wraps = w.to_minute <= w.from_minute;
    const int today = weekday(day);
    const int yesterday = weekday(day - 1);
    if (!wraps) {
      if ((w.days >> today & 1) && minute >= w.from_minute && minute < w.to_minute) return true;
    } else {
      if ((w.days >> today & 1) && minute >= w.from_minute) return true;
      if ((w.days >> yesterday & 1) && minute < w.to_minute) return true;
    }
  }
  return false;
}

Expected<IssuePlan> plan_issue(const SessionPolicy& policy, const IssueRequest& request,
                               const std::vector<Session>& open_sessions, TimePoint now) {
  if (!printable_field(request.user, 128)) {
    return fail(Errc::kInvalidArgument, "user must be 1 to 128 printable characters");
  }
  if (!printable_field(request.device, 128)) {
    return fail(Errc::kInvalidArgument, "device must be 1 to 128 printable characters");
  }
  if (!canonical_address(request.source)) {
    return fail(Errc::kInvalidArgument,
                "source \"" + request.source.substr(0, 64) + "\" is not an IP address");
  }
  auto c = policy.compartments.find(request.compartment);
  if (c == policy.compartments.end()) {
    return fail(Errc::kNotFound, "no compartment \"" + request.compartment.substr(0, 64) + "\"");
  }
  const Tier* tier = policy.tier_of(c->second);
  if (!tier) return fail(Errc::kInternal, "compartment without a tier");

  if (!tier->site_classes.empty() && std::find(tier->site_classes.begin(), tier->site_classes.end(),
                                               request.site_class) == tier->site_classes.end()) {
    return fail(Errc::kPermission,
                "tier " + tier->name + " of compartment " + c->first + " is not open to " +
                    (request.site_class.empty() ? std::string("a request without a site class")
                                                : "site class \"" + request.site_class + "\""));
  }
  if (!in_time_windows(*tier, now)) {
    return fail(Errc::kPermission,
                "compartment " + c->first + " (tier " + tier->name + ") is closed at this time");
  }

  const Session* own = nullptr;  // the user's open session in this compartment
  int user_in_tier = 0;
  int in_compartment = 0;
  for (const auto& s : open_sessions) {
    if (s.state == SessionState::kEnded) continue;
    if (s.compartment == request.compartment) in_compartment++;
    if (s.user != request.user) continue;
    if (s.state == SessionState::kActive) {
      return fail(Errc::kConflict, "user " + request.user + " already has an active session (" +
                                       s.id + " in " + s.compartment + ")");
    }
    if (s.compartment == request.compartment) {
      own = &s;
    } else if (s.tier == tier->name) {
      user_in_tier++;
    }
  }
  if (own) {
    IssuePlan plan;
    plan.session_id = own->id;
    plan.kind = own->state == SessionState::kDisconnected ? IssuePlan::Kind::kResume
                                                          : IssuePlan::Kind::kReplaceTicket;
    return plan;
  }
  if (user_in_tier >= tier->max_sessions_per_user) {
    return fail(Errc::kConflict, "user " + request.user + " already has " +
                                     std::to_string(user_in_tier) + " open session(s) in tier " +
                                     tier->name + " (at most " +
                                     std::to_string(tier->max_sessions_per_user) + ")");
  }
  if (in_compartment >= tier->max_sessions_per_compartment) {
    return fail(Errc::kUnavailable, "compartment " + c->first + " is full (" +
                                        std::to_string(in_compartment) + " open sessions)");
  }
  return IssuePlan{};
}

}  // namespace enclave::sessionmgr
