// The export service's SQLite store (state-dir/exitcontrol/exports.db): requests, their files,
// the stewards' decisions, releases (with their data keys wrapped by the project's key) and
// one-time download links (kept as the SHA-256 of the token, never the token).
//
// One ExportStore is one connection: the service keeps one for changes (under its own mutex,
// each action in one IMMEDIATE transaction) and one per reading thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "common/store.hpp"
#include "exitcontrol/review/request.hpp"

namespace enclave::exitcontrol {

// One row of a queue or a requester's list: what a list shows without the files.
struct RequestSummary {
  std::int64_t id = 0;
  std::string project, compartment, requester, tier;
  review::RequestState state = review::RequestState::kChecking;
  std::string state_reason;
  int stewards_required = 1;
  std::uint32_t files = 0;
  std::uint32_t waiting_files = 0;  // files waiting for a steward's decision
  std::int64_t created_ms = 0, updated_ms = 0;
  std::string justification;
};

struct QueueFilter {
  std::vector<review::RequestState> states;  // empty: any
  std::set<std::string> projects;            // empty: any
  std::string compartment;                   // empty: any
  std::string requester;                     // only this requester's; empty: anyone's
  std::string not_requester;                 // leave this user's own requests out
  std::int64_t after = 0;                    // only requests with a higher id (the next page)
  std::size_t limit = 0;                     // 0: all
};

struct ReleaseRow {
  std::string id;  // "REL-42" for request 42
  std::int64_t request = 0;
  std::string project;
  std::int64_t created_ms = 0;
  std::uint64_t size = 0;        // of the bundle (the tar), in bytes
  std::string sha256;            // of the bundle
  std::string manifest_sha256;   // of manifest.json
  std::string key_id;            // the project key that wraps the data key
  Bytes wrapped_key;             // the data key, wrapped
  std::string state = "sealed";  // sealed | deleted (retention) | destroyed (project key gone)
  std::int64_t deleted_ms = 0;   // when the sealed bundle was deleted, 0 while it is kept
};

struct LinkRow {
  std::string token_sha256;
  std::string release;
  std::string created_by;
  std::int64_t created_ms = 0, expires_ms = 0;
  std::int64_t used_ms = 0;  // 0: not used
  std::string used_from;
};

// Why a link was refused.
enum class LinkRefusal { kUnknown, kExpired, kUsed, kReleaseGone };
const char* link_refusal_name(LinkRefusal refusal);  // "unknown", "expired", "used", "gone"

class ExportStore {
 public:
  static Expected<ExportStore> open(const std::filesystem::path& path,
                                    store::OpenOptions options = {});

  Status begin() { return db_.begin_immediate(); }
  Status commit() { return db_.commit(); }
  Status rollback() { return db_.rollback(); }
  const std::filesystem::path& path() const { return db_.path(); }

  // Inserts a new request and its files; sets request.id.
  Status create(review::ExportRequest& request);
  Expected<std::optional<review::ExportRequest>> load(std::int64_t id);
  // Writes back what actions change: the request's state, reason, times and release; each
  // file's check results, choice and exception; decisions not yet stored.
  Status save(const review::ExportRequest& request);
  // The requests the filter selects, by id.
  Expected<std::vector<RequestSummary>> list(const QueueFilter& filter);
  // How many requests the filter selects, ignoring its `after` and `limit`.
  Expected<std::size_t> count(const QueueFilter& filter);
  // Requests in kChecking (to resume after a restart), oldest first.
  Expected<std::vector<std::int64_t>> unchecked();
  // Requests approved but not yet released (to resume after a restart).
  Expected<std::vector<std::int64_t>> approved_unreleased();

  Status insert_release(const ReleaseRow& release);
  Expected<std::optional<ReleaseRow>> release(const std::string& id);
  Expected<std::vector<ReleaseRow>> releases_of_project(const std::string& project);
  // Sealed releases created before `cutoff_ms` (retention).
  Expected<std::vector<ReleaseRow>> releases_older_than(std::int64_t cutoff_ms);
  Status set_release_key(const std::string& id, const std::string& key_id, ByteSpan wrapped);
  Status set_release_state(const std::string& id, const std::string& state, std::int64_t at_ms);

  Status insert_link(const LinkRow& link);
  // Marks the link used, at once and only once; or says why it cannot be.
  Expected<LinkRow> claim_link(const std::string& token_sha256, std::int64_t now_ms,
                               const std::string& source, LinkRefusal* refusal);
  Expected<std::vector<LinkRow>> links_of_release(const std::string& release);

 private:
  explicit ExportStore(store::Database db) : db_(std::move(db)) {}
  Status load_files(review::ExportRequest& request);
  store::Database db_;
};

}  // namespace enclave::exitcontrol
