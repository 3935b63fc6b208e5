#include "exitcontrol/service/export_service.hpp"

#include <algorithm>
#include <chrono>
#include <fstream>

#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include "common/bytes.hpp"
#include "common/clock.hpp"
#include "common/fd.hpp"
#include "exitcontrol/service/export_release.hpp"

namespace enclave::exitcontrol {
namespace {

using nlohmann::json;
using review::Choice;
using review::ExportFile;
using review::ExportRequest;
using review::RequestState;

constexpr std::size_t kMaxJustification = 4000;
// Listings come in pages (the whole answer must fit in one IPC frame): this many requests unless
// the caller asks for fewer or more, at most kMaxPage, each justification cut to
// kListedJustification bytes (export.show has it whole).
constexpr std::size_t kDefaultPage = 500;
constexpr std::size_t kMaxPage = 1000;
constexpr std::size_t kListedJustification = 200;
constexpr std::size_t kMaxComment = 4000;
constexpr std::size_t kPreviewBytes = 64 * 1024;

Expected<std::string> string_param(const json& params, const char* key, bool required = true) {
  auto it = params.find(key);
  if (it == params.end() || it->is_null()) {
    if (required) return fail(Errc::kInvalidArgument, std::string("missing \"") + key + "\"");
    return std::string();
  }
  if (!it->is_string()) {
    return fail(Errc::kInvalidArgument, std::string("\"") + key + "\" must be a string");
  }
  return it->get<std::string>();
}

Expected<std::int64_t> request_param(const json& params) {
  auto it = params.find("request");
  if (it == params.end()) return fail(Errc::kInvalidArgument, "missing \"request\"");
  std::optional<std::int64_t> id;
  if (it->is_number_integer()) id = it->get<std::int64_t>();
  if (it->is_string()) id = review::parse_request_label(it->get<std::string>());
  if (!id || *id <= 0) {
    return fail(Errc::kInvalidArgument, "\"request\" must name a request, like R-42");
  }
  return *id;
}

Expected<std::optional<std::uint32_t>> file_param(const json& params) {
  auto it = params.find("file");
  if (it == params.end() || it->is_null()) return std::optional<std::uint32_t>();
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() > 100000) {
    return fail(Errc::kInvalidArgument, "\"file\" must be a file's number in its request");
  }
  return std::optional<std::uint32_t>(it->get<std::uint32_t>());
}

Status text_limit(const std::string& text, std::size_t max, const char* what) {
  if (text.size() > max) {
    return fail(Errc::kInvalidArgument,
                std::string(what) + " is longer than " + std::to_string(max) + " bytes");
  }
  if (!is_valid_utf8(text))
    return fail(Errc::kInvalidArgument, std::string(what) + " is not UTF-8");
  return {};
}

std::string safe_name(const std::string& name) {
  return ".safe/" + name;
}

json decision_json(const review::Decision& d) {
  return {{"steward", d.steward},
          {"decision", review::verdict_name(d.verdict)},
          {"comment", d.comment},
          {"at", format_rfc3339(from_unix_ms(d.at_ms))}};
}

json file_json(const ExportRequest& r, const ExportFile& f, bool with_report) {
  json j = {{"file", f.index},
            {"name", f.name},
            {"size", f.size},
            {"sha256", f.sha256},
            {"type", f.type},
            {"status", review::file_status_name(f.status(r.stewards_required))},
            {"checked", f.checked},
            {"choice", review::choice_name(f.choice)},
            {"approvals", f.approvals()},
            {"decisions", json::array()}};
  if (f.checked) j["outcome"] = outcome_name(f.outcome);
  if (f.has_safe_version()) {
    j["safe_version"] = {{"sha256", f.safe_sha256},
                         {"size", f.safe_size},
                         {"outcome", f.safe_outcome ? outcome_name(*f.safe_outcome) : "unknown"}};
  }
  if (f.choice == Choice::kException) j["exception_reason"] = f.exception_reason;
  for (const auto& d : f.decisions) j["decisions"].push_back(decision_json(d));
  if (!f.report_json.empty()) {
    auto report = json::parse(f.report_json, nullptr, false);
    if (!report.is_discarded()) {
      if (with_report) {
        j["report"] = report;
      } else {
        // The analyst's view: why, in a few lines.
        json why = json::array();
        if (report.contains("comments")) why = report["comments"];
        if (report.contains("summary")) j["summary"] = report["summary"];
        j["comments"] = why;
      }
    }
  }
  return j;
}

json request_json(const ExportRequest& r, bool with_reports) {
  json files = json::array();
  for (const auto& f : r.files) files.push_back(file_json(r, f, with_reports));
  json j = {{"request", review::request_label(r.id)},
            {"project", r.project},
            {"compartment", r.compartment},
            {"session", r.session},
            {"requester", r.requester},
            {"tier", r.tier},
            {"profile", r.profile},
            {"stewards_required", r.stewards_required},
            {"justification", r.justification},
            {"state", review::request_state_name(r.state)},
            {"reason", r.state_reason},
            {"created_at", format_rfc3339(from_unix_ms(r.created_ms))},
            {"updated_at", format_rfc3339(from_unix_ms(r.updated_ms))},
            {"files", std::move(files)}};
  if (!r.release.empty()) j["release"] = r.release;
  return j;
}

std::string listed_justification(const std::string& text) {
  if (text.size() <= kListedJustification) return text;
  return std::string(utf8_prefix(text, kListedJustification - 3)) + "…";
}

// A listing's "limit" and "after" (the last request of the previous page) into the filter.
Status page_params(const json& params, QueueFilter& filter) {
  filter.limit = kDefaultPage;
  if (auto limit = params.find("limit"); limit != params.end()) {
    if (!limit->is_number_unsigned() || limit->get<std::size_t>() == 0 ||
        limit->get<std::size_t>() > kMaxPage) {
      return fail(Errc::kInvalidArgument,
                  "\"limit\" must be a number from 1 to " + std::to_string(kMaxPage));
    }
    filter.limit = limit->get<std::size_t>();
  }
  if (auto after = params.find("after"); after != params.end()) {
    auto id =
        after->is_string() ? review::parse_request_label(after->get<std::string>()) : std::nullopt;
    if (!id) return fail(Errc::kInvalidArgument, "\"after\" must be a request, like R-12");
    filter.after = *id;
  }
  return {};
}

json summary_json(const RequestSummary& s) {
  return {{"request", review::request_label(s.id)},
          {"project", s.project},
          {"compartment", s.compartment},
          {"requester", s.requester},
          {"tier", s.tier},
          {"state", review::request_state_name(s.state)},
          {"reason", s.state_reason},
          {"stewards_required", s.stewards_required},
          {"files", s.files},
          {"waiting_files", s.waiting_files},
          {"created_at", format_rfc3339(from_unix_ms(s.created_ms))},
          {"updated_at", format_rfc3339(from_unix_ms(s.updated_ms))},
          {"justification", listed_justification(s.justification)}};
}

json files_by_hash(const ExportRequest& r) {
  json files = json::array();
  for (const auto& f : r.files) {
    json e = {{"file", f.index}, {"name", f.name}, {"sha256", f.sha256}, {"size", f.size}};
    if (f.choice == Choice::kSafe) e["safe_sha256"] = f.safe_sha256;
    files.push_back(std::move(e));
  }
  return files;
}

}  // namespace

struct LinkAuthority;

struct ExportService::Impl {
  ExportPolicy policy;
  ExportServiceDeps deps;
  ExportStore store;  // the writing connection; mu
  Spool spool;
  std::unique_ptr<ReleaseVault> vault;
  std::unique_ptr<LinkAuthority> links;
  std::mutex mu;  // store, and every read-modify-write of a request

  enum class JobKind { kCheck, kRelease };
  struct Job {
    JobKind kind;
    std::int64_t request;
  };
  std::mutex jobs_mu;
  std::condition_variable jobs_cv;
  std::deque<Job> jobs;
  int running = 0;
  bool stopping = false;
  std::vector<std::thread> workers;

  Impl(ExportPolicy p, ExportServiceDeps d, ExportStore s)
      : policy(std::move(p)), deps(std::move(d)), store(std::move(s)), spool(policy.spool) {}
  ~Impl();

  std::int64_t now() { return deps.now_ms ? deps.now_ms() : to_unix_ms(WallTime::clock::now()); }

  json event(const std::string& type, const std::string& outcome, const std::string& actor,
             const std::string& session, const std::string& object, json details) {
    json e = {{"type", type},   {"outcome", outcome}, {"actor_kind", "user"},
              {"actor", actor}, {"object", object},   {"details", std::move(details)}};
    if (!session.empty()) e["session"] = session;
    return e;
  }
  // An action happens only once recorded.
  Status record(json e) {
    auto done = deps.audit->append_sync(std::move(e));
    if (!done) {
      return fail(Errc::kUnavailable,
                  "the audit log did not record the action: " + done.error().message);
    }
    return {};
  }
  // Records the refusal (without holding the caller up), then hands back the error for the
  // method to return.
  Unexpected<Error> refuse(const std::string& actor, const std::string& session,
                           const std::string& action, const std::string& object, Error error) {
    json e = event("export.refused", "refused", actor, session, object,
                   {{"action", action}, {"reason", error.message}, {"code", errc_id(error.code)}});
    if (!deps.audit->append(std::move(e))) {
      spdlog::error("audit queue full: export.refused for {} not recorded", object);
    }
    return Unexpected<Error>{std::move(error)};
  }

  // The session the params' export token proves; a token that proves none is refused.
  Expected<SessionIdentity> session_of(const json& params, const std::string& action) {
    auto token = string_param(params, "token");
    if (!token) return error_of(token);
    auto who = deps.identify(*token);
    if (!who) return refuse("", "", action, "", who.error());
    return who;
  }

  // One page of what the filter selects: {"requests", "total", "next"}; "next" (the value of
  // "after" for the next page) only when there is more.
  Expected<json> page(QueueFilter filter) {
    const std::size_t wanted = filter.limit;
    filter.limit = wanted + 1;
    std::lock_guard lock(mu);
    auto rows = store.list(filter);
    if (!rows) return error_of(rows);
    auto total = store.count(filter);
    if (!total) return error_of(total);
    json listed = json::array();
    for (std::size_t i = 0; i < rows->size() && i < wanted; ++i) {
      listed.push_back(summary_json((*rows)[i]));
    }
    json answer = {{"requests", std::move(listed)}, {"total", *total}};
    if (rows->size() > wanted) answer["next"] = review::request_label((*rows)[wanted - 1].id);
    return answer;
  }

  void enqueue(JobKind kind, std::int64_t request) {
    {
      std::lock_guard lock(jobs_mu);
      jobs.push_back({kind, request});
    }
    jobs_cv.notify_one();
  }

  void worker_loop() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(jobs_mu);
        jobs_cv.wait(lock, [&] { return stopping || !jobs.empty(); });
        if (stopping) return;
        job = jobs.front();
        jobs.pop_front();
        ++running;
      }
      if (job.kind == JobKind::kCheck) {
        run_check(job.request);
      } else {
        run_release(job.request);
      }
      {
        std::lock_guard lock(jobs_mu);
        --running;
      }
      jobs_cv.notify_all();
    }
  }

  // Loads a request under mu.
  Expected<ExportRequest> load(std::int64_t id) {
    auto r = store.load(id);
    if (!r) return error_of(r);
    if (!*r) return fail(Errc::kNotFound, "no export request " + review::request_label(id));
    return std::move(**r);
  }

  // Saves `r` and records `e` in one transaction: both or neither.
  Status save_recorded(const ExportRequest& r, json e) {
    ENCLAVE_TRY(store.begin());
    auto saved = store.save(r);
    if (saved) saved = record(std::move(e));
    if (saved) saved = store.commit();
    if (!saved) {
      (void)store.rollback();  // the error being reported matters more
      return saved;
    }
    return {};
  }

  void run_check(std::int64_t id) {
    ExportRequest snapshot;
    {
      std::lock_guard lock(mu);
      auto r = load(id);
      if (!r) {
        spdlog::error("check of {}: {}", review::request_label(id), r.error().describe());
        return;
      }
      snapshot = std::move(r).value();
    }
    for (const auto& file : snapshot.files) {
      if (file.checked || file.choice == Choice::kWithdrawn) continue;
      if (is_closed(snapshot.state)) return;
      auto checked = deps.check(spool.file(id, file.name), snapshot.profile, snapshot.project);
      std::lock_guard lock(mu);
      auto r = load(id);
      if (!r) return;
      if (is_closed(r->state)) return;  // withdrawn while it was being checked
      auto& f = *std::find_if(r->files.begin(), r->files.end(),
                              [&](const ExportFile& x) { return x.index == file.index; });
      json details = {{"request", review::request_label(id)},
                      {"file", f.index},
                      {"name", f.name},
                      {"sha256", f.sha256}};
      if (!checked) {
        r->state = RequestState::kFailed;
        r->state_reason = "could not check " + f.name + ": " + checked.error().message;
        r->updated_ms = now();
        details["reason"] = r->state_reason;
        auto saved = save_recorded(*r, event("export.checked", "error", r->requester, r->session,
                                             review::request_label(id), details));
        if (!saved) spdlog::error("{}: {}", review::request_label(id), saved.error().describe());
        return;
      }
      f.checked = true;
      f.type = checked->type;
      f.outcome = checked->outcome;
      f.report_json = checked->report_json;
      if (f.outcome != Outcome::kFail) f.choice = Choice::kOriginal;
      if (checked->safe_content) {
        const std::string& content = *checked->safe_content;
        std::error_code ec;
        std::filesystem::create_directories(spool.dir(id) / ".safe", ec);
        auto written = spool.write(id, safe_name(f.name), content);
        if (written) {
          f.safe_sha256 = sha256_hex(as_bytes(content));
          f.safe_size = content.size();
          f.safe_outcome = checked->safe_outcome;
          details["safe_sha256"] = f.safe_sha256;
        } else {
          spdlog::error("{}: safe version of {} not kept: {}", review::request_label(id), f.name,
                        written.error().describe());
        }
      }
      review::settle(*r, now());
      details["outcome"] = outcome_name(f.outcome);
      details["type"] = f.type;
      details["state"] = review::request_state_name(r->state);
      auto saved = save_recorded(
          *r, event("export.checked", f.outcome == Outcome::kFail ? "failure" : "success",
                    r->requester, r->session, review::request_label(id), details));
      if (!saved) {
        spdlog::error("{}: check result of {} not stored: {}", review::request_label(id), f.name,
                      saved.error().describe());
        return;
      }
    }
  }

  // Before a decision and at release: every chosen version must hash as it did.
  Status verify_files(ExportRequest& r, const std::string& actor) {
    for (const auto& f : r.files) {
      if (f.choice == Choice::kWithdrawn || !f.checked) continue;
      const std::string name = f.choice == Choice::kSafe ? safe_name(f.name) : f.name;
      auto same = spool.verify(r.id, name, f.chosen_sha256());
      if (same) continue;
      r.state = RequestState::kFailed;
      r.state_reason = same.error().message;
      r.updated_ms = now();
      auto saved = save_recorded(
          r, event("export.tampered", "error", actor, r.session, review::request_label(r.id),
                   {{"request", review::request_label(r.id)},
                    {"file", f.index},
                    {"name", f.name},
                    {"expected_sha256", f.chosen_sha256()},
                    {"reason", same.error().message}}));
      if (!saved) spdlog::error("{}: {}", review::request_label(r.id), saved.error().describe());
      return same;
    }
    return {};
  }

  void run_release(std::int64_t id) {
    std::lock_guard lock(mu);
    auto r = load(id);
    if (!r || r->state != RequestState::kApproved) return;
    if (!verify_files(*r, "enclave-exportd")) return;
    auto release = vault->build(*r, spool);
    if (!release) {
      r->state_reason = "release failed: " + release.error().message;
      r->updated_ms = now();
      auto saved = save_recorded(
          *r, event("export.released", "error", "enclave-exportd", r->session,
                    review::request_label(id),
                    {{"request", review::request_label(id)}, {"reason", release.error().message}}));
      if (!saved) spdlog::error("{}: {}", review::request_label(id), saved.error().describe());
      return;
    }
    r->state = RequestState::kReleased;
    r->release = release->id;
    r->state_reason = "released as " + release->id;
    r->updated_ms = now();
    auto done = store.begin();
    if (done) done = store.insert_release(*release);
    if (done) done = store.save(*r);
    json files = json::array();
    for (const auto& f : r->files) {
      if (f.status(r->stewards_required) != review::FileStatus::kApproved) continue;
      files.push_back({{"file", f.index},
                       {"name", f.name},
                       {"version", f.choice == Choice::kSafe ? "safe" : "original"},
                       {"sha256", f.chosen_sha256()}});
    }
    if (done) {
      done = record(event("export.released", "success", "enclave-exportd", r->session,
                          review::request_label(id),
                          {{"request", review::request_label(id)},
                           {"release", release->id},
                           {"project", r->project},
                           {"bundle_sha256", release->sha256},
                           {"manifest_sha256", release->manifest_sha256},
                           {"files", files}}));
    }
    if (done) done = store.commit();
    if (!done) {
      (void)store.rollback();  // the error being reported matters more
      spdlog::error("{}: release not recorded: {}", review::request_label(id),
                    done.error().describe());
    }
  }
};

// The one-time links: claimed in one statement (exports.db), the bundle streamed from its
// sealed file chunk by chunk, every claim, refusal and end audited.
struct LinkAuthority : download::DownloadAuthority {
  explicit LinkAuthority(ExportService::Impl& service) : s(service) {}
  ExportService::Impl& s;

  struct Stream {
    release::SealedReader reader;
    ByteSpan pending;
  };

  Expected<download::DownloadGrant> claim(const std::string& token,
                                          const std::string& source) override {
    const std::string hash = sha256_hex(as_bytes(token));
    LinkRefusal why = LinkRefusal::kUnknown;
    Expected<LinkRow> link = [&] {
      std::lock_guard lock(s.mu);
      return s.store.claim_link(hash, s.now(), source, &why);
    }();
    if (!link) {
      const bool store_failed = link.error().code != Errc::kNotFound &&
                                link.error().code != Errc::kTimeout &&
                                link.error().code != Errc::kConflict;
      audit_download("export.download.refused", "refused", "", source,
                     {{"reason", store_failed ? link.error().message : link_refusal_name(why)},
                      {"link", hash.substr(0, 16)}});
      return error_of(link);
    }
    Expected<std::optional<ReleaseRow>> row = [&] {
      std::lock_guard lock(s.mu);
      return s.store.release(link->release);
    }();
    auto refuse = [&](const Error& e) -> Expected<download::DownloadGrant> {
      audit_download("export.download.refused", "error", link->release, source,
                     {{"reason", e.message}, {"link", hash.substr(0, 16)}});
      return fail(Errc::kPermission, link->release + " cannot be read: " + e.message);
    };
    if (!row) return refuse(row.error());
    if (!*row) return refuse({Errc::kNotFound, "release " + link->release + " is not stored"});
    auto reader = s.vault->open_sealed(**row);
    if (!reader) return refuse(reader.error());
    download::DownloadGrant grant;
    grant.grant_id = link->release + "/" + hash.substr(0, 16);
    grant.file_name = (*row)->project + "-" + (*row)->id + ".tar";
    grant.size = reader->plaintext_size();
    auto stream = std::make_shared<Stream>(Stream{std::move(reader).value(), {}});
    grant.read = [stream](std::span<std::uint8_t> out) -> Expected<std::size_t> {
      if (stream->pending.empty()) {
        if (stream->reader.done()) return std::size_t{0};
        auto chunk = stream->reader.next();
        if (!chunk) return error_of(chunk);
        stream->pending = *chunk;
      }
      const std::size_t n = std::min(out.size(), stream->pending.size());
      std::copy_n(stream->pending.begin(), n, out.begin());
      stream->pending = stream->pending.subspan(n);
      return n;
    };
    audit_download("export.download.started", "success", link->release, source,
                   {{"link", hash.substr(0, 16)},
                    {"created_by", link->created_by},
                    {"size", grant.size},
                    {"bundle_sha256", (*row)->sha256}});
    return grant;
  }

  void finished(const std::string& grant_id, bool complete, std::uint64_t bytes,
                const std::string& reason) override {
    const std::string release = grant_id.substr(0, grant_id.find('/'));
    audit_download("export.downloaded", complete ? "success" : "failure", release, "",
                   {{"link", grant_id.substr(grant_id.find('/') + 1)},
                    {"complete", complete},
                    {"bytes", bytes},
                    {"reason", reason}});
  }

  void rejected(const std::string& source, const std::string& reason) override {
    audit_download("export.download.refused", "refused", "", source, {{"reason", reason}});
  }

  void audit_download(const char* type, const char* outcome, const std::string& release,
                      const std::string& source, json details) {
    if (!source.empty()) details["source"] = source;
    if (!release.empty()) details["release"] = release;
    json e = {{"type", type},
              {"outcome", outcome},
              {"actor_kind", "service"},
              {"actor", "enclave-exportd"},
              {"object", release.empty() ? "download" : release},
              {"details", std::move(details)}};
    if (!s.deps.audit->append(std::move(e))) {
      spdlog::error("audit queue full: {} for {} not recorded", type, release);
    }
  }
};

ExportService::Impl::~Impl() = default;

ExportService::ExportService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ExportService::~ExportService() {
  {
    std::lock_guard lock(impl_->jobs_mu);
    impl_->stopping = true;
  }
  impl_->jobs_cv.notify_all();
  for (auto& t : impl_->workers) t.join();
}

Expected<std::unique_ptr<ExportService>> ExportService::open(const ExportPolicy& policy,
                                                             ExportServiceDeps deps) {
  if (!deps.identify || !deps.registry || !deps.check || !deps.audit) {
    return fail(Errc::kInvalidArgument, "export service: a dependency is missing");
  }
  for (const auto& dir : {policy.database.parent_path(), policy.ledger.parent_path()}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return fail(Errc::kIo, dir.string() + ": " + ec.message());
  }
  auto store = ExportStore::open(policy.database);
  if (!store) return error_of(store);
  auto impl = std::make_unique<Impl>(policy, std::move(deps), std::move(store).value());
  auto vault = ReleaseVault::open(policy);
  if (!vault) return error_of(vault);
  impl->vault = std::move(vault).value();
  impl->links = std::make_unique<LinkAuthority>(*impl);
  std::error_code ec;
  std::filesystem::create_directories(policy.spool, ec);
  if (ec) return fail(Errc::kIo, policy.spool.string() + ": " + ec.message());
  ::chmod(policy.spool.c_str(), 0700);
  // After a crash: copies no stored request owns go; unfinished work is queued again.
  impl->spool.sweep([&](std::int64_t id) {
    auto r = impl->store.load(id);
    return !r || r->has_value();  // keep on a read error: never delete what may be owned
  });
  auto unchecked = impl->store.unchecked();
  if (!unchecked) return error_of(unchecked);
  for (auto id : *unchecked) impl->jobs.push_back({Impl::JobKind::kCheck, id});
  auto approved = impl->store.approved_unreleased();
  if (!approved) return error_of(approved);
  for (auto id : *approved) impl->jobs.push_back({Impl::JobKind::kRelease, id});
  for (int i = 0; i < policy.check_workers; ++i) {
    impl->workers.emplace_back([p = impl.get()] { p->worker_loop(); });
  }
  return std::unique_ptr<ExportService>(new ExportService(std::move(impl)));
}

void ExportService::drain() {
  std::unique_lock lock(impl_->jobs_mu);
  impl_->jobs_cv.wait(lock, [&] { return impl_->jobs.empty() && impl_->running == 0; });
}

Expected<json> ExportService::submit(const json& params) {
  Impl& s = *impl_;
  auto who = s.session_of(params, "submit");
  if (!who) return error_of(who);
  auto refuse = [&](Error e) {
    return s.refuse(who->user, who->session_id, "submit", "", std::move(e));
  };
  if (who->state == "ended") {
    return refuse({Errc::kPermission, "session " + who->session_id +
                                          " has ended: requests come from a session in progress"});
  }
  auto justification = string_param(params, "justification");
  if (!justification) return refuse(justification.error());
  if (justification->find_first_not_of(" \t\r\n") == std::string::npos) {
    return refuse({Errc::kInvalidArgument,
                   "a request needs a justification: what the files are "
                   "for and why they are needed outside"});
  }
  if (auto ok = text_limit(*justification, kMaxJustification, "the justification"); !ok) {
    return refuse(ok.error());
  }
  std::vector<std::string> names;
  auto files = params.find("files");
  if (files == params.end() || !files->is_array()) {
    return refuse({Errc::kInvalidArgument, "\"files\" must be a list of names in the outbox"});
  }
  for (const auto& f : *files) {
    if (!f.is_string()) return refuse({Errc::kInvalidArgument, "file names must be strings"});
    names.push_back(f.get<std::string>());
  }
  auto wanted = string_param(params, "project", false);
  if (!wanted) return refuse(wanted.error());
  auto projects = s.deps.registry->projects_granting(who->user, who->compartment);
  if (!projects) return refuse(projects.error());
  std::string project;
  if (!wanted->empty()) {
    if (std::find(projects->begin(), projects->end(), *wanted) == projects->end()) {
      return refuse({Errc::kPermission, who->user + " has no project " + *wanted +
                                            " granting compartment " + who->compartment});
    }
    project = *wanted;
  } else if (projects->size() == 1) {
    project = projects->front();
  } else if (projects->empty()) {
    return refuse({Errc::kPermission, "no project valid today counts " + who->user +
                                          " as a member and grants " + who->compartment});
  } else {
    std::string list;
    for (const auto& p : *projects) list += (list.empty() ? "" : ", ") + p;
    return refuse({Errc::kInvalidArgument, "name the project (--project): " + who->user +
                                               " has several granting " + who->compartment + ": " +
                                               list});
  }

  const auto outbox = s.policy.outbox_root / who->session_id;
  auto intake = s.spool.take_in(outbox, names, s.policy.limits);
  if (!intake) return refuse(intake.error());
  ExportRequest r;
  r.project = project;
  r.compartment = who->compartment;
  r.session = who->session_id;
  r.requester = who->user;
  r.tier = who->tier;
  r.profile = who->profile;
  r.stewards_required = who->stewards;
  r.justification = *justification;
  r.state = RequestState::kChecking;
  r.state_reason = "the engine is checking the files";
  r.created_ms = s.now();
  for (const auto& f : intake->files) {
    if (f.sidecar) continue;
    ExportFile e;
    e.index = static_cast<std::uint32_t>(r.files.size());
    e.name = f.name;
    e.size = f.size;
    e.sha256 = f.sha256;
    r.files.push_back(std::move(e));
  }
  json sidecars = json::array();
  for (const auto& f : intake->files) {
    if (f.sidecar) sidecars.push_back({{"name", f.name}, {"sha256", f.sha256}});
  }
  std::lock_guard lock(s.mu);
  auto stored = s.store.begin();
  if (stored) stored = s.store.create(r);
  if (stored) {
    stored = s.record(s.event("export.requested", "success", r.requester, r.session,
                              review::request_label(r.id),
                              {{"request", review::request_label(r.id)},
                               {"project", r.project},
                               {"compartment", r.compartment},
                               {"device", who->device},
                               {"files", files_by_hash(r)},
                               {"sidecars", sidecars},
                               {"justification", r.justification}}));
  }
  if (stored) stored = s.spool.commit(intake->incoming, r.id);
  if (stored) stored = s.store.commit();
  if (!stored) {
    (void)s.store.rollback();  // the error being reported matters more
    s.spool.discard(intake->incoming);
    std::error_code ec;
    if (r.id > 0) std::filesystem::remove_all(s.spool.dir(r.id), ec);
    return refuse(stored.error());
  }
  s.enqueue(Impl::JobKind::kCheck, r.id);
  return request_json(r, false);
}

Expected<json> ExportService::status(const json& params) {
  Impl& s = *impl_;
  auto who = s.session_of(params, "status");
  if (!who) return error_of(who);
  if (!params.contains("request")) {
    QueueFilter mine;
    mine.requester = who->user;
    if (auto ok = page_params(params, mine); !ok) {
      return s.refuse(who->user, who->session_id, "status", "", ok.error());
    }
    return s.page(std::move(mine));
  }
  auto id = request_param(params);
  if (!id) return error_of(id);
  std::lock_guard lock(s.mu);
  auto r = s.load(*id);
  if (!r || r->requester != who->user) {
    // Someone else's request is as unknown as a missing one.
    return s.refuse(
        who->user, who->session_id, "status", review::request_label(*id),
        {Errc::kNotFound, "no export request " + review::request_label(*id) + " of " + who->user});
  }
  return request_json(*r, false);
}

Expected<json> ExportService::choose(const json& params) {
  Impl& s = *impl_;
  auto who = s.session_of(params, "choose");
  if (!who) return error_of(who);
  auto id = request_param(params);
  auto file = file_param(params);
  auto action = string_param(params, "action");
  auto reason = string_param(params, "reason", false);
  std::string object = id ? review::request_label(*id) : "";
  auto refuse = [&](Error e) {
    return s.refuse(who->user, who->session_id, action ? *action : "choose", object, std::move(e));
  };
  if (!id) return refuse(id.error());
  if (!file) return refuse(file.error());
  if (!action) return refuse(action.error());
  if (!reason) return refuse(reason.error());
  if (auto ok = text_limit(*reason, kMaxComment, "the reason"); !ok) return refuse(ok.error());
  std::lock_guard lock(s.mu);
  auto r = s.load(*id);
  if (!r || r->requester != who->user) {
    return refuse(
        {Errc::kNotFound, "no export request " + review::request_label(*id) + " of " + who->user});
  }
  const std::int64_t now = s.now();
  Status done;
  if (*action == "withdraw") {
    done = review::withdraw(*r, *file, now);
  } else if (!*file) {
    return refuse({Errc::kInvalidArgument, "\"" + *action + "\" needs the file's number"});
  } else if (*action == "accept_safe") {
    done = review::accept_safe_version(*r, **file, now);
  } else if (*action == "exception") {
    done = review::ask_exception(*r, **file, *reason, now);
  } else {
    return refuse(
        {Errc::kInvalidArgument,
         "\"action\" must be accept_safe, exception or withdraw, not \"" + *action + "\""});
  }
  if (!done) return refuse(done.error());
  json details = {
      {"request", object}, {"action", *action}, {"state", review::request_state_name(r->state)}};
  if (*file) {
    const auto& f = *std::find_if(r->files.begin(), r->files.end(),
                                  [&](const ExportFile& x) { return x.index == **file; });
    details["file"] = f.index;
    details["name"] = f.name;
    details["sha256"] = f.sha256;
    if (*action == "accept_safe") details["safe_sha256"] = f.safe_sha256;
    if (*action == "exception") details["reason"] = *reason;
  }
  auto saved = s.save_recorded(
      *r, s.event("export.choice", "success", who->user, who->session_id, object, details));
  if (!saved) return refuse(saved.error());
  return request_json(*r, false);
}

Expected<json> ExportService::queue(const std::string& user, const json& params) {
  Impl& s = *impl_;
  auto rights = s.deps.registry->rights(user);
  if (!rights) return error_of(rights);
  auto refuse = [&](Error e) { return s.refuse(user, "", "queue", "", std::move(e)); };
  if (!rights->exists || rights->disabled || !rights->steward) {
    return refuse({Errc::kPermission, user + " is not a data steward"});
  }
  QueueFilter filter;
  filter.not_requester = user;
  auto project = string_param(params, "project", false);
  auto compartment = string_param(params, "compartment", false);
  auto state = string_param(params, "state", false);
  if (!project) return refuse(project.error());
  if (!compartment) return refuse(compartment.error());
  if (!state) return refuse(state.error());
  for (const auto& p : rights->projects) {
    if (project->empty() || *project == p) filter.projects.insert(p);
  }
  if (filter.projects.empty()) {
    if (!project->empty()) {
      return refuse({Errc::kPermission, user + " is not a member of project " + *project});
    }
    return json{{"requests", json::array()}, {"total", 0}};
  }
  filter.compartment = *compartment;
  if (state->empty()) {
    filter.states = {RequestState::kWaitingReview};
  } else if (*state != "all") {
    auto st = review::request_state_from_name(*state);
    if (!st) return refuse({Errc::kInvalidArgument, "unknown state \"" + *state + "\""});
    filter.states = {*st};
  }
  if (auto ok = page_params(params, filter); !ok) return refuse(ok.error());
  return s.page(std::move(filter));
}

Expected<json> ExportService::show(const std::string& user, const json& params) {
  Impl& s = *impl_;
  auto id = request_param(params);
  if (!id) return error_of(id);
  const std::string object = review::request_label(*id);
  auto refuse = [&](Error e) { return s.refuse(user, "", "show", object, std::move(e)); };
  auto rights = s.deps.registry->rights(user);
  if (!rights) return error_of(rights);
  std::lock_guard lock(s.mu);
  auto r = s.load(*id);
  if (!r) return refuse(r.error());
  review::StewardRights steward{user, rights->exists && !rights->disabled && rights->steward,
                                std::find(rights->projects.begin(), rights->projects.end(),
                                          r->project) != rights->projects.end()};
  if (auto ok = review::may_review(*r, steward); !ok) return refuse(ok.error());
  json out = request_json(*r, true);
  // The file beside its report: the start of each table or text as the steward would see it.
  for (auto& f : out["files"]) {
    const auto& file = r->files[f["file"].get<std::size_t>()];
    if (file.type != "table" && file.type != "extract" && file.type != "text" &&
        file.type != "model") {
      continue;
    }
    const std::string name = file.choice == Choice::kSafe ? safe_name(file.name) : file.name;
    std::ifstream in(s.spool.file(r->id, name), std::ios::binary);
    std::string text(kPreviewBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<std::size_t>(in.gcount()));
    const bool cut = text.size() > kPreviewBytes;
    if (cut) text.resize(kPreviewBytes);
    while (!text.empty() && !is_valid_utf8(text) && cut) text.pop_back();  // a cut character
    if (!is_valid_utf8(text)) continue;
    f["preview"] = {{"version", file.choice == Choice::kSafe ? "safe" : "original"},
                    {"text", text},
                    {"truncated", cut}};
  }
  return out;
}

Expected<json> ExportService::decide(const std::string& user, const json& params) {
  Impl& s = *impl_;
  auto id = request_param(params);
  if (!id) return error_of(id);
  const std::string object = review::request_label(*id);
  auto refuse = [&](Error e) { return s.refuse(user, "", "decide", object, std::move(e)); };
  auto file = file_param(params);
  auto decision = string_param(params, "decision");
  auto comment = string_param(params, "comment", false);
  if (!file) return refuse(file.error());
  if (!*file) return refuse({Errc::kInvalidArgument, "missing \"file\": decide file by file"});
  if (!decision) return refuse(decision.error());
  if (!comment) return refuse(comment.error());
  if (auto ok = text_limit(*comment, kMaxComment, "the comment"); !ok) return refuse(ok.error());
  auto verdict = review::verdict_from_name(*decision);
  if (!verdict) {
    return refuse({Errc::kInvalidArgument,
                   "\"decision\" must be approve or reject, not \"" + *decision + "\""});
  }
  auto rights = s.deps.registry->rights(user);
  if (!rights) return refuse(rights.error());
  std::lock_guard lock(s.mu);
  auto r = s.load(*id);
  if (!r) return refuse(r.error());
  review::StewardRights steward{user, rights->exists && !rights->disabled && rights->steward,
                                std::find(rights->projects.begin(), rights->projects.end(),
                                          r->project) != rights->projects.end()};
  if (auto ok = review::may_review(*r, steward); !ok) return refuse(ok.error());
  if (r->state == RequestState::kWaitingReview) {
    if (auto same = s.verify_files(*r, user); !same) return refuse(same.error());
  }
  if (auto ok = review::decide(*r, **file, steward, *verdict, *comment, s.now()); !ok) {
    return refuse(ok.error());
  }
  const auto& f = *std::find_if(r->files.begin(), r->files.end(),
                                [&](const ExportFile& x) { return x.index == **file; });
  auto saved = s.save_recorded(
      *r, s.event("export.decision", "success", user, "", object,
                  {{"request", object},
                   {"file", f.index},
                   {"name", f.name},
                   {"sha256", f.chosen_sha256()},
                   {"version", f.choice == Choice::kSafe ? "safe" : "original"},
                   {"decision", *decision},
                   {"comment", *comment},
                   {"file_status", review::file_status_name(f.status(r->stewards_required))},
                   {"state", review::request_state_name(r->state)}}));
  if (!saved) return refuse(saved.error());
  if (r->state == RequestState::kApproved) s.enqueue(Impl::JobKind::kRelease, r->id);
  return request_json(*r, false);
}

namespace {

// A steward of the release's project who did not request it, or an operator.
Status may_release(const UserRights& rights, const std::string& user, bool machine_operator,
                   const std::string& project, const std::string& requester) {
  if (machine_operator) return {};
  if (!rights.exists || rights.disabled) {
    return fail(Errc::kPermission, user + " is not in the registry");
  }
  if (rights.operator_role) return {};
  if (!rights.steward) return fail(Errc::kPermission, user + " is not a data steward");
  if (std::find(rights.projects.begin(), rights.projects.end(), project) == rights.projects.end()) {
    return fail(Errc::kPermission, user + " is not a member of project " + project);
  }
  if (!requester.empty() && user == requester) {
    return fail(Errc::kPermission,
                user + " requested it: a requester never hands out their own release");
  }
  return {};
}

Status must_operate(const UserRights& rights, const std::string& user, bool machine_operator) {
  if (machine_operator || (rights.exists && !rights.disabled && rights.operator_role)) return {};
  return fail(Errc::kPermission, user + " is not an operator");
}

json release_json(const ReleaseRow& r, const std::vector<LinkRow>& links) {
  json l = json::array();
  for (const auto& link : links) {
    json e = {{"created_by", link.created_by},
              {"created_at", format_rfc3339(from_unix_ms(link.created_ms))},
              {"expires_at", format_rfc3339(from_unix_ms(link.expires_ms))}};
    if (link.used_ms) {
      e["used_at"] = format_rfc3339(from_unix_ms(link.used_ms));
      e["used_from"] = link.used_from;
    }
    l.push_back(std::move(e));
  }
  return {{"release", r.id},
          {"request", review::request_label(r.request)},
          {"project", r.project},
          {"created_at", format_rfc3339(from_unix_ms(r.created_ms))},
          {"size", r.size},
          {"sha256", r.sha256},
          {"manifest_sha256", r.manifest_sha256},
          {"key_id", r.key_id},
          {"state", r.state},
          {"links", std::move(l)}};
}

}  // namespace

download::DownloadAuthority& ExportService::downloads() {
  return *impl_->links;
}

Expected<json> ExportService::link(const std::string& user, bool machine_operator,
                                   const json& params) {
  Impl& s = *impl_;
  auto id = request_param(params);
  if (!id) return error_of(id);
  const std::string object = review::request_label(*id);
  auto refuse = [&](Error e) { return s.refuse(user, "", "link", object, std::move(e)); };
  // "ttl_h" for people, "ttl_s" for scripts and tests; at most max_link_ttl_h.
  std::chrono::seconds ttl = s.policy.link_ttl;
  for (const auto& [key, unit] : {std::pair<const char*, std::int64_t>{"ttl_h", 3600},
                                  std::pair<const char*, std::int64_t>{"ttl_s", 1}}) {
    auto t = params.find(key);
    if (t == params.end()) continue;
    if (!t->is_number_unsigned() || t->get<std::uint64_t>() == 0 ||
        t->get<std::uint64_t>() > static_cast<std::uint64_t>(s.policy.max_link_ttl.count())) {
      return refuse({Errc::kInvalidArgument,
                     std::string("\"") + key + "\" must be positive and at most " +
                         std::to_string(s.policy.max_link_ttl.count() / 3600) + " hours"});
    }
    ttl = std::chrono::seconds(t->get<std::int64_t>() * unit);
    if (ttl > s.policy.max_link_ttl) {
      return refuse({Errc::kInvalidArgument,
                     "a link may live at most " +
                         std::to_string(s.policy.max_link_ttl.count() / 3600) + " hours"});
    }
  }
  auto rights = s.deps.registry->rights(user);
  if (!rights) return refuse(rights.error());
  std::lock_guard lock(s.mu);
  auto r = s.load(*id);
  if (!r) return refuse(r.error());
  if (auto ok = may_release(*rights, user, machine_operator, r->project, r->requester); !ok) {
    return refuse(ok.error());
  }
  if (r->state != RequestState::kReleased) {
    return refuse({Errc::kConflict, object + " is " + review::request_state_name(r->state) +
                                        ", not released: there is nothing to download"});
  }
  auto row = s.store.release(r->release);
  if (!row) return refuse(row.error());
  if (!*row || (*row)->state != "sealed") {
    return refuse({Errc::kConflict, r->release + " is " + (*row ? (*row)->state : "missing") +
                                        ": it can no longer be downloaded"});
  }
  const std::string token = random_hex(32);
  LinkRow link;
  link.token_sha256 = sha256_hex(as_bytes(token));
  link.release = r->release;
  link.created_by = user;
  link.created_ms = s.now();
  link.expires_ms =
      link.created_ms + std::chrono::duration_cast<std::chrono::milliseconds>(ttl).count();
  auto stored = s.store.begin();
  if (stored) stored = s.store.insert_link(link);
  if (stored) {
    stored = s.record(s.event("export.link", "success", user, "", object,
                              {{"request", object},
                               {"release", r->release},
                               {"link", link.token_sha256.substr(0, 16)},
                               {"expires_at", format_rfc3339(from_unix_ms(link.expires_ms))}}));
  }
  if (stored) stored = s.store.commit();
  if (!stored) {
    (void)s.store.rollback();  // the error being reported matters more
    return refuse(stored.error());
  }
  return json{{"release", r->release},
              {"url", s.policy.download.url + "/download/" + token},
              {"expires_at", format_rfc3339(from_unix_ms(link.expires_ms))}};
}

Expected<json> ExportService::releases(const std::string& user, bool machine_operator,
                                       const json& params) {
  Impl& s = *impl_;
  auto project = string_param(params, "project", false);
  if (!project) return error_of(project);
  auto rights = s.deps.registry->rights(user);
  if (!rights) return error_of(rights);
  std::vector<std::string> projects;
  if (!project->empty()) {
    if (auto ok = may_release(*rights, user, machine_operator, *project, ""); !ok) {
      return s.refuse(user, "", "releases", *project, ok.error());
    }
    projects.push_back(*project);
  } else if (machine_operator || rights->operator_role) {
    projects.push_back("");  // every project
  } else {
    projects = rights->projects;
  }
  json out = json::array();
  std::lock_guard lock(s.mu);
  for (const auto& p : projects) {
    auto rows = s.store.releases_of_project(p);
    if (!rows) return error_of(rows);
    for (const auto& row : *rows) {
      auto links = s.store.links_of_release(row.id);
      if (!links) return error_of(links);
      out.push_back(release_json(row, *links));
    }
  }
  return json{{"releases", std::move(out)}};
}

Expected<json> ExportService::rotate_key(const std::string& user, bool machine_operator,
                                         const json& params) {
  Impl& s = *impl_;
  auto project = string_param(params, "project");
  if (!project) return error_of(project);
  auto refuse = [&](Error e) { return s.refuse(user, "", "key.rotate", *project, std::move(e)); };
  auto rights = s.deps.registry->rights(user);
  if (!rights) return refuse(rights.error());
  if (auto ok = must_operate(*rights, user, machine_operator); !ok) return refuse(ok.error());
  std::lock_guard lock(s.mu);
  auto& keys = s.vault->keys();
  auto before = keys.key_ids(*project);
  if (!before) return refuse(before.error());
  auto current = keys.rotate(*project);
  if (!current) return refuse(current.error());
  auto rows = s.store.releases_of_project(*project);
  if (!rows) return refuse(rows.error());
  // Every data key under the new key in one transaction; only then are the old keys destroyed.
  std::size_t rewrapped = 0;
  auto done = s.store.begin();
  for (const auto& row : *rows) {
    if (!done) break;
    if (row.state == "destroyed") continue;
    auto wrapped = keys.rewrap(*project, {row.key_id, row.wrapped_key});
    if (!wrapped) {
      done = error_of(wrapped);
      break;
    }
    done = s.store.set_release_key(row.id, wrapped->key_id, wrapped->wrapped);
    ++rewrapped;
  }
  if (done) {
    done = s.record(s.event("export.key.rotated", "success", user, "", *project,
                            {{"project", *project},
                             {"key_id", *current},
                             {"rewrapped", rewrapped},
                             {"retired", *before}}));
  }
  if (done) done = s.store.commit();
  if (!done) {
    (void)s.store.rollback();  // the old keys stay: every release still opens
    return refuse(done.error());
  }
  for (const auto& old : *before) {
    if (auto retired = keys.retire(*project, old); !retired) {
      spdlog::error("project {}: old key {} not destroyed: {}", *project, old,
                    retired.error().describe());
    }
  }
  return json{{"project", *project}, {"key_id", *current}, {"rewrapped", rewrapped}};
}

Expected<json> ExportService::destroy_project(const std::string& user, bool machine_operator,
                                              const json& params) {
  Impl& s = *impl_;
  auto project = string_param(params, "project");
  if (!project) return error_of(project);
  auto refuse = [&](Error e) {
    return s.refuse(user, "", "project.destroy", *project, std::move(e));
  };
  auto confirm = string_param(params, "confirm", false);
  if (!confirm || *confirm != *project) {
    return refuse({Errc::kInvalidArgument,
                   "destroying a project's releases cannot be undone: confirm with its name"});
  }
  auto rights = s.deps.registry->rights(user);
  if (!rights) return refuse(rights.error());
  if (auto ok = must_operate(*rights, user, machine_operator); !ok) return refuse(ok.error());
  std::lock_guard lock(s.mu);
  auto rows = s.store.releases_of_project(*project);
  if (!rows) return refuse(rows.error());
  // Recorded first: the keys are gone the moment they are destroyed.
  if (auto ok = s.record(s.event("export.project.destroyed", "success", user, "", *project,
                                 {{"project", *project}, {"releases", rows->size()}}));
      !ok) {
    return refuse(ok.error());
  }
  auto destroyed = s.vault->keys().destroy(*project);
  if (!destroyed && destroyed.error().code != Errc::kNotFound) return refuse(destroyed.error());
  std::size_t n = 0;
  for (const auto& row : *rows) {
    std::error_code ec;
    std::filesystem::remove(s.vault->sealed_path(row), ec);
    if (row.state != "destroyed") {
      if (auto marked = s.store.set_release_state(row.id, "destroyed", s.now()); !marked) {
        spdlog::error("{}: not marked destroyed: {}", row.id, marked.error().describe());
      }
      ++n;
    }
  }
  return json{{"project", *project}, {"releases_destroyed", n}};
}

std::size_t ExportService::apply_retention() {
  Impl& s = *impl_;
  const std::int64_t cutoff = s.now() - std::int64_t{s.policy.retention_days} * 24 * 3600 * 1000;
  std::lock_guard lock(s.mu);
  auto rows = s.store.releases_older_than(cutoff);
  if (!rows) {
    spdlog::error("retention: {}", rows.error().describe());
    return 0;
  }
  std::size_t n = 0;
  for (const auto& row : *rows) {
    std::error_code ec;
    std::filesystem::remove(s.vault->sealed_path(row), ec);
    if (ec) {
      spdlog::error("retention: {} not deleted: {}", row.id, ec.message());
      continue;
    }
    auto marked = s.store.set_release_state(row.id, "deleted", s.now());
    if (!marked) continue;
    ++n;
    if (!s.deps.audit->append(s.event("export.retention", "info", "enclave-exportd", "", row.id,
                                      {{"release", row.id},
                                       {"project", row.project},
                                       {"retention_days", s.policy.retention_days}}))) {
      spdlog::error("audit queue full: export.retention for {} not recorded", row.id);
    }
  }
  return n;
}

}  // namespace enclave::exitcontrol
