#include "common/aes_gcm.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "common/fd.hpp"

namespace enclave::crypto {

namespace {

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherFree>;

Status check_sizes(ByteSpan key, ByteSpan nonce, std::size_t text_size) {
  if (key.size() != kAes256KeyBytes) {
    return fail(Errc::kInvalidArgument, "AES-256-GCM: a key of " + std::to_string(key.size()) +
                                            " bytes, not " + std::to_string(kAes256KeyBytes));
  }
  if (nonce.size() != kGcmNonceBytes) {
    return fail(Errc::kInvalidArgument, "AES-256-GCM: a nonce of " + std::to_string(nonce.size()) +
                                            " bytes, not " + std::to_string(kGcmNonceBytes));
  }
  if (text_size >= static_cast<std::size_t>(INT_MAX)) {
    return fail(Errc::kInvalidArgument, "AES-256-GCM: 2 GiB or more in one piece");
  }
  return {};
}

std::string mode_text(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

}  // namespace

Expected<Bytes> aes256_gcm_seal(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan plaintext) {
  ENCLAVE_TRY(check_sizes(key, nonce, plaintext.size()));
  if (aad.size() >= static_cast<std::size_t>(INT_MAX)) {
    return fail(Errc::kInvalidArgument, "AES-256-GCM: additional data of 2 GiB or more");
  }
  Bytes out(plaintext.size() + kGcmTagBytes);
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0, tail = 0;
  if (!ctx ||
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), out.data(), &len, plaintext.data(),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kGcmTagBytes),
                          out.data() + plaintext.size()) != 1) {
    ERR_clear_error();
    return fail(Errc::kInternal, "AES-256-GCM encryption failed");
  }
  return out;
}

Expected<Bytes> aes256_gcm_open(ByteSpan key, ByteSpan nonce, ByteSpan aad, ByteSpan sealed) {
  ENCLAVE_TRY(check_sizes(key, nonce, sealed.size()));
  if (aad.size() >= static_cast<std::size_t>(INT_MAX)) {
    return fail(Errc::kInvalidArgument, "AES-256-GCM: additional data of 2 GiB or more");
  }
  if (sealed.size() < kGcmTagBytes) {
    return fail(Errc::kCorrupt, "authentication failed (" + std::to_string(sealed.size()) +
                                    " bytes, shorter than the tag)");
  }
  const std::size_t body = sealed.size() - kGcmTagBytes;
  Bytes tag(sealed.begin() + static_cast<std::ptrdiff_t>(body), sealed.end());
  Bytes out(body);
  CipherPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0, tail = 0;
  if (!ctx ||
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.data(), nonce.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data(), static_cast<int>(body)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kGcmTagBytes),
                          tag.data()) != 1) {
    secure_wipe(out.data(), out.size());
    ERR_clear_error();
    return fail(Errc::kInternal, "AES-256-GCM decryption failed");
  }
  if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &tail) != 1) {
    secure_wipe(out.data(), out.size());
    ERR_clear_error();
    return fail(Errc::kCorrupt, "authentication failed");
  }
  return out;
}

Status read_key_file(const std::filesystem::path& path, std::span<std::uint8_t> key,
                     std::string_view what) {
  const std::string where = path.string() + ": " + std::string(what) + ": ";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
  if (!fd) {
    const int e = errno;
    const Errc code = e == ENOENT                 ? Errc::kNotFound
                      : e == EACCES || e == EPERM ? Errc::kPermission
                      : e == ELOOP                ? Errc::kInvalidArgument
                                                  : Errc::kIo;
    return fail(code, where + (e == ELOOP ? std::string("a symbolic link") : std::strerror(e)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return fail(Errc::kIo, where + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) return fail(Errc::kInvalidArgument, where + "not a regular file");
  if ((st.st_mode & 077) != 0) {
    return fail(Errc::kPermission, where + "mode " + mode_text(st.st_mode) +
                                       " lets group or others read it; chmod 600 it");
  }
  if (st.st_size != static_cast<off_t>(key.size())) {
    return fail(Errc::kInvalidArgument,
                where + std::to_string(st.st_size) + " bytes, not " + std::to_string(key.size()));
  }
  std::size_t got = 0;
  while (got < key.size()) {
    const ssize_t n = ::read(fd.get(), key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      secure_wipe(key.data(), key.size());
      return fail(Errc::kIo, where + "short read");
    }
    got += static_cast<std::size_t>(n);
  }
  return {};
}

Status create_key_file(const std::filesystem::path& path, std::size_t bytes) {
  Bytes key(bytes);
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    return fail(Errc::kInternal, "RAND_bytes failed");
  }
  auto tmp = path.parent_path() / ("." + path.filename().string() + ".tmp-" + random_hex(8));
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) {
    secure_wipe(key.data(), key.size());
    return Unexpected<Error>{os_error(path.string(), errno)};
  }
  Status written = write_all(fd.get(), key, path.string());
  secure_wipe(key.data(), key.size());
  if (written && ::fsync(fd.get()) != 0) {
    written = Unexpected<Error>{os_error(path.string(), errno)};
  }
  fd.reset();
  // RENAME_NOREPLACE: a key that exists is never replaced (what it encrypted would be lost).
  if (written &&
      ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) != 0) {
    written = Unexpected<Error>{os_error(path.string(), errno)};
  }
  if (!written) {
    ::unlink(tmp.c_str());
    return written;
  }
  sync_dir(path.parent_path());
  return {};
}

}  // namespace enclave::crypto
