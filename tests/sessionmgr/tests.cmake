# Included from tests/CMakeLists.txt. sessionmgr: core unit tests (policy, tickets, lifecycle),
# the service against SQLite with fakes, and the real enclave-sessiond with enclave-auditd.
enclave_test(sessionmgr policy_test sessionmgr_core)
enclave_test(sessionmgr ticket_test sessionmgr_core)
enclave_test(sessionmgr lifecycle_test sessionmgr_core)
enclave_test(sessionmgr service_test sessionmgr_service)
enclave_test(sessionmgr daemon_test sessionmgr_service)
if(TARGET sessionmgr_daemon_test)
  add_dependencies(sessionmgr_daemon_test enclave-sessiond enclave-auditd enclave-audit enclavectl)
endif()
# Real desktop hosts (Xvfb + freerdp-shadow-cli, xrdp + Xvnc) and the host health probe.
enclave_test(sessionmgr rdp_probe_test sessionmgr_service)
enclave_test(sessionmgr local_desktop_test sessionmgr_service)
# PamLogin against real PAM stacks (pam_matrix from libpam-wrapper, pam_echo, pam_exec).
enclave_test(sessionmgr pam_login_test sessionmgr_service)
# LoginService over a real PAM stack (pam_matrix), with admission and tickets controlled.
enclave_test(sessionmgr login_service_test sessionmgr_service)
# The registry's word on a login (kiosk checks, compartment) and the installed PAM stack.
enclave_test(sessionmgr login_admission_test sessionmgr_service)
enclave_test(sessionmgr pam_stack_test sessionmgr_service)
# Biometric back-off (NIST SP 800-63B).
enclave_test(sessionmgr biometric_backoff_test sessionmgr_core)
# The registry: its model, registry.db, the print vault, its methods.
enclave_test(sessionmgr registry_test sessionmgr_core)
enclave_test(sessionmgr print_vault_test sessionmgr_service)
enclave_test(sessionmgr registry_store_test sessionmgr_service)
enclave_test(sessionmgr registry_service_test sessionmgr_service)
# The fingerprint factor: real device keys, challenges, assertions and back-off file.
enclave_test(sessionmgr fingerprint_factor_test sessionmgr_service)
# The shipped PAM stack for real: pam_faillock, pam_matrix for the password,
# pam_enclave_fingerprint.so with a real registry, print vault and enclave-auditd.
if(TARGET pam_enclave_fingerprint)
  enclave_test(sessionmgr pam_module_test sessionmgr_service enclave_login)
  add_dependencies(sessionmgr_pam_module_test pam_enclave_fingerprint enclave-auditd enclave-audit)
endif()
# The same stack as an unprivileged user tries it, without root: pam_wrapper and nss_wrapper
# preloaded, libpamtest driving pam_authenticate and pam_acct_mgmt (started as root, the test
# runs its checks again as nobody).
find_package(PkgConfig REQUIRED)
pkg_check_modules(LIBPAMTEST REQUIRED IMPORTED_TARGET libpamtest)
if(TARGET pam_enclave_fingerprint)
  enclave_test(sessionmgr pamtest_stack_test sessionmgr_service enclave_login
               PkgConfig::LIBPAMTEST)
  add_dependencies(sessionmgr_pamtest_stack_test pam_enclave_fingerprint enclave-auditd
                   enclave-audit)
endif()
