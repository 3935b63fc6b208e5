#include "sessionmgr/service/print_vault.hpp"

#include <openssl/rand.h>

#include <array>
#include <string_view>
#include <system_error>

#include "common/aes_gcm.hpp"

namespace enclave::sessionmgr {

namespace {

static_assert(PrintVault::kKeyBytes == crypto::kAes256KeyBytes &&
              PrintVault::kNonceBytes == crypto::kGcmNonceBytes &&
              PrintVault::kTagBytes == crypto::kGcmTagBytes);

constexpr std::uint8_t kVersion = 1;
constexpr std::string_view kAadLabel = "enclave-print-v1";
constexpr std::string_view kKeyWhat = "print vault key";

std::string describe(const PrintBinding& b) {
  return "print " + b.print_id + " of " + b.user + " on device " + b.device;
}

Expected<Bytes> aad_of(const PrintBinding& b) {
  Bytes out(kAadLabel.begin(), kAadLabel.end());
  WriteCursor w(out);
  for (const std::string* field : {&b.user, &b.device, &b.print_id}) {
    if (field->size() > 0xFFFF) {
      return fail(Errc::kInvalidArgument, describe(b) + ": a binding field is too long");
    }
    w.u16be(static_cast<std::uint16_t>(field->size()));
    w.put(as_bytes(*field));
  }
  return out;
}

}  // namespace

Expected<PrintVault> PrintVault::load(const std::filesystem::path& key_file, KeyFile mode) {
  PrintVault vault;
  Status read = crypto::read_key_file(key_file, vault.key_, kKeyWhat);
  if (!read && read.error().code == Errc::kNotFound && mode == KeyFile::kCreateIfMissing) {
    std::error_code ec;
    std::filesystem::create_directories(key_file.parent_path(), ec);
    Status created = crypto::create_key_file(key_file, kKeyBytes);
    // Another process may have created it first: then that key is the one.
    if (!created && created.error().code != Errc::kAlreadyExists) return error_of(created);
    read = crypto::read_key_file(key_file, vault.key_, kKeyWhat);
  }
  ENCLAVE_TRY(read);
  return vault;
}

PrintVault::PrintVault(PrintVault&& other) noexcept : key_(other.key_) {
  secure_wipe(other.key_.data(), other.key_.size());
}

PrintVault& PrintVault::operator=(PrintVault&& other) noexcept {
  if (this != &other) {
    key_ = other.key_;
    secure_wipe(other.key_.data(), other.key_.size());
  }
  return *this;
}

PrintVault::~PrintVault() {
  secure_wipe(key_.data(), key_.size());
}

Expected<Bytes> PrintVault::seal(ByteSpan print, const PrintBinding& binding) const {
  if (print.empty()) return fail(Errc::kInvalidArgument, describe(binding) + ": empty print");
  if (print.size() > (1u << 30)) {
    return fail(Errc::kInvalidArgument, describe(binding) + ": print too large");
  }
  auto aad = aad_of(binding);
  if (!aad) return error_of(aad);
  std::array<std::uint8_t, kNonceBytes> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1) {
    return fail(Errc::kInternal, "RAND_bytes failed");
  }
  auto sealed = crypto::aes256_gcm_seal(key_, nonce, *aad, print);
  if (!sealed) {
    return fail(sealed.error().code, describe(binding) + ": " + sealed.error().message);
  }
  Bytes out;
  out.reserve(kOverhead + print.size());
  out.push_back(kVersion);
  out.insert(out.end(), nonce.begin(), nonce.end());
  out.insert(out.end(), sealed->begin(), sealed->end());
  return out;
}

Expected<Bytes> PrintVault::open(ByteSpan sealed, const PrintBinding& binding) const {
  if (sealed.size() <= kOverhead) {
    return fail(Errc::kCorrupt, describe(binding) + ": sealed print of " +
                                    std::to_string(sealed.size()) + " bytes is too short");
  }
  if (sealed[0] != kVersion) {
    return fail(Errc::kCorrupt,
                describe(binding) + ": unknown sealed-print version " + std::to_string(sealed[0]));
  }
  auto aad = aad_of(binding);
  if (!aad) return error_of(aad);
  auto opened = crypto::aes256_gcm_open(key_, sealed.subspan(1, kNonceBytes), *aad,
                                        sealed.subspan(1 + kNonceBytes));
  if (!opened && opened.error().code == Errc::kCorrupt) {
    return fail(Errc::kCorrupt, describe(binding) +
                                    ": authentication failed (tampered, or bound to another "
                                    "user, device or print)");
  }
  if (!opened) return fail(opened.error().code, describe(binding) + ": " + opened.error().message);
  return opened;
}

}  // namespace enclave::sessionmgr
