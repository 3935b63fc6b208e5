// enclave-audit query / timeline / report: reading the log the way auditors and remote-room
// operators ask about it.
#include <iostream>
#include <map>
#include <set>

#include "audit/cli/commands.hpp"
#include "audit/core/formats.hpp"

namespace enclave::audit::cli {

namespace {

void print_events(const std::vector<StoredEvent>& events, bool json, bool with_details) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : events) out.push_back(event_to_json(e.event, e.index));
    std::cout << out.dump(2) << "\n";
    return;
  }
  std::vector<std::string> headers = {"INDEX", "TIME",   "TYPE",    "OUTCOME", "ACTOR",
                                      "SITE",  "DEVICE", "SESSION", "OBJECT"};
  if (with_details) headers.push_back("DETAILS");
  enclave::cli::TextTable table(headers);
  for (const auto& s : events) {
    const Event& e = s.event;
    std::vector<std::string> row = {std::to_string(s.index),
                                    format_time_us(e.time_us),
                                    e.type,
                                    e.outcome,
                                    e.actor,
                                    e.site,
                                    e.device,
                                    e.session,
                                    e.object};
    if (with_details) row.push_back(e.details == "{}" ? "" : e.details);
    table.add(std::move(row));
  }
  table.print(std::cout);
  std::cout << "(" << events.size() << (events.size() == 1 ? " event)\n" : " events)\n");
}

int run_query(const Context& ctx, const Filters& filters, bool details) {
  auto query = filters.to_query();
  if (!query) return enclave::cli::report_error(query.error());
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  auto events = store->query(*query);
  if (!events) return enclave::cli::report_error(events.error());
  print_events(*events, ctx.json, details);
  return 0;
}

int run_timeline(const Context& ctx, const std::string& session) {
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  Query q;
  q.session = session;
  auto events = store->query(q);
  if (!events) return enclave::cli::report_error(events.error());
  if (events->empty()) {
    return enclave::cli::report_error({Errc::kNotFound, "no events for session " + session});
  }
  if (ctx.json) {
    print_events(*events, true, true);
    return 0;
  }
  const auto& first = events->front().event;
  std::cout << "session " << session << ": " << first.actor << " at " << first.site
            << (first.device.empty() ? "" : " on " + first.device) << "\n";
  enclave::cli::TextTable table({"+ELAPSED", "TIME", "EVENT", "OUTCOME", "OBJECT", "DETAILS"});
  for (const auto& s : *events) {
    const Event& e = s.event;
    auto elapsed_s = (e.time_us - first.time_us) / 1'000'000;
    char elapsed[64];
    std::snprintf(
        elapsed, sizeof elapsed, "%lld:%02lld:%02lld", static_cast<long long>(elapsed_s / 3600),
        static_cast<long long>(elapsed_s / 60 % 60), static_cast<long long>(elapsed_s % 60));
    table.add({elapsed, format_time_us(e.time_us), e.type, e.outcome, e.object,
               e.details == "{}" ? "" : e.details});
  }
  table.print(std::cout);
  return 0;
}

// Parses "YYYY-MM" and a "+HH:MM" offset into the month's [start, end) in microseconds.
Expected<std::pair<std::int64_t, std::int64_t>> month_range(const std::string& month,
                                                            const std::string& offset) {
  auto bad = [&] {
    return fail(Errc::kInvalidArgument,
                "--month wants YYYY-MM and --utc-offset +HH:MM; got " + month + " " + offset);
  };
  if (month.size() != 7 || month[4] != '-' || offset.size() != 6) return bad();
  int year = std::atoi(month.substr(0, 4).c_str());
  int mon = std::atoi(month.substr(5, 2).c_str());
  if (year < 1970 || year > 9998 || mon < 1 || mon > 12) return bad();
  char next[32];
  std::snprintf(next, sizeof next, "%04d-%02d", mon == 12 ? year + 1 : year,
                mon == 12 ? 1 : mon + 1);
  auto start = parse_time_us(month + "-01T00:00:00" + offset);
  auto end = parse_time_us(std::string(next) + "-01T00:00:00" + offset);
  if (!start || !end) return bad();
  return std::pair{*start, *end};
}

int run_logins_per_site(const Context& ctx, const std::string& month, const std::string& offset) {
  auto range = month_range(month, offset);
  if (!range) return enclave::cli::report_error(range.error());
  auto store = ctx.open_store();
  if (!store) return enclave::cli::report_error(store.error());
  Query q;
  q.type = "login.attempt";
  q.since_us = range->first;
  q.until_us = range->second;
  auto events = store->query(q);
  if (!events) return enclave::cli::report_error(events.error());
  struct Site {
    std::uint64_t success = 0, failure = 0, refused = 0;
    std::set<std::string> users;
    std::int64_t first = 0, last = 0;
  };
  std::map<std::string, Site> sites;
  for (const auto& s : *events) {
    const Event& e = s.event;
    auto& site = sites[e.site.empty() ? "(none)" : e.site];
    if (e.outcome == "success") {
      ++site.success;
      site.users.insert(e.actor);
    } else if (e.outcome == "refused") {
      ++site.refused;
    } else {
      ++site.failure;
    }
    if (!site.first) site.first = e.time_us;
    site.last = e.time_us;
  }
  if (ctx.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& [name, s] : sites) {
      rows.push_back({{"site", name},
                      {"logins", s.success},
                      {"failed", s.failure},
                      {"refused", s.refused},
                      {"users", s.users.size()},
                      {"first", format_time_us(s.first)},
                      {"last", format_time_us(s.last)}});
    }
    std::cout << nlohmann::json{{"month", month}, {"utc_offset", offset}, {"sites", rows}}.dump(2)
              << "\n";
    return 0;
  }
  std::cout << "Logins per remote site, " << month << " (UTC" << offset << ")\n";
  enclave::cli::TextTable table({"SITE", "LOGINS", "FAILED", "REFUSED", "USERS", "FIRST", "LAST"});
  std::uint64_t total = 0;
  for (const auto& [name, s] : sites) {
    total += s.success;
    table.add({name, std::to_string(s.success), std::to_string(s.failure),
               std::to_string(s.refused), std::to_string(s.users.size()),
               format_time_us(s.first).substr(0, 10), format_time_us(s.last).substr(0, 10)});
  }
  table.print(std::cout);
  std::cout << "(" << total << " successful logins at " << sites.size() << " sites)\n";
  return 0;
}

}  // namespace

void add_query(CLI::App& app, Context& ctx) {
  auto filters = std::make_shared<Filters>();
  auto details = std::make_shared<bool>(false);
  auto* query = app.add_subcommand("query", "events matching every filter given, oldest first");
  filters->add_to(*query);
  query->add_flag("--details", *details, "show each event's details column");
  query->callback([&ctx, filters, details] { exit_code() = run_query(ctx, *filters, *details); });

  auto session = std::make_shared<std::string>();
  auto* timeline = app.add_subcommand("timeline", "everything that happened in one session");
  timeline->add_option("session", *session, "session id")->required();
  timeline->callback([&ctx, session] { exit_code() = run_timeline(ctx, *session); });

  auto month = std::make_shared<std::string>();
  auto offset = std::make_shared<std::string>("+00:00");
  auto* report = app.add_subcommand("report", "reports for operators");
  report->require_subcommand(1);
  auto* logins = report->add_subcommand("logins-per-site", "logins per remote site in a month");
  logins->add_option("--month", *month, "YYYY-MM")->required();
  logins->add_option("--utc-offset", *offset, "month boundaries in this offset, e.g. +09:00")
      ->capture_default_str();
  logins->callback(
      [&ctx, month, offset] { exit_code() = run_logins_per_site(ctx, *month, *offset); });
}

}  // namespace enclave::audit::cli
