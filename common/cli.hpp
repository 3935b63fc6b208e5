// What every enclave command-line tool shares: the --policies / --state-dir / --log-level
// options, loading one policy file from the policy directory, and aligned tables for people
// (the same data goes out as JSON for scripts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

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

// A table printed with aligned columns; a column whose every cell is a number (or empty, or
// "-") is aligned right, header included.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }
  std::size_t size() const { return rows_.size(); }
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// Display width of UTF-8 text: code points, East Asian wide characters counted as two.
std::size_t display_width(std::string_view text);

// 1234567 -> "1,234,567", for counts people read.
std::string with_commas(std::uint64_t n);

// Prints "error: message" to stderr and returns the exit code for errors (2).
int report_error(const Error& error);

// The process exit code, set by the chosen subcommand's callback and returned by main.
int& exit_code();

}  // namespace enclave::cli
