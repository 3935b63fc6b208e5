// The fingerprint factor of a login, as pam_enclave_fingerprint runs it (design "The login
// path", step 4), kept apart from PAM so that it is tested directly as well as through a real
// PAM stack.
//
// Before anything is asked: the kiosk's device must be registered and active, its site
// approved and unexpired, the source address inside that site's pools, the user must have a
// print enrolled on this device's reader, and the user must not be in biometric back-off.
// Then a challenge with a fresh nonce and the enrolled prints goes to the kiosk (through the
// conversation); the answer must be an assertion signed by that device's key, for this nonce,
// user, device and one of the offered prints, recent, and saying "match". A failed match
// counts toward the back-off (sessionmgr/core/biometric_backoff.hpp); a success resets it.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/login/assertion.hpp"
#include "common/result.hpp"
#include "common/store.hpp"
#include "sessionmgr/core/biometric_backoff.hpp"
#include "sessionmgr/core/registry.hpp"

namespace enclave::sessionmgr {

// What the registry says about this login, looked up by the caller.
struct FingerprintContext {
  std::string user;
  std::string source;     // the kiosk's address (PAM_RHOST)
  std::string device_id;  // from the kiosk's verified certificate (ENCLAVE_DEVICE)
  std::optional<registry::Device> device;
  std::optional<registry::Site> site;        // the device's site
  std::vector<login::EnrolledPrint> prints;  // decrypted, for this user on this device
  std::function<TimePoint()> clock = [] { return std::chrono::system_clock::now(); };
};

// The kiosk's part of every login, checked before anything is asked: the device registered
// and active, its site allowed to log in at `now`, the source address inside that site's
// pools. kPermission naming the check that said no.
Status check_kiosk(const std::string& device_id, const std::optional<registry::Device>& device,
                   const std::optional<registry::Site>& site, const std::string& source,
                   TimePoint now);

// Asks the kiosk: the challenge text goes out, the signed assertion's wire text comes back.
class FingerprintConversation {
 public:
  virtual ~FingerprintConversation() = default;
  virtual Expected<std::string> ask(const std::string& challenge) = 0;
};

// Per-user back-off state in its own SQLite file (the PAM module's; nothing else writes it).
class BackoffStore {
 public:
  static Expected<BackoffStore> open(const std::filesystem::path& path);
  Expected<BackoffState> load(const std::string& user);
  Status save(const std::string& user, const BackoffState& state);

 private:
  explicit BackoffStore(store::Database db) : db_(std::move(db)) {}
  store::Database db_;
};

struct FingerprintOutcome {
  enum class Kind {
    kAccepted,  // the finger matched: the factor succeeds
    kRefused,   // refused before asking (device, site, address, no print, back-off)
    kFailed,    // asked, and the answer was no match or not valid: counts toward back-off
    kNoAnswer,  // the conversation failed (the kiosk went away): not counted
  };
  Kind kind = Kind::kRefused;
  std::string reason;    // for the audit log: names the check that said no
  std::string print_id;  // the print the assertion named (kAccepted, kFailed with a match)
  int consecutive_failures = 0;
  std::chrono::seconds locked_for{0};  // the back-off now in force
};
const char* outcome_name(FingerprintOutcome::Kind kind);  // "accepted", "refused", ...

struct FingerprintPolicy {
  BackoffPolicy backoff;
  std::chrono::seconds max_age{120};  // how long a challenge may take to answer
};

FingerprintOutcome authenticate_fingerprint(const FingerprintContext& context,
                                            FingerprintConversation& conversation,
                                            BackoffStore& backoff, const FingerprintPolicy& policy);

}  // namespace enclave::sessionmgr
