#include "exitcontrol/service/export_policy.hpp"

#include "common/files.hpp"

namespace enclave::exitcontrol {

namespace fs = std::filesystem;

Expected<ExportPolicy> load_export_policy(const policy::Document& document,
                                          const fs::path& state_dir) {
  const policy::Table root = document.root();
  ENCLAVE_TRY(root.reject_unknown({"exportd"}));
  ExportPolicy p;
  p.source = document.source();
  p.state_dir = state_dir;
  p.policies_dir = fs::path(document.source()).parent_path();
  auto section = root.table("exportd");
  if (!section) return error_of(section);
  // An absent [exportd] is every default.
  const policy::Document empty = [] {
    auto d = policy::Document::parse("", "(defaults)");
    return std::move(d).value();
  }();
  const policy::Table t = *section ? **section : empty.root();
  ENCLAVE_TRY(t.reject_unknown({"socket",      "database",        "ledger",         "spool",
                                "releases",    "outbox_root",     "keys",           "signing_key",
                                "registry",    "sessiond_socket", "audit_socket",   "consoles",
                                "max_file_mb", "max_request_mb",  "max_files",      "check_workers",
                                "link_ttl_h",  "max_link_ttl_h",  "retention_days", "download"}));
  auto path = [&](const policy::Table& table, std::string_view key, std::string fallback,
                  fs::path& out) -> Status {
    auto v = table.nonempty_string_or(key, std::move(fallback));
    if (!v) return error_of(v);
    out = under_state_dir(state_dir, *v);
    return {};
  };
  ENCLAVE_TRY(path(t, "socket", "run/exportd.sock", p.socket));
  ENCLAVE_TRY(path(t, "database", "exitcontrol/exports.db", p.database));
  ENCLAVE_TRY(path(t, "ledger", "exitcontrol/ledger.db", p.ledger));
  ENCLAVE_TRY(path(t, "spool", "exitcontrol/spool", p.spool));
  ENCLAVE_TRY(path(t, "releases", "exitcontrol/releases", p.releases));
  ENCLAVE_TRY(path(t, "outbox_root", "exitcontrol/outbox", p.outbox_root));
  ENCLAVE_TRY(path(t, "keys", "keys/exports", p.keys));
  ENCLAVE_TRY(path(t, "signing_key", "keys/export-signing.key", p.signing_key));
  ENCLAVE_TRY(path(t, "registry", "sessionmgr/registry.db", p.registry));
  ENCLAVE_TRY(path(t, "sessiond_socket", "run/sessiond.sock", p.sessiond_socket));
  ENCLAVE_TRY(path(t, "audit_socket", "run/auditd.sock", p.audit_socket));
  auto consoles = t.strings_or("consoles", {});
  if (!consoles) return error_of(consoles);
  p.consoles = std::move(consoles).value();
  auto file_mb = t.integer_or("max_file_mb", 1024, 1, 1 << 20);
  auto request_mb = t.integer_or("max_request_mb", 4096, 1, 1 << 22);
  auto files = t.integer_or("max_files", 64, 1, 10000);
  auto workers = t.integer_or("check_workers", 2, 1, 64);
  auto ttl = t.integer_or("link_ttl_h", 24 * 7, 1, 24 * 365);
  auto max_ttl = t.integer_or("max_link_ttl_h", 24 * 30, 1, 24 * 365);
  auto retention = t.integer_or("retention_days", 90, 1, 36500);
  for (const auto* v : {&file_mb, &request_mb, &files, &workers, &ttl, &max_ttl, &retention}) {
    if (!*v) return error_of(*v);
  }
  if (*request_mb < *file_mb) {
    return Unexpected<Error>{t.error_at(
        "max_request_mb", "must be at least max_file_mb (" + std::to_string(*file_mb) + ")")};
  }
  if (*max_ttl < *ttl) {
    return Unexpected<Error>{
        t.error_at("max_link_ttl_h", "must be at least link_ttl_h (" + std::to_string(*ttl) + ")")};
  }
  p.limits.max_file_bytes = static_cast<std::uint64_t>(*file_mb) << 20;
  p.limits.max_request_bytes = static_cast<std::uint64_t>(*request_mb) << 20;
  p.limits.max_files = static_cast<std::size_t>(*files);
  p.check_workers = static_cast<int>(*workers);
  p.link_ttl = std::chrono::hours(*ttl);
  p.max_link_ttl = std::chrono::hours(*max_ttl);
  p.retention_days = static_cast<int>(*retention);

  auto download = t.table("download");
  if (!download) return error_of(download);
  DownloadSettings& d = p.download;
  d.certificate = state_dir / "keys/download.crt";
  d.key = state_dir / "keys/download.key";
  if (*download) {
    const policy::Table& dt = **download;
    ENCLAVE_TRY(dt.reject_unknown({"enabled", "listen", "url", "certificate", "key"}));
    auto enabled = dt.boolean_or("enabled", true);
    if (!enabled) return error_of(enabled);
    d.enabled = *enabled;
    auto listen = dt.nonempty_string_or("listen", d.listen);
    if (!listen) return error_of(listen);
    const auto colon = listen->rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == listen->size()) {
      return Unexpected<Error>{
          dt.error_at("listen", "expected HOST:PORT, found \"" + *listen + "\"")};
    }
    d.listen = std::move(listen).value();
    auto url = dt.string_or("url", "");
    if (!url) return error_of(url);
    if (!url->empty() && !url->starts_with("https://")) {
      return Unexpected<Error>{
          dt.error_at("url", "links must be https://, found \"" + *url + "\"")};
    }
    d.url = std::move(url).value();
    ENCLAVE_TRY(path(dt, "certificate", "keys/download.crt", d.certificate));
    ENCLAVE_TRY(path(dt, "key", "keys/download.key", d.key));
  }
  if (d.url.empty()) d.url = "https://" + d.listen;
  while (d.url.ends_with('/')) d.url.pop_back();
  return p;
}

}  // namespace enclave::exitcontrol
