// The login service behind the gateway's login API (design "The login path"): one PAM
// transaction per login (PamLogin), stepped by the gateway's login.start / login.answer /
// login.cancel calls; on success the registry decides the compartment and a one-time ticket
// is issued for the kiosk's device and address.
//
// What the analyst sees does not depend on why a login failed: every failure is the same
// "error" step ("login failed"), answered `failure_delay` after the answer that caused it
// (the caller waits until `not_before`), whether the password, the finger, the account, the
// registry or the ticket said no. The audit log has the real reason.
//
// Audit events (actor: the user as typed; details.device, details.source, details.login):
//   login.started info | login.succeeded success {session_id, compartment} |
//   login.failed failure {reason} | login.cancelled info {reason}
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.hpp"
#include "sessionmgr/core/lifecycle.hpp"
#include "sessionmgr/core/ticket.hpp"
#include "sessionmgr/service/pam_login.hpp"
#include "sessionmgr/service/session_service.hpp"

namespace enclave::sessionmgr {

struct LoginServiceOptions {
  std::string pam_service = "enclave-login";
  std::filesystem::path pam_confdir;  // empty: PAM's default (/etc/pam.d)
  // Every failure is answered this long after the answer that caused it.
  std::chrono::milliseconds failure_delay{std::chrono::seconds(1)};
  // How long one call waits for the PAM stack's next step (a slow password backend).
  std::chrono::milliseconds step_wait{std::chrono::seconds(20)};
  // A login waiting for the kiosk longer than this is cancelled.
  std::chrono::milliseconds answer_timeout{std::chrono::minutes(2)};
  std::size_t max_logins = 256;  // logins in progress at once
};

struct LoginRequest {
  std::string user, device, source, compartment;  // compartment may be empty
  std::string certificate_sha256;  // hex SHA-256 of the kiosk's verified certificate (DER)
};

struct Admission {
  std::string compartment, site_class;
};

struct LoginDeps {
  AuditSink* audit = nullptr;
  RandomSource random;               // login ids
  std::function<TimePoint()> clock;  // default: system_clock::now
  // Before PAM starts: the registry's word on the kiosk (registered, active, the certificate
  // it was kitted with, its site allowed to log in, the address in the site's pools). A
  // refusal is a failed login like any other; it says nothing about the user.
  std::function<Status(const LoginRequest& request)> check_device;
  // After PAM said yes, the registry's word: the compartment this user enters now (the one
  // asked for, or the only one their projects grant) and the site class of the kiosk's
  // site, or an error saying why not (for the audit log).
  std::function<Expected<Admission>(const LoginRequest& request)> admit;
  // Issues the ticket (SessionService::issue in the daemon).
  std::function<Expected<nlohmann::json>(const IssueRequest& request)> issue_ticket;
};

// A step for the gateway: {"login_id", "step": {"type": "auth_message", "auth_message_type",
// "auth_message"} | {"type": "success", "ticket", "expires_at", "session_id", "desktop"} |
// {"type": "error", "error_type": "auth_error", "description"}}; not before `not_before`.
struct LoginReply {
  nlohmann::json body;
  TimePoint not_before{};
};

class LoginService {
 public:
  LoginService(LoginServiceOptions options, LoginDeps deps);
  ~LoginService();  // cancels every login in progress

  // login.start. kUnavailable when max_logins are in progress or the audit log is down.
  Expected<LoginReply> start(const LoginRequest& request);
  // login.answer. kNotFound for an unknown or finished login id.
  Expected<LoginReply> answer(const std::string& login_id, std::optional<std::string> response);
  // login.cancel: the kiosk gave up or its connection closed.
  Status cancel(const std::string& login_id, const std::string& reason);
  std::size_t in_progress() const;

 private:
  struct Login;
  Expected<LoginReply> step(const std::string& id, std::shared_ptr<Login> login);
  LoginReply failed(const std::string& id, Login& login, const std::string& reason);
  void forget(const std::string& id);
  nlohmann::json event(const std::string& type, const std::string& outcome, const Login& login,
                       nlohmann::json details) const;
  TimePoint now() const;

  LoginServiceOptions options_;
  LoginDeps deps_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Login>> logins_;  // guarded by mu_
};

}  // namespace enclave::sessionmgr
