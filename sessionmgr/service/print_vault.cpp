#include "sessionmgr/service/print_vault.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string_view>

#include "common/files.hpp"

namespace enclave::sessionmgr {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::string_view kAadLabel = "enclave-print-v1";

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

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

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Reads the key through one descriptor: the checks apply to the file that is read.
Status read_key(const std::filesystem::path& path, std::array<std::uint8_t, 32>& key) {
  const std::string name = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    const int e = errno;
    const Errc code = e == ENOENT                 ? Errc::kNotFound
                      : e == EACCES || e == EPERM ? Errc::kPermission
                      : e == ELOOP                ? Errc::kInvalidArgument
                                                  : Errc::kIo;
    return fail(code, name + ": print vault key: " +
                          (e == ELOOP ? std::string("a symbolic link") : std::strerror(e)));
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return fail(Errc::kIo, name + ": print vault key: " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Errc::kInvalidArgument, name + ": print vault key: not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::kPermission, name + ": print vault key: mode " + mode_text(st.st_mode) +
                                       " lets group or others read it; chmod 600 it");
  }
  if (st.st_size != static_cast<off_t>(key.size())) {
    return fail(Errc::kInvalidArgument, name + ": print vault key: " + std::to_string(st.st_size) +
                                            " bytes, not " + std::to_string(key.size()));
  }
  std::size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return fail(Errc::kIo, name + ": print vault key: short read");
    }
    got += static_cast<std::size_t>(n);
  }
  return {};
}

Status create_key(const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::array<std::uint8_t, PrintVault::kKeyBytes> key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return fail(Errc::kInternal, "RAND_bytes failed");
  }
  Status written = write_file_atomically(path, as_chars(key), 0600);
  secure_wipe(key.data(), key.size());
  return written;
}

}  // namespace

Expected<PrintVault> PrintVault::load(const std::filesystem::path& key_file, KeyFile mode) {
  PrintVault vault;
  Status read = read_key(key_file, vault.key_);
  if (!read && read.error().code == Errc::kNotFound && mode == KeyFile::kCreateIfMissing) {
    ENCLAVE_TRY(create_key(key_file));
    read = read_key(key_file, vault.key_);
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
  Bytes out(kOverhead + print.size());
  out[0] = kVersion;
  std::uint8_t* nonce = out.data() + 1;
  std::uint8_t* body = nonce + kNonceBytes;
  std::uint8_t* tag = body + print.size();
  if (RAND_bytes(nonce, static_cast<int>(kNonceBytes)) != 1) {
    return fail(Errc::kInternal, "RAND_bytes failed");
  }
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad->data(), static_cast<int>(aad->size())) !=
          1 ||
      EVP_EncryptUpdate(ctx.get(), body, &len, print.data(), static_cast<int>(print.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), body + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagBytes), tag) != 1) {
    return fail(Errc::kInternal, describe(binding) + ": AES-256-GCM encryption failed");
  }
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
  const std::uint8_t* nonce = sealed.data() + 1;
  const std::uint8_t* body = nonce + kNonceBytes;
  const std::size_t body_size = sealed.size() - kOverhead;
  Bytes tag(body + body_size, body + body_size + kTagBytes);
  Bytes out(body_size);
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad->data(), static_cast<int>(aad->size())) !=
          1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, body, static_cast<int>(body_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagBytes),
                          tag.data()) != 1) {
    secure_wipe(out.data(), out.size());
    return fail(Errc::kInternal, describe(binding) + ": AES-256-GCM decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1) {
    secure_wipe(out.data(), out.size());
    return fail(Errc::kCorrupt, describe(binding) +
                                    ": authentication failed (tampered, or bound to another "
                                    "user, device or print)");
  }
  return out;
}

}  // namespace enclave::sessionmgr
