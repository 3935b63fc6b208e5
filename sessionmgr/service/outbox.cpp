#include "sessionmgr/service/outbox.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>

#include "common/bytes.hpp"
#include "common/files.hpp"

namespace enclave::sessionmgr {

namespace fs = std::filesystem;

namespace {

Errc errc_of(int error) {
  return error == ENOSPC ? Errc::kNoSpace : error == EEXIST ? Errc::kAlreadyExists : Errc::kIo;
}

}  // namespace

fs::path outbox_dir(const fs::path& root, const std::string& session_id) {
  return root / session_id;
}

Expected<CreatedOutbox> create_outbox(const fs::path& root, const std::string& session_id,
                                      const RandomSource& random) {
  std::error_code ec;
  if (fs::create_directories(root, ec)) fs::permissions(root, fs::perms(0711), ec);
  if (ec)
    return fail(Errc::kIo, "cannot create the outbox root " + root.string() + ": " + ec.message());

  const fs::path dir = outbox_dir(root, session_id);
  // mkdir, not create_directories: a directory already there is not ours to hand out.
  if (::mkdir(dir.c_str(), 0700) != 0) {
    const int error = errno;
    return fail(errc_of(error),
                "cannot create the outbox " + dir.string() + ": " + std::strerror(error));
  }
  if (::chmod(dir.c_str(), 0700) != 0) {  // whatever the umask
    const int error = errno;
    remove_outbox(dir);
    return fail(errc_of(error),
                "cannot set the mode of the outbox " + dir.string() + ": " + std::strerror(error));
  }
  std::string token = make_ticket(random);
  CreatedOutbox created{dir, ticket_hash(token)};
  std::string content = "session = \"" + session_id + "\"\ntoken = \"" + token + "\"\n";
  Status written = write_file_atomically(dir / kOutboxSessionFile, content, 0600);
  secure_wipe(token.data(), token.size());
  secure_wipe(content.data(), content.size());
  if (!written) {
    remove_outbox(dir);
    return fail(written.error().code,
                "cannot write the outbox's session file: " + written.error().message);
  }
  return created;
}

void remove_outbox(const fs::path& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("could not remove the outbox {}: {}", dir.string(), ec.message());
}

Status chown_outbox(const fs::path& dir, uid_t uid, gid_t gid) {
  auto give = [&](const fs::path& p) -> Status {
    if (::lchown(p.c_str(), uid, gid) != 0) {
      const int error = errno;
      return fail(Errc::kIo,
                  "cannot change the owner of " + p.string() + ": " + std::strerror(error));
    }
    return {};
  };
  ENCLAVE_TRY(give(dir));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    ENCLAVE_TRY(give(it->path()));
  }
  if (ec) return fail(Errc::kIo, "cannot read the outbox " + dir.string() + ": " + ec.message());
  return {};
}

}  // namespace enclave::sessionmgr
