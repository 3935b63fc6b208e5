#include "sessionmgr/core/policy.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace enclave::sessionmgr {

namespace {

namespace fs = std::filesystem;

fs::path under(const fs::path& state_dir, const std::string& p) {
  fs::path path(p);
  return path.is_absolute() ? path : state_dir / path;
}

bool valid_name(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
  });
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c > 0x20 && c < 0x7f; });
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

Status bad(const policy::Table& t, std::string_view key, const std::string& message) {
  return Unexpected<Error>{t.error_at(key, message)};
}

Expected<std::chrono::seconds> seconds(const policy::Table& t, std::string_view key,
                                       std::chrono::seconds fallback, std::int64_t min,
                                       std::int64_t max) {
  auto v = t.integer_or(key, fallback.count(), min, max);
  if (!v) return error_of(v);
  return std::chrono::seconds(*v);
}

// "HH:MM" -> minutes after midnight; "24:00" only when allow_24.
std::optional<int> parse_hhmm(std::string_view s, bool allow_24) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  int h = 0, m = 0;
  if (std::from_chars(s.data(), s.data() + 2, h).ptr != s.data() + 2) return std::nullopt;
  if (std::from_chars(s.data() + 3, s.data() + 5, m).ptr != s.data() + 5) return std::nullopt;
  if (m < 0 || m > 59 || h < 0) return std::nullopt;
  if (h == 24 && m == 0 && allow_24) return 1440;
  if (h > 23) return std::nullopt;
  return h * 60 + m;
}

// "+09:00", "-05:30", "UTC", "Asia/Tokyo" -> minutes east of UTC.
std::optional<int> parse_offset(std::string_view s) {
  if (s == "UTC" || s == "Z") return 0;
  if (s == "Asia/Tokyo") return 9 * 60;
  if (s.size() != 6 || (s[0] != '+' && s[0] != '-')) return std::nullopt;
  auto hm = parse_hhmm(s.substr(1), false);
  if (!hm || *hm > 14 * 60) return std::nullopt;
  return s[0] == '-' ? -*hm : *hm;
}

Status read_windows(const policy::Table& t, Tier& tier) {
  auto windows = t.tables("windows");
  if (!windows) return error_of(windows);
  static constexpr std::array<std::string_view, 7> kDays = {"sun", "mon", "tue", "wed",
                                                            "thu", "fri", "sat"};
  for (const auto& w : *windows) {
    ENCLAVE_TRY(w.reject_unknown({"days", "from", "to"}));
    TimeWindow window;
    auto days = w.strings_or("days", {"sun", "mon", "tue", "wed", "thu", "fri", "sat"});
    if (!days) return error_of(days);
    window.days = 0;
    for (const auto& d : *days) {
      auto it = std::find(kDays.begin(), kDays.end(), d);
      if (it == kDays.end()) {
        return bad(w, "days", "\"" + d + "\" is not a day (sun, mon, tue, wed, thu, fri, sat)");
      }
      window.days |= static_cast<std::uint8_t>(1u << (it - kDays.begin()));
    }
    if (window.days == 0) return bad(w, "days", "must name at least one day");
    auto from = w.string_or("from", "00:00");
    if (!from) return error_of(from);
    auto to = w.string_or("to", "24:00");
    if (!to) return error_of(to);
    auto f = parse_hhmm(*from, false);
    if (!f) return bad(w, "from", "expected \"HH:MM\" (00:00 to 23:59), found \"" + *from + "\"");
    auto e = parse_hhmm(*to, true);
    if (!e) return bad(w, "to", "expected \"HH:MM\" (00:00 to 24:00), found \"" + *to + "\"");
    window.from_minute = *f;
    window.to_minute = *e;
    tier.windows.push_back(window);
  }
  return {};
}

Expected<Tier> read_tier(const policy::Table& t, const std::string& name) {
  ENCLAVE_TRY(t.reject_unknown({"description", "static_channels", "dynamic_channels", "audio",
                                "idle_timeout_s", "max_session_s", "grace_s", "timezone", "windows",
                                "site_classes", "max_sessions_per_compartment",
                                "max_sessions_per_user", "export_profile", "export_stewards"}));
  Tier tier;
  tier.name = name;
  auto description = t.string_or("description", "");
  if (!description) return error_of(description);
  tier.description = std::move(description).value();

  auto statics = t.strings_or("static_channels", default_static_channels());
  if (!statics) return error_of(statics);
  for (auto name_ : *statics) {
    std::transform(name_.begin(), name_.end(), name_.begin(),
                   [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; });
    if (name_.empty() || name_.size() > 7 || !printable_ascii(name_)) {
      return fail(t.error_at("static_channels", "\"" + name_ +
                                                    "\" is not a static channel name (1 to 7 "
                                                    "printable ASCII characters)"));
    }
    if (std::find(tier.static_channels.begin(), tier.static_channels.end(), name_) ==
        tier.static_channels.end()) {
      tier.static_channels.push_back(name_);
    }
  }
  auto dynamics = t.strings_or("dynamic_channels", default_dynamic_channels());
  if (!dynamics) return error_of(dynamics);
  for (const auto& d : *dynamics) {
    if (d.empty() || d.size() > 255 || !printable_ascii(d)) {
      return fail(
          t.error_at("dynamic_channels", "\"" + d +
                                             "\" is not a dynamic channel name (1 to 255 printable "
                                             "ASCII characters)"));
    }
    tier.dynamic_channels.push_back(d);
  }
  auto audio = t.boolean_or("audio", false);
  if (!audio) return error_of(audio);
  tier.audio = *audio;
  if (tier.audio) {
    for (const char* c : {"rdpsnd"}) {
      if (std::find(tier.static_channels.begin(), tier.static_channels.end(), c) ==
          tier.static_channels.end()) {
        tier.static_channels.push_back(c);
      }
    }
    if (std::find(tier.dynamic_channels.begin(), tier.dynamic_channels.end(),
                  "AUDIO_PLAYBACK_DVC") == tier.dynamic_channels.end()) {
      tier.dynamic_channels.push_back("AUDIO_PLAYBACK_DVC");
    }
  }
  bool has_drdynvc = std::find(tier.static_channels.begin(), tier.static_channels.end(),
                               "drdynvc") != tier.static_channels.end();
  if (!tier.dynamic_channels.empty() && !has_drdynvc) {
    return fail(t.error_at(t.contains("dynamic_channels") ? "dynamic_channels" : "static_channels",
                           "dynamic channels travel inside \"drdynvc\", which static_channels "
                           "does not allow"));
  }

  auto idle = seconds(t, "idle_timeout_s", tier.idle_timeout, 0, 7 * 86400);
  if (!idle) return error_of(idle);
  tier.idle_timeout = *idle;
  auto max = seconds(t, "max_session_s", tier.max_session, 1, 7 * 86400);
  if (!max) return error_of(max);
  tier.max_session = *max;
  auto grace = seconds(t, "grace_s", tier.grace, 0, 86400);
  if (!grace) return error_of(grace);
  tier.grace = *grace;

  auto zone = t.string_or("timezone", "+09:00");
  if (!zone) return error_of(zone);
  auto offset = parse_offset(*zone);
  if (!offset) {
    return fail(t.error_at("timezone",
                           "expected a UTC offset such as \"+09:00\", \"UTC\" or "
                           "\"Asia/Tokyo\", found \"" +
                               *zone + "\""));
  }
  tier.utc_offset_minutes = *offset;
  ENCLAVE_TRY(read_windows(t, tier));

  auto sites = t.strings_or("site_classes", {});
  if (!sites) return error_of(sites);
  for (const auto& s : *sites) {
    if (!valid_name(s)) {
      return fail(t.error_at("site_classes", "\"" + s +
                                                 "\" is not a site class name (a-z, 0-9, - and "
                                                 "_, at most 64)"));
    }
  }
  tier.site_classes = std::move(sites).value();

  auto per_compartment = t.integer_or("max_sessions_per_compartment", 50, 1, 100000);
  if (!per_compartment) return error_of(per_compartment);
  tier.max_sessions_per_compartment = static_cast<int>(*per_compartment);
  auto per_user = t.integer_or("max_sessions_per_user", 1, 1, 100);
  if (!per_user) return error_of(per_user);
  tier.max_sessions_per_user = static_cast<int>(*per_user);

  auto profile = t.nonempty_string_or("export_profile", tier.export_profile);
  if (!profile) return error_of(profile);
  if (!valid_name(*profile)) {
    return fail(t.error_at("export_profile", "\"" + *profile +
                                                 "\" is not a profile name (a-z, 0-9, - and _, at "
                                                 "most 64: a file under policies/exitcontrol/)"));
  }
  tier.export_profile = std::move(profile).value();
  auto stewards = t.integer_or("export_stewards", tier.export_stewards, 1, 2);
  if (!stewards) return error_of(stewards);
  tier.export_stewards = static_cast<int>(*stewards);
  return tier;
}

bool is_hex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

Expected<StaticHost> read_host(const policy::Table& h, const std::string& compartment,
                               const fs::path& state_dir) {
  ENCLAVE_TRY(
      h.reject_unknown({"host", "port", "server_name", "pin_sha256", "ca_file", "capacity",
                        "credentials", "account", "provision_command", "credentials_file"}));
  StaticHost host;
  auto name = h.string("host");
  if (!name) return error_of(name);
  if (name->empty() || name->size() > 253 || !printable_ascii(*name)) {
    return fail(h.error_at("host", "expected a host name or IP address"));
  }
  host.host = std::move(name).value();
  auto port = h.integer_or("port", 3389, 1, 65535);
  if (!port) return error_of(port);
  host.port = static_cast<std::uint16_t>(*port);
  host.id = compartment + "/" + host.host + ":" + std::to_string(host.port);
  auto server_name = h.string_or("server_name", host.host);
  if (!server_name) return error_of(server_name);
  host.server_name = std::move(server_name).value();
  auto pin = h.string_or("pin_sha256", "");
  if (!pin) return error_of(pin);
  std::string lower = *pin;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return c >= 'A' && c <= 'F' ? static_cast<char>(c + 32) : c; });
  if (!lower.empty() && !is_hex64(lower)) {
    return fail(h.error_at("pin_sha256",
                           "expected 64 hex digits (SHA-256 of the host "
                           "certificate's SubjectPublicKeyInfo)"));
  }
  host.pin_sha256 = lower;
  auto ca = h.string_or("ca_file", "");
  if (!ca) return error_of(ca);
  if (!ca->empty()) host.ca_file = under(state_dir, *ca);
  if (host.pin_sha256.empty() && host.ca_file.empty()) {
    return fail(h.error_at("host",
                           "needs pin_sha256 or ca_file: the gateway must be able to "
                           "check the host's certificate"));
  }
  auto capacity = h.integer_or("capacity", 1, 1, 100000);
  if (!capacity) return error_of(capacity);
  host.capacity = static_cast<int>(*capacity);

  auto credentials = h.string_or("credentials", "per-session");
  if (!credentials) return error_of(credentials);
  if (*credentials == "per-session") {
    host.credentials = CredentialSource::kPerSession;
    auto account = h.nonempty_string_or("account", "analyst");
    if (!account) return error_of(account);
    host.account = std::move(account).value();
    auto command = h.strings_or("provision_command", {});
    if (!command) return error_of(command);
    if (command->empty() || (*command)[0].empty()) {
      return fail(h.error_at(h.contains("provision_command") ? "provision_command" : "credentials",
                             "credentials = \"per-session\" needs provision_command: the "
                             "program that sets the session's password on the host"));
    }
    if (!fs::path((*command)[0]).is_absolute()) {
      return fail(h.error_at("provision_command", "the program must be an absolute path"));
    }
    if (h.contains("credentials_file")) {
      return fail(h.error_at("credentials_file", "only for credentials = \"fixed\""));
    }
    host.provision_command = std::move(command).value();
  } else if (*credentials == "fixed") {
    host.credentials = CredentialSource::kFixed;
    auto file = h.nonempty_string_or("credentials_file", "");
    if (!file) {
      return fail(h.error_at(h.contains("credentials_file") ? "credentials_file" : "credentials",
                             "credentials = \"fixed\" needs credentials_file (a root-only file "
                             "with user, password and domain)"));
    }
    host.credentials_file = under(state_dir, *file);
    if (h.contains("provision_command")) {
      return fail(h.error_at("provision_command", "only for credentials = \"per-session\""));
    }
  } else {
    return fail(h.error_at(
        "credentials", "expected \"per-session\" or \"fixed\", found \"" + *credentials + "\""));
  }
  return host;
}

Expected<Compartment> read_compartment(const policy::Table& c, const std::string& name,
                                       const std::map<std::string, Tier>& tiers,
                                       const fs::path& state_dir) {
  ENCLAVE_TRY(c.reject_unknown({"description", "tier", "hosts", "local"}));
  Compartment compartment;
  compartment.name = name;
  auto description = c.string_or("description", "");
  if (!description) return error_of(description);
  compartment.description = std::move(description).value();
  auto tier = c.string("tier");
  if (!tier) return error_of(tier);
  if (!tiers.contains(*tier)) {
    std::vector<std::string> known;
    for (const auto& [n, t] : tiers) known.push_back(n);
    return fail(c.error_at("tier", "unknown tier \"" + *tier + "\" (known: " + join(known) + ")"));
  }
  compartment.tier = std::move(tier).value();
  const bool has_hosts = c.contains("hosts");
  const bool has_local = c.contains("local");
  if (has_hosts == has_local) {
    return fail(c.error_at(has_hosts ? "local" : "tier",
                           "a compartment needs exactly one desktop pool: [[...hosts]] (static "
                           "hosts) or [...local] (desktops started here)"));
  }
  if (has_hosts) {
    auto hosts = c.tables("hosts");
    if (!hosts) return error_of(hosts);
    if (hosts->empty()) return fail(c.error_at("hosts", "must list at least one host"));
    std::vector<StaticHost> pool;
    for (const auto& h : *hosts) {
      auto host = read_host(h, name, state_dir);
      if (!host) return error_of(host);
      for (const auto& other : pool) {
        if (other.id == host->id) {
          return fail(
              h.error_at("host", "listed twice: " + host->host + ":" + std::to_string(host->port)));
        }
      }
      pool.push_back(std::move(host).value());
    }
    compartment.pool = std::move(pool);
  } else {
    auto local = c.table("local");
    if (!local) return error_of(local);
    if (!*local) return fail(c.error_at("local", "expected a table"));
    const auto& l = **local;
    ENCLAVE_TRY(l.reject_unknown({"kind", "max_desktops"}));
    LocalPool pool;
    auto kind = l.string_or("kind", "shadow");
    if (!kind) return error_of(kind);
    if (*kind == "shadow") {
      pool.kind = LocalKind::kShadow;
    } else if (*kind == "xrdp") {
      pool.kind = LocalKind::kXrdp;
    } else {
      return fail(l.error_at("kind", "expected \"shadow\" or \"xrdp\", found \"" + *kind + "\""));
    }
    auto max = l.integer_or("max_desktops", 4, 1, 64);
    if (!max) return error_of(max);
    pool.max_desktops = static_cast<int>(*max);
    compartment.pool = pool;
  }
  return compartment;
}

// [sessiond.login]. The stack template's relative path is under the policies directory (it is
// policy, reviewed like code); the modules' is under the state directory like every other path.
Status read_login(const policy::Table& t, const fs::path& state_dir, const fs::path& policies_dir,
                  LoginSettings& s) {
  ENCLAVE_TRY(t.reject_unknown({"pam_service", "pam_stack", "pam_modules", "failure_delay_ms",
                                "answer_timeout_s", "max_logins"}));
  auto service = t.nonempty_string_or("pam_service", s.pam_service);
  if (!service) return error_of(service);
  if (!valid_name(*service)) {
    return bad(t, "pam_service", "a PAM service name is a-z, 0-9, - and _, at most 64");
  }
  s.pam_service = std::move(service).value();
  auto stack = t.string_or("pam_stack", "");
  if (!stack) return error_of(stack);
  if (!stack->empty()) {
    s.pam_stack = fs::path(*stack).is_absolute() ? fs::path(*stack) : policies_dir / *stack;
  }
  auto modules = t.string_or("pam_modules", "");
  if (!modules) return error_of(modules);
  if (!modules->empty()) s.pam_modules = under(state_dir, *modules);
  auto delay = t.integer_or("failure_delay_ms", s.failure_delay.count(), 0, 30000);
  if (!delay) return error_of(delay);
  s.failure_delay = std::chrono::milliseconds(*delay);
  auto timeout = seconds(t, "answer_timeout_s", s.answer_timeout, 10, 3600);
  if (!timeout) return error_of(timeout);
  s.answer_timeout = *timeout;
  auto max = t.integer_or("max_logins", s.max_logins, 1, 10000);
  if (!max) return error_of(max);
  s.max_logins = static_cast<int>(*max);
  return {};
}

Status read_sessiond(const policy::Table& t, const fs::path& state_dir,
                     const fs::path& policies_dir, SessiondSettings& s) {
  ENCLAVE_TRY(t.reject_unknown({"socket", "database", "registry", "print_key", "ca_certificate",
                                "audit_socket", "gateway_socket", "gateway_address", "desktop_dir",
                                "ticket_ttl_s", "health_check_s", "operators", "gateways",
                                "exporters", "enrolment_window_s", "login", "outbox_root"}));
  auto path = [&](std::string_view key, std::string fallback, fs::path& out) -> Status {
    auto v = t.nonempty_string_or(key, std::move(fallback));
    if (!v) return error_of(v);
    out = under(state_dir, *v);
    return {};
  };
  ENCLAVE_TRY(path("socket", "run/sessiond.sock", s.socket));
  ENCLAVE_TRY(path("database", "sessionmgr/sessions.db", s.database));
  ENCLAVE_TRY(path("registry", "sessionmgr/registry.db", s.registry));
  ENCLAVE_TRY(path("print_key", "keys/prints.key", s.print_key));
  ENCLAVE_TRY(path("ca_certificate", "keys/ca/ca.crt", s.ca_certificate));
  ENCLAVE_TRY(path("audit_socket", "run/auditd.sock", s.audit_socket));
  ENCLAVE_TRY(path("gateway_socket", "run/gatewayd.sock", s.gateway_socket));
  ENCLAVE_TRY(path("desktop_dir", "sessionmgr/desktops", s.desktop_dir));
  ENCLAVE_TRY(path("outbox_root", "exitcontrol/outbox", s.outbox_root));
  auto address = t.nonempty_string_or("gateway_address", s.gateway_address);
  if (!address) return error_of(address);
  auto colon = address->rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      std::from_chars(address->data() + colon + 1, address->data() + address->size(), port).ptr !=
          address->data() + address->size() ||
      port < 1 || port > 65535) {
    return bad(t, "gateway_address", "expected HOST:PORT, found \"" + *address + "\"");
  }
  s.gateway_address = std::move(address).value();
  auto ttl = seconds(t, "ticket_ttl_s", s.ticket_ttl, 5, 600);
  if (!ttl) return error_of(ttl);
  s.ticket_ttl = *ttl;
  auto health = seconds(t, "health_check_s", s.health_interval, 1, 3600);
  if (!health) return error_of(health);
  s.health_interval = *health;
  auto operators = t.strings_or("operators", {});
  if (!operators) return error_of(operators);
  s.operators = std::move(operators).value();
  auto gateways = t.strings_or("gateways", {});
  if (!gateways) return error_of(gateways);
  s.gateways = std::move(gateways).value();
  auto exporters = t.strings_or("exporters", {});
  if (!exporters) return error_of(exporters);
  s.exporters = std::move(exporters).value();
  auto window = seconds(t, "enrolment_window_s", s.enrolment_window, 60, 86400);
  if (!window) return error_of(window);
  s.enrolment_window = *window;
  auto login = t.table("login");
  if (!login) return error_of(login);
  if (*login) ENCLAVE_TRY(read_login(**login, state_dir, policies_dir, s.login));
  if (s.login.pam_stack.empty()) s.login.pam_stack = policies_dir / "pam" / s.login.pam_service;
  return {};
}

}  // namespace

std::vector<std::string> default_static_channels() {
  return {"drdynvc"};
}

std::vector<std::string> default_dynamic_channels() {
  return {"Microsoft::Windows::RDS::Graphics", "Microsoft::Windows::RDS::DisplayControl"};
}

const Tier* SessionPolicy::tier_of(const Compartment& compartment) const {
  auto it = tiers.find(compartment.tier);
  return it == tiers.end() ? nullptr : &it->second;
}

Expected<SessionPolicy> load_session_policy(const policy::Document& document,
                                            const fs::path& state_dir) {
  const policy::Table root = document.root();
  ENCLAVE_TRY(root.reject_unknown({"sessiond", "tiers", "compartments"}));
  SessionPolicy p;
  p.source = document.source();
  SessiondSettings settings;
  settings.state_dir = state_dir;
  settings.socket = state_dir / "run/sessiond.sock";
  // The policies directory is where this file is (its templates, e.g. pam/, sit beside it).
  const fs::path policies_dir = fs::path(document.source()).parent_path();
  auto sessiond = root.table("sessiond");
  if (!sessiond) return error_of(sessiond);
  if (*sessiond) {
    ENCLAVE_TRY(read_sessiond(**sessiond, state_dir, policies_dir, settings));
  } else {
    auto empty = policy::Document::parse("", document.source());
    if (!empty) return error_of(empty);
    ENCLAVE_TRY(read_sessiond(empty->root(), state_dir, policies_dir, settings));
  }
  p.sessiond = std::move(settings);

  auto tiers = root.table("tiers");
  if (!tiers) return error_of(tiers);
  if (!*tiers) return fail(Errc::kInvalidArgument, document.source() + ": missing [tiers.NAME]");
  for (const auto& name : (*tiers)->keys()) {
    if (!valid_name(name)) {
      return fail((*tiers)->error_at(name, "a tier name is a-z, 0-9, - and _, at most 64"));
    }
    auto table = (*tiers)->table(name);
    if (!table) return error_of(table);
    auto tier = read_tier(**table, name);
    if (!tier) return error_of(tier);
    p.tiers.emplace(name, std::move(tier).value());
  }
  if (p.tiers.empty()) {
    return fail((*tiers)->error_at("", "at least one tier is needed"));
  }

  auto compartments = root.table("compartments");
  if (!compartments) return error_of(compartments);
  if (!*compartments) {
    return fail(Errc::kInvalidArgument, document.source() + ": missing [compartments.NAME]");
  }
  for (const auto& name : (*compartments)->keys()) {
    if (!valid_name(name)) {
      return fail(
          (*compartments)->error_at(name, "a compartment name is a-z, 0-9, - and _, at most 64"));
    }
    auto table = (*compartments)->table(name);
    if (!table) return error_of(table);
    auto compartment = read_compartment(**table, name, p.tiers, state_dir);
    if (!compartment) return error_of(compartment);
    p.compartments.emplace(name, std::move(compartment).value());
  }
  return p;
}

Status check_export_profiles(const policy::Document& document, const SessionPolicy& policy) {
  const fs::path profiles = fs::path(document.source()).parent_path() / "exitcontrol";
  for (const auto& [name, tier] : policy.tiers) {
    const fs::path file = profiles / (tier.export_profile + ".toml");
    std::error_code ec;
    if (fs::is_regular_file(file, ec)) continue;
    const std::string message =
        "no export profile \"" + tier.export_profile + "\": " + file.string() + " is missing";
    auto tiers = document.root().table("tiers");
    if (tiers && *tiers) {
      auto table = (*tiers)->table(name);
      if (table && *table) return fail((*table)->error_at("export_profile", message));
    }
    return fail(Errc::kInvalidArgument,
                document.source() + ": tiers." + name + ".export_profile: " + message);
  }
  return {};
}

}  // namespace enclave::sessionmgr
