#include "sessionmgr/service/registry_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "common/login/assertion.hpp"
#include "common/x509.hpp"
#include "sessionmgr/core/lifecycle.hpp"
#include "sessionmgr/service/methods.hpp"
#include "sessionmgr/service/params.hpp"

namespace enclave::sessionmgr {

namespace {

using namespace registry;
using nlohmann::json;

constexpr std::size_t kMaxCertificateBytes = 16 * 1024;
// A print larger than a fingerprint challenge can carry back down could be stored but would
// fail every login after it.
constexpr std::size_t kMaxPrintBytes = login::kMaxPrintBytes;
constexpr std::size_t kMaxReason = 200;
constexpr const char* kDefaultSiteClass = "security-room";

constexpr std::array<std::string_view, 20> kOperatorMethods = {
    methods::kRegistryUserAdd,
    methods::kRegistryUserSetRoles,
    methods::kRegistryUserDisable,
    methods::kRegistryUserList,
    methods::kRegistrySiteAdd,
    methods::kRegistrySiteApprove,
    methods::kRegistrySiteSuspend,
    methods::kRegistrySiteRevoke,
    methods::kRegistrySiteList,
    methods::kRegistryDeviceAdd,
    methods::kRegistryDeviceRevoke,
    methods::kRegistryDeviceList,
    methods::kRegistryProjectAdd,
    methods::kRegistryProjectAddMember,
    methods::kRegistryProjectRemoveMember,
    methods::kRegistryProjectGrant,
    methods::kRegistryProjectList,
    methods::kRegistryEnrolmentApprove,
    methods::kRegistryEnrolmentRevoke,
    methods::kRegistryEnrolmentList};

bool is_listing(std::string_view m) {
  return m == methods::kRegistryUserList || m == methods::kRegistrySiteList ||
         m == methods::kRegistryDeviceList || m == methods::kRegistryProjectList ||
         m == methods::kRegistryEnrolmentList || m == methods::kRegistryPools;
}

// A refusal is the caller's doing (bad input, a rule); anything else is a failure.
bool is_refusal(Errc code) {
  return code == Errc::kInvalidArgument || code == Errc::kNotFound ||
         code == Errc::kAlreadyExists || code == Errc::kConflict || code == Errc::kPermission;
}

// A string parameter that must satisfy `valid`; the error shows the rule.
Expected<std::string> id_param(const json& p, const char* key, bool (*valid)(std::string_view),
                               const char* rule) {
  auto v = text_param(p, key, 256);
  if (!v) return v;
  if (!valid(*v)) {
    return fail(Errc::kInvalidArgument,
                std::string("\"") + key + "\": " + json(*v).dump() + " is not " + rule);
  }
  return v;
}

constexpr const char* kUserRule = "a user id ([a-z_][a-z0-9_.-]{0,31})";
constexpr const char* kObjectRule = "an id ([a-z0-9][a-z0-9_.-]{0,63})";

Expected<std::set<Role>> roles_param(const json& p) {
  auto names = strings_param(p, "roles", kAllRoles.size() * 2, 32);
  if (!names) return error_of(names);
  std::set<Role> roles;
  for (const auto& n : *names) {
    auto r = role_from_name(n);
    if (!r) {
      return fail(Errc::kInvalidArgument,
                  "\"roles\": unknown role " + json(n).dump() +
                      " (analyst, steward, auditor, site_manager, operator)");
    }
    roles.insert(*r);
  }
  return roles;
}

Expected<TimePoint> time_param(const json& p, const char* key) {
  auto text = text_param(p, key, 64);
  if (!text) return error_of(text);
  auto t = parse_time(*text);
  if (!t) {
    return fail(Errc::kInvalidArgument,
                std::string("\"") + key +
                    "\": expected a date (2027-03-31) or an RFC 3339 UTC time "
                    "(2027-03-31T00:00:00Z), found " +
                    json(*text).dump());
  }
  return *t;
}

Expected<std::string> optional_display_text(const json& p, const char* key) {
  auto text = text_param(p, key, 200, false);
  if (!text) return text;
  if (!text->empty() && !is_display_text(*text)) {
    return fail(Errc::kInvalidArgument,
                std::string("\"") + key + "\" must be one line of text without control characters");
  }
  return text;
}

json role_names(const std::set<Role>& roles) {
  json out = json::array();
  for (Role r : roles) out.push_back(role_name(r));
  return out;
}

json optional_time_json(const std::optional<TimePoint>& t) {
  return t ? json(format_rfc3339(*t)) : json(nullptr);
}

json user_json(const User& u) {
  return {{"user", u.id},
          {"name", u.name},
          {"roles", role_names(u.roles)},
          {"disabled", u.disabled},
          {"created_at", format_rfc3339(u.created_at)},
          {"updated_at", format_rfc3339(u.updated_at)}};
}

json site_json(const Site& s, TimePoint now) {
  json pools = json::array();
  for (const auto& p : s.pools) pools.push_back(p.text());
  return {{"site", s.id},
          {"name", s.name},
          {"ike_identity", s.ike_identity},
          {"site_class", s.site_class},
          {"pools", pools},
          {"state", site_state_name(s.state)},
          {"audited_at", optional_time_json(s.approved_at)},
          {"expires_at", optional_time_json(s.approval_expires)},
          {"may_log_in", s.may_log_in(now)},
          {"updated_at", format_rfc3339(s.updated_at)}};
}

json device_json(const Device& d) {
  return {{"device", d.id},
          {"site", d.site},
          {"state", device_state_name(d.state)},
          {"serial", d.serial},
          {"certificate_sha256", d.certificate_sha256},
          {"public_key", hex_encode(d.public_key)},
          {"created_at", format_rfc3339(d.created_at)},
          {"revoked_at", optional_time_json(d.revoked_at)},
          {"revoke_reason", d.revoke_reason}};
}

json project_json(const Project& p, TimePoint now) {
  return {{"project", p.id},
          {"title", p.title},
          {"valid_from", format_rfc3339(p.valid_from)},
          {"valid_until", format_rfc3339(p.valid_until)},
          {"valid_now", p.valid_at(now)},
          {"members", p.members},
          {"compartments", p.compartments}};
}

// When an approval stops letting the kiosk record a print.
TimePoint approval_expiry(const Enrolment& e, std::chrono::seconds window) {
  return e.approved_at + window;
}

json enrolment_json(const Enrolment& e, std::chrono::seconds window) {
  return {{"id", e.id},
          {"user", e.user},
          {"device", e.device},
          {"state", enrolment_state_name(e.state)},
          {"approved_by", e.approved_by},
          {"approved_at", format_rfc3339(e.approved_at)},
          {"approval_expires_at", e.state == EnrolmentState::kApproved
                                      ? json(format_rfc3339(approval_expiry(e, window)))
                                      : json(nullptr)},
          {"enrolled_at", optional_time_json(e.enrolled_at)},
          {"revoked_at", optional_time_json(e.revoked_at)},
          {"print_id", e.print_id}};
}

template <class T>
Expected<T> must_exist(Expected<std::optional<T>> found, const std::string& what) {
  if (!found) return error_of(found);
  if (!*found) return fail(Errc::kNotFound, "no " + what);
  return std::move(**found);
}

}  // namespace

RegistryService::RegistryService(RegistryOptions options, RegistryDeps deps,
                                 registry::RegistryStore store, PrintVault vault)
    : options_(std::move(options)),
      deps_(std::move(deps)),
      store_(std::move(store)),
      vault_(std::move(vault)) {}

Expected<std::unique_ptr<RegistryService>> RegistryService::open(RegistryOptions options,
                                                                 RegistryDeps deps) {
  if (!deps.audit) return fail(Errc::kInternal, "RegistryService needs an audit sink");
  if (!deps.clock) deps.clock = [] { return std::chrono::system_clock::now(); };
  if (!deps.random) deps.random = openssl_random;
  auto store = RegistryStore::open(options.database);
  if (!store) return error_of(store);
  auto vault = PrintVault::load(options.print_key, PrintVault::KeyFile::kCreateIfMissing);
  if (!vault) return error_of(vault);
  return std::unique_ptr<RegistryService>(new RegistryService(
      std::move(options), std::move(deps), std::move(store).value(), std::move(vault).value()));
}

bool RegistryService::is_operator_method(std::string_view method) {
  return std::find(kOperatorMethods.begin(), kOperatorMethods.end(), method) !=
         kOperatorMethods.end();
}

bool RegistryService::is_gateway_method(std::string_view method) {
  return method == methods::kRegistryPools || method == methods::kRegistryEnrolmentRecord;
}

Expected<json> RegistryService::call(const std::string& method, const json& params,
                                     const std::string& by) {
  json event = {{"actor_kind", "user"}, {"actor", by}};
  std::lock_guard lock(mu_);
  auto result = dispatch(method, params, by, event);
  if (!result && !is_listing(method)) {
    const bool refused = is_refusal(result.error().code);
    json refusal = {{"type", refused ? "registry.refused" : "registry.failed"},
                    {"outcome", refused ? "refused" : "error"},
                    {"actor_kind", event.value("actor_kind", "user")},
                    {"actor", event.value("actor", by)},
                    {"details", {{"method", method}, {"reason", result.error().describe()}}}};
    for (const char* field : {"object", "site", "device"}) {
      if (event.contains(field)) refusal[field] = event[field];
    }
    if (!deps_.audit->append(std::move(refusal))) {
      spdlog::error("audit queue full: refusal of {} not recorded", method);
    }
  }
  return result;
}

Status RegistryService::change(json& event, const std::function<Status()>& body) {
  if (!deps_.audit->healthy()) {
    return fail(Errc::kUnavailable,
                "the audit log is unavailable: the registry is not changed until it is back");
  }
  if (!event.contains("outcome")) event["outcome"] = "success";
  return store_.transaction([&]() -> Status {
    ENCLAVE_TRY(body());
    if (auto recorded = deps_.audit->append_sync(event); !recorded) {
      return fail(Errc::kUnavailable,
                  "the audit log did not record the change: " + recorded.error().message);
    }
    return {};
  });
}

void RegistryService::tick() {
  // While the audit log is down a lapse cannot be noted; the first tick after it is back does.
  if (!deps_.audit->healthy()) return;
  std::lock_guard lock(mu_);
  const TimePoint now = deps_.clock();
  auto lapsed = store_.unnoted_lapses(now);
  if (!lapsed) {
    spdlog::error("registry: looking for lapsed approvals: {}", lapsed.error().describe());
    return;
  }
  for (const Site& site : *lapsed) {
    json event = {{"type", "registry.site.lapsed"},
                  {"outcome", "info"},
                  {"actor_kind", "service"},
                  {"actor", "enclave-sessiond"},
                  {"object", site.id},
                  {"site", site.id},
                  {"details", {{"expires_at", optional_time_json(site.approval_expires)}}}};
    // Noted only once auditd has it: otherwise the next tick tries again.
    auto noted = change(event, [&] { return store_.mark_lapse_noted(site.id); });
    if (!noted) {
      spdlog::warn("registry: approval of site {} lapsed, not noted yet: {}", site.id,
                   noted.error().describe());
      return;
    }
    spdlog::info("registry: the approval of site {} lapsed", site.id);
  }
}

Expected<json> RegistryService::dispatch(const std::string& m, const json& p, const std::string& by,
                                         json& event) {
  auto& db = store_.database();
  const TimePoint now = deps_.clock();
  const std::chrono::seconds window = options_.enrolment_window;
  if (!p.is_object()) return fail(Errc::kInvalidArgument, "params must be an object");

  // ---- reads ----
  if (m == methods::kRegistryPools) {
    auto table = approved_pools(db, now);
    if (!table) return error_of(table);
    json sites = json::array(), hashes = json::array(), serials = json::array();
    for (const auto& s : table->sites) {
      sites.push_back({{"site", s.site}, {"ike_identity", s.ike_identity}, {"pools", s.pools}});
    }
    for (const auto& d : table->revoked) {
      hashes.push_back(d.certificate_sha256);
      serials.push_back(d.serial);
    }
    return json{{"version", table->version},
                {"sites", sites},
                {"revoked_certificates", hashes},
                {"revoked_serials", serials}};
  }
  if (m == methods::kRegistryUserList) {
    auto users = list_users(db);
    if (!users) return error_of(users);
    json out = json::array();
    for (const auto& u : *users) out.push_back(user_json(u));
    return json{{"users", out}};
  }
  if (m == methods::kRegistrySiteList) {
    auto sites = list_sites(db);
    if (!sites) return error_of(sites);
    json out = json::array();
    for (const auto& s : *sites) out.push_back(site_json(s, now));
    return json{{"sites", out}};
  }
  if (m == methods::kRegistryDeviceList) {
    auto site = text_param(p, "site", 64, false);
    if (!site) return error_of(site);
    auto devices = list_devices(db);
    if (!devices) return error_of(devices);
    json out = json::array();
    for (const auto& d : *devices) {
      if (site->empty() || d.site == *site) out.push_back(device_json(d));
    }
    return json{{"devices", out}};
  }
  if (m == methods::kRegistryProjectList) {
    auto projects = list_projects(db);
    if (!projects) return error_of(projects);
    json out = json::array();
    for (const auto& pr : *projects) out.push_back(project_json(pr, now));
    return json{{"projects", out}};
  }
  if (m == methods::kRegistryEnrolmentList) {
    auto user = text_param(p, "user", 64, false);
    if (!user) return error_of(user);
    auto enrolments = list_enrolments(db, *user);
    if (!enrolments) return error_of(enrolments);
    json out = json::array();
    for (const auto& e : *enrolments) out.push_back(enrolment_json(e, window));
    return json{{"enrolments", out}};
  }

  // ---- users ----
  if (m == methods::kRegistryUserAdd) {
    auto id = id_param(p, "user", is_user_id, kUserRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    auto name = optional_display_text(p, "name");
    if (!name) return error_of(name);
    auto roles = roles_param(p);
    if (!roles) return error_of(roles);
    auto existing = find_user(db, *id);
    if (!existing) return error_of(existing);
    if (*existing) return fail(Errc::kAlreadyExists, "user " + *id + " exists");
    User u{*id, *name, *roles, false, now, now};
    event["type"] = "registry.user.added";
    event["details"] = {{"name", u.name}, {"roles", role_names(u.roles)}};
    ENCLAVE_TRY(change(event, [&] { return store_.insert_user(u); }));
    return user_json(u);
  }
  if (m == methods::kRegistryUserSetRoles || m == methods::kRegistryUserDisable) {
    auto id = id_param(p, "user", is_user_id, kUserRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    auto u = must_exist(find_user(db, *id), "user " + *id);
    if (!u) return error_of(u);
    if (m == methods::kRegistryUserSetRoles) {
      auto roles = roles_param(p);
      if (!roles) return error_of(roles);
      event["type"] = "registry.user.roles_set";
      event["details"] = {{"roles", role_names(*roles)}, {"previous", role_names(u->roles)}};
      u->roles = *roles;
    } else {
      if (u->disabled) return fail(Errc::kConflict, "user " + *id + " is already disabled");
      event["type"] = "registry.user.disabled";
      event["details"] = json::object();
      u->disabled = true;
    }
    u->updated_at = now;
    ENCLAVE_TRY(change(event, [&] { return store_.update_user(*u); }));
    return user_json(*u);
  }

  // ---- sites ----
  if (m == methods::kRegistrySiteAdd) {
    auto id = id_param(p, "site", is_object_id, kObjectRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    event["site"] = *id;
    auto name = optional_display_text(p, "name");
    if (!name) return error_of(name);
    if (name->empty()) return fail(Errc::kInvalidArgument, "missing \"name\"");
    auto identity = id_param(p, "ike_identity", is_ike_identity,
                             "an IKE identity (1 to 255 printable ASCII characters)");
    if (!identity) return error_of(identity);
    auto site_class = text_param(p, "site_class", 64, false);
    if (!site_class) return error_of(site_class);
    if (site_class->empty()) *site_class = kDefaultSiteClass;
    if (!is_object_id(*site_class)) {
      return fail(Errc::kInvalidArgument,
                  "\"site_class\": " + json(*site_class).dump() + " is not " + kObjectRule);
    }
    auto pools = strings_param(p, "pools", 32, 64);
    if (!pools) return error_of(pools);
    if (pools->empty()) return fail(Errc::kInvalidArgument, "\"pools\": a site needs a pool");
    Site s;
    s.id = *id;
    s.name = *name;
    s.ike_identity = *identity;
    s.site_class = *site_class;
    s.created_at = s.updated_at = now;
    for (const auto& text : *pools) {
      auto network = IpNetwork::parse(text);
      if (!network) {
        return fail(Errc::kInvalidArgument, "\"pools\": " + network.error().describe());
      }
      if (network->prefix() == 0) {
        return fail(Errc::kInvalidArgument, "\"pools\": " + network->text() +
                                                " would hold every address; a site's pool is its "
                                                "VPN's virtual-IP range");
      }
      for (const auto& other : s.pools) {
        if (other.overlaps(*network)) {
          return fail(Errc::kInvalidArgument,
                      "\"pools\": " + network->text() + " overlaps " + other.text());
        }
      }
      s.pools.push_back(*network);
    }
    auto existing = find_site(db, *id);
    if (!existing) return error_of(existing);
    if (*existing) return fail(Errc::kAlreadyExists, "site " + *id + " exists");
    event["type"] = "registry.site.added";
    event["details"] = {{"name", s.name},
                        {"ike_identity", s.ike_identity},
                        {"site_class", s.site_class},
                        {"pools", site_json(s, now)["pools"]}};
    ENCLAVE_TRY(change(event, [&] { return store_.insert_site(s); }));
    return site_json(s, now);
  }
  if (m == methods::kRegistrySiteApprove || m == methods::kRegistrySiteSuspend ||
      m == methods::kRegistrySiteRevoke) {
    auto id = id_param(p, "site", is_object_id, kObjectRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    event["site"] = *id;
    auto s = must_exist(find_site(db, *id), "site " + *id);
    if (!s) return error_of(s);
    const std::string previous = site_state_name(s->state);
    if (m == methods::kRegistrySiteApprove) {
      auto expires = time_param(p, "expires");
      if (!expires) return error_of(expires);
      TimePoint audited = now;
      if (p.contains("audited") && !p["audited"].is_null()) {
        auto given = time_param(p, "audited");
        if (!given) return error_of(given);
        audited = *given;
      }
      ENCLAVE_TRY(approve(*s, audited, *expires, now));
      event["type"] = "registry.site.approved";
      event["details"] = {{"previous_state", previous},
                          {"audited_at", format_rfc3339(audited)},
                          {"expires_at", format_rfc3339(*expires)}};
    } else {
      auto reason = text_param(p, "reason", kMaxReason, false);
      if (!reason) return error_of(reason);
      const bool suspending = m == methods::kRegistrySiteSuspend;
      ENCLAVE_TRY(suspending ? suspend(*s, now) : revoke(*s, now));
      event["type"] = suspending ? "registry.site.suspended" : "registry.site.revoked";
      event["details"] = {{"previous_state", previous}, {"reason", *reason}};
    }
    ENCLAVE_TRY(change(event, [&] { return store_.update_site(*s); }));
    return site_json(*s, now);
  }

  // ---- devices ----
  if (m == methods::kRegistryDeviceAdd) {
    auto id = id_param(p, "device", is_object_id, kObjectRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    event["device"] = *id;
    auto site_id = id_param(p, "site", is_object_id, kObjectRule);
    if (!site_id) return error_of(site_id);
    event["site"] = *site_id;
    auto pem = text_param(p, "certificate", kMaxCertificateBytes);
    if (!pem) return error_of(pem);
    auto site = must_exist(find_site(db, *site_id), "site " + *site_id);
    if (!site) return error_of(site);
    if (site->state == SiteState::kRevoked) {
      return fail(Errc::kConflict, "site " + *site_id + " is revoked: no device joins it");
    }
    auto existing = find_device(db, *id);
    if (!existing) return error_of(existing);
    if (*existing) return fail(Errc::kAlreadyExists, "device " + *id + " exists");
    auto ca = read_file(options_.ca_certificate, 1 << 20);
    if (!ca) {
      if (ca.error().code == Errc::kNotFound) {
        return fail(Errc::kNotFound, "no local CA at " + options_.ca_certificate.string() +
                                         " (enclavectl ca init makes it)");
      }
      return error_of(ca);
    }
    if (auto verified = x509::verify_issued_by(*pem, *ca, x509::Purpose::kClient); !verified) {
      return fail(verified.error().code, "device " + *id + ": " + verified.error().message);
    }
    auto info = x509::inspect(*pem);
    if (!info) return error_of(info);
    if (info->common_name != *id) {
      return fail(Errc::kInvalidArgument, "device " + *id + ": the certificate's CN " +
                                              json(info->common_name).dump() +
                                              " is not the device id");
    }
    if (info->ed25519_public_key.size() != 32) {
      return fail(Errc::kInvalidArgument,
                  "device " + *id + ": the certificate's key is not Ed25519");
    }
    Device d;
    d.id = *id;
    d.site = *site_id;
    d.certificate_pem = *pem;
    d.certificate_sha256 = info->sha256;
    d.serial = info->serial;
    d.public_key = info->ed25519_public_key;
    d.created_at = now;
    event["type"] = "registry.device.added";
    event["details"] = {{"serial", d.serial},
                        {"certificate_sha256", d.certificate_sha256},
                        {"site_state", site_state_name(site->state)}};
    ENCLAVE_TRY(change(event, [&] { return store_.insert_device(d); }));
    return device_json(d);
  }
  if (m == methods::kRegistryDeviceRevoke) {
    auto id = id_param(p, "device", is_object_id, kObjectRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    event["device"] = *id;
    auto reason = text_param(p, "reason", kMaxReason, false);
    if (!reason) return error_of(reason);
    auto d = must_exist(find_device(db, *id), "device " + *id);
    if (!d) return error_of(d);
    event["site"] = d->site;
    if (d->state == DeviceState::kRevoked) {
      return fail(Errc::kConflict, "device " + *id + " is already revoked");
    }
    event["type"] = "registry.device.revoked";
    event["details"] = {
        {"reason", *reason}, {"serial", d->serial}, {"certificate_sha256", d->certificate_sha256}};
    ENCLAVE_TRY(change(event, [&]() -> Status {
      auto enrolments = store_.revoke_device(*id, *reason, now);
      if (!enrolments) return error_of(enrolments);
      event["details"]["enrolments_revoked"] = *enrolments;
      return {};
    }));
    d->state = DeviceState::kRevoked;
    d->revoked_at = now;
    d->revoke_reason = *reason;
    return device_json(*d);
  }

  // ---- projects ----
  if (m == methods::kRegistryProjectAdd) {
    auto id = id_param(p, "project", is_object_id, kObjectRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    auto title = optional_display_text(p, "title");
    if (!title) return error_of(title);
    if (title->empty()) return fail(Errc::kInvalidArgument, "missing \"title\"");
    auto from = time_param(p, "valid_from");
    if (!from) return error_of(from);
    auto until = time_param(p, "valid_until");
    if (!until) return error_of(until);
    if (*until <= *from) {
      return fail(Errc::kInvalidArgument, "project " + *id + ": valid_until " +
                                              format_rfc3339(*until) + " is not after valid_from " +
                                              format_rfc3339(*from));
    }
    auto existing = find_project(db, *id);
    if (!existing) return error_of(existing);
    if (*existing) return fail(Errc::kAlreadyExists, "project " + *id + " exists");
    Project pr{*id, *title, *from, *until, {}, {}};
    event["type"] = "registry.project.added";
    event["details"] = {{"title", pr.title},
                        {"valid_from", format_rfc3339(pr.valid_from)},
                        {"valid_until", format_rfc3339(pr.valid_until)}};
    ENCLAVE_TRY(change(event, [&] { return store_.insert_project(pr, now); }));
    return project_json(pr, now);
  }
  if (m == methods::kRegistryProjectAddMember || m == methods::kRegistryProjectRemoveMember ||
      m == methods::kRegistryProjectGrant) {
    auto id = id_param(p, "project", is_object_id, kObjectRule);
    if (!id) return error_of(id);
    event["object"] = *id;
    auto pr = must_exist(find_project(db, *id), "project " + *id);
    if (!pr) return error_of(pr);
    if (m == methods::kRegistryProjectGrant) {
      auto compartment = text_param(p, "compartment", 64);
      if (!compartment) return error_of(compartment);
      if (options_.compartments.count(*compartment) == 0) {
        return fail(Errc::kNotFound,
                    "no compartment " + json(*compartment).dump() + " in sessions.toml");
      }
      if (pr->compartments.count(*compartment) != 0) {
        return fail(Errc::kAlreadyExists,
                    "project " + *id + " already holds compartment " + *compartment);
      }
      event["type"] = "registry.project.granted";
      event["details"] = {{"compartment", *compartment}};
      ENCLAVE_TRY(change(event, [&] { return store_.grant(*id, *compartment); }));
      pr->compartments.insert(*compartment);
      return project_json(*pr, now);
    }
    auto user = id_param(p, "user", is_user_id, kUserRule);
    if (!user) return error_of(user);
    const bool adding = m == methods::kRegistryProjectAddMember;
    if (adding) {
      auto u = must_exist(find_user(db, *user), "user " + *user);
      if (!u) return error_of(u);
      if (pr->members.count(*user) != 0) {
        return fail(Errc::kAlreadyExists,
                    "user " + *user + " is already a member of project " + *id);
      }
      pr->members.insert(*user);
    } else {
      if (pr->members.erase(*user) == 0) {
        return fail(Errc::kNotFound, "user " + *user + " is not a member of project " + *id);
      }
    }
    event["type"] = adding ? "registry.project.member_added" : "registry.project.member_removed";
    event["details"] = {{"user", *user}};
    ENCLAVE_TRY(change(event, [&] { return store_.set_member(*id, *user, adding); }));
    return project_json(*pr, now);
  }

  // ---- enrolments ----
  if (m == methods::kRegistryEnrolmentApprove || m == methods::kRegistryEnrolmentRevoke ||
      m == methods::kRegistryEnrolmentRecord) {
    auto user_id = id_param(p, "user", is_user_id, kUserRule);
    if (!user_id) return error_of(user_id);
    event["object"] = *user_id;
    auto device_id = id_param(p, "device", is_object_id, kObjectRule);
    if (!device_id) return error_of(device_id);
    event["device"] = *device_id;
    auto current = current_enrolment(db, *user_id, *device_id);
    if (!current) return error_of(current);

    if (m == methods::kRegistryEnrolmentRevoke) {
      auto reason = text_param(p, "reason", kMaxReason, false);
      if (!reason) return error_of(reason);
      if (!*current) {
        return fail(Errc::kNotFound, "no enrolment of " + *user_id + " on device " + *device_id);
      }
      Enrolment e = **current;
      e.state = EnrolmentState::kRevoked;
      e.revoked_at = now;
      event["type"] = "registry.enrolment.revoked";
      event["details"] = {{"user", *user_id}, {"reason", *reason}, {"enrolment", e.id}};
      ENCLAVE_TRY(change(event, [&]() -> Status {
        ENCLAVE_TRY(store_.update_enrolment(e));
        auto prints = store_.revoke_prints(e.id, now);
        if (!prints) return error_of(prints);
        event["details"]["prints_revoked"] = *prints;
        return {};
      }));
      return enrolment_json(e, window);
    }

    auto user = must_exist(find_user(db, *user_id), "user " + *user_id);
    if (!user) return error_of(user);
    if (user->disabled) return fail(Errc::kPermission, "user " + *user_id + " is disabled");
    auto device = must_exist(find_device(db, *device_id), "device " + *device_id);
    if (!device) return error_of(device);
    event["site"] = device->site;
    if (device->state != DeviceState::kActive) {
      return fail(Errc::kPermission, "device " + *device_id + " is revoked");
    }

    if (m == methods::kRegistryEnrolmentApprove) {
      auto approver_id = id_param(p, "approver", is_user_id, kUserRule);
      if (!approver_id) return error_of(approver_id);
      auto approver = must_exist(find_user(db, *approver_id), "user " + *approver_id);
      if (!approver) return error_of(approver);
      ENCLAVE_TRY(check_enrolment_approval(*approver, *user));
      // An approval still awaiting its print stands; an expired one is renewed.
      const bool awaiting = *current && (*current)->state == EnrolmentState::kApproved;
      if (awaiting && now < approval_expiry(**current, window)) {
        return fail(Errc::kConflict, "the enrolment of " + *user_id + " on device " + *device_id +
                                         " is already approved, awaiting its print until " +
                                         format_rfc3339(approval_expiry(**current, window)));
      }
      const bool re_enrolment = current->has_value();
      Enrolment e = re_enrolment ? **current : Enrolment{};
      e.user = *user_id;
      e.device = *device_id;
      e.state = EnrolmentState::kApproved;
      e.approved_by = *approver_id;
      e.approved_at = now;
      event["type"] = "registry.enrolment.approved";
      event["details"] = {{"user", *user_id},
                          {"approver", *approver_id},
                          {"re_enrolment", re_enrolment},
                          {"expires_at", format_rfc3339(approval_expiry(e, window))}};
      if (awaiting) {
        event["details"]["expired_approval_at"] = format_rfc3339((*current)->approved_at);
      }
      ENCLAVE_TRY(change(event, [&]() -> Status {
        if (re_enrolment) return store_.update_enrolment(e);
        auto inserted = store_.insert_enrolment(e);
        if (!inserted) return error_of(inserted);
        e.id = *inserted;
        return {};
      }));
      return enrolment_json(e, window);
    }

    // kRegistryEnrolmentRecord: the kiosk's print, from the gateway.
    event["actor"] = *user_id;
    auto encoded = text_param(p, "print", kMaxPrintBytes * 4 / 3 + 4);
    if (!encoded) return error_of(encoded);
    auto print = base64_decode(*encoded);
    if (!print || print->empty() || print->size() > kMaxPrintBytes) {
      return fail(Errc::kInvalidArgument,
                  "\"print\" must be base64 of 1 to " + std::to_string(kMaxPrintBytes) + " bytes");
    }
    if (!*current || (*current)->state != EnrolmentState::kApproved) {
      secure_wipe(print->data(), print->size());
      return fail(Errc::kPermission, "no approved enrolment of " + *user_id + " on device " +
                                         *device_id + " (a steward approves it first)");
    }
    if (const TimePoint expiry = approval_expiry(**current, window); now >= expiry) {
      secure_wipe(print->data(), print->size());
      return fail(Errc::kPermission, "the enrolment approval of " + *user_id + " on " + *device_id +
                                         " expired at " + format_rfc3339(expiry) +
                                         "; a steward must approve again");
    }
    std::array<std::uint8_t, 16> random_id{};
    deps_.random(random_id);
    Enrolment e = **current;
    const std::string print_id = "p-" + hex_encode(random_id);
    auto sealed = vault_.seal(*print, {*user_id, *device_id, print_id});
    secure_wipe(print->data(), print->size());
    if (!sealed) return error_of(sealed);
    const std::string replaced = e.print_id;
    e.state = EnrolmentState::kEnrolled;
    e.enrolled_at = now;
    e.print_id = print_id;
    event["type"] = "registry.enrolment.recorded";
    event["details"] = {
        {"print_id", print_id}, {"replaced", replaced}, {"approved_by", e.approved_by}, {"by", by}};
    ENCLAVE_TRY(change(event, [&]() -> Status {
      auto revoked = store_.revoke_prints(e.id, now);
      if (!revoked) return error_of(revoked);
      ENCLAVE_TRY(store_.insert_print(print_id, e.id, *sealed, now));
      return store_.update_enrolment(e);
    }));
    return json{{"print_id", print_id}, {"enrolment", enrolment_json(e, window)}};
  }
  return fail(Errc::kInvalidArgument, "unknown method " + m.substr(0, 64));
}

}  // namespace enclave::sessionmgr
