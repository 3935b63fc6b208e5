#include "gateway/core/channel_policy.hpp"

#include <string>

namespace enclave::gateway {

namespace {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace

bool ChannelPolicy::allows_static(std::string_view name) const {
  // The policy stores lowercase names; a policy entry with capitals still matches.
  const std::string lower = ascii_lower(name);
  if (static_allowed.count(lower) != 0) return true;
  for (const auto& allowed : static_allowed) {
    if (ascii_lower(allowed) == lower) return true;
  }
  return false;
}

bool ChannelPolicy::allows_dynamic(std::string_view name) const {
  return dynamic_allowed.count(std::string(name)) != 0;
}

ChannelPolicy ChannelPolicy::display_only() {
  ChannelPolicy policy;
  policy.static_allowed = {"drdynvc"};
  policy.dynamic_allowed = {"Microsoft::Windows::RDS::Graphics",
                            "Microsoft::Windows::RDS::DisplayControl"};
  return policy;
}

}  // namespace enclave::gateway
