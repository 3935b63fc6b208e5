#include "common/ed25519.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace enclave::crypto {

namespace {

constexpr std::size_t kMaxPemBytes = 16 * 1024;

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};

struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

// PEM_read_bio_PrivateKey would prompt on the terminal for an encrypted key without this.
int refuse_passphrase(char*, int, int, void*) {
  return -1;
}

Unexpected<Error> file_error(int err, const std::filesystem::path& path, const char* action) {
  std::string where = "private key file " + path.string() + ": ";
  switch (err) {
    case ENOENT:
      return fail(Errc::kNotFound, where + "does not exist");
    case EACCES:
    case EPERM:
      return fail(Errc::kPermission, where + "permission denied to " + action);
    case ELOOP:
      return fail(Errc::kPermission, where + "is a symbolic link; name the key file itself");
    default:
      return fail(Errc::kIo, where + "cannot " + action + ": " + std::strerror(err));
  }
}

bool is_ed25519(EVP_PKEY* key) {
  return key && EVP_PKEY_get_id(key) == EVP_PKEY_ED25519;
}

}  // namespace

Expected<EvpPkeyPtr> load_private_key(const std::filesystem::path& pem) {
  std::string where = "private key file " + pem.string() + ": ";
  // O_NONBLOCK: a FIFO put in the key's place must not hang the open (reads of a regular file
  // ignore the flag).
  int fd = ::open(pem.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return file_error(errno, pem, "read it");
  FdCloser closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return file_error(errno, pem, "read it");
  if (!S_ISREG(st.st_mode)) return fail(Errc::kInvalidArgument, where + "not a regular file");
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return fail(Errc::kPermission,
                where + "mode " + mode + " lets other users read it; make it 0600 (owner only)");
  }

  // One byte more than the limit tells a file at the limit from a larger one.
  std::string text(kMaxPemBytes + 1, '\0');
  std::size_t filled = 0;
  while (filled < text.size()) {
    ssize_t n = ::read(fd, text.data() + filled, text.size() - filled);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      secure_wipe(text.data(), text.size());
      return file_error(err, pem, "read it");
    }
    if (n == 0) break;
    filled += static_cast<std::size_t>(n);
  }
  EvpPkeyPtr key;
  if (filled <= kMaxPemBytes) {
    std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(text.data(), static_cast<int>(filled)));
    if (bio) key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr));
  }
  secure_wipe(text.data(), text.size());
  ERR_clear_error();
  if (filled > kMaxPemBytes) {
    return fail(Errc::kInvalidArgument, where + "larger than " + std::to_string(kMaxPemBytes) +
                                            " bytes, not a PEM private key");
  }
  if (!key) return fail(Errc::kInvalidArgument, where + "not an unencrypted PEM private key");
  return key;
}

Expected<EvpPkeyPtr> load_ed25519_private_key(const std::filesystem::path& pem) {
  auto key = load_private_key(pem);
  if (key && !is_ed25519(key->get())) {
    return fail(Errc::kInvalidArgument,
                "private key file " + pem.string() + ": holds a private key that is not Ed25519");
  }
  return key;
}

Expected<Bytes> ed25519_public_key(EVP_PKEY* key) {
  if (!is_ed25519(key)) return fail(Errc::kInvalidArgument, "the key is not an Ed25519 key");
  Bytes raw(kEd25519PublicKeyBytes);
  std::size_t size = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, raw.data(), &size) != 1 || size != raw.size()) {
    ERR_clear_error();
    return fail(Errc::kInternal, "cannot read the Ed25519 public key");
  }
  return raw;
}

Expected<Bytes> ed25519_sign(EVP_PKEY* key, ByteSpan message) {
  if (!is_ed25519(key)) return fail(Errc::kInvalidArgument, "the key is not an Ed25519 key");
  MdCtxPtr ctx(EVP_MD_CTX_new());
  Bytes signature(kEd25519SignatureBytes);
  std::size_t size = signature.size();
  // A public key alone fails at EVP_DigestSign.
  bool ok =
      ctx && EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key) == 1 &&
      EVP_DigestSign(ctx.get(), signature.data(), &size, message.data(), message.size()) == 1 &&
      size == signature.size();
  if (!ok) {
    ERR_clear_error();
    return fail(Errc::kInvalidArgument, "cannot sign with the key (not an Ed25519 private key?)");
  }
  return signature;
}

bool ed25519_verify(ByteSpan public_key, ByteSpan message, ByteSpan signature) {
  if (public_key.size() != kEd25519PublicKeyBytes || signature.size() != kEd25519SignatureBytes) {
    return false;
  }
  EvpPkeyPtr key(
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, public_key.data(), public_key.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  bool ok = key && ctx &&
            EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) == 1 &&
            EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), message.data(),
                             message.size()) == 1;
  // A failed verification leaves entries on the thread's error queue nobody else should see.
  if (!ok) ERR_clear_error();
  return ok;
}

}  // namespace enclave::crypto
