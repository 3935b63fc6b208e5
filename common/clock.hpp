// Wall-clock time as people and reports read it.
#pragma once

#include <string>

namespace enclave {

// The current UTC time to the second, RFC 3339: "2026-11-30T12:21:56Z".
std::string utc_now_rfc3339();

}  // namespace enclave
