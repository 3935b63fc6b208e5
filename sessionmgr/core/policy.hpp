// policies/sessions.toml: the session manager's settings, tiers and compartments, read once at
// start-up and validated here (no I/O: the Document is already parsed). Every error names the
// file, line, column and dotted key, e.g.
//   "policies/sessions.toml:31:1: compartments.demo.tier: unknown tier \"gold\" (known: standard)".
//
// A tier fixes what a session may do: its channels, idle and maximum time, the disconnect grace
// period, when it may start (time windows), from which site classes, and how many sessions a
// compartment and a user may hold. A compartment names its tier and its desktop pool: either
// static hosts run by the center or local desktops this machine starts per session (demo).
//
// Time windows are in a fixed UTC offset: "+09:00" (Asia/Tokyo has no daylight saving time, so
// the offset is exact), "UTC", or the alias "Asia/Tokyo". A window's days are the days it
// starts on; a window whose `to` is not after its `from` runs past midnight.
//
// A tier also names how its sessions' results leave: the exit-control profile their export
// requests are checked with and how many stewards approve each file (enclave-exportd asks
// sessiond for them with session.identify).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/policy.hpp"
#include "common/result.hpp"

namespace enclave::sessionmgr {

struct TimeWindow {
  std::uint8_t days = 0x7f;  // bit d: starts on weekday d (0 = Sunday)
  int from_minute = 0;       // minutes after midnight, 0..1439
  int to_minute = 1440;      // 1..1440; <= from_minute: ends the next day
};

struct Tier {
  std::string name;
  std::string description;
  std::vector<std::string> static_channels;   // lowercase, at most 7 characters each
  std::vector<std::string> dynamic_channels;  // exact names
  bool audio = false;  // adds "rdpsnd" and "AUDIO_PLAYBACK_DVC" to the lists above
  std::chrono::seconds idle_timeout{std::chrono::minutes(15)};
  std::chrono::seconds max_session{std::chrono::hours(8)};
  std::chrono::seconds grace{std::chrono::minutes(5)};  // 0: a disconnect ends the session
  int utc_offset_minutes = 9 * 60;
  std::vector<TimeWindow> windows;        // empty: at any time
  std::vector<std::string> site_classes;  // empty: from any site
  int max_sessions_per_compartment = 50;  // open sessions (issued, active, disconnected)
  int max_sessions_per_user = 1;          // open sessions of one user in this tier's compartments
  std::string export_profile = "acro-default";  // policies/exitcontrol/<name>.toml
  int export_stewards = 1;  // distinct stewards who approve each exported file: 1 or 2
};

// How a static host gets the desktop credential the gateway injects.
enum class CredentialSource {
  kPerSession,  // a random password per session, set on the host by the provisioning command
  kFixed,       // read from a root-only file (user, password, domain)
};

struct StaticHost {
  std::string id;  // "<compartment>/<host>:<port>"
  std::string host;
  std::uint16_t port = 3389;
  std::string server_name;        // the name the host's certificate carries (SNI); default: host
  std::string pin_sha256;         // hex SHA-256 of the certificate's SubjectPublicKeyInfo, or empty
  std::filesystem::path ca_file;  // or a CA that signs the host's certificate
  int capacity = 1;               // sessions at once
  CredentialSource credentials = CredentialSource::kPerSession;
  std::string account = "analyst";             // kPerSession: the host account it sets
  std::vector<std::string> provision_command;  // kPerSession: argv, run with "user\npassword\n"
  std::filesystem::path credentials_file;      // kFixed
};

enum class LocalKind { kShadow, kXrdp };

struct LocalPool {
  LocalKind kind = LocalKind::kShadow;
  int max_desktops = 4;
};

struct Compartment {
  std::string name;
  std::string tier;
  std::string description;
  std::variant<std::vector<StaticHost>, LocalPool> pool;
};

// The login service ([sessiond.login]): how the gateway's logins run their PAM transaction.
struct LoginSettings {
  std::string pam_service = "enclave-login";
  // The stack's template (@ENCLAVE_...@ placeholders); default <policies>/pam/<pam_service>.
  std::filesystem::path pam_stack;
  // Where pam_enclave_fingerprint.so is; empty: <the executable's directory>/../lib/security.
  std::filesystem::path pam_modules;
  std::chrono::milliseconds failure_delay{std::chrono::seconds(1)};  // every failure's answer
  std::chrono::seconds answer_timeout{120};  // a kiosk silent this long is cancelled
  int max_logins = 256;                      // logins in progress at once
};

struct SessiondSettings {
  std::filesystem::path state_dir;                 // --state-dir: what relative paths are under
  std::filesystem::path socket;                    // default run/sessiond.sock
  std::filesystem::path database;                  // default sessionmgr/sessions.db
  std::filesystem::path registry;                  // default sessionmgr/registry.db
  std::filesystem::path print_key;                 // default keys/prints.key (0600)
  std::filesystem::path ca_certificate;            // default keys/ca/ca.crt (ca.key beside it)
  std::filesystem::path audit_socket;              // default run/auditd.sock
  std::filesystem::path gateway_socket;            // default run/gatewayd.sock
  std::string gateway_address = "127.0.0.1:3390";  // what thin clients connect to
  std::filesystem::path desktop_dir;               // default sessionmgr/desktops
  std::filesystem::path outbox_root;  // default exitcontrol/outbox: <root>/<session id>/ each
  std::chrono::seconds ticket_ttl{60};
  std::chrono::seconds health_interval{10};
  std::vector<std::string> operators;  // may issue, list, end (besides own uid and root)
  std::vector<std::string> gateways;   // may redeem and report connections
  std::vector<std::string> exporters;  // may identify a session by its export token (exportd)
  // A steward's approval of a fingerprint enrolment is good for this long.
  std::chrono::seconds enrolment_window{1800};
  LoginSettings login;
};

struct SessionPolicy {
  std::string source;  // the file, for messages
  SessiondSettings sessiond;
  std::map<std::string, Tier> tiers;
  std::map<std::string, Compartment> compartments;

  const Tier* tier_of(const Compartment& compartment) const;
};

// Reads policies/sessions.toml; relative paths are taken under state_dir (pure: nothing is
// opened or checked on disk here).
Expected<SessionPolicy> load_session_policy(const policy::Document& document,
                                            const std::filesystem::path& state_dir);

// The one check that reads the disk, made by enclave-sessiond when it loads the policy (run and
// check): every tier's export profile is a file <policies>/exitcontrol/<name>.toml, in the
// directory of the document's source (where enclave-exportd loads it from). An error names the
// file, line and key of the tier's export_profile (of the tier when the default is missing).
Status check_export_profiles(const policy::Document& document, const SessionPolicy& policy);

// The tier defaults: the graphics pipeline and display resizing over drdynvc, nothing else.
std::vector<std::string> default_static_channels();
std::vector<std::string> default_dynamic_channels();

}  // namespace enclave::sessionmgr
