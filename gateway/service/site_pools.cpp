#include "gateway/service/site_pools.hpp"

#include <algorithm>
#include <cctype>

namespace enclave::gateway {

namespace {

net::IpAddress from_asio(const boost::asio::ip::address& address) {
  if (address.is_v4()) return net::IpAddress::from_v4_bytes(address.to_v4().to_bytes());
  return net::IpAddress::from_v6_bytes(address.to_v6().to_bytes());
}

}  // namespace

Status SitePools::update(const nlohmann::json& reply) {
  auto table = std::make_shared<Table>();
  try {
    table->version = reply.at("version").get<std::int64_t>();
    for (const auto& site : reply.at("sites")) {
      const std::size_t index = table->sites.size();
      table->sites.push_back(
          {site.at("site").get<std::string>(), site.value("ike_identity", std::string())});
      for (const auto& pool : site.at("pools")) {
        auto network = net::IpNetwork::parse(pool.get<std::string>());
        if (!network) {
          return fail(Errc::kInvalidArgument, "registry.pools: site " + table->sites.back().site +
                                                  ": pool " + network.error().describe());
        }
        table->pools.push_back({*network, index});
      }
    }
    for (const auto& hash : reply.value("revoked_certificates", nlohmann::json::array())) {
      std::string h = hash.get<std::string>();
      std::transform(h.begin(), h.end(), h.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      table->revoked.insert(std::move(h));
    }
  } catch (const nlohmann::json::exception& e) {
    return fail(Errc::kInvalidArgument, std::string("registry.pools reply: ") + e.what());
  }
  std::lock_guard lock(mu_);
  table_ = std::move(table);
  return {};
}

std::optional<SiteMatch> SitePools::site_for(const boost::asio::ip::address& address) const {
  std::shared_ptr<const Table> table;
  {
    std::lock_guard lock(mu_);
    table = table_;
  }
  if (!table) return std::nullopt;
  const net::IpAddress client = from_asio(address);
  for (const auto& pool : table->pools) {
    if (pool.network.contains(client)) return table->sites[pool.site];
  }
  return std::nullopt;
}

bool SitePools::revoked(const std::string& certificate_sha256) const {
  std::lock_guard lock(mu_);
  return table_ && table_->revoked.count(certificate_sha256) > 0;
}

bool SitePools::loaded() const {
  std::lock_guard lock(mu_);
  return table_ != nullptr;
}

std::int64_t SitePools::version() const {
  std::lock_guard lock(mu_);
  return table_ ? table_->version : -1;
}

}  // namespace enclave::gateway
