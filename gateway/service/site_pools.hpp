// What the gateway knows of the registry between refreshes: the virtual-IP pools of the
// approved sites (a login connection from anywhere else is refused at accept, before any
// TLS work) and the certificates of revoked devices. Filled from the session manager's
// registry.pools reply; until the first successful refresh nothing is admitted (fail
// closed). Thread-safe: a refresh replaces the whole table under a lock.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>
#include <nlohmann/json.hpp>

#include "common/net/ip.hpp"
#include "common/result.hpp"

namespace enclave::gateway {

struct SiteMatch {
  std::string site;          // the registry's site id
  std::string ike_identity;  // what its IKE SA must authenticate as (VICI check)
};

class SitePools {
 public:
  // reply: {"version", "sites": [{"site", "ike_identity", "pools": ["10.8.0.0/24", ...]}],
  //         "revoked_certificates": ["<sha256 hex of the DER>", ...]}.
  // Pools are read as the registry writes them (net::IpNetwork: host bits zero).
  // A malformed reply changes nothing; the error names the entry.
  Status update(const nlohmann::json& reply);

  // The site whose pool holds the address; an IPv4 client on a dual-stack socket
  // (::ffff:a.b.c.d) is looked up as its IPv4 address.
  std::optional<SiteMatch> site_for(const boost::asio::ip::address& address) const;
  bool revoked(const std::string& certificate_sha256) const;
  bool loaded() const;
  std::int64_t version() const;

 private:
  struct Pool {
    net::IpNetwork network;
    std::size_t site;  // index into Table::sites
  };
  struct Table {
    std::int64_t version = -1;
    std::vector<SiteMatch> sites;
    std::vector<Pool> pools;
    std::set<std::string> revoked;
  };
  mutable std::mutex mu_;
  std::shared_ptr<const Table> table_;
};

}  // namespace enclave::gateway
