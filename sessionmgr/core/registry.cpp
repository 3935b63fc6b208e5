#include "sessionmgr/core/registry.hpp"

#include <algorithm>
#include <chrono>

#include "sessionmgr/core/lifecycle.hpp"

namespace enclave::sessionmgr::registry {

namespace {

bool lower_or_digit(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string site_label(const Site& site) {
  return "site " + site.id;
}

Status not_allowed(const Site& site, const char* action) {
  return fail(Errc::kConflict,
              site_label(site) + " is " + site_state_name(site.state) + ": it cannot be " + action);
}

}  // namespace

const char* role_name(Role role) {
  switch (role) {
    case Role::kAnalyst:
      return "analyst";
    case Role::kSteward:
      return "steward";
    case Role::kAuditor:
      return "auditor";
    case Role::kSiteManager:
      return "site_manager";
    case Role::kOperator:
      return "operator";
  }
  return "analyst";
}

std::optional<Role> role_from_name(std::string_view name) {
  for (Role r : kAllRoles) {
    if (name == role_name(r)) return r;
  }
  return std::nullopt;
}

bool is_user_id(std::string_view id) {
  if (id.empty() || id.size() > 32) return false;
  if (!(id[0] == '_' || (id[0] >= 'a' && id[0] <= 'z'))) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return lower_or_digit(c) || c == '_' || c == '.' || c == '-'; });
}

bool is_object_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || !lower_or_digit(id[0])) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return lower_or_digit(c) || c == '_' || c == '.' || c == '-'; });
}

bool is_ike_identity(std::string_view identity) {
  if (identity.empty() || identity.size() > 255) return false;
  if (identity.front() == ' ' || identity.back() == ' ') return false;
  return std::all_of(identity.begin(), identity.end(),
                     [](char c) { return c >= 0x20 && c < 0x7f; });
}

bool is_display_text(std::string_view text) {
  if (text.empty() || text.size() > 200 || !is_valid_utf8(text)) return false;
  return std::none_of(text.begin(), text.end(),
                      [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

const char* site_state_name(SiteState state) {
  switch (state) {
    case SiteState::kRegistered:
      return "registered";
    case SiteState::kApproved:
      return "approved";
    case SiteState::kSuspended:
      return "suspended";
    case SiteState::kRevoked:
      return "revoked";
  }
  return "revoked";
}

std::optional<SiteState> site_state_from_name(std::string_view name) {
  for (SiteState s :
       {SiteState::kRegistered, SiteState::kApproved, SiteState::kSuspended, SiteState::kRevoked}) {
    if (name == site_state_name(s)) return s;
  }
  return std::nullopt;
}

bool Site::may_log_in(TimePoint now) const {
  return state == SiteState::kApproved && approval_expires && now < *approval_expires;
}

bool Site::holds(const IpAddress& address) const {
  return std::any_of(pools.begin(), pools.end(),
                     [&](const IpNetwork& pool) { return pool.contains(address); });
}

Status approve(Site& site, TimePoint audited_at, TimePoint expires, TimePoint now) {
  if (site.state == SiteState::kRevoked) return not_allowed(site, "approved");
  if (audited_at > now) {
    return fail(Errc::kInvalidArgument, site_label(site) + ": the security audit's date " +
                                            format_rfc3339(audited_at) + " is in the future");
  }
  if (expires <= audited_at || expires <= now) {
    return fail(Errc::kInvalidArgument, site_label(site) + ": the approval's expiry " +
                                            format_rfc3339(expires) +
                                            " must be after the audit date and after now");
  }
  site.state = SiteState::kApproved;
  site.approved_at = audited_at;
  site.approval_expires = expires;
  site.updated_at = now;
  return {};
}

Status suspend(Site& site, TimePoint now) {
  if (site.state != SiteState::kApproved) return not_allowed(site, "suspended");
  site.state = SiteState::kSuspended;
  site.updated_at = now;
  return {};
}

Status revoke(Site& site, TimePoint now) {
  if (site.state == SiteState::kRevoked) return not_allowed(site, "revoked");
  site.state = SiteState::kRevoked;
  site.updated_at = now;
  return {};
}

const char* device_state_name(DeviceState state) {
  return state == DeviceState::kActive ? "active" : "revoked";
}

std::optional<DeviceState> device_state_from_name(std::string_view name) {
  if (name == "active") return DeviceState::kActive;
  if (name == "revoked") return DeviceState::kRevoked;
  return std::nullopt;
}

std::set<std::string> compartments_held(const User& user, const std::vector<Project>& projects,
                                        TimePoint now) {
  std::set<std::string> out;
  if (user.disabled || !user.has(Role::kAnalyst)) return out;
  for (const auto& p : projects) {
    if (!p.valid_at(now) || p.members.count(user.id) == 0) continue;
    out.insert(p.compartments.begin(), p.compartments.end());
  }
  return out;
}

const char* enrolment_state_name(EnrolmentState state) {
  switch (state) {
    case EnrolmentState::kApproved:
      return "approved";
    case EnrolmentState::kEnrolled:
      return "enrolled";
    case EnrolmentState::kRevoked:
      return "revoked";
  }
  return "revoked";
}

std::optional<EnrolmentState> enrolment_state_from_name(std::string_view name) {
  for (EnrolmentState s :
       {EnrolmentState::kApproved, EnrolmentState::kEnrolled, EnrolmentState::kRevoked}) {
    if (name == enrolment_state_name(s)) return s;
  }
  return std::nullopt;
}

Status check_enrolment_approval(const User& approver, const User& enrolling) {
  if (approver.id == enrolling.id) {
    return fail(Errc::kPermission,
                "user " + approver.id + " cannot approve their own fingerprint enrolment");
  }
  if (approver.disabled) {
    return fail(Errc::kPermission, "approver " + approver.id + " is disabled");
  }
  if (!approver.has(Role::kSteward)) {
    return fail(Errc::kPermission, "approver " + approver.id + " does not hold the steward role");
  }
  return {};
}

std::optional<TimePoint> parse_time(std::string_view text) {
  // Fixed-width digits at [at, at + n).
  auto number = [&](std::size_t at, std::size_t n) -> std::optional<int> {
    if (at + n > text.size()) return std::nullopt;
    int v = 0;
    for (std::size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  if (text.size() != 10 && text.size() != 20) return std::nullopt;
  auto y = number(0, 4), m = number(5, 2), d = number(8, 2);
  if (!y || !m || !d || text[4] != '-' || text[7] != '-') return std::nullopt;
  const std::chrono::year_month_day date{std::chrono::year{*y},
                                         std::chrono::month{static_cast<unsigned>(*m)},
                                         std::chrono::day{static_cast<unsigned>(*d)}};
  if (!date.ok()) return std::nullopt;
  std::chrono::seconds time_of_day{0};
  if (text.size() == 20) {
    auto hh = number(11, 2), mm = number(14, 2), ss = number(17, 2);
    if (text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != 'Z' || !hh || !mm ||
        !ss || *hh > 23 || *mm > 59 || *ss > 59) {
      return std::nullopt;
    }
    time_of_day = std::chrono::hours(*hh) + std::chrono::minutes(*mm) + std::chrono::seconds(*ss);
  }
  return TimePoint(std::chrono::sys_days(date)) + time_of_day;
}

}  // namespace enclave::sessionmgr::registry
