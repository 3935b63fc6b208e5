// export_load: load for the export service (issue 6, "Targets"): enclave-exportd's steward queue
// and its intake of large files, each timed against a peer in the same run.
//
//   export_load seed --db PATH --policies DIR --examples DIR [--requests 10000] [--projects 10]
//                    [--requesters 40] [--files a.csv,b.csv] [--compartment bench] [--tier bench]
//       fills exports.db (before enclave-exportd starts) through the product's own store
//       (exitcontrol::ExportStore): each request created as export.submit creates it, its files
//       checked by the service's own engine step (engine_check, once per example file: the rows
//       carry its real report) and saved as the check worker saves them, so every request is in
//       waiting_review, exactly as the service would have left it. Projects p-00, p-01, ...;
//       requesters bench-analyst-00, ...; created over the last 30 days, oldest first.
//   export_load make-files --dir DIR [--bytes 100000000]
//       writes bench-notes.txt (UTF-8 prose) and bench-outpatients.csv with its sidecar (a long
//       frequency table area x diagnosis x sex with exact "Total" margins and every count at
//       least 10, so it passes the default profile), each just under --bytes.
//   export_load queue --socket SOCK --as STEWARD --db PATH --steward-projects p-00,p-01,...
//                     [--project P] [--limit N] [--calls 50] [--warmup 3] [--peer-cpu 0]
//                     [--exportd-pid PID]
//       export.queue over the socket as a console reads it: one connection per call, page
//       after page (1,000 a page, each "after" the previous "next") until the whole queue is
//       read and parsed, or with --limit N the first page of N only; interleaved call by call
//       with the peer: the same SELECT as ExportStore::list, with the same bound values, run by
//       the sqlite3 command-line tool on the same database (-readonly, .mode json, .timer on;
//       its output read and parsed too), for the whole queue at once. Both must return the same
//       request ids. A refusal from the daemon is recorded with the time it took, not taken for
//       an error of the tool.
//   export_load run --times 20 [--expect N] -- COMMAND...
//       the wall time of a command that prints a queue ({"requests": [...]}) as JSON, e.g.
//       `enclavectl export queue --as STEWARD --json`, checked for N requests.
//   export_load submit --socket SOCK --outbox DIR --file NAME --policies DIR --ledger PATH
//                      --project P --scratch DIR [--profile acro-default] [--rounds 3]
//                      [--poll-ms 20] [--peer-cpu 0] [--exportd-pid PID]
//       each round: the peers (cp FILE DIR && sha256sum FILE; the same with the copy fsynced,
//       as the spool does), the engine's own time (engine_check, the step exportd's check
//       worker runs, on the same file with the same profile, project and ledger, on the
//       service's CPU), then export.submit with the session's token
//       (OUTBOX/.enclave-session) and export.status every --poll-ms until the request leaves
//       checking: it must reach waiting_review. The service's overhead is total - engine.
//   export_load summary --dir DIR
//       a human summary of the files bench.sh writes (any may be missing).
// Output: one JSON object on stdout.
#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.hpp"
#include "common/ipc/client.hpp"
#include "exitcontrol/cli/export_client.hpp"
#include "exitcontrol/review/request.hpp"
#include "exitcontrol/service/export_engine.hpp"
#include "exitcontrol/service/export_store.hpp"
#include "exitcontrol/service/spool.hpp"
#include "tests/bench/bench_support.hpp"

namespace {

using namespace enclave;
using Clock = std::chrono::steady_clock;
using nlohmann::json;
namespace fs = std::filesystem;
namespace review = exitcontrol::review;

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T must(Expected<T> value, const std::string& what) {
  if (!value) throw Failure(what + ": " + value.error().describe());
  return std::move(value).value();
}
void must(const Status& status, const std::string& what) {
  if (!status) throw Failure(what + ": " + status.error().describe());
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// n, mean and nearest-rank percentiles (with 3 rounds, p50 is the median).
json distribution(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto pct = [&](double p) {
    if (v.empty()) return 0.0;
    const auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::max<std::size_t>(rank, 1) - 1];
  };
  double sum = 0;
  for (double x : v) sum += x;
  json d = {{"n", v.size()},  {"mean", v.empty() ? 0.0 : sum / static_cast<double>(v.size())},
            {"min", pct(0)},  {"p50", pct(50)},
            {"p95", pct(95)}, {"max", v.empty() ? 0.0 : v.back()}};
  if (v.size() <= 5) d["values"] = v;  // a few rounds: every one
  return d;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = std::min(text.find(',', at), text.size());
    if (comma > at) out.push_back(text.substr(at, comma - at));
    at = comma + 1;
  }
  return out;
}

std::string two_digits(int i) {
  char text[16];
  std::snprintf(text, sizeof text, "%02d", i);
  return text;
}

// ---- child processes: the peers, sqlite3, enclavectl ----

struct Ran {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  double wall_ms = 0;  // fork to exit, the whole output read
  double cpu_ms = 0;   // the child's user + system time
};

// Runs argv to completion (PATH searched), stdin fed from `input`, stdout captured, stderr
// passed through; on CPU `cpu` when it is not negative.
Ran run_timed(const std::vector<std::string>& argv, int cpu = -1, const std::string& input = "") {
  int in_pipe[2], out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) {
    throw Failure(std::string("pipe: ") + std::strerror(errno));
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  if (pid < 0) throw Failure(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu, &set);
      ::sched_setaffinity(0, sizeof set, &set);
    }
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "export_load: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  // The inputs given here are a few lines, far below a pipe's capacity.
  if (!input.empty() && ::write(in_pipe[1], input.data(), input.size()) < 0) {
    std::fprintf(stderr, "export_load: writing to %s: %s\n", args[0], std::strerror(errno));
  }
  ::close(in_pipe[1]);
  Ran r;
  std::array<char, 1 << 16> buf{};
  for (;;) {
    const ssize_t n = ::read(out_pipe[0], buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  r.wall_ms = ms_between(t0, Clock::now());
  auto ms = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3;
  };
  r.cpu_ms = ms(usage.ru_utime) + ms(usage.ru_stime);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

double cpu_ms(int pid) {
  return pid ? bench::cpu_times(pid).total() * 1e3 : 0.0;
}

// ---- seed: exports.db through the product's own store ----

struct SeedOptions {
  fs::path db, policies, examples;
  int requests = 10000, projects = 10, requesters = 40;
  std::vector<std::string> files = {"outpatients_by_region.csv",
                                    "outpatients_adults_by_region.csv"};
  std::string compartment = "bench", tier = "bench", profile = "acro-default";
};

std::string project_name(int i) {
  return "p-" + two_digits(i);
}

json seed(const SeedOptions& o) {
  if (fs::exists(o.db)) throw Failure(o.db.string() + " exists: seed a fresh state directory");
  fs::create_directories(o.db.parent_path());
  // Each file checked once by the export service's own engine step; every request carries the
  // results. The ledger path does not exist (no earlier releases), as in a fresh state dir.
  auto check = exitcontrol::engine_check(o.policies, o.db.parent_path() / "no-ledger.db");
  std::vector<review::ExportFile> checked;
  for (const auto& name : o.files) {
    const fs::path path = o.examples / name;
    auto [sha256, size] = must(exitcontrol::hash_file(path), path.string());
    auto result = must(check(path, o.profile, project_name(0)), "checking " + path.string());
    if (result.outcome == exitcontrol::Outcome::kFail) {
      throw Failure(path.string() + " fails the " + o.profile +
                    " profile: seed with files that need no analyst's choice");
    }
    review::ExportFile f;
    f.index = static_cast<std::uint32_t>(checked.size());
    f.name = name;
    f.size = size;
    f.sha256 = sha256;
    f.checked = true;
    f.type = result.type;
    f.outcome = result.outcome;
    f.report_json = result.report_json;
    f.choice = review::Choice::kOriginal;  // what the check worker sets for pass and review
    checked.push_back(std::move(f));
  }

  auto store = must(exitcontrol::ExportStore::open(o.db), "opening " + o.db.string());
  const std::int64_t now = to_unix_ms(WallTime::clock::now());
  const std::int64_t span_ms = std::int64_t{30} * 24 * 3600 * 1000;
  const auto t0 = Clock::now();
  must(store.begin(), "begin");
  for (int i = 0; i < o.requests; ++i) {
    review::ExportRequest r;
    r.project = project_name(i % o.projects);
    r.compartment = o.compartment;
    r.session = "bench-session-" + std::to_string(i / 4);
    r.requester = "bench-analyst-" + two_digits(i % o.requesters);
    r.tier = o.tier;
    r.profile = o.profile;
    r.stewards_required = 1;
    r.justification = "Tables " + std::to_string(i % 9 + 1) + " and " + std::to_string(i % 9 + 2) +
                      " of the interim report: outpatients by region, all ages and adults, "
                      "fiscal 2023";
    // As export.submit stores it: checking, its files not checked yet.
    r.state = review::RequestState::kChecking;
    r.state_reason = "the engine is checking the files";
    r.created_ms = now - span_ms + span_ms * i / o.requests;
    for (const auto& f : checked) {
      review::ExportFile submitted;
      submitted.index = f.index;
      submitted.name = f.name;
      submitted.size = f.size;
      submitted.sha256 = f.sha256;
      r.files.push_back(std::move(submitted));
    }
    must(store.create(r), "creating request " + std::to_string(i));
    // As the check worker saves it once the engine is done.
    r.files = checked;
    review::settle(r, r.created_ms + 1500);
    if (r.state != review::RequestState::kWaitingReview) {
      throw Failure(std::string("a seeded request derives state ") +
                    review::request_state_name(r.state) + ", not waiting_review");
    }
    must(store.save(r), "saving " + review::request_label(r.id));
  }
  must(store.commit(), "commit");
  const double seconds = ms_between(t0, Clock::now()) / 1e3;
  json files = json::array();
  for (const auto& f : checked) {
    files.push_back({{"name", f.name},
                     {"size", f.size},
                     {"type", f.type},
                     {"outcome", exitcontrol::outcome_name(f.outcome)},
                     {"report_bytes", f.report_json.size()}});
  }
  return {{"scenario", "seed"},         {"database", o.db.string()},
          {"requests", o.requests},     {"projects", o.projects},
          {"requesters", o.requesters}, {"files_per_request", files},
          {"seconds", seconds},         {"database_bytes", fs::file_size(o.db)}};
}

// ---- make-files: a 100 MB text and a 100 MB frequency table ----

void write_whole(const fs::path& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
  out.close();
  if (!out) throw Failure("cannot write " + path.string());
}

// Prose-like lines of ASCII words, exactly `bytes` long.
std::string text_of(std::uint64_t bytes) {
  static const std::array<const char*, 24> kWords = {
      "the",   "patients", "region",    "model",   "estimate",  "interval", "cohort",      "of",
      "and",   "adjusted", "follow-up", "outcome", "incidence", "in",       "prefecture",  "with",
      "table", "analysis", "rate",      "per",     "thousand",  "years",    "sensitivity", "was"};
  std::mt19937 rng(17);
  std::uniform_int_distribution<std::size_t> word(0, kWords.size() - 1);
  std::string out;
  out.reserve(bytes);
  std::size_t line = 0;
  while (out.size() < bytes) {
    const std::string w = kWords[word(rng)];
    if (line + w.size() + 1 > 88) {
      out += ".\n";
      line = 0;
      continue;
    }
    if (line) out += ' ';
    out += w;
    line += w.size() + 1;
  }
  out.resize(bytes);
  out.back() = '\n';
  return out;
}

// A long-form frequency table area x diagnosis x sex with "Total" margins in every dimension:
// area blocks are added while the file stays under `bytes`, then the area-total block.
struct Table {
  std::string csv;
  std::size_t areas = 0, cells = 0;
};
constexpr int kDiagnoses = 1000;

Table table_of(std::uint64_t bytes) {
  std::mt19937 rng(23);
  std::uniform_int_distribution<int> count(10, 999);  // every leaf passes a threshold of 10
  const std::size_t per_area = (kDiagnoses + 1) * 3;
  std::vector<std::int64_t> all_areas(per_area, 0);  // the area-total block
  auto label = [](const char* prefix, std::size_t i) {
    char text[32];
    std::snprintf(text, sizeof text, "%s%04zu", prefix, i);
    return std::string(text);
  };
  std::vector<std::string> diagnoses = {"Total"};
  for (int d = 1; d <= kDiagnoses; ++d) diagnoses.push_back(label("dx-", d));
  auto block = [&](const std::string& area, const std::vector<std::int64_t>& v) {
    static const char* kSex[3] = {"Total", "F", "M"};
    std::string out;
    for (int d = 0; d <= kDiagnoses; ++d) {
      for (int s = 0; s < 3; ++s) {
        out += area + ',' + diagnoses[d] + ',' + kSex[s] + ',' +
               std::to_string(v[static_cast<std::size_t>(d) * 3 + s]) + '\n';
      }
    }
    return out;
  };
  Table t;
  t.csv = "area,diagnosis,sex,patients\n";
  std::size_t last_block = 0;
  std::vector<std::int64_t> v(per_area);
  while (t.csv.size() + 2 * last_block + 64 < bytes) {
    std::fill(v.begin(), v.end(), 0);
    for (int d = 1; d <= kDiagnoses; ++d) {
      for (int s = 1; s < 3; ++s) {
        const int x = count(rng);
        v[static_cast<std::size_t>(d) * 3 + s] = x;
        v[static_cast<std::size_t>(d) * 3] += x;  // the sex total
        v[s] += x;                                // the diagnosis total
        v[0] += x;
      }
    }
    for (std::size_t i = 0; i < per_area; ++i) all_areas[i] += v[i];
    const std::string rows = block(label("area-", ++t.areas), v);
    last_block = rows.size();
    t.csv += rows;
  }
  t.csv += block("Total", all_areas);
  t.cells = (t.areas + 1) * per_area;
  if (t.csv.size() > bytes) throw Failure("the table came out larger than asked");
  return t;
}

constexpr const char* kTableSidecar =
    R"(# export_load make-files: outpatients by area, diagnosis and sex (synthetic).
kind = "frequency"
layout = "long"
total_label = "Total"
value = "patients"
population = "bench-outpatients"

[[dimension]]
name = "area"

[[dimension]]
name = "diagnosis"

[[dimension]]
name = "sex"
)";

json make_files(const fs::path& dir, std::uint64_t bytes) {
  fs::create_directories(dir);
  const std::string text = text_of(bytes);
  write_whole(dir / "bench-notes.txt", text);
  const Table table = table_of(bytes);
  write_whole(dir / "bench-outpatients.csv", table.csv);
  write_whole(dir / "bench-outpatients.csv.meta.toml", kTableSidecar);
  return {{"scenario", "make-files"},
          {"text", {{"name", "bench-notes.txt"}, {"bytes", text.size()}}},
          {"table",
           {{"name", "bench-outpatients.csv"},
            {"bytes", table.csv.size()},
            {"areas", table.areas},
            {"diagnoses", kDiagnoses},
            {"cells", table.cells}}}};
}

// ---- queue: export.queue against sqlite3 on the same database ----

// ExportStore::list's statement for a steward's queue (waiting_review, the steward's projects,
// never their own requests), in the order it binds its values; projects sorted as its std::set.
std::pair<std::string, std::vector<std::string>> queue_statement(std::set<std::string> projects,
                                                                 const std::string& steward,
                                                                 std::size_t limit) {
  std::string sql =
      "SELECT id, project, compartment, requester, tier, state, state_reason, stewards_required, "
      "files, waiting_files, created_ms, updated_ms, justification FROM requests WHERE 1";
  std::vector<std::string> values = {"waiting_review"};
  sql += " AND state IN (?1) AND project IN (";
  for (const auto& p : projects) {
    sql += (values.size() > 1 ? ", ?" : "?") + std::to_string(values.size() + 1);
    values.push_back(p);
  }
  sql += ") AND requester <> ?" + std::to_string(values.size() + 1);
  values.push_back(steward);
  sql += " ORDER BY id";
  if (limit > 0) sql += " LIMIT " + std::to_string(limit);
  return {sql, values};
}

struct PeerRun {
  Ran ran;
  std::vector<std::int64_t> ids;
  double query_ms = 0, query_cpu_ms = 0;  // sqlite3's own .timer
};

PeerRun run_sqlite(const fs::path& db, const std::string& script, int cpu) {
  PeerRun p;
  p.ran = run_timed({"sqlite3", "-readonly", db.string()}, cpu, script);
  if (p.ran.exit_code != 0) {
    throw Failure("sqlite3 exited with " + std::to_string(p.ran.exit_code) + ": " + p.ran.out);
  }
  const auto timer = p.ran.out.rfind("Run Time: real ");
  if (timer == std::string::npos) throw Failure("sqlite3 printed no timer: " + p.ran.out);
  double real = 0, user = 0, sys = 0;
  if (std::sscanf(p.ran.out.c_str() + timer, "Run Time: real %lf user %lf sys %lf", &real, &user,
                  &sys) != 3) {
    throw Failure("sqlite3's timer line does not read: " + p.ran.out.substr(timer));
  }
  p.query_ms = real * 1e3;
  p.query_cpu_ms = (user + sys) * 1e3;
  const std::string rows = p.ran.out.substr(0, timer);
  if (rows.find_first_not_of(" \n") != std::string::npos) {  // no rows: sqlite3 prints nothing
    for (const auto& row : json::parse(rows)) p.ids.push_back(row.at("id").get<std::int64_t>());
  }
  return p;
}

struct QueueOptions {
  fs::path socket, db;
  std::string steward, project;
  std::vector<std::string> steward_projects;
  std::size_t limit = 0;
  int calls = 50, warmup = 3, peer_cpu = -1, exportd_pid = 0;
};

// The largest page export.queue gives (export_service.cpp, kMaxPage).
constexpr std::size_t kMaxPage = 1000;

// The queue as a console reads it: one connection, export.queue page after page (each "after"
// the previous page's "next") until there is no next page, every answer parsed; with `limit`,
// that one page only. Timed from connect to the last answer, or to the refusal received.
struct QueueAnswer {
  double ms = 0, first_page_ms = 0;
  std::size_t pages = 0, total = 0;
  std::vector<std::int64_t> ids;
  std::size_t bytes = 0;
  std::optional<Error> refused;
};

QueueAnswer call_queue(const fs::path& socket, json params, std::size_t limit) {
  QueueAnswer a;
  const auto t0 = Clock::now();
  auto client = must(ipc::Client::connect(socket), "connecting to " + socket.string());
  params["limit"] = limit > 0 ? limit : kMaxPage;
  for (;;) {
    auto answer = client.call("export.queue", params, std::chrono::seconds(60));
    if (++a.pages == 1) a.first_page_ms = ms_between(t0, Clock::now());
    if (!answer) {
      a.refused = answer.error();
      break;
    }
    for (const auto& r : answer->at("requests")) {
      a.ids.push_back(review::parse_request_label(r.at("request").get<std::string>()).value_or(0));
    }
    a.bytes += answer->dump().size();
    a.total = answer->value("total", std::size_t{0});
    if (limit > 0 || !answer->contains("next")) break;
    params["after"] = answer->at("next");
  }
  a.ms = ms_between(t0, Clock::now());
  return a;
}

json queue(const QueueOptions& o) {
  std::set<std::string> projects;
  if (!o.project.empty()) {
    projects.insert(o.project);
  } else {
    projects.insert(o.steward_projects.begin(), o.steward_projects.end());
  }
  const auto [sql, values] = queue_statement(projects, o.steward, o.limit);
  std::string script = ".mode json\n.timer on\n";
  for (std::size_t i = 0; i < values.size(); ++i) {
    script += ".parameter set ?" + std::to_string(i + 1) + " \"'" + values[i] + "'\"\n";
  }
  script += sql + ";\n";

  json params = {{"as", o.steward}};
  if (!o.project.empty()) params["project"] = o.project;
  for (int i = 0; i < o.warmup; ++i) {
    call_queue(o.socket, params, o.limit);
    run_sqlite(o.db, script, o.peer_cpu);
  }
  std::vector<double> exportd_ms, first_page_ms, peer_ms, query_ms, query_cpu_ms;
  std::size_t rows = 0, peer_rows = 0, answer_bytes = 0, pages = 0, total = 0;
  std::optional<Error> refused;
  bool same_rows = true;
  double exportd_cpu = 0;
  for (int i = 0; i < o.calls; ++i) {
    const double cpu0 = cpu_ms(o.exportd_pid);
    auto answer = call_queue(o.socket, params, o.limit);
    exportd_cpu += cpu_ms(o.exportd_pid) - cpu0;
    exportd_ms.push_back(answer.ms);
    first_page_ms.push_back(answer.first_page_ms);
    pages = answer.pages;
    total = answer.total;
    auto peer = run_sqlite(o.db, script, o.peer_cpu);
    peer_ms.push_back(peer.ran.wall_ms);
    query_ms.push_back(peer.query_ms);
    query_cpu_ms.push_back(peer.query_cpu_ms);
    if (answer.refused) refused = answer.refused;
    same_rows = same_rows && !answer.refused && answer.ids == peer.ids;
    rows = answer.ids.size();
    peer_rows = peer.ids.size();
    answer_bytes = answer.bytes;
  }
  json out = {{"scenario", "queue"},
              {"steward", o.steward},
              {"project", o.project},
              {"projects", projects.size()},
              {"limit", o.limit},
              {"calls", o.calls},
              {"rows", rows},
              {"total", total},
              {"pages", pages},
              {"peer_rows", peer_rows},
              {"answer_bytes", answer_bytes},
              {"same_rows_as_peer", same_rows},
              {"exportd_ms", distribution(exportd_ms)},
              {"first_page_ms", distribution(first_page_ms)},
              {"peer",
               {{"command", "sqlite3 -readonly DB (.mode json, .timer on, .parameter set)"},
                {"process_ms", distribution(peer_ms)},
                {"query_ms", distribution(query_ms)},
                {"query_cpu_ms", distribution(query_cpu_ms)}}}};
  // A refusal is a result too: the time is what the daemon spent before refusing.
  if (refused) out["exportd_refused"] = refused->describe();
  if (o.exportd_pid) out["exportd_cpu_ms_per_call"] = exportd_cpu / o.calls;
  const double peer_p50 = out["peer"]["process_ms"]["p50"].get<double>();
  if (peer_p50 > 0) out["ratio_p50"] = out["exportd_ms"]["p50"].get<double>() / peer_p50;
  return out;
}

// ---- run: a command that prints a queue ----

json run_command(const std::vector<std::string>& command, int times, int expect) {
  std::vector<double> wall;
  std::size_t rows = 0;
  for (int i = 0; i < times + 1; ++i) {  // the first run warms the page cache, not counted
    auto r = run_timed(command);
    if (r.exit_code != 0) {
      throw Failure(command.front() + " exited with " + std::to_string(r.exit_code));
    }
    auto answer = json::parse(r.out, nullptr, false);
    if (answer.is_discarded() || !answer.contains("requests")) {
      throw Failure(command.front() + " did not print a queue as JSON: " + r.out.substr(0, 200));
    }
    rows = answer["requests"].size();
    if (expect >= 0 && rows != static_cast<std::size_t>(expect)) {
      throw Failure(command.front() + " listed " + std::to_string(rows) + " requests, not " +
                    std::to_string(expect));
    }
    if (i > 0) wall.push_back(r.wall_ms);
  }
  std::string text;
  for (const auto& a : command) text += (text.empty() ? "" : " ") + fs::path(a).filename().string();
  return {{"scenario", "command"},
          {"command", text},
          {"times", times},
          {"rows", rows},
          {"wall_ms", distribution(wall)}};
}

// ---- submit: a large file from the outbox to waiting_review ----

struct SubmitOptions {
  fs::path socket, outbox, policies, ledger, scratch;
  std::string file, project, profile = "acro-default";
  int rounds = 3, poll_ms = 20, peer_cpu = -1, exportd_pid = 0;
};

// The engine's own time: the step enclave-exportd's check worker runs (engine_check, the same
// profile, project and ledger), here on this thread, moved to the service's CPU for the call.
Ran engine_alone(const exitcontrol::CheckFile& engine, const fs::path& file,
                 const SubmitOptions& o) {
  cpu_set_t before;
  CPU_ZERO(&before);
  ::sched_getaffinity(0, sizeof before, &before);
  if (o.peer_cpu >= 0) {
    cpu_set_t only;
    CPU_ZERO(&only);
    CPU_SET(o.peer_cpu, &only);
    ::sched_setaffinity(0, sizeof only, &only);
  }
  rusage u0{}, u1{};
  ::getrusage(RUSAGE_THREAD, &u0);
  const auto t0 = Clock::now();
  auto checked = engine(file, o.profile, o.project);
  Ran r;
  r.wall_ms = ms_between(t0, Clock::now());
  ::getrusage(RUSAGE_THREAD, &u1);
  ::sched_setaffinity(0, sizeof before, &before);
  auto ms = [](const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; };
  r.cpu_ms = ms(u1.ru_utime) - ms(u0.ru_utime) + ms(u1.ru_stime) - ms(u0.ru_stime);
  if (!checked) throw Failure("the engine on " + file.string() + ": " + checked.error().describe());
  r.exit_code = 0;
  r.out = exitcontrol::outcome_name(checked->outcome);
  return r;
}

json submit(const SubmitOptions& o) {
  const std::string token = must(exitcontrol::exportcli::read_export_token(o.outbox), "the token");
  const fs::path path = o.outbox / o.file;
  const std::uint64_t bytes = fs::file_size(path);
  fs::create_directories(o.scratch);
  const std::string copy = (o.scratch / o.file).string();
  const std::vector<std::string> copy_hash = {
      "sh", "-c", "cp \"$1\" \"$2\" && sha256sum \"$1\" >/dev/null", "sh", path.string(), copy};
  const std::vector<std::string> copy_sync_hash = {
      "sh", "-c",          "cp \"$1\" \"$2\" && sync \"$2\" && sha256sum \"$1\" >/dev/null",
      "sh", path.string(), copy};
  const auto engine = exitcontrol::engine_check(o.policies, o.ledger);

  std::vector<double> peer_ms, peer_sync_ms, engine_ms, intake_ms, total_ms, overhead_ms,
      exportd_cpu, last_status, engine_cpu, overhead_cpu;
  json rounds = json::array();
  std::string type, outcome, reason;
  for (int round = 0; round < o.rounds; ++round) {
    auto peer = run_timed(copy_hash, o.peer_cpu);
    fs::remove(copy);
    auto peer_sync = run_timed(copy_sync_hash, o.peer_cpu);
    fs::remove(copy);
    if (peer.exit_code != 0 || peer_sync.exit_code != 0) throw Failure("cp + sha256sum failed");
    const Ran checked = engine_alone(engine, path, o);

    auto client = must(ipc::Client::connect(o.socket), "connecting to " + o.socket.string());
    const double cpu0 = cpu_ms(o.exportd_pid);
    const auto t0 = Clock::now();
    auto submitted =
        must(client.call("export.submit",
                         {{"token", token},
                          {"files", {o.file}},
                          {"justification", "export_load: intake of a large file, round " +
                                                std::to_string(round + 1)}},
                         std::chrono::seconds(300)),
             "export.submit " + o.file);
    const auto t1 = Clock::now();
    const std::string request = submitted.at("request").get<std::string>();
    json status;
    double last_status_ms = 0;  // the call that saw the request leave checking
    for (;;) {
      const auto asked = Clock::now();
      status = must(client.call("export.status", {{"token", token}, {"request", request}}),
                    "export.status " + request);
      last_status_ms = ms_between(asked, Clock::now());
      if (status.at("state") != "checking") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(o.poll_ms));
    }
    const auto t2 = Clock::now();
    const double cpu = cpu_ms(o.exportd_pid) - cpu0;
    if (status["state"] != "waiting_review") {
      throw Failure(request + " is " + status["state"].get<std::string>() +
                    ", not waiting_review: " + status.value("reason", ""));
    }
    const auto& f = status.at("files").at(0);
    type = f.value("type", "");
    outcome = f.value("outcome", "");
    reason = status.value("reason", "");
    const double total = ms_between(t0, t2);
    peer_ms.push_back(peer.wall_ms);
    peer_sync_ms.push_back(peer_sync.wall_ms);
    engine_ms.push_back(checked.wall_ms);
    engine_cpu.push_back(checked.cpu_ms);
    intake_ms.push_back(ms_between(t0, t1));
    last_status.push_back(last_status_ms);
    total_ms.push_back(total);
    overhead_ms.push_back(total - checked.wall_ms);
    exportd_cpu.push_back(cpu);
    overhead_cpu.push_back(cpu - checked.cpu_ms);
    rounds.push_back({{"request", request},
                      {"total_ms", total},
                      {"submit_answered_ms", ms_between(t0, t1)},
                      {"last_status_ms", last_status_ms},
                      {"engine_ms", checked.wall_ms},
                      {"engine_cpu_ms", checked.cpu_ms},
                      {"copy_hash_ms", peer.wall_ms},
                      {"copy_fsync_hash_ms", peer_sync.wall_ms},
                      {"exportd_cpu_ms", cpu}});
  }
  json out = {{"scenario", "submit"},
              {"file", o.file},
              {"bytes", bytes},
              {"type", type},
              {"outcome", outcome},
              {"reason_told_the_analyst", reason},
              {"poll_ms", o.poll_ms},
              {"rounds", rounds},
              {"total_ms", distribution(total_ms)},
              {"submit_answered_ms", distribution(intake_ms)},
              {"last_status_ms", distribution(last_status)},
              {"engine_ms", distribution(engine_ms)},
              {"engine_cpu_ms", distribution(engine_cpu)},
              {"overhead_ms", distribution(overhead_ms)},
              {"peer_copy_hash_ms", distribution(peer_ms)},
              {"peer_copy_fsync_hash_ms", distribution(peer_sync_ms)}};
  if (o.exportd_pid) {
    out["exportd_cpu_ms"] = distribution(exportd_cpu);
    // The same difference in CPU time, which the machine's other work disturbs less.
    out["overhead_cpu_ms"] = distribution(overhead_cpu);
  }
  const double peer_p50 = out["peer_copy_hash_ms"]["p50"].get<double>();
  if (peer_p50 > 0)
    out["overhead_to_peer_p50"] = out["overhead_ms"]["p50"].get<double>() / peer_p50;
  return out;
}

// ---- the human summary ----

std::string fixed(double v, int places = 1) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", places, v);
  return text;
}

void print_summary(const fs::path& dir) {
  auto load = [&](const char* name) { return bench::load_result(dir, name); };
  auto ms = [](const json& d) {
    return "p50 " + fixed(d["p50"].get<double>()) + " / p95 " + fixed(d["p95"].get<double>()) +
           " / max " + fixed(d["max"].get<double>()) + " ms";
  };
  if (auto s = load("seed.json")) {
    std::cout << "exports.db seeded through ExportStore: " << (*s)["requests"].get<int>()
              << " requests in waiting_review (" << (*s)["files_per_request"].size()
              << " files each, " << (*s)["projects"].get<int>() << " projects) in "
              << fixed((*s)["seconds"].get<double>(), 2) << " s, "
              << fixed((*s)["database_bytes"].get<double>() / 1e6) << " MB\n";
  }
  for (const char* file : {"queue.json", "queue_page.json", "queue_project.json"}) {
    auto q = load(file);
    if (!q) continue;
    const auto& j = *q;
    const std::string project = j["project"].get<std::string>();
    const auto limit = j["limit"].get<std::size_t>();
    std::cout << "export.queue (" << file << "), "
              << (project.empty() ? "all " + std::to_string(j["projects"].get<int>()) + " projects"
                                  : "project " + project)
              << (limit ? ", limit " + std::to_string(limit) : std::string()) << ", "
              << j["calls"].get<int>() << " calls: sqlite3 lists " << j["peer_rows"].get<int>()
              << " requests\n";
    if (j.contains("exportd_refused")) {
      std::cout << "  enclave-exportd REFUSED: " << j["exportd_refused"].get<std::string>()
                << ", after " << ms(j["exportd_ms"]) << "\n";
    } else {
      const int pages = j.value("pages", 1);
      std::cout << "  enclave-exportd, connect to the last answer parsed (" << j["rows"].get<int>()
                << " requests of " << j.value("total", 0) << ", " << pages
                << (pages == 1 ? " page, " : " pages, ")
                << fixed(j["answer_bytes"].get<double>() / 1e6, 2) << " MB of JSON"
                << (j["same_rows_as_peer"].get<bool>() ? "" : ", NOT THE PEER'S")
                << "): " << ms(j["exportd_ms"]) << " (target <= 100 ms)\n";
      if (pages > 1) std::cout << "  its first page alone: " << ms(j["first_page_ms"]) << "\n";
    }
    std::cout << "  sqlite3 CLI, same query, process to parsed output: "
              << ms(j["peer"]["process_ms"]) << "; its query alone p50 "
              << fixed(j["peer"]["query_ms"]["p50"].get<double>()) << " ms\n"
              << "  ratio (p50): " << fixed(j.value("ratio_p50", 0.0), 2);
    if (j.contains("exportd_cpu_ms_per_call")) {
      std::cout << "; enclave-exportd CPU per call "
                << fixed(j["exportd_cpu_ms_per_call"].get<double>()) << " ms";
    }
    std::cout << "\n";
  }
  if (auto c = load("queue_cli.json")) {
    std::cout << (*c)["command"].get<std::string>() << ": " << (*c)["rows"].get<int>()
              << " requests, wall " << ms((*c)["wall_ms"]) << "\n";
  }
  for (const char* file : {"submit_text.json", "submit_table.json"}) {
    auto s = load(file);
    if (!s) continue;
    const auto& j = *s;
    auto median = [&](const char* key) { return j[key]["p50"].get<double>(); };
    std::cout << "submit " << j["file"].get<std::string>() << " ("
              << fixed(j["bytes"].get<double>() / 1e6, 2) << " MB, " << j["type"].get<std::string>()
              << ", " << j["outcome"].get<std::string>() << "), median of " << j["rounds"].size()
              << " rounds:\n"
              << "  export.submit sent -> waiting_review: " << fixed(median("total_ms"))
              << " ms (submit answered after " << fixed(median("submit_answered_ms"))
              << " ms; the status call that saw waiting_review took "
              << fixed(median("last_status_ms")) << " ms)\n"
              << "  the engine's own time (engine_check, as exportd runs it): "
              << fixed(median("engine_ms")) << " ms\n"
              << "  the service's overhead (total - engine): " << fixed(median("overhead_ms"))
              << " ms (target <= 5000 ms)\n"
              << "  peer cp + sha256sum: " << fixed(median("peer_copy_hash_ms"))
              << " ms; with the copy fsynced: " << fixed(median("peer_copy_fsync_hash_ms"))
              << " ms; overhead / peer " << fixed(j.value("overhead_to_peer_p50", 0.0), 2) << "\n";
    if (j.contains("exportd_cpu_ms")) {
      std::cout << "  CPU: enclave-exportd " << fixed(median("exportd_cpu_ms"))
                << " ms per submission, the engine alone " << fixed(median("engine_cpu_ms"))
                << " ms: the service's own " << fixed(median("overhead_cpu_ms")) << " ms\n";
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a child that exits before reading its input
  CLI::App app{"export_load: load for enclave-exportd (the steward queue, large submissions)"};
  app.require_subcommand(1);

  SeedOptions seed_options;
  std::string files;
  auto* seed_cmd = app.add_subcommand("seed", "fill exports.db through the product's store");
  seed_cmd->add_option("--db", seed_options.db, "exports.db to create")->required();
  seed_cmd->add_option("--policies", seed_options.policies, "the policies directory")->required();
  seed_cmd->add_option("--examples", seed_options.examples, "where the example files are")
      ->required();
  seed_cmd->add_option("--requests", seed_options.requests)->check(CLI::Range(1, 10000000));
  seed_cmd->add_option("--projects", seed_options.projects)->check(CLI::Range(1, 100));
  seed_cmd->add_option("--requesters", seed_options.requesters)->check(CLI::Range(1, 100));
  seed_cmd->add_option("--files", files, "example files each request carries, comma-separated");
  seed_cmd->add_option("--compartment", seed_options.compartment);
  seed_cmd->add_option("--tier", seed_options.tier);

  fs::path dir;
  std::uint64_t bytes = 100'000'000;
  auto* files_cmd = app.add_subcommand("make-files", "a large text file and a large table");
  files_cmd->add_option("--dir", dir)->required();
  files_cmd->add_option("--bytes", bytes, "each file at most this long")
      ->check(CLI::Range(std::uint64_t{1} << 20, std::uint64_t{1} << 32));

  QueueOptions q;
  std::string steward_projects;
  auto* queue_cmd = app.add_subcommand("queue", "export.queue against sqlite3");
  queue_cmd->add_option("--socket", q.socket, "enclave-exportd's socket")->required();
  queue_cmd->add_option("--as", q.steward, "the steward")->required();
  queue_cmd->add_option("--db", q.db, "exports.db, for the peer")->required();
  queue_cmd->add_option("--steward-projects", steward_projects, "the steward's projects")
      ->required();
  queue_cmd->add_option("--project", q.project, "only this project's requests");
  queue_cmd->add_option("--limit", q.limit, "at most this many (the first by id)");
  queue_cmd->add_option("--calls", q.calls)->check(CLI::Range(1, 100000));
  queue_cmd->add_option("--warmup", q.warmup)->check(CLI::Range(0, 100));
  queue_cmd->add_option("--peer-cpu", q.peer_cpu, "the CPU sqlite3 runs on");
  queue_cmd->add_option("--exportd-pid", q.exportd_pid);

  int times = 20, expect = -1;
  std::vector<std::string> command;
  auto* run_cmd = app.add_subcommand("run", "the wall time of a command printing a queue");
  run_cmd->add_option("--times", times)->check(CLI::Range(1, 10000));
  run_cmd->add_option("--expect", expect, "the requests it must list");
  run_cmd->add_option("command", command, "the command, after --")->required();

  SubmitOptions s;
  auto* submit_cmd = app.add_subcommand("submit", "a large file from the outbox to review");
  submit_cmd->add_option("--socket", s.socket, "enclave-exportd's socket")->required();
  submit_cmd->add_option("--outbox", s.outbox, "the session's outbox")->required();
  submit_cmd->add_option("--file", s.file, "a name in the outbox")->required();
  submit_cmd->add_option("--policies", s.policies, "the policy directory exportd reads")
      ->required();
  submit_cmd->add_option("--ledger", s.ledger, "the release ledger exportd reads")->required();
  submit_cmd->add_option("--project", s.project, "the request's project")->required();
  submit_cmd->add_option("--profile", s.profile, "the tier's export profile");
  submit_cmd->add_option("--rounds", s.rounds)->check(CLI::Range(1, 100));
  submit_cmd->add_option("--poll-ms", s.poll_ms)->check(CLI::Range(1, 1000));
  submit_cmd->add_option("--scratch", s.scratch, "where the peers copy the file to")->required();
  submit_cmd->add_option("--peer-cpu", s.peer_cpu, "the CPU the peers and the engine run on");
  submit_cmd->add_option("--exportd-pid", s.exportd_pid);

  std::string results;
  auto* summary_cmd = app.add_subcommand("summary", "a human summary of bench.sh's files");
  summary_cmd->add_option("--dir", results)->required();
  CLI11_PARSE(app, argc, argv);

  try {
    json out;
    if (*seed_cmd) {
      if (!files.empty()) seed_options.files = split_list(files);
      out = seed(seed_options);
    } else if (*files_cmd) {
      out = make_files(dir, bytes);
    } else if (*queue_cmd) {
      q.steward_projects = split_list(steward_projects);
      out = queue(q);
    } else if (*run_cmd) {
      out = run_command(command, times, expect);
    } else if (*submit_cmd) {
      out = submit(s);
    } else {
      print_summary(results);
      return 0;
    }
    std::cout << out.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "export_load: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
