// Test support: an Xvfb display for the CLIENT side of RDP tests. xfreerdp runs on it, and
// screenshots of its root window show what the client got.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.hpp"

namespace enclave::testing {

// Why the X tests cannot run here ("Xvfb not installed", ...), or empty when they can. Needs
// Xvfb, xfreerdp, xwd and ImageMagick's convert.
std::string x_unavailable();

class XDisplay {
 public:
  // Starts Xvfb on a free display (-displayfd), WIDTHxHEIGHTx24; logs go to log_dir. Throws
  // std::runtime_error when Xvfb does not come up (tests call x_unavailable() first).
  explicit XDisplay(const std::filesystem::path& log_dir, int width = 1280, int height = 900);
  ~XDisplay();
  XDisplay(const XDisplay&) = delete;
  XDisplay& operator=(const XDisplay&) = delete;

  const std::string& name() const { return name_; }  // ":N"

  // The root window as PNG (xwd -root | convert xwd:- png:PATH). False when either failed.
  bool screenshot(const std::filesystem::path& png) const;

  // xfreerdp on this display with the given arguments (e.g. /v:127.0.0.1:3389 /cert:ignore).
  // HOME and XDG_CONFIG_HOME point into log_dir so that known_hosts and certificates stay in
  // the test's scratch space; extra_env is added.
  std::unique_ptr<Child> run_xfreerdp(const std::vector<std::string>& args,
                                      const std::map<std::string, std::string>& extra_env = {});

 private:
  std::filesystem::path log_dir_;
  std::unique_ptr<Child> xvfb_;
  std::string name_;
};

// Facts about a PNG, from ImageMagick: how many distinct colours it has and how many pixels
// have the colour #RRGGBB, within fuzz_percent (lossy codecs such as H.264 shift colours a
// little). -1 when the file cannot be read.
int png_colour_count(const std::filesystem::path& png);
long png_pixels_of_colour(const std::filesystem::path& png, const std::string& hex_rgb,
                          int fuzz_percent = 0);

}  // namespace enclave::testing
