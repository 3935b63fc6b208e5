// The health check for every desktop host: connect, send an X.224 Connection Request for
// PROTOCOL_SSL, and expect a Connection Confirm selecting it. A host that answers anything
// else (or nothing within the timeout) is unhealthy, with the reason.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/result.hpp"

namespace enclave::sessionmgr {

Status probe_rdp(const std::string& host, std::uint16_t port,
                 std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace enclave::sessionmgr
