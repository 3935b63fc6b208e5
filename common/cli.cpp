#include "common/cli.hpp"

#include "common/bytes.hpp"
#include "common/log.hpp"

#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

namespace enclave::cli {

namespace {

std::filesystem::path from_env(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// "1,204", "-3", "12.5", "40%": digits with thousands commas, an optional sign, decimal
// part and percent sign (dates and identifiers are not numbers).
bool is_number(std::string_view s) {
  if (!s.empty() && s.front() == '-') s.remove_prefix(1);
  if (!s.empty() && s.back() == '%') s.remove_suffix(1);
  if (s.empty() || s.front() < '0' || s.front() > '9') return false;
  bool point = false;
  for (char c : s) {
    if (c == '.' && !point) {
      point = true;
    } else if (!((c >= '0' && c <= '9') || (c == ',' && !point))) {
      return false;
    }
  }
  return true;
}

// Wide code points: CJK, Hangul, fullwidth forms (the scripts Japanese output uses).
bool is_wide(char32_t cp) {
  return (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
         (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
         (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
         (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x20000 && cp <= 0x3fffd);
}

}  // namespace

void add_common_options(CLI::App& app, CommonOptions& options) {
  options.policies = from_env("ENCLAVE_POLICIES", "/etc/enclave/policies");
  options.state_dir = from_env("ENCLAVE_STATE_DIR", "/var/lib/enclave");
  app.add_option("--policies", options.policies, "policy directory")
      ->envname("ENCLAVE_POLICIES")
      ->capture_default_str();
  app.add_option("--state-dir", options.state_dir, "state directory (databases, keys, sockets)")
      ->envname("ENCLAVE_STATE_DIR")
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
}

Expected<policy::Document> load_policy(const CommonOptions& options, std::string_view file) {
  return policy::Document::load_file(options.policies / std::string(file));
}

DaemonCommand::DaemonCommand(std::string daemon, const std::string& description)
    : name(std::move(daemon)), app(name + ": " + description) {
  add_common_options(app, common);
  app.require_subcommand(1);
  app.fallthrough();  // the common options may also follow the subcommand
}

std::optional<int> DaemonCommand::start(int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  auto level = log::parse_level(common.log_level);
  if (!level) {
    return report_error({Errc::kInvalidArgument, "unknown log level " + common.log_level});
  }
  log::init({name, *level, std::nullopt});
  return std::nullopt;
}

std::string field(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>().empty() ? "-" : it->get<std::string>();
  return it->dump();
}

std::size_t display_width(std::string_view text) {
  std::size_t width = 0;
  for (std::size_t i = 0; i < text.size();) {
    auto cp = utf8_next(text, i);
    if (!cp) {
      ++i;  // a stray byte shows as one replacement character
      ++width;
      continue;
    }
    width += is_wide(*cp) ? 2 : 1;
  }
  return width;
}

void TextTable::print(std::ostream& out) const {
  std::vector<std::size_t> widths(headers_.size(), 0);
  std::vector<bool> numeric(headers_.size(), !rows_.empty());  // right-aligned columns
  for (std::size_t c = 0; c < headers_.size(); ++c) widths[c] = display_width(headers_[c]);
  for (const auto& row : rows_) {
    for (std::size_t c = 0; c < widths.size(); ++c) {
      const std::string& cell = c < row.size() ? row[c] : std::string();
      widths[c] = std::max(widths[c], display_width(cell));
      if (!cell.empty() && cell != "-" && !is_number(cell)) numeric[c] = false;
    }
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t c = 0; c < widths.size(); ++c) {
      const std::string& cell = c < cells.size() ? cells[c] : std::string();
      std::string pad(widths[c] - display_width(cell), ' ');
      bool last = c + 1 == widths.size();
      if (numeric[c]) {
        text += pad + cell;
      } else {
        text += cell + (last ? "" : pad);
      }
      if (!last) text += "  ";
    }
    out << text << '\n';
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
}

std::string with_commas(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

int& exit_code() {
  static int code = 0;
  return code;
}

int report_error(const Error& error) {
  std::cerr << "error: " << error.message << '\n';
  return 2;
}

}  // namespace enclave::cli
