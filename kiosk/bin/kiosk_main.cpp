// enclave-kiosk: the thin client's login from a terminal (the full-screen kiosk uses the same
// library). `login` runs the whole login against the gateway's login API, with the reader
// libfprint finds, and prints the xfreerdp command it would run. `enrol` scans the user's
// finger and records the print at the center, once a steward has approved the enrolment there
// (`enclavectl enrolment approve USER DEVICE --approver STEWARD`); it prints the print id.
#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <iostream>

#include <CLI/CLI.hpp>

#include "common/bytes.hpp"
#include "common/cli.hpp"
#include "kiosk/fingerprint.hpp"
#include "kiosk/login_client.hpp"

namespace {

using namespace enclave;

// The person at the terminal: prompts on stderr, answers from stdin, secrets without echo.
class TerminalPerson : public kiosk::Person {
 public:
  std::optional<std::string> answer(const std::string& prompt, bool secret) override {
    std::cerr << prompt << std::flush;
    termios saved{};
    const bool tty = secret && ::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0;
    if (tty) {
      termios quiet = saved;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    std::string line;
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    if (tty) {
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
      std::cerr << "\n";
    }
    if (!got) return std::nullopt;
    return line;
  }
  void tell(const std::string& text, bool is_error) override {
    std::cerr << (is_error ? "! " : "") << text << "\n";
  }
};

std::string quoted(const std::string& s) {
  return s.find_first_of(" \t'\"") == std::string::npos ? s : "'" + s + "'";
}

// What `login` and `enrol` both take.
struct GatewayArguments {
  std::string gateway, kit_dir, user, driver, server_name;

  void add_to(CLI::App* command) {
    command->add_option("--gateway", gateway, "the gateway's login API, HOST:PORT")->required();
    command->add_option("--kit", kit_dir, "the directory `enclavectl device kit` wrote")
        ->required();
    command->add_option("--user", user, "the analyst's ID")->required();
    command->add_option("--driver", driver,
                        "the libfprint driver of the reader (default: the first)");
    command->add_option("--server-name", server_name,
                        "the name in the gateway's certificate (default: HOST)");
  }

  Expected<kiosk::LoginOptions> options() const {
    const auto colon = gateway.rfind(':');
    unsigned port = 0;
    if (colon == std::string::npos ||
        std::from_chars(gateway.data() + colon + 1, gateway.data() + gateway.size(), port).ec !=
            std::errc() ||
        port == 0 || port > 65535) {
      return fail(Errc::kInvalidArgument, "--gateway: expected HOST:PORT");
    }
    kiosk::LoginOptions options;
    options.gateway_host = gateway.substr(0, colon);
    options.gateway_port = static_cast<std::uint16_t>(port);
    options.server_name = server_name;
    options.kit = kiosk::DeviceKit::in(kit_dir);
    options.user = user;
    return options;
  }
};

int login_from_terminal(const kiosk::LoginOptions& options, kiosk::FingerprintReader& reader,
                        TerminalPerson& person) {
  kiosk::ReaderMatcher matcher(reader, person);
  auto outcome = kiosk::run_login(options, person, matcher);
  if (!outcome) return cli::report_error(outcome.error());
  if (auto* refused = std::get_if<login::ErrorReply>(&*outcome)) {
    std::cerr << "login refused: " << refused->description << "\n";
    return 1;
  }
  const auto& success = std::get<login::Success>(*outcome);
  std::cerr << "logged in: desktop " << success.desktop.id << ", ticket valid until "
            << success.expires_at << "\n";
  std::string command;
  for (const auto& arg : kiosk::xfreerdp_arguments(success)) {
    command += (command.empty() ? "" : " ") + quoted(arg);
  }
  std::cout << command << "\n";
  return 0;
}

int enrol_from_terminal(const kiosk::LoginOptions& options, kiosk::FingerprintReader& reader,
                        TerminalPerson& person) {
  person.tell("Enrolling " + options.user + ": " + std::to_string(reader.enroll_stages()) +
                  " scans of the same finger.",
              false);
  auto outcome = kiosk::run_enrolment(options, person, reader);
  if (!outcome) return cli::report_error(outcome.error());
  if (auto* refused = std::get_if<login::ErrorReply>(&*outcome)) {
    std::cerr << "enrolment refused: " << refused->description << "\n";
    return 1;
  }
  const auto& enrolled = std::get<login::Enrolled>(*outcome);
  std::cerr << "enrolled: " << options.user << "'s print is recorded at the center\n";
  std::cout << enrolled.print_id << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"enclave-kiosk: log in from a kitted thin client"};
  app.require_subcommand(1);
  GatewayArguments login_arguments, enrol_arguments;
  auto* login_command =
      app.add_subcommand("login", "ID, password and fingerprint; prints the xfreerdp command");
  login_arguments.add_to(login_command);
  std::string compartment;
  login_command->add_option("--compartment", compartment,
                            "the compartment to enter, when your projects grant several");
  auto* enrol_command = app.add_subcommand(
      "enrol", "scan a finger and record the print (a steward approves the enrolment first)");
  enrol_arguments.add_to(enrol_command);
  CLI11_PARSE(app, argc, argv);

  const bool enrolling = enrol_command->parsed();
  const GatewayArguments& arguments = enrolling ? enrol_arguments : login_arguments;
  auto options = arguments.options();
  if (!options) return cli::report_error(options.error());
  if (!compartment.empty()) options->compartment = compartment;

  auto reader = kiosk::FingerprintReader::open(arguments.driver);
  if (!reader) return cli::report_error({Errc::kUnavailable, reader.error().describe()});
  TerminalPerson person;
  (*reader)->on_finger_needed(
      [&person] { person.tell("Place your finger on the reader.", false); });
  return enrolling ? enrol_from_terminal(*options, **reader, person)
                   : login_from_terminal(*options, **reader, person);
}
