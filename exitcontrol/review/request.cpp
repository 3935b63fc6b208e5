#include "exitcontrol/review/request.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace enclave::exitcontrol::review {
namespace {

template <typename Enum, std::size_t N>
std::optional<Enum> from_name(std::string_view name, const std::array<const char*, N>& names) {
  for (std::size_t i = 0; i < N; ++i) {
    if (name == names[i]) return static_cast<Enum>(i);
  }
  return std::nullopt;
}

constexpr std::array<const char*, 8> kRequestStates = {
    "checking", "needs_analyst", "waiting_review", "approved",
    "rejected", "released",      "withdrawn",      "failed"};
constexpr std::array<const char*, 5> kChoices = {"pending", "original", "safe", "exception",
                                                 "withdrawn"};
constexpr std::array<const char*, 2> kVerdicts = {"approve", "reject"};
constexpr std::array<const char*, 6> kFileStatuses = {"checking", "needs_analyst", "waiting_review",
                                                      "approved", "rejected",      "withdrawn"};

std::string file_label(const ExportRequest& request, const ExportFile& file) {
  return request_label(request.id) + " file " + std::to_string(file.index) + " (" + file.name + ")";
}

Expected<ExportFile*> file_of(ExportRequest& request, std::uint32_t index) {
  for (auto& f : request.files) {
    if (f.index == index) return &f;
  }
  return fail(Errc::kInvalidArgument, request_label(request.id) + " has no file " +
                                          std::to_string(index) + " (it has " +
                                          std::to_string(request.files.size()) + ")");
}

Status refuse_when_closed(const ExportRequest& request) {
  if (is_closed(request.state)) {
    return fail(Errc::kConflict, request_label(request.id) + " is " +
                                     request_state_name(request.state) +
                                     ": it takes no further action");
  }
  return {};
}

// The analyst's choices are open until a steward has decided on the file.
Expected<ExportFile*> analyst_file(ExportRequest& request, std::uint32_t index) {
  ENCLAVE_TRY(refuse_when_closed(request));
  if (request.state == RequestState::kApproved) {
    return fail(Errc::kConflict, request_label(request.id) + " is approved and being released");
  }
  auto file = file_of(request, index);
  if (!file) return file;
  ExportFile& f = **file;
  if (!f.checked) {
    return fail(Errc::kConflict, file_label(request, f) + " is still being checked");
  }
  if (!f.decisions.empty()) {
    return fail(Errc::kConflict, file_label(request, f) + " already has a steward's decision");
  }
  if (f.choice == Choice::kWithdrawn) {
    return fail(Errc::kConflict, file_label(request, f) + " was withdrawn");
  }
  return file;
}

void touch(ExportRequest& request, std::int64_t now_ms) {
  settle(request, now_ms);
}

}  // namespace

const char* request_state_name(RequestState state) {
  return kRequestStates[static_cast<std::size_t>(state)];
}
std::optional<RequestState> request_state_from_name(std::string_view name) {
  return from_name<RequestState>(name, kRequestStates);
}
bool is_closed(RequestState state) {
  return state == RequestState::kRejected || state == RequestState::kReleased ||
         state == RequestState::kWithdrawn || state == RequestState::kFailed;
}

const char* choice_name(Choice choice) {
  return kChoices[static_cast<std::size_t>(choice)];
}
std::optional<Choice> choice_from_name(std::string_view name) {
  return from_name<Choice>(name, kChoices);
}
const char* verdict_name(Verdict verdict) {
  return kVerdicts[static_cast<std::size_t>(verdict)];
}
std::optional<Verdict> verdict_from_name(std::string_view name) {
  return from_name<Verdict>(name, kVerdicts);
}
const char* file_status_name(FileStatus status) {
  return kFileStatuses[static_cast<std::size_t>(status)];
}

const std::string& ExportFile::chosen_sha256() const {
  return choice == Choice::kSafe ? safe_sha256 : sha256;
}

int ExportFile::approvals() const {
  return static_cast<int>(std::count_if(decisions.begin(), decisions.end(), [](const Decision& d) {
    return d.verdict == Verdict::kApprove;
  }));
}

FileStatus ExportFile::status(int stewards_required) const {
  if (choice == Choice::kWithdrawn) return FileStatus::kWithdrawn;
  if (!checked) return FileStatus::kChecking;
  if (choice == Choice::kPending) return FileStatus::kNeedsAnalyst;
  for (const auto& d : decisions) {
    if (d.verdict == Verdict::kReject) return FileStatus::kRejected;
  }
  if (approvals() >= stewards_required) return FileStatus::kApproved;
  return FileStatus::kWaitingReview;
}

std::string request_label(std::int64_t id) {
  return "R-" + std::to_string(id);
}

std::optional<std::int64_t> parse_request_label(std::string_view text) {
  if (text.starts_with("R-") || text.starts_with("r-")) text.remove_prefix(2);
  std::int64_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

RequestState derive_state(const ExportRequest& request) {
  if (is_closed(request.state) || request.state == RequestState::kApproved) return request.state;
  bool needs_analyst = false, waiting = false, approved = false, any_open = false;
  for (const auto& f : request.files) {
    switch (f.status(request.stewards_required)) {
      case FileStatus::kChecking:
        return RequestState::kChecking;
      case FileStatus::kNeedsAnalyst:
        needs_analyst = true;
        any_open = true;
        break;
      case FileStatus::kWaitingReview:
        waiting = true;
        any_open = true;
        break;
      case FileStatus::kApproved:
        approved = true;
        any_open = true;
        break;
      case FileStatus::kRejected:
        any_open = true;
        break;
      case FileStatus::kWithdrawn:
        break;
    }
  }
  if (!any_open) return RequestState::kWithdrawn;
  if (needs_analyst) return RequestState::kNeedsAnalyst;
  if (waiting) return RequestState::kWaitingReview;
  return approved ? RequestState::kApproved : RequestState::kRejected;
}

void settle(ExportRequest& request, std::int64_t now_ms) {
  request.updated_ms = now_ms;
  const RequestState before = request.state;
  request.state = derive_state(request);
  if (request.state == before) return;
  switch (request.state) {
    case RequestState::kNeedsAnalyst:
      request.state_reason =
          "a file failed the checks: accept its safe version, ask an exception or withdraw it";
      break;
    case RequestState::kWaitingReview:
      request.state_reason = request.stewards_required > 1
                                 ? "waiting for two stewards to decide on each file"
                                 : "waiting for a steward to decide on each file";
      break;
    case RequestState::kApproved:
      request.state_reason = "approved: the release is being built";
      break;
    case RequestState::kRejected:
      request.state_reason = "every file was rejected (the decisions say why)";
      break;
    case RequestState::kWithdrawn:
      request.state_reason = "every file withdrawn by the requester";
      break;
    default:
      break;
  }
}

Status accept_safe_version(ExportRequest& request, std::uint32_t index, std::int64_t now_ms) {
  auto file = analyst_file(request, index);
  if (!file) return error_of(file);
  ExportFile& f = **file;
  if (!f.has_safe_version()) {
    return fail(Errc::kConflict, file_label(request, f) + " has no safe version to accept");
  }
  if (f.safe_outcome == Outcome::kFail) {
    return fail(Errc::kConflict, file_label(request, f) +
                                     ": its safe version fails the checks too; ask an "
                                     "exception or withdraw the file");
  }
  f.choice = Choice::kSafe;
  f.exception_reason.clear();
  touch(request, now_ms);
  return {};
}

Status ask_exception(ExportRequest& request, std::uint32_t index, std::string reason,
                     std::int64_t now_ms) {
  auto file = analyst_file(request, index);
  if (!file) return error_of(file);
  ExportFile& f = **file;
  if (f.outcome != Outcome::kFail) {
    return fail(Errc::kConflict,
                file_label(request, f) + " does not fail the checks: it needs no exception");
  }
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return fail(Errc::kInvalidArgument,
                file_label(request, f) + ": an exception needs a written reason");
  }
  f.choice = Choice::kException;
  f.exception_reason = std::move(reason);
  touch(request, now_ms);
  return {};
}

Status withdraw(ExportRequest& request, std::optional<std::uint32_t> index, std::int64_t now_ms) {
  ENCLAVE_TRY(refuse_when_closed(request));
  if (request.state == RequestState::kApproved) {
    return fail(Errc::kConflict, request_label(request.id) + " is approved and being released");
  }
  if (!index) {
    request.state = RequestState::kWithdrawn;
    request.state_reason = "withdrawn by the requester";
    request.updated_ms = now_ms;
    return {};
  }
  auto file = file_of(request, *index);
  if (!file) return error_of(file);
  ExportFile& f = **file;
  if (f.choice == Choice::kWithdrawn) {
    return fail(Errc::kConflict, file_label(request, f) + " was already withdrawn");
  }
  if (!f.decisions.empty()) {
    return fail(Errc::kConflict, file_label(request, f) + " already has a steward's decision");
  }
  f.choice = Choice::kWithdrawn;
  touch(request, now_ms);
  return {};
}

Status may_review(const ExportRequest& request, const StewardRights& steward) {
  if (!steward.is_steward) {
    return fail(Errc::kPermission, steward.user + " is not a data steward");
  }
  if (!steward.is_project_member) {
    return fail(Errc::kPermission, steward.user + " is not a member of project " + request.project +
                                       " (" + request_label(request.id) + ")");
  }
  if (steward.user == request.requester) {
    return fail(Errc::kPermission, steward.user + " made " + request_label(request.id) +
                                       ": a requester never reviews their own request");
  }
  return {};
}

Status decide(ExportRequest& request, std::uint32_t index, const StewardRights& steward,
              Verdict verdict, std::string comment, std::int64_t now_ms) {
  ENCLAVE_TRY(may_review(request, steward));
  ENCLAVE_TRY(refuse_when_closed(request));
  if (request.state != RequestState::kWaitingReview) {
    return fail(Errc::kConflict, request_label(request.id) + " is " +
                                     request_state_name(request.state) +
                                     ", not waiting for review");
  }
  auto file = file_of(request, index);
  if (!file) return error_of(file);
  ExportFile& f = **file;
  const FileStatus status = f.status(request.stewards_required);
  if (status != FileStatus::kWaitingReview) {
    return fail(Errc::kConflict,
                file_label(request, f) + " is " + file_status_name(status) + ": decided already");
  }
  for (const auto& d : f.decisions) {
    if (d.steward == steward.user) {
      return fail(Errc::kConflict, file_label(request, f) + ": " + steward.user +
                                       " decided on it already (" + verdict_name(d.verdict) +
                                       "); a second steward must decide");
    }
  }
  const bool blank = comment.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank && verdict == Verdict::kReject) {
    return fail(Errc::kInvalidArgument,
                file_label(request, f) + ": a rejection needs a comment for the analyst");
  }
  if (blank && f.choice == Choice::kException) {
    return fail(Errc::kInvalidArgument, file_label(request, f) +
                                            " is an exception: a decision on it needs the "
                                            "steward's written reason");
  }
  f.decisions.push_back({steward.user, verdict, std::move(comment), now_ms});
  touch(request, now_ms);
  return {};
}

}  // namespace enclave::exitcontrol::review
