// Test support: real child processes (the services under test) and scratch directories.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace enclave::testing {

// A scratch directory removed when the test ends.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// The built executable NAME (build/*/bin/NAME).
std::filesystem::path binary(const std::string& name);
// The source tree.
std::filesystem::path source_dir();

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out, err;
};

// Runs a command to completion, capturing stdout and stderr. env entries are added to (and
// override) the test's own environment.
RunResult run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {},
              std::chrono::seconds timeout = std::chrono::seconds(120));

// A long-running child (a service). Its stdout and stderr go to files under log_dir.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
        const std::filesystem::path& log_dir);
  ~Child();  // SIGTERM if still running, SIGKILL 5 s later
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit code (128 + signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  std::string stderr_text() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::filesystem::path err_path_;
};

// Waits until path exists (e.g. a socket); false on timeout.
bool wait_for_path(const std::filesystem::path& path,
                   std::chrono::milliseconds timeout = std::chrono::seconds(20));

}  // namespace enclave::testing
