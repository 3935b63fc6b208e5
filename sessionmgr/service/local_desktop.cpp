// Local desktops: real RDP hosts started on demand on this machine.
//
// shadow: Xvfb -displayfd (a free display) -noreset -nolisten tcp, the root window painted
//   with `display -window root xc:#3a6ea5` (ImageMagick) and an xclock on it, then
//   freerdp-shadow-cli /bind-address:A /port:N /sec:tls -auth with HOME and XDG_CONFIG_HOME in
//   work_dir. freerdp-shadow-cli 2.x reads its TLS identity from
//   $XDG_CONFIG_HOME/freerdp/shadow/shadow.crt and shadow.key (it generates them there when
//   missing); it only loads an RSA key (an EC key fails with "unable to load RSA key"), so
//   the desktop gets RSA 2048. "-auth" turns authentication OFF: the shadow host does not
//   check the credential in info(), which is random per desktop only so that every kind
//   has one. Its log (stdout and stderr; WLOG_LEVEL=DEBUG is needed, see below) names the
//   client's static channels at connection time:
//     [INFO][com.freerdp.core.connection] - Accepted channels:
//     [INFO][com.freerdp.core.connection] -  cliprdr
//
// xrdp: a system account (useradd -m; random password via chpasswd) authenticated by sesman
//   through PAM service xrdp-sesman, and a private xrdp + xrdp-sesman pair started with -n
//   (no daemon) and -c <config>. xrdp 0.9 reads sesman's port from /etc/xrdp/sesman.ini
//   whatever -c says, and chansrv reads its settings there too, so both run in a private
//   mount namespace where work_dir/xrdp-etc (the keymaps copied from /etc/xrdp, our xrdp.ini,
//   sesman.ini, startwm.sh and the certificate) is bind-mounted over /etc/xrdp. Sessions are
//   Xvnc (tigervnc). xrdp.ini offers cliprdr, rdpdr, rdpsnd and drdynvc ([Channels] all true)
//   so that a gateway test can show they stay closed. xrdp.log (LogLevel=DEBUG) names every
//   static channel in the client's network data:
//     [DEBUG] Adding channel: name cliprdr, channel id 1006, flags 0xc0a00000
//   and, once chansrv is connected, "Enabling channel 1006 (cliprdr)".
//
// Either kind: every process of the desktop (for xrdp, the sessions sesman starts, through
// sesman.ini's [SessionVariables]) has ENCLAVE_OUTBOX=<the session's outbox> when one is given.
#include "sessionmgr/service/local_desktop.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "common/bytes.hpp"
#include "common/files.hpp"
#include "common/x509.hpp"
#include "sessionmgr/service/credentials.hpp"
#include "sessionmgr/service/outbox.hpp"
#include "sessionmgr/service/rdp_probe.hpp"

namespace enclave::sessionmgr {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr const char* kDesktopColour = "#3a6ea5";
constexpr const char* kChildPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr auto kShadowStartTimeout = 20s;
constexpr auto kXrdpStartTimeout = 30s;
constexpr auto kStopGrace = 3s;

// ---- small helpers ----

std::string random_hex(std::size_t bytes) {
  Bytes b(bytes);
  openssl_random(b);
  return hex_encode(b);
}

// The executable NAME found in PATH (or kChildPath), or empty.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* env_path = std::getenv("PATH");
  std::string path = std::string(env_path ? env_path : "") + ":" + kChildPath;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string log_tail(const fs::path& path, std::size_t max_bytes = 2000) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "(no log at " + path.string() + ")";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(in.tellg());
  const std::size_t start = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (text.empty()) return "(empty log " + path.string() + ")";
  return path.string() + " ends with:\n" + text;
}

bool tcp_port_free(const std::string& address, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  if (::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1)
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

// A port nothing listens on now, in [low, high). The kernel's choice (port 0) when the range
// is the whole ephemeral range; otherwise random tries. There is a window between this check
// and the host binding it; a host that then fails to bind fails start() with its log.
Expected<int> free_port(const std::string& address, int low = 20000, int high = 60000) {
  std::random_device rd;
  std::uniform_int_distribution<int> pick(low, high - 1);
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = pick(rd);
    if (tcp_port_free(address, port) && tcp_port_free("127.0.0.1", port)) return port;
  }
  return fail(Errc::kUnavailable,
              "no free TCP port in [" + std::to_string(low) + ", " + std::to_string(high) + ")");
}

bool tcp_connects(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  if (v6) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(static_cast<std::uint16_t>(port));
    ok = ::inet_pton(AF_INET6, address.c_str(), &sa.sin6_addr) == 1 &&
         ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  } else {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    ok = ::inet_pton(AF_INET, address.c_str(), &sa.sin_addr) == 1 &&
         ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  }
  ::close(fd);
  return ok;
}

// ---- child processes ----

struct SpawnSpec {
  std::vector<std::string> argv;  // argv[0] is a name looked up in PATH
  std::vector<std::string> env;   // the whole environment, "K=V"
  fs::path log;                   // stdout and stderr, appended
  int pass_fd = -1;               // becomes fd 3 in the child
  // Bind-mount first over second in a private mount namespace before exec.
  std::optional<std::pair<fs::path, fs::path>> bind_mount;
};

// Forks and execs. The child leads its own process group (so stopping it also stops what it
// forks) and gets /dev/null as stdin. Between fork and exec only system calls run.
Expected<pid_t> spawn(const SpawnSpec& spec) {
  const std::string program = find_program(spec.argv.at(0));
  if (program.empty()) return fail(Errc::kNotFound, spec.argv[0] + " not found in PATH");
  std::vector<char*> argv, envp;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const std::string log = spec.log.string();
  std::string bind_from, bind_to;
  if (spec.bind_mount) {
    bind_from = spec.bind_mount->first.string();
    bind_to = spec.bind_mount->second.string();
  }

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return fail(Errc::kIo, std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::setpgid(0, 0);
    // If the session manager dies without stopping its desktops (kill -9, a crash), they
    // go too. (The signal follows the thread that forked: sessiond starts desktops from its
    // fixed worker pool, whose threads live as long as the daemon.)
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(125);
    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (null_fd < 0 || log_fd < 0) ::_exit(126);
    ::dup2(null_fd, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    if (spec.pass_fd == 3) {
      ::fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep close-on-exec
    } else if (spec.pass_fd >= 0) {
      ::dup2(spec.pass_fd, 3);
    }
    ::close_range(spec.pass_fd >= 0 ? 4 : 3, ~0U, 0);
    if (!bind_from.empty()) {
      if (::unshare(CLONE_NEWNS) != 0 ||
          ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
          ::mount(bind_from.c_str(), bind_to.c_str(), nullptr, MS_BIND, nullptr) != 0) {
        static const char kMsg[] = "local_desktop: private mount namespace failed\n";
        (void)!::write(2, kMsg, sizeof kMsg - 1);
        ::_exit(125);
      }
    }
    ::execve(program.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a short command to completion (account management, painting the root window).
CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                          const std::string& input = "", std::chrono::milliseconds timeout = 30s) {
  CommandResult result;
  const std::string program = find_program(argv.at(0));
  if (program.empty()) {
    result.output = argv[0] + " not found in PATH";
    return result;
  }
  int out_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(out_pipe[1], 2);
    ::execve(program.c_str(), args.data(), envp.data());
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  if (pid < 0) {
    ::close(in_pipe[1]);
    ::close(out_pipe[0]);
    return result;
  }
  if (!input.empty()) (void)!::write(in_pipe[1], input.data(), input.size());
  ::close(in_pipe[1]);
  const auto deadline = Clock::now() + timeout;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      result.output += "\n(timed out)";
      break;
    }
    pollfd p{out_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    if (result.output.size() < 64 * 1024) result.output.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.exit_code = decode_status(status);
  return result;
}

std::vector<std::string> base_env() {
  return {std::string("PATH=") + kChildPath, "LANG=C.UTF-8"};
}

struct Process {
  std::string name;
  pid_t pid = -1;
  fs::path log;
  std::optional<int> exit_code;  // set once reaped

  bool running() {
    if (exit_code || pid <= 0) return false;
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exit_code = decode_status(status);
      return false;
    }
    return r == 0;
  }

  // SIGTERM to the process group, a grace period, then SIGKILL; always reaped.
  void stop() {
    if (pid <= 0 || exit_code) return;
    ::kill(-pid, SIGTERM);
    ::kill(pid, SIGTERM);
    const auto deadline = Clock::now() + kStopGrace;
    while (running() && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    ::kill(-pid, SIGKILL);  // whatever the leader forked into its group
    if (running()) {
      ::kill(pid, SIGKILL);
      int status = 0;
      if (::waitpid(pid, &status, 0) == pid) exit_code = decode_status(status);
    }
  }
};

// Every process whose real uid is uid (from /proc).
std::vector<pid_t> processes_of_uid(uid_t uid) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (::stat(entry.path().c_str(), &st) != 0 || st.st_uid != uid) continue;
    out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

bool valid_account_name(const std::string& name) {
  if (name.empty() || name.size() > 32) return false;
  if (!(std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  for (char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

// Paints the root window and returns; the picture stays as the root background.
void paint_root(const std::string& display) {
  if (find_program("display").empty()) return;
  auto env = base_env();
  env.push_back("DISPLAY=" + display);
  // ImageMagick's display exits 1 after setting the root background; the colour is set.
  (void)run_command(
      {"display", "-window", "root", "-size", "16x16", std::string("xc:") + kDesktopColour}, env,
      "", 10s);
}

}  // namespace

// ---- LocalDesktop ----

struct LocalDesktop::Impl {
  LocalDesktopOptions options;
  LocalDesktopInfo info;
  std::vector<Process> processes;  // in start order; stopped in reverse
  std::string account;             // set once useradd succeeded: ours to remove
  uid_t account_uid = 0;
  bool outbox_given = false;  // the outbox belongs to the account until it is removed

  ~Impl() { shutdown(); }

  void shutdown() {
    for (auto it = processes.rbegin(); it != processes.rend(); ++it) it->stop();
    processes.clear();
    if (!account.empty()) {
      remove_account();
      account.clear();
    }
  }

  void remove_account() {
    // Sesman's sessions (Xvnc, chansrv, the window manager) run as the account and outlive
    // sesman; end them before userdel (which refuses while the account has processes).
    for (int sig : {SIGTERM, SIGKILL}) {
      auto pids = processes_of_uid(account_uid);
      if (pids.empty()) break;
      for (pid_t p : pids) ::kill(p, sig);
      const auto deadline = Clock::now() + kStopGrace;
      while (!processes_of_uid(account_uid).empty() && Clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
      }
    }
    if (outbox_given) {
      if (auto back = chown_outbox(options.outbox, ::geteuid(), ::getegid()); !back) {
        spdlog::error("the outbox of account {} stays with uid {}: {}", account, account_uid,
                      back.error().describe());
      }
      outbox_given = false;
    }
    (void)run_command({"userdel", "-r", account}, base_env());
  }

  // What every process of the desktop starts with.
  std::vector<std::string> desktop_env() const {
    auto env = base_env();
    if (!options.outbox.empty()) env.push_back("ENCLAVE_OUTBOX=" + options.outbox.string());
    return env;
  }

  Status add_process(const std::string& name, SpawnSpec spec) {
    auto pid = spawn(spec);
    if (!pid) return fail(pid.error().code, name + ": " + pid.error().message);
    processes.push_back(Process{name, *pid, spec.log, std::nullopt});
    return {};
  }

  // The first process that is no longer running, as an error with its log, or {}.
  Status check_running() {
    for (auto& p : processes) {
      if (!p.running()) {
        return fail(Errc::kUnavailable, p.name + " exited (code " +
                                            std::to_string(p.exit_code.value_or(-1)) + "); " +
                                            log_tail(p.log));
      }
    }
    return {};
  }

  // Probes until the host answers, a process dies, or the timeout passes.
  Status wait_until_ready(std::chrono::seconds timeout, const std::string& host_name,
                          const fs::path& host_log) {
    const auto deadline = Clock::now() + timeout;
    Status last = fail(Errc::kTimeout, "not probed yet");
    while (Clock::now() < deadline) {
      ENCLAVE_TRY(check_running());
      last = probe_rdp(info.host, info.port, 1s);
      if (last) return {};
      std::this_thread::sleep_for(100ms);
    }
    return fail(Errc::kTimeout, host_name + " did not answer the RDP probe within " +
                                    std::to_string(timeout.count()) +
                                    " s: " + last.error().message + "; " + log_tail(host_log));
  }

  Status make_certificate(const fs::path& cert, const fs::path& key) {
    info.server_name = "desktop-" + random_hex(6);
    // RSA: freerdp-shadow-cli 2.x loads nothing else.
    ENCLAVE_TRY(x509::generate_self_signed(cert, key, info.server_name, 825, /*rsa=*/true));
    auto pin = x509::spki_sha256_hex_of_file(cert);
    if (!pin) return error_of(pin);
    info.pin_sha256 = *pin;
    return {};
  }

  Status start_shadow();
  Status start_xrdp();
};

Status LocalDesktop::Impl::start_shadow() {
  const fs::path& dir = options.work_dir;
  const fs::path config_home = dir / "config";
  const fs::path shadow_dir = config_home / "freerdp" / "shadow";
  std::error_code ec;
  fs::create_directories(shadow_dir, ec);
  if (ec) return fail(Errc::kIo, "creating " + shadow_dir.string() + ": " + ec.message());
  ENCLAVE_TRY(make_certificate(shadow_dir / "shadow.crt", shadow_dir / "shadow.key"));

  // Xvfb picks a free display itself and writes its number to fd 3.
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail(Errc::kIo, "pipe failed");
  SpawnSpec xvfb;
  xvfb.argv = {
      "Xvfb",      "-displayfd",
      "3",         "-screen",
      "0",         std::to_string(options.width) + "x" + std::to_string(options.height) + "x24",
      "-nolisten", "tcp",
      "-noreset"};
  xvfb.env = desktop_env();
  xvfb.log = dir / "xvfb.log";
  xvfb.pass_fd = pipe_fds[1];
  Status started = add_process("Xvfb", xvfb);
  ::close(pipe_fds[1]);
  if (!started) {
    ::close(pipe_fds[0]);
    return started;
  }
  std::string number;
  const auto deadline = Clock::now() + 15s;
  while (number.find('\n') == std::string::npos && Clock::now() < deadline) {
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      if (!processes.back().running()) break;
      continue;
    }
    char buf[32];
    ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n <= 0) break;
    number.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  while (!number.empty() && (number.back() == '\n' || number.back() == '\r')) number.pop_back();
  if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos) {
    return fail(Errc::kUnavailable, "Xvfb did not report its display; " + log_tail(xvfb.log));
  }
  info.display = ":" + number;

  paint_root(info.display);
  if (!find_program("xclock").empty()) {
    SpawnSpec clock;
    clock.argv = {"xclock", "-geometry", "300x300+100+100", "-update", "1"};
    clock.env = desktop_env();
    clock.env.push_back("DISPLAY=" + info.display);
    clock.log = dir / "xclock.log";
    ENCLAVE_TRY(add_process("xclock", clock));
  }

  auto port = free_port(options.bind_address);
  if (!port) return error_of(port);
  info.host = options.bind_address;
  info.port = static_cast<std::uint16_t>(*port);
  info.host_log = dir / "shadow.log";

  SpawnSpec shadow;
  shadow.argv = {"freerdp-shadow-cli", "/bind-address:" + options.bind_address,
                 "/port:" + std::to_string(*port), "/sec:tls", "-auth"};
  shadow.env = desktop_env();
  shadow.env.push_back("DISPLAY=" + info.display);
  shadow.env.push_back("HOME=" + dir.string());
  shadow.env.push_back("XDG_CONFIG_HOME=" + config_home.string());
  // The channel list is an INFO line, but freerdp-shadow-cli 2.11 only prints it when the root
  // level is DEBUG (INFO, or INFO with WLOG_FILTER=com.freerdp.core.connection:DEBUG, print
  // nothing at connection time).
  shadow.env.push_back("WLOG_LEVEL=DEBUG");
  shadow.log = info.host_log;
  ENCLAVE_TRY(add_process("freerdp-shadow-cli", shadow));

  // Not checked by the shadow host (-auth is off); random so that nothing relies on it.
  info.user = "shadow-" + random_hex(4);
  info.password = random_password(openssl_random);
  return wait_until_ready(kShadowStartTimeout, "freerdp-shadow-cli", info.host_log);
}

Status LocalDesktop::Impl::start_xrdp() {
  const fs::path& dir = options.work_dir;
  if (options.bind_address.find(':') != std::string::npos) {
    return fail(Errc::kInvalidArgument, "xrdp desktops bind an IPv4 address");
  }
  std::string name = options.account.empty() ? "desk" + random_hex(4) : options.account;
  if (!valid_account_name(name)) {
    return fail(Errc::kInvalidArgument, "account name '" + name + "' is not a valid user name");
  }
  if (::getpwnam(name.c_str()) != nullptr) {
    return fail(Errc::kAlreadyExists, "account " + name + " already exists (not ours to use)");
  }

  // The configuration directory bind-mounted over /etc/xrdp: the distribution's keymaps, then
  // ours.
  const fs::path etc = dir / "xrdp-etc";
  std::error_code ec;
  fs::create_directories(etc / "chansrv-log", ec);
  if (ec) return fail(Errc::kIo, "creating " + etc.string() + ": " + ec.message());
  fs::permissions(etc, fs::perms(0755), ec);
  for (const auto& entry : fs::directory_iterator("/etc/xrdp", ec)) {
    const std::string fname = entry.path().filename().string();
    if (entry.is_regular_file() && entry.path().extension() == ".ini" && fname != "xrdp.ini" &&
        fname != "sesman.ini") {
      fs::copy_file(entry.path(), etc / fname, fs::copy_options::overwrite_existing, ec);
    }
  }
  ENCLAVE_TRY(make_certificate(etc / "cert.pem", etc / "key.pem"));

  auto port = free_port(options.bind_address);
  if (!port) return error_of(port);
  auto sesman_port = free_port("127.0.0.1", 20000, 64999);  // xrdp ignores ports >= 65000
  if (!sesman_port) return error_of(sesman_port);
  // The first display sesman will give a session: one nobody uses now.
  int display = -1;
  {
    std::random_device rd;
    std::uniform_int_distribution<int> pick(200, 3000);
    for (int attempt = 0; attempt < 100 && display < 0; ++attempt) {
      int d = pick(rd);
      if (!fs::exists("/tmp/.X11-unix/X" + std::to_string(d)) &&
          !fs::exists("/tmp/.X" + std::to_string(d) + "-lock") &&
          tcp_port_free("127.0.0.1", 5900 + d) && tcp_port_free("127.0.0.1", 6000 + d)) {
        display = d;
      }
    }
    if (display < 0) return fail(Errc::kUnavailable, "no free X display number");
  }
  info.host = options.bind_address;
  info.port = static_cast<std::uint16_t>(*port);
  info.display = ":" + std::to_string(display);
  info.host_log = dir / "xrdp.log";

  std::ostringstream xrdp_ini;
  xrdp_ini << "[Globals]\n"
           << "ini_version=1\n"
           << "fork=true\n"
           << "port=tcp://" << options.bind_address << ":" << *port << "\n"
           << "use_vsock=false\n"
           << "tcp_nodelay=true\n"
           << "tcp_keepalive=true\n"
           << "security_layer=tls\n"
           << "crypt_level=none\n"
           << "certificate=" << (etc / "cert.pem").string() << "\n"
           << "key_file=" << (etc / "key.pem").string() << "\n"
           << "ssl_protocols=TLSv1.2, TLSv1.3\n"
           << "autorun=Xvnc\n"
           << "allow_channels=true\n"
           << "allow_multimon=true\n"
           << "bitmap_cache=true\n"
           << "bitmap_compression=true\n"
           << "bulk_compression=true\n"
           << "max_bpp=32\n"
           << "new_cursors=true\n"
           << "use_fastpath=both\n"
           << "\n[Logging]\n"
           << "LogFile=" << info.host_log.string() << "\n"
           << "LogLevel=DEBUG\n"
           << "EnableSyslog=false\n"
           << "\n[Channels]\n"
           << "rdpdr=true\n"
           << "rdpsnd=true\n"
           << "drdynvc=true\n"
           << "cliprdr=true\n"
           << "rail=true\n"
           << "xrdpvr=true\n"
           << "tcutils=true\n"
           << "\n[Xvnc]\n"
           << "name=Xvnc\n"
           << "lib=libvnc.so\n"
           << "username=ask\n"
           << "password=ask\n"
           << "ip=127.0.0.1\n"
           << "port=-1\n";
  ENCLAVE_TRY(write_file_atomically(etc / "xrdp.ini", xrdp_ini.str(), 0644));

  std::ostringstream sesman_ini;
  sesman_ini << "[Globals]\n"
             << "ListenAddress=127.0.0.1\n"
             << "ListenPort=" << *sesman_port << "\n"
             << "EnableUserWindowManager=false\n"
             << "UserWindowManager=startwm.sh\n"
             // Relative to /etc/xrdp, i.e. inside the bind mount: reachable by the account even
             // when work_dir's parents are not.
             << "DefaultWindowManager=startwm.sh\n"
             << "ReconnectScript=reconnectwm.sh\n"
             << "\n[Security]\n"
             << "AllowRootLogin=false\n"
             << "MaxLoginRetry=4\n"
             << "AlwaysGroupCheck=false\n"
             << "RestrictOutboundClipboard=none\n"
             << "RestrictInboundClipboard=none\n"
             << "\n[Sessions]\n"
             << "X11DisplayOffset=" << display << "\n"
             << "MaxSessions=4\n"
             << "KillDisconnected=false\n"
             << "DisconnectedTimeLimit=0\n"
             << "IdleTimeLimit=0\n"
             << "Policy=Default\n"
             << "\n[Logging]\n"
             << "LogFile=" << (dir / "sesman.log").string() << "\n"
             << "LogLevel=DEBUG\n"
             << "EnableSyslog=false\n"
             << "\n[Xvnc]\n"
             << "param=Xvnc\n"
             << "param=-bs\n"
             << "param=-nolisten\n"
             << "param=tcp\n"
             << "param=-localhost\n"
             << "param=-dpi\n"
             << "param=96\n"
             << "\n[Chansrv]\n"
             << "FuseMountName=thinclient_drives\n"
             << "FileUmask=077\n"
             << "\n[ChansrvLogging]\n"
             << "LogLevel=DEBUG\n"
             << "EnableSyslog=false\n"
             << "\n[SessionVariables]\n"
             << "CHANSRV_LOG_PATH=/etc/xrdp/chansrv-log\n";
  if (!options.outbox.empty()) sesman_ini << "ENCLAVE_OUTBOX=" << options.outbox.string() << "\n";
  ENCLAVE_TRY(write_file_atomically(etc / "sesman.ini", sesman_ini.str(), 0644));

  const std::string startwm = std::string("#!/bin/sh\n") +
                              "display -window root -size 16x16 'xc:" + kDesktopColour +
                              "' >/dev/null 2>&1\n"
                              "command -v xclock >/dev/null && exec xclock -geometry "
                              "300x300+100+100 -update 1\n"
                              "exec sleep infinity\n";
  ENCLAVE_TRY(write_file_atomically(etc / "startwm.sh", startwm, 0755));
  ENCLAVE_TRY(write_file_atomically(etc / "reconnectwm.sh", "#!/bin/sh\nexit 0\n", 0755));

  // The account: its password is the desktop credential.
  auto added = run_command({"useradd", "-m", "-s", "/bin/sh", "-c", "enclave local desktop", name},
                           base_env());
  if (added.exit_code != 0) {
    return fail(Errc::kUnavailable, "useradd " + name + " failed: " + added.output);
  }
  account = name;
  const passwd* pw = ::getpwnam(name.c_str());
  if (pw == nullptr) return fail(Errc::kInternal, "useradd " + name + " left no account");
  account_uid = pw->pw_uid;
  std::string password = random_password(openssl_random);
  auto set = run_command({"chpasswd"}, base_env(), name + ":" + password + "\n");
  if (set.exit_code != 0) {
    return fail(Errc::kUnavailable, "chpasswd for " + name + " failed: " + set.output);
  }
  info.user = name;
  info.password = std::move(password);
  if (::chown((etc / "chansrv-log").c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return fail(Errc::kIo, "chown chansrv-log: " + std::string(std::strerror(errno)));
  }
  if (!options.outbox.empty()) {
    outbox_given = true;  // even partly given, it is taken back with the account
    ENCLAVE_TRY(chown_outbox(options.outbox, pw->pw_uid, pw->pw_gid));
  }
  fs::create_directories("/run/xrdp/sockdir", ec);  // made by systemd on a normal host

  SpawnSpec sesman;
  sesman.argv = {"xrdp-sesman", "--nodaemon", "--config", "/etc/xrdp/sesman.ini"};
  sesman.env = desktop_env();
  sesman.log = dir / "sesman.out";
  sesman.bind_mount = std::pair{etc, fs::path("/etc/xrdp")};
  ENCLAVE_TRY(add_process("xrdp-sesman", sesman));

  SpawnSpec xrdp;
  xrdp.argv = {"xrdp", "--nodaemon", "--config", "/etc/xrdp/xrdp.ini"};
  xrdp.env = desktop_env();
  xrdp.log = dir / "xrdp.out";
  xrdp.bind_mount = std::pair{etc, fs::path("/etc/xrdp")};
  ENCLAVE_TRY(add_process("xrdp", xrdp));

  // sesman listens on ::1 or 127.0.0.1 depending on the build; either will do.
  const auto deadline = Clock::now() + kXrdpStartTimeout;
  while (!tcp_connects("127.0.0.1", *sesman_port) && !tcp_connects("::1", *sesman_port)) {
    ENCLAVE_TRY(check_running());
    if (Clock::now() > deadline) {
      return fail(Errc::kTimeout, "xrdp-sesman does not listen on port " +
                                      std::to_string(*sesman_port) + "; " +
                                      log_tail(dir / "sesman.log"));
    }
    std::this_thread::sleep_for(50ms);
  }
  return wait_until_ready(kXrdpStartTimeout, "xrdp", info.host_log);
}

Expected<std::unique_ptr<LocalDesktop>> LocalDesktop::start(const LocalDesktopOptions& options) {
  if (std::string why = local_desktop_unavailable(options.kind); !why.empty()) {
    return fail(Errc::kUnavailable, why);
  }
  if (options.work_dir.empty()) return fail(Errc::kInvalidArgument, "work_dir is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  std::error_code ec;
  impl->options.work_dir = fs::absolute(options.work_dir, ec);
  fs::create_directories(impl->options.work_dir, ec);
  if (ec) {
    return fail(Errc::kIo, "creating " + options.work_dir.string() + ": " + ec.message());
  }
  if (!options.outbox.empty()) {
    impl->options.outbox = fs::absolute(options.outbox, ec);
    if (ec) return fail(Errc::kIo, "the outbox " + options.outbox.string() + ": " + ec.message());
  }
  Status started =
      options.kind == LocalDesktopKind::kShadow ? impl->start_shadow() : impl->start_xrdp();
  if (!started) return error_of(started);  // ~Impl stops what did start
  return std::unique_ptr<LocalDesktop>(new LocalDesktop(std::move(impl)));
}

LocalDesktop::LocalDesktop(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LocalDesktop::~LocalDesktop() = default;

const LocalDesktopInfo& LocalDesktop::info() const {
  return impl_->info;
}

bool LocalDesktop::alive() const {
  for (auto& p : impl_->processes) {
    if (!p.running()) return false;
  }
  return true;
}

std::string local_desktop_unavailable(LocalDesktopKind kind) {
  if (kind == LocalDesktopKind::kShadow) {
    if (find_program("Xvfb").empty()) return "Xvfb not installed";
    if (find_program("freerdp-shadow-cli").empty()) {
      return "freerdp-shadow-cli not installed (freerdp2-shadow-x11)";
    }
    return "";
  }
  if (find_program("xrdp").empty() || find_program("xrdp-sesman").empty()) {
    return "xrdp not installed";
  }
  if (find_program("Xvnc").empty()) return "Xvnc not installed (tigervnc-standalone-server)";
  if (!fs::exists("/etc/xrdp")) return "xrdp not installed (no /etc/xrdp)";
  if (::geteuid() != 0) return "needs root (creates a system account and a mount namespace)";
  for (const char* tool : {"useradd", "userdel", "chpasswd"}) {
    if (find_program(tool).empty()) return std::string(tool) + " not installed";
  }
  // A private mount namespace (for the /etc/xrdp bind mount) may be refused in a container.
  pid_t pid = ::fork();
  if (pid == 0) ::_exit(::unshare(CLONE_NEWNS) == 0 ? 0 : 1);
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    return "cannot create a private mount namespace (xrdp's config must be bind-mounted)";
  }
  return "";
}

}  // namespace enclave::sessionmgr
