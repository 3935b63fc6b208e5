#include "audit/service/daemon.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>

#include "audit/core/archive.hpp"
#include "audit/core/event.hpp"
#include "audit/core/note.hpp"
#include "audit/service/log_store.hpp"
#include "audit/service/sinks.hpp"
#include "common/files.hpp"

namespace enclave::audit {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// A request the writer thread must carry out (it alone touches the database).
struct Control {
  enum class Kind { kCheckpoint, kArchive } kind;
  std::int64_t before_us = 0;  // kArchive
  ipc::Responder respond;
};

struct PendingAppend {
  Event event;
  ipc::Responder respond;  // empty for the daemon's own events
  std::uint64_t id = 0;
};

struct Counters {
  std::atomic<std::uint64_t> appended{0};
  std::atomic<std::uint64_t> append_failures{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<std::uint64_t> checkpoints{0};
  std::atomic<std::uint64_t> queue_full{0};
};

}  // namespace

Expected<DaemonConfig> load_daemon_config(const policy::Document& policy,
                                          const std::filesystem::path& state_dir) {
  auto audit = policy.root().table("audit");
  if (!audit) return error_of(audit);
  if (!*audit) return fail(Errc::kInvalidArgument, policy.source() + ": missing [audit] table");
  const policy::Table& t = **audit;
  ENCLAVE_TRY(t.reject_unknown({"origin", "database", "socket", "signing_key", "verifier_key",
                                "archive_dir", "checkpoint", "commit", "offbox", "access"}));
  DaemonConfig c;
  auto text = [&](const policy::Table& table, std::string_view key, std::string fallback,
                  std::string& out) -> Status {
    auto v = table.nonempty_string_or(key, std::move(fallback));
    if (!v) return error_of(v);
    out = std::move(v).value();
    return {};
  };
  std::string database, socket, signing_key, verifier_key, archive_dir;
  ENCLAVE_TRY(text(t, "origin", "enclave.local/audit", c.origin));
  if (c.origin.find_first_of(" +\n") != std::string::npos) {
    return Unexpected<Error>{t.error_at("origin", "must not contain spaces, '+' or newlines")};
  }
  ENCLAVE_TRY(text(t, "database", "audit/audit.db", database));
  ENCLAVE_TRY(text(t, "socket", "run/auditd.sock", socket));
  ENCLAVE_TRY(text(t, "signing_key", "keys/audit-signing.key", signing_key));
  ENCLAVE_TRY(text(t, "verifier_key", "keys/audit-signing.pub", verifier_key));
  ENCLAVE_TRY(text(t, "archive_dir", "audit/archive", archive_dir));
  c.database = under_state_dir(state_dir, database);
  c.socket = under_state_dir(state_dir, socket);
  c.signing_key = under_state_dir(state_dir, signing_key);
  c.verifier_key = under_state_dir(state_dir, verifier_key);
  c.archive_dir = under_state_dir(state_dir, archive_dir);

  auto checkpoint = t.table("checkpoint");
  if (!checkpoint) return error_of(checkpoint);
  if (*checkpoint) {
    const auto& cp = **checkpoint;
    ENCLAVE_TRY(cp.reject_unknown({"every_entries", "every_seconds"}));
    auto entries = cp.integer_or("every_entries", 1000, 1, 10'000'000);
    if (!entries) return error_of(entries);
    auto seconds = cp.number_or("every_seconds", 5, 0.05, 86400);
    if (!seconds) return error_of(seconds);
    c.checkpoint_every_entries = static_cast<std::uint64_t>(*entries);
    c.checkpoint_every = std::chrono::milliseconds(static_cast<std::int64_t>(*seconds * 1000));
  }
  auto commit = t.table("commit");
  if (!commit) return error_of(commit);
  if (*commit) {
    const auto& cm = **commit;
    ENCLAVE_TRY(cm.reject_unknown({"max_batch", "max_queue", "gather_us"}));
    auto batch = cm.integer_or("max_batch", 4096, 1, 1'000'000);
    if (!batch) return error_of(batch);
    auto queue = cm.integer_or("max_queue", 65536, 1, 10'000'000);
    if (!queue) return error_of(queue);
    auto gather = cm.integer_or("gather_us", 250, 0, 100'000);
    if (!gather) return error_of(gather);
    c.max_batch = static_cast<std::size_t>(*batch);
    c.max_queue = static_cast<std::size_t>(*queue);
    c.gather = std::chrono::microseconds(*gather);
  }
  auto offbox = t.table("offbox");
  if (!offbox) return error_of(offbox);
  if (*offbox) {
    const auto& ob = **offbox;
    ENCLAVE_TRY(ob.reject_unknown({"files", "syslog"}));
    auto files = ob.strings_or("files", {});
    if (!files) return error_of(files);
    for (const auto& f : *files) c.offbox_files.push_back(under_state_dir(state_dir, f));
    auto syslog = ob.strings_or("syslog", {});
    if (!syslog) return error_of(syslog);
    c.offbox_syslog = std::move(syslog).value();
  }
  auto access = t.table("access");
  if (!access) return error_of(access);
  if (*access) {
    const auto& ac = **access;
    ENCLAVE_TRY(ac.reject_unknown({"writers", "admins"}));
    auto writers = ac.strings_or("writers", {});
    if (!writers) return error_of(writers);
    auto admins = ac.strings_or("admins", {});
    if (!admins) return error_of(admins);
    c.writers = std::move(writers).value();
    c.admins = std::move(admins).value();
  }
  return c;
}

Status generate_signing_key(const DaemonConfig& config) {
  if (std::filesystem::exists(config.signing_key)) {
    return fail(Errc::kAlreadyExists, "audit signing key " + config.signing_key.string() +
                                          " already exists; not replacing it");
  }
  auto signer = note::Signer::generate(config.origin);
  if (!signer) return error_of(signer);
  std::error_code ec;
  std::filesystem::create_directories(config.signing_key.parent_path(), ec);
  ENCLAVE_TRY(signer->save_pem(config.signing_key));
  return write_file_atomically(config.verifier_key, signer->verifier_key() + "\n", 0644);
}

struct Daemon::Impl : ipc::Handler {
  DaemonConfig config;
  LogStore store;
  note::Signer signer;
  note::Verifier verifier;
  uid_t own_uid = ::getuid();

  // Writer-thread state (no lock: only the writer touches it after open()).
  tiles::TileWriter tree;  // the compact range of every entry, and the nodes each batch completes
  std::uint64_t sealed = 0;
  Clock::time_point last_seal = Clock::now();
  // Off-box copying runs on its own thread (sink_thread), so its fsyncs never delay an
  // append. The sinks belong to that thread once the daemon runs; the rest is under sink_mu.
  struct SinkJob {
    std::uint64_t size;
    std::int64_t time_us;
    std::string note;
  };
  std::vector<OffboxFile> offbox_files;
  std::vector<SyslogSink> syslog_sinks;
  std::mutex sink_mu;
  std::condition_variable sink_wake;  // a job, or the end
  std::condition_variable sink_done;  // a job was carried out
  std::deque<SinkJob> sink_jobs;
  bool sink_stop = false;
  std::uint64_t unsent_first = 0;  // unsent_hashes[i] is the leaf hash of entry unsent_first+i
  std::vector<merkle::Hash> unsent_hashes;
  std::uint64_t copied_everywhere = 0;  // every off-box file holds the leaves below this
  // A forced checkpoint is answered by the sink thread once the job that copies it is done:
  // an operator seals before a backup or maintenance, and the off-box copy is the point.
  struct CopyWaiter {
    std::uint64_t job;  // answered once sink_jobs_done reaches this
    std::uint64_t size;
    std::string note;
    ipc::Responder respond;
  };
  std::uint64_t sink_jobs_queued = 0, sink_jobs_done = 0;
  std::vector<CopyWaiter> copy_waiters;

  // Shared between the socket thread and the writer.
  std::mutex mu;
  std::condition_variable wake;
  std::condition_variable wake_checkpointer;  // only to end it promptly at shutdown
  std::deque<PendingAppend> queue;
  std::vector<Control> controls;
  bool stopping = false;
  std::atomic<std::uint64_t> size_seen{0}, sealed_seen{0};
  std::atomic<std::int64_t> last_seal_time_us{0};
  std::vector<std::string> sink_errors;  // guarded by mu
  Counters counters;

  boost::asio::io_context io;
  std::unique_ptr<ipc::Server> server;

  Impl(DaemonConfig c, LogStore s, note::Signer k)
      : config(std::move(c)),
        store(std::move(s)),
        signer(std::move(k)),
        verifier(signer.verifier()) {}

  // ---- start-up ----------------------------------------------------------------------------

  Status check_key() {
    auto recorded = store.meta("verifier_key");
    if (!recorded) return error_of(recorded);
    if (!*recorded) return store.set_meta("verifier_key", signer.verifier_key());
    if (**recorded != signer.verifier_key()) {
      return fail(Errc::kConflict, "signing key " + config.signing_key.string() + " (" +
                                       signer.verifier_key() +
                                       ") is not the key this log was "
                                       "started with (" +
                                       **recorded + ")");
    }
    return {};
  }

  // Rebuilds the tree from the stored leaf hashes and refuses a log that no longer reproduces
  // its own latest checkpoint: sealing on top of a changed history would launder the change.
  // Also loads the leaf hashes the off-box files have not received yet.
  Status rebuild() {
    const std::string db = config.database.string();
    auto archives = store.archives();
    if (!archives) return error_of(archives);
    tree = tiles::TileWriter(archived_prefix(*archives).value_or(merkle::CompactRange{}));
    const std::uint64_t live_start = tree.size();
    auto end = store.end_index();
    if (!end) return error_of(end);
    auto latest = store.latest_checkpoint();
    if (!latest) return error_of(latest);
    std::optional<note::Checkpoint> seal;
    if (*latest) {
      auto opened = note::open_checkpoint(as_bytes((*latest)->note), verifier, config.origin);
      if (!opened) {
        return fail(Errc::kCorrupt, db + ": its latest checkpoint (size " +
                                        std::to_string((*latest)->size) +
                                        ") does not verify: " + opened.error().describe());
      }
      seal = *opened;
      last_seal_time_us = (*latest)->time_us;
    }
    unsent_first = *end;
    for (const auto& f : offbox_files) {
      if (f.position() < live_start) {
        return fail(Errc::kConflict,
                    "off-box file " + f.path().string() + " holds " + std::to_string(f.position()) +
                        " leaves but entries "
                        "before " +
                        std::to_string(live_start) + " are archived; restore the full copy");
      }
      if (f.position() > *end) {
        return fail(Errc::kCorrupt, "off-box file " + f.path().string() + " holds " +
                                        std::to_string(f.position()) + " leaves but " + db +
                                        " only " + std::to_string(*end) +
                                        ": the database lost sealed entries");
      }
      unsent_first = std::min(unsent_first, f.position());
    }
    copied_everywhere = unsent_first;
    bool seal_checked = false;
    auto check_seal = [&]() -> Status {
      if (!seal || seal_checked || tree.size() != seal->size) return {};
      seal_checked = true;
      if (tree.root() == seal->root) return {};
      return fail(Errc::kCorrupt, db +
                                      ": its entries no longer reproduce its latest checkpoint "
                                      "(size " +
                                      std::to_string(seal->size) +
                                      "); run `enclave-audit verify` to see which changed");
    };
    ENCLAVE_TRY(check_seal());
    Status problem;
    ENCLAVE_TRY(store.scan_hashes(live_start, [&](std::uint64_t idx, const merkle::Hash& h) {
      if (!problem) return;
      if (idx != tree.size()) {
        problem = fail(Errc::kCorrupt, db + ": entry " + std::to_string(tree.size()) +
                                           " is missing; run `enclave-audit verify`");
        return;
      }
      if (idx >= unsent_first) unsent_hashes.push_back(h);
      (void)tree.append(std::span(&h, 1));  // its nodes were stored with it
      problem = check_seal();
    }));
    ENCLAVE_TRY(problem);
    if (seal && !seal_checked) {
      return fail(Errc::kCorrupt, db + ": the log holds " + std::to_string(tree.size()) +
                                      " entries but its latest checkpoint seals " +
                                      std::to_string(seal->size) + "; run `enclave-audit verify`");
    }
    sealed = seal ? seal->size : live_start;
    ENCLAVE_TRY(check_clean_stop());
    // The unsealed tail is what the next checkpoint will sign: its rows must still hold what
    // was appended.
    ENCLAVE_TRY(store.scan(sealed, [&](const StoredEvent& row) {
      if (merkle::leaf_hash(encode_leaf(row.event)) == row.stored_hash) return true;
      problem = fail(Errc::kCorrupt, db + ": unsealed entry " + std::to_string(row.index) +
                                         " was changed after it was appended");
      return false;
    }));
    ENCLAVE_TRY(problem);
    size_seen = tree.size();
    sealed_seen = sealed;
    return {};
  }

  // After a clean stop the log must end where that stop sealed it.
  Status check_clean_stop() {
    auto stopped_at = store.meta("stopped_at");
    if (!stopped_at) return error_of(stopped_at);
    if (!*stopped_at || (*stopped_at)->empty()) return {};
    if (**stopped_at != std::to_string(tree.size())) {
      return fail(Errc::kCorrupt, config.database.string() + ": the daemon stopped cleanly at " +
                                      **stopped_at + " entries, but the log now holds " +
                                      std::to_string(tree.size()) +
                                      ": rows were added or removed while it was stopped; run "
                                      "`enclave-audit verify`");
    }
    return store.set_meta("stopped_at", "");
  }

  Status open_sinks() {
    for (const auto& path : config.offbox_files) {
      std::error_code ec;
      std::filesystem::create_directories(path.parent_path(), ec);
      auto file = OffboxFile::open(path);
      if (!file) return error_of(file);
      offbox_files.push_back(std::move(file).value());
    }
    formats::SyslogOptions options;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) == 0) options.hostname = host;
    options.app_name = "enclave-auditd";
    for (const auto& target : config.offbox_syslog) {
      auto sink = SyslogSink::open(target, options);
      if (!sink) return error_of(sink);
      syslog_sinks.push_back(std::move(sink).value());
    }
    return {};
  }

  // ---- requests (socket thread) ------------------------------------------------------------

  bool may_write(const ipc::PeerCredentials& peer) const {
    return peer.uid == own_uid || peer.uid == 0 || contains(config.writers, peer.user) ||
           contains(config.admins, peer.user);
  }
  bool is_admin(const ipc::PeerCredentials& peer) const {
    return peer.uid == own_uid || peer.uid == 0 || contains(config.admins, peer.user);
  }

  static std::string source_of(const ipc::PeerCredentials& peer) {
    return peer.command.empty() ? peer.user : peer.user + ":" + peer.command;
  }

  // The daemon's own record of something it refused or did; never acknowledged to anyone.
  void record(std::string type, std::string outcome, const ipc::PeerCredentials* peer,
              std::string object, nlohmann::json details) {
    Event e;
    e.source = "enclave-auditd";
    e.actor_kind = peer ? "user" : "service";
    e.actor = peer ? peer->user : "enclave-auditd";
    e.type = std::move(type);
    e.outcome = std::move(outcome);
    e.object = std::move(object).substr(0, kMaxShortField);
    if (peer)
      details["peer"] = {{"uid", peer->uid}, {"pid", peer->pid}, {"command", peer->command}};
    e.details = details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (e.details.size() > kMaxDetails) e.details = "{}";
    std::lock_guard lock(mu);
    if (queue.size() >= config.max_queue) {
      counters.queue_full++;  // a flood of refusals must not grow memory; the count remains
      return;
    }
    queue.push_back({std::move(e), nullptr, 0});
    wake.notify_one();
  }

  void on_refused(const ipc::PeerCredentials& peer, const std::string& reason) override {
    counters.rejected++;
    record("audit.refused", "refused", &peer, "connection", {{"reason", reason}});
  }

  void handle(const ipc::PeerCredentials& peer, ipc::Request request,
              ipc::Responder respond) override {
    const auto& m = request.method;
    if (m == "audit.append") return append(peer, std::move(request), std::move(respond));
    if (m == "audit.status") return respond(ipc::Response::success(request.id, status()));
    if (m == "audit.checkpoint" || m == "audit.archive") {
      if (!is_admin(peer)) {
        counters.rejected++;
        record("audit.refused", "refused", &peer, m, {{"reason", "not an audit admin"}});
        return respond(ipc::Response::failure(
            request.id,
            {Errc::kPermission, m + " is for audit admins; " + peer.user + " is not one"}));
      }
      Control c{Control::Kind::kCheckpoint, 0, std::move(respond)};
      if (m == "audit.archive") {
        auto before = request.params.find("before");
        std::optional<std::int64_t> before_us;
        if (before != request.params.end() && before->is_string()) {
          before_us = parse_time_us(before->get_ref<const std::string&>());
        }
        if (!before_us) {
          return c.respond(ipc::Response::failure(
              request.id,
              {Errc::kInvalidArgument, "audit.archive needs \"before\": a date or RFC 3339 time"}));
        }
        c.kind = Control::Kind::kArchive;
        c.before_us = *before_us;
      }
      auto id = request.id;
      auto inner = std::move(c.respond);
      c.respond = [id, inner = std::move(inner)](ipc::Response r) {
        r.id = id;
        inner(std::move(r));
      };
      std::lock_guard lock(mu);
      controls.push_back(std::move(c));
      wake.notify_one();
      return;
    }
    counters.rejected++;
    respond(ipc::Response::failure(request.id,
                                   {Errc::kInvalidArgument, "unknown method " + m.substr(0, 64)}));
  }

  void append(const ipc::PeerCredentials& peer, ipc::Request request, ipc::Responder respond) {
    if (!may_write(peer)) {
      counters.rejected++;
      record("audit.refused", "refused", &peer, "audit.append", {{"reason", "not a writer"}});
      return respond(ipc::Response::failure(
          request.id, {Errc::kPermission, peer.user + " may not append to the audit log"}));
    }
    auto event = event_from_json(request.params);
    if (!event) {
      counters.rejected++;
      record("audit.rejected", "refused", &peer, "audit.append",
             {{"reason", event.error().describe()}});
      return respond(ipc::Response::failure(
          request.id, {Errc::kInvalidArgument, "malformed event: " + event.error().describe()}));
    }
    event->source = source_of(peer);
    std::unique_lock lock(mu);
    if (queue.size() >= config.max_queue) {
      lock.unlock();
      counters.queue_full++;
      return respond(ipc::Response::failure(
          request.id, {Errc::kUnavailable, "audit queue full (" + std::to_string(config.max_queue) +
                                               " appends waiting); retry"}));
    }
    queue.push_back({std::move(event).value(), std::move(respond), request.id});
    wake.notify_one();
  }

  nlohmann::json status() {
    // Sealed first: the writer raises size_seen before sealed_seen, so sealed <= size here.
    const std::uint64_t sealed_now = sealed_seen.load();
    const std::uint64_t size_now = size_seen.load();
    nlohmann::json sinks = nlohmann::json::array();
    std::size_t depth;
    {
      std::lock_guard lock(mu);
      depth = queue.size();
      for (const auto& e : sink_errors) sinks.push_back(e);
    }
    return {{"origin", config.origin},
            {"size", size_now},
            {"sealed", sealed_now},
            {"last_checkpoint", last_seal_time_us.load() ? format_time_us(last_seal_time_us) : ""},
            {"queue", depth},
            {"appended", counters.appended.load()},
            {"append_failures", counters.append_failures.load()},
            {"rejected", counters.rejected.load()},
            {"queue_full", counters.queue_full.load()},
            {"batches", counters.batches.load()},
            {"checkpoints", counters.checkpoints.load()},
            {"sink_errors", sinks},
            {"verifier_key", signer.verifier_key()}};
  }

  // ---- WAL checkpoints ---------------------------------------------------------------------

  // WAL checkpoints copy committed pages into the database file and sync it. Left to SQLite
  // they run inside whichever commit crosses a threshold and stall every append queued behind
  // it. Here this thread does the bulk of the copying on its own connection, every 100 ms, in
  // PASSIVE mode, which never blocks the writer (a RESTART would, for as long as any auditor
  // holds a read transaction). Under a steady stream of commits a passive checkpoint from
  // here never quite finishes, and the WAL only starts over once one finishes: the writer
  // finishes it itself (see reset_wal).
  void wal_checkpointer() {
    auto own = LogStore::open(config.database, {});
    if (!own) {
      spdlog::error("WAL checkpoints disabled: {}", own.error().describe());
      return;
    }
    std::unique_lock lock(mu);
    while (!stopping) {
      wake_checkpointer.wait_for(lock, std::chrono::milliseconds(100));
      if (stopping) break;
      lock.unlock();
      if (auto done = own->database().exec("PRAGMA wal_checkpoint(PASSIVE)"); !done) {
        spdlog::warn("WAL checkpoint: {}", done.error().describe());
      }
      lock.lock();
    }
  }

  // Frames in the WAL after the writer's last commit (sqlite3_wal_hook; writer thread only).
  std::int64_t wal_frames = 0;
  static constexpr std::int64_t kWalResetFrames = 4096;   // 16 MiB of 4 KiB pages: when idle
  static constexpr std::int64_t kWalForceFrames = 16384;  // 64 MiB: even under load

  static int on_wal_commit(void* self, sqlite3*, const char*, int frames) {
    static_cast<Impl*>(self)->wal_frames = frames;
    return SQLITE_OK;
  }

  // The writer finishes the background thread's checkpoint (only the few frames it has not
  // copied yet are left), so the next commit starts the WAL over. Done when no append waits,
  // or regardless once the WAL is large.
  void reset_wal(bool idle) {
    if (wal_frames < kWalResetFrames || (!idle && wal_frames < kWalForceFrames)) return;
    if (auto done = store.database().exec("PRAGMA wal_checkpoint(PASSIVE)"); !done) {
      spdlog::warn("WAL checkpoint: {}", done.error().describe());
    }
    wal_frames = 0;
  }

  // ---- the writer thread -------------------------------------------------------------------

  void writer() {
    std::vector<PendingAppend> batch;
    std::size_t last_batch = 0;
    for (;;) {
      std::vector<Control> work;
      bool last = false;
      {
        std::unique_lock lock(mu);
        auto due = [&] { return !queue.empty() || !controls.empty() || stopping; };
        if (sealed < tree.size()) {
          wake.wait_until(lock, last_seal + config.checkpoint_every, due);
        } else {
          wake.wait(lock, due);
        }
        // Group commit gathers: when the last batch was bigger than what is queued now, the
        // clients it answered are likely sending again; waiting a moment for them turns
        // several fsyncs into one. At low load batches are single and nobody waits.
        if (!queue.empty() && queue.size() < last_batch && controls.empty() && !stopping) {
          wake.wait_for(lock, config.gather,
                        [&] { return queue.size() >= last_batch || stopping; });
        }
        std::size_t n = std::min(queue.size(), config.max_batch);
        batch.clear();
        for (std::size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
        work.swap(controls);
        last = stopping && queue.empty();
        last_batch = n;
      }
      if (!batch.empty()) {
        commit(batch);
        bool idle;
        {
          std::lock_guard lock(mu);
          idle = queue.empty();
        }
        reset_wal(idle);
      }
      for (auto& c : work) {
        if (c.kind == Control::Kind::kCheckpoint) {
          forced_checkpoint(std::move(c.respond));
        } else {
          c.respond(archive(c.before_us));
        }
      }
      if (last && !work.empty()) {
        std::lock_guard lock(mu);
        last = queue.empty();  // an archive records itself: commit that before the last seal
      }
      if (sealed < tree.size() && (tree.size() - sealed >= config.checkpoint_every_entries ||
                                   Clock::now() - last_seal >= config.checkpoint_every)) {
        (void)checkpoint();
      }
      if (last) {
        // A clean stop seals everything and says so; rows found past this size at the next
        // start were added while no daemon ran (a crash leaves no mark, and its tail is real).
        if (checkpoint() && sealed == tree.size()) {
          if (auto marked = store.set_meta("stopped_at", std::to_string(sealed)); !marked) {
            spdlog::error("could not record the clean stop: {}", marked.error().describe());
          }
        }
        io.stop();  // run() returns once the tail is sealed
        return;
      }
    }
  }

  // Commits a batch. When the batch makes a checkpoint due, the checkpoint is signed over the
  // tree the batch grows and stored in the same transaction: one fsync for both.
  void commit(std::vector<PendingAppend>& batch) {
    std::vector<Event> events;
    events.reserve(batch.size());
    const std::int64_t time = now_us();
    for (auto& p : batch) {
      p.event.time_us = time;
      events.push_back(std::move(p.event));
    }
    const std::uint64_t first = tree.size();
    auto hashes = leaf_hashes(events);
    auto grown = tree;
    auto nodes = grown.append(hashes);
    std::optional<StoredCheckpoint> seal;
    if (grown.size() - sealed >= config.checkpoint_every_entries ||
        Clock::now() - last_seal >= config.checkpoint_every) {
      seal = StoredCheckpoint{grown.size(), time, sign(grown)};
    }
    if (auto stored = store.append(first, events, hashes, nodes, seal ? &*seal : nullptr);
        !stored) {
      counters.append_failures += batch.size();
      spdlog::error("could not store {} audit events: {}", batch.size(), stored.error().describe());
      for (auto& p : batch) {
        if (p.respond) p.respond(ipc::Response::failure(p.id, stored.error()));
      }
      return;
    }
    tree = std::move(grown);
    counters.batches++;
    counters.appended += batch.size();
    {
      std::lock_guard lock(sink_mu);
      unsent_hashes.insert(unsent_hashes.end(), hashes.begin(), hashes.end());
    }
    // Published before the acknowledgements: a client that saw its append acknowledged and
    // then asks audit.status must find the log at least that long.
    size_seen = tree.size();
    if (seal) sealed_by(*seal);
    const std::string time_text = format_time_us(time);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].respond) {
        batch[i].respond(ipc::Response::success(
            batch[i].id,
            {{"index", first + i}, {"leaf_hash", base64_encode(hashes[i])}, {"time", time_text}}));
      }
    }
  }

  std::string sign(const tiles::TileWriter& at) const {
    note::Checkpoint cp{config.origin, at.size(), at.root(), {}};
    return note::format_note(signer.sign_note(note::format_checkpoint(cp)));
  }

  // A checkpoint is durable in the database: the log is sealed to its size; copy it off the box.
  void sealed_by(const StoredCheckpoint& c) {
    sealed = c.size;
    sealed_seen = sealed;
    last_seal = Clock::now();
    last_seal_time_us = c.time_us;
    counters.checkpoints++;
    std::lock_guard lock(sink_mu);
    sink_jobs.push_back({c.size, c.time_us, c.note});
    ++sink_jobs_queued;
    sink_wake.notify_one();
  }

  // Signs and stores a checkpoint of the whole log on its own (the interval passed with no
  // batch to carry it, a forced seal, shutdown), then copies it off the box.
  Expected<std::string> checkpoint() {
    last_seal = Clock::now();  // a failure is retried after the interval, not in a loop
    if (sealed == tree.size()) return std::string();
    StoredCheckpoint c{tree.size(), now_us(), sign(tree)};
    if (auto stored = store.add_checkpoint(c); !stored) {
      spdlog::error("could not store the checkpoint of size {}: {}", c.size,
                    stored.error().describe());
      return error_of(stored);
    }
    sealed_by(c);
    return c.note;
  }

  // Copies each checkpoint, with the leaf hashes it seals, to every off-box file, and the
  // checkpoint to every syslog collector. A file that failed gets every leaf it lacks with
  // the next checkpoint. Returns once stopped with nothing left to copy.
  void sink_thread() {
    for (;;) {
      SinkJob job;
      std::vector<std::vector<merkle::Hash>> leaves(offbox_files.size());
      {
        std::unique_lock lock(sink_mu);
        sink_wake.wait(lock, [&] { return !sink_jobs.empty() || sink_stop; });
        if (sink_jobs.empty()) return;
        job = std::move(sink_jobs.front());
        sink_jobs.pop_front();
        for (std::size_t i = 0; i < offbox_files.size(); ++i) {
          auto from = unsent_hashes.begin() +
                      static_cast<std::ptrdiff_t>(offbox_files[i].position() - unsent_first);
          leaves[i].assign(
              from, from + static_cast<std::ptrdiff_t>(job.size - offbox_files[i].position()));
        }
      }
      std::vector<std::string> errors;
      std::uint64_t everywhere = job.size;
      for (std::size_t i = 0; i < offbox_files.size(); ++i) {
        if (auto w = offbox_files[i].write(leaves[i], job.time_us, job.note); !w) {
          spdlog::error("could not copy the checkpoint off the box: {}", w.error().describe());
          errors.push_back(w.error().describe());
        }
        everywhere = std::min(everywhere, offbox_files[i].position());
      }
      for (auto& s : syslog_sinks) {
        if (auto sent = s.send_checkpoint(job.time_us, job.note); !sent) {
          spdlog::error("could not send the checkpoint to syslog: {}", sent.error().describe());
          errors.push_back(sent.error().describe());
        }
      }
      std::vector<CopyWaiter> answered;
      {
        std::lock_guard lock(sink_mu);
        unsent_hashes.erase(
            unsent_hashes.begin(),
            unsent_hashes.begin() + static_cast<std::ptrdiff_t>(everywhere - unsent_first));
        unsent_first = everywhere;
        copied_everywhere = everywhere;
        ++sink_jobs_done;
        auto done =
            std::stable_partition(copy_waiters.begin(), copy_waiters.end(),
                                  [&](const CopyWaiter& w) { return w.job > sink_jobs_done; });
        answered.assign(std::make_move_iterator(done), std::make_move_iterator(copy_waiters.end()));
        copy_waiters.erase(done, copy_waiters.end());
        sink_done.notify_all();
      }
      for (auto& w : answered) w.respond(copy_result(w, errors));
      std::lock_guard lock(mu);
      sink_errors = std::move(errors);
    }
  }

  // The answer to a forced checkpoint: sealed, and copied off the box or why not.
  static ipc::Response copy_result(const CopyWaiter& w, const std::vector<std::string>& errors) {
    if (errors.empty()) return ipc::Response::success(0, {{"size", w.size}, {"note", w.note}});
    std::string why;
    for (const auto& e : errors) why += (why.empty() ? "" : "; ") + e;
    return ipc::Response::failure(
        0, {Errc::kIo, "sealed " + std::to_string(w.size) +
                           " entries, but the checkpoint did not reach every off-box sink (" + why +
                           "); the next checkpoint carries what is missing"});
  }

  // Seals now; the sink thread answers once the latest seal's copy is done (at once when it
  // already is), so the writer never waits for an off-box sink.
  void forced_checkpoint(ipc::Responder respond) {
    if (auto sealed_now = checkpoint(); !sealed_now) {
      return respond(ipc::Response::failure(0, sealed_now.error()));
    }
    CopyWaiter waiter{0, sealed, latest_note(), std::move(respond)};
    {
      std::lock_guard lock(sink_mu);
      if (sink_jobs_done < sink_jobs_queued) {
        waiter.job = sink_jobs_queued;
        copy_waiters.push_back(std::move(waiter));
        return;
      }
    }
    waiter.respond(ipc::Response::success(0, {{"size", waiter.size}, {"note", waiter.note}}));
  }

  std::string latest_note() {
    auto latest = store.latest_checkpoint();
    return latest && *latest ? (*latest)->note : std::string();
  }

  // Moves the sealed entries older than `before` to a sealed archive file and drops them from
  // the database. The archive ends at a checkpoint, so it can be checked alone.
  ipc::Response archive(std::int64_t before_us) {
    auto result = archive_range(before_us);
    if (!result) {
      record("audit.archive", "error", nullptr, "", {{"reason", result.error().describe()}});
      return ipc::Response::failure(0, result.error());
    }
    record("audit.archive", "success", nullptr, (*result)["file"].get<std::string>(), *result);
    return ipc::Response::success(0, *result);
  }

  Expected<nlohmann::json> archive_range(std::int64_t before_us) {
    if (auto sealed_now = checkpoint(); !sealed_now) return error_of(sealed_now);
    auto archives = store.archives();
    if (!archives) return error_of(archives);
    const std::uint64_t first = archives->empty() ? 0 : archives->back().end;
    Query newer;
    newer.since_us = before_us;
    newer.limit = 1;
    auto next = store.query(newer);
    if (!next) return error_of(next);
    const std::uint64_t cut = next->empty() ? sealed : std::min(sealed, next->front().index);
    auto checkpoints = store.checkpoints();
    if (!checkpoints) return error_of(checkpoints);
    const StoredCheckpoint* at_end = nullptr;
    for (const auto& c : *checkpoints) {
      if (c.size > first && c.size <= cut) at_end = &c;
    }
    if (!at_end) {
      return fail(Errc::kInvalidArgument,
                  "no checkpoint ends a range of entries older than " + format_time_us(before_us) +
                      " (live entries start at " + std::to_string(first) + ")");
    }
    const std::uint64_t end = at_end->size;
    if (!offbox_files.empty()) {
      std::unique_lock lock(sink_mu);
      if (!sink_done.wait_for(lock, std::chrono::seconds(30),
                              [&] { return copied_everywhere >= end; })) {
        return fail(Errc::kUnavailable, "the off-box copies have not received entries up to " +
                                            std::to_string(end) + "; archive later");
      }
    }
    archive::Archive a;
    a.origin = config.origin;
    a.first = first;
    a.end = end;
    a.created_us = now_us();
    a.prefix = archived_prefix(*archives).value_or(merkle::CompactRange{});
    a.checkpoint_note = at_end->note;
    std::string content = archive::format_header(a);
    merkle::CompactRange at = a.prefix;
    ENCLAVE_TRY(store.scan(first, [&](const StoredEvent& row) {
      if (row.index >= end) return false;
      content += archive::format_event(row.index, row.event);
      at.append(merkle::leaf_hash(encode_leaf(row.event)));
      return true;
    }));
    content += archive::format_checkpoint(a.checkpoint_note);
    auto cp = note::open_checkpoint(as_bytes(a.checkpoint_note), verifier, config.origin);
    if (!cp || at.size() != end || at.root() != cp->root) {
      return fail(Errc::kCorrupt, "entries " + std::to_string(first) + " to " +
                                      std::to_string(end - 1) +
                                      " no longer reproduce their checkpoint; not archiving a "
                                      "changed history (run `enclave-audit verify`)");
    }
    std::error_code ec;
    std::filesystem::create_directories(config.archive_dir, ec);
    auto path = config.archive_dir /
                ("audit-" + std::to_string(first) + "-" + std::to_string(end) + ".archive");
    ENCLAVE_TRY(write_file_atomically(path, content, 0640));
    ArchiveRecord record{first, end, a.created_us, path.string(), sha256_hex(as_bytes(content)),
                         at};
    ENCLAVE_TRY(store.drop_archived(record));
    return nlohmann::json{{"file", path.string()},
                          {"first", first},
                          {"end", end},
                          {"entries", end - first},
                          {"sha256", record.sha256_hex}};
  }
};

Expected<std::unique_ptr<Daemon>> Daemon::open(DaemonConfig config) {
  auto signer = note::Signer::load_pem(config.signing_key, config.origin);
  if (!signer) {
    auto e = signer.error();
    if (e.code == Errc::kNotFound) e.message += " (create it with `enclave-auditd keygen`)";
    return Unexpected<Error>{e};
  }
  std::error_code ec;
  std::filesystem::create_directories(config.database.parent_path(), ec);
  store::OpenOptions options;
  options.sync = store::Sync::kFull;
  auto store = LogStore::open(config.database, options);
  if (!store) return error_of(store);
  // Checkpoints: see wal_checkpointer (the hook set below replaces SQLite's automatic ones).
  // The size limit truncates the WAL file back each time it starts over.
  ENCLAVE_TRY(
      store->database().exec("PRAGMA journal_size_limit = 67108864; PRAGMA cache_size = -65536"));
  auto impl = std::make_unique<Impl>(std::move(config), std::move(store).value(),
                                     std::move(signer).value());
  sqlite3_wal_hook(impl->store.database().handle(), &Impl::on_wal_commit, impl.get());
  ENCLAVE_TRY(impl->check_key());
  ENCLAVE_TRY(impl->open_sinks());
  ENCLAVE_TRY(impl->rebuild());
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() = default;

Status Daemon::run() {
  Impl& d = *impl_;
  ipc::ServerOptions options;
  options.socket_path = d.config.socket;
  options.authorize = [&d](const ipc::PeerCredentials& peer) {
    return d.may_write(peer) || d.is_admin(peer);
  };
  std::error_code ec;
  std::filesystem::create_directories(d.config.socket.parent_path(), ec);
  // Signals are caught before the socket appears: whoever sees the socket may send SIGTERM.
  boost::asio::signal_set signals(d.io, SIGINT, SIGTERM);
  signals.async_wait([this](const boost::system::error_code& error, int) {
    if (!error) stop();
  });
  d.server = std::make_unique<ipc::Server>(d.io, options, d);
  ENCLAVE_TRY(d.server->start());
  d.record("audit.start", "success", nullptr, d.config.origin,
           {{"size", d.tree.size()},
            {"sealed", d.sealed},
            {"unsealed_found", d.tree.size() - d.sealed},
            {"key", d.signer.verifier_key()}});
  spdlog::info("serving {} entries ({} sealed) at {}", d.tree.size(), d.sealed,
               d.config.socket.string());
  std::thread writer([&d] { d.writer(); });
  std::thread checkpointer([&d] { d.wal_checkpointer(); });
  std::thread sinks([&d] { d.sink_thread(); });
  d.io.run();
  writer.join();
  {
    std::lock_guard lock(d.sink_mu);
    d.sink_stop = true;  // the writer sealed the tail: copy what is queued, then end
    d.sink_wake.notify_one();
  }
  sinks.join();
  d.wake_checkpointer.notify_one();
  checkpointer.join();
  spdlog::info("stopped with {} entries, all sealed", d.tree.size());
  return {};
}

void Daemon::stop() {
  Impl& d = *impl_;
  boost::asio::post(d.io, [&d] {
    if (d.server) d.server->stop();
    d.record("audit.stop", "success", nullptr, d.config.origin, nlohmann::json::object());
    {
      std::lock_guard lock(d.mu);
      d.stopping = true;
      d.wake.notify_one();
    }
  });
}

}  // namespace enclave::audit
