// The export workflow behind enclave-exportd's socket: submissions from a session's outbox, the
// engine's checks, the analyst's choices, the stewards' decisions, and (once approved) the
// release. No socket here: the daemon (export_daemon.hpp) decides who the caller is and calls
// these; each returns the JSON the method answers with, or an error naming what was wrong.
//
// Every action and every refusal is an audit event naming the request (R-N), the files by
// SHA-256, the actor, and the session the request came from. Actions are refused while the
// audit log cannot record them (fail closed).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "audit/client/appender.hpp"
#include "common/result.hpp"
#include "exitcontrol/download/download_server.hpp"
#include "exitcontrol/review/request.hpp"
#include "exitcontrol/service/export_policy.hpp"
#include "exitcontrol/service/export_store.hpp"
#include "exitcontrol/service/spool.hpp"

namespace enclave::exitcontrol {

// Who a session is, as enclave-sessiond says (session.identify).
struct SessionIdentity {
  std::string session_id, user, device, compartment, tier, state, outbox;
  std::string profile = "acro-default";
  int stewards = 1;
};
using IdentifySession = std::function<Expected<SessionIdentity>(const std::string& token)>;

// What the registry says of a user, for this workflow.
struct UserRights {
  bool exists = false;
  bool disabled = false;
  bool steward = false;
  bool operator_role = false;
  std::vector<std::string> projects;  // valid now, the user a member
  // Of those, the projects that grant `compartment` (filled by projects_granting).
};
class RegistryView {
 public:
  virtual ~RegistryView() = default;
  virtual Expected<UserRights> rights(const std::string& user) = 0;
  // The projects valid now that count `user` as a member and grant `compartment`.
  virtual Expected<std::vector<std::string>> projects_granting(const std::string& user,
                                                               const std::string& compartment) = 0;
};

// One checked file as the engine leaves it (exitcontrol/service/checker.hpp does the work).
struct FileCheck {
  std::string type;  // table, extract, model, text, image, refused
  Outcome outcome = Outcome::kPass;
  std::string report_json;  // results.json's entry for the file
  // The safe version, when the engine made one: its content and its own outcome.
  std::optional<std::string> safe_content;
  std::optional<Outcome> safe_outcome;
};
using CheckFile = std::function<Expected<FileCheck>(
    const std::filesystem::path& file, const std::string& profile, const std::string& project)>;

struct ExportServiceDeps {
  IdentifySession identify;
  RegistryView* registry = nullptr;
  CheckFile check;
  audit::Appender* audit = nullptr;
  std::function<std::int64_t()> now_ms;  // default: the system clock
};

class ExportService {
 public:
  static Expected<std::unique_ptr<ExportService>> open(const ExportPolicy& policy,
                                                       ExportServiceDeps deps);
  ~ExportService();  // stops the check workers (a check in progress is redone after a restart)

  // ---- The analyst, proven by the session's export token ---------------------------------
  // params {"token", "files": [names in the outbox], "justification", "project" (optional)}
  Expected<nlohmann::json> submit(const nlohmann::json& params);
  // {"token", "request" (optional: all of this user's requests)}
  Expected<nlohmann::json> status(const nlohmann::json& params);
  // {"token", "request", "file", "action": accept_safe|exception|withdraw, "reason"}; file
  // absent with withdraw: the whole request.
  Expected<nlohmann::json> choose(const nlohmann::json& params);

  // ---- Stewards (user: decided by the daemon from the peer's credentials) -----------------
  // {"project", "compartment", "state" (default waiting_review; "all"), "limit"}
  Expected<nlohmann::json> queue(const std::string& user, const nlohmann::json& params);
  // {"request"}: the request, each file's report, the cells that failed, the decisions.
  Expected<nlohmann::json> show(const std::string& user, const nlohmann::json& params);
  // {"request", "file", "decision": approve|reject, "comment"}
  Expected<nlohmann::json> decide(const std::string& user, const nlohmann::json& params);

  // ---- Releases (a steward of the project who is not the requester, or an operator) --------
  // machine_operator: the caller is root or the daemon's own user, acting for nobody else.
  // {"request", "ttl_h"} -> {"release", "url", "expires_at"}: a new one-time download link.
  Expected<nlohmann::json> link(const std::string& user, bool machine_operator,
                                const nlohmann::json& params);
  // {"project"} -> {"releases": [...with their links]}
  Expected<nlohmann::json> releases(const std::string& user, bool machine_operator,
                                    const nlohmann::json& params);
  // ---- Keys (operators) ------------------------------------------------------------------
  // {"project"} -> {"project", "key_id", "rewrapped"}: a new project key; every data key of
  // the project rewrapped under it in one transaction; the old keys destroyed.
  Expected<nlohmann::json> rotate_key(const std::string& user, bool machine_operator,
                                      const nlohmann::json& params);
  // {"project", "confirm"} -> {"project", "releases_destroyed"}: the project's keys destroyed,
  // so none of its releases can be read again; the sealed bundles deleted.
  Expected<nlohmann::json> destroy_project(const std::string& user, bool machine_operator,
                                           const nlohmann::json& params);
  // Deletes sealed bundles released more than retention_days ago (manifests, ledger and audit
  // trail stay). Returns how many.
  std::size_t apply_retention();

  // The one-time links, for the download server.
  download::DownloadAuthority& downloads();

  // Waits until no check or release is queued or running (tests, shutdown).
  void drain();

 private:
  struct Impl;
  friend struct LinkAuthority;
  explicit ExportService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::exitcontrol
