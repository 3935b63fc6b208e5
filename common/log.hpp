// Logging for every service: spdlog to stderr (and optionally a file), one line per message,
// prefixed with the service name. Secrets never reach a log line: values that are secret are
// wrapped in Secret<T>, which formats as "[redacted]", and every line also passes through
// redact(), which scrubs key=value pairs whose key names a secret (password, passwd, secret,
// token, ticket, key, credential, assertion) and PEM private-key blocks, as a second line of
// defence against a careless format string.
#pragma once

#include <spdlog/spdlog.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace enclave::log {

struct Options {
  std::string service;  // e.g. "enclave-auditd"
  spdlog::level::level_enum level = spdlog::level::info;
  std::optional<std::filesystem::path> file;  // also append to this file
};

// Installs the default logger for this process. Safe to call again (replaces it).
void init(const Options& options);

// Parses "trace|debug|info|warn|error|critical|off".
std::optional<spdlog::level::level_enum> parse_level(std::string_view name);

// Scrubs secret values from one line of text (see the file comment). A key is a run of
// letters, digits, '_', '-' or '.', optionally quoted, followed by '=' or ':'; it is secret when,
// lower-cased, it contains password, passwd, secret, token, ticket, credential or assertion, or
// is "key" (alone or as its last dotted part) or ends in private_key / api_key. Its value, quoted
// ("..." or '...' with backslash escapes, or \"...\" inside an escaped JSON string), an
// [array], or bare up to whitespace , ; or }, becomes [redacted]. An {object} is not replaced:
// its own keys are scanned. Only key/separator forms are matched, so "tokens processed: 5" is
// kept while "tokens: 5" is redacted: a counter lost is cheaper than a secret leaked.
std::string redact(std::string_view line);

template <class T>
class Secret {
 public:
  explicit Secret(T value) : value_(std::move(value)) {}
  const T& reveal() const { return value_; }

 private:
  T value_;
};

}  // namespace enclave::log

template <class T>
struct fmt::formatter<enclave::log::Secret<T>> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const enclave::log::Secret<T>&, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format("[redacted]", ctx);
  }
};
