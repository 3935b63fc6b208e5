// An export request and the rules of its review, with no I/O: who may do what, when, and what
// state a request is in after it. The export service (exitcontrol/service) persists requests
// (export_store.hpp) and runs these rules inside one transaction per action.
//
// A request's files are decided one by one. Per file:
//   the engine's outcome     pass | review | fail (of the file as submitted), and for a failing
//                            table the outcome of its safe version when the engine made one
//   the analyst's choice     original (automatic for pass and review) | safe | exception (with
//                            a written case) | withdrawn; a failing file waits for a choice
//   the stewards' decisions  approve | reject, one per steward, each with a comment
// Four eyes: the requester never decides on their own request; a tier may need two different
// stewards to approve each file; one rejection rejects the file; approving an exception needs
// a written reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "exitcontrol/core/primary.hpp"

namespace enclave::exitcontrol::review {

enum class RequestState : std::uint8_t {
  kChecking,       // the engine is checking the files
  kNeedsAnalyst,   // a file failed: the analyst accepts the safe version, asks an exception or
                   // withdraws it
  kWaitingReview,  // every file has a version to review; stewards decide
  kApproved,       // every file decided, at least one approved: the release is being built
  kRejected,       // every file rejected (closed)
  kReleased,       // the approved files were released (closed)
  kWithdrawn,      // by the analyst (closed)
  kFailed,         // could not be checked or released, or a file changed after submission
                   // (closed; the reason says which)
};
const char* request_state_name(RequestState state);
std::optional<RequestState> request_state_from_name(std::string_view name);
bool is_closed(RequestState state);

enum class Choice : std::uint8_t { kPending, kOriginal, kSafe, kException, kWithdrawn };
const char* choice_name(Choice choice);  // "pending", "original", "safe", "exception", "withdrawn"
std::optional<Choice> choice_from_name(std::string_view name);

enum class Verdict : std::uint8_t { kApprove, kReject };
const char* verdict_name(Verdict verdict);  // "approve", "reject"
std::optional<Verdict> verdict_from_name(std::string_view name);

struct Decision {
  std::string steward;
  Verdict verdict = Verdict::kApprove;
  std::string comment;
  std::int64_t at_ms = 0;
};

// Where one file stands, derived from the fields above.
enum class FileStatus : std::uint8_t {
  kChecking,
  kNeedsAnalyst,
  kWaitingReview,
  kApproved,
  kRejected,
  kWithdrawn
};
const char* file_status_name(FileStatus status);

struct ExportFile {
  std::uint32_t index = 0;
  std::string name;  // as in the outbox
  std::uint64_t size = 0;
  std::string sha256;  // of the submitted copy (lower-case hex)
  std::string type;    // the engine's output type: table, extract, model, text, image, refused
  bool checked = false;
  Outcome outcome = Outcome::kPass;  // of the file as submitted
  // The engine's safe version, when it made one.
  std::string safe_sha256;
  std::uint64_t safe_size = 0;
  std::optional<Outcome> safe_outcome;
  Choice choice = Choice::kPending;
  std::string exception_reason;  // the analyst's case, for kException
  std::string report_json;       // the engine's results.json entry for this file
  std::vector<Decision> decisions;

  bool has_safe_version() const { return !safe_sha256.empty(); }
  // The hash of the version that would be released (the safe one when chosen).
  const std::string& chosen_sha256() const;
  FileStatus status(int stewards_required) const;
  int approvals() const;
};

struct ExportRequest {
  std::int64_t id = 0;
  std::string project, compartment, session, requester, tier, profile;
  int stewards_required = 1;
  std::string justification;
  RequestState state = RequestState::kChecking;
  std::string state_reason;  // why it is in this state, for people
  std::int64_t created_ms = 0, updated_ms = 0;
  std::string release;  // the release id once released
  std::vector<ExportFile> files;
};

// "R-42": how people and the audit log name a request; parse accepts "R-42" and "42".
std::string request_label(std::int64_t id);
std::optional<std::int64_t> parse_request_label(std::string_view text);

// The state the files put the request in; closed states, kChecking while any file is unchecked,
// and kFailed are kept.
RequestState derive_state(const ExportRequest& request);

// Sets the state the files put the request in (derive_state), and when it changes, the reason
// people read; and the time of the change.
void settle(ExportRequest& request, std::int64_t now_ms);

// ---- Actions: each checks the rules, then changes the request (files and state) -----------
// Errors: kConflict (not now: the request is closed, still checking, the file already decided
// or already chosen), kPermission (not this person), kInvalidArgument (a missing comment or
// reason, an unknown file index), with a message that names the request and the file.

// The analyst accepts the engine's safe version of a failing file.
Status accept_safe_version(ExportRequest& request, std::uint32_t file, std::int64_t now_ms);
// The analyst asks for a failing file to be released as it is, with a written case.
Status ask_exception(ExportRequest& request, std::uint32_t file, std::string reason,
                     std::int64_t now_ms);
// The analyst withdraws one file, or (file empty) the whole request.
Status withdraw(ExportRequest& request, std::optional<std::uint32_t> file, std::int64_t now_ms);

// What a steward may see and decide is theirs to: the steward role, a member of the project.
struct StewardRights {
  std::string user;
  bool is_steward = false;
  bool is_project_member = false;
};
// A steward's decision on one file.
Status decide(ExportRequest& request, std::uint32_t file, const StewardRights& steward,
              Verdict verdict, std::string comment, std::int64_t now_ms);
// Whether `steward` may review this request at all (the queue, show): the rights above, and
// never their own request. Error as decide's.
Status may_review(const ExportRequest& request, const StewardRights& steward);

}  // namespace enclave::exitcontrol::review
