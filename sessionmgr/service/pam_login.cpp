#include "sessionmgr/service/pam_login.hpp"

#include <security/pam_appl.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "common/bytes.hpp"

namespace enclave::sessionmgr {

const char* kind_name(LoginMessage::Kind kind) {
  switch (kind) {
    case LoginMessage::Kind::kVisible:
      return "visible";
    case LoginMessage::Kind::kSecret:
      return "secret";
    case LoginMessage::Kind::kInfo:
      return "info";
    case LoginMessage::Kind::kError:
      return "error";
    case LoginMessage::Kind::kFingerprint:
      return "fingerprint";
  }
  return "info";
}

struct PamLogin::Impl {
  explicit Impl(PamLoginOptions o) : options(std::move(o)) {}
  ~Impl() { wipe_answer(); }

  const PamLoginOptions options;
  std::mutex mu;
  std::condition_variable changed;
  std::optional<LoginMessage> waiting;  // a message the stack waits on
  std::optional<std::string> answer;    // its answer, once given
  bool answered = false;
  bool cancelled = false;
  std::optional<LoginStep> result;  // the end of the transaction
  std::thread thread;

  void wipe_answer() {
    if (answer) secure_wipe(answer->data(), answer->size());
    answer.reset();
  }

  // One message of the stack: hands it to next() and waits for answer(). The reply is
  // malloc'd for PAM (nullptr for info and error). False: cancelled or overdue.
  bool converse(LoginMessage message, char** reply, std::string& why) {
    std::unique_lock lock(mu);
    if (cancelled) {
      why = "login cancelled";
      return false;
    }
    waiting = std::move(message);
    answered = false;
    changed.notify_all();
    const bool in_time =
        changed.wait_for(lock, options.answer_timeout, [&] { return answered || cancelled; });
    const bool needs_answer = waiting->needs_answer();
    waiting.reset();
    if (!in_time || cancelled) {
      why = cancelled
                ? "login cancelled"
                : "no answer within " + std::to_string(options.answer_timeout.count()) + " ms";
      wipe_answer();
      return false;
    }
    *reply = nullptr;
    if (needs_answer) {
      const std::string& text = answer ? *answer : std::string();
      *reply = static_cast<char*>(std::malloc(text.size() + 1));
      if (*reply == nullptr) {
        why = "out of memory";
        wipe_answer();
        return false;
      }
      std::memcpy(*reply, text.c_str(), text.size() + 1);
    }
    wipe_answer();
    return true;
  }

  struct ConversationData {
    Impl* impl;
    std::string failure;  // why the conversation failed, for the audit log
  };
  static int conversation(int count, const pam_message** messages, pam_response** replies_out,
                          void* data);

  void finish(LoginStep step) {
    std::lock_guard lock(mu);
    result = std::move(step);
    changed.notify_all();
  }

  void run();
};

namespace {

LoginStep failed_step(std::string why) {
  LoginStep step;  // named, not braced: GCC 12 at -O3 misreads the braced form as uninitialised
  step.state = LoginStep::State::kFailed;
  step.failure = std::move(why);
  return step;
}

LoginMessage message_of(const pam_message& m) {
  const std::string text = m.msg != nullptr ? m.msg : "";
  switch (m.msg_style) {
    case PAM_PROMPT_ECHO_ON:
      return {LoginMessage::Kind::kVisible, text};
    case PAM_PROMPT_ECHO_OFF:
      if (text.starts_with(kFingerprintPromptPrefix)) {
        return {LoginMessage::Kind::kFingerprint, text.substr(kFingerprintPromptPrefix.size())};
      }
      return {LoginMessage::Kind::kSecret, text};
    case PAM_ERROR_MSG:
      return {LoginMessage::Kind::kError, text};
    default:
      return {LoginMessage::Kind::kInfo, text};
  }
}

void free_replies(pam_response* replies, int count) {
  for (int i = 0; i < count; ++i) {
    if (replies[i].resp == nullptr) continue;
    secure_wipe(replies[i].resp, std::strlen(replies[i].resp));
    std::free(replies[i].resp);
  }
  std::free(replies);
}

}  // namespace

int PamLogin::Impl::conversation(int count, const pam_message** messages,
                                 pam_response** replies_out, void* data) {
  auto* conv = static_cast<ConversationData*>(data);
  if (count <= 0 || count > PAM_MAX_NUM_MSG) return PAM_CONV_ERR;
  auto* replies = static_cast<pam_response*>(std::calloc(count, sizeof(pam_response)));
  if (replies == nullptr) return PAM_BUF_ERR;
  for (int i = 0; i < count; ++i) {
    // Linux-PAM passes an array of pointers (Solaris an array of structs): same for count 1.
    const pam_message& m = *messages[i];
    if (m.msg_style != PAM_PROMPT_ECHO_ON && m.msg_style != PAM_PROMPT_ECHO_OFF &&
        m.msg_style != PAM_ERROR_MSG && m.msg_style != PAM_TEXT_INFO) {
      conv->failure =
          "a PAM module sent an unsupported message style " + std::to_string(m.msg_style);
      free_replies(replies, count);
      return PAM_CONV_ERR;
    }
    if (!conv->impl->converse(message_of(m), &replies[i].resp, conv->failure)) {
      free_replies(replies, count);
      return PAM_CONV_ERR;
    }
  }
  // pam_info() and pam_error() pass no place for replies.
  if (replies_out != nullptr) {
    *replies_out = replies;
  } else {
    free_replies(replies, count);
  }
  return PAM_SUCCESS;
}

namespace {

// PAM would sleep after a failure (pam_unix asks for 2 s); the login service answers every
// failure after its own fixed delay instead.
void no_fail_delay(int, unsigned, void*) {}

}  // namespace

void PamLogin::Impl::run() {
  ConversationData data{this, {}};
  const pam_conv conv{conversation, &data};
  pam_handle_t* pamh = nullptr;
  int rc = pam_start_confdir(options.service.c_str(), options.user.c_str(), &conv,
                             options.confdir.empty() ? nullptr : options.confdir.c_str(), &pamh);
  if (rc != PAM_SUCCESS) {
    finish(failed_step(std::string("pam_start: ") + pam_strerror(pamh, rc)));
    if (pamh != nullptr) pam_end(pamh, rc);
    return;
  }
  auto fail_at = [&](const char* step) {
    std::string why = std::string(step) + ": " + pam_strerror(pamh, rc);
    if (!data.failure.empty()) why += " (" + data.failure + ")";
    return failed_step(why);
  };
  const std::string device = "ENCLAVE_DEVICE=" + options.device;
  rc = pam_set_item(pamh, PAM_RHOST, options.remote_host.c_str());
  if (rc == PAM_SUCCESS) {
    rc = pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&no_fail_delay));
  }
  if (rc == PAM_SUCCESS) rc = pam_putenv(pamh, device.c_str());
  LoginStep step;
  if (rc != PAM_SUCCESS) {
    step = fail_at("pam_set_item");
  } else if ((rc = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK)) != PAM_SUCCESS) {
    step = fail_at("pam_authenticate");
  } else if ((rc = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK)) != PAM_SUCCESS) {
    step = fail_at("pam_acct_mgmt");
  } else {
    step.state = LoginStep::State::kSucceeded;
  }
  pam_end(pamh, rc);
  finish(std::move(step));
}

PamLogin::PamLogin(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Expected<std::unique_ptr<PamLogin>> PamLogin::start(PamLoginOptions options) {
  // Said here, naming the file: PAM itself only says "critical error" (and leaks).
  if (!options.confdir.empty()) {
    std::error_code ec;
    const auto file = options.confdir / options.service;
    if (!std::filesystem::exists(file, ec) &&
        !std::filesystem::exists(options.confdir / "other", ec)) {
      return fail(Errc::kNotFound, "PAM service file " + file.string() + " not found");
    }
  }
  auto impl = std::make_shared<Impl>(std::move(options));
  try {
    impl->thread = std::thread([impl] { impl->run(); });
  } catch (const std::system_error& e) {
    return fail(Errc::kUnavailable, std::string("cannot start a login thread: ") + e.what());
  }
  return std::unique_ptr<PamLogin>(new PamLogin(std::move(impl)));
}

PamLogin::~PamLogin() {
  cancel();
  if (impl_->thread.joinable()) impl_->thread.join();
}

LoginStep PamLogin::next(std::chrono::milliseconds wait) {
  std::unique_lock lock(impl_->mu);
  Impl& m = *impl_;
  const bool ready = m.changed.wait_for(lock, wait, [&] {
    return m.result.has_value() || (!m.cancelled && m.waiting && !m.answered);
  });
  if (m.result) return *m.result;
  if (!ready) return failed_step("timed out waiting for the PAM stack");
  LoginStep step;
  step.state = LoginStep::State::kMessage;
  step.message = *m.waiting;
  return step;
}

Status PamLogin::answer(std::optional<std::string> response) {
  std::lock_guard lock(impl_->mu);
  Impl& m = *impl_;
  if (!m.waiting || m.answered) {
    if (response) secure_wipe(response->data(), response->size());
    return fail(Errc::kConflict, "no login message is waiting for an answer");
  }
  m.wipe_answer();
  m.answer = std::move(response);
  m.answered = true;
  m.changed.notify_all();
  return {};
}

void PamLogin::cancel() {
  std::lock_guard lock(impl_->mu);
  impl_->cancelled = true;
  impl_->changed.notify_all();
}

}  // namespace enclave::sessionmgr
