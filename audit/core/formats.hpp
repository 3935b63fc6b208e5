// Event formats for other systems: RFC 5424 syslog lines and OCSF 1.1 JSON events. Pure
// functions over stored events, shared by `enclave-audit forward` and the daemon's syslog sink.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "audit/core/event.hpp"

namespace enclave::audit::formats {

// The enterprise number in structured-data ids. 32473 is the number RFC 5612 reserves for
// documentation; a site with its own IANA number sets it in policy.
inline constexpr std::uint32_t kDefaultEnterpriseNumber = 32473;

struct SyslogOptions {
  std::string hostname = "-";
  std::string app_name = "enclave-audit";
  std::uint32_t enterprise_number = kDefaultEnterpriseNumber;
};

// One RFC 5424 message (no trailing newline): facility "log audit" (13), severity from the
// outcome, MSGID the event type, structured data [event@N ...] with every field, and a short
// human summary as MSG.
std::string rfc5424(const Event& event, std::uint64_t index, const SyslogOptions& options);
// An RFC 5424 message carrying a signed checkpoint note (newlines escaped as "\n").
std::string rfc5424_checkpoint(std::string_view note, std::int64_t time_us,
                               const SyslogOptions& options);

// One OCSF 1.1 event: Authentication (class 3002) for login.* and logout events, Base Event
// (class 0) for the rest, with the enclave fields kept under "unmapped".
nlohmann::json ocsf(const Event& event, std::uint64_t index);

// "login.attempt by alice at site-a: success" — one line for tables and syslog MSG.
std::string summary(const Event& event);

}  // namespace enclave::audit::formats
