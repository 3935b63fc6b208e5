// Where enclave-auditd copies each checkpoint off the box: append-only files (the off-box
// record of offbox.hpp, meant for another machine's mount or a WORM volume) and syslog
// collectors (the checkpoint note only, as RFC 5424 over UDP or a local datagram socket).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "audit/core/formats.hpp"
#include "audit/core/merkle.hpp"
#include "common/result.hpp"

namespace enclave::audit {

// An off-box file. position() is how many leaf hashes the file holds; write() appends the
// leaves from there and then the checkpoint, and fsyncs. A failed write is cut back off the
// file, so the file never holds half a record followed by more records.
class OffboxFile {
 public:
  static Expected<OffboxFile> open(const std::filesystem::path& path);
  OffboxFile(OffboxFile&&) noexcept;
  OffboxFile& operator=(OffboxFile&&) noexcept;
  ~OffboxFile();

  const std::filesystem::path& path() const { return path_; }
  std::uint64_t position() const { return position_; }

  // leaves are the hashes of entries position() .. position() + leaves.size() - 1.
  Status write(std::span<const merkle::Hash> leaves, std::int64_t time_us, std::string_view note);

 private:
  OffboxFile(int fd, std::filesystem::path path, std::uint64_t position)
      : fd_(fd), path_(std::move(path)), position_(position) {}
  int fd_ = -1;
  std::filesystem::path path_;
  std::uint64_t position_ = 0;
};

// A syslog collector: "udp://HOST:PORT" or "unix:///dev/log" (datagram).
class SyslogSink {
 public:
  static Expected<SyslogSink> open(const std::string& target, formats::SyslogOptions options);
  SyslogSink(SyslogSink&&) noexcept;
  SyslogSink& operator=(SyslogSink&&) noexcept;
  ~SyslogSink();

  const std::string& target() const { return target_; }
  Status send(std::string_view message);
  Status send_checkpoint(std::int64_t time_us, std::string_view note);

 private:
  SyslogSink(int fd, std::string target, formats::SyslogOptions options)
      : fd_(fd), target_(std::move(target)), options_(std::move(options)) {}
  int fd_ = -1;
  std::string target_;
  formats::SyslogOptions options_;
};

}  // namespace enclave::audit
