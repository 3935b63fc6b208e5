// enclavectl export queue | show | approve | reject | link | releases | rotate-key |
// destroy-project: the export review and the releases (enclave-exportd, its socket from
// policies/exports.toml). The caller is the steward or operator the daemon sees on its socket;
// root, the daemon's own user and [exportd] consoles may act for another with --as USER.
#include <algorithm>
#include <iostream>

#include "enclavectl/commands.hpp"
#include "exitcontrol/cli/export_view.hpp"
#include "exitcontrol/service/export_policy.hpp"
#include "sessionmgr/core/registry.hpp"

namespace enclave::ctl {

namespace {

namespace view = exitcontrol::exportview;
using cli::field;
using nlohmann::json;

// A steward's preview: this many lines of the file, this many columns of each.
constexpr std::size_t kPreviewLines = 20;
constexpr std::size_t kPreviewColumns = 64;
constexpr std::size_t kMaxCellsShown = 40;

int call_exportd(Context& ctx, const char* method, json params,
                 const std::function<void(const json&)>& show) {
  auto document = cli::load_policy(ctx.common, "exports.toml");
  if (!document) return cli::report_error(document.error());
  auto policy = exitcontrol::load_export_policy(*document, ctx.common.state_dir);
  if (!policy) return cli::report_error(policy.error());
  return call_service(ctx, policy->socket, method, std::move(params), std::chrono::minutes(2),
                      show);
}

// Every subcommand's --as: the user a trusted caller (a console, root) acts for.
void add_as(CLI::App* command, std::string& as) {
  command->add_option("--as", as,
                      "act for this steward or operator (root, enclave-exportd's user and "
                      "[exportd] consoles only)");
}

json acting(json params, const std::string& as) {
  if (!as.empty()) params["as"] = as;
  return params;
}

std::optional<sessionmgr::TimePoint> time_of(const json& object, const char* key) {
  return sessionmgr::registry::parse_time(field(object, key));
}

// "40s", "12m", "5h", "3d": how long a request has waited.
std::string age(const json& request) {
  auto created = time_of(request, "created_at");
  if (!created) return "-";
  const auto s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now() - *created)
          .count();
  if (s < 60) return std::to_string(std::max<long long>(s, 0)) + "s";
  if (s < 3600) return std::to_string(s / 60) + "m";
  if (s < 86400) return std::to_string(s / 3600) + "h";
  return std::to_string(s / 86400) + "d";
}

void print_table(const cli::TextTable& table, const char* none) {
  if (table.empty()) {
    std::cout << none << "\n";
  } else {
    table.print(std::cout);
  }
}

// The cells the engine flagged: the report's "outcome" grid (column -> row -> "ok" or the
// rules tripped, "threshold; p-ratio; ") without its "ok" cells, and those the stored report
// left out (enclave.listing: it keeps at most so many per list).
std::vector<std::string> flagged_cells(const json& file) {
  std::vector<std::string> cells;
  auto report = file.find("report");
  if (report == file.end() || !report->is_object()) return cells;
  auto grid = report->find("outcome");
  if (grid == report->end() || !grid->is_object()) return cells;
  std::size_t more = 0;
  for (const auto& [column, rows] : grid->items()) {
    if (!rows.is_object()) continue;
    for (const auto& [row, rules] : rows.items()) {
      if (!rules.is_string() || rules.get<std::string>() == "ok") continue;
      if (cells.size() == kMaxCellsShown) {
        ++more;
        continue;
      }
      std::string text = rules.get<std::string>();
      while (!text.empty() && (text.back() == ' ' || text.back() == ';')) text.pop_back();
      cells.push_back(row + " × " + column + ": " + text);
    }
  }
  if (auto listing = report->find("enclave"); listing != report->end() && listing->is_object()) {
    more += listing->value("listing", json::object()).value("cells_omitted", std::size_t{0});
  }
  if (more > 0) cells.push_back("and " + std::to_string(more) + " more");
  return cells;
}

// The file's first lines on the left and the cells the engine flagged on the right, so the
// steward reads them together.
void print_preview_and_cells(const json& file) {
  std::vector<std::string> left;
  std::string left_title;
  if (auto preview = file.find("preview"); preview != file.end() && preview->is_object()) {
    const std::string text = preview->value("text", "");
    std::size_t start = 0, lines = 0;
    while (start < text.size() && lines < kPreviewLines) {
      std::size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      left.push_back(view::cut(std::string_view(text).substr(start, end - start), kPreviewColumns));
      start = end + 1;
      ++lines;
    }
    const bool more = start < text.size() || preview->value("truncated", false);
    left_title = "the file (" + field(*preview, "version") + " version" +
                 (more ? ", first " + std::to_string(lines) + " lines" : "") + ")";
  }
  std::vector<std::string> right = flagged_cells(file);
  const std::string right_title = "cells the engine flagged (original)";
  if (left_title.empty() && right.empty()) return;
  if (right.empty()) right.push_back("none");
  if (left_title.empty()) {
    std::cout << "  " << right_title << "\n";
    for (const auto& cell : right) std::cout << "    " << cell << "\n";
    return;
  }
  std::size_t width = cli::display_width(left_title);
  for (const auto& l : left) width = std::max(width, cli::display_width(l));
  auto row = [&](const std::string& l, const std::string& r) {
    std::string text = "  " + l + std::string(width - cli::display_width(l), ' ') + " │ " + r;
    while (text.back() == ' ') text.pop_back();
    std::cout << text << "\n";
  };
  row(left_title, right_title);
  for (std::size_t i = 0; i < std::max(left.size(), right.size()); ++i) {
    row(i < left.size() ? left[i] : "", i < right.size() ? right[i] : "");
  }
}

void print_show(const json& request) {
  view::print_request_header(std::cout, request);
  for (const auto& file : request.value("files", json::array())) {
    std::cout << "\n";
    view::print_file_header(std::cout, request, file);
    if (auto report = file.find("report"); report != file.end() && report->is_object()) {
      view::print_line(std::cout, "engine", view::engine_summary(*report));
    }
    print_preview_and_cells(file);
  }
}

// "file 0 (table.csv): approved" for the file just decided, then the request's state.
void print_decided(const json& request, std::uint32_t number) {
  for (const auto& f : request.value("files", json::array())) {
    if (f.value("file", -1) != static_cast<std::int64_t>(number)) continue;
    std::cout << field(request, "request") << " file " << number << " (" << field(f, "name")
              << "): " << field(f, "status") << ", " << f.value("approvals", 0) << " of "
              << request.value("stewards_required", 1) << " approvals\n";
  }
  const std::string state = field(request, "state");
  std::cout << field(request, "request") << ": " << state << ": " << view::state_meaning(state)
            << "\n";
}

std::string links_text(const json& release) {
  int used = 0, open = 0, expired = 0;
  const auto now = std::chrono::system_clock::now();
  for (const auto& link : release.value("links", json::array())) {
    if (link.contains("used_at") && !link["used_at"].is_null()) {
      ++used;
    } else if (auto expires = time_of(link, "expires_at"); expires && *expires > now) {
      ++open;
    } else {
      ++expired;
    }
  }
  return std::to_string(used) + " used, " + std::to_string(open) + " open, " +
         std::to_string(expired) + " expired";
}

// ---- the subcommands ------------------------------------------------------------------------

void add_queue(CLI::App& group, Context& ctx) {
  struct Args {
    std::string as, project, compartment, state, after;
    int limit = 0;
  };
  auto a = std::make_shared<Args>();
  auto* queue = group.add_subcommand(
      "queue", "requests waiting for review in your projects (never your own)");
  add_as(queue, a->as);
  queue->add_option("--project", a->project, "only this project");
  queue->add_option("--compartment", a->compartment, "only this compartment");
  queue->add_option("--state", a->state, "requests in this state, or all (default waiting_review)");
  queue->add_option("--limit", a->limit, "at most this many (default 500, at most 1000)")
      ->check(CLI::Range(1, 1000));
  queue->add_option("--after", a->after, "the next page: requests after this one (like R-12)");
  queue->callback([&ctx, a] {
    json params = acting(json::object(), a->as);
    if (!a->project.empty()) params["project"] = a->project;
    if (!a->compartment.empty()) params["compartment"] = a->compartment;
    if (!a->state.empty()) params["state"] = a->state;
    if (a->limit > 0) params["limit"] = a->limit;
    if (!a->after.empty()) params["after"] = a->after;
    ctx.exit_code = call_exportd(ctx, "export.queue", params, [](const json& r) {
      cli::TextTable table({"REQUEST", "PROJECT", "REQUESTER", "STATE", "FILES", "WAITING",
                            "STEWARDS", "AGE", "JUSTIFICATION"});
      for (const auto& q : r.value("requests", json::array())) {
        table.add({field(q, "request"), field(q, "project"), field(q, "requester"),
                   field(q, "state"), field(q, "files"), field(q, "waiting_files"),
                   field(q, "stewards_required"), age(q),
                   view::cut(field(q, "justification"), 40)});
      }
      print_table(table, "no requests waiting");
      view::print_next_page(std::cout, r);
    });
  });
}

void add_show(CLI::App& group, Context& ctx) {
  auto as = std::make_shared<std::string>();
  auto id = std::make_shared<std::string>();
  auto* show = group.add_subcommand(
      "show", "a request: per file the engine's report and the flagged cells beside the file");
  add_as(show, *as);
  show->add_option("request", *id, "the request, like R-12")->required();
  show->callback([&ctx, as, id] {
    ctx.exit_code = call_exportd(ctx, "export.show", acting({{"request", *id}}, *as), print_show);
  });
}

// approve and reject: FILE is the file's number or its name (looked up with export.show).
void add_decisions(CLI::App& group, Context& ctx) {
  struct Args {
    std::string as, request, file, comment;
  };
  for (const char* decision : {"approve", "reject"}) {
    const bool reject = std::string_view(decision) == "reject";
    auto a = std::make_shared<Args>();
    auto* command = group.add_subcommand(
        decision, reject ? "reject one file of a request (a comment says why)"
                         : "approve one file of a request (exceptions need a comment)");
    add_as(command, a->as);
    command->add_option("request", a->request, "the request, like R-12")->required();
    command->add_option("file", a->file, "the file's number or name")->required();
    auto* comment = command->add_option(
        "--comment", a->comment,
        reject ? "why (the analyst reads it)" : "the steward's note (required for exceptions)");
    if (reject) comment->required();
    command->callback([&ctx, a, decision] {
      auto number = view::parse_file_number(a->file);
      if (!number) {
        // The lookup: the request as the steward sees it, not printed.
        Context quiet = ctx;
        quiet.json = false;
        json request;
        int looked_up = call_exportd(quiet, "export.show", acting({{"request", a->request}}, a->as),
                                     [&request](const json& r) { request = r; });
        if (looked_up != 0) {
          ctx.exit_code = looked_up;
          return;
        }
        auto found = view::file_number(request, a->file);
        if (!found) {
          ctx.exit_code = cli::report_error(found.error());
          return;
        }
        number = *found;
      }
      json params = acting({{"request", a->request},
                            {"file", *number},
                            {"decision", decision},
                            {"comment", a->comment}},
                           a->as);
      ctx.exit_code = call_exportd(ctx, "export.decide", params,
                                   [n = *number](const json& r) { print_decided(r, n); });
    });
  }
}

void add_link(CLI::App& group, Context& ctx) {
  struct Args {
    std::string as, request;
    int ttl_h = 0;
  };
  auto a = std::make_shared<Args>();
  auto* link = group.add_subcommand(
      "link", "a new one-time download link for a released request (shown once)");
  add_as(link, a->as);
  link->add_option("request", a->request, "the released request, like R-12")->required();
  link->add_option("--ttl-h", a->ttl_h, "hours the link stays valid (default: the policy's)")
      ->check(CLI::PositiveNumber);
  link->callback([&ctx, a] {
    json params = acting({{"request", a->request}}, a->as);
    if (a->ttl_h > 0) params["ttl_h"] = a->ttl_h;
    ctx.exit_code = call_exportd(ctx, "export.link", params, [](const json& r) {
      std::cout << "release  " << field(r, "release") << "\n"
                << "url      " << field(r, "url") << "\n"
                << "expires  " << field(r, "expires_at") << "\n"
                << "The link works once and is not shown again: send it to the requester's "
                   "organisation now.\n";
    });
  });
}

void add_releases(CLI::App& group, Context& ctx) {
  auto as = std::make_shared<std::string>();
  auto project = std::make_shared<std::string>();
  auto* releases = group.add_subcommand("releases", "releases and their download links");
  add_as(releases, *as);
  releases->add_option("--project", *project, "only this project");
  releases->callback([&ctx, as, project] {
    json params = acting(json::object(), *as);
    if (!project->empty()) params["project"] = *project;
    ctx.exit_code = call_exportd(ctx, "export.releases", params, [](const json& r) {
      cli::TextTable table(
          {"RELEASE", "REQUEST", "PROJECT", "CREATED", "SIZE", "SHA256", "STATE", "LINKS"});
      for (const auto& rel : r.value("releases", json::array())) {
        const auto size = rel.value("size", std::uint64_t{0});
        table.add({field(rel, "release"), field(rel, "request"), field(rel, "project"),
                   field(rel, "created_at"), cli::with_commas(size),
                   view::short_sha256(rel, "sha256"), field(rel, "state"), links_text(rel)});
      }
      print_table(table, "no releases");
    });
  });
}

void add_key_commands(CLI::App& group, Context& ctx) {
  struct Args {
    std::string as, project, confirm;
  };
  auto rotate = std::make_shared<Args>();
  auto* rotate_key = group.add_subcommand(
      "rotate-key", "a new key for a project's releases; the old one is destroyed (operators)");
  add_as(rotate_key, rotate->as);
  rotate_key->add_option("project", rotate->project, "the project")->required();
  rotate_key->callback([&ctx, rotate] {
    ctx.exit_code = call_exportd(
        ctx, "export.key.rotate", acting({{"project", rotate->project}}, rotate->as),
        [](const json& r) {
          std::cout << field(r, "project") << ": new key " << field(r, "key_id") << "; "
                    << field(r, "rewrapped") << " data keys rewrapped, the old key destroyed\n";
        });
  });

  auto destroy = std::make_shared<Args>();
  auto* destroy_project = group.add_subcommand(
      "destroy-project",
      "destroy every key of a project: its releases can never be read again (operators)");
  add_as(destroy_project, destroy->as);
  destroy_project->add_option("project", destroy->project, "the project")->required();
  destroy_project->add_option("--confirm", destroy->confirm, "the project's name again")
      ->required();
  destroy_project->callback([&ctx, destroy] {
    ctx.exit_code = call_exportd(
        ctx, "export.project.destroy",
        acting({{"project", destroy->project}, {"confirm", destroy->confirm}}, destroy->as),
        [](const json& r) {
          std::cout << field(r, "project") << ": keys destroyed; " << field(r, "releases_destroyed")
                    << " releases can no longer be read\n";
        });
  });
}

}  // namespace

void add_export_commands(CLI::App& app, Context& ctx) {
  auto* group = app.add_subcommand(
      "export", "export review: queue, decisions, releases and links (enclave-exportd)");
  group->require_subcommand(1);
  group->fallthrough();
  add_queue(*group, ctx);
  add_show(*group, ctx);
  add_decisions(*group, ctx);
  add_link(*group, ctx);
  add_releases(*group, ctx);
  add_key_commands(*group, ctx);
}

}  // namespace enclave::ctl
