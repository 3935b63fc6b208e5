#include "sessionmgr/service/login_service.hpp"

#include <array>

#include <openssl/rand.h>

#include "common/bytes.hpp"

namespace enclave::sessionmgr {

namespace {

constexpr const char* kFailedText = "login failed";

}  // namespace

struct LoginService::Login {
  LoginRequest request;
  std::unique_ptr<PamLogin> pam;
  TimePoint last_answer{};  // when the kiosk last spoke: failures are timed from here
  std::mutex mu;            // one call at a time per login
};

LoginService::LoginService(LoginServiceOptions options, LoginDeps deps)
    : options_(std::move(options)), deps_(std::move(deps)) {
  if (!deps_.clock) deps_.clock = [] { return std::chrono::system_clock::now(); };
  if (!deps_.random) {
    deps_.random = [](std::span<std::uint8_t> out) {
      if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) std::abort();
    };
  }
}

LoginService::~LoginService() {
  std::map<std::string, std::shared_ptr<Login>> logins;
  {
    std::lock_guard lock(mu_);
    logins.swap(logins_);
  }
  for (auto& [id, login] : logins) login->pam->cancel();
}

TimePoint LoginService::now() const {
  return deps_.clock();
}

std::size_t LoginService::in_progress() const {
  std::lock_guard lock(mu_);
  return logins_.size();
}

nlohmann::json LoginService::event(const std::string& type, const std::string& outcome,
                                   const Login& login, nlohmann::json details) const {
  details["device"] = login.request.device;
  details["source"] = login.request.source;
  return {{"type", type},
          {"outcome", outcome},
          {"actor_kind", "user"},
          {"actor", login.request.user},
          {"device", login.request.device},
          {"object", "login"},
          {"details", std::move(details)}};
}

void LoginService::forget(const std::string& id) {
  std::lock_guard lock(mu_);
  logins_.erase(id);
}

Expected<LoginReply> LoginService::start(const LoginRequest& request) {
  if (!deps_.audit->healthy()) {
    return fail(Errc::kUnavailable, "the audit log is unavailable: no login is started");
  }
  auto source = canonical_address(request.source);
  if (!source) return fail(Errc::kInvalidArgument, "login.start: source is not an IP address");
  auto login = std::make_shared<Login>();
  login->request = request;
  login->request.source = *source;
  login->last_answer = now();

  std::array<std::uint8_t, 16> raw{};
  deps_.random(raw);
  const std::string id = hex_encode(raw);
  {
    std::lock_guard lock(mu_);
    if (logins_.size() >= options_.max_logins) {
      deps_.audit->append(
          event("login.failed", "refused", *login, {{"reason", "too many logins in progress"}}));
      return fail(Errc::kUnavailable, "too many logins in progress");
    }
  }
  if (deps_.check_device) {
    if (auto kiosk = deps_.check_device(login->request); !kiosk) {
      return failed(id, *login, "kiosk: " + kiosk.error().describe());
    }
  }
  PamLoginOptions pam;
  pam.service = options_.pam_service;
  pam.confdir = options_.pam_confdir;
  pam.user = login->request.user;
  pam.remote_host = login->request.source;
  pam.device = login->request.device;
  pam.answer_timeout = options_.answer_timeout;
  auto started = PamLogin::start(std::move(pam));
  if (!started) {
    deps_.audit->append(
        event("login.failed", "failure", *login, {{"reason", started.error().describe()}}));
    return error_of(started);
  }
  login->pam = std::move(started).value();
  {
    std::lock_guard lock(mu_);
    if (logins_.size() >= options_.max_logins) {  // others started meanwhile
      login->pam->cancel();
      return fail(Errc::kUnavailable, "too many logins in progress");
    }
    logins_[id] = login;
  }
  deps_.audit->append(event("login.started", "info", *login, {{"login", id}}));
  std::lock_guard lock(login->mu);
  return step(id, login);
}

Expected<LoginReply> LoginService::answer(const std::string& login_id,
                                          std::optional<std::string> response) {
  std::shared_ptr<Login> login;
  {
    std::lock_guard lock(mu_);
    auto it = logins_.find(login_id);
    if (it != logins_.end()) login = it->second;
  }
  if (!login) {
    if (response) secure_wipe(response->data(), response->size());
    return fail(Errc::kNotFound, "no login in progress with that id");
  }
  std::lock_guard lock(login->mu);
  login->last_answer = now();
  ENCLAVE_TRY(login->pam->answer(std::move(response)));
  return step(login_id, login);
}

Status LoginService::cancel(const std::string& login_id, const std::string& reason) {
  std::shared_ptr<Login> login;
  {
    std::lock_guard lock(mu_);
    auto it = logins_.find(login_id);
    if (it == logins_.end()) return fail(Errc::kNotFound, "no login in progress with that id");
    login = it->second;
    logins_.erase(it);
  }
  login->pam->cancel();
  deps_.audit->append(
      event("login.cancelled", "info", *login, {{"login", login_id}, {"reason", reason}}));
  return {};
}

LoginReply LoginService::failed(const std::string& id, Login& login, const std::string& reason) {
  forget(id);
  deps_.audit->append(event("login.failed", "failure", login, {{"login", id}, {"reason", reason}}));
  return {
      {{"login_id", id},
       {"step", {{"type", "error"}, {"error_type", "auth_error"}, {"description", kFailedText}}}},
      login.last_answer + options_.failure_delay};
}

Expected<LoginReply> LoginService::step(const std::string& id, std::shared_ptr<Login> login) {
  LoginStep s = login->pam->next(options_.step_wait);
  if (s.state == LoginStep::State::kMessage) {
    return LoginReply{{{"login_id", id},
                       {"step",
                        {{"type", "auth_message"},
                         {"auth_message_type", kind_name(s.message.kind)},
                         {"auth_message", s.message.text}}}},
                      now()};
  }
  if (s.state == LoginStep::State::kFailed) return failed(id, *login, s.failure);

  auto admission = deps_.admit(login->request);
  if (!admission) return failed(id, *login, "registry: " + admission.error().describe());
  IssueRequest issue{login->request.user, login->request.device, login->request.source,
                     admission->compartment, admission->site_class};
  auto ticket = deps_.issue_ticket(issue);
  if (!ticket) return failed(id, *login, "ticket: " + ticket.error().describe());
  forget(id);
  deps_.audit->append(event("login.succeeded", "success", *login,
                            {{"login", id},
                             {"session_id", ticket->value("session_id", "")},
                             {"compartment", admission->compartment}}));
  nlohmann::json success = *ticket;
  success["type"] = "success";
  return LoginReply{{{"login_id", id}, {"step", std::move(success)}}, now()};
}

}  // namespace enclave::sessionmgr
