#include "tests/support/x_display.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace enclave::testing {

namespace {

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (!dir.empty() && ::access((dir + "/" + name).c_str(), X_OK) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::string x_unavailable() {
  for (const char* tool : {"Xvfb", "xfreerdp", "xwd", "convert"}) {
    if (!on_path(tool)) return std::string(tool) + " not installed";
  }
  return "";
}

XDisplay::XDisplay(const std::filesystem::path& log_dir, int width, int height)
    : log_dir_(log_dir) {
  // Xvfb writes the display it chose to a file descriptor; a file in log_dir works as well as
  // a pipe and keeps Child unchanged: "-displayfd 3" with fd 3 opened by a shell redirection.
  const auto number_file = log_dir / "xvfb.display";
  const std::string screen = std::to_string(width) + "x" + std::to_string(height) + "x24";
  xvfb_ = std::make_unique<Child>(
      std::vector<std::string>{
          "sh", "-c",
          "exec Xvfb -displayfd 3 -screen 0 " + screen + " -nolisten tcp -noreset 3>\"$0\"",
          number_file.string()},
      std::map<std::string, std::string>{}, log_dir);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    auto text = [&] {
      FILE* f = std::fopen(number_file.c_str(), "r");
      if (!f) return std::string();
      char buf[32] = {};
      std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
      std::fclose(f);
      return std::string(buf, n);
    }();
    if (text.find('\n') != std::string::npos) {
      name_ = ":" + text.substr(0, text.find('\n'));
      return;
    }
    if (!xvfb_->running()) break;
    ::usleep(20000);
  }
  throw std::runtime_error("Xvfb did not start: " + xvfb_->stderr_text());
}

XDisplay::~XDisplay() {
  if (xvfb_ && xvfb_->running()) {
    xvfb_->signal(SIGTERM);
    if (xvfb_->wait(std::chrono::seconds(5)) == -1) xvfb_->signal(SIGKILL);
  }
}

bool XDisplay::screenshot(const std::filesystem::path& png) const {
  auto r = run({"sh", "-c", "xwd -root -silent -display \"$0\" | convert xwd:- \"png:$1\"", name_,
                png.string()},
               {}, std::chrono::seconds(60));
  return r.exit_code == 0 && std::filesystem::exists(png);
}

std::unique_ptr<Child> XDisplay::run_xfreerdp(const std::vector<std::string>& args,
                                              const std::map<std::string, std::string>& extra_env) {
  std::vector<std::string> argv{"xfreerdp"};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto home = log_dir_ / "xfreerdp-home";
  std::filesystem::create_directories(home);
  std::map<std::string, std::string> env{{"DISPLAY", name_},
                                         {"HOME", home.string()},
                                         {"XDG_CONFIG_HOME", (home / ".config").string()}};
  for (const auto& [k, v] : extra_env) env[k] = v;
  return std::make_unique<Child>(argv, env, log_dir_);
}

int png_colour_count(const std::filesystem::path& png) {
  auto r = run({"convert", png.string(), "-format", "%k", "info:"});
  if (r.exit_code != 0 || r.out.empty()) return -1;
  return std::atoi(r.out.c_str());
}

long png_pixels_of_colour(const std::filesystem::path& png, const std::string& hex_rgb,
                          int fuzz_percent) {
  // Pixels of that colour become white, all others black; the mean times the area counts them.
  auto r = run({"convert", png.string(), "-alpha", "off", "-fuzz",
                std::to_string(fuzz_percent) + "%", "-fill", "black", "+opaque", hex_rgb, "-fill",
                "white", "-opaque", hex_rgb, "-format", "%[fx:round(mean*w*h)]", "info:"});
  if (r.exit_code != 0 || r.out.empty()) return -1;
  return std::atol(r.out.c_str());
}

}  // namespace enclave::testing
