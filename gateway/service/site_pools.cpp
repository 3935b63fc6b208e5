#include "gateway/service/site_pools.hpp"

#include <algorithm>
#include <cctype>

namespace enclave::gateway {

namespace asio = boost::asio;

namespace {

// "10.8.0.0/24", "2001:db8:5::/64": the host bits must be zero (a typo such as 10.8.0.1/24
// is refused rather than read as the /24).
using Network = std::variant<asio::ip::network_v4, asio::ip::network_v6>;

Expected<Network> parse_pool(const std::string& text) {
  boost::system::error_code ec;
  if (text.find(':') == std::string::npos) {
    auto n = asio::ip::make_network_v4(text, ec);
    if (!ec && n.network() == n.address()) return Network{n};
  } else {
    auto n = asio::ip::make_network_v6(text, ec);
    if (!ec && n.network() == n.address()) return Network{n};
  }
  return fail(Errc::kInvalidArgument, "not a network with its host bits zero: " + text);
}

bool contains(const asio::ip::network_v4& net, const asio::ip::address_v4& a) {
  const std::uint32_t mask = net.netmask().to_uint();
  return (a.to_uint() & mask) == net.network().to_uint();
}

bool contains(const asio::ip::network_v6& net, const asio::ip::address_v6& a) {
  const auto bytes = a.to_bytes();
  const auto prefix = net.network().to_bytes();
  unsigned bits = net.prefix_length();
  for (std::size_t i = 0; i < bytes.size() && bits > 0; ++i) {
    const unsigned take = std::min(bits, 8u);
    const auto mask = static_cast<std::uint8_t>(0xFF << (8 - take));
    if ((bytes[i] & mask) != (prefix[i] & mask)) return false;
    bits -= take;
  }
  return true;
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
        auto network = parse_pool(pool.get<std::string>());
        if (!network) {
          return fail(Errc::kInvalidArgument, "registry.pools: site " + table->sites.back().site +
                                                  ": " + network.error().message);
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

std::optional<SiteMatch> SitePools::site_for(const asio::ip::address& raw) const {
  std::shared_ptr<const Table> table;
  {
    std::lock_guard lock(mu_);
    table = table_;
  }
  if (!table) return std::nullopt;
  // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
  asio::ip::address address = raw;
  if (raw.is_v6() && raw.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, raw.to_v6());
  }
  for (const auto& pool : table->pools) {
    const bool in = std::visit(
        [&](const auto& net) {
          using Net = std::decay_t<decltype(net)>;
          if constexpr (std::is_same_v<Net, asio::ip::network_v4>) {
            return address.is_v4() && contains(net, address.to_v4());
          } else {
            return address.is_v6() && contains(net, address.to_v6());
          }
        },
        pool.network);
    if (in) return table->sites[pool.site];
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
