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
# Biometric back-off (NIST SP 800-63B).
enclave_test(sessionmgr biometric_backoff_test sessionmgr_core)
