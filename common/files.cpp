#include "common/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace enclave {

Expected<std::string> read_file(const std::filesystem::path& path, std::uint64_t max_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return fail(ec == std::errc::no_such_file_or_directory ? Errc::kNotFound : Errc::kIo,
                path.string() + ": " + ec.message());
  }
  if (size > max_bytes) {
    return fail(Errc::kInvalidArgument, path.string() + ": " + std::to_string(size) +
                                            " bytes, more than the limit of " +
                                            std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail(Errc::kPermission, path.string() + ": cannot read it");
  std::string content(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>{});
  if (in.bad()) return fail(Errc::kIo, path.string() + ": read failed");
  return content;
}

Status write_file_atomically(const std::filesystem::path& path, std::string_view content,
                             mode_t mode) {
  auto tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail(Errc::kIo, tmp.string() + ": " + std::strerror(errno));
  std::string_view rest = content;
  while (!rest.empty()) {
    ssize_t n = ::write(fd, rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Errc code = errno == ENOSPC ? Errc::kNoSpace : Errc::kIo;
      std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail(code, tmp.string() + ": " + why);
    }
    rest.remove_prefix(static_cast<std::size_t>(n));
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return fail(Errc::kIo, tmp.string() + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return fail(Errc::kIo, path.string() + ": " + std::strerror(errno));
  }
  int dir = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
  return {};
}

std::filesystem::path under_state_dir(const std::filesystem::path& state_dir,
                                      const std::string& path) {
  std::filesystem::path p(path);
  return p.is_absolute() ? p : state_dir / p;
}

}  // namespace enclave
