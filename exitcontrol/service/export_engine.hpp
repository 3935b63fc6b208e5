// The export service's check step on the exit-control engine (checker.hpp): a submitted file
// checked against its tier's profile and its project's release ledger; a failing table or
// extract checked again with `suggest` for the safe version the analyst may accept.
#pragma once

#include <filesystem>

#include "exitcontrol/service/export_service.hpp"

namespace enclave::exitcontrol {

// policies_dir: where exitcontrol/<profile>.toml are; ledger: the release ledger (read only
// here; it may not exist yet).
CheckFile engine_check(std::filesystem::path policies_dir, std::filesystem::path ledger);

}  // namespace enclave::exitcontrol
