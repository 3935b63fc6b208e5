#include "sessionmgr/service/login_admission.hpp"

#include <openssl/crypto.h>

#include "sessionmgr/service/fingerprint_factor.hpp"
#include "sessionmgr/service/registry_store.hpp"

namespace enclave::sessionmgr {

Expected<std::unique_ptr<LoginAdmission>> LoginAdmission::open(
    const std::filesystem::path& registry, std::function<TimePoint()> clock) {
  auto db = registry::open_registry_database(registry, store::Access::kReadOnly);
  if (!db) return error_of(db);
  if (!clock) clock = [] { return std::chrono::system_clock::now(); };
  return std::unique_ptr<LoginAdmission>(
      new LoginAdmission(std::move(db).value(), std::move(clock)));
}

Expected<registry::Site> LoginAdmission::kiosk_site_locked(const LoginRequest& request,
                                                           TimePoint now) {
  auto device = registry::find_device(db_, request.device);
  if (!device) return error_of(device);
  std::optional<registry::Site> site;
  if (*device) {
    auto found = registry::find_site(db_, (*device)->site);
    if (!found) return error_of(found);
    site = std::move(found).value();
  }
  ENCLAVE_TRY(check_kiosk(request.device, *device, site, request.source, now));
  const std::string& kitted = (*device)->certificate_sha256;
  if (kitted.size() != request.certificate_sha256.size() ||
      CRYPTO_memcmp(kitted.data(), request.certificate_sha256.data(), kitted.size()) != 0) {
    return fail(Errc::kPermission, "device " + request.device +
                                       " presented a certificate other than the one it was "
                                       "kitted with");
  }
  return std::move(*site);
}

Status LoginAdmission::check_device(const LoginRequest& request) {
  std::lock_guard lock(mu_);
  auto site = kiosk_site_locked(request, clock_());
  if (!site) return error_of(site);
  return {};
}

Expected<Admission> LoginAdmission::admit(const LoginRequest& request) {
  std::lock_guard lock(mu_);
  const TimePoint now = clock_();
  auto site = kiosk_site_locked(request, now);
  if (!site) return error_of(site);
  auto held = registry::user_compartments(db_, request.user, now);
  if (!held) return error_of(held);
  Admission admission{request.compartment, site->site_class};
  if (!request.compartment.empty()) {
    if (!held->contains(request.compartment)) {
      return fail(Errc::kPermission, "user " + request.user + " holds no valid grant to " +
                                         "compartment " + request.compartment);
    }
    return admission;
  }
  if (held->empty()) {
    return fail(Errc::kPermission,
                "user " + request.user +
                    " holds no compartment (not an enabled analyst in a valid project that "
                    "grants one)");
  }
  if (held->size() > 1) {
    std::string names;
    for (const auto& c : *held) names += (names.empty() ? "" : ", ") + c;
    return fail(Errc::kPermission, "user " + request.user + " holds several compartments (" +
                                       names + "): the kiosk must name one");
  }
  admission.compartment = *held->begin();
  return admission;
}

}  // namespace enclave::sessionmgr
