// The kiosk's fingerprint reader, over libfprint-2's synchronous API. GLib and libfprint stay
// behind this interface: callers see bytes, enums and typed errors.
//
// Prints leave the reader serialised (fp_print_serialize): the center stores them per user and
// reader, and sends them back down in a login's fingerprint challenge, where verify() compares
// a fresh scan with them. Matching happens here, on the kitted thin client, because that is
// where the finger is; the center trusts the result through the device key's signature
// (common/login/assertion.hpp), not through this code.
//
// libfprint's synchronous calls run GLib's global default main context until they finish, so
// a process drives its reader from one thread at a time (calls are serialised); cancel() is
// the one call meant for another thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave::kiosk {

// Why a scan failed and should simply be tried again (FpDeviceRetry).
enum class RetryReason { kGeneral, kTooShort, kCenterFinger, kRemoveFinger };
// What to tell the person at the reader: "Scan again.", "Swipe was too short; try again."...
const char* retry_advice(RetryReason reason);

struct FingerprintError {
  enum class Kind {
    kNoDevice,  // no reader, none with the driver asked for, or it was unplugged
    kBusy,      // the reader is in use (another process or another request)
    kRetry,     // the scan failed (finger too short, off-centre...): ask for it again
    kProtocol,  // the reader said something its driver did not understand
    kBadPrint,  // the print cannot be read, or was enrolled on another reader
    kCancelled,
    kDevice,  // any other failure the reader reports
  };
  Kind kind = Kind::kDevice;
  std::optional<RetryReason> retry;  // kRetry
  std::string driver;                // libfprint's driver id ("virtual_device"), when known
  std::string device;                // the reader's name, when known
  std::string message;

  // "fingerprint reader <device> (driver <driver>): <kind>: <message>"
  std::string describe() const;
};
const char* fingerprint_error_name(FingerprintError::Kind kind);  // "no device", "busy", ...

struct EnrollProgress {
  int completed_stages = 0;
  int total_stages = 0;
  std::optional<RetryReason> retry;  // this scan failed; the stage is asked for again
};

enum class VerifyResult { kMatch, kNoMatch };

class FingerprintReader {
 public:
  // Opens the first reader libfprint finds, or the first whose driver id is `driver`.
  // libfprint's virtual drivers appear only when their environment variable is set
  // (FP_VIRTUAL_DEVICE, FP_VIRTUAL_IMAGE) before this call.
  static Result<std::unique_ptr<FingerprintReader>, FingerprintError> open(
      std::string_view driver = {});
  ~FingerprintReader();  // closes the reader
  FingerprintReader(const FingerprintReader&) = delete;
  FingerprintReader& operator=(const FingerprintReader&) = delete;

  const std::string& driver() const;     // "virtual_device", "elanmoc", ...
  const std::string& device_id() const;  // libfprint's id of this reader
  const std::string& name() const;       // "Virtual device for debugging"
  int enroll_stages() const;             // scans one enrolment takes

  // Enrols a finger of `user`: blocks for enroll_stages() good scans, reporting each (and each
  // failed one) to `progress`, then returns the serialised print.
  Result<Bytes, FingerprintError> enroll(
      std::string_view user, const std::function<void(const EnrollProgress&)>& progress = {});

  // One scan compared with a serialised print. kBadPrint for bytes that are not a print or a
  // print from another reader; kRetry for a scan to repeat.
  Result<VerifyResult, FingerprintError> verify(ByteSpan serialized_print);

  // Called (on the thread running enroll() or verify()) each time the reader starts waiting
  // for a finger: when to tell the person to place it. Set it between operations.
  void on_finger_needed(std::function<void()> callback);

  // From any thread: the enroll() or verify() in progress ends with kCancelled. Does nothing
  // when none is in progress.
  void cancel();

 private:
  struct Impl;
  explicit FingerprintReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace enclave::kiosk
