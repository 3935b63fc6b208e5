#include "sessionmgr/service/pam_stack.hpp"

#include <system_error>

#include "common/files.hpp"

namespace enclave::sessionmgr {

namespace {

constexpr std::string_view kOpen = "@ENCLAVE_";
constexpr std::size_t kMaxTemplateBytes = 64 * 1024;

bool pam_safe(std::string_view value) {
  return !value.empty() && value.find_first_of(" \t\n\r\f\v[]#") == std::string_view::npos;
}

// One line's text before any comment ('#' to the end of the line, as PAM reads it).
Expected<std::string> render_line(std::string_view line, std::size_t number,
                                  const std::map<std::string, std::string>& values) {
  const std::string_view code = line.substr(0, line.find('#'));
  std::string out;
  std::size_t at = 0;
  const auto where = "line " + std::to_string(number) + ": ";
  for (std::size_t open; (open = code.find(kOpen, at)) != std::string_view::npos;) {
    const std::size_t close = code.find('@', open + 1);
    if (close == std::string_view::npos) {
      return fail(Errc::kInvalidArgument, where + "a placeholder without its closing @");
    }
    const std::string name(code.substr(open + 1, close - open - 1));
    auto value = values.find(name);
    if (value == values.end()) {
      return fail(Errc::kInvalidArgument, where + "unknown placeholder @" + name + "@");
    }
    if (!pam_safe(value->second)) {
      return fail(
          Errc::kInvalidArgument,
          where + "@" + name + "@ would be \"" + value->second +
              "\", which PAM cannot read as one argument (empty, whitespace, brackets or #)");
    }
    out.append(code.substr(at, open - at));
    out += value->second;
    at = close + 1;
  }
  out.append(line.substr(at));
  return out;
}

}  // namespace

Expected<std::string> render_pam_stack(std::string_view text,
                                       const std::map<std::string, std::string>& values) {
  std::string out;
  out.reserve(text.size());
  std::size_t number = 1;
  for (std::size_t at = 0; at < text.size(); ++number) {
    std::size_t end = text.find('\n', at);
    end = end == std::string_view::npos ? text.size() : end + 1;
    auto line = render_line(text.substr(at, end - at), number, values);
    if (!line) return line;
    out += *line;
    at = end;
  }
  return out;
}

std::map<std::string, std::string> pam_stack_values(const SessiondSettings& s) {
  const std::filesystem::path modules =
      s.login.pam_modules.empty() ? default_pam_modules_dir() : s.login.pam_modules;
  return {{"ENCLAVE_STATE_DIR", s.state_dir.string()},
          {"ENCLAVE_PAM_MODULES", modules.string()},
          {"ENCLAVE_REGISTRY", s.registry.string()},
          {"ENCLAVE_PRINT_KEY", s.print_key.string()},
          {"ENCLAVE_AUDIT_SOCKET", s.audit_socket.string()}};
}

Expected<std::filesystem::path> install_pam_stack(const SessiondSettings& s) {
  const auto& source = s.login.pam_stack;
  auto text = read_file(source, kMaxTemplateBytes);
  if (!text) return error_of(text);
  auto rendered = render_pam_stack(*text, pam_stack_values(s));
  if (!rendered) {
    return fail(rendered.error().code, source.string() + ": " + rendered.error().message);
  }
  const std::filesystem::path dir = s.state_dir / "run" / "pam";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(Errc::kIo, dir.string() + ": " + ec.message());
  const std::filesystem::path faillock = s.state_dir / "faillock";
  std::filesystem::create_directories(faillock, ec);
  if (ec) return fail(Errc::kIo, faillock.string() + ": " + ec.message());
  std::filesystem::permissions(faillock, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, ec);
  ENCLAVE_TRY(write_file_atomically(dir / s.login.pam_service, *rendered, 0644));
  return dir;
}

std::filesystem::path default_pam_modules_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "/usr/lib/security";
  return (exe.parent_path().parent_path() / "lib" / "security").lexically_normal();
}

}  // namespace enclave::sessionmgr
