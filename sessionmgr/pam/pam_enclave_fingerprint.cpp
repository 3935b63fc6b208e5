// pam_enclave_fingerprint.so: the fingerprint factor of an enclave login (auth only).
//
//   auth requisite pam_enclave_fingerprint.so registry=PATH print_key=PATH state=PATH
//                  audit_socket=PATH [max_age=120] [free_attempts=5] [first_delay=30]
//                  [max_delay=3600]
//
// The user is PAM's; the kiosk's address is PAM_RHOST and its device id (from its verified
// certificate) the PAM environment's ENCLAVE_DEVICE, both set by enclave-sessiond. The module
// reads the registry read-only, decrypts the user's prints for that device with the print
// vault key, and asks the kiosk through the conversation: one PAM_PROMPT_ECHO_OFF whose text
// is "ENCLAVE-FINGERPRINT " and the challenge; the answer is the signed assertion
// (sessionmgr/service/fingerprint_factor.hpp decides). Every attempt is an audit event
// (login.fingerprint); when it cannot be recorded the factor fails (fail closed).
#include <security/pam_ext.h>
#include <security/pam_modules.h>
#include <syslog.h>

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

#include "common/bytes.hpp"
#include "common/ipc/client.hpp"
#include "sessionmgr/service/fingerprint_factor.hpp"
#include "sessionmgr/service/pam_login.hpp"
#include "sessionmgr/service/print_vault.hpp"
#include "sessionmgr/service/registry_store.hpp"

namespace {

using namespace enclave;
using namespace enclave::sessionmgr;

struct Arguments {
  std::filesystem::path registry, print_key, state, audit_socket;
  FingerprintPolicy policy;
};

Expected<Arguments> parse_arguments(int argc, const char** argv) {
  Arguments a;
  for (int i = 0; i < argc; ++i) {
    const std::string_view arg = argv[i];
    const auto eq = arg.find('=');
    const std::string_view key = arg.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : arg.substr(eq + 1);
    auto number = [&](auto& out) -> Status {
      long long n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || n <= 0) {
        return fail(Errc::kInvalidArgument,
                    "pam_enclave_fingerprint: " + std::string(key) + " must be a positive number");
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(n);
      return {};
    };
    if (key == "registry") {
      a.registry = value;
    } else if (key == "print_key") {
      a.print_key = value;
    } else if (key == "state") {
      a.state = value;
    } else if (key == "audit_socket") {
      a.audit_socket = value;
    } else if (key == "max_age") {
      long long s = 0;
      ENCLAVE_TRY(number(s));
      a.policy.max_age = std::chrono::seconds(s);
    } else if (key == "free_attempts") {
      ENCLAVE_TRY(number(a.policy.backoff.free_attempts));
    } else if (key == "first_delay") {
      long long s = 0;
      ENCLAVE_TRY(number(s));
      a.policy.backoff.first_delay = std::chrono::seconds(s);
    } else if (key == "max_delay") {
      long long s = 0;
      ENCLAVE_TRY(number(s));
      a.policy.backoff.max_delay = std::chrono::seconds(s);
    } else {
      return fail(Errc::kInvalidArgument,
                  "pam_enclave_fingerprint: unknown argument " + std::string(key));
    }
  }
  for (const auto& [name, path] :
       {std::pair{"registry", &a.registry}, std::pair{"print_key", &a.print_key},
        std::pair{"state", &a.state}, std::pair{"audit_socket", &a.audit_socket}}) {
    if (path->empty()) {
      return fail(Errc::kInvalidArgument,
                  std::string("pam_enclave_fingerprint: ") + name + "= is required");
    }
  }
  return a;
}

// The PAM conversation, for the one fingerprint prompt.
class PamConversation : public FingerprintConversation {
 public:
  explicit PamConversation(pam_handle_t* pamh) : pamh_(pamh) {}
  Expected<std::string> ask(const std::string& challenge) override {
    const void* item = nullptr;
    if (pam_get_item(pamh_, PAM_CONV, &item) != PAM_SUCCESS || item == nullptr) {
      return fail(Errc::kUnavailable, "no PAM conversation");
    }
    const auto* conv = static_cast<const pam_conv*>(item);
    const std::string text = std::string(kFingerprintPromptPrefix) + challenge;
    pam_message message{PAM_PROMPT_ECHO_OFF, text.c_str()};
    const pam_message* messages[] = {&message};
    pam_response* replies = nullptr;
    const int rc = conv->conv(1, messages, &replies, conv->appdata_ptr);
    if (rc != PAM_SUCCESS || replies == nullptr || replies[0].resp == nullptr) {
      if (replies != nullptr) std::free(replies);
      return fail(Errc::kUnavailable,
                  std::string("the conversation failed: ") +
                      pam_strerror(pamh_, rc == PAM_SUCCESS ? PAM_CONV_ERR : rc));
    }
    std::string answer = replies[0].resp;
    std::free(replies[0].resp);
    std::free(replies);
    return answer;
  }

 private:
  pam_handle_t* pamh_;
};

Status record(const std::filesystem::path& socket, nlohmann::json event) {
  auto client = ipc::Client::connect(socket, std::chrono::seconds(2));
  if (!client) return error_of(client);
  auto done = client->call("audit.append", std::move(event), std::chrono::seconds(5));
  if (!done) return error_of(done);
  return {};
}

// Everything the registry says about this login; prints decrypted.
Expected<FingerprintContext> look_up(const Arguments& args, std::string user, std::string source,
                                     std::string device_id) {
  FingerprintContext c;
  c.user = std::move(user);
  c.source = std::move(source);
  c.device_id = std::move(device_id);
  auto db = registry::open_registry_database(args.registry, store::Access::kReadOnly);
  if (!db) return error_of(db);
  auto device = registry::find_device(*db, c.device_id);
  if (!device) return error_of(device);
  c.device = std::move(*device);
  if (!c.device) return c;
  auto site = registry::find_site(*db, c.device->site);
  if (!site) return error_of(site);
  c.site = std::move(*site);
  auto stored = registry::enrolled_prints(*db, c.user, c.device_id);
  if (!stored) return error_of(stored);
  if (stored->empty()) return c;
  auto vault = PrintVault::load(args.print_key, PrintVault::KeyFile::kMustExist);
  if (!vault) return error_of(vault);
  for (const auto& print : *stored) {
    auto clear = vault->open(print.ciphertext, {c.user, c.device_id, print.print_id});
    if (!clear) return error_of(clear);
    c.prints.push_back({print.print_id, std::move(clear).value()});
  }
  return c;
}

int authenticate(pam_handle_t* pamh, int argc, const char** argv) {
  auto args = parse_arguments(argc, argv);
  if (!args) {
    pam_syslog(pamh, LOG_ERR, "%s", args.error().describe().c_str());
    return PAM_SERVICE_ERR;
  }
  const char* user = nullptr;
  if (pam_get_user(pamh, &user, nullptr) != PAM_SUCCESS || user == nullptr) return PAM_USER_UNKNOWN;
  const void* rhost = nullptr;
  pam_get_item(pamh, PAM_RHOST, &rhost);
  const char* device = pam_getenv(pamh, "ENCLAVE_DEVICE");
  const std::string source = rhost != nullptr ? static_cast<const char*>(rhost) : "";

  nlohmann::json event{{"type", "login.fingerprint"},
                       {"actor_kind", "user"},
                       {"actor", user},
                       {"device", device != nullptr ? device : ""},
                       {"object", "login"}};
  auto context = look_up(*args, user, source, device != nullptr ? device : "");
  FingerprintOutcome outcome;
  int rc = PAM_AUTH_ERR;
  if (!context) {
    outcome.kind = FingerprintOutcome::Kind::kRefused;
    outcome.reason = "registry: " + context.error().describe();
    rc = PAM_AUTHINFO_UNAVAIL;
  } else {
    auto backoff = BackoffStore::open(args->state);
    if (!backoff) {
      outcome.reason = "back-off state: " + backoff.error().describe();
      rc = PAM_AUTHINFO_UNAVAIL;
    } else {
      PamConversation conversation(pamh);
      outcome = authenticate_fingerprint(*context, conversation, *backoff, args->policy);
      if (outcome.kind == FingerprintOutcome::Kind::kAccepted) rc = PAM_SUCCESS;
    }
    for (auto& print : context->prints) secure_wipe(print.data.data(), print.data.size());
  }
  const bool accepted = rc == PAM_SUCCESS;
  event["outcome"] = accepted                                             ? "success"
                     : outcome.kind == FingerprintOutcome::Kind::kRefused ? "refused"
                                                                          : "failure";
  event["details"] = {{"result", outcome_name(outcome.kind)},
                      {"reason", outcome.reason},
                      {"source", source},
                      {"consecutive_failures", outcome.consecutive_failures},
                      {"locked_for_s", outcome.locked_for.count()}};
  if (!outcome.print_id.empty()) event["details"]["print_id"] = outcome.print_id;
  if (auto recorded = record(args->audit_socket, std::move(event)); !recorded) {
    pam_syslog(pamh, LOG_ERR, "audit log unavailable, failing closed: %s",
               recorded.error().describe().c_str());
    return PAM_AUTHINFO_UNAVAIL;
  }
  if (!accepted && outcome.locked_for.count() > 0) {
    pam_error(pamh, "Fingerprint locked: try again in %lld s.",
              static_cast<long long>(outcome.locked_for.count()));
  } else if (outcome.kind == FingerprintOutcome::Kind::kFailed) {
    pam_error(pamh, "Fingerprint not recognised.");
  }
  return rc;
}

}  // namespace

extern "C" {

PAM_EXTERN int pam_sm_authenticate(pam_handle_t* pamh, int, int argc, const char** argv) {
  try {
    return authenticate(pamh, argc, argv);
  } catch (const std::exception& e) {  // nothing may unwind into libpam (C)
    pam_syslog(pamh, LOG_ERR, "pam_enclave_fingerprint: %s", e.what());
    return PAM_SERVICE_ERR;
  }
}

PAM_EXTERN int pam_sm_setcred(pam_handle_t*, int, int, const char**) {
  return PAM_SUCCESS;
}

}  // extern "C"
