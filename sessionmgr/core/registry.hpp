// The registry's model (issue 5, "Registry and administration"): users and their roles, the
// remote security rooms (sites) with their VPN pools and security-audit approval, the kitted
// thin clients (devices), the approved research projects and the compartments they grant, and
// fingerprint enrolments. Pure: no I/O; the caller passes the time.
//
// Site states:
//   registered ──approve──▶ approved ──suspend──▶ suspended
//       │                   ▲  │  ▲                   │
//       │                   │  └──┘ approve (renewal) │
//       │                   └──────── approve ────────┘
//       └────────── revoke (from any state) ──────────────▶ revoked (final)
// A site may log in only while approved and before its approval expires. The approval lapses
// by itself at the expiry (the state stays "approved"; renewing it is another approve).
//
// Enrolment states (per user and device, the device being the kiosk's reader):
//   approved (a steward said yes; the kiosk may record one print) ──print──▶ enrolled
//   enrolled ──approve again (re-enrolment)──▶ approved: the old print works until replaced
//   approved | enrolled ──revoke──▶ revoked (final; the print's ciphertext is deleted)
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"
#include "common/net/ip.hpp"
#include "common/result.hpp"
#include "sessionmgr/core/ticket.hpp"

namespace enclave::sessionmgr::registry {

enum class Role : std::uint8_t { kAnalyst, kSteward, kAuditor, kSiteManager, kOperator };
inline constexpr std::array<Role, 5> kAllRoles = {Role::kAnalyst, Role::kSteward, Role::kAuditor,
                                                  Role::kSiteManager, Role::kOperator};

const char* role_name(Role role);  // "analyst", "steward", "auditor", "site_manager", "operator"
std::optional<Role> role_from_name(std::string_view name);

// Login names: [a-z_][a-z0-9_.-]{0,31} (what pam_unix and sss accept without surprises).
bool is_user_id(std::string_view id);
// Sites, devices and projects: [a-z0-9][a-z0-9_.-]{0,63}. A device id becomes the CN of its
// certificate.
bool is_object_id(std::string_view id);
// A site's IKE identity as strongSwan prints it ("site-a.example", "CN=room 3, O=Univ"):
// 1 to 255 printable ASCII characters, no leading or trailing space.
bool is_ike_identity(std::string_view identity);
// Names and titles people read: 1 to 200 bytes of UTF-8 without control characters.
bool is_display_text(std::string_view text);

struct User {
  std::string id;
  std::string name;  // the person's name, for people
  std::set<Role> roles;
  bool disabled = false;
  TimePoint created_at{}, updated_at{};

  bool has(Role role) const { return roles.count(role) != 0; }
};

// Site pools and the addresses kiosks connect from (common/net: IPv4-mapped addresses are
// their IPv4 address; a pool's host bits must be zero).
using net::IpAddress;
using net::IpNetwork;

enum class SiteState { kRegistered, kApproved, kSuspended, kRevoked };
const char* site_state_name(SiteState state);  // "registered", "approved", ...
std::optional<SiteState> site_state_from_name(std::string_view name);

struct Site {
  std::string id;
  std::string name;
  std::string ike_identity;
  std::string site_class;  // what tiers' site_classes name, e.g. "security-room"
  std::vector<IpNetwork> pools;
  SiteState state = SiteState::kRegistered;
  std::optional<TimePoint> approved_at;       // the date of the security audit that approved it
  std::optional<TimePoint> approval_expires;  // no login from this moment on
  TimePoint created_at{}, updated_at{};

  // Approved and the approval not expired at `now`.
  bool may_log_in(TimePoint now) const;
  bool holds(const IpAddress& address) const;  // one of its pools contains the address
};

// The transitions of the diagram above. kConflict names the site and both states when the
// transition is not allowed; kInvalidArgument for an expiry not after both the audit date and
// now, or an audit date in the future.
Status approve(Site& site, TimePoint audited_at, TimePoint expires, TimePoint now);
Status suspend(Site& site, TimePoint now);
Status revoke(Site& site, TimePoint now);

enum class DeviceState { kActive, kRevoked };
const char* device_state_name(DeviceState state);  // "active", "revoked"
std::optional<DeviceState> device_state_from_name(std::string_view name);

struct Device {
  std::string id;
  std::string site;
  std::string certificate_pem;
  std::string certificate_sha256;  // hex SHA-256 of the certificate's DER: what revocation names
  std::string serial;              // hex
  Bytes public_key;                // raw Ed25519, 32 bytes: verifies the kiosk's assertions
  DeviceState state = DeviceState::kActive;
  TimePoint created_at{};
  std::optional<TimePoint> revoked_at;
  std::string revoke_reason;
};

struct Project {
  std::string id;
  std::string title;
  TimePoint valid_from{}, valid_until{};  // valid in [from, until)
  std::set<std::string> members;          // user ids
  std::set<std::string> compartments;     // granted

  bool valid_at(TimePoint now) const { return valid_from <= now && now < valid_until; }
};

// The compartments `user` may enter at `now`: those granted to the projects valid at `now`
// that count the user among their members. None for a disabled user or one without the
// analyst role.
std::set<std::string> compartments_held(const User& user, const std::vector<Project>& projects,
                                        TimePoint now);

enum class EnrolmentState { kApproved, kEnrolled, kRevoked };
const char* enrolment_state_name(EnrolmentState state);  // "approved", "enrolled", "revoked"
std::optional<EnrolmentState> enrolment_state_from_name(std::string_view name);

struct Enrolment {
  std::int64_t id = 0;
  std::string user, device;
  EnrolmentState state = EnrolmentState::kApproved;
  std::string approved_by;  // the steward
  TimePoint approved_at{};
  std::optional<TimePoint> enrolled_at, revoked_at;
  std::string print_id;  // the current print, once enrolled
};

// Four eyes on biometrics: the approver is an enabled registry user holding the steward role
// and is not the user being enrolled. kPermission naming the rule that failed.
Status check_enrolment_approval(const User& approver, const User& enrolling);

// "2027-03-31" (midnight UTC) or "2027-03-31T12:00:00Z" (what format_rfc3339 writes); nullopt for
// anything else, including impossible dates.
std::optional<TimePoint> parse_time(std::string_view text);

}  // namespace enclave::sessionmgr::registry
