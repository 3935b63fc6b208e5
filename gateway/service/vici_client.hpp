// Confirms over strongSwan's VICI socket that a kiosk's source address belongs to its site's
// IPsec tunnel: charon assigned that virtual IP to an established IKE SA whose peer
// authenticated with the site's IKE identity. Blocking, under one deadline; the gateway calls
// it from its worker pool (like blocking_calls.hpp), never from an I/O thread.
#pragma once

#include <chrono>
#include <filesystem>
#include <string_view>

#include "common/result.hpp"

namespace enclave::gateway {

// Registers for list-sa events, runs list-sas (blocking mode: an IKE SA busy in a rekey or
// DPD is waited for rather than skipped), reads every event up to the command's response,
// unregisters and closes. true when one of the listed IKE SAs holds the address (see
// vici::ike_sa_holds), false when none does.
// Errors, each naming the socket: kInvalidArgument (empty identity, an address that is not
// an IP address, a socket path too long for a Unix socket); kUnavailable (nothing listens,
// or the peer closed); kPermission (the socket refuses this user); kTimeout (the whole
// exchange did not finish within `timeout`); kIo (a socket error); kInternal (charon sent
// something that is not VICI, or answered out of turn, or knows no list-sas / list-sa).
Expected<bool> confirm_address(const std::filesystem::path& socket_path,
                               std::string_view ike_identity, std::string_view address,
                               std::chrono::milliseconds timeout);

}  // namespace enclave::gateway
