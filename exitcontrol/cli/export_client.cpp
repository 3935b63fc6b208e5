#include "exitcontrol/cli/export_client.hpp"

#include <unistd.h>

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/ipc/client.hpp"
#include "common/policy.hpp"
#include "exitcontrol/cli/export_view.hpp"
#include "sessionmgr/service/outbox.hpp"

namespace enclave::exitcontrol::exportcli {

namespace {

namespace fs = std::filesystem;
using cli::field;
using nlohmann::json;

// Submitting copies the files into the daemon's spool: large files take a while.
constexpr auto kCallTimeout = std::chrono::minutes(2);
constexpr auto kPollInterval = std::chrono::milliseconds(500);

// Why a call gave no answer: the daemon refused (its message, exit 1), or it was not reached
// or its answer was lost (exit 2).
struct CallFailure {
  Error error;
  bool refused = false;
};

// One connection to enclave-exportd.
class Exportd {
 public:
  static Expected<Exportd> connect(const fs::path& socket) {
    auto client = ipc::Client::connect(socket);
    if (!client) {
      if (client.error().code == Errc::kUnavailable) {
        return fail(Errc::kUnavailable, "enclave-exportd is not running at " + socket.string());
      }
      return error_of(client);
    }
    return Exportd(std::move(client).value());
  }

  // send and receive rather than ipc::Client::call, which reports a refusal and a lost
  // connection alike.
  Result<json, CallFailure> call(std::string_view method, json params) {
    auto id = client_.send(method, std::move(params));
    if (!id) return fail(CallFailure{id.error()});
    auto response = client_.receive(kCallTimeout);
    if (!response) return fail(CallFailure{response.error()});
    // A failure with id 0 is the daemon's refusal of the connection itself.
    if (!response->ok) return fail(CallFailure{response->error(), true});
    if (response->id != *id) {
      return fail(CallFailure{
          {Errc::kInternal, "enclave-exportd answered request " + std::to_string(response->id) +
                                " while this tool waited for " + std::to_string(*id)}});
    }
    return std::move(response->result);
  }

 private:
  explicit Exportd(ipc::Client client) : client_(std::move(client)) {}
  ipc::Client client_;
};

int exit_for(const CallFailure& failure) {
  cli::report_error(failure.error);
  return failure.refused ? kExitRefused : kExitError;
}

// The analyst's session: its outbox, its token and the daemon.
struct Session {
  fs::path outbox;
  std::string token;
  Exportd exportd;
};

Expected<fs::path> outbox_of(const Options& options) {
  if (options.outbox.empty()) {
    return fail(Errc::kInvalidArgument,
                "no outbox: enclave-export runs inside a session's desktop (which sets "
                "ENCLAVE_OUTBOX), or pass --outbox DIR");
  }
  return options.outbox;
}

fs::path socket_of(const Options& options) {
  return options.socket.empty() ? options.common.state_dir / "run" / "exportd.sock"
                                : options.socket;
}

// names: the outbox names the FILE arguments stand for, resolved before the daemon is asked.
Expected<Session> open_session(const Options& options, const std::vector<std::string>& files,
                               std::vector<std::string>* names) {
  auto outbox = outbox_of(options);
  if (!outbox) return error_of(outbox);
  auto token = read_export_token(*outbox);
  if (!token) return error_of(token);
  for (const auto& file : files) {
    auto name = outbox_name(*outbox, file);
    if (!name) return error_of(name);
    names->push_back(std::move(name).value());
  }
  auto exportd = Exportd::connect(socket_of(options));
  if (!exportd) return error_of(exportd);
  return Session{*outbox, std::move(token).value(), std::move(exportd).value()};
}

Expected<Session> open_session(const Options& options) {
  std::vector<std::string> none;
  return open_session(options, {}, &none);
}

// ---- people's output --------------------------------------------------------------------

std::size_t checked_files(const json& request) {
  std::size_t n = 0;
  for (const auto& f : request.value("files", json::array())) n += f.value("checked", false);
  return n;
}

// The engine's comments: a list of lines, or one text.
void print_comments(std::ostream& out, const json& file) {
  auto it = file.find("comments");
  if (it == file.end()) return;
  const json lines = it->is_array() ? *it : json::array({*it});
  for (const auto& c : lines) {
    std::string text = c.is_string() ? c.get<std::string>() : c.dump();
    if (!text.empty()) exportview::print_line(out, "comment", text);
  }
}

// What the analyst can do next, as commands to copy.
void print_next_steps(std::ostream& out, const json& request) {
  const std::string id = field(request, "request");
  const std::string state = field(request, "state");
  std::vector<std::pair<std::string, std::string>> steps;
  if (state == "checking") {
    steps.push_back({"enclave-export status " + id, "shows the checks as they finish"});
  }
  for (const auto& f : request.value("files", json::array())) {
    if (field(f, "status") != "needs_analyst") continue;
    const std::string n = field(f, "file"), name = field(f, "name");
    if (f.contains("safe_version")) {
      steps.push_back({"enclave-export accept-safe " + id + " " + n,
                       "send the engine's safe version of " + name + " for review"});
    }
    steps.push_back({"enclave-export exception " + id + " " + n + " --reason TEXT",
                     "ask a steward to approve " + name + " as it is, saying why"});
    steps.push_back({"enclave-export withdraw " + id + " " + n, "leave " + name + " out"});
  }
  if (!exportview::is_closed(state) && state != "approved") {
    steps.push_back({"enclave-export withdraw " + id, "withdraw the whole request"});
  }
  if (steps.empty()) return;
  std::size_t width = 0;
  for (const auto& step : steps) width = std::max(width, cli::display_width(step.first));
  out << "\nnext:\n";
  for (const auto& [command, what] : steps) {
    out << "  " << command << std::string(width - cli::display_width(command) + 2, ' ') << what
        << "\n";
  }
}

void print_request(const json& request) {
  exportview::print_request_header(std::cout, request);
  for (const auto& f : request.value("files", json::array())) {
    std::cout << "\n";
    exportview::print_file_header(std::cout, request, f);
    if (f.contains("summary"))
      exportview::print_line(std::cout, "engine", exportview::engine_summary(f));
    print_comments(std::cout, f);
  }
  print_next_steps(std::cout, request);
}

void print_requests(const json& answer) {
  cli::TextTable table({"REQUEST", "PROJECT", "STATE", "FILES", "UPDATED", "REASON"});
  for (const auto& r : answer.value("requests", json::array())) {
    table.add({field(r, "request"), field(r, "project"), field(r, "state"), field(r, "files"),
               field(r, "updated_at"), exportview::cut(field(r, "reason"), 60)});
  }
  if (table.empty()) {
    std::cout << "no export requests from this session's user\n";
  } else {
    table.print(std::cout);
  }
  exportview::print_next_page(std::cout, answer);
}

void print_answer(const Options& options, const json& answer,
                  const std::function<void(const json&)>& show) {
  if (options.json) {
    std::cout << answer.dump(2) << "\n";
  } else {
    show(answer);
  }
}

// ---- the commands -------------------------------------------------------------------------

struct RequestArgs {
  std::vector<std::string> files;
  std::string justification, project;
  bool wait = false;
};

// A progress line on a terminal only (scripts and logs get the report).
void show_progress(const json& request) {
  if (!::isatty(STDERR_FILENO)) return;
  std::cerr << "\r" << field(request, "request") << ": checking " << checked_files(request) << "/"
            << request.value("files", json::array()).size() << " files   " << std::flush;
}

void clear_progress() {
  if (::isatty(STDERR_FILENO)) std::cerr << "\r\033[K" << std::flush;
}

int run_request(const Options& options, const RequestArgs& args) {
  std::vector<std::string> names;
  auto session = open_session(options, args.files, &names);
  if (!session) return cli::report_error(session.error());
  json params = {
      {"token", session->token}, {"files", names}, {"justification", args.justification}};
  if (!args.project.empty()) params["project"] = args.project;
  auto answer = session->exportd.call("export.submit", std::move(params));
  if (!answer) return exit_for(answer.error());
  json request = std::move(answer).value();
  if (args.wait) {
    const std::string id = field(request, "request");
    while (field(request, "state") == "checking") {
      show_progress(request);
      std::this_thread::sleep_for(kPollInterval);
      auto status =
          session->exportd.call("export.status", {{"token", session->token}, {"request", id}});
      if (!status) {
        clear_progress();
        return exit_for(status.error());
      }
      request = std::move(status).value();
    }
    clear_progress();
  }
  print_answer(options, request, print_request);
  return 0;
}

// Calls an analyst method with the session's token and prints the request it answers.
int run_choice(const Options& options, const std::string& request, const std::string& file,
               const std::string& action, const std::string& reason) {
  auto session = open_session(options);
  if (!session) return cli::report_error(session.error());
  json params = {{"token", session->token}, {"request", request}, {"action", action}};
  if (auto number = exportview::parse_file_number(file)) {
    params["file"] = *number;
  } else if (!file.empty()) {
    // A name: its number from the request as the analyst sees it.
    auto current =
        session->exportd.call("export.status", {{"token", session->token}, {"request", request}});
    if (!current) return exit_for(current.error());
    auto found = exportview::file_number(*current, file);
    if (!found) return cli::report_error(found.error());
    params["file"] = *found;
  }
  if (!reason.empty()) params["reason"] = reason;
  auto answer = session->exportd.call("export.choose", std::move(params));
  if (!answer) return exit_for(answer.error());
  print_answer(options, *answer, print_request);
  return 0;
}

void add_request(CLI::App& app, Options& options) {
  auto args = std::make_shared<RequestArgs>();
  auto* request = app.add_subcommand(
      "request", "ask for files in the outbox to leave the enclave (the engine checks them)");
  request->add_option("files", args->files, "files in the outbox (names or paths)")
      ->required()
      ->expected(1, -1);
  request
      ->add_option("--justification", args->justification,
                   "what the results are for (the stewards read it)")
      ->required();
  request->add_option("--project", args->project,
                      "the project they belong to (needed when the session has several)");
  request->add_flag("--wait", args->wait, "wait for the checks, then show the report");
  request->callback([&options, args] { cli::exit_code() = run_request(options, *args); });
}

void add_status(CLI::App& app, Options& options) {
  auto id = std::make_shared<std::string>();
  auto after = std::make_shared<std::string>();
  auto* status = app.add_subcommand(
      "status", "your export requests, or one in detail with what you can do next");
  status->add_option("request", *id, "a request, like R-12");
  status->add_option("--after", *after, "the next page of your requests: those after this one");
  status->callback([&options, id, after] {
    auto session = open_session(options);
    if (!session) {
      cli::exit_code() = cli::report_error(session.error());
      return;
    }
    json params = {{"token", session->token}};
    if (!id->empty()) params["request"] = *id;
    if (!after->empty()) params["after"] = *after;
    auto answer = session->exportd.call("export.status", std::move(params));
    if (!answer) {
      cli::exit_code() = exit_for(answer.error());
      return;
    }
    print_answer(options, *answer, id->empty() ? print_requests : print_request);
  });
}

void add_choices(CLI::App& app, Options& options) {
  struct ChoiceArgs {
    std::string request, file, reason;
  };
  auto safe = std::make_shared<ChoiceArgs>();
  auto* accept = app.add_subcommand(
      "accept-safe", "send the engine's safe version of a file for review instead of the file");
  accept->add_option("request", safe->request, "the request, like R-12")->required();
  accept->add_option("file", safe->file, "the file's number or name")->required();
  accept->callback([&options, safe] {
    cli::exit_code() = run_choice(options, safe->request, safe->file, "accept_safe", "");
  });

  auto exception = std::make_shared<ChoiceArgs>();
  auto* ask = app.add_subcommand("exception",
                                 "ask a steward to approve a file that did not pass, as it is");
  ask->add_option("request", exception->request, "the request, like R-12")->required();
  ask->add_option("file", exception->file, "the file's number or name")->required();
  ask->add_option("--reason", exception->reason, "why it is safe to release (stewards read it)")
      ->required();
  ask->callback([&options, exception] {
    cli::exit_code() =
        run_choice(options, exception->request, exception->file, "exception", exception->reason);
  });

  auto withdrawn = std::make_shared<ChoiceArgs>();
  auto* withdraw = app.add_subcommand("withdraw", "withdraw a request, or one file of it");
  withdraw->add_option("request", withdrawn->request, "the request, like R-12")->required();
  withdraw->add_option("file", withdrawn->file, "the file's number or name (default: all)");
  withdraw->callback([&options, withdrawn] {
    cli::exit_code() = run_choice(options, withdrawn->request, withdrawn->file, "withdraw", "");
  });
}

}  // namespace

Expected<std::string> read_export_token(const fs::path& outbox) {
  const fs::path path = outbox / sessionmgr::kOutboxSessionFile;
  auto document = policy::Document::load_file(path);
  if (!document) {
    if (document.error().code == Errc::kNotFound) {
      return fail(Errc::kNotFound, path.string() + " is missing: " + outbox.string() +
                                       " is not a session's outbox (enclave-sessiond writes the "
                                       "file when it creates the session)");
    }
    return error_of(document);
  }
  return document->root().string("token");
}

Expected<std::string> outbox_name(const fs::path& outbox, const std::string& file) {
  const fs::path given(file);
  const std::string name = given.filename().string();
  if (name.empty() || name == "." || name == "..") {
    return fail(Errc::kInvalidArgument, "\"" + file + "\" does not name a file");
  }
  std::error_code ec;
  const auto copy_first = [&] {
    return fail(Errc::kInvalidArgument, file + " is not in the outbox: copy " + file +
                                            " into the outbox (" + outbox.string() + ") first");
  };
  if (file.find('/') == std::string::npos) {
    if (fs::symlink_status(outbox / name, ec).type() != fs::file_type::not_found) return name;
    if (fs::symlink_status(given, ec).type() != fs::file_type::not_found) return copy_first();
    return fail(Errc::kNotFound, "no file " + file + " in the outbox (" + outbox.string() + ")");
  }
  const fs::path directory = fs::absolute(given, ec).parent_path();
  const fs::path resolved = fs::canonical(directory, ec);
  if (ec) return fail(Errc::kNotFound, directory.string() + ": " + ec.message());
  const fs::path own = fs::canonical(outbox, ec);
  if (ec) return fail(Errc::kNotFound, "the outbox " + outbox.string() + ": " + ec.message());
  if (resolved != own) return copy_first();
  return name;
}

void add_export_commands(CLI::App& app, Options& options) {
  cli::add_common_options(app, options.common);
  app.add_option("--socket", options.socket,
                 "enclave-exportd's socket (default: STATE_DIR/run/exportd.sock)")
      ->envname("ENCLAVE_EXPORT_SOCKET");
  app.add_option("--outbox", options.outbox, "the session's outbox")->envname("ENCLAVE_OUTBOX");
  app.add_flag("--json", options.json, "print enclave-exportd's answers as JSON");
  app.require_subcommand(1);
  app.fallthrough();  // the global options may also follow the subcommand
  add_request(app, options);
  add_status(app, options);
  add_choices(app, options);
}

}  // namespace enclave::exitcontrol::exportcli
