# Included from tests/CMakeLists.txt. The fingerprint reader against libfprint's virtual
# drivers (virtual_device, virtual_image), driven over their sockets as a finger would.
if(TARGET kiosk_fingerprint)
  enclave_test(kiosk fingerprint_test kiosk_fingerprint enclave_login)
endif()
# The kiosk's enrolment as far as it runs alone: the finger on the virtual_device reader, the
# progress told, the print matched again, the kit checked first.
if(TARGET kiosk_login)
  enclave_test(kiosk enrolment_test kiosk_login enclave_x509)
endif()
