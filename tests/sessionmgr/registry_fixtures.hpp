// Registry objects for tests: a site with pools, a device with recognisable certificate bytes.
#pragma once

#include <string>
#include <vector>

#include "sessionmgr/core/lifecycle.hpp"
#include "sessionmgr/core/registry.hpp"

namespace enclave::sessionmgr::registry::fixtures {

inline TimePoint at(const char* text) {
  return parse_time(text).value();
}

inline const TimePoint kNow = at("2026-11-30T09:00:00Z");

inline Site site(const std::string& id, std::vector<const char*> pools,
                 const std::string& identity) {
  Site s;
  s.id = id;
  s.name = "Room " + id;
  s.ike_identity = identity;
  s.site_class = "security-room";
  for (const char* p : pools) s.pools.push_back(*IpNetwork::parse(p));
  s.created_at = s.updated_at = kNow;
  return s;
}

// Its certificate's SHA-256 is 64 times `fill`, its serial 32 times, its key 32 bytes of it.
inline Device device(const std::string& id, const std::string& site_id, char fill) {
  Device d;
  d.id = id;
  d.site = site_id;
  d.certificate_pem = "-----BEGIN CERTIFICATE-----\n" + id + "\n-----END CERTIFICATE-----\n";
  d.certificate_sha256 = std::string(64, fill);
  d.serial = std::string(32, fill);
  d.public_key = Bytes(32, static_cast<std::uint8_t>(fill));
  d.created_at = kNow;
  return d;
}

}  // namespace enclave::sessionmgr::registry::fixtures
