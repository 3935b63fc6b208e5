#include "sessionmgr/service/credentials.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "common/bytes.hpp"
#include "common/policy.hpp"

extern char** environ;

namespace enclave::sessionmgr {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

}  // namespace

void openssl_random(std::span<std::uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    spdlog::critical("RAND_bytes failed; stopping");
    std::abort();
  }
}

DesktopCredentials::~DesktopCredentials() {
  secure_wipe(password.data(), password.size());
}

std::string random_password(const RandomSource& random) {
  for (;;) {
    std::string out;
    std::array<std::uint8_t, 64> bytes{};
    random(bytes);
    for (auto b : bytes) {
      if (b >= 248) continue;  // 248 = 4 * 62: keeps the choice uniform
      out.push_back(kAlphabet[b % kAlphabet.size()]);
      if (out.size() == 24) break;
    }
    secure_wipe(bytes.data(), bytes.size());
    auto has = [&](char lo, char hi) {
      return std::any_of(out.begin(), out.end(), [&](char c) { return c >= lo && c <= hi; });
    };
    if (out.size() == 24 && has('A', 'Z') && has('a', 'z') && has('0', '9')) return out;
    secure_wipe(out.data(), out.size());
  }
}

namespace {

// A command that exits without reading its stdin makes our write fail with EPIPE; the kernel
// also raises SIGPIPE at the writing thread, which would kill whoever called us. The signal is
// blocked for the write and, if raised, taken back before the mask is restored.
ssize_t write_without_sigpipe(int fd, const char* data, std::size_t size) {
  sigset_t pipe_only, previous;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
  ssize_t w = ::write(fd, data, size);
  const int saved = errno;
  if (w < 0 && saved == EPIPE) {
    const timespec no_wait{};
    while (::sigtimedwait(&pipe_only, nullptr, &no_wait) < 0 && errno == EINTR) {
    }
  }
  ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  errno = saved;
  return w;
}

}  // namespace

Status run_with_input(std::vector<std::string> argv, const std::vector<std::string>& extra,
                      const std::string& input, std::chrono::milliseconds timeout) {
  if (argv.empty()) return fail(Errc::kInvalidArgument, "no command to run");
  argv.insert(argv.end(), extra.begin(), extra.end());
  int in_pipe[2], err_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0)
    return fail(Errc::kIo, "pipe: " + std::string(strerror(errno)));
  Fd in_r(in_pipe[0]), in_w(in_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0)
    return fail(Errc::kIo, "pipe: " + std::string(strerror(errno)));
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  in_r.reset();
  err_w.reset();
  if (rc != 0) {
    return fail(Errc::kUnavailable, "cannot run " + argv[0] + ": " + std::strerror(rc));
  }

  // Feed the input (small: one line of user, one of password), then collect stderr until exit.
  const auto deadline = Clock::now() + timeout;
  std::size_t written = 0;
  ::fcntl(in_w.fd, F_SETFL, O_NONBLOCK);
  ::fcntl(err_r.fd, F_SETFL, O_NONBLOCK);
  std::string err;
  bool timed_out = false;
  for (;;) {
    std::array<pollfd, 2> fds{};
    nfds_t n = 0;
    if (err_r.fd >= 0) fds[n++] = {err_r.fd, POLLIN, 0};
    if (in_w.fd >= 0) fds[n++] = {in_w.fd, POLLOUT, 0};
    if (n == 0) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    int ready = ::poll(fds.data(), n, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_w.fd) {
        ssize_t w = write_without_sigpipe(in_w.fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 && errno != EAGAIN) written = input.size();  // it closed its stdin: stop
        if (written >= input.size()) in_w.reset();
      } else {
        char buf[1024];
        ssize_t r = ::read(err_r.fd, buf, sizeof buf);
        if (r > 0) {
          err.append(buf, static_cast<std::size_t>(r));
          if (err.size() > 4096) err.erase(0, err.size() - 4096);
        } else if (r == 0 || errno != EAGAIN) {
          err_r.reset();
        }
      }
    }
  }
  int status = 0;
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  for (;;) {
    pid_t w = ::waitpid(pid, &status, timed_out ? 0 : WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (w == 0) {
      if (Clock::now() >= deadline) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        timed_out = true;
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  while (!err.empty() && (err.back() == '\n' || err.back() == '\r')) err.pop_back();
  if (timed_out) {
    return fail(Errc::kUnavailable,
                argv[0] + " did not finish within " + std::to_string(timeout.count()) + " ms");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status)
                          ? "exited with " + std::to_string(WEXITSTATUS(status))
                          : "was killed by signal " + std::to_string(WTERMSIG(status));
    return fail(Errc::kUnavailable,
                argv[0] + " " + how + (err.empty() ? std::string() : ": " + err.substr(0, 512)));
  }
  return {};
}

Expected<DesktopCredentials> read_fixed_credentials(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return fail(Errc::kNotFound, "credentials file " + path.string() + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(Errc::kInvalidArgument, "credentials file " + path.string() + " is not a file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 0777));
    return fail(Errc::kPermission, "credentials file " + path.string() +
                                       " is open to group or others (mode " + mode +
                                       "); make it 0600 or 0400");
  }
  if (st.st_uid != 0 && st.st_uid != ::getuid()) {
    return fail(Errc::kPermission,
                "credentials file " + path.string() + " must be owned by root or this service");
  }
  auto doc = policy::Document::load_file(path);
  if (!doc) return error_of(doc);
  auto root = doc->root();
  ENCLAVE_TRY(root.reject_unknown({"user", "password", "domain"}));
  auto user = root.string("user");
  if (!user) return error_of(user);
  auto password = root.string("password");
  if (!password) return error_of(password);
  auto domain = root.string_or("domain", "");
  if (!domain) return error_of(domain);
  if (user->empty() || password->empty()) {
    return fail(Errc::kInvalidArgument, path.string() + ": user and password must not be empty");
  }
  return DesktopCredentials(std::move(domain).value(), std::move(user).value(),
                            std::move(password).value());
}

}  // namespace enclave::sessionmgr
