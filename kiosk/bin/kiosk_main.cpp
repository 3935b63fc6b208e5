// enclave-kiosk: the thin client's login from a terminal (the full-screen kiosk uses the same
// library). `login` runs the whole login against the gateway's login API, with the reader
// libfprint finds, and prints the xfreerdp command it would run.
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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"enclave-kiosk: log in from a kitted thin client"};
  app.require_subcommand(1);
  auto* login =
      app.add_subcommand("login", "ID, password and fingerprint; prints the xfreerdp command");
  std::string gateway, kit_dir, user, driver, server_name;
  login->add_option("--gateway", gateway, "the gateway's login API, HOST:PORT")->required();
  login->add_option("--kit", kit_dir, "the directory `enclavectl device kit` wrote")->required();
  login->add_option("--user", user, "the analyst's ID")->required();
  login->add_option("--driver", driver, "the libfprint driver of the reader (default: the first)");
  login->add_option("--server-name", server_name,
                    "the name in the gateway's certificate (default: HOST)");
  CLI11_PARSE(app, argc, argv);

  const auto colon = gateway.rfind(':');
  unsigned port = 0;
  if (colon == std::string::npos ||
      std::from_chars(gateway.data() + colon + 1, gateway.data() + gateway.size(), port).ec !=
          std::errc() ||
      port == 0 || port > 65535) {
    return cli::report_error({Errc::kInvalidArgument, "--gateway: expected HOST:PORT"});
  }
  kiosk::LoginOptions options;
  options.gateway_host = gateway.substr(0, colon);
  options.gateway_port = static_cast<std::uint16_t>(port);
  options.server_name = server_name;
  options.kit = kiosk::DeviceKit::in(kit_dir);
  options.user = user;

  auto reader = kiosk::FingerprintReader::open(driver);
  if (!reader) return cli::report_error({Errc::kUnavailable, reader.error().describe()});
  TerminalPerson person;
  kiosk::ReaderMatcher matcher(**reader, person);
  (*reader)->on_finger_needed(
      [&person] { person.tell("Place your finger on the reader.", false); });
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
