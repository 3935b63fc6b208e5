// The login's PAM stack as enclave-sessiond runs it: the operator's template (policies/pam/
// enclave-login by default) with its @ENCLAVE_...@ placeholders filled in, written into the
// run directory at every start, so that a change of factors is an edit of the template and a
// restart, never a rebuild. PAM reads it from there through pam_start_confdir.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "sessionmgr/core/policy.hpp"

namespace enclave::sessionmgr {

// Pure: every @ENCLAVE_NAME@ outside comments replaced by values["ENCLAVE_NAME"]. An unknown
// placeholder, or a value PAM would split (whitespace) or misread (empty, '[', ']', '#'), is
// an error naming it and the line.
Expected<std::string> render_pam_stack(std::string_view text,
                                       const std::map<std::string, std::string>& values);

// The placeholders enclave-sessiond fills: ENCLAVE_STATE_DIR, ENCLAVE_PAM_MODULES,
// ENCLAVE_REGISTRY, ENCLAVE_PRINT_KEY, ENCLAVE_AUDIT_SOCKET.
std::map<std::string, std::string> pam_stack_values(const SessiondSettings& settings);

// Renders settings.login.pam_stack into <state>/run/pam/<pam_service> (written atomically,
// 0644) and creates the faillock directory (0700); returns the directory to give
// pam_start_confdir. Errors name the template or the file.
Expected<std::filesystem::path> install_pam_stack(const SessiondSettings& settings);

// Where pam_enclave_fingerprint.so is when [sessiond.login] pam_modules is not set: beside the
// build's or the installation's binaries, <directory of this executable>/../lib/security.
std::filesystem::path default_pam_modules_dir();

}  // namespace enclave::sessionmgr
