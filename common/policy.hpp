// Policy-as-code: TOML files under policies/, read once at start-up and validated there, so a
// running service never meets a bad value. Every error names file, line, column and the full
// dotted key, e.g. "policies/audit.toml:12:1: audit.checkpoint.every_entries: expected an
// integer between 1 and 1000000, found string".
#pragma once

#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace enclave::policy {

class Document;

// A view onto one TOML table of a loaded Document. Keys are plain names (no dots); the view
// knows its own dotted path for messages. Getters with a fallback accept a missing key; a
// present key of the wrong type or out of range is always an error.
class Table {
 public:
  const std::string& path() const { return path_; }  // dotted path, "" for the root

  bool contains(std::string_view key) const;
  std::vector<std::string> keys() const;  // in file order

  Expected<std::string> string(std::string_view key) const;  // required
  Expected<std::string> string_or(std::string_view key, std::string fallback) const;
  // string_or, and an empty string is an error ("must not be empty").
  Expected<std::string> nonempty_string_or(std::string_view key, std::string fallback) const;
  Expected<std::int64_t> integer_or(std::string_view key, std::int64_t fallback, std::int64_t min,
                                    std::int64_t max) const;
  Expected<double> number_or(std::string_view key, double fallback, double min,
                             double max) const;  // integer or float in the file
  Expected<bool> boolean_or(std::string_view key, bool fallback) const;
  Expected<std::vector<std::string>> strings_or(std::string_view key,
                                                std::vector<std::string> fallback) const;
  // A sub-table; nullopt when absent, an error when present but not a table.
  Expected<std::optional<Table>> table(std::string_view key) const;
  // An array of tables ([[key]]); empty when absent.
  Expected<std::vector<Table>> tables(std::string_view key) const;

  // Unknown keys are refused (a typo must not silently fall back to a default).
  Status reject_unknown(std::initializer_list<std::string_view> known) const;

  // "file:line:col: dotted.key" for the key if present, else for this table.
  std::string where(std::string_view key) const;
  // An invalid-argument error located at key: "file:line:col: dotted.key: message".
  Error error_at(std::string_view key, std::string_view message) const;

 private:
  friend class Document;
  Table(const Document* doc, const toml::table* table, std::string path)
      : doc_(doc), table_(table), path_(std::move(path)) {}
  const Document* doc_;
  const toml::table* table_;
  std::string path_;
};

class Document {
 public:
  // Reads and parses a file; a syntax error is reported as "file:line:col: message".
  static Expected<Document> load_file(const std::filesystem::path& path);
  // Parses text; source_name stands in for the file name in messages.
  static Expected<Document> parse(std::string_view text, std::string source_name);

  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  ~Document();

  const std::string& source() const { return source_; }
  Table root() const;

 private:
  Document(std::unique_ptr<toml::table> root, std::string source);
  std::unique_ptr<toml::table> root_;
  std::string source_;
};

}  // namespace enclave::policy
