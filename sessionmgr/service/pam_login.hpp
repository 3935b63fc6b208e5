// One PAM transaction for one login (service `enclave-login` by default, its stack read from
// the policy directory with pam_start_confdir, so operators change factors without a
// rebuild). PAM is blocking and the conversation is remote (the analyst answers at the
// kiosk, through the gateway), so each transaction runs on its own thread: the stack's
// conversation calls hand each message to the caller and block until the answer comes back,
// the login is cancelled, or the answer is overdue.
//
// Every message is one step, as in greetd: visible and secret prompts (and the fingerprint
// prompt of pam_enclave_fingerprint) take an answer; info and error messages take an empty
// acknowledgment. The transaction runs pam_authenticate then pam_acct_mgmt; PAM's own
// failure delay is replaced by the caller's (PAM_FAIL_DELAY), so that every failure can be
// answered after the same time whatever the reason.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace enclave::sessionmgr {

// A PAM_PROMPT_ECHO_OFF whose text starts with this asks the kiosk for a fingerprint
// assertion; the rest of the text is the challenge (common/login/assertion.hpp).
inline constexpr std::string_view kFingerprintPromptPrefix = "ENCLAVE-FINGERPRINT ";

struct LoginMessage {
  enum class Kind { kVisible, kSecret, kInfo, kError, kFingerprint };
  Kind kind = Kind::kInfo;
  std::string text;  // for kFingerprint: the challenge, without the prefix
  bool needs_answer() const { return kind != Kind::kInfo && kind != Kind::kError; }
};
const char* kind_name(LoginMessage::Kind kind);  // "visible", "secret", ...

struct LoginStep {
  enum class State { kMessage, kSucceeded, kFailed };
  State state = State::kFailed;
  LoginMessage message;  // kMessage
  // kFailed: PAM's reason (pam_strerror and the step that failed), for the audit log only:
  // the analyst is told the same thing whatever it says.
  std::string failure;
};

struct PamLoginOptions {
  std::string service = "enclave-login";
  std::filesystem::path confdir;  // where the service file lives; empty: PAM's default
  std::string user;
  std::string remote_host;  // PAM_RHOST: the kiosk's address as the gateway saw it
  std::string device;       // the kiosk's device id, to the modules as ENCLAVE_DEVICE
  std::chrono::milliseconds answer_timeout{std::chrono::minutes(2)};
};

class PamLogin {
 public:
  // Starts the transaction's thread. Errors: the service file is missing from confdir (and
  // no "other"), or the thread cannot start.
  static Expected<std::unique_ptr<PamLogin>> start(PamLoginOptions options);
  ~PamLogin();  // cancels an unfinished transaction and joins its thread
  PamLogin(const PamLogin&) = delete;
  PamLogin& operator=(const PamLogin&) = delete;

  // The next step: blocks until the stack sends a message or the transaction ends, at most
  // `wait` (then kFailed with "timed out"). After kSucceeded or kFailed it returns the same.
  LoginStep next(std::chrono::milliseconds wait);
  // Answers the message next() returned (nullopt for info and error). kConflict when no
  // message is waiting for one.
  Status answer(std::optional<std::string> response);
  // Ends the transaction: a waiting conversation call fails, the stack unwinds.
  void cancel();

 private:
  struct Impl;
  explicit PamLogin(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace enclave::sessionmgr
