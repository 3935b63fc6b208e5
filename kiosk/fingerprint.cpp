#include "kiosk/fingerprint.hpp"

#include <fprint.h>
#include <gio/gio.h>

#include <cstdint>
#include <mutex>
#include <utility>

namespace enclave::kiosk {

namespace {

using Kind = FingerprintError::Kind;

constexpr std::size_t kMinPrintBytes = 4;

template <class T>
struct GObjectUnref {
  void operator()(T* object) const { g_object_unref(object); }
};
using ContextPtr = std::unique_ptr<FpContext, GObjectUnref<FpContext>>;
using DevicePtr = std::unique_ptr<FpDevice, GObjectUnref<FpDevice>>;
using PrintPtr = std::unique_ptr<FpPrint, GObjectUnref<FpPrint>>;

struct GErrorFree {
  void operator()(GError* error) const { g_error_free(error); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorFree>;

RetryReason retry_reason(int code) {
  switch (code) {
    case FP_DEVICE_RETRY_TOO_SHORT:
      return RetryReason::kTooShort;
    case FP_DEVICE_RETRY_CENTER_FINGER:
      return RetryReason::kCenterFinger;
    case FP_DEVICE_RETRY_REMOVE_FINGER:
      return RetryReason::kRemoveFinger;
    default:
      return RetryReason::kGeneral;
  }
}

Kind kind_of(const GError* error) {
  if (error->domain == FP_DEVICE_RETRY) return Kind::kRetry;
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) return Kind::kCancelled;
  if (error->domain != FP_DEVICE_ERROR) return Kind::kDevice;
  switch (error->code) {
    case FP_DEVICE_ERROR_BUSY:
    case FP_DEVICE_ERROR_ALREADY_OPEN:
      return Kind::kBusy;
    case FP_DEVICE_ERROR_PROTO:
      return Kind::kProtocol;
    case FP_DEVICE_ERROR_DATA_INVALID:
    case FP_DEVICE_ERROR_DATA_NOT_FOUND:
      return Kind::kBadPrint;
    case FP_DEVICE_ERROR_REMOVED:
      return Kind::kNoDevice;
    default:
      return Kind::kDevice;
  }
}

// What cancel() and the operation in progress share. Idle callbacks hold it too, and may run
// after the reader is gone.
struct CancelState {
  std::mutex mu;
  GCancellable* current = nullptr;  // guarded by mu: the operation in progress, if any
  std::uint64_t serial = 0;         // guarded by mu: counts operations
};

// One enroll or verify: its GCancellable is cancel()'s target while it lasts.
class Operation {
 public:
  explicit Operation(CancelState& state) : state_(state), cancellable_(g_cancellable_new()) {
    std::lock_guard lock(state_.mu);
    state_.current = cancellable_;
    ++state_.serial;
  }
  ~Operation() {
    {
      std::lock_guard lock(state_.mu);
      state_.current = nullptr;
    }
    g_object_unref(cancellable_);
  }
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;
  GCancellable* cancellable() const { return cancellable_; }

 private:
  CancelState& state_;
  GCancellable* cancellable_;
};

struct CancelRequest {
  std::shared_ptr<CancelState> state;
  std::uint64_t serial;
};

gboolean run_cancel(gpointer data) {
  auto* request = static_cast<CancelRequest*>(data);
  GCancellable* target = nullptr;
  {
    std::lock_guard lock(request->state->mu);
    // Only the operation cancel() saw: a later one is not the caller's to end.
    if (request->state->current && request->state->serial == request->serial) {
      target = G_CANCELLABLE(g_object_ref(request->state->current));
    }
  }
  if (target) {
    g_cancellable_cancel(target);
    g_object_unref(target);
  }
  return G_SOURCE_REMOVE;
}

// libfprint's strings may be NULL (a print that names no driver).
std::string text_of(const char* text) {
  return text ? text : "(none)";
}

void free_cancel_request(gpointer data) {
  delete static_cast<CancelRequest*>(data);
}

struct ProgressRelay {
  const std::function<void(const EnrollProgress&)>* callback;
  int total_stages;
};

void relay_progress(FpDevice*, gint completed_stages, FpPrint*, gpointer data, GError* error) {
  const auto* relay = static_cast<const ProgressRelay*>(data);
  if (!*relay->callback) return;
  EnrollProgress progress{completed_stages, relay->total_stages, std::nullopt};
  if (error && error->domain == FP_DEVICE_RETRY) progress.retry = retry_reason(error->code);
  (*relay->callback)(progress);
}

}  // namespace

const char* retry_advice(RetryReason reason) {
  switch (reason) {
    case RetryReason::kGeneral:
      return "The scan did not work. Place your finger again.";
    case RetryReason::kTooShort:
      return "The swipe was too short. Try again.";
    case RetryReason::kCenterFinger:
      return "Center your finger on the reader and try again.";
    case RetryReason::kRemoveFinger:
      return "Lift your finger and place it again.";
  }
  return "Place your finger again.";
}

const char* fingerprint_error_name(FingerprintError::Kind kind) {
  switch (kind) {
    case Kind::kNoDevice:
      return "no device";
    case Kind::kBusy:
      return "busy";
    case Kind::kRetry:
      return "retry";
    case Kind::kProtocol:
      return "protocol error";
    case Kind::kBadPrint:
      return "bad print";
    case Kind::kCancelled:
      return "cancelled";
    case Kind::kDevice:
      return "device error";
  }
  return "device error";
}

std::string FingerprintError::describe() const {
  std::string where = "fingerprint reader";
  if (!device.empty()) where += " \"" + device + "\"";
  if (!driver.empty()) where += " (driver " + driver + ")";
  return where + ": " + fingerprint_error_name(kind) + ": " + message;
}

struct FingerprintReader::Impl {
  ContextPtr context;
  DevicePtr device;  // INVARIANT: open while the Impl lives
  std::string driver, device_id, name;
  int stages = 0;
  std::mutex operation_mu;  // one enroll or verify at a time
  std::shared_ptr<CancelState> cancel = std::make_shared<CancelState>();
  std::function<void()> finger_needed;
  gulong finger_status_handler = 0;
  bool finger_was_needed = false;

  ~Impl() {
    if (!device) return;
    g_signal_handler_disconnect(device.get(), finger_status_handler);
    GError* error = nullptr;
    if (!fp_device_close_sync(device.get(), nullptr, &error)) g_error_free(error);
  }

  // "notify::finger-status": the moment the reader starts waiting for a finger.
  static void finger_status_changed(GObject* object, GParamSpec*, gpointer data) {
    auto* self = static_cast<Impl*>(data);
    bool needed = fp_device_get_finger_status(FP_DEVICE(object)) & FP_FINGER_STATUS_NEEDED;
    bool newly = needed && !self->finger_was_needed;
    self->finger_was_needed = needed;
    if (newly && self->finger_needed) self->finger_needed();
  }

  FingerprintError error(Kind kind, std::string message) const {
    return {kind, std::nullopt, driver, name, std::move(message)};
  }

  // Takes ownership of error.
  FingerprintError from(GError* raw) const {
    GErrorPtr error(raw);
    FingerprintError out = this->error(kind_of(error.get()), error->message);
    if (out.kind == Kind::kRetry) out.retry = retry_reason(error->code);
    return out;
  }
};

FingerprintReader::FingerprintReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FingerprintReader::~FingerprintReader() = default;

Result<std::unique_ptr<FingerprintReader>, FingerprintError> FingerprintReader::open(
    std::string_view driver) {
  auto impl = std::make_unique<Impl>();
  impl->context.reset(fp_context_new());
  GPtrArray* devices = fp_context_get_devices(impl->context.get());  // owned by the context
  FpDevice* chosen = nullptr;
  std::string seen;
  for (guint i = 0; devices && i < devices->len && !chosen; ++i) {
    auto* candidate = FP_DEVICE(g_ptr_array_index(devices, i));
    std::string id = text_of(fp_device_get_driver(candidate));
    if (driver.empty() || id == driver) {
      chosen = candidate;
    } else {
      seen += (seen.empty() ? "" : ", ") + id;
    }
  }
  if (!chosen) {
    FingerprintError error{Kind::kNoDevice, std::nullopt, std::string(driver), "", ""};
    error.message = driver.empty()
                        ? "libfprint found no fingerprint reader"
                        : "libfprint found no reader with driver " + std::string(driver) +
                              (seen.empty() ? "" : " (only " + seen + ")");
    return fail(std::move(error));
  }

  impl->driver = text_of(fp_device_get_driver(chosen));
  impl->device_id = text_of(fp_device_get_device_id(chosen));
  impl->name = text_of(fp_device_get_name(chosen));
  GError* error = nullptr;
  if (!fp_device_open_sync(chosen, nullptr, &error)) return fail(impl->from(error));
  impl->device.reset(FP_DEVICE(g_object_ref(chosen)));
  impl->stages = fp_device_get_nr_enroll_stages(chosen);
  impl->finger_status_handler = g_signal_connect(
      chosen, "notify::finger-status", G_CALLBACK(Impl::finger_status_changed), impl.get());
  return std::unique_ptr<FingerprintReader>(new FingerprintReader(std::move(impl)));
}

const std::string& FingerprintReader::driver() const {
  return impl_->driver;
}
const std::string& FingerprintReader::device_id() const {
  return impl_->device_id;
}
const std::string& FingerprintReader::name() const {
  return impl_->name;
}
int FingerprintReader::enroll_stages() const {
  return impl_->stages;
}

Result<Bytes, FingerprintError> FingerprintReader::enroll(
    std::string_view user, const std::function<void(const EnrollProgress&)>& progress) {
  std::lock_guard lock(impl_->operation_mu);
  Operation operation(*impl_->cancel);
  FpPrint* print_template = fp_print_new(impl_->device.get());  // floating: enroll sinks it
  fp_print_set_username(print_template, std::string(user).c_str());
  ProgressRelay relay{&progress, impl_->stages};
  GError* error = nullptr;
  PrintPtr print(fp_device_enroll_sync(impl_->device.get(), print_template, operation.cancellable(),
                                       relay_progress, &relay, &error));
  if (!print) return fail(impl_->from(error));

  guchar* data = nullptr;
  gsize length = 0;
  if (!fp_print_serialize(print.get(), &data, &length, &error)) return fail(impl_->from(error));
  Bytes serialized(data, data + length);
  g_free(data);
  return serialized;
}

Result<VerifyResult, FingerprintError> FingerprintReader::verify(ByteSpan serialized_print) {
  std::lock_guard lock(impl_->operation_mu);
  // fp_print_deserialize aborts the process, rather than failing, on fewer than 4 bytes.
  if (serialized_print.size() < kMinPrintBytes) {
    return fail(impl_->error(
        Kind::kBadPrint,
        "the print is " + std::to_string(serialized_print.size()) + " bytes, too short to be one"));
  }
  GError* error = nullptr;
  PrintPtr print(fp_print_deserialize(serialized_print.data(), serialized_print.size(), &error));
  if (!print) {
    GErrorPtr owned(error);
    return fail(
        impl_->error(Kind::kBadPrint, std::string("the print cannot be read: ") + owned->message));
  }
  if (!fp_print_compatible(print.get(), impl_->device.get())) {
    return fail(
        impl_->error(Kind::kBadPrint, "the print was enrolled on driver " +
                                          text_of(fp_print_get_driver(print.get())) + ", reader " +
                                          text_of(fp_print_get_device_id(print.get())) +
                                          ", not on this reader (" + impl_->device_id + ")"));
  }

  Operation operation(*impl_->cancel);
  gboolean match = FALSE;
  if (!fp_device_verify_sync(impl_->device.get(), print.get(), operation.cancellable(), nullptr,
                             nullptr, &match, nullptr, &error)) {
    return fail(impl_->from(error));
  }
  return match ? VerifyResult::kMatch : VerifyResult::kNoMatch;
}

void FingerprintReader::on_finger_needed(std::function<void()> callback) {
  std::lock_guard lock(impl_->operation_mu);
  impl_->finger_needed = std::move(callback);
}

void FingerprintReader::cancel() {
  std::uint64_t serial = 0;
  {
    std::lock_guard lock(impl_->cancel->mu);
    if (!impl_->cancel->current) return;
    serial = impl_->cancel->serial;
  }
  // Cancelling a GCancellable runs libfprint's handlers in the cancelling thread, and they
  // touch device state the operation's thread owns; so the cancel is handed to that thread,
  // through the default main context its synchronous call is running.
  g_idle_add_full(G_PRIORITY_HIGH, run_cancel, new CancelRequest{impl_->cancel, serial},
                  free_cancel_request);
}

}  // namespace enclave::kiosk
