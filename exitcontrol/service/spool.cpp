#include "exitcontrol/service/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>

#include "common/bytes.hpp"
#include "common/fd.hpp"
#include "common/files.hpp"

namespace enclave::exitcontrol {
namespace {

constexpr std::size_t kChunk = 1 << 16;
constexpr std::string_view kSidecarSuffix = ".meta.toml";

// Copies from `in` to a new file `to`, hashing; bounded by max bytes.
Expected<SpooledFile> copy_hashing(int in, const std::filesystem::path& to, std::string name,
                                   std::uint64_t max_bytes) {
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (out.get() < 0) return Unexpected<Error>{os_error(to.string(), errno)};
  Sha256Stream hash;
  std::array<std::uint8_t, kChunk> buf{};
  SpooledFile f;
  f.name = std::move(name);
  for (;;) {
    ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return Unexpected<Error>{os_error("outbox file " + f.name, errno)};
    }
    if (r == 0) break;
    f.size += static_cast<std::uint64_t>(r);
    if (f.size > max_bytes) {
      return fail(Errc::kInvalidArgument, "outbox file " + f.name + " is larger than " +
                                              std::to_string(max_bytes) +
                                              " bytes, the most one file may be");
    }
    hash.update({buf.data(), static_cast<std::size_t>(r)});
    ENCLAVE_TRY(write_all(out.get(), {buf.data(), static_cast<std::size_t>(r)}, to.string()));
  }
  if (::fsync(out.get()) != 0) return Unexpected<Error>{os_error(to.string(), errno)};
  f.sha256 = hash.hex_final();
  return f;
}

}  // namespace

Status check_outbox_name(std::string_view name) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::kInvalidArgument,
                "\"" + std::string(name.substr(0, 200)) + "\" cannot be submitted: " + why);
  };
  if (name.empty()) return bad("an empty name");
  // A release bundle is a ustar archive: member names of at most 100 bytes, and three names of
  // its own.
  if (name.size() > 100) return bad("a name longer than 100 bytes");
  for (const char* reserved : {"manifest.json", "manifest.sig", "export-signing.pub"}) {
    if (name == reserved) return bad("the release bundle uses this name for itself");
  }
  if (name.find('/') != std::string_view::npos) {
    return bad("name a file in the outbox itself, without a directory");
  }
  if (name.front() == '.') return bad("hidden files and \".\" or \"..\" are not outputs");
  if (!is_valid_utf8(name)) return bad("the name is not UTF-8");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) return bad("the name has a control character");
  }
  return {};
}

Expected<Spool::Intake> Spool::take_in(const std::filesystem::path& outbox,
                                       const std::vector<std::string>& names,
                                       const IntakeLimits& limits) {
  if (names.empty()) return fail(Errc::kInvalidArgument, "no files to submit");
  if (names.size() > limits.max_files) {
    return fail(Errc::kInvalidArgument, std::to_string(names.size()) +
                                            " files in one request; at most " +
                                            std::to_string(limits.max_files));
  }
  for (std::size_t i = 0; i < names.size(); ++i) {
    ENCLAVE_TRY(check_outbox_name(names[i]));
    for (std::size_t j = 0; j < i; ++j) {
      if (names[i] == names[j]) {
        return fail(Errc::kInvalidArgument, names[i] + " is named twice");
      }
    }
  }
  UniqueFd dir(::open(outbox.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dir.get() < 0) return Unexpected<Error>{os_error("outbox " + outbox.string(), errno)};
  std::error_code ec;
  std::filesystem::create_directories(root_, ec);
  if (ec) return Unexpected<Error>{os_error("spool " + root_.string(), ec.value())};
  Intake intake;
  intake.incoming = root_ / (".incoming-" + random_hex(8));
  if (::mkdir(intake.incoming.c_str(), 0700) != 0) {
    return Unexpected<Error>{os_error(intake.incoming.string(), errno)};
  }
  std::uint64_t total = 0;
  auto copy_one = [&](const std::string& name, bool sidecar, bool optional) -> Status {
    UniqueFd in(::openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    if (in.get() < 0) {
      if (optional && errno == ENOENT) return {};
      if (errno == ELOOP) {
        return fail(Errc::kInvalidArgument,
                    "outbox file " + name + " is a symbolic link; put the file itself there");
      }
      return Unexpected<Error>{os_error("outbox file " + name, errno)};
    }
    struct stat st {};
    if (::fstat(in.get(), &st) != 0) return Unexpected<Error>{os_error(name, errno)};
    if (!S_ISREG(st.st_mode)) {
      return fail(Errc::kInvalidArgument, "outbox file " + name + " is not a regular file");
    }
    ::fcntl(in.get(), F_SETFL, 0);  // blocking reads from here on (O_NONBLOCK only kept FIFOs away)
    auto copied = copy_hashing(in.get(), intake.incoming / name, name, limits.max_file_bytes);
    if (!copied) return error_of(copied);
    total += copied->size;
    if (total > limits.max_request_bytes) {
      return fail(Errc::kInvalidArgument, "the files add up to more than " +
                                              std::to_string(limits.max_request_bytes) +
                                              " bytes, the most one request may carry");
    }
    copied->sidecar = sidecar;
    intake.files.push_back(std::move(copied).value());
    return {};
  };
  for (const auto& name : names) {
    Status done = copy_one(name, false, false);
    const bool is_sidecar = std::string_view(name).ends_with(kSidecarSuffix);
    if (done && !is_sidecar &&
        std::find(names.begin(), names.end(), name + std::string(kSidecarSuffix)) == names.end()) {
      done = copy_one(name + std::string(kSidecarSuffix), true, true);
    }
    if (!done) {
      discard(intake.incoming);
      return error_of(done);
    }
  }
  sync_dir(intake.incoming);
  return intake;
}

Status Spool::commit(const std::filesystem::path& incoming, std::int64_t request) {
  const auto to = dir(request);
  if (::rename(incoming.c_str(), to.c_str()) != 0) {
    return Unexpected<Error>{os_error("spool " + to.string(), errno)};
  }
  sync_dir(root_);
  return {};
}

void Spool::discard(const std::filesystem::path& incoming) {
  std::error_code ec;
  std::filesystem::remove_all(incoming, ec);
}

void Spool::sweep(const std::function<bool(std::int64_t)>& known) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with(".incoming-")) {
      discard(entry.path());
      continue;
    }
    std::int64_t id = 0;
    try {
      id = std::stoll(name);
    } catch (...) {
      continue;  // not ours
    }
    if (!known(id)) discard(entry.path());
  }
}

std::filesystem::path Spool::dir(std::int64_t request) const {
  return root_ / std::to_string(request);
}

std::filesystem::path Spool::file(std::int64_t request, std::string_view name) const {
  return dir(request) / std::string(name);
}

Status Spool::write(std::int64_t request, std::string_view name, std::string_view content) {
  return write_file_atomically(file(request, name), content, 0600);
}

Status Spool::verify(std::int64_t request, std::string_view name, const std::string& sha256) const {
  const auto path = file(request, name);
  auto now = hash_file(path);
  if (!now) return error_of(now);
  if (!constant_time_equal(as_bytes(now->first), as_bytes(sha256))) {
    return fail(Errc::kCorrupt, "R-" + std::to_string(request) + " file " + std::string(name) +
                                    " changed after submission: sha256 was " + sha256 +
                                    ", is now " + now->first);
  }
  return {};
}

Expected<std::pair<std::string, std::uint64_t>> hash_file(const std::filesystem::path& path) {
  UniqueFd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (in.get() < 0) return Unexpected<Error>{os_error(path.string(), errno)};
  Sha256Stream hash;
  std::array<std::uint8_t, kChunk> buf{};
  std::uint64_t size = 0;
  for (;;) {
    ssize_t r = ::read(in.get(), buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return Unexpected<Error>{os_error(path.string(), errno)};
    }
    if (r == 0) break;
    size += static_cast<std::uint64_t>(r);
    hash.update({buf.data(), static_cast<std::size_t>(r)});
  }
  return std::make_pair(hash.hex_final(), size);
}

}  // namespace enclave::exitcontrol
