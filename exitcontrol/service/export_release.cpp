#include "exitcontrol/service/export_release.hpp"

#include <sys/stat.h>

#include <chrono>

#include <openssl/rand.h>
#include <nlohmann/json.hpp>

#include "audit/core/note.hpp"
#include "common/bytes.hpp"
#include "common/clock.hpp"
#include "common/ed25519.hpp"
#include "common/files.hpp"
#include "exitcontrol/core/meta.hpp"
#include "exitcontrol/release/bundle.hpp"
#include "exitcontrol/service/checker.hpp"

namespace enclave::exitcontrol {
namespace {

namespace fs = std::filesystem;
using review::Choice;
using review::ExportFile;

std::string safe_name(const std::string& name) {
  return ".safe/" + name;
}

std::string binding_of(const std::string& project, const std::string& release) {
  return project + "/" + release;
}

// Wipes a data key however the build ends.
struct DataKey {
  Bytes bytes = Bytes(release::kSealedDataKeyBytes);
  DataKey() { RAND_bytes(bytes.data(), static_cast<int>(bytes.size())); }
  ~DataKey() { secure_wipe(bytes.data(), bytes.size()); }
};

}  // namespace

std::string release_id_of(std::int64_t request) {
  return "REL-" + std::to_string(request);
}

struct ReleaseVault::Impl {
  fs::path releases, ledger, policies_dir;
  release::KeyRing keys;
  crypto::EvpPkeyPtr signing_key;
  std::string public_hex;

  explicit Impl(const ExportPolicy& p)
      : releases(p.releases), ledger(p.ledger), policies_dir(p.policies_dir), keys(p.keys) {}
};

ReleaseVault::ReleaseVault(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ReleaseVault::~ReleaseVault() = default;

Expected<std::unique_ptr<ReleaseVault>> ReleaseVault::open(const ExportPolicy& policy) {
  auto impl = std::make_unique<Impl>(policy);
  std::error_code ec;
  const fs::path& key_path = policy.signing_key;
  if (!fs::exists(key_path, ec)) {
    fs::create_directories(key_path.parent_path(), ec);
    auto signer = audit::note::Signer::generate("enclave-export");
    if (!signer) return error_of(signer);
    ENCLAVE_TRY(signer->save_pem(key_path));
    fs::path pub = key_path;
    pub.replace_extension(".pub");
    ENCLAVE_TRY(write_file_atomically(pub, hex_encode(signer->public_key()) + "\n", 0644));
  }
  auto key = crypto::load_ed25519_private_key(key_path);
  if (!key) return error_of(key);
  auto pub = crypto::ed25519_public_key(key->get());
  if (!pub) return error_of(pub);
  impl->public_hex = hex_encode(*pub);
  impl->signing_key = std::move(key).value();
  fs::create_directories(policy.releases, ec);
  if (ec) return fail(Errc::kIo, policy.releases.string() + ": " + ec.message());
  ::chmod(policy.releases.c_str(), 0700);
  return std::unique_ptr<ReleaseVault>(new ReleaseVault(std::move(impl)));
}

const std::string& ReleaseVault::signing_public_key_hex() const {
  return impl_->public_hex;
}
release::KeyRing& ReleaseVault::keys() {
  return impl_->keys;
}

fs::path ReleaseVault::sealed_path(const ReleaseRow& r) const {
  return impl_->releases / r.project / (r.id + ".sealed");
}

Expected<ReleaseRow> ReleaseVault::build(const review::ExportRequest& request, const Spool& spool) {
  Impl& v = *impl_;
  const std::string label = review::request_label(request.id);
  ReleaseRow row;
  row.id = release_id_of(request.id);
  row.request = request.id;
  row.project = request.project;
  const auto now = std::chrono::system_clock::now();
  row.created_ms = to_unix_ms(now);

  release::Manifest manifest;
  manifest.release = row.id;
  manifest.request = label;
  manifest.project = request.project;
  manifest.requester = request.requester;
  manifest.justification = request.justification;
  manifest.created_at = format_rfc3339(now);
  std::vector<fs::path> sources;
  std::vector<const ExportFile*> released;
  for (const auto& f : request.files) {
    if (f.status(request.stewards_required) != review::FileStatus::kApproved) continue;
    release::ManifestFile m;
    m.name = f.name;
    const bool safe = f.choice == Choice::kSafe;
    m.size = safe ? f.safe_size : f.size;
    m.sha256 = f.chosen_sha256();
    m.version = safe ? "safe" : "original";
    auto engine = nlohmann::json::parse(f.report_json, nullptr, false);
    if (engine.is_object()) m.engine = std::move(engine);
    for (const auto& d : f.decisions) {
      m.decisions.push_back({d.steward, review::verdict_name(d.verdict), d.comment,
                             format_rfc3339(from_unix_ms(d.at_ms))});
    }
    manifest.files.push_back(std::move(m));
    sources.push_back(spool.file(request.id, safe ? safe_name(f.name) : f.name));
    released.push_back(&f);
  }
  if (released.empty()) return fail(Errc::kConflict, label + " has no approved file to release");
  auto signed_manifest = release::sign_manifest(std::move(manifest), v.signing_key.get());
  if (!signed_manifest) return error_of(signed_manifest);
  row.manifest_sha256 = sha256_hex(as_bytes(signed_manifest->json));

  DataKey data_key;
  auto wrapped = v.keys.wrap(request.project, data_key.bytes);
  if (!wrapped) return error_of(wrapped);
  row.key_id = wrapped->key_id;
  row.wrapped_key = wrapped->wrapped;
  std::error_code ec;
  const fs::path dir = v.releases / request.project;
  fs::create_directories(dir, ec);
  if (ec) return fail(Errc::kIo, dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
  const fs::path target = sealed_path(row);
  auto writer =
      release::SealedWriter::create(target, data_key.bytes, binding_of(request.project, row.id));
  if (!writer) return error_of(writer);
  Sha256Stream bundle_hash;
  auto sealed = writer->sink();
  release::ByteSink sink = [&](ByteSpan bytes) -> Status {
    bundle_hash.update(bytes);
    row.size += bytes.size();
    return sealed(bytes);
  };
  ENCLAVE_TRY(release::write_bundle(
      *signed_manifest, sources,
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count(), sink));
  ENCLAVE_TRY(writer->finish());
  row.sha256 = bundle_hash.hex_final();

  // The ledger: every released table, as released, so later requests are audited against it.
  auto fail_after_sealing = [&](const Error& e) -> Expected<ReleaseRow> {
    fs::remove(target, ec);
    return fail(e.code, label + ": the release ledger did not take it: " + e.message);
  };
  std::optional<Ledger> ledger;
  std::optional<Profile> profile;
  for (std::size_t i = 0; i < released.size(); ++i) {
    const ExportFile& f = *released[i];
    if (f.type != "table") continue;
    if (!profile) {
      auto loaded = load_profile(v.policies_dir, request.profile);
      if (!loaded) return fail_after_sealing(loaded.error());
      profile.emplace(std::move(loaded).value());
    }
    if (!ledger) {
      auto opened = Ledger::open(v.ledger);
      if (!opened) return fail_after_sealing(opened.error());
      ledger.emplace(std::move(opened).value());
    }
    // The table's metadata is its sidecar as submitted, for either version.
    std::optional<TableMeta> meta;
    const fs::path sidecar = meta_path_for(spool.file(request.id, f.name));
    if (fs::exists(sidecar, ec)) {
      auto text = read_file(sidecar);
      if (!text) return fail_after_sealing(text.error());
      auto parsed = parse_meta(*text, sidecar.filename().string());
      if (!parsed) return fail_after_sealing(parsed.error());
      meta = std::move(parsed).value();
    }
    auto recorded =
        record_released_file(*ledger, request.project, sources[i], meta, *profile, label);
    // The same table released before (by hash) is in the ledger already.
    if (!recorded && recorded.error().code != Errc::kAlreadyExists) {
      return fail_after_sealing(recorded.error());
    }
  }
  return row;
}

Expected<release::SealedReader> ReleaseVault::open_sealed(const ReleaseRow& r) const {
  auto key = impl_->keys.unwrap(r.project, {r.key_id, r.wrapped_key});
  if (!key) return error_of(key);
  auto reader = release::SealedReader::open(sealed_path(r), *key, binding_of(r.project, r.id));
  secure_wipe(key->data(), key->size());
  return reader;
}

}  // namespace enclave::exitcontrol
