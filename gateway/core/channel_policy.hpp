// Which RDP channels a session may use: an allow-list per tier, everything else denied.
//
// Static channels are named by the client in its network data (CS_NET, at most 7 ASCII
// characters, compared case-insensitively); dynamic channels are named by the host in a
// drdynvc Create Request (compared exactly). Display and input need no channel at all: they
// travel on the I/O channel and fast-path, which the relay always carries.
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace enclave::gateway {

struct ChannelPolicy {
  std::set<std::string> static_allowed;   // lowercase, e.g. "drdynvc", "rdpsnd"
  std::set<std::string> dynamic_allowed;  // exact, e.g. "Microsoft::Windows::RDS::Graphics"

  bool allows_static(std::string_view name) const;   // case-insensitive
  bool allows_dynamic(std::string_view name) const;  // exact

  // The default tier: the graphics pipeline and display resizing over drdynvc, nothing else.
  static ChannelPolicy display_only();
};

}  // namespace enclave::gateway
