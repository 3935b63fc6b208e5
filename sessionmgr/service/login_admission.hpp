// The registry's part of a login (LoginService's check_device and admit), read from registry.db
// on its own read-only connection so that logins never wait behind an operator's change.
//
// Before PAM: the kiosk is a registered, active device presenting the very certificate it was
// kitted with (a certificate the CA issued again under the same name is not that device), its
// site may log in now, and the address is in that site's pools. After PAM: the same again (the
// site may have been suspended while the analyst typed), then the compartment: the one the
// kiosk asked for if the user's projects grant it, else the only one they grant; and the site's
// class, which the tier's site_classes are checked against when the ticket is issued.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>

#include "common/result.hpp"
#include "common/store.hpp"
#include "sessionmgr/core/registry.hpp"
#include "sessionmgr/service/login_service.hpp"

namespace enclave::sessionmgr {

class LoginAdmission {
 public:
  static Expected<std::unique_ptr<LoginAdmission>> open(const std::filesystem::path& registry,
                                                        std::function<TimePoint()> clock = {});

  // kPermission naming the check that said no; other codes for a registry that cannot be read.
  Status check_device(const LoginRequest& request);
  Expected<Admission> admit(const LoginRequest& request);

 private:
  LoginAdmission(store::Database db, std::function<TimePoint()> clock)
      : db_(std::move(db)), clock_(std::move(clock)) {}
  // The kiosk's checks; its site when they pass.
  Expected<registry::Site> kiosk_site_locked(const LoginRequest& request, TimePoint now);

  std::mutex mu_;
  store::Database db_;  // read-only; guarded by mu_
  std::function<TimePoint()> clock_;
};

}  // namespace enclave::sessionmgr
