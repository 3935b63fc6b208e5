// Who a session is, asked of enclave-sessiond (session.identify) with the session's export
// token. One connection, kept and reopened when sessiond restarts.
#pragma once

#include <filesystem>

#include "exitcontrol/service/export_service.hpp"

namespace enclave::exitcontrol {

IdentifySession sessiond_identify(std::filesystem::path sessiond_socket);

// The answer of session.identify, checked field by field (kInternal naming the field).
Expected<SessionIdentity> session_identity_from_json(const nlohmann::json& answer);

}  // namespace enclave::exitcontrol
