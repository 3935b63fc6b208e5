// What every enclave command-line tool shares: the --policies / --state-dir / --log-level
// options, loading one policy file from the policy directory, and aligned tables for people
// (the same data goes out as JSON for scripts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json_fwd.hpp>

#include "common/policy.hpp"
#include "common/result.hpp"

namespace enclave::cli {

struct CommonOptions {
  std::filesystem::path policies;   // default: $ENCLAVE_POLICIES or /etc/enclave/policies
  std::filesystem::path state_dir;  // default: $ENCLAVE_STATE_DIR or /var/lib/enclave
  std::string log_level = "info";
};

void add_common_options(CLI::App& app, CommonOptions& options);

// Loads policies/<file> (e.g. "audit.toml").
Expected<policy::Document> load_policy(const CommonOptions& options, std::string_view file);

// The command line every daemon shares: `NAME SUBCOMMAND` with the common options before or
// after the subcommand (the daemon adds its subcommands to `app`), then logging under NAME.
struct DaemonCommand {
  DaemonCommand(std::string name, const std::string& description);
  // Parses argv and starts logging. An exit code when main should return at once: help was
  // printed (0), or the command line or the log level was wrong (named on stderr).
  std::optional<int> start(int argc, char** argv);

  std::string name;
  CLI::App app;
  CommonOptions common;
};

// A table printed with aligned columns; a column whose every cell is a number (or empty, or
// "-") is aligned right, header included.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// A JSON field for people: the string itself, "-" when absent, null or empty, other JSON as its
// text.
std::string field(const nlohmann::json& object, const char* key);

// Display width of UTF-8 text: code points, East Asian wide characters counted as two.
std::size_t display_width(std::string_view text);

// 1234567 -> "1,234,567", for counts people read.
std::string with_commas(std::uint64_t n);

// Prints "error: message" to stderr and returns the exit code for errors (2).
int report_error(const Error& error);

// The process exit code, set by the chosen subcommand's callback and returned by main.
int& exit_code();

}  // namespace enclave::cli
