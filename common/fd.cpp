#include "common/fd.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/rand.h>

#include <cerrno>
#include <cstring>

namespace enclave {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Error os_error(const std::string& what, int err) {
  const Errc code = err == ENOSPC || err == EDQUOT  ? Errc::kNoSpace
                    : err == ENOENT                 ? Errc::kNotFound
                    : err == EACCES || err == EPERM ? Errc::kPermission
                    : err == EEXIST                 ? Errc::kAlreadyExists
                                                    : Errc::kIo;
  return {code, what + ": " + std::strerror(err)};
}

Status write_all(int fd, ByteSpan data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unexpected<Error>{os_error(what, errno)};
    }
    data = data.subspan(static_cast<std::size_t>(n));
  }
  return {};
}

void sync_dir(const std::filesystem::path& dir) {
  UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) (void)::fsync(d.get());
}

std::string random_hex(std::size_t bytes) {
  Bytes random(bytes);
  // RAND_bytes fails only when the system has no entropy source at all; the name stays unique
  // enough through O_EXCL at its users.
  (void)RAND_bytes(random.data(), static_cast<int>(random.size()));
  return hex_encode(random);
}

}  // namespace enclave
