// The local desktop provider: one desktop started per session on this machine, for the demo
// and the tests. Two kinds:
//   shadow  Xvfb + freerdp-shadow-cli (fast; no clipboard or drive channels on the host)
//   xrdp    xrdp + xrdp-sesman + Xvnc, with cliprdr and rdpdr enabled on the host, so a test
//           can prove the gateway keeps them closed. Needs root (a per-session system account
//           whose password is the session's desktop credential); skipped with a reason
//           otherwise.
// Each desktop gets its own TLS key and self-signed certificate; the gateway pins its
// SubjectPublicKeyInfo hash.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "common/result.hpp"

namespace enclave::sessionmgr {

enum class LocalDesktopKind { kShadow, kXrdp };

struct LocalDesktopOptions {
  LocalDesktopKind kind = LocalDesktopKind::kShadow;
  std::filesystem::path work_dir;  // created; holds the certificate, configs and logs
  std::string bind_address = "127.0.0.1";
  int width = 1024;
  int height = 768;
  std::string account;  // kXrdp: the system account to create for this desktop
  // The session's outbox (outbox.hpp), or empty. The desktop's processes find it in
  // ENCLAVE_OUTBOX; kXrdp gives it to the account once it exists and takes it back (to this
  // process's user) before the account is removed.
  std::filesystem::path outbox;
};

struct LocalDesktopInfo {
  std::string host;
  std::uint16_t port = 0;
  std::string server_name;  // the certificate's CN
  std::string pin_sha256;   // hex SHA-256 of the certificate's SubjectPublicKeyInfo (DER)
  std::string domain, user, password;  // the desktop credential the gateway injects
  std::string display;                 // the X display the desktop shows (":N"), for screenshots
  std::filesystem::path host_log;      // where the host logs which channels it was offered
};

class LocalDesktop {
 public:
  // Starts the processes and returns once the host answers an RDP probe (rdp_probe.hpp),
  // or fails naming the process that did not come up and the tail of its log.
  static Expected<std::unique_ptr<LocalDesktop>> start(const LocalDesktopOptions& options);
  ~LocalDesktop();  // stops every process it started and removes the account it created
  LocalDesktop(const LocalDesktop&) = delete;
  LocalDesktop& operator=(const LocalDesktop&) = delete;

  const LocalDesktopInfo& info() const;
  // Every process still running.
  bool alive() const;

 private:
  struct Impl;
  explicit LocalDesktop(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Why a local desktop of this kind cannot run here ("xrdp not installed", "needs root"),
// or empty when it can.
std::string local_desktop_unavailable(LocalDesktopKind kind);

}  // namespace enclave::sessionmgr
