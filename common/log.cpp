#include "common/log.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace enclave::log {

namespace {

// "2026-11-22T10:00:00.123Z enclave-auditd[4242] info: message", always UTC.
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%eZ %n[%P] %l: %v";

constexpr std::string_view kRedacted = "[redacted]";

bool is_key_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// Matching is on the lower-cased key with '-' read as '_', so "X-API-Key" and "api_key" agree.
// "key" alone must be the whole key (or its last dotted part): "keyboard" and "monkey" are not
// secrets.
bool is_secret_key(std::string_view key) {
  std::string k(key);
  for (char& c : k) {
    c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  static constexpr std::array<std::string_view, 7> kContains = {
      "password", "passwd", "secret", "token", "ticket", "credential", "assertion"};
  for (std::string_view word : kContains) {
    if (k.find(word) != std::string::npos) return true;
  }
  std::string_view last = k;
  if (auto dot = last.rfind('.'); dot != std::string_view::npos) last.remove_prefix(dot + 1);
  return last == "key" || last.ends_with("private_key") || last.ends_with("api_key");
}

// Index of the quote that closes a string whose content starts at `from`, honouring backslash
// escapes; npos when it is never closed.
std::size_t closing_quote(std::string_view text, std::size_t from, char quote) {
  for (std::size_t i = from; i < text.size(); ++i) {
    if (text[i] == '\\') {
      ++i;
    } else if (text[i] == quote) {
      return i;
    }
  }
  return std::string_view::npos;
}

// Index just past the ']' that closes the '[' at `open`, skipping quoted strings; the end of
// the text when it is never closed.
std::size_t bracket_end(std::string_view text, std::size_t open) {
  int depth = 0;
  for (std::size_t i = open; i < text.size(); ++i) {
    char c = text[i];
    if (c == '"' || c == '\'') {
      i = closing_quote(text, i + 1, c);
      if (i == std::string_view::npos) return text.size();
    } else if (c == '[') {
      ++depth;
    } else if (c == ']' && --depth == 0) {
      return i + 1;
    }
  }
  return text.size();
}

// Where a secret value lies: [begin, end) becomes [redacted]; quotes around it are kept so
// JSON stays JSON.
struct ValueSpan {
  std::size_t begin;
  std::size_t end;
  std::size_t resume;  // where scanning continues
};

// The value after a secret key ending at `pos`, if a separator ('=' or ':') follows the key.
std::optional<ValueSpan> value_after_key(std::string_view text, std::size_t pos) {
  const std::size_t n = text.size();
  // The closing quote of a quoted key: "key": or, inside an escaped JSON string, \"key\":
  if (pos < n && (text[pos] == '"' || text[pos] == '\'')) {
    ++pos;
  } else if (text.substr(pos).starts_with("\\\"")) {
    pos += 2;
  }
  while (pos < n && is_blank(text[pos])) ++pos;
  if (pos >= n || (text[pos] != '=' && text[pos] != ':')) return std::nullopt;
  ++pos;
  while (pos < n && is_blank(text[pos])) ++pos;
  if (pos >= n) return std::nullopt;

  const char c = text[pos];
  if (c == '"' || c == '\'') {
    std::size_t close = closing_quote(text, pos + 1, c);
    if (close == std::string_view::npos) return ValueSpan{pos + 1, n, n};
    return ValueSpan{pos + 1, close, close + 1};
  }
  if (text.substr(pos).starts_with("\\\"")) {
    std::size_t close = text.find("\\\"", pos + 2);
    if (close == std::string_view::npos) return ValueSpan{pos + 2, n, n};
    return ValueSpan{pos + 2, close, close + 2};
  }
  if (c == '{') return std::nullopt;  // an object: its own keys are scanned one by one
  if (c == '[') {
    std::size_t end = bracket_end(text, pos);
    return ValueSpan{pos, end, end};
  }
  std::size_t end = pos;
  while (end < n && !std::isspace(static_cast<unsigned char>(text[end])) && text[end] != ',' &&
         text[end] != ';' && text[end] != '}') {
    ++end;
  }
  return ValueSpan{pos, end, end};
}

// Replaces each PEM private-key block, BEGIN to END; a block without its END line is cut to
// the end of the text.
std::string redact_private_keys(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  constexpr std::string_view kEnd = "-----END ";
  constexpr std::string_view kDashes = "-----";
  constexpr std::string_view kLabelTail = "PRIVATE KEY";
  std::string out;
  std::size_t done = 0;
  std::size_t search = 0;
  while (true) {
    std::size_t begin = text.find(kBegin, search);
    if (begin == std::string_view::npos) break;
    std::size_t label_start = begin + kBegin.size();
    std::size_t label_end = text.find(kDashes, label_start);
    if (label_end == std::string_view::npos) break;
    std::string_view label = text.substr(label_start, label_end - label_start);
    bool plain_label = std::all_of(label.begin(), label.end(), [](char ch) {
      return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == ' ';
    });
    if (!plain_label || !label.ends_with(kLabelTail)) {
      search = label_start;
      continue;
    }
    std::size_t stop = text.size();
    if (std::size_t end = text.find(kEnd, label_end); end != std::string_view::npos) {
      std::size_t tail = text.find(std::string(kLabelTail) + std::string(kDashes), end);
      if (tail != std::string_view::npos) stop = tail + kLabelTail.size() + kDashes.size();
    }
    out.append(text.substr(done, begin - done));
    out += "[redacted private key]";
    done = search = stop;
  }
  out.append(text.substr(done));
  return out;
}

// Formats each message with the real pattern, scrubs the whole line, then hands the finished
// text to the real sinks, which print it verbatim.
class RedactingSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit RedactingSink(std::vector<spdlog::sink_ptr> sinks) : sinks_(std::move(sinks)) {
    for (auto& sink : sinks_) {
      sink->set_formatter(
          std::make_unique<spdlog::pattern_formatter>("%v", spdlog::pattern_time_type::local, ""));
    }
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    const std::string line = redact(std::string_view(formatted.data(), formatted.size()));
    spdlog::details::log_msg clean(msg.time, msg.source, msg.logger_name, msg.level, line);
    for (auto& sink : sinks_) sink->log(clean);
  }

  void flush_() override {
    for (auto& sink : sinks_) sink->flush();
  }

 private:
  std::vector<spdlog::sink_ptr> sinks_;  // single-threaded sinks: this sink's mutex guards them
};

}  // namespace

std::string redact(std::string_view line) {
  const std::string text = redact_private_keys(line);
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (!is_key_char(text[i])) {
      out.push_back(text[i++]);
      continue;
    }
    std::size_t key_end = i;
    while (key_end < text.size() && is_key_char(text[key_end])) ++key_end;
    std::string_view key(text.data() + i, key_end - i);
    out.append(key);
    i = key_end;
    if (!is_secret_key(key)) continue;
    auto value = value_after_key(text, key_end);
    if (!value || value->begin == value->end) continue;
    out.append(text, key_end, value->begin - key_end);
    out += kRedacted;
    out.append(text, value->end, value->resume - value->end);
    i = value->resume;
  }
  return out;
}

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  using spdlog::level::level_enum;
  static constexpr std::pair<std::string_view, level_enum> kLevels[] = {
      {"trace", level_enum::trace}, {"debug", level_enum::debug},
      {"info", level_enum::info},   {"warn", level_enum::warn},
      {"error", level_enum::err},   {"critical", level_enum::critical},
      {"off", level_enum::off},
  };
  for (const auto& [text, level] : kLevels) {
    if (name == text) return level;
  }
  return std::nullopt;
}

void init(const Options& options) {
  std::vector<spdlog::sink_ptr> sinks{std::make_shared<spdlog::sinks::stderr_sink_st>()};
  std::string file_error;
  if (options.file) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_st>(options.file->string()));
    } catch (const spdlog::spdlog_ex& e) {
      file_error = e.what();
    }
  }
  auto logger = std::make_shared<spdlog::logger>(options.service,
                                                 std::make_shared<RedactingSink>(std::move(sinks)));
  logger->set_formatter(
      std::make_unique<spdlog::pattern_formatter>(kPattern, spdlog::pattern_time_type::utc));
  logger->set_level(options.level);
  // Every line reaches the disk at once: the lines before a crash are the ones that matter.
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(std::move(logger));
  if (!file_error.empty()) {
    // init() has no error channel; a service without its log file still logs to stderr.
    spdlog::error("cannot open the log file {}: {}; logging to stderr only", options.file->string(),
                  file_error);
  }
}

}  // namespace enclave::log
