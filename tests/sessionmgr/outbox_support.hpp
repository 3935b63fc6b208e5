// For the tests of sessions' outboxes: a session file as enclave-export reads it, and which
// processes run with a given environment entry (a desktop's processes know their outbox from
// ENCLAVE_OUTBOX).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/policy.hpp"
#include "sessionmgr/service/outbox.hpp"

namespace enclave::sessionmgr {

struct SessionFile {
  std::string session, token;
};

// <outbox>/.enclave-session: exactly its two keys, or empty fields (and a test failure).
inline SessionFile read_session_file(const std::filesystem::path& outbox) {
  auto doc = policy::Document::load_file(outbox / kOutboxSessionFile);
  EXPECT_TRUE(doc) << doc.error().describe();
  if (!doc) return {};
  EXPECT_TRUE(doc->root().reject_unknown({"session", "token"}));
  auto session = doc->root().string("session");
  auto token = doc->root().string("token");
  EXPECT_TRUE(session && token);
  if (!session || !token) return {};
  return {*session, *token};
}

struct ProcessWithEnv {
  pid_t pid;
  uid_t uid;  // the owner of /proc/<pid>: the process's user
};

// Every process whose environment has exactly this entry ("NAME=value").
inline std::vector<ProcessWithEnv> processes_with_env(const std::string& entry) {
  std::vector<ProcessWithEnv> out;
  std::error_code ec;
  for (const auto& proc : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = proc.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(proc.path() / "environ", std::ios::binary);
    std::string variable;
    while (std::getline(in, variable, '\0')) {
      if (variable != entry) continue;
      struct stat st {};
      if (::stat(proc.path().c_str(), &st) == 0) {
        out.push_back({static_cast<pid_t>(std::stol(name)), st.st_uid});
      }
      break;
    }
  }
  return out;
}

}  // namespace enclave::sessionmgr
