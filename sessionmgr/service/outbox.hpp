// A session's outbox: <[sessiond] outbox_root>/<session id>/, the one directory its desktop puts
// results in to ask for their export (enclave-exportd copies a requested file out of it; what
// it checks and releases is that copy). sessiond creates it with the session, mode 0700 (an
// xrdp desktop's account gets it once the account exists, local_desktop.hpp), and in it
// .enclave-session, mode 0600, TOML:
//   session = "s-0123456789abcdef"
//   token = "<64 lowercase hex>"
// The token (32 random bytes, in a ticket's form: ticket.hpp) is the session's export
// credential: enclave-export inside the desktop reads it and exportd asks sessiond who it is
// (session.identify). sessions.db keeps only its SHA-256. A resumed session keeps its outbox
// and token; the outbox stays after the session ends (how long old outboxes are kept is the
// operator's retention: policies/sessions.toml).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>

#include "common/result.hpp"
#include "sessionmgr/core/ticket.hpp"

namespace enclave::sessionmgr {

inline constexpr const char* kOutboxSessionFile = ".enclave-session";

struct CreatedOutbox {
  std::filesystem::path dir;
  std::string token_sha256;  // hex: what sessions.db keeps
};

// The session's outbox directory (absolute when root is).
std::filesystem::path outbox_dir(const std::filesystem::path& root, const std::string& session_id);

// Creates root if missing (mode 0711: a desktop's account may pass through to its own outbox,
// nobody may list the others), then root/<session_id>/ (which must not exist yet) and its
// session file with a fresh token. On failure nothing is left behind and the error names the
// path.
Expected<CreatedOutbox> create_outbox(const std::filesystem::path& root,
                                      const std::string& session_id, const RandomSource& random);

// Removes an outbox that create_outbox made for a session that was then never recorded.
void remove_outbox(const std::filesystem::path& dir);

// Gives the directory and everything in it (not following symbolic links) to uid:gid: to an
// xrdp desktop's account when it is created, back to the service before the account is removed
// (so that a later account with a reused uid never owns an old session's files).
Status chown_outbox(const std::filesystem::path& dir, uid_t uid, gid_t gid);

}  // namespace enclave::sessionmgr
