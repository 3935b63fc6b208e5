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

// Builds, seals and records the release of an approved request; returns the release row.
using BuildRelease = std::function<Expected<ReleaseRow>(const review::ExportRequest& request)>;

struct ExportServiceDeps {
  IdentifySession identify;
  RegistryView* registry = nullptr;
  CheckFile check;
  BuildRelease release;
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

  // Waits until no check or release is queued or running (tests, shutdown).
  void drain();

 private:
  struct Impl;
  explicit ExportService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::exitcontrol
