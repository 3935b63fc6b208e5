// POSIX file descriptors as the stores use them: an owning descriptor, errno turned into the
// project's error codes, whole writes, and the directory fsync that makes a rename durable.
#pragma once

#include <filesystem>
#include <string>

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace enclave {

// Owns a descriptor and closes it; -1 is "none".
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release();
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// "what: strerror" with the code: ENOSPC and EDQUOT kNoSpace, ENOENT kNotFound, EACCES and
// EPERM kPermission, EEXIST kAlreadyExists, anything else kIo.
Error os_error(const std::string& what, int err);

// Writes all of data (retrying short writes and EINTR); os_error naming `what` otherwise.
Status write_all(int fd, ByteSpan data, const std::string& what);

// Best effort: makes a rename or unlink in dir durable.
void sync_dir(const std::filesystem::path& dir);

// bytes random bytes as lowercase hex, for names of temporary files.
std::string random_hex(std::size_t bytes);

}  // namespace enclave
