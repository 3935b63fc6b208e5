# Included from tests/CMakeLists.txt. The fingerprint reader against libfprint's virtual
# drivers (virtual_device, virtual_image), driven over their sockets as a finger would.
if(TARGET kiosk_fingerprint)
  enclave_test(kiosk fingerprint_test kiosk_fingerprint enclave_login)
endif()
