# Included from tests/CMakeLists.txt. Unit tests of gateway/core: every core_*_test.cpp,
# linked against gateway_core alone.
file(GLOB gateway_core_tests CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/gateway/core_*_test.cpp)
foreach(src ${gateway_core_tests})
  get_filename_component(name ${src} NAME_WE)
  enclave_test(gateway ${name} gateway_core)
endforeach()

# The relay end to end: real auditd, sessiond (local desktops), gatewayd, xfreerdp under Xvfb.
if(TARGET enclave-gatewayd AND TARGET enclave-sessiond)
  enclave_test(gateway relay_e2e_test gateway_core sessionmgr_service enclave_x509)
  add_dependencies(gateway_relay_e2e_test enclave-gatewayd enclave-sessiond enclave-auditd
                   enclave-audit enclavectl)
endif()

# The relay against scripted desktop hosts (tests/support/rdp_script_host): redirection,
# malformed PDUs, a dead desktop, backpressure, idle and maximum session time.
if(TARGET enclave-gatewayd AND TARGET enclave-sessiond)
  enclave_test(gateway relay_robustness_test gateway_core enclave_x509 enclave_ipc)
  add_dependencies(gateway_relay_robustness_test enclave-gatewayd enclave-sessiond
                   enclave-auditd enclave-audit enclavectl)
endif()

# The VICI address check against two real charon daemons in network namespaces (skips
# without root, network namespaces or strongSwan).
if(TARGET gateway_service)
  enclave_test(gateway vici_test gateway_service)
endif()

# The approved site pools the login listener admits connections against.
if(TARGET gateway_service)
  enclave_test(gateway site_pools_test gateway_service)
endif()

# The login end to end: enclavectl's CA and registry, the kiosk library with libfprint's
# virtual_device reader, the gateway's login API, sessiond's PAM stack (pam_matrix for the
# password), the ticket opening a desktop in a real xfreerdp.
if(TARGET enclave-gatewayd AND TARGET enclave-sessiond AND TARGET kiosk_login)
  enclave_test(gateway login_e2e_test gateway_core sessionmgr_service kiosk_login enclave_x509)
  add_dependencies(gateway_login_e2e_test enclave-gatewayd enclave-sessiond enclave-auditd
                   enclave-audit enclavectl pam_enclave_fingerprint)
endif()
