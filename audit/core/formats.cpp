#include "audit/core/formats.hpp"

namespace enclave::audit::formats {

namespace {

constexpr int kFacilityLogAudit = 13;

int severity(std::string_view outcome) {
  if (outcome == "error") return 3;                            // err
  if (outcome == "failure" || outcome == "refused") return 5;  // notice
  return 6;                                                    // info
}

// PARAM-VALUE escaping (RFC 5424 section 6.3.3): '"', '\' and ']' take a backslash.
std::string sd_escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '"' || c == '\\' || c == ']') out += '\\';
    out += c;
  }
  return out;
}

// Header fields are printable US-ASCII without spaces, or "-" when empty.
std::string header_field(std::string_view value, std::size_t max) {
  std::string out;
  for (char c : value.substr(0, max)) out += (c > 32 && c < 127) ? c : '_';
  return out.empty() ? "-" : out;
}

}  // namespace

std::string summary(const Event& e) {
  std::string s = e.type;
  if (!e.actor.empty()) s += " by " + e.actor;
  if (!e.site.empty()) s += " at " + e.site;
  if (!e.object.empty()) s += " on " + e.object;
  return s + ": " + e.outcome;
}

std::string rfc5424(const Event& e, std::uint64_t index, const SyslogOptions& o) {
  std::string out = "<" + std::to_string(kFacilityLogAudit * 8 + severity(e.outcome)) + ">1 ";
  out += format_time_us(e.time_us) + " " + header_field(o.hostname, 255) + " " +
         header_field(o.app_name, 48) + " - " + header_field(e.type, 32) + " [event@" +
         std::to_string(o.enterprise_number) + " index=\"" + std::to_string(index) + "\"";
  const std::pair<const char*, const std::string*> fields[] = {
      {"source", &e.source},   {"actorKind", &e.actor_kind}, {"actor", &e.actor},
      {"site", &e.site},       {"device", &e.device},        {"session", &e.session},
      {"outcome", &e.outcome}, {"object", &e.object},        {"details", &e.details}};
  for (const auto& [name, value] : fields) {
    if (value->empty()) continue;
    out += std::string(" ") + name + "=\"" + sd_escape(*value) + "\"";
  }
  out += "] \xEF\xBB\xBF" + summary(e);  // BOM: MSG is UTF-8
  return out;
}

std::string rfc5424_checkpoint(std::string_view note, std::int64_t time_us,
                               const SyslogOptions& o) {
  std::string escaped;
  for (char c : note) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  return "<" + std::to_string(kFacilityLogAudit * 8 + 6) + ">1 " + format_time_us(time_us) + " " +
         header_field(o.hostname, 255) + " " + header_field(o.app_name, 48) +
         " - checkpoint - \xEF\xBB\xBF" + escaped;
}

nlohmann::json ocsf(const Event& e, std::uint64_t index) {
  const bool login = e.type.rfind("login.", 0) == 0;
  const bool logout = e.type == "session.end" || e.type == "logout";
  const bool auth = login || logout;
  const int activity = auth ? (logout ? 2 : 1) : 0;  // 1 Logon, 2 Logoff
  const int class_uid = auth ? 3002 : 0;
  const int status_id = e.outcome == "success" ? 1 : (e.outcome == "info" ? 0 : 2);
  nlohmann::json j = {
      {"class_uid", class_uid},
      {"class_name", auth ? "Authentication" : "Base Event"},
      {"category_uid", auth ? 3 : 0},
      {"category_name", auth ? "Identity & Access Management" : "Uncategorized"},
      {"activity_id", activity},
      {"type_uid", class_uid * 100 + activity},
      {"time", e.time_us / 1000},
      {"severity_id", e.outcome == "error" ? 4 : (status_id == 2 ? 3 : 1)},
      {"status_id", status_id},
      {"status", e.outcome},
      {"message", summary(e)},
      {"metadata",
       {{"version", "1.1.0"},
        {"uid", std::to_string(index)},
        {"log_name", "enclave-audit"},
        {"product", {{"name", "enclave"}, {"vendor_name", "enclave"}}}}},
      {"unmapped",
       {{"type", e.type}, {"source", e.source}, {"object", e.object}, {"site", e.site}}}};
  auto details = nlohmann::json::parse(e.details, nullptr, false);
  j["unmapped"]["details"] = details.is_discarded() ? nlohmann::json(e.details) : details;
  nlohmann::json actor_user = {{"name", e.actor},
                               {"type", e.actor_kind == "user" ? "User" : "System"}};
  if (auth) {
    j["user"] = actor_user;
    j["is_remote"] = true;
    if (!e.site.empty()) j["src_endpoint"] = {{"location", {{"desc", e.site}}}, {"name", e.site}};
    if (!e.device.empty()) j["device"] = {{"uid", e.device}, {"type_id", 0}};
    if (!e.session.empty()) j["session"] = {{"uid", e.session}};
  } else {
    j["actor"] = {{"user", actor_user}};
    if (!e.session.empty()) j["actor"]["session"] = {{"uid", e.session}};
  }
  return j;
}

}  // namespace enclave::audit::formats
