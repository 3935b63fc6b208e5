// The registry behind enclave-sessiond's registry.* methods (methods.hpp): users and roles,
// sites and their approval, devices kitted by the local CA, projects and the compartments they
// grant, fingerprint enrolments and their prints (sealed by the print vault), and the pool
// table the gateway fetches. Synchronous and thread-safe (one mutex around registry.db).
//
// Rules it keeps: a device's certificate must chain to the local CA (read from
// [sessiond] ca_certificate at each registration) for clientAuth with CN = the device id, and
// its site must exist and not be revoked (a site not yet approved is fine); an enrolment is
// approved by an enabled steward who is not the enrolling user; a print is recorded only
// against an approved enrolment, within enrolment_window of the approval (the steward stands
// at the kiosk when approving; an approval left unused expires, and approving again renews
// it); granted compartments must exist in sessions.toml.
//
// Audit (actor: the calling peer, the operator; the analyst for registry.enrolment.recorded):
//   registry.user.added | roles_set | disabled, registry.site.added | approved | suspended |
//   revoked, registry.device.added | revoked, registry.project.added | member_added |
//   member_removed | granted, registry.enrolment.approved | recorded | revoked: success.
//   Each is acknowledged by enclave-auditd before the change commits: no change is made while
//   the audit log is unavailable (fail closed), and none is made that the log does not hold.
//   registry.site.lapsed info (an approval ran out; actor the service, from tick()).
//   registry.refused refused {method, reason}: every refused change; registry.failed error
//   for a change that failed for another reason (storage, audit).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "sessionmgr/core/registry.hpp"
#include "sessionmgr/core/ticket.hpp"
#include "sessionmgr/service/print_vault.hpp"
#include "sessionmgr/service/registry_store.hpp"
#include "sessionmgr/service/session_service.hpp"

namespace enclave::sessionmgr {

struct RegistryOptions {
  std::filesystem::path database;        // [sessiond] registry
  std::filesystem::path print_key;       // [sessiond] print_key (created 0600 when missing)
  std::filesystem::path ca_certificate;  // [sessiond] ca_certificate
  std::set<std::string> compartments;    // what sessions.toml defines: what may be granted
  // How long an enrolment approval lets the kiosk record a print.
  std::chrono::seconds enrolment_window{1800};
};

struct RegistryDeps {
  AuditSink* audit = nullptr;
  std::function<TimePoint()> clock;  // default: system_clock::now
  RandomSource random;               // print ids; default: OpenSSL RAND_bytes
};

class RegistryService {
 public:
  static Expected<std::unique_ptr<RegistryService>> open(RegistryOptions options,
                                                         RegistryDeps deps);

  // The methods operators may call, and those for the gateway (registry.pools,
  // registry.enrolment.record).
  static bool is_operator_method(std::string_view method);
  static bool is_gateway_method(std::string_view method);

  // Runs one registry.* method; `by` is the calling peer's user name (the audit's actor).
  Expected<nlohmann::json> call(const std::string& method, const nlohmann::json& params,
                                const std::string& by);

  // Audits each approval that ran out since the last call (and bumps the version, so the
  // gateway's table changes with it). The daemon calls it every second.
  void tick();

 private:
  RegistryService(RegistryOptions options, RegistryDeps deps, registry::RegistryStore store,
                  PrintVault vault);

  Expected<nlohmann::json> dispatch(const std::string& method, const nlohmann::json& params,
                                    const std::string& by, nlohmann::json& event);
  // One change: body (inside a transaction) fills in the event, which auditd must
  // acknowledge before the change commits.
  Status change(nlohmann::json& event, const std::function<Status()>& body);

  RegistryOptions options_;
  RegistryDeps deps_;
  std::mutex mu_;
  registry::RegistryStore store_;  // guarded by mu_
  PrintVault vault_;
};

}  // namespace enclave::sessionmgr
