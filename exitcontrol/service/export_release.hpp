// The release of an approved request, at rest and on its way out: the bundle (the approved
// files in their chosen versions, the signed manifest) sealed under a fresh data key that the
// project's current key wraps; the approved tables entered in the project's release ledger; a
// sealed bundle opened again for a download; data keys rewrapped when a project's key rotates.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "common/result.hpp"
#include "exitcontrol/release/key_ring.hpp"
#include "exitcontrol/release/sealed.hpp"
#include "exitcontrol/review/request.hpp"
#include "exitcontrol/service/export_policy.hpp"
#include "exitcontrol/service/export_store.hpp"
#include "exitcontrol/service/spool.hpp"

namespace enclave::exitcontrol {

class ReleaseVault {
 public:
  // Loads the export signing key, creating it (Ed25519, PKCS#8 PEM, 0600) and its public key
  // beside it (NAME.pub, hex) when missing.
  static Expected<std::unique_ptr<ReleaseVault>> open(const ExportPolicy& policy);
  ~ReleaseVault();

  const std::string& signing_public_key_hex() const;
  release::KeyRing& keys();

  // Builds, seals and records the release of request (approved): ReleaseRow for the store.
  // Nothing is left half-done: on any error the sealed file is removed and the error names
  // the step (a file's hash, the disk, the ledger).
  Expected<ReleaseRow> build(const review::ExportRequest& request, const Spool& spool);
  // The sealed bundle of a release, opened with its unwrapped data key.
  Expected<release::SealedReader> open_sealed(const ReleaseRow& release) const;
  std::filesystem::path sealed_path(const ReleaseRow& release) const;

 private:
  struct Impl;
  explicit ReleaseVault(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "REL-42" for request 42: one release per request.
std::string release_id_of(std::int64_t request);

}  // namespace enclave::exitcontrol
