#include "audit/service/sinks.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "audit/core/offbox.hpp"

namespace enclave::audit {

namespace {

Error errno_error(Errc code, const std::string& what) {
  int e = errno;
  return {e == ENOSPC || e == EDQUOT ? Errc::kNoSpace : code, what + ": " + std::strerror(e)};
}

Status write_all(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected<Error>{errno_error(Errc::kIo, what)};
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Expected<std::string> read_all(int fd, const std::string& what) {
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Unexpected<Error>{errno_error(Errc::kIo, what)};
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

Expected<OffboxFile> OffboxFile::open(const std::filesystem::path& path) {
  const std::string name = "off-box file " + path.string();
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) return Unexpected<Error>{errno_error(Errc::kIo, name)};
  OffboxFile file(fd, path, 0);
  auto text = read_all(fd, name);
  if (!text) return error_of(text);
  auto parsed = offbox::parse(as_bytes(*text));
  if (!parsed) return fail(Errc::kCorrupt, name + ": " + parsed.error().describe());
  if (parsed->torn_tail) {
    // The last write died mid-line: cut the torn line off, the records before it stand.
    auto keep = text->rfind('\n');
    off_t length = keep == std::string::npos ? 0 : static_cast<off_t>(keep + 1);
    if (::ftruncate(fd, length) != 0 || ::fsync(fd) != 0) {
      return Unexpected<Error>{errno_error(Errc::kIo, name + ": cutting a torn last line")};
    }
  }
  if (::lseek(fd, 0, SEEK_END) < 0) return Unexpected<Error>{errno_error(Errc::kIo, name)};
  file.position_ = parsed->leaf_hashes.size();
  return file;
}

OffboxFile::OffboxFile(OffboxFile&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)), path_(std::move(o.path_)), position_(o.position_) {}
OffboxFile& OffboxFile::operator=(OffboxFile&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    path_ = std::move(o.path_);
    position_ = o.position_;
  }
  return *this;
}
OffboxFile::~OffboxFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status OffboxFile::write(std::span<const merkle::Hash> leaves, std::int64_t time_us,
                         std::string_view note) {
  const std::string name = "off-box file " + path_.string();
  off_t before = ::lseek(fd_, 0, SEEK_END);
  if (before < 0) return Unexpected<Error>{errno_error(Errc::kIo, name)};
  std::string records;
  for (std::size_t at = 0; at < leaves.size(); at += offbox::kMaxHashesPerRecord) {
    auto chunk = leaves.subspan(at, std::min(offbox::kMaxHashesPerRecord, leaves.size() - at));
    records += offbox::format_leaves(position_ + at, chunk);
  }
  records += offbox::format_checkpoint(time_us, note);
  auto written = write_all(fd_, records, name);
  if (written && ::fsync(fd_) != 0) written = Unexpected<Error>{errno_error(Errc::kIo, name)};
  if (!written) {
    // Leave the file as it was, so the next write appends whole records to whole records.
    if (::ftruncate(fd_, before) == 0) (void)::fsync(fd_);
    return written;
  }
  position_ += leaves.size();
  return {};
}

Expected<SyslogSink> SyslogSink::open(const std::string& target, formats::SyslogOptions options) {
  constexpr std::string_view kUdp = "udp://", kUnix = "unix://";
  const std::string name = "syslog target " + target;
  if (target.rfind(kUnix, 0) == 0) {
    std::string path = target.substr(kUnix.size());
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
      return fail(Errc::kInvalidArgument, name + ": socket path empty or too long");
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unexpected<Error>{errno_error(Errc::kIo, name)};
    SyslogSink sink(fd, target, std::move(options));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return Unexpected<Error>{errno_error(Errc::kUnavailable, name)};
    }
    return sink;
  }
  if (target.rfind(kUdp, 0) != 0) {
    return fail(Errc::kInvalidArgument, name + ": expected udp://HOST:PORT or unix://PATH");
  }
  std::string hostport = target.substr(kUdp.size());
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == hostport.size()) {
    return fail(Errc::kInvalidArgument, name + ": expected udp://HOST:PORT");
  }
  std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return fail(Errc::kInvalidArgument, name + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(found, &::freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unexpected<Error>{errno_error(Errc::kIo, name)};
  SyslogSink sink(fd, target, std::move(options));
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0) {
    return Unexpected<Error>{errno_error(Errc::kUnavailable, name)};
  }
  return sink;
}

SyslogSink::SyslogSink(SyslogSink&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      target_(std::move(o.target_)),
      options_(std::move(o.options_)) {}
SyslogSink& SyslogSink::operator=(SyslogSink&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
    target_ = std::move(o.target_);
    options_ = std::move(o.options_);
  }
  return *this;
}
SyslogSink::~SyslogSink() {
  if (fd_ >= 0) ::close(fd_);
}

Status SyslogSink::send(std::string_view message) {
  if (::send(fd_, message.data(), message.size(), MSG_NOSIGNAL) < 0) {
    return Unexpected<Error>{errno_error(Errc::kUnavailable, "syslog target " + target_)};
  }
  return {};
}

Status SyslogSink::send_checkpoint(std::int64_t time_us, std::string_view note) {
  return send(formats::rfc5424_checkpoint(note, time_us, options_));
}

}  // namespace enclave::audit
