// Desktop credentials: the account and password the gateway injects into the Client Info PDU
// so that the analyst never types or sees them.
//
// Static hosts, credentials = "per-session" (the default): for every new session the session
// manager makes a random password and runs the host's provision_command as
//     PROVISION_COMMAND... HOST PORT
// with "ACCOUNT\nPASSWORD\n" on its standard input. The command must set ACCOUNT's password on
// HOST to PASSWORD (e.g. over SSH with chpasswd, or an AD password reset) and exit 0; any other
// exit, or no exit within 30 s, refuses the ticket. When the session ends the command runs again
// with a fresh random password nobody keeps, so the session's password stops working.
// Passwords live only in the session manager's memory: a restart ends every open session.
//
// Static hosts, credentials = "fixed": one account for every session, from credentials_file, a
// TOML file (user = "...", password = "...", domain = "...") that must be a regular file owned
// by root or by the daemon's user and readable by nobody else (mode 0600 or 0400).
//
// Local desktops make their own credentials (LocalDesktopInfo).
#pragma once

#include <chrono>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "sessionmgr/core/ticket.hpp"

namespace enclave::sessionmgr {

struct DesktopCredentials {
  std::string domain, user, password;

  DesktopCredentials() = default;
  DesktopCredentials(std::string d, std::string u, std::string p)
      : domain(std::move(d)), user(std::move(u)), password(std::move(p)) {}
  DesktopCredentials(const DesktopCredentials&) = default;
  DesktopCredentials& operator=(const DesktopCredentials&) = default;
  DesktopCredentials(DesktopCredentials&&) = default;
  DesktopCredentials& operator=(DesktopCredentials&&) = default;
  ~DesktopCredentials();  // wipes the password
};

// OpenSSL's RAND_bytes; aborts the process if the CSPRNG fails (no randomness, no secure
// tickets or passwords: stopping is the only safe answer).
void openssl_random(std::span<std::uint8_t> out);

// 24 characters of [A-Za-z0-9] with at least one of each class (about 142 bits).
std::string random_password(const RandomSource& random);

// Runs argv with extra arguments appended and `input` on its standard input; kUnavailable
// when it cannot start, exits non-zero (with the tail of its stderr) or runs past timeout.
Status run_with_input(std::vector<std::string> argv, const std::vector<std::string>& extra,
                      const std::string& input,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Reads and checks a credentials_file (see the file comment).
Expected<DesktopCredentials> read_fixed_credentials(const std::filesystem::path& path);

}  // namespace enclave::sessionmgr
